// Monitoring routes: event queries, replay, statistics, traces and the audit log, in erp-edge's shapes
// and in epilot's (v1 and v2 monitoring, outbound status, access logs), all over the same rows.
import { createRoute, z } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody, pathParams } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import { queryAccessLogs } from "./access-log";
import * as views from "./epilot-views";
import {
  AccessLogPage,
  AccessLogQuery,
  AssociatedEvents,
  AuditPage,
  EpilotStats,
  EventsPage,
  EventsQuery,
  EventsV2Page,
  EventsV2Query,
  InboundMonitoringPage,
  InboundMonitoringQuery,
  OutboundMonitoringPage,
  OutboundMonitoringQuery,
  OutboundStatus,
  ReplayEventsResult,
  ReplayRequest,
  Stats,
  StatsQuery,
  StatsV2,
  StatsV2Query,
  TimeSeries,
  TimeSeriesQuery,
  TimeSeriesV2,
  TimeSeriesV2Query,
  Trace,
} from "./schema";
import * as service from "./service";

const security = [{ tenantToken: [] }];
const tags = ["Monitoring"];
const read = requireScope("monitoring:read");

export const monitoringRoutes = createRouter();

monitoringRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{integrationId}/events", tags, security, middleware: [read] as const, operationId: "queryEvents",
    summary: "Query inbound events, outbound deliveries and file-proxy downloads together, newest first (epilot's `data` holds the page's inbound events with payloads)",
    request: { params: pathParams("integrationId"), ...jsonBody(EventsQuery) },
    responses: { 200: json(EventsPage, "A page of events"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.queryEvents(c.env, callerTenant(c.get("caller")), c.req.valid("param").integrationId, c.req.valid("json")), 200),
);

monitoringRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{integrationId}/events/replay", tags, security, middleware: [requireScope("events:write")] as const, operationId: "replayEvents",
    summary: "Replay events: inbound through today's configuration, outbound sent again; each gets a new id linked to the original (downloads are not replayable: not_found)",
    request: { params: pathParams("integrationId"), ...jsonBody(ReplayRequest) },
    responses: { 200: json(ReplayEventsResult, "Per-event results"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.replay(c.env, callerTenant(c.get("caller")), c.req.valid("param").integrationId, c.req.valid("json").event_ids), 200),
);

monitoringRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/integrations/{integrationId}/monitoring/stats", tags, security, middleware: [read] as const,
    summary: "Counts per direction (inbound, outbound, file), use case and status, processing-time percentiles per direction (nearest rank, over the newest 10,000 timed rows of each), ACK counts",
    request: { params: pathParams("integrationId"), query: z.object({ window: z.enum(["1h", "24h", "7d"]).default("24h") }) },
    responses: { 200: json(Stats, "Statistics"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.stats(c.env, callerTenant(c.get("caller")), c.req.valid("param").integrationId, c.req.valid("query").window), 200),
);

monitoringRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/integrations/{integrationId}/monitoring/traces/{correlation_id}", tags, security, middleware: [read] as const,
    summary: "Everything that happened for one correlation id, inbound and outbound, in time order",
    request: { params: pathParams("integrationId", "correlation_id") },
    responses: { 200: json(Trace, "The trace"), ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    const { integrationId, correlation_id } = c.req.valid("param");
    return c.json(await service.trace(c.env, callerTenant(c.get("caller")), integrationId, correlation_id), 200);
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

// ---- epilot's monitoring operations -----------------------------------------------------------

/** One epilot monitoring operation: POST with a JSON query (or GET without), answered by `run`. */
function epilotRoute<Q extends z.ZodType, R extends z.ZodType>(
  op: { operationId: string; method: "get" | "post"; path: string; summary: string; query?: Q; response: R },
  run: (env: Env, tenantId: string, integrationId: string, query: z.infer<Q>, params: Record<string, string>) => Promise<z.infer<R>>,
) {
  const params = op.path.includes("{eventId}") ? pathParams("integrationId", "eventId") : pathParams("integrationId");
  monitoringRoutes.openapi(
    createRoute({
      method: op.method, path: op.path, tags, security, middleware: [read] as const, operationId: op.operationId, summary: op.summary,
      request: { params, ...(op.query && jsonBody(op.query)) },
      responses: { 200: json(op.response, "The answer"), ...errors(400, 401, 403, 404, ...(op.query ? [415] : []), 429) },
    }),
    async (c) => {
      // The route's types are built from `op` at run time: its validated parts are read untyped here.
      const valid = c.req.valid.bind(c.req) as unknown as (target: "param" | "json") => unknown;
      const p = valid("param") as Record<string, string>;
      const query = (op.query ? valid("json") : undefined) as z.infer<Q>;
      return c.json((await run(c.env, callerTenant(c.get("caller")), p.integrationId!, query, p)) as object, 200);
    },
  );
}

epilotRoute(
  { operationId: "queryInboundMonitoringEvents", method: "post", path: "/v1/integrations/{integrationId}/monitoring/inbound-events", query: InboundMonitoringQuery, response: InboundMonitoringPage,
    summary: "Finished inbound events in epilot's shape, newest first" },
  views.inboundMonitoringEvents,
);
epilotRoute(
  { operationId: "queryOutboundMonitoringEvents", method: "post", path: "/v1/integrations/{integrationId}/monitoring/outbound-events", query: OutboundMonitoringQuery, response: OutboundMonitoringPage,
    summary: "Outbound deliveries in epilot's shape, newest first" },
  views.outboundMonitoringEvents,
);
epilotRoute(
  { operationId: "getMonitoringStats", method: "post", path: "/v1/integrations/{integrationId}/monitoring/stats", query: StatsQuery, response: EpilotStats,
    summary: "Inbound and outbound counts of a period (default the last 24 hours) with optional breakdowns; erp-edge's GET on this path stays" },
  views.monitoringStats,
);
epilotRoute(
  { operationId: "getMonitoringTimeSeries", method: "post", path: "/v1/integrations/{integrationId}/monitoring/timeseries", query: TimeSeriesQuery, response: TimeSeries,
    summary: "Inbound and outbound counts per time bucket (the same rows as the stats)" },
  views.monitoringTimeSeries,
);
epilotRoute(
  { operationId: "getOutboundStatus", method: "get", path: "/v1/integrations/{integrationId}/outbound-status", response: OutboundStatus,
    summary: "Each outbound use case with its webhooks and any conflict (all webhooks disabled while the use case is enabled)" },
  (env, tenantId, integrationId) => views.outboundStatus(env, tenantId, integrationId),
);
epilotRoute(
  { operationId: "queryAccessLogs", method: "post", path: "/v1/integrations/{integrationId}/monitoring/access-logs", query: AccessLogQuery, response: AccessLogPage,
    summary: "The API calls the tenant's tokens made against this integration, newest first" },
  queryAccessLogs,
);
epilotRoute(
  { operationId: "queryMonitoringEventsV2", method: "post", path: "/v2/integrations/{integrationId}/monitoring/events", query: EventsV2Query, response: EventsV2Page,
    summary: "Monitoring events of every use case type (inbound, outbound, file_proxy), newest first" },
  views.monitoringEventsV2,
);
epilotRoute(
  { operationId: "getMonitoringStatsV2", method: "post", path: "/v2/integrations/{integrationId}/monitoring/stats", query: StatsV2Query, response: StatsV2,
    summary: "Counts per level of a period (default the last 24 hours) with an optional breakdown" },
  views.monitoringStatsV2,
);
epilotRoute(
  { operationId: "getMonitoringTimeSeriesV2", method: "post", path: "/v2/integrations/{integrationId}/monitoring/time-series", query: TimeSeriesV2Query, response: TimeSeriesV2,
    summary: "Counts per level per time bucket (the same rows as the stats)" },
  views.monitoringTimeSeriesV2,
);
epilotRoute(
  { operationId: "getAssociatedMonitoringEvents", method: "get", path: "/v2/integrations/{integrationId}/monitoring/events/{eventId}/associated", response: AssociatedEvents,
    summary: "The events linked to one event (the event it replays, and everything sharing its correlation id: deliveries, replays), oldest first, with the inbound event as received" },
  (env, tenantId, integrationId, _query, params) => views.associatedEvents(env, tenantId, integrationId, params.eventId!),
);
