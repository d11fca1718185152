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

// ---- epilot's monitoring contract (erp-integration.json 0.58.0) ---------------------------------
// The shapes epilot's clients send and read, over the same events, deliveries and downloads as the
// erp-edge views above. Requests are not strict (epilot's schemas allow extra fields).

const DateTime = z.iso.datetime({ offset: true });
const Limit = (max: number, fallback: number) => z.number().int().min(1).max(max).default(fallback);
export const EpilotEventType = z.enum(["CREATE", "UPDATE", "DELETE"]);
export const Level = z.enum(["success", "error", "skipped", "warning"]);
export type Level = z.infer<typeof Level>;
export const UseCaseKind = z.enum(["inbound", "outbound", "file_proxy", "managed_call", "secure_proxy"]);
export type UseCaseKind = z.infer<typeof UseCaseKind>;
export const Interval = z.enum(["5m", "10m", "30m", "1h", "3h", "1d"]);
export type Interval = z.infer<typeof Interval>;
const EpilotErrorCategory = z.enum(["validation", "configuration", "downstream_api", "timeout", "system"]);

/** A cursor object of epilot's pages: the last item's time and id (only the id positions the page: ids sort by time). */
const cursorOf = <T extends string, I extends string>(time: T, id: I) =>
  z.object({ [time]: DateTime.optional(), [id]: z.string().min(1).max(64).optional() } as unknown as Record<T | I, z.ZodOptional<z.ZodString>>);

export const EventCursor = cursorOf("event_time", "event_id").openapi("ErpEventCursor");

/** POST /v1/integrations/{integrationId}/events: erp-edge's filters and epilot's (event_type, object_type, an object cursor). */
export const EventsQuery = EventQuery.extend({
  event_type: EpilotEventType.optional().openapi({ description: "epilot's filter: erp-edge events carry no type of their own and count as UPDATE" }),
  object_type: z.string().max(255).optional().openapi({ description: "epilot's name for event_name" }),
  cursor: z.union([z.string().max(200), EventCursor]).optional().openapi({ description: "`next_cursor` of the previous page (the object; the string cursors erp-edge issued before are still read)" }),
})
  .strict()
  .openapi("QueryEventsRequest");
export type EventsQuery = z.infer<typeof EventsQuery>;

export const ErpEvent = z
  .object({
    event_type: EpilotEventType,
    object_type: z.string(),
    timestamp: z.string().openapi({ format: "date-time" }),
    format: z.enum(["json", "xml"]),
    payload: z.union([z.string(), z.record(z.string(), z.unknown())]),
    deduplication_id: z.string().optional(),
  })
  .extend(MonitoredEvent.shape)
  .openapi("QueriedErpEvent", { description: "epilot's ErpEvent, with erp-edge's monitored-event fields beside it" });

export const EventsPage = z
  .object({
    data: z.array(ErpEvent).openapi({ description: "epilot's view: the page's inbound (ERP) events with their payloads" }),
    has_more: z.boolean(),
    next_cursor: EventCursor.nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page" }),
    events: z.array(MonitoredEvent).openapi({ description: "erp-edge's view: every direction of the page" }),
  })
  .openapi("QueryEventsResponse");

export const ReplayEventsResult = ReplayResult.extend({ event_ids: z.array(z.string()).openapi({ description: "The ids whose replay was requested" }) }).openapi("ReplayEventsResponse");

const InboundCursor = cursorOf("completed_at", "event_id");
export const InboundMonitoringQuery = z
  .object({
    use_case_id: z.string().max(64).optional(),
    event_type: z.enum(["CREATE", "UPDATE", "DELETE", "TRIGGER"]).optional(),
    sync_type: z.enum(["entity", "meter_reading", "webhook", "api_deprecation"]).optional(),
    status: Level.optional(),
    error_category: EpilotErrorCategory.optional(),
    correlation_id: z.string().max(255).optional(),
    object_type: z.string().max(255).optional(),
    event_name: z.string().max(255).optional(),
    event_id: z.string().max(64).optional(),
    from_date: DateTime.optional(),
    to_date: DateTime.optional(),
    limit: Limit(100, 50),
    cursor: InboundCursor.optional(),
  })
  .openapi("QueryInboundMonitoringEventsRequest");
export type InboundMonitoringQuery = z.infer<typeof InboundMonitoringQuery>;

export const InboundMonitoringEvent = z
  .object({
    org_id: z.string(),
    event_id: z.string(),
    correlation_id: z.string().nullable(),
    integration_id: z.string().nullable(),
    use_case_id: z.string().nullable(),
    event_type: z.enum(["CREATE", "UPDATE", "DELETE", "TRIGGER"]),
    object_type: z.string(),
    sync_type: z.enum(["entity", "meter_reading", "webhook", "api_deprecation"]),
    status: Level,
    error_code: z.string().nullable(),
    error_message: z.string().nullable(),
    error_category: EpilotErrorCategory.nullable(),
    processing_duration_ms: z.number().int().nullable(),
    received_at: z.string(),
    completed_at: z.string(),
  })
  .openapi("InboundMonitoringEvent");
export const InboundMonitoringPage = z
  .object({ data: z.array(InboundMonitoringEvent), next_cursor: InboundCursor.nullable(), has_more: z.boolean() })
  .openapi("QueryInboundMonitoringEventsResponse");

const OutboundCursor = cursorOf("created_at", "event_id");
export const OutboundMonitoringQuery = z
  .object({
    event_name: z.string().max(255).optional(),
    status: z.enum(["succeeded", "failed", "pending"]).optional(),
    webhook_config_id: z.string().max(200).optional(),
    from_date: DateTime.optional(),
    to_date: DateTime.optional(),
    limit: Limit(100, 50),
    cursor: OutboundCursor.optional(),
  })
  .openapi("QueryOutboundMonitoringEventsRequest");
export type OutboundMonitoringQuery = z.infer<typeof OutboundMonitoringQuery>;

export const OutboundMonitoringEvent = z
  .object({
    org_id: z.string(),
    event_id: z.string(),
    event_name: z.string(),
    status: z.enum(["succeeded", "failed", "pending"]),
    url: z.string().optional(),
    http_method: z.string().optional(),
    webhook_config_id: z.string().optional(),
    metadata: z.record(z.string(), z.unknown()),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("OutboundMonitoringEvent");
export const OutboundMonitoringPage = z
  .object({ data: z.array(OutboundMonitoringEvent), next_cursor: OutboundCursor.nullable(), has_more: z.boolean() })
  .openapi("QueryOutboundMonitoringEventsResponse");

const StatsRange = { from_date: DateTime.optional(), to_date: DateTime.optional() };
export const StatsQuery = z
  .object({
    ...StatsRange,
    inbound_group_by: z.array(z.enum(["use_case_id", "sync_type", "status", "error_category", "object_type", "event_name", "date"])).max(7).optional(),
    outbound_group_by: z.array(z.enum(["event_name", "status", "webhook_config_id", "date"])).max(4).optional(),
  })
  .openapi("GetMonitoringStatsRequest");
export type StatsQuery = z.infer<typeof StatsQuery>;

const Breakdown = z.array(z.record(z.string(), z.unknown()));
/** How many rows the figures were computed from, and whether a cap cut them short (see STATS_ROW_CAP). */
const Coverage = { rows_examined: z.number().int(), truncated: z.boolean() };
const Sparse = z.boolean().openapi({ description: "erp-edge extension: true when the range holds more than 5,000 buckets, so only the buckets holding events are listed" });
export const EpilotStats = z
  .object({
    inbound: z.object({
      total_events: z.number().int(),
      total_correlations: z.number().int(),
      success_count: z.number().int(),
      error_count: z.number().int(),
      skipped_count: z.number().int(),
      warning_count: z.number().int(),
      success_rate: z.number(),
      last_error_at: z.string().nullable(),
      breakdown: Breakdown,
    }),
    outbound: z.object({
      total_events: z.number().int(),
      success_count: z.number().int(),
      error_count: z.number().int(),
      pending_count: z.number().int(),
      success_rate: z.number(),
      last_error_at: z.string().nullable(),
      breakdown: Breakdown,
    }),
    from_date: z.string(),
    to_date: z.string(),
    ...Coverage,
  })
  .openapi("EpilotMonitoringStats");

export const TimeSeriesQuery = z
  .object({ from_date: DateTime, to_date: DateTime.optional(), interval: Interval, direction: z.enum(["inbound", "outbound", "both"]).default("both") })
  .openapi("GetMonitoringTimeSeriesRequest");
export type TimeSeriesQuery = z.infer<typeof TimeSeriesQuery>;

const LevelCounts = { success_count: z.number().int(), error_count: z.number().int(), warning_count: z.number().int(), skipped_count: z.number().int(), total_count: z.number().int() };
export const TimeSeries = z
  .object({
    interval: Interval,
    from_date: z.string(),
    to_date: z.string(),
    sparse: Sparse,
    buckets: z.array(
      z.object({
        timestamp: z.string(),
        inbound: z.object(LevelCounts).nullable(),
        outbound: z.object({ success_count: z.number().int(), error_count: z.number().int(), pending_count: z.number().int(), total_count: z.number().int() }).nullable(),
      }),
    ),
    ...Coverage,
  })
  .openapi("GetMonitoringTimeSeriesResponse");

const V2Cursor = cursorOf("created_at", "id");
export const EventsV2Query = z
  .object({
    use_case_id: z.string().max(64).optional().openapi({ description: "Empty string: events of no use case" }),
    use_case_type: UseCaseKind.optional(),
    level: Level.optional(),
    code: z.string().max(100).optional(),
    event_id: z.string().max(64).optional(),
    correlation_id: z.string().max(255).optional(),
    from_date: DateTime.optional(),
    to_date: DateTime.optional(),
    limit: Limit(100, 50),
    cursor: V2Cursor.optional(),
  })
  .openapi("QueryMonitoringEventsV2Request");
export type EventsV2Query = z.infer<typeof EventsV2Query>;

export const MonitoringEventV2 = z
  .object({
    id: z.string().openapi({ format: "uuid", description: "The row's id as a UUID (a ULID's 128 bits)" }),
    org_id: z.string(),
    integration_id: z.string(),
    event_id: z.string(),
    correlation_id: z.string(),
    use_case_id: z.string(),
    use_case_type: z.enum(["inbound", "outbound", "file_proxy", "managed_call", "secure_proxy", ""]),
    level: Level,
    code: z.string(),
    message: z.string(),
    detail: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.string(),
  })
  .openapi("MonitoringEventV2");
export const EventsV2Page = z
  .object({ data: z.array(MonitoringEventV2), next_cursor: V2Cursor.nullable(), has_more: z.boolean() })
  .openapi("QueryMonitoringEventsV2Response");

export const StatsV2Query = z
  .object({ ...StatsRange, use_case_type: UseCaseKind.optional(), group_by: z.enum(["use_case_id", "use_case_type", "level", "code", "date"]).optional() })
  .openapi("GetMonitoringStatsV2Request");
export type StatsV2Query = z.infer<typeof StatsV2Query>;

export const StatsV2 = z
  .object({
    total_events: z.number().int(),
    success_count: z.number().int(),
    error_count: z.number().int(),
    warning_count: z.number().int(),
    skipped_count: z.number().int(),
    ack_timeout_count: z.number().int(),
    success_rate: z.number(),
    last_error_at: z.string().nullable(),
    breakdown: Breakdown,
    from_date: z.string(),
    to_date: z.string(),
    ...Coverage,
  })
  .openapi("MonitoringStatsV2");

export const TimeSeriesV2Query = z
  .object({ from_date: DateTime, to_date: DateTime.optional(), interval: Interval, use_case_type: UseCaseKind.optional() })
  .openapi("GetMonitoringTimeSeriesV2Request");
export type TimeSeriesV2Query = z.infer<typeof TimeSeriesV2Query>;

export const TimeSeriesV2 = z
  .object({ interval: Interval, from_date: z.string(), to_date: z.string(), sparse: Sparse, buckets: z.array(z.object({ timestamp: z.string(), ...LevelCounts })), ...Coverage })
  .openapi("GetMonitoringTimeSeriesV2Response");

export const AssociatedEvents = z
  .object({
    monitoring_events: z.array(MonitoringEventV2),
    inbound_event: z.record(z.string(), z.unknown()).nullable().openapi({ description: "The inbound event as received (payload included), when the event is one" }),
  })
  .openapi("GetAssociatedMonitoringEventsResponse");

const Conflict = z.object({
  type: z.enum(["event_disabled", "all_webhooks_disabled", "event_enabled_while_disabled", "webhook_enabled_while_disabled"]),
  webhookId: z.string().optional(),
  message: z.string(),
});
export const OutboundStatus = z
  .object({
    useCases: z.array(
      z.object({
        useCaseId: z.string(),
        name: z.string(),
        useCaseEnabled: z.boolean(),
        eventCatalogEvent: z.string().optional(),
        eventEnabled: z.boolean().nullable(),
        webhooks: z.array(z.object({ webhookId: z.string(), webhookName: z.string().optional(), enabled: z.boolean().nullable() })),
        status: z.enum(["ok", "conflict", "disabled"]),
        conflicts: z.array(Conflict),
      }),
    ),
  })
  .openapi("OutboundStatusResponse");

const AccessCursor = cursorOf("timestamp", "request_id");
export const AccessLogQuery = z
  .object({
    token_id: z.string().max(64).optional(),
    service: z.string().max(64).optional(),
    method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]).optional(),
    path: z.string().max(2048).optional().openapi({ description: "Part of the request path" }),
    status: z.number().int().min(100).max(599).optional(),
    from_date: DateTime.optional(),
    to_date: DateTime.optional(),
    limit: Limit(100, 50),
    cursor: AccessCursor.optional(),
  })
  .openapi("QueryAccessLogsRequest");
export type AccessLogQuery = z.infer<typeof AccessLogQuery>;

export const AccessLogEntry = z
  .object({
    timestamp: z.string(),
    service: z.string(),
    request_id: z.string(),
    method: z.string(),
    path: z.string(),
    status: z.number().int(),
    response_latency_ms: z.number().int(),
    response_length: z.number().int().optional(),
    token_id: z.string().optional(),
    org_id: z.string(),
    origin: z.string().optional(),
    source_ip: z.string().optional(),
  })
  .openapi("AccessLogEntry");
export type AccessLogEntry = z.infer<typeof AccessLogEntry>;
export const AccessLogPage = z
  .object({ data: z.array(AccessLogEntry), next_cursor: AccessCursor.nullable(), has_more: z.boolean() })
  .openapi("QueryAccessLogsResponse");
