// epilot's access logs: every authenticated API call that names an integration (in its path, or as
// the body's integration_id) is recorded in that integration's AccessLog object after the response
// is sent (waitUntil), and read back by POST /v1/integrations/{integrationId}/monitoring/access-logs.
import { createMiddleware } from "hono/factory";
import { getIntegration, tenantIntegrationIds } from "../integrations/service";
import type { AppEnv } from "../platform/app";
import type { AccessLog, AccessRecord } from "./access-log-do";
import type { AccessLogQuery } from "./schema";

/** The binding, optional so every caller copes with a deployment that has not declared it. */
export type AccessLogEnv = { ACCESS_LOG?: DurableObjectNamespace<AccessLog> };

/** The integration's access log object (one per integration id). */
export const accessLogOf = (ns: DurableObjectNamespace<AccessLog>, integrationId: string) => ns.get(ns.idFromName(integrationId));

/** Integration ids are at most this long (longer ones name no integration and are not recorded). */
const MAX_ID_LENGTH = 64;
const INTEGRATION_PATH = /^\/v\d+\/integrations\/([^/]+)/;

/** The integration a request names: its path's, else its JSON body's integration_id (from the body read the route already did). */
async function integrationIdOf(req: { path: string; bodyCache: unknown }): Promise<string | null> {
  const fromPath = INTEGRATION_PATH.exec(req.path)?.[1];
  if (fromPath !== undefined) {
    const id = decodeURIComponent(fromPath);
    return id.length <= MAX_ID_LENGTH ? id : null;
  }
  const cache = req.bodyCache as { json?: Promise<unknown>; text?: Promise<string> };
  let body: unknown;
  try {
    body = cache.json ? await cache.json : cache.text ? JSON.parse(await cache.text) : undefined;
  } catch {
    return null;
  }
  const id = body !== null && typeof body === "object" && Object.hasOwn(body, "integration_id") ? (body as { integration_id: unknown }).integration_id : undefined;
  return typeof id === "string" && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : null;
}

/** The API family a path belongs to (epilot's `service`): the segment after the version, e.g. `integrations`, `erp`. */
const serviceOf = (path: string) => path.split("/")[2] || "root";

/**
 * Records each request of an authenticated tenant caller that names an integration: method, path,
 * status, duration, token id, time (not requests answered 404, which name no integration of theirs). The write happens after the response (waitUntil) and a failed
 * write is logged, never answered.
 */
export const accessLog = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  await next();
  const ns = (c.env as AccessLogEnv).ACCESS_LOG;
  const caller = c.get("caller");
  // A 404 names no integration of the caller's (or none at all): nothing is recorded for it.
  if (!ns || caller?.kind !== "tenant" || !caller.tenantId || c.res.status === 404) return;
  const length = Number(c.res.headers.get("content-length") ?? Number.NaN);
  const record: AccessRecord = {
    timestamp: new Date(started).toISOString(),
    service: serviceOf(c.req.path),
    request_id: c.get("requestId") ?? crypto.randomUUID(),
    method: c.req.method,
    path: c.req.path.slice(0, 2048),
    status: c.res.status,
    response_latency_ms: Date.now() - started,
    response_length: Number.isInteger(length) ? length : null,
    token_id: caller.tokenId ?? null,
    org_id: caller.tenantId,
    origin: c.req.header("origin")?.slice(0, 512) ?? null,
    source_ip: c.req.header("cf-connecting-ip") ?? null,
  };
  const tenantId = caller.tenantId;
  const write = integrationIdOf(c.req)
    .then(async (integrationId) => {
      // Only the caller's own integrations: another tenant's id (refused by the route, or a 400
      // before any lookup) must not put rows into that integration's log. The list is cached.
      if (integrationId && (await tenantIntegrationIds(c.env.DB, tenantId)).includes(integrationId)) await accessLogOf(ns, integrationId).record([record]);
    })
    .catch((err: unknown) => console.error(JSON.stringify({ msg: "access log write failed", request_id: record.request_id, error: String(err) })));
  try {
    c.executionCtx.waitUntil(write);
  } catch {
    // No execution context (app.request in a unit test): the write runs on without it.
  }
});

/** A page of the calls made against an integration by its own tenant, newest first. */
export async function queryAccessLogs(env: Pick<Env, "DB"> & AccessLogEnv, tenantId: string, integrationId: string, q: AccessLogQuery) {
  await getIntegration(env.DB, tenantId, integrationId);
  const rows = env.ACCESS_LOG ? await accessLogOf(env.ACCESS_LOG, integrationId).query(tenantId, q) : [];
  const more = rows.length > q.limit;
  const data = rows.slice(0, q.limit);
  const last = data[data.length - 1];
  return { data, has_more: more, next_cursor: more && last ? { timestamp: last.timestamp, request_id: last.request_id } : null };
}

/** Retention of one integration's access log: at most `limit` entries older than `before`; 0 without the binding. */
export function expireAccessLog(env: AccessLogEnv, integrationId: string, before: string, limit: number): Promise<number> {
  return env.ACCESS_LOG ? accessLogOf(env.ACCESS_LOG, integrationId).expire(before, limit) : Promise.resolve(0);
}

/** The integration is gone: its access log goes too (index.ts calls this beside purgeEventLogs). */
export async function purgeAccessLogs(env: AccessLogEnv, integrationIds: string[]): Promise<void> {
  const ns = env.ACCESS_LOG;
  if (ns) await Promise.all(integrationIds.map((id) => accessLogOf(ns, id).purge()));
}
