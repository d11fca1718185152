// epilot's monitoring views (v1 and v2: events, stats, time series, outbound status, associated
// events) over the same rows the erp-edge views read: inbound events in the integration's log
// shards, deliveries in its endpoints' objects, downloads in D1. Nothing here stores anything.
import { monitoredFileDownloads } from "../file-proxy/downloads-log";
import { eventLog, eventLogs, locate, shardCount } from "../inbound/shards";
import { getIntegration } from "../integrations/service";
import type { Integration } from "../integrations/schema";
import { AppError } from "../platform/errors";
import type { MonitoredEventFilter } from "../platform/monitored-events";
import { endpointObject, endpointsOfIntegrations, listEndpoints } from "../outbound/service";
import type { MonitoredRow } from "./service";
import type { EventsV2Query, InboundMonitoringQuery, Interval, Level, OutboundMonitoringQuery, StatsQuery, StatsV2Query, TimeSeriesQuery, TimeSeriesV2Query, UseCaseKind } from "./schema";

export type Direction = "inbound" | "outbound" | "file";
const DIRECTIONS: Direction[] = ["inbound", "outbound", "file"];

/** A monitored-event row as the owners' arms select it, with the endpoint a delivery belongs to. */
export type ViewRow = MonitoredRow & { endpoint_id: string | null };

type ViewEnv = Pick<Env, "DB" | "EVENT_LOG" | "OUTBOUND_ENDPOINT"> & Partial<Pick<Env, "EVENT_LOG_SHARDS">>;

// ---- one scan over the three directions -------------------------------------------------------

/**
 * What to read: the directions, the shared filter, per direction the status values to read (each
 * one read on its own and merged, since the owners filter one status at a time; [] leaves the
 * direction out), the endpoints to read, and how many of the newest rows.
 */
interface Scan {
  directions: Direction[];
  filter: MonitoredEventFilter;
  statuses?: Partial<Record<Direction, string[]>>;
  endpoint?: (endpointId: string) => boolean;
  limit: number;
}

const byIdDesc = (a: ViewRow, b: ViewRow) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/** The newest `limit` rows matching a scan, newest first; each object answers at most `limit`. */
export async function scanRows(env: ViewEnv, integrationId: string, s: Scan): Promise<ViewRow[]> {
  const filters = (d: Direction) => (s.statuses?.[d] ?? [s.filter.status]).map((status) => ({ ...s.filter, status }));
  const query = { order: "page" as const, limit: s.limit };
  const reads: Promise<ViewRow[]>[] = [];
  const tag = (endpointId: string | null) => (rows: unknown[]) => (rows as ViewRow[]).map((r) => ({ ...r, endpoint_id: endpointId }));
  if (s.directions.includes("inbound")) {
    for (const filter of filters("inbound")) for (const log of eventLogs(env, integrationId)) reads.push(log.monitored(integrationId, { ...query, filter }).then(tag(null)));
  }
  if (s.directions.includes("outbound") && filters("outbound").length > 0) {
    const endpoints = (await endpointsOfIntegrations(env.DB, [integrationId])).filter((e) => !s.endpoint || s.endpoint(e.id));
    for (const filter of filters("outbound")) for (const e of endpoints) reads.push(endpointObject(env, e.id).monitored(integrationId, { ...query, filter }).then(tag(e.id)));
  }
  if (s.directions.includes("file")) {
    for (const filter of filters("file")) {
      const arm = monitoredFileDownloads(integrationId, filter);
      if (arm) reads.push(env.DB.prepare(`${arm.sql} ORDER BY id DESC LIMIT ?`).bind(...arm.params, s.limit).all().then((r) => tag(null)(r.results)));
    }
  }
  return (await Promise.all(reads)).flat().sort(byIdDesc).slice(0, s.limit);
}

// ---- how erp-edge's rows read in epilot's words -----------------------------------------------

/** epilot's outcome level of a row; undefined while it is still under way (accepted, processing, pending). */
const LEVELS: Record<Direction, Record<string, Level>> = {
  inbound: { done: "success", partial: "warning", error: "error", ignored: "skipped" },
  outbound: { delivered: "success", failed: "error", dead_lettered: "error" },
  file: { success: "success", error: "error" },
};
export const levelOf = (row: Pick<ViewRow, "direction" | "status">): Level | undefined => LEVELS[row.direction][row.status];
const statusesOfLevel = (d: Direction, level: Level) => Object.keys(LEVELS[d]).filter((status) => LEVELS[d][status] === level);

const KIND_OF: Record<Direction, UseCaseKind> = { inbound: "inbound", outbound: "outbound", file: "file_proxy" };
const directionsOfKind = (kind: UseCaseKind | undefined) => DIRECTIONS.filter((d) => kind === undefined || KIND_OF[d] === kind);

/** erp-edge's error categories in epilot's words (downstream is epilot's downstream_api). */
type EpilotCategory = "validation" | "configuration" | "downstream_api" | "timeout" | "system";
const epilotCategory = (c: string | null): EpilotCategory | null => (c === null ? null : c === "downstream" ? "downstream_api" : (c as EpilotCategory));
const erpEdgeCategory = (c: string | undefined) => (c === "downstream_api" ? "downstream" : c);

/** A taxonomy code for a row (epilot's `code`): empty for a success, else its error category in capitals. */
const codeOf = (row: ViewRow) => (levelOf(row) === "success" ? "" : row.error_category ? row.error_category.toUpperCase() : row.status.toUpperCase());

/** Time bounds: epilot's to_date is inclusive, erp-edge's `to` exclusive. */
const range = (from?: string, to?: string) => ({
  from: from && new Date(from).toISOString(),
  to: to && new Date(Date.parse(to) + 1).toISOString(),
});

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID's 128 bits written as a UUID (epilot's MonitoringEventV2.id is one); any other id as it is. */
export function uuidOfId(id: string): string {
  if (!/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/.test(id)) return id;
  let n = 0n;
  for (const ch of id) n = n * 32n + BigInt(CROCKFORD.indexOf(ch));
  const hex = n.toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The inverse of uuidOfId for a UUID (the row id it was written from). */
export function idOfUuid(id: string): string {
  if (!uuidPattern.test(id)) return id;
  let n = BigInt(`0x${id.replaceAll("-", "")}`);
  let out = "";
  for (let i = 0; i < 26; i++, n /= 32n) out = CROCKFORD[Number(n % 32n)] + out;
  return out;
}

/** Use case ids and types by slug (rows carry the slug), and slugs by id (filters carry the id). */
function useCasesOf(integration: Integration) {
  const bySlug = new Map(integration.use_cases.map((uc) => [uc.slug, uc]));
  const byId = new Map(integration.use_cases.map((uc) => [uc.id, uc]));
  return { idOf: (slug: string | null) => (slug === null ? null : (bySlug.get(slug)?.id ?? null)), slugOf: (id: string) => byId.get(id)?.slug };
}

/** A page of epilot's: `limit` of the rows read (limit + 1 were), the kept ones mapped, a cursor from the last row read. */
function pageOf<C>(rows: ViewRow[], limit: number, keep: (r: ViewRow) => boolean, cursor: (last: ViewRow) => C) {
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  return { rows: page.filter(keep), has_more: more, next_cursor: more ? cursor(page[page.length - 1]!) : null };
}

/** No rows: a filter names something erp-edge does not have (an unknown use case, a sync type it has no events of). */
const EMPTY = { data: [], has_more: false, next_cursor: null };

// ---- v1: inbound and outbound monitoring events -------------------------------------------------

/** erp-edge's events carry no CREATE/UPDATE/DELETE type: each is an upsert of what it maps, an UPDATE. */
export const EVENT_TYPE = "UPDATE";

export async function inboundMonitoringEvents(env: ViewEnv, tenantId: string, integrationId: string, q: InboundMonitoringQuery) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const useCases = useCasesOf(integration);
  const slug = q.use_case_id === undefined ? undefined : useCases.slugOf(q.use_case_id);
  if ((q.use_case_id !== undefined && slug === undefined) || (q.event_type && q.event_type !== EVENT_TYPE) || (q.sync_type && q.sync_type !== "entity")) return EMPTY;
  const filter: MonitoredEventFilter = {
    event_id: q.event_id,
    correlation_id: q.correlation_id,
    event_name: q.event_name ?? q.object_type,
    use_case: slug,
    error_category: erpEdgeCategory(q.error_category),
    ...range(q.from_date, q.to_date),
    before: q.cursor?.event_id,
  };
  const statuses = q.status ? { inbound: statusesOfLevel("inbound", q.status) } : undefined;
  const rows = await scanRows(env, integrationId, { directions: ["inbound"], filter, statuses, limit: q.limit + 1 });
  const page = pageOf(rows, q.limit, (r) => levelOf(r) !== undefined, (last) => ({ completed_at: last.completed_at ?? last.received_at, event_id: last.id }));
  return {
    data: page.rows.map((r) => ({
      org_id: tenantId,
      event_id: r.id,
      correlation_id: r.correlation_id,
      integration_id: integrationId,
      use_case_id: useCases.idOf(r.use_case_slug),
      event_type: EVENT_TYPE as "UPDATE",
      object_type: r.event_name ?? r.use_case_slug ?? "",
      sync_type: "entity" as const,
      status: levelOf(r)!,
      error_code: r.error_category && r.error_category.toUpperCase(),
      error_message: r.last_error,
      error_category: epilotCategory(r.error_category),
      processing_duration_ms: r.processing_duration_ms,
      received_at: r.received_at,
      completed_at: r.completed_at ?? r.received_at,
    })),
    has_more: page.has_more,
    next_cursor: page.next_cursor,
  };
}

const OUTBOUND_STATUS: Record<string, "succeeded" | "failed" | "pending"> = { delivered: "succeeded", failed: "failed", dead_lettered: "failed", pending: "pending" };
const OUTBOUND_STATUSES = { succeeded: ["delivered"], failed: ["failed", "dead_lettered"], pending: ["pending"] };

/** The webhook an endpoint delivers to: its URL and the webhook configuration its mapping references, if any. */
async function webhooksOf(db: D1Database, tenantId: string, integrationId: string, integration: Integration) {
  const { endpoints } = await listEndpoints(db, tenantId, integrationId);
  const byEndpoint = new Map<string, { url?: string; webhook_config_id: string }>();
  for (const e of endpoints) {
    const uc = integration.use_cases.find((u) => u.id === e.use_case_id);
    const mapping = (uc?.configuration as { mappings?: { id: string; delivery?: Record<string, unknown> }[] } | undefined)?.mappings?.find((m) => m.id === e.mapping_id);
    const webhookId = mapping?.delivery?.webhook_id;
    byEndpoint.set(e.id, { ...(typeof e.url === "string" && { url: e.url }), webhook_config_id: typeof webhookId === "string" ? webhookId : e.id });
  }
  return byEndpoint;
}

export async function outboundMonitoringEvents(env: ViewEnv, tenantId: string, integrationId: string, q: OutboundMonitoringQuery) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const useCases = useCasesOf(integration);
  const webhooks = await webhooksOf(env.DB, tenantId, integrationId, integration);
  const webhookOf = (endpointId: string | null) => (endpointId === null ? undefined : webhooks.get(endpointId));
  const filter: MonitoredEventFilter = { event_name: q.event_name, ...range(q.from_date, q.to_date), before: q.cursor?.event_id };
  const rows = await scanRows(env, integrationId, {
    directions: ["outbound"],
    filter,
    statuses: q.status ? { outbound: OUTBOUND_STATUSES[q.status] } : undefined,
    endpoint: q.webhook_config_id === undefined ? undefined : (id) => id === q.webhook_config_id || webhooks.get(id)?.webhook_config_id === q.webhook_config_id,
    limit: q.limit + 1,
  });
  const page = pageOf(rows, q.limit, () => true, (last) => ({ created_at: last.received_at, event_id: last.id }));
  return {
    data: page.rows.map((r) => {
      const webhook = webhookOf(r.endpoint_id);
      return {
        org_id: tenantId,
        event_id: r.id,
        event_name: r.event_name ?? "",
        status: OUTBOUND_STATUS[r.status] ?? "pending",
        ...(webhook?.url && { url: webhook.url, http_method: "POST" }),
        ...(webhook && { webhook_config_id: webhook.webhook_config_id }),
        metadata: {
          correlation_id: r.correlation_id,
          use_case_id: useCases.idOf(r.use_case_slug),
          use_case_slug: r.use_case_slug,
          delivery_status: r.status,
          attempts: r.attempts,
          last_error: r.last_error,
          ack_status: r.ack_status,
          replay_of: r.replay_of,
        },
        created_at: r.received_at,
        updated_at: r.completed_at ?? r.received_at,
      };
    }),
    has_more: page.has_more,
    next_cursor: page.next_cursor,
  };
}

// ---- v2: monitoring events -------------------------------------------------------------------

function toEventV2(tenantId: string, integrationId: string, useCases: ReturnType<typeof useCasesOf>, r: ViewRow) {
  return {
    id: uuidOfId(r.id),
    org_id: tenantId,
    integration_id: integrationId,
    event_id: r.event_id,
    correlation_id: r.correlation_id ?? "",
    use_case_id: useCases.idOf(r.use_case_slug) ?? "",
    use_case_type: KIND_OF[r.direction],
    level: levelOf(r)!,
    code: codeOf(r),
    message: r.last_error ?? "",
    detail: {
      direction: r.direction,
      status: r.status,
      event_name: r.event_name,
      use_case_slug: r.use_case_slug,
      attempts: r.attempts,
      processing_duration_ms: r.processing_duration_ms,
      completed_at: r.completed_at,
      ack_status: r.ack_status,
      replay_of: r.replay_of,
      ...(r.file_details !== null && { file: JSON.parse(r.file_details) as unknown }),
    },
    created_at: r.received_at,
  };
}

export async function monitoringEventsV2(env: ViewEnv, tenantId: string, integrationId: string, q: EventsV2Query) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const useCases = useCasesOf(integration);
  // "" is epilot's "General" (no use case): every erp-edge row belongs to a use case but downloads of a removed one.
  const slug = q.use_case_id === undefined || q.use_case_id === "" ? undefined : useCases.slugOf(q.use_case_id);
  if (q.use_case_id && slug === undefined) return EMPTY;
  const directions = directionsOfKind(q.use_case_type);
  const filter: MonitoredEventFilter = { event_id: q.event_id, correlation_id: q.correlation_id, use_case: slug, ...range(q.from_date, q.to_date), before: q.cursor?.id && idOfUuid(q.cursor.id) };
  const statuses = q.level ? Object.fromEntries(directions.map((d) => [d, statusesOfLevel(d, q.level!)])) : undefined;
  const rows = await scanRows(env, integrationId, { directions, filter, statuses, limit: q.limit + 1 });
  const keep = (r: ViewRow) =>
    levelOf(r) !== undefined && (q.code === undefined || codeOf(r) === q.code) && (q.use_case_id !== "" || useCases.idOf(r.use_case_slug) === null);
  const page = pageOf(rows, q.limit, keep, (last) => ({ created_at: last.received_at, id: uuidOfId(last.id) }));
  return { data: page.rows.map((r) => toEventV2(tenantId, integrationId, useCases, r)), has_more: page.has_more, next_cursor: page.next_cursor };
}

/**
 * Every row linked to one event: the event, the event it replays, and everything sharing its
 * correlation id (its outbound deliveries and its replays keep it), oldest first.
 */
export async function associatedEvents(env: ViewEnv, tenantId: string, integrationId: string, eventId: string) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const useCases = useCasesOf(integration);
  // A MonitoringEventV2 id (a ULID written as a UUID) or the row's own id.
  const ids = [...new Set([idOfUuid(eventId), eventId])];
  const found = await Promise.all(ids.map((id) => scanRows(env, integrationId, { directions: DIRECTIONS, filter: { event_id: id }, limit: 1 })));
  const own = found.flat()[0];
  if (!own) return { monitoring_events: [], inbound_event: null };
  const linked = new Map([[own.id, own]]);
  const [byCorrelation, original] = await Promise.all([
    own.correlation_id ? scanRows(env, integrationId, { directions: DIRECTIONS, filter: { correlation_id: own.correlation_id }, limit: TRACE_LIMIT }) : [],
    own.replay_of ? scanRows(env, integrationId, { directions: DIRECTIONS, filter: { event_id: own.replay_of }, limit: 1 }) : [],
  ]);
  for (const r of [...byCorrelation, ...original]) linked.set(r.id, r);
  const rows = [...linked.values()].filter((r) => levelOf(r) !== undefined || r.id === own.id).sort((a, b) => (a.received_at < b.received_at ? -1 : a.received_at > b.received_at ? 1 : a.id < b.id ? -1 : 1));
  return {
    monitoring_events: rows.filter((r) => levelOf(r) !== undefined).map((r) => toEventV2(tenantId, integrationId, useCases, r)),
    inbound_event: own.direction === "inbound" ? await inboundEventOf(env, integrationId, own.id) : null,
  };
}

/** Most rows a correlation id links (as traces read). */
export const TRACE_LIMIT = 1000;

/** An inbound event as it was received, payload included (JSON payloads parsed); null when it is gone. */
export async function inboundEventOf(env: ViewEnv, integrationId: string, eventId: string): Promise<Record<string, unknown> | null> {
  const where = locate(eventId);
  if (!where || where.shard >= shardCount(env)) return null;
  const row = await eventLog(env, integrationId, where.shard).event(eventId);
  if (!row || row.integration_id !== integrationId) return null;
  return {
    event_id: row.id,
    event_type: EVENT_TYPE,
    object_type: row.event_name ?? row.use_case_slug ?? "",
    event_name: row.event_name,
    use_case_slug: row.use_case_slug,
    timestamp: row.source_timestamp ?? row.received_at,
    format: row.format,
    payload: payloadOf(row.format, row.payload),
    ...(row.deduplication_id !== null && { deduplication_id: row.deduplication_id }),
    correlation_id: row.correlation_id,
    group_id: row.group_id,
    received_at: row.received_at,
  };
}

/**
 * A stored payload as epilot's ErpEvent gives it: a JSON object parsed, anything else (XML, arrays,
 * scalars) as its text, and a missing or redacted-away payload as the empty JSON string `""`.
 */
export function payloadOf(format: string, text: string | null): string | Record<string, unknown> {
  if (text === null || text.length < 2) return JSON.stringify(text ?? "");
  if (format === "json") {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) && Object.keys(parsed).length > 0) return parsed as Record<string, unknown>;
    } catch {
      // stored text that is not JSON is given as text
    }
  }
  return text;
}

// ---- statistics and time series: counts over the same rows ------------------------------------

/**
 * Statistics and time series count the rows of their range, read newest first, at most this many
 * per direction; a busier range is answered from its newest rows with `truncated: true`.
 */
export const STATS_ROW_CAP = 10_000;
/** Most buckets a time series answers in full, empty ones included (5m over a week is 2016). */
export const MAX_BUCKETS = 5000;

const DEFAULT_STATS_MS = 86_400_000;

/** The range of a stats request (default: the last 24 hours), checked. */
function statsRange(from_date?: string, to_date?: string) {
  const to = to_date ? new Date(to_date) : new Date();
  const from = from_date ? new Date(from_date) : new Date(to.getTime() - DEFAULT_STATS_MS);
  if (from.getTime() > to.getTime()) throw new AppError("VALIDATION_FAILED", "from_date is after to_date", { issues: [{ path: "from_date", message: "after to_date" }] });
  return { from_date: from.toISOString(), to_date: to.toISOString() };
}

/** The rows of a range, per direction, each read up to STATS_ROW_CAP. */
async function rowsInRange(env: ViewEnv, integrationId: string, directions: Direction[], fromDate: string, toDate: string) {
  const filter = range(fromDate, toDate);
  const perDirection = await Promise.all(directions.map((d) => scanRows(env, integrationId, { directions: [d], filter, limit: STATS_ROW_CAP })));
  return { rows: perDirection.flat(), truncated: perDirection.some((rows) => rows.length >= STATS_ROW_CAP), rows_examined: perDirection.reduce((n, rows) => n + rows.length, 0) };
}

const rate = (success: number, total: number) => (total === 0 ? 0 : Math.round((success / total) * 10_000) / 100);
const lastErrorAt = (rows: ViewRow[]) => rows.filter((r) => levelOf(r) === "error").reduce<string | null>((at, r) => (at === null || r.received_at > at ? r.received_at : at), null);
const dateOf = (r: ViewRow) => r.received_at.slice(0, 10);

/** Counts of rows grouped by the values `keys` give each row; each group is `{ ...its key values, ...count(rows) }`. */
function breakdown<K extends string>(rows: ViewRow[], keys: Record<K, (r: ViewRow) => unknown>, fields: K[] | undefined, count: (rows: ViewRow[]) => Record<string, number>) {
  if (!fields || fields.length === 0) return [];
  const groups = new Map<string, { key: Record<string, unknown>; rows: ViewRow[] }>();
  for (const r of rows) {
    const key = Object.fromEntries(fields.map((f) => [f, keys[f](r)]));
    const id = JSON.stringify(key);
    const group = groups.get(id) ?? groups.set(id, { key, rows: [] }).get(id)!;
    group.rows.push(r);
  }
  return [...groups.values()].map((g) => ({ ...g.key, ...count(g.rows) }));
}

const inboundCounts = (rows: ViewRow[]) => {
  const n = (level: Level) => rows.filter((r) => levelOf(r) === level).length;
  return { total_events: rows.length, success_count: n("success"), error_count: n("error"), skipped_count: n("skipped"), warning_count: n("warning") };
};
const outboundCounts = (rows: ViewRow[]) => ({
  total_events: rows.length,
  success_count: rows.filter((r) => levelOf(r) === "success").length,
  error_count: rows.filter((r) => levelOf(r) === "error").length,
  pending_count: rows.filter((r) => levelOf(r) === undefined).length,
});

export async function monitoringStats(env: ViewEnv, tenantId: string, integrationId: string, q: StatsQuery) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const useCases = useCasesOf(integration);
  const period = statsRange(q.from_date, q.to_date);
  const [webhooks, read] = await Promise.all([webhooksOf(env.DB, tenantId, integrationId, integration), rowsInRange(env, integrationId, ["inbound", "outbound"], period.from_date, period.to_date)]);
  const inbound = read.rows.filter((r) => r.direction === "inbound");
  const outbound = read.rows.filter((r) => r.direction === "outbound");
  const inboundTotals = inboundCounts(inbound);
  const outboundTotals = outboundCounts(outbound);
  return {
    inbound: {
      ...inboundTotals,
      total_correlations: new Set(inbound.map((r) => r.correlation_id).filter((c) => c !== null)).size,
      success_rate: rate(inboundTotals.success_count, inboundTotals.total_events),
      last_error_at: lastErrorAt(inbound),
      breakdown: breakdown(
        inbound,
        {
          use_case_id: (r) => useCases.idOf(r.use_case_slug),
          sync_type: () => "entity",
          status: (r) => levelOf(r) ?? r.status,
          error_category: (r) => epilotCategory(r.error_category),
          object_type: (r) => r.event_name ?? r.use_case_slug ?? "",
          event_name: (r) => r.event_name,
          date: dateOf,
        },
        q.inbound_group_by,
        inboundCounts,
      ),
    },
    outbound: {
      ...outboundTotals,
      success_rate: rate(outboundTotals.success_count, outboundTotals.total_events),
      last_error_at: lastErrorAt(outbound),
      breakdown: breakdown(
        outbound,
        {
          event_name: (r) => r.event_name,
          status: (r) => OUTBOUND_STATUS[r.status] ?? "pending",
          webhook_config_id: (r) => (r.endpoint_id === null ? null : (webhooks.get(r.endpoint_id)?.webhook_config_id ?? r.endpoint_id)),
          date: dateOf,
        },
        q.outbound_group_by,
        outboundCounts,
      ),
    },
    ...period,
    rows_examined: read.rows_examined,
    truncated: read.truncated,
  };
}

const levelCounts = (rows: ViewRow[]) => {
  const leveled = rows.filter((r) => levelOf(r) !== undefined);
  const n = (level: Level) => leveled.filter((r) => levelOf(r) === level).length;
  return { total_events: leveled.length, success_count: n("success"), error_count: n("error"), warning_count: n("warning"), skipped_count: n("skipped") };
};

export async function monitoringStatsV2(env: ViewEnv, tenantId: string, integrationId: string, q: StatsV2Query) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const useCases = useCasesOf(integration);
  const period = statsRange(q.from_date, q.to_date);
  const read = await rowsInRange(env, integrationId, directionsOfKind(q.use_case_type), period.from_date, period.to_date);
  const rows = read.rows.filter((r) => levelOf(r) !== undefined);
  const totals = levelCounts(rows);
  return {
    ...totals,
    ack_timeout_count: rows.filter((r) => r.ack_status === "timeout").length,
    success_rate: rate(totals.success_count, totals.total_events),
    last_error_at: lastErrorAt(rows),
    breakdown: breakdown(
      rows,
      { use_case_id: (r) => useCases.idOf(r.use_case_slug) ?? "", use_case_type: (r) => KIND_OF[r.direction], level: (r) => levelOf(r), code: codeOf, date: dateOf },
      q.group_by && [q.group_by],
      levelCounts,
    ),
    ...period,
    rows_examined: read.rows_examined,
    truncated: read.truncated,
  };
}

const INTERVAL_MS: Record<Interval, number> = { "5m": 300_000, "10m": 600_000, "30m": 1_800_000, "1h": 3_600_000, "3h": 10_800_000, "1d": 86_400_000 };

/**
 * The buckets of a range: each starts at a multiple of the interval (UTC), from the one holding
 * from_date to the one holding to_date. Every bucket is answered when there are at most
 * MAX_BUCKETS of them; a longer range (5m over a year) answers only the buckets that hold events
 * (`sparse: true`), so the answer stays bounded by the rows read, never by the range asked for.
 */
function bucketsOf(interval: Interval, fromDate: string, toDate?: string) {
  const period = statsRange(fromDate, toDate);
  const step = INTERVAL_MS[interval];
  const first = Math.floor(Date.parse(period.from_date) / step) * step;
  const count = Math.floor(Date.parse(period.to_date) / step) - first / step + 1;
  return { period, first, step, count, dense: count <= MAX_BUCKETS };
}

/** Rows by bucket, as `[bucket start, rows]` in time order (see bucketsOf for which buckets). */
function bucketed(rows: ViewRow[], b: ReturnType<typeof bucketsOf>): [number, ViewRow[]][] {
  const byIndex = new Map<number, ViewRow[]>();
  if (b.dense) for (let i = 0; i < b.count; i++) byIndex.set(i, []);
  for (const r of rows) {
    const i = Math.floor((Date.parse(r.received_at) - b.first) / b.step);
    if (!(i >= 0 && i < b.count)) continue;
    const list = byIndex.get(i) ?? [];
    if (list.length === 0) byIndex.set(i, list);
    list.push(r);
  }
  return [...byIndex].sort((x, y) => x[0] - y[0]).map(([i, list]) => [b.first + i * b.step, list]);
}

export async function monitoringTimeSeries(env: ViewEnv, tenantId: string, integrationId: string, q: TimeSeriesQuery) {
  await getIntegration(env.DB, tenantId, integrationId);
  const range = bucketsOf(q.interval, q.from_date, q.to_date);
  const { period } = range;
  const directions: Direction[] = q.direction === "both" ? ["inbound", "outbound"] : [q.direction];
  const read = await rowsInRange(env, integrationId, directions, period.from_date, period.to_date);
  return {
    interval: q.interval,
    ...period,
    sparse: !range.dense,
    buckets: bucketed(read.rows, range).map(([start, rows]) => {
      const inbound = inboundCounts(rows.filter((r) => r.direction === "inbound"));
      const outbound = outboundCounts(rows.filter((r) => r.direction === "outbound"));
      return {
        timestamp: new Date(start).toISOString(),
        inbound: directions.includes("inbound")
          ? { success_count: inbound.success_count, error_count: inbound.error_count, warning_count: inbound.warning_count, skipped_count: inbound.skipped_count, total_count: inbound.total_events }
          : null,
        outbound: directions.includes("outbound")
          ? { success_count: outbound.success_count, error_count: outbound.error_count, pending_count: outbound.pending_count, total_count: outbound.total_events }
          : null,
      };
    }),
    rows_examined: read.rows_examined,
    truncated: read.truncated,
  };
}

export async function monitoringTimeSeriesV2(env: ViewEnv, tenantId: string, integrationId: string, q: TimeSeriesV2Query) {
  await getIntegration(env.DB, tenantId, integrationId);
  const range = bucketsOf(q.interval, q.from_date, q.to_date);
  const { period } = range;
  const read = await rowsInRange(env, integrationId, directionsOfKind(q.use_case_type), period.from_date, period.to_date);
  return {
    interval: q.interval,
    ...period,
    sparse: !range.dense,
    buckets: bucketed(read.rows, range).map(([start, rows]) => {
      const { total_events, ...counts } = levelCounts(rows);
      return { timestamp: new Date(start).toISOString(), ...counts, total_count: total_events };
    }),
    rows_examined: read.rows_examined,
    truncated: read.truncated,
  };
}

// ---- outbound status --------------------------------------------------------------------------

/**
 * Each outbound use case with its webhooks (webhook mappings; an endpoint that is paused or disabled
 * by its circuit breaker counts as disabled). erp-edge has no event catalog to switch events off:
 * a use case's event is always enabled.
 */
export async function outboundStatus(env: Pick<Env, "DB">, tenantId: string, integrationId: string) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const { endpoints } = await listEndpoints(env.DB, tenantId, integrationId);
  return {
    useCases: integration.use_cases
      .filter((uc) => uc.type === "outbound")
      .map((uc) => {
        const config = uc.configuration as { event_catalog_event?: string; mappings?: { id: string; name?: string; enabled?: boolean; delivery?: Record<string, unknown> }[] };
        const webhooks = endpoints
          .filter((e) => e.use_case_id === uc.id)
          .map((e) => {
            const mapping = config.mappings?.find((m) => m.id === e.mapping_id);
            const webhookId = mapping?.delivery?.webhook_id;
            return { webhookId: typeof webhookId === "string" ? webhookId : e.id, ...(mapping?.name && { webhookName: mapping.name }), enabled: mapping?.enabled !== false && e.state === "active" };
          });
        const conflicts =
          uc.enabled && webhooks.length > 0 && webhooks.every((w) => !w.enabled)
            ? [{ type: "all_webhooks_disabled" as const, message: "Every webhook of this enabled use case is disabled or paused" }]
            : [];
        return {
          useCaseId: uc.id,
          name: uc.name,
          useCaseEnabled: uc.enabled,
          ...(config.event_catalog_event && { eventCatalogEvent: config.event_catalog_event }),
          eventEnabled: true,
          webhooks,
          status: !uc.enabled ? ("disabled" as const) : conflicts.length > 0 ? ("conflict" as const) : ("ok" as const),
          conflicts,
        };
      }),
  };
}
