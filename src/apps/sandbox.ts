// Runs one action of a partner's app in a Worker Loader isolate: no bindings, no network but the
// per-run gateway, metered code, a host-side wall clock, size caps, and every failure classified.
// Guarantees and measured limits: docs/apps.md.
import { sha256Hex } from "../platform/crypto";
import type { DestinationPolicy } from "../platform/destination";
import { jsonDepth, MAX_JSON_DEPTH } from "../platform/json";
import { RunGateway } from "./gateway";
import type { RunState } from "./run-state";
import { BundleRefused, instrumentModule } from "./instrument";
import { HARNESS_MODULE, METER_MODULE, RUNNER_ENTRYPOINT } from "./isolate-modules";
import { Grants, RunLimits, type ExceededLimit, type RunErrorCode, type RunLog, type RunResult } from "./schema";

/** The compatibility date app isolates run with (nodejs_compat gives the meter AsyncLocalStorage). */
export const APP_COMPATIBILITY_DATE = "2026-11-01";

export interface RunRequest {
  /**
   * The isolate's cache key: the same id reuses a warm isolate (and its module state). Use
   * `isolateId(...)`: the bundle's digest, and the tenant, so tenants never share module state.
   */
  id: string;
  /**
   * The app's single bundled ES module (default export `{ actions: { [name]: { run(input, ctx) } } }`),
   * or a function that reads it: called only when no warm isolate has this id.
   */
  source: string | (() => Promise<string>);
  /** What the action sees as ctx.config, ctx.tenant_id and ctx.integration_id. */
  context?: RunContext;
  /** ctx.state: the (tenant, app) store's capability; without it ctx.state fails. */
  state?: RunState;
  actionName: string;
  input: unknown;
  grants?: Partial<Grants>;
  limits?: Partial<RunLimits>;
  /** The destination rules for the gateway (destinationPolicy(env)). */
  policy: DestinationPolicy;
}

export interface RunContext {
  config: Record<string, unknown>;
  tenant_id: string;
  integration_id: string | null;
}

/** What the harness answers (isolate-modules.ts). */
type HarnessResult = { logs: RunLog[]; dropped_logs: number } & (
  | { ok: true; output: string }
  | { ok: false; kind: "input" | "failed" | "output" | "output_size" | "steps" | "time" | "ended"; message: string }
);

interface Runner {
  run(job: unknown, gateway: RunGateway, state: RunState | null): Promise<HarnessResult>;
  stop(runId: string, reason: string): Promise<void>;
}

/** Hex SHA-256 of a bundle: the identity of an app version's code. */
export const bundleDigest = (source: string): Promise<string> => sha256Hex(source);

/**
 * The isolate id for an app version in a tenant: one warm isolate per (bundle, tenant), so an app's
 * module-level state can never carry one tenant's data into another tenant's run.
 * @example isolateId(await bundleDigest(source), "ten_123") // "app:9f86…:ten_123"
 */
export const isolateId = (digest: string, tenantId: string) => `app:${digest}:${tenantId}`;

/** workerd's words when a request's promise can never settle (no I/O or timer left that could settle it). */
const HUNG = /hung and would never generate a response/;

/**
 * The first line of an error the runtime raised for the isolate (a module that failed to evaluate
 * arrives as "Failed to start Worker:\nUncaught Error: …\n  at app.js:…"): the app's words, no stack.
 */
function runtimeMessage(err: unknown): string {
  const text = String((err as Error)?.message ?? err).replace(/^Failed to start Worker:\s*/, "");
  return text.split("\n")[0]!.replace(/^Uncaught (\w*Error: )?/, "").slice(0, 2000);
}

const limitKind = (message: string): ExceededLimit | null =>
  /exceeded (its )?CPU|CPU time limit/i.test(message) ? "cpu" : /subrequest/i.test(message) ? "subrequests" : null;

/**
 * Runs `actionName` of the app in `source` with `input` and returns a tagged result; never throws for
 * anything the app does. The bundle is instrumented (instrumentModule) when its isolate is first built.
 *
 * @example
 * const result = await runAction(env.LOADER, { id: isolateId(digest, tenant), source, actionName: "normalise",
 *   input: { d: "/Date(1700000000000)/" }, grants: { hosts: ["erp.example.com"] }, policy: destinationPolicy(env) });
 */
export async function runAction(loader: WorkerLoader, request: RunRequest): Promise<RunResult> {
  const started = Date.now();
  const limits = RunLimits.parse(request.limits ?? {});
  const grants = Grants.parse(request.grants ?? {});
  type Outcome = { ok: true; output: unknown } | { ok: false; code: RunErrorCode; message: string; limit?: ExceededLimit };
  const finish = (outcome: Outcome, logs: Pick<RunResult, "logs" | "dropped_logs"> = { logs: [], dropped_logs: 0 }): RunResult => ({
    ...outcome,
    ...logs,
    duration_ms: Date.now() - started,
  });
  const fail = (code: RunErrorCode, message: string, extra: { limit?: ExceededLimit; logs?: RunLog[]; dropped_logs?: number } = {}) => {
    const { logs = [], dropped_logs = 0, limit } = extra;
    return finish({ ok: false, code, message, ...(limit && { limit }) }, { logs, dropped_logs });
  };

  let input: string | undefined;
  try {
    input = JSON.stringify(request.input);
  } catch (err) {
    return fail("APP_INPUT_INVALID", `the input is not JSON: ${(err as Error).message}`);
  }
  if (input === undefined) return fail("APP_INPUT_INVALID", "the input is not JSON");
  const inputBytes = new TextEncoder().encode(input).byteLength;
  if (inputBytes > limits.max_input_bytes)
    return fail("APP_LIMIT_EXCEEDED", `the input is ${inputBytes} bytes, over the limit of ${limits.max_input_bytes}`, { limit: "input_size" });

  let refused: BundleRefused | undefined;
  const worker = loader.get(request.id, async () => {
    let instrumented: string;
    try {
      const source = typeof request.source === "string" ? request.source : await request.source();
      instrumented = instrumentModule(source, { meter: "./meter.js" });
    } catch (err) {
      if (err instanceof BundleRefused) refused = err;
      throw err;
    }
    return {
      compatibilityDate: APP_COMPATIBILITY_DATE,
      compatibilityFlags: ["nodejs_compat"],
      mainModule: "harness.js",
      modules: { "harness.js": HARNESS_MODULE, "meter.js": METER_MODULE, "app.js": instrumented },
      env: {},
      globalOutbound: null,
      // One more subrequest than the gateway allows, so the gateway's clear error is the one seen.
      limits: { cpuMs: limits.cpu_ms, subRequests: limits.subrequests + 1 },
    };
  });
  const runner = worker.getEntrypoint(RUNNER_ENTRYPOINT) as unknown as Runner;
  const gateway = new RunGateway(grants.hosts, request.policy, limits.subrequests);
  const runId = crypto.randomUUID();
  const context = request.context ?? { config: {}, tenant_id: "", integration_id: null };
  const job = { run_id: runId, action: request.actionName, input, limits, context };

  let timer: ReturnType<typeof setTimeout> | null = null;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), limits.timeout_ms);
  });
  let answer: HarnessResult | "timeout";
  try {
    answer = await Promise.race([runner.run(job, gateway, request.state ?? null), timedOut]);
  } catch (err) {
    const message = runtimeMessage(err);
    if (refused) return fail("APP_FAILED", `the app's bundle was refused: ${refused.message}`);
    const limit = limitKind(message);
    if (limit) return fail("APP_LIMIT_EXCEEDED", message, { limit });
    if (message.startsWith("APP_LIMIT_EXCEEDED")) return fail("APP_LIMIT_EXCEEDED", message, { limit: "steps" });
    if (HUNG.test(message)) return fail("APP_LIMIT_EXCEEDED", "the action can never finish: it awaits something nothing will resolve", { limit: "time" });
    return fail("APP_FAILED", `the app could not be run: ${message}`);
  } finally {
    clearTimeout(timer);
  }
  if (answer === "timeout") {
    // The isolate's own clock does not move while it computes, so the host keeps time; the harness is
    // told to stop the run so its leftover work throws at its next step.
    runner.stop(runId, "time").catch(() => {});
    return fail("APP_LIMIT_EXCEEDED", `the run took longer than ${limits.timeout_ms} ms`, { limit: "time" });
  }
  // The harness shares its isolate with the app, which can tamper with it: its answer is checked
  // here like any other untrusted input (shape, log bounds, output size and JSON), never trusted.
  if (!answer || typeof answer !== "object" || typeof answer.ok !== "boolean") return fail("APP_FAILED", "the app's sandbox answered something unexpected");
  const logs = boundedLogs(answer, limits);
  if (answer.ok) {
    if (typeof answer.output !== "string") return fail("APP_OUTPUT_INVALID", "the action returned nothing JSON can represent", logs);
    const bytes = new TextEncoder().encode(answer.output).byteLength;
    if (bytes > limits.max_output_bytes) return fail("APP_LIMIT_EXCEEDED", `the output is ${bytes} bytes, over the limit of ${limits.max_output_bytes}`, { ...logs, limit: "output_size" });
    if (jsonDepth(answer.output) > MAX_JSON_DEPTH) return fail("APP_OUTPUT_INVALID", `the output nests deeper than ${MAX_JSON_DEPTH} levels`, logs);
    let output: unknown;
    try {
      output = JSON.parse(answer.output);
    } catch {
      return fail("APP_OUTPUT_INVALID", "the output is not JSON", logs);
    }
    return finish({ ok: true, output }, logs);
  }
  if (typeof answer.message !== "string") return fail("APP_FAILED", "the app failed without a message", logs);
  const { record } = gateway;
  switch (answer.kind) {
    case "input":
      return fail("APP_INPUT_INVALID", answer.message, logs);
    case "output":
      return fail("APP_OUTPUT_INVALID", answer.message, logs);
    case "output_size":
      return fail("APP_LIMIT_EXCEEDED", answer.message, { ...logs, limit: "output_size" });
    case "steps":
    case "time":
    case "ended":
      return fail("APP_LIMIT_EXCEEDED", answer.message, { ...logs, limit: answer.kind === "time" ? "time" : "steps" });
    case "failed":
      // The gateway's refusals are classified even when the app wrapped or replaced the error.
      if (record.over_budget) return fail("APP_LIMIT_EXCEEDED", answer.message, { ...logs, limit: "subrequests" });
      if (record.refused.length > 0) return fail("APP_HOST_NOT_GRANTED", answer.message, logs);
      return fail("APP_FAILED", answer.message, logs);
    default:
      return fail("APP_FAILED", answer.message.slice(0, 2000), logs);
  }
}

const LOG_LEVELS = new Set(["info", "warn", "error"]);

/** The harness's log lines within the run's bounds again, as plain { level, message } values. */
function boundedLogs(answer: { logs?: unknown; dropped_logs?: unknown }, limits: RunLimits): { logs: RunLog[]; dropped_logs: number } {
  const lines = Array.isArray(answer.logs) ? answer.logs : [];
  const logs: RunLog[] = [];
  let bytes = 0;
  let dropped = typeof answer.dropped_logs === "number" && Number.isSafeInteger(answer.dropped_logs) && answer.dropped_logs >= 0 ? answer.dropped_logs : 0;
  for (const line of lines) {
    const { level, message } = (line ?? {}) as { level?: unknown; message?: unknown };
    const text = typeof message === "string" ? message.slice(0, 2001) : "";
    if (logs.length >= limits.max_log_lines || bytes + text.length > limits.max_log_bytes || !LOG_LEVELS.has(level as string)) {
      dropped++;
      continue;
    }
    bytes += text.length;
    logs.push({ level: level as RunLog["level"], message: text });
  }
  return { logs, dropped_logs: dropped };
}
