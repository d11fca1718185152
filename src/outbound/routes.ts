// Outbound routes: business events, endpoints and secrets, DLQ, poll delivery, ACKs.
import { createRoute, z } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody, pathParams } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import {
  Acknowledgement,
  AckRequest,
  AckResult,
  BusinessEvent,
  DeliveryList,
  EmittedEvent,
  Endpoint,
  EndpointSecret,
  PollRequest,
  PollResult,
  Redrive,
  RedriveResult,
} from "./schema";
import * as service from "./service";

const security = [{ tenantToken: [] }];
const tags = ["Outbound"];
const write = requireScope("events:write");
const IntegrationParams = pathParams("id");
const EndpointParams = pathParams("id", "use_case_id", "mapping_id");

export const outboundRoutes = createRouter();

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/events", tags, security, middleware: [write] as const,
    summary: "Emit a named business event (e.g. MeterReadingAdded) to the outbound use cases subscribed to it",
    request: jsonBody(BusinessEvent),
    responses: { 202: json(EmittedEvent, "Queued for fan-out"), ...errors(400, 401, 403, 413, 415, 429) },
  }),
  async (c) => c.json(await service.emitBusinessEvent(c.env, callerTenant(c.get("caller")), c.req.valid("json")), 202),
);

outboundRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/integrations/{id}/outbound/endpoints", tags, security, middleware: [requireScope("integrations:read")] as const,
    summary: "Webhook endpoints of the integration's outbound use cases, with their state",
    request: { params: IntegrationParams },
    responses: { 200: json(z.object({ endpoints: z.array(Endpoint) }), "Endpoints"), ...errors(401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.listEndpoints(c.env.DB, callerTenant(c.get("caller")), c.req.valid("param").id), 200),
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/outbound/endpoints/{use_case_id}/{mapping_id}/secret", tags, security,
    middleware: [requireScope("integrations:write")] as const,
    summary: "Create or rotate an endpoint's whsec_ signing secret (shown only in this answer)",
    request: {
      params: EndpointParams,
      body: { required: false, content: { "application/json": { schema: z.object({ overlap_seconds: z.number().int().min(0).max(7 * 86400).default(86400) }) } } },
    },
    responses: { 201: json(EndpointSecret, "The new secret"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { id, use_case_id, mapping_id } = c.req.valid("param");
    const body = (c.req.valid("json") as { overlap_seconds?: number } | undefined) ?? {};
    return c.json(await service.rotateSecret(c.env, callerTenant(c.get("caller")), id, use_case_id, mapping_id, body.overlap_seconds ?? 86400), 201);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/outbound/endpoints/{use_case_id}/{mapping_id}/enable", tags, security,
    middleware: [requireScope("integrations:write")] as const,
    summary: "Re-enable a disabled (410) or paused (circuit breaker) endpoint",
    request: { params: EndpointParams },
    responses: { 204: { description: "Enabled" }, ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    const { id, use_case_id, mapping_id } = c.req.valid("param");
    await service.enableEndpoint(c.env, callerTenant(c.get("caller")), id, service.endpointIdOf(use_case_id, mapping_id));
    return c.body(null, 204);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/integrations/{id}/outbound/dlq", tags, security, middleware: [requireScope("monitoring:read")] as const,
    summary: "Dead-lettered deliveries",
    request: { params: IntegrationParams, query: PageQuery },
    responses: { 200: json(DeliveryList, "A page of dead letters"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.listDeadLetters(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, c.req.valid("query")), 200),
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/outbound/dlq/redrive", tags, security, middleware: [write] as const,
    summary: "Deliver dead letters again with fresh attempts: by ids, or all of them a page (100) per call, continued with next_cursor",
    request: { params: IntegrationParams, ...jsonBody(Redrive) },
    responses: { 200: json(RedriveResult, "Redriven"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => {
    const { ids, cursor } = c.req.valid("json");
    return c.json(await service.redrive(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, ids, cursor), 200);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/outbound/messages/poll", tags, security, middleware: [write] as const,
    summary: "Lease poll-delivery messages (for middleware that cannot receive webhooks)",
    request: { params: IntegrationParams, ...jsonBody(PollRequest.extend({ visibility_timeout_seconds: z.number().int().min(1).max(43_200).optional() })) },
    responses: { 200: json(PollResult, "Leased messages"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    return c.json(await service.pollMessages(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, body.limit, body.visibility_timeout_seconds), 200);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{id}/outbound/messages/ack", tags, security, middleware: [write] as const,
    summary: "Acknowledge leased messages; per-ack result acked, stale_lease or not_found",
    request: { params: IntegrationParams, ...jsonBody(AckRequest) },
    responses: { 200: json(AckResult, "Per-ack results"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.ackMessages(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, c.req.valid("json").acks), 200),
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/erp/tracking/acknowledgement", tags: ["ACK tracking"], security, middleware: [write] as const,
    summary: "The ERP acknowledges it processed an event (outbound by _ack_id, or inbound by event id)",
    request: jsonBody(Acknowledgement),
    responses: {
      200: json(z.object({ ack_id: z.string(), status: z.string(), direction: z.enum(["inbound", "outbound"]), acknowledged: z.number().int() }), "Recorded"),
      ...errors(400, 401, 403, 404, 415, 429),
    },
  }),
  async (c) => c.json(await service.acknowledge(c.env, callerTenant(c.get("caller")), c.req.valid("json")), 200),
);
