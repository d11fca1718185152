// What a sandboxed run takes and gives: its limits, the hosts granted to it, and its classified outcome.
import { z } from "@hono/zod-openapi";
import { PACKAGE_NAME_PATTERN } from "../../apps-sdk/src/blueprint/manifest";
import { booleanQuery } from "../platform/openapi";
import { VersionSpec } from "../registry/schema";
import { NextCursor, PageQuery } from "../platform/pagination";

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

// ---- the HTTP API (/v1/apps/*) ------------------------------------------------------------------

const AppName = z.string().max(104).regex(PACKAGE_NAME_PATTERN, "a scoped name such as @acme/sap-normalise (lower case)").openapi({ example: "@erp-edge/sap-normalise" });
const Hosts = z
  .array(z.string().min(1).max(260))
  .max(50)
  .openapi({ description: "Hosts ('host' or 'host:port') the app may reach in this tenant; each must be one the app declares", example: ["erp.example.com"] });

const AppConfig = z
  .record(z.string().max(128), z.unknown())
  .openapi({ description: "The app's configuration for this tenant (checked against its config schema); secrets included, stored encrypted" });

export const AppInstallRequest = z
  .object({
    name: AppName,
    version: VersionSpec.default("latest"),
    grants: z.object({ hosts: Hosts.default([]) }).strict().default({ hosts: [] }),
    config: AppConfig.default({}),
    dry_run: z.boolean().default(false).openapi({ description: "Resolve, verify and check only; nothing is stored" }),
  })
  .strict()
  .openapi("AppInstallRequest");
export type AppInstallRequest = z.infer<typeof AppInstallRequest>;

export const AppPatchRequest = z
  .object({
    version: VersionSpec.optional(),
    grants: z.object({ hosts: Hosts }).strict().optional(),
    config: AppConfig.optional().openapi({ description: "Replaces the configuration; a masked value ('*****') keeps the stored one" }),
  })
  .strict()
  .openapi("AppPatchRequest");
export type AppPatchRequest = z.infer<typeof AppPatchRequest>;

const ActionSummary = z.object({
  name: z.string(),
  description: z.string(),
  input_schema: z.record(z.string(), z.unknown()),
  output_schema: z.record(z.string(), z.unknown()),
  hosts: z.array(z.string()).openapi({ description: "Hosts the action declares it needs" }),
});

export const AppInstallation = z
  .object({
    name: z.string(),
    version: z.string(),
    version_range: z.string(),
    digest: z.string(),
    description: z.string(),
    actions: z.array(ActionSummary),
    requested_hosts: z.array(z.string()).openapi({ description: "Every host the app's actions declare" }),
    grants: z.object({ hosts: z.array(z.string()) }),
    config: z.record(z.string(), z.unknown()).openapi({ description: "Secret values (writeOnly in the config schema, or secret-looking keys) are masked" }),
    installed_via: z.string().nullable().openapi({ description: "The blueprint that installed it, or null" }),
    installed_at: z.string(),
    installed_by: z.string(),
    updated_at: z.string(),
    updated_by: z.string(),
  })
  .openapi("AppInstallation");
export type AppInstallation = z.infer<typeof AppInstallation>;

export const AppInstallResult = AppInstallation.extend({ warnings: z.array(z.string()).openapi({ description: "e.g. an exact version that is yanked" }) }).openapi("AppInstallResult");

export const AppInstallationList = z.object({ installed: z.array(AppInstallation), next_cursor: NextCursor }).openapi("AppInstallationList");

export const AppRemoveQuery = z.object({
  force: booleanQuery.openapi({ description: "Remove it although use cases still name it (refused with 409 otherwise)" }),
});

/** `/v1/apps/installed/{scope}/{name}`: the app name's two halves. */
export const AppParams = z.object({
  scope: z.string().max(40).regex(/^@[a-z0-9][a-z0-9-]{0,38}$/, "a publisher scope such as @acme").openapi({ param: { name: "scope", in: "path" }, example: "@erp-edge" }),
  name: z.string().max(64).regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "the package name after the scope").openapi({ param: { name: "name", in: "path" }, example: "sap-normalise" }),
});

export const ActionParams = AppParams.extend({
  action: z.string().max(64).regex(/^[a-z][a-z0-9_-]{0,63}$/, "an action name").openapi({ param: { name: "action", in: "path" }, example: "normalise" }),
});

export const InvokeRequest = z
  .object({
    input: z.unknown().openapi({ description: "The action's input (checked against its input schema in the sandbox)" }),
    integration_id: z.string().min(1).max(64).optional().openapi({ description: "ctx.integration_id for the run; must be one of this tenant's integrations" }),
  })
  .strict()
  .openapi("AppInvokeRequest");

export const InvokeResult = z
  .object({
    output: z.unknown(),
    logs: z.array(z.object({ level: z.enum(["info", "warn", "error"]), message: z.string() })),
    duration_ms: z.number(),
    run_id: z.string(),
  })
  .openapi("AppInvokeResult");

export { AppActionRef } from "../platform/app-ref";

export const RunTrigger = z.enum(["invoke", "pre_mapping", "transform", "pull"]);
export type RunTrigger = z.infer<typeof RunTrigger>;

export const AppRunsQuery = PageQuery.extend({
  app: AppName.optional(),
  action: z.string().max(64).optional(),
  trigger: RunTrigger.optional(),
  outcome: z.string().max(40).optional().openapi({ description: "'ok' or an error code such as APP_FAILED" }),
});

export const AppRun = z
  .object({
    id: z.string(),
    app: z.string(),
    version: z.string(),
    action: z.string(),
    trigger: RunTrigger,
    integration_id: z.string().nullable(),
    event_id: z.string().nullable(),
    outcome: z.string(),
    error: z.string().nullable(),
    exceeded_limit: z.string().nullable(),
    duration_ms: z.number(),
    logs: z.array(z.object({ level: z.string(), message: z.string() })),
    dropped_logs: z.number(),
    started_at: z.string(),
  })
  .openapi("AppRun");
export const AppRunList = z.object({ runs: z.array(AppRun), next_cursor: NextCursor }).openapi("AppRunList");
