// Outbound delivery: business events, deliveries, the DLQ, poll and ACKs, endpoints. The use-case
// configuration itself lives with integrations (src/integrations/outbound-configuration.ts).
import { z } from "@hono/zod-openapi";
export type { CoreEventEnvelope } from "../platform/core-events";
export {
  OutboundConfiguration,
  OutboundMapping,
  PollDelivery,
  WebhookAuth,
  WebhookDelivery,
} from "../integrations/outbound-configuration";
import { NextCursor } from "../platform/pagination";
import { Metadata } from "../webhook-configs/schema";

export const BusinessEvent = z
  .object({
    event_name: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/).openapi({ example: "MeterReadingAdded" }),
    event_version: z.string().max(32).default("1"),
    correlation_id: z.string().min(1).max(255).optional(),
    payload: z.record(z.string(), z.unknown()).default({}).refine((p) => !Object.keys(p).some((k) => k.startsWith("_")), "payload keys must not start with '_' (reserved for the envelope)"),
  })
  .openapi("BusinessEvent");

export const EmittedEvent = z.object({ event_id: z.string(), ack_id: z.string(), event_name: z.string() }).openapi("EmittedEvent");

export const Delivery = z
  .object({
    id: z.string(),
    use_case_id: z.string(),
    use_case_slug: z.string(),
    mapping_id: z.string(),
    type: z.enum(["webhook", "poll"]),
    event_id: z.string(),
    event_name: z.string(),
    correlation_id: z.string().nullable(),
    status: z.enum(["pending", "delivered", "failed", "dead_lettered"]),
    ack_id: z.string().nullable(),
    ack_status: z.string().nullable(),
    attempts: z.number().int(),
    last_error: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    created_at: z.string(),
    completed_at: z.string().nullable(),
    payload: z.unknown(),
  })
  .openapi("Delivery");
export type Delivery = z.infer<typeof Delivery>;
export const DeliveryList = z.object({ deliveries: z.array(Delivery), next_cursor: NextCursor }).openapi("DeliveryList");

export const Redrive = z
  .object({
    ids: z.array(z.string().min(1).max(64)).min(1).max(100).optional().openapi({ description: "These dead letters; without ids, the next page of all of them" }),
    cursor: z.string().max(200).optional().openapi({ description: "Without ids: `next_cursor` of the previous redrive, to continue after it" }),
  })
  .refine((r) => !(r.ids && r.cursor), { message: "give ids or cursor, not both", path: ["cursor"] })
  .openapi("Redrive");

export const RedriveResult = z
  .object({
    redriven: z.number().int(),
    ids: z.array(z.string()),
    has_more: z.boolean().optional().openapi({ description: "Without ids (at most 100 per call): whether dead letters remain after this page" }),
    next_cursor: NextCursor.optional(),
  })
  .openapi("RedriveResult");

export const PollRequest = z.object({ limit: z.number().int().min(1).max(100).default(10) }).openapi("PollRequest");
export const PolledMessage = z.object({
  id: z.string(),
  lease_token: z.string(),
  use_case_id: z.string(),
  event_name: z.string(),
  event_id: z.string(),
  payload: z.unknown(),
  enqueued_at: z.string(),
});
export const PollResult = z
  .object({ messages: z.array(PolledMessage), visibility_timeout_seconds: z.number().int(), has_more: z.boolean() })
  .openapi("PollResult");
export const AckRequest = z
  .object({ acks: z.array(z.object({ id: z.string().min(1).max(64), lease_token: z.string().min(1).max(128) })).min(1).max(100) })
  .openapi("PollAckRequest");
export const AckResult = z
  .object({ results: z.array(z.object({ id: z.string(), status: z.enum(["acked", "stale_lease", "not_found"]) })) })
  .openapi("PollAckResult");

export const Acknowledgement = z
  .object({ ack_id: z.string().min(1).max(255), status: z.enum(["processed", "failed"]).default("processed"), message: z.string().max(2000).optional() })
  .openapi("Acknowledgement");

export const EndpointSecret = z
  .object({ endpoint_id: z.string(), secret: z.string(), previous_secret_valid_until: z.string().nullable() })
  .openapi("EndpointSecret");
export const Endpoint = z
  .object({
    id: z.string(),
    use_case_id: z.string(),
    mapping_id: z.string(),
    url: z.string().nullable().openapi({ description: "The inline url; null when the mapping delivers through a webhook configuration (webhook_id)" }),
    webhook_id: z.string().optional().openapi({ description: "The webhook configuration the mapping delivers through" }),
    state: z.enum(["active", "paused", "disabled"]),
    has_secret: z.boolean(),
    consecutive_failures: z.number().int(),
    paused_until: z.string().nullable(),
    disabled_reason: z.string().nullable(),
  })
  .openapi("OutboundEndpoint");

/** acknowledgeTracking's answer: epilot's `message`, with erp-edge's fields beside it. */
export const AcknowledgementResult = z
  .object({
    message: z.string(),
    ack_id: z.string(),
    status: z.string().openapi({ description: "erp-edge extension: the ACK status now recorded" }),
    direction: z.enum(["inbound", "outbound"]).openapi({ description: "erp-edge extension" }),
    acknowledged: z.number().int().openapi({ description: "erp-edge extension: rows this ACK changed" }),
  })
  .openapi("AcknowledgementResult");

// ---- the deliveries of webhook configurations (epilot's Webhooks API) -----------------------------


export const WebhookEvent = z
  .object({
    event_id: z.string(),
    org_id: z.string(),
    webhook_config_id: z.string(),
    url: z.string().optional(),
    created_at: z.string(),
    event_name: z.string(),
    http_response: z.object({ status_code: z.number().int().optional(), message: z.string().optional() }).optional(),
    metadata: Metadata,
    status: z.enum(["succeeded", "failed", "in_progress", "skipped"]),
    http_method: z.enum(["GET", "POST", "PUT"]).optional(),
    payload: z.string().openapi({ description: "The body sent, as text" }),
    retry_attempt: z.number().int(),
    delivery_status: z.enum(["pending", "delivered", "failed", "dead_lettered"]).openapi({ description: "erp-edge extension: the delivery's own status" }),
    attempts: z.number().int().openapi({ description: "erp-edge extension" }),
    use_case_id: z.string().optional().openapi({ description: "erp-edge extension: the outbound use case whose mapping sent it (absent for a trigger)" }),
    mapping_id: z.string().optional().openapi({ description: "erp-edge extension" }),
    ack_status: z.string().nullable().openapi({ description: "erp-edge extension" }),
  })
  .openapi("WebhookEvent");
export type WebhookEvent = z.infer<typeof WebhookEvent>;

const EventCursor = z.object({ created_at: z.string().max(64).optional(), event_id: z.string().max(64).optional() });
const IsoTime = z.string().datetime({ offset: true });

export const WebhookEventSearch = z
  .object({
    limit: z.number().int().min(1).max(25).default(25),
    cursor: EventCursor.optional(),
    timestamp: z.object({ from: IsoTime.optional(), to: IsoTime.optional() }).optional(),
    event_id: z.string().min(1).max(64).optional(),
    status: z.enum(["succeeded", "failed", "skipped"]).optional(),
  })
  .openapi("WebhookEventSearch");
export type WebhookEventSearch = z.infer<typeof WebhookEventSearch>;

export const WebhookEventList = z
  .object({ data: z.array(WebhookEvent), next_cursor: EventCursor.nullable(), has_more: z.boolean() })
  .openapi("WebhookEventList");

export const WebhookEventListV1 = z.object({ data: z.array(WebhookEvent), cursor: z.string().optional() }).openapi("WebhookEventListV1");

export const ExecutionPayload = z.object({ metadata: Metadata }).passthrough().openapi("WebhookExecutionPayload");

export const TriggerWebhookResult = z
  .object({
    event_id: z.string(),
    status_code: z.string().optional(),
    message: z.string().optional(),
    body: z.record(z.string(), z.unknown()).optional(),
    code: z.string().optional(),
    status: z.enum(["succeeded", "failed"]).optional(),
    start_date: z.string().optional(),
    end_date: z.string().optional(),
  })
  .openapi("TriggerWebhookResult");

export const BatchReplayRequest = z.object({ eventIds: z.array(z.string().min(1).max(64)).min(1).max(100) }).openapi("WebhookBatchReplayRequest");

export const TestOAuthResult = z
  .object({ success: z.boolean(), expires_in: z.number().optional(), token_type: z.string().optional(), message: z.string() })
  .openapi("WebhookTestOAuthResult");
