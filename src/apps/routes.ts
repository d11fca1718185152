// /v1/apps/*: install, grant, configure and remove apps in a tenant, invoke their actions, read their runs.
import { createRoute } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import { getIntegration } from "../integrations/service";
import {
  ActionParams,
  AppParams,
  AppInstallation,
  AppInstallationList,
  AppInstallRequest,
  AppInstallResult,
  AppPatchRequest,
  AppRemoveQuery,
  AppRunList,
  AppRunsQuery,
  InvokeRequest,
  InvokeResult,
} from "./schema";
import * as service from "./service";

const install = requireScope("blueprints:install");
const invoke = requireScope("apps:invoke");
const monitoring = requireScope("monitoring:read");
const tags = ["Apps"];
const nameOf = (p: { scope: string; name: string }) => `${p.scope}/${p.name}`;

export const appRoutes = createRouter();

appRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/apps/install", tags, middleware: [install] as const,
    summary: "Install an app: resolve, verify (trusted publisher, digest, signature), grant hosts, configure",
    description:
      "Granted hosts must be a subset of the hosts the app's actions declare (`requested_hosts` in the answer); the configuration is checked against the app's config schema and stored encrypted. " +
      "With dry_run nothing is stored (200).",
    request: jsonBody(AppInstallRequest),
    responses: {
      200: json(AppInstallResult, "Dry run: what would be installed"),
      201: json(AppInstallResult, "Installed"),
      ...errors(400, 401, 403, 404, 409, 413, 415, 422),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const caller = c.get("caller");
    const { installation, warnings } = await service.installApp(c.env, caller, callerTenant(caller), body);
    return body.dry_run ? c.json({ ...installation, warnings }, 200) : c.json({ ...installation, warnings }, 201);
  },
);

appRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/apps/installed", tags, middleware: [install] as const, summary: "Installed apps",
    request: { query: PageQuery },
    responses: { 200: json(AppInstallationList, "A page of installed apps, by name"), ...errors(400, 401, 403) },
  }),
  async (c) => c.json(await service.listApps(c.env, callerTenant(c.get("caller")), c.req.valid("query")), 200),
);

appRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/apps/installed/{scope}/{name}", tags, middleware: [install] as const, summary: "An installed app: version, actions, requested and granted hosts, configuration (secrets masked)",
    request: { params: AppParams },
    responses: { 200: json(AppInstallation, "The installed app"), ...errors(400, 401, 403, 404) },
  }),
  async (c) => c.json(await service.getApp(c.env, callerTenant(c.get("caller")), nameOf(c.req.valid("param"))), 200),
);

appRoutes.openapi(
  createRoute({
    method: "patch", path: "/v1/apps/installed/{scope}/{name}", tags, middleware: [install] as const, summary: "Change an installed app's version, grants or configuration",
    request: { params: AppParams, ...jsonBody(AppPatchRequest) },
    responses: { 200: json(AppInstallation, "The installed app after the change"), ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
  }),
  async (c) => {
    const caller = c.get("caller");
    return c.json(await service.patchApp(c.env, caller, callerTenant(caller), nameOf(c.req.valid("param")), c.req.valid("json")), 200);
  },
);

appRoutes.openapi(
  createRoute({
    method: "delete", path: "/v1/apps/installed/{scope}/{name}", tags, middleware: [install] as const,
    summary: "Remove an app and forget its state (409 while use cases or a blueprint use it, unless force=true)",
    request: { params: AppParams, query: AppRemoveQuery },
    responses: { 204: { description: "Removed" }, ...errors(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    await service.removeApp(c.env, callerTenant(c.get("caller")), nameOf(c.req.valid("param")), c.req.valid("query").force);
    return c.body(null, 204);
  },
);

appRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/apps/{scope}/{name}/actions/{action}/invoke", tags, middleware: [invoke] as const,
    summary: "Run an installed app's action in its sandbox",
    description:
      "Answers `{ output, logs, duration_ms, run_id }`, or the run's classified error: APP_NOT_INSTALLED (404), APP_INPUT_INVALID or APP_LIMIT_EXCEEDED (422), " +
      "APP_OUTPUT_INVALID, APP_HOST_NOT_GRANTED or APP_FAILED (502), with `details.logs` and, for limits, `details.limit`.",
    request: { params: ActionParams, ...jsonBody(InvokeRequest) },
    responses: { 200: json(InvokeResult, "The action's output"), ...errors(400, 401, 403, 404, 413, 415, 422, 502) },
  }),
  async (c) => {
    const p = c.req.valid("param");
    const body = c.req.valid("json");
    const tenantId = callerTenant(c.get("caller"));
    // ctx.integration_id names one of the caller's own integrations, never another tenant's.
    if (body.integration_id !== undefined) await getIntegration(c.env.DB, tenantId, body.integration_id);
    const run = await service.runInstalled(c.env, tenantId, nameOf(p), p.action, body.input, { trigger: "invoke", integration_id: body.integration_id ?? null });
    if (!run.result.ok) throw service.runError(run.result, run.run_id);
    return c.json({ output: run.result.output, logs: run.result.logs, duration_ms: run.result.duration_ms, run_id: run.run_id }, 200);
  },
);

appRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/apps/runs", tags, middleware: [monitoring] as const, summary: "App runs of this tenant, newest first: outcome, error, duration, the app's log lines",
    request: { query: AppRunsQuery },
    responses: { 200: json(AppRunList, "A page of runs"), ...errors(400, 401, 403) },
  }),
  async (c) => c.json(await service.listRuns(c.env.DB, callerTenant(c.get("caller")), c.req.valid("query")), 200),
);

