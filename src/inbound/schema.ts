// The inbound events API (epilot's v3 contract) and event status.
import { z } from "@hono/zod-openapi";
import { SLUG_PATTERN } from "../integrations/schema";

export const DEDUPLICATION_ID = /^[a-zA-Z0-9_-]{1,255}$/;
/** Prefixes of the deduplication ids the signed-webhook route derives (src/inbound/service.ts webhookDeduplicationId). */
export const WEBHOOK_DEDUP_PREFIXES = ["xsig-", "whsw-"] as const;

export const InboundEvent = z
  .object({
    use_case_slug: z.string().max(128).regex(SLUG_PATTERN).optional(),
    event_name: z.string().min(1).max(255).optional(),
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
    events: z.array(z.unknown()).min(1).max(100).openapi({ description: "1..100 InboundEvent objects, each validated on its own" }),
  })
  .openapi("InboundEventsBatch");
export type EventsBatch = z.infer<typeof EventsBatch>;

export const EventResultStatus = z.enum(["success", "error", "skipped", "ignored"]);

export const EventsBatchResult = z
  .object({
    results: z.array(z.object({ event_id: z.string(), status: EventResultStatus, message: z.string() })),
  })
  .openapi("InboundEventsResult");
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
