// Monitoring queries and answers.
import { z } from "@hono/zod-openapi";
import { ErrorCategory } from "../inbound/schema";
import { NextCursor } from "../platform/pagination";

export const EventQuery = z
  .object({
    event_id: z.string().max(64).optional(),
    correlation_id: z.string().max(255).optional(),
    event_name: z.string().max(255).optional(),
    use_case: z.string().max(128).optional().openapi({ description: "Use case slug" }),
    direction: z.enum(["inbound", "outbound", "file"]).optional().openapi({ description: "inbound events, outbound deliveries or file-proxy downloads" }),
    status: z.string().max(32).optional(),
    error_category: ErrorCategory.optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    limit: z.number().int().min(1).max(100).default(50),
    cursor: z.string().max(200).optional(),
  })
  .strict()
  .openapi("EventQuery");
export type EventQuery = z.infer<typeof EventQuery>;

/** What only a file-proxy download has. */
export const FileDownloadDetails = z
  .object({
    params: z.record(z.string(), z.string()).openapi({ description: "The download's query parameters, secrets masked" }),
    bytes: z.number().int().openapi({ description: "Bytes streamed to the client" }),
    archive_status: z.number().int().nullable().openapi({ description: "The archive's last HTTP status; null when it was never reached" }),
    http_status: z.number().int().openapi({ description: "What the proxy answered the client" }),
    range: z.string().nullable().openapi({ description: "The Range header asked, if any" }),
  })
  .openapi("FileDownloadDetails");

export const MonitoredEvent = z
  .object({
    event_id: z.string(),
    direction: z.enum(["inbound", "outbound", "file"]),
    event_name: z.string().nullable(),
    use_case_slug: z.string().nullable(),
    status: z.string(),
    error_category: z.string().nullable(),
    correlation_id: z.string().nullable(),
    received_at: z.string(),
    completed_at: z.string().nullable(),
    processing_duration_ms: z.number().nullable(),
    attempts: z.number().int(),
    last_error: z.string().nullable(),
    ack_status: z.string().nullable(),
    replay_of: z.string().nullable(),
    file: FileDownloadDetails.nullable().openapi({ description: "Set on file-proxy downloads (direction `file`), null on the other directions" }),
  })
  .openapi("MonitoredEvent");

export const EventPage = z.object({ events: z.array(MonitoredEvent), next_cursor: NextCursor }).openapi("MonitoredEventPage");

export const ReplayRequest = z.object({ event_ids: z.array(z.string().min(1).max(64)).min(1).max(100) }).openapi("ReplayRequest");
export const ReplayResult = z
  .object({
    replayed: z.number().int(),
    results: z.array(z.object({ event_id: z.string(), status: z.string(), replay_event_id: z.string().nullable(), message: z.string() })),
  })
  .openapi("ReplayResult");

const Percentiles = z.object({ count: z.number().int(), p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() });
export const Stats = z
  .object({
    window: z.enum(["1h", "24h", "7d"]),
    since: z.string(),
    counts: z.array(z.object({ direction: z.string(), use_case: z.string().nullable(), status: z.string(), count: z.number().int() })),
    processing_ms: z.object({ inbound: Percentiles, outbound: Percentiles, file: Percentiles }),
    acks: z.object({ pending: z.number().int(), timeout: z.number().int(), processed: z.number().int(), failed: z.number().int() }),
  })
  .openapi("MonitoringStats");

export const Trace = z.object({ correlation_id: z.string(), events: z.array(MonitoredEvent) }).openapi("Trace");

export const AuditPage = z
  .object({
    entries: z.array(z.object({ id: z.string(), actor: z.string(), action: z.string(), target: z.string().nullable(), details: z.record(z.string(), z.unknown()), at: z.string() })),
    next_cursor: NextCursor,
  })
  .openapi("AuditLogPage");
