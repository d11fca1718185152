// What a sandboxed run takes and gives: its limits, the hosts granted to it, and its classified outcome.
import { z } from "zod";

/**
 * The limits of one run. Defaults are what the host applies when an install sets none; the maxima
 * are what no install may exceed. Figures behind them are measured in docs/apps.md.
 */
export const RunLimits = z
  .object({
    /** CPU per run, enforced by the runtime in production (`limits.cpuMs`; local workerd ignores it). */
    cpu_ms: z.number().int().min(1).max(30_000).default(50),
    /** Loop iterations plus function calls of app code, enforced by the instrumented module everywhere. */
    steps: z.number().int().min(1_000).max(100_000_000).default(10_000_000),
    /** fetch() calls through the gateway per run (the runtime's `limits.subRequests` is set one higher). */
    subrequests: z.number().int().min(0).max(1_000).default(10),
    /** Wall-clock time for the whole run, awaited I/O included, measured by the host. */
    timeout_ms: z.number().int().min(10).max(300_000).default(10_000),
    max_input_bytes: z.number().int().min(2).max(10_000_000).default(1_000_000),
    max_output_bytes: z.number().int().min(2).max(10_000_000).default(1_000_000),
    max_log_lines: z.number().int().min(0).max(1_000).default(100),
    max_log_bytes: z.number().int().min(0).max(1_000_000).default(32_000),
  })
  .strict();
export type RunLimits = z.infer<typeof RunLimits>;

/** Hosts ("host" or "host:port", as in a URL) this tenant granted this app; nothing else is reachable. */
export const Grants = z
  .object({ hosts: z.array(z.string().min(1).max(260)).max(50).default([]) })
  .strict();
export type Grants = z.infer<typeof Grants>;

/** The closed set of outcomes a failed run is classified into. */
export const RUN_ERROR_CODES = ["APP_INPUT_INVALID", "APP_OUTPUT_INVALID", "APP_HOST_NOT_GRANTED", "APP_LIMIT_EXCEEDED", "APP_FAILED"] as const;
export type RunErrorCode = (typeof RUN_ERROR_CODES)[number];

/** Which limit a run exceeded (details.limit of APP_LIMIT_EXCEEDED). */
export type ExceededLimit = "steps" | "cpu" | "subrequests" | "time" | "input_size" | "output_size";

export interface RunLog {
  level: "info" | "warn" | "error";
  message: string;
}

interface RunCommon {
  logs: RunLog[];
  /** Log lines the app wrote past max_log_lines / max_log_bytes. */
  dropped_logs: number;
  duration_ms: number;
}

/** A run's outcome: a tagged result, turned into an HTTP error in one place by the caller. */
export type RunResult =
  | ({ ok: true; output: unknown } & RunCommon)
  | ({ ok: false; code: RunErrorCode; message: string; limit?: ExceededLimit } & RunCommon);
