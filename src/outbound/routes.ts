// Outbound routes: business events, endpoints and secrets, DLQ, poll delivery, ACKs.
import { createRoute, z } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody, pathParams } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import {
  Acknowledgement,
  AcknowledgementResult,
  BatchReplayRequest,
  ExecutionPayload,
  TestOAuthResult,
  TriggerWebhookResult,
  WebhookEvent,
  WebhookEventList,
  WebhookEventListV1,
  WebhookEventSearch,
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
import { TriggerErpActionRequest, TriggerWebhookResp } from "../inbound/schema";
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
    responses: { 200: json(AcknowledgementResult, "Recorded"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.acknowledge(c.env, callerTenant(c.get("caller")), c.req.valid("json")), 200),
);

// ---- webhook configurations: their deliveries (epilot's Webhooks API) ------------------------------
// The configurations themselves are src/webhook-configs; what touches the deliveries made through
// them is here, with the delivery machinery. Layout of /v1/webhooks/...: docs/webhook-configs.md.

const webhookTags = ["Webhook configurations"];
const ConfigParams = pathParams("configId");
const ConfigEventParams = pathParams("configId", "eventId");
const configsRead = requireScope("integrations:read");
const configsWrite = requireScope("integrations:write");

outboundRoutes.openapi(
  createRoute({
    method: "delete", path: "/v1/webhooks/configs/{configId}", tags: webhookTags, security, middleware: [configsWrite] as const,
    summary: "Delete a webhook configuration (mappings naming it then dead-letter their deliveries, saying so)",
    request: { params: ConfigParams },
    responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    await service.deleteWebhookConfig(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId);
    return c.body(null, 204);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/webhooks/configs/{configId}/test-oauth", tags: webhookTags, security, middleware: [configsWrite] as const,
    summary: "Try the configuration's OAuth client-credentials exchange (nothing is sent to its url)",
    request: { params: ConfigParams },
    responses: { 200: json(TestOAuthResult, "Token exchange succeeded"), ...errors(400, 401, 403, 404, 429, 500) },
  }),
  async (c) => c.json(await service.testOAuth(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId), 200),
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/webhooks/configs/{configId}/trigger", tags: webhookTags, security, middleware: [write] as const,
    summary: "Send a payload through the configuration: queued with its retry policy, or (sync=true) once now with the receiver's answer",
    request: { params: ConfigParams, query: z.object({ sync: z.enum(["true", "false"]).optional() }), ...jsonBody(ExecutionPayload) },
    responses: { 200: json(TriggerWebhookResult, "Triggered"), ...errors(400, 401, 403, 404, 413, 415, 429) },
  }),
  async (c) => {
    const body = c.req.valid("json") as { metadata: Record<string, unknown> } & Record<string, unknown>;
    return c.json(await service.triggerWebhook(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId, body, c.req.valid("query").sync === "true"), 200);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/webhooks/configs/{configId}/events", tags: webhookTags, security, middleware: [configsRead] as const,
    summary: "The configuration's events, newest first (deprecated by epilot: use POST /v2/webhooks/configs/{configId}/events)",
    deprecated: true,
    request: { params: ConfigParams, query: z.object({ status: z.enum(["succeeded", "failed", "in_progress"]).optional(), cursor: z.string().max(200).optional() }) },
    responses: { 200: json(WebhookEventListV1, "A page of events"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.listConfigEvents(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId, c.req.valid("query")), 200),
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v2/webhooks/configs/{configId}/events", tags: webhookTags, security, middleware: [configsRead] as const,
    summary: "The configuration's events, newest first, filtered by status, time range or id",
    request: { params: ConfigParams, body: { required: false, content: { "application/json": { schema: WebhookEventSearch } } } },
    responses: { 200: json(WebhookEventList, "A page of events"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => {
    // The body is optional: none means the first page of everything.
    // Without a body the validator may hand over `{}` unvalidated, so the defaults are applied here.
    const search = WebhookEventSearch.parse((c.req.valid("json") as WebhookEventSearch | undefined) ?? {});
    return c.json(await service.searchConfigEvents(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId, search), 200);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/webhooks/configs/{configId}/events/replay-batch", tags: webhookTags, security, middleware: [write] as const,
    summary: "Send events again (up to 100); answers the ids enqueued",
    request: { params: ConfigParams, ...jsonBody(BatchReplayRequest) },
    responses: { 202: json(z.object({ replayed_event_ids: z.array(z.string()) }), "Enqueued"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.replayConfigEvents(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId, c.req.valid("json").eventIds), 202),
);

outboundRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/webhooks/configs/{configId}/events/{eventId}", tags: webhookTags, security, middleware: [configsRead] as const,
    summary: "One of the configuration's events",
    request: { params: ConfigEventParams },
    responses: { 200: json(WebhookEvent, "The event"), ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    const { configId, eventId } = c.req.valid("param");
    return c.json(await service.getConfigEvent(c.env, callerTenant(c.get("caller")), configId, eventId), 200);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/webhooks/configs/{configId}/events/{eventId}/replay", tags: webhookTags, security, middleware: [write] as const,
    summary: "Send an event again, as a new delivery through today's configuration",
    request: { params: ConfigEventParams },
    responses: { 204: { description: "Enqueued" }, ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    const { configId, eventId } = c.req.valid("param");
    await service.replayConfigEvent(c.env, callerTenant(c.get("caller")), configId, eventId);
    return c.body(null, 204);
  },
);

outboundRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/erp/trigger", tags: ["ACK tracking"], security, middleware: [requireScope("integrations:write")] as const,
    operationId: "triggerErp",
    summary: "An automation's ERP trigger: sends the activity through the webhook configuration webhook_id names (or runs the pull use case it names, an erp-edge extension) and answers how it went",
    request: jsonBody(TriggerErpActionRequest),
    responses: { 200: json(TriggerWebhookResp, "Sent or run: succeeded, or failed with the receiver's status or the run's code"), ...errors(400, 401, 403, 413, 415, 429) },
  }),
  async (c) => c.json(await service.triggerErp(c.env, callerTenant(c.get("caller")), c.req.valid("json")), 200),
);
