// Monitoring routes: event queries, replay, statistics, traces and the audit log.
import { createRoute, z } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody, pathParams } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import { AuditPage, EventPage, EventQuery, ReplayRequest, ReplayResult, Stats, Trace } from "./schema";
import * as service from "./service";

const security = [{ tenantToken: [] }];
const tags = ["Monitoring"];
const read = requireScope("monitoring:read");

export const monitoringRoutes = createRouter();

monitoringRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/events", tags, security, middleware: [read] as const,
    summary: "Query inbound events, outbound deliveries and file-proxy downloads together, newest first",
    request: { params: pathParams("id"), ...jsonBody(EventQuery) },
    responses: { 200: json(EventPage, "A page of events"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.queryEvents(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, c.req.valid("json")), 200),
);

monitoringRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/events/replay", tags, security, middleware: [requireScope("events:write")] as const,
    summary: "Replay events: inbound through today's configuration, outbound sent again; each gets a new id linked to the original (downloads are not replayable: not_found)",
    request: { params: pathParams("id"), ...jsonBody(ReplayRequest) },
    responses: { 200: json(ReplayResult, "Per-event results"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.replay(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, c.req.valid("json").event_ids), 200),
);

monitoringRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/integrations/{id}/monitoring/stats", tags, security, middleware: [read] as const,
    summary: "Counts per direction (inbound, outbound, file), use case and status, processing-time percentiles per direction (nearest rank, over the newest 10,000 timed rows of each), ACK counts",
    request: { params: pathParams("id"), query: z.object({ window: z.enum(["1h", "24h", "7d"]).default("24h") }) },
    responses: { 200: json(Stats, "Statistics"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.stats(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, c.req.valid("query").window), 200),
);

monitoringRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/integrations/{id}/monitoring/traces/{correlation_id}", tags, security, middleware: [read] as const,
    summary: "Everything that happened for one correlation id, inbound and outbound, in time order",
    request: { params: pathParams("id", "correlation_id") },
    responses: { 200: json(Trace, "The trace"), ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    const { id, correlation_id } = c.req.valid("param");
    return c.json(await service.trace(c.env, callerTenant(c.get("caller")), id, correlation_id), 200);
  },
);

monitoringRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/audit-log", tags, security, middleware: [read] as const,
    summary: "Configuration changes and token use of the tenant (who, what, when), newest first",
    request: { query: PageQuery },
    responses: { 200: json(AuditPage, "A page of entries"), ...errors(400, 401, 403, 429) },
  }),
  async (c) => c.json(await service.auditLog(c.env.DB, callerTenant(c.get("caller")), c.req.valid("query")), 200),
);
