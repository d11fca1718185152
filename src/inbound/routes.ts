// Inbound routes: the events API (v3, and epilot's deprecated v1 and v2), event status, signed
// webhooks, pull runs and the ERP trigger.
import { createRoute, z } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody, pathParams } from "../platform/openapi";
import {
  ErpUpdatesEventsV1Request,
  ErpUpdatesEventsV2Request,
  EventsBatch,
  EventsBatchResult,
  InboundEventStatus,
} from "./schema";
import { PullRunResult, runPull } from "./pull";
import * as service from "./service";

const tags = ["Inbound events"];
const security = [{ tenantToken: [] }];

export const inboundRoutes = createRouter();

inboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v3/erp/updates/events", tags, security, middleware: [requireScope("events:write")] as const,
    summary: "Post ERP events; answered once they are stored, processed asynchronously in order",
    request: jsonBody(EventsBatch),
    responses: { 200: json(EventsBatchResult, "One result per event, in request order"), ...errors(400, 401, 403, 404, 413, 415, 429) },
  }),
  async (c) => c.json(await service.acceptEvents(c.env, callerTenant(c.get("caller")), c.req.valid("json")), 200),
);

inboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v2/erp/updates/events", tags, security, middleware: [requireScope("events:write")] as const, deprecated: true,
    summary: "Post ERP events in epilot's v2 form (object_type for event_name, event_type ignored); as v3 otherwise",
    request: jsonBody(ErpUpdatesEventsV2Request),
    responses: { 200: json(EventsBatchResult, "One result per event, in request order"), ...errors(400, 401, 403, 404, 413, 415, 429) },
  }),
  async (c) => c.json(await service.acceptLegacyEvents(c.env, callerTenant(c.get("caller")), c.req.valid("json")), 200),
);

inboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/erp/updates/events", tags, security, middleware: [requireScope("events:write")] as const, deprecated: true,
    summary: "Post ERP events in epilot's v1 form: the integration is the one the app_id is mapped to; as v2 otherwise",
    request: jsonBody(ErpUpdatesEventsV1Request),
    responses: { 200: json(EventsBatchResult, "One result per event, in request order"), ...errors(400, 401, 403, 404, 413, 415, 429) },
  }),
  async (c) => {
    const tenantId = callerTenant(c.get("caller"));
    const { app_id, component_id, meta, events } = c.req.valid("json");
    const integrationId = await service.integrationIdForApp(c.env, tenantId, app_id, component_id);
    return c.json(await service.acceptLegacyEvents(c.env, tenantId, { integration_id: integrationId, correlation_id: meta.correlation_id, events }), 200);
  },
);

inboundRoutes.openapi(
  createRoute({
    method: "get", path: "/v3/erp/updates/events/{event_id}", tags, security,
    middleware: [requireScope("events:write", "monitoring:read")] as const,
    summary: "An event's processing status; ?wait=N holds the answer until it finishes (N <= 25 s)",
    request: {
      params: pathParams("event_id"),
      query: z.object({ wait: z.coerce.number().min(0).max(25).optional().openapi({ description: "Seconds to wait for a final status" }) }),
    },
    responses: { 200: json(InboundEventStatus, "The event's status"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const tenantId = callerTenant(c.get("caller"));
    const { event_id } = c.req.valid("param");
    const { wait } = c.req.valid("query");
    const status = wait ? await service.waitForEvent(c.env, tenantId, event_id, wait) : await service.getEventStatus(c.env, tenantId, event_id);
    return c.json(status, 200);
  },
);

inboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/webhooks/{integration_id}/{use_case_slug}", tags: ["Webhooks (inbound)"],
    summary: "Signed webhook from a system pushing its own format (X-Signature or Standard Webhooks); no token",
    request: { params: pathParams("integration_id", "use_case_slug") },
    responses: {
      202: json(z.object({ event_id: z.string(), status: z.string(), message: z.string() }), "Accepted (or skipped as a duplicate)"),
      ...errors(400, 401, 413, 429),
    },
  }),
  async (c) => {
    const { integration_id, use_case_slug } = c.req.valid("param");
    const rawBody = new Uint8Array(await c.req.arrayBuffer());
    const result = await service.acceptWebhook(c.env, { integrationId: integration_id, useCaseSlug: use_case_slug, headers: c.req.raw.headers, rawBody });
    return c.json(result, 202);
  },
);

inboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/use-cases/{slug}/run", tags: ["Pull"], middleware: [requireScope("integrations:write")] as const,
    summary: "Run a pull use case now (operators and tests); its events enter the inbound pipeline through its target use case",
    request: {
      params: z.object({
        id: z.string().min(1).max(64).openapi({ param: { name: "id", in: "path" } }),
        slug: z.string().max(128).regex(/^[a-z0-9][a-z0-9_-]*$/, "a use case slug").openapi({ param: { name: "slug", in: "path" } }),
      }),
    },
    responses: { 200: json(PullRunResult, "The run: events received, accepted and refused, per-event results, the app's logs"), ...errors(400, 401, 403, 404, 422, 502) },
  }),
  async (c) => {
    const { id, slug } = c.req.valid("param");
    return c.json(await runPull(c.env, callerTenant(c.get("caller")), id, slug), 200);
  },
);
