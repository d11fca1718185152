// The inbound events API (epilot's v3 contract, and its deprecated v1 and v2 forms), the ERP trigger,
// and event status.
import { z } from "@hono/zod-openapi";
import { SLUG_PATTERN } from "../integrations/schema";

export const DEDUPLICATION_ID = /^[a-zA-Z0-9_-]{1,255}$/;
/** Prefixes of the deduplication ids the signed-webhook route derives (src/inbound/service.ts webhookDeduplicationId). */
export const WEBHOOK_DEDUP_PREFIXES = ["xsig-", "whsw-"] as const;

export const InboundEvent = z
  .object({
    use_case_slug: z
      .string()
      .max(255)
      .regex(SLUG_PATTERN)
      .optional()
      .openapi({ description: "The use case to route to; takes precedence over event_name" }),
    event_name: z.string().min(1).max(255).optional().openapi({
      description: "Routed to the enabled inbound use case listing it in configuration.event_names, else the one of that name, else of that slug",
    }),
    timestamp: z.iso.datetime({ offset: true }).openapi({ description: "When the change happened in the ERP (ISO 8601)" }),
    format: z.enum(["json", "xml"]).default("json"),
    payload: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]),
    deduplication_id: z
      .string()
      .regex(DEDUPLICATION_ID, "1..255 of letters, digits, '_' and '-'")
      .optional()
      .openapi({ description: "Idempotency within 24 hours per integration; ids starting 'xsig-' or 'whsw-' are reserved for signed webhooks" }),
    group_id: z.string().min(1).max(128).optional(),
    correlation_id: z.string().min(1).max(255).optional(),
  })
  .refine((e) => e.use_case_slug !== undefined || e.event_name !== undefined, {
    message: "needs use_case_slug or event_name",
    path: ["use_case_slug"],
  })
  .openapi("InboundEvent");
export type InboundEvent = z.infer<typeof InboundEvent>;

export const EventsBatch = z
  .object({
    integration_id: z.string().min(1).max(64),
    correlation_id: z.string().min(1).max(255).optional(),
    group_id: z.string().min(1).max(128).optional(),
    // Validated one by one, so that one bad event does not refuse its batch.
    events: z.array(z.unknown()).max(100).openapi({ description: "Up to 100 InboundEvent objects, each validated on its own (an empty batch stores nothing and answers no results, as epilot allows)" }),
  })
  .openapi("InboundEventsBatch");
export type EventsBatch = z.infer<typeof EventsBatch>;

// ---- epilot's deprecated v1 and v2 event APIs ---------------------------------------------------

/**
 * An event of the v1 and v2 APIs: v3's with `object_type` where v3 has `event_name`, and an
 * `event_type` that epilot's own v3 dropped as unused. Converted to a v3 event (legacyEventToV3).
 */
export const ErpEventV1 = z
  .object({
    event_type: z.enum(["CREATE", "UPDATE", "DELETE"]).openapi({ description: "Validated, then not used (epilot's v3 drops it as unused)" }),
    object_type: z.string().min(1).max(255).openapi({ description: "The event name: routed like v3's event_name" }),
    timestamp: z.string(),
    format: z.enum(["json", "xml"]).default("json"),
    payload: z.unknown(),
    deduplication_id: z.string().optional(),
  })
  .openapi("ErpEvent");

const legacyEvents = z.array(z.unknown()).max(100).openapi({ description: "Up to 100 ErpEvent objects, each validated on its own" });

/** POST /v2/erp/updates/events (deprecated by epilot, still served). */
export const ErpUpdatesEventsV2Request = z
  .object({
    integration_id: z.string().min(1).max(64),
    correlation_id: z.string().min(1).max(255).optional(),
    group_id: z.string().min(1).max(128).optional(),
    events: legacyEvents,
  })
  .openapi("ErpUpdatesEventsV2Request");
export type ErpUpdatesEventsV2Request = z.infer<typeof ErpUpdatesEventsV2Request>;

/** POST /v1/erp/updates/events (deprecated by epilot, still served): the integration is found by its app mapping. */
export const ErpUpdatesEventsV1Request = z
  .object({
    app_id: z.uuid(),
    component_id: z.uuid(),
    meta: z
      .object({ correlation_id: z.string().min(1).max(255).optional() })
      .loose()
      .openapi({ description: "Metadata of the request; its correlation_id is every event's" }),
    events: legacyEvents,
  })
  .openapi("ErpUpdatesEventsV1Request");
export type ErpUpdatesEventsV1Request = z.infer<typeof ErpUpdatesEventsV1Request>;

// ---- POST /v1/erp/trigger -----------------------------------------------------------------------

/** What an automation's "trigger ERP" action posts: `webhook_id` names what to run. */
export const TriggerErpActionRequest = z
  .object({
    execution_id: z.string().min(1).max(255),
    org_id: z.string().min(1).max(255),
    webhook_id: z.string().min(1).max(255).openapi({ description: "The pull use case to run (its id)" }),
    flow_id: z.string().min(1).max(255),
    created_at: z.iso.datetime({ offset: true }),
    action_id: z.string().min(1).max(255),
    flow_action_id: z.string().min(1).max(255),
    flow_name: z.string().max(1000),
    activity_id: z.string().min(1).max(255),
    entity_id: z.string().min(1).max(255),
  })
  .openapi("TriggerErpActionRequest");
export type TriggerErpActionRequest = z.infer<typeof TriggerErpActionRequest>;

export const TriggerWebhookResp = z
  .object({
    status: z.enum(["succeeded", "failed"]),
    status_code: z.string().openapi({ description: "The HTTP status the run amounts to, as a string (epilot's shape)" }),
    message: z.string(),
    code: z.string().optional().openapi({ description: "The error code of a failed run" }),
    body: z.record(z.string(), z.unknown()).openapi({ description: "The pull run: events received, accepted and refused, per-event results" }),
    start_date: z.string(),
    end_date: z.string(),
    event_id: z.string().openapi({ description: "The run's id" }),
  })
  .openapi("TriggerWebhookResp");
export type TriggerWebhookResp = z.infer<typeof TriggerWebhookResp>;

export const EventResultStatus = z.enum(["success", "error", "skipped", "ignored"]);

export const EventsBatchResult = z
  .object({
    results: z.array(z.object({ event_id: z.string(), status: EventResultStatus, message: z.string() })),
  })
  .openapi("InboundEventsResult", { description: "epilot's ERPUpdatesResponse" });
export type EventsBatchResult = z.infer<typeof EventsBatchResult>;

export const EventStatus = z.enum(["accepted", "processing", "done", "partial", "error", "ignored"]);
export type EventStatus = z.infer<typeof EventStatus>;
export const ErrorCategory = z.enum(["validation", "configuration", "downstream", "timeout", "system"]);
export type ErrorCategory = z.infer<typeof ErrorCategory>;

export const EventEntityResult = z.object({
  slug: z.string(),
  _id: z.string(),
  operation: z.string(),
  unique_ids: z.record(z.string(), z.unknown()),
});
export type EventEntityResult = z.infer<typeof EventEntityResult>;

export const EventError = z.object({ code: z.string(), message: z.string() }).loose();
export type EventError = z.infer<typeof EventError>;

export const InboundEventStatus = z
  .object({
    event_id: z.string(),
    status: EventStatus,
    integration_id: z.string(),
    use_case_slug: z.string().nullable(),
    event_name: z.string().nullable(),
    correlation_id: z.string().nullable(),
    group_id: z.string().nullable(),
    deduplication_id: z.string().nullable(),
    entities: z.array(EventEntityResult),
    errors: z.array(EventError),
    warnings: z.array(z.record(z.string(), z.unknown())),
    error_category: ErrorCategory.nullable(),
    attempts: z.number().int(),
    received_at: z.string(),
    completed_at: z.string().nullable(),
    processing_duration_ms: z.number().int().nullable(),
  })
  .openapi("InboundEventStatus");
export type InboundEventStatus = z.infer<typeof InboundEventStatus>;

export const TERMINAL_STATUSES: readonly EventStatus[] = ["done", "partial", "error", "ignored"];
