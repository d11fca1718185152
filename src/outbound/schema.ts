// Outbound use cases: which core events go to the ERP, mapped how, delivered how.
import { z } from "@hono/zod-openapi";
export type { CoreEventEnvelope } from "../platform/core-events";
import { assertParses, ExpressionError } from "../mapping/expression";
import { NextCursor } from "../platform/pagination";
import { parseDestination } from "./destination";

const Expression = z.string().min(1).max(50_000);
const EnvRef = z.string().regex(/^\{\{env\.[A-Za-z_][A-Za-z0-9_.-]*\}\}$/, "an environment reference like {{env.API_KEY}}");
const SecretValue = z.union([EnvRef, z.string().min(1).max(1000)]).openapi({ description: "A value, or {{env.<key>}} to use an environment value (SecretString for secrets)" });

/**
 * A URL erp-edge will call: http(s), no user:pass@. Whether its host may be reached depends on the
 * deployment's allow-list and DNS, so that is checked where configurations are saved
 * (assertSafeOutboundConfiguration) and again before every request.
 */
const DestinationUrl = z
  .string()
  .max(2048)
  .superRefine((url, ctx) => {
    const parsed = parseDestination(url);
    if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed, params: { reason: "unsafe_destination" } });
  })
  .openapi({ format: "uri", description: "http or https; no credentials in the URL; loopback, private, link-local, metadata and local names are refused" });

export const WebhookAuth = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }),
  z.object({ type: z.literal("basic"), username: SecretValue, password: SecretValue }),
  z.object({ type: z.literal("api_key"), header: z.string().min(1).max(128).default("x-api-key"), value: SecretValue }),
  z.object({ type: z.literal("oauth2_client_credentials"), token_url: DestinationUrl, client_id: SecretValue, client_secret: SecretValue, scope: z.string().max(1000).optional() }),
]);
export type WebhookAuth = z.infer<typeof WebhookAuth>;

export const WebhookDelivery = z
  .object({
    type: z.literal("webhook"),
    url: DestinationUrl,
    auth: WebhookAuth.optional(),
    max_attempts: z.number().int().min(1).max(100).default(8),
    rate_limit_per_second: z.number().min(0.1).max(1000).optional(),
    ordered: z.boolean().default(false),
  })
  .openapi("WebhookDelivery");
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const PollDelivery = z
  .object({
    type: z.literal("poll"),
    retention_days: z.number().int().min(1).max(90).default(7),
    max_delivery_attempts: z.number().int().min(1).max(100).default(10),
    poison_policy: z.enum(["dead_letter", "block"]).default("dead_letter"),
  })
  .openapi("PollDelivery");
export type PollDelivery = z.infer<typeof PollDelivery>;

export const OutboundMapping = z
  .object({
    id: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/),
    name: z.string().min(1).max(255),
    jsonata_expression: Expression.openapi({ description: "Maps the core event envelope to the body sent to the ERP" }),
    enabled: z.boolean().default(true),
    delivery: z.discriminatedUnion("type", [WebhookDelivery, PollDelivery]),
  })
  .openapi("OutboundMapping");
export type OutboundMapping = z.infer<typeof OutboundMapping>;

export const OutboundConfiguration = z
  .object({
    event_catalog_event: z.string().min(1).max(255).openapi({ description: "Core event name, e.g. contact.updated or MeterReadingAdded" }),
    event_filter: Expression.optional().openapi({ description: "JSONata predicate over the envelope" }),
    ack_tracking: z.enum(["on", "off"]).default("off"),
    mappings: z.array(OutboundMapping).min(1).max(20),
  })
  .superRefine((config, ctx) => {
    const check = (path: (string | number)[], text: string | undefined) => {
      if (text === undefined) return;
      try {
        assertParses(text);
      } catch (err) {
        if (!(err instanceof ExpressionError)) throw err;
        ctx.addIssue({ code: "custom", path, message: `JSONata ${err.code} at position ${err.position ?? 0}: ${err.message}`, params: { jsonata_code: err.code, position: err.position ?? 0 } });
      }
    };
    check(["event_filter"], config.event_filter);
    const ids = new Set<string>();
    config.mappings.forEach((m, i) => {
      check(["mappings", i, "jsonata_expression"], m.jsonata_expression);
      if (ids.has(m.id)) ctx.addIssue({ code: "custom", path: ["mappings", i, "id"], message: `duplicate mapping id '${m.id}'` });
      ids.add(m.id);
    });
  })
  .openapi("OutboundConfiguration");
export type OutboundConfiguration = z.infer<typeof OutboundConfiguration>;

/** The envelope every core event travels in. */
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
  .object({ ack_id: z.string().min(1).max(64), status: z.enum(["processed", "failed"]).default("processed"), message: z.string().max(2000).optional() })
  .openapi("Acknowledgement");

export const EndpointSecret = z
  .object({ endpoint_id: z.string(), secret: z.string(), previous_secret_valid_until: z.string().nullable() })
  .openapi("EndpointSecret");
export const Endpoint = z
  .object({
    id: z.string(),
    use_case_id: z.string(),
    mapping_id: z.string(),
    url: z.string(),
    state: z.enum(["active", "paused", "disabled"]),
    has_secret: z.boolean(),
    consecutive_failures: z.number().int(),
    paused_until: z.string().nullable(),
    disabled_reason: z.string().nullable(),
  })
  .openapi("OutboundEndpoint");
