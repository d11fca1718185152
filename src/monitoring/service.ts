// Monitoring: one view over inbound events, outbound deliveries and file downloads, replay,
// statistics, traces, the audit log, payload redaction and retention.
import { deleteExpiredDownloadsStatement, EXPIRED_DOWNLOADS_SQL, FILE_STATS_SQL, monitoredFileDownloads } from "../file-proxy/downloads-log";
import { replayInboundEvent } from "../inbound/service";
import { eventLogs } from "../inbound/shards";
import { getIntegration, retentionDaysSql } from "../integrations/service";
import { AUDIT_RETENTION_SQL, deleteExpiredAuditStatement, listAuditLog } from "../platform/audit";
import { jobCursorSql } from "../platform/db";
import { AppError } from "../platform/errors";
import type { MonitoredArm, MonitoredEventFilter } from "../platform/monitored-events";
import { decodeCursor, type PageQuery } from "../platform/pagination";
import { deleteExpiredCoreEventDeadLettersStatement, EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL, endpointObject, endpointsOfIntegrations, replayDelivery } from "../outbound/service";
import { expireAccessLog, type AccessLogEnv } from "./access-log";
import { EVENT_TYPE, inboundEventOf } from "./epilot-views";
import type { EventQuery, EventsQuery } from "./schema";

/** What only a file download row has; null on the other directions' rows. */
export interface FileDetails {
  params: Record<string, string>;
  bytes: number;
  archive_status: number | null;
  http_status: number;
  range: string | null;
}

export interface MonitoredEvent {
  event_id: string;
  direction: "inbound" | "outbound" | "file";
  event_name: string | null;
  use_case_slug: string | null;
  status: string;
  error_category: string | null;
  correlation_id: string | null;
  received_at: string;
  completed_at: string | null;
  processing_duration_ms: number | null;
  attempts: number;
  last_error: string | null;
  ack_status: string | null;
  replay_of: string | null;
  file: FileDetails | null;
}

/** A row of the unified view as the arms select it: `id` orders pages, `file_details` is JSON text. */
export type MonitoredRow = Omit<MonitoredEvent, "file"> & { id: string; file_details: string | null };

const toMonitoredEvent = ({ id: _, file_details, ...row }: MonitoredRow): MonitoredEvent => ({
  ...row,
  file: file_details === null ? null : (JSON.parse(file_details) as FileDetails),
});

// The three directions as one row shape, each arm built by the context that owns its rows
// (inbound/events-log.ts, outbound/deliveries-log.ts, file-proxy/downloads-log.ts) through its own
// indexes. Downloads are in D1. Inbound events are in the integration's log shards and deliveries in
// its endpoints' objects: each object answers its own first `limit` rows, and the pages are merged
// here by id, so a page reads about `limit` rows of each object.
type D1Arms = { file: MonitoredArm | null };
type EventsEnv = Pick<Env, "DB" | "EVENT_LOG" | "OUTBOUND_ENDPOINT"> & Partial<Pick<Env, "EVENT_LOG_SHARDS">>;

function filterOf(q: Partial<EventQuery> & { before?: string }): MonitoredEventFilter {
  return {
    event_id: q.event_id,
    correlation_id: q.correlation_id,
    event_name: q.event_name,
    use_case: q.use_case,
    status: q.status,
    error_category: q.error_category,
    from: q.from && new Date(q.from).toISOString(),
    to: q.to && new Date(q.to).toISOString(),
    before: q.before || undefined,
  };
}

const wanted = (q: Pick<EventQuery, "direction">, direction: NonNullable<EventQuery["direction"]>) => q.direction === undefined || q.direction === direction;

/** The D1 directions' arms for a query; an arm the filters exclude is null. */
function d1Arms(integrationId: string, q: Partial<EventQuery> & { before?: string }): D1Arms {
  const filter = filterOf(q);
  return { file: wanted(q, "file") ? monitoredFileDownloads(integrationId, filter) : null };
}

/** A compound SELECT over the arms the filters keep, with `tail` (ORDER BY ... LIMIT ?) applied to the whole. */
function unified(parts: D1Arms, tail: string, tailParams: unknown[]) {
  const kept = [parts.file].filter((arm): arm is MonitoredArm => arm !== null);
  if (kept.length === 0) return null;
  return { sql: `${kept.map((arm) => arm.sql).join(" UNION ALL ")} ${tail}`, params: [...kept.flatMap((arm) => arm.params), ...tailParams] };
}

/**
 * The D1 statement behind POST /v1/integrations/{id}/events: a page of downloads,
 * newest first; null when the filters exclude them. Exported so its query plan is checked.
 */
export function eventsQuery(integrationId: string, q: EventQuery & PageQuery) {
  return unified(d1Arms(integrationId, { ...q, before: decodeCursor(q.cursor) }), "ORDER BY id DESC LIMIT ?", [q.limit + 1]);
}


/** The inbound rows of every shard of the integration's log, each shard's first `limit` in `order`. */
async function inboundRows(env: EventsEnv, integrationId: string, filter: MonitoredEventFilter, order: "page" | "trace", limit: number): Promise<MonitoredRow[]> {
  const shards = await Promise.all(eventLogs(env, integrationId).map((log) => log.monitored(integrationId, { filter, order, limit })));
  return shards.flat() as unknown as MonitoredRow[];
}

/** The outbound rows of every endpoint of the integration, each endpoint's first `limit` in `order`. */
async function outboundRows(env: EventsEnv, integrationId: string, filter: MonitoredEventFilter, order: "page" | "trace", limit: number): Promise<MonitoredRow[]> {
  const endpoints = await endpointsOfIntegrations(env.DB, [integrationId]);
  const rows = await Promise.all(endpoints.map((e) => endpointObject(env, e.id).monitored(integrationId, { filter, order, limit })));
  return rows.flat() as unknown as MonitoredRow[];
}

const byIdDesc = (a: MonitoredRow, b: MonitoredRow) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
const byTimeThenId = (a: MonitoredRow, b: MonitoredRow) => (a.received_at < b.received_at ? -1 : a.received_at > b.received_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * A page of every direction, newest first, in erp-edge's shape (`events`) and epilot's (`data`: the
 * page's inbound events with their payloads, `has_more`, an object `next_cursor`). epilot's
 * `object_type` is erp-edge's `event_name`; its `event_type` filters `data` (erp-edge's events are
 * all UPDATEs, see EVENT_TYPE).
 */
export async function queryEvents(env: EventsEnv, tenantId: string, integrationId: string, q: EventsQuery) {
  await getIntegration(env.DB, tenantId, integrationId);
  const before = typeof q.cursor === "string" ? decodeCursor(q.cursor) : (q.cursor?.event_id ?? "");
  const query: EventQuery & { before: string } = { ...q, event_name: q.event_name ?? q.object_type, cursor: undefined, before };
  const stored = unified(d1Arms(integrationId, query), "ORDER BY id DESC LIMIT ?", [q.limit + 1]);
  const filter = filterOf(query);
  const [file, inbound, outbound] = await Promise.all([
    stored ? env.DB.prepare(stored.sql).bind(...stored.params).all<MonitoredRow>().then((r) => r.results) : [],
    wanted(q, "inbound") ? inboundRows(env, integrationId, filter, "page", q.limit + 1) : [],
    wanted(q, "outbound") ? outboundRows(env, integrationId, filter, "page", q.limit + 1) : [],
  ]);
  const merged = [...file, ...inbound, ...outbound].sort(byIdDesc).slice(0, q.limit + 1);
  const more = merged.length > q.limit;
  const page = merged.slice(0, q.limit);
  const last = page[page.length - 1];
  const erpEvents = q.event_type === undefined || q.event_type === EVENT_TYPE ? page.filter((r) => r.direction === "inbound") : [];
  const received = await Promise.all(erpEvents.map((r) => inboundEventOf(env, integrationId, r.id)));
  const data = erpEvents.flatMap((r, i) => {
    const event = received[i];
    if (!event) return [];
    const { event_type, object_type, timestamp, format, payload, deduplication_id } = event;
    return [{ event_type, object_type, timestamp, format, payload, ...(deduplication_id !== undefined && { deduplication_id }), ...toMonitoredEvent(r) }];
  }) as ErpEventItem[];
  return {
    data,
    has_more: more,
    next_cursor: more && last ? { event_time: last.received_at, event_id: last.id } : null,
    events: page.map(toMonitoredEvent),
  };
}

type ErpEventItem = MonitoredEvent & { event_type: "UPDATE"; object_type: string; timestamp: string; format: "json" | "xml"; payload: string | Record<string, unknown>; deduplication_id?: string };

/** Replays inbound events (through today's configuration) and outbound deliveries (sent again). */
export async function replay(env: EventsEnv, tenantId: string, integrationId: string, eventIds: string[]) {
  await getIntegration(env.DB, tenantId, integrationId);
  const results = [];
  for (const eventId of eventIds) {
    const inbound = await replayInboundEvent(env, tenantId, integrationId, eventId);
    if (inbound) {
      const ok = inbound.status === "success";
      results.push({ event_id: eventId, status: ok ? "replayed" : inbound.status, replay_event_id: inbound.event_id, message: inbound.message });
      continue;
    }
    const copied = await replayDelivery(env, tenantId, integrationId, eventId);
    if (!copied) {
      results.push({ event_id: eventId, status: "not_found", replay_event_id: null, message: "No such event in this integration" });
      continue;
    }
    results.push({ event_id: eventId, status: "replayed", replay_event_id: copied.id, message: "Delivery queued again" });
  }
  return { replayed: results.filter((r) => r.status === "replayed").length, results, event_ids: eventIds };
}

export const WINDOWS = { "1h": 3600_000, "24h": 86_400_000, "7d": 7 * 86_400_000 } as const;

/**
 * Percentiles are computed from at most this many of the newest timed rows of each direction in the
 * window (all of them when there are fewer), so a 7-day window of a busy integration costs one
 * bounded sort in D1 and never loads durations into the Worker. Counts are always exact.
 */
export const STATS_SAMPLE_SIZE = 10_000;

/** The D1 statements of the stats endpoint (downloads), each bound to (?1 integration id, ?2 since[, ?3 sample size]); exported so their query plans are checked. */
export const STATS_SQL = {
  /** Rows per use case and status, and how many of them carry a processing time. */
  counts: FILE_STATS_SQL.counts,
  filePercentiles: FILE_STATS_SQL.percentiles,
};

type PercentileRow = { p50: number | null; p95: number | null; p99: number | null };
type CountRow = { direction: string; use_case_slug: string | null; status: string; n: number; timed: number };

/** Nearest-rank percentiles of the newest `sample` durations of all shards (as percentilesSql ranks them in D1). */
function percentilesOf(samples: { at: string; d: number }[]): PercentileRow {
  const newest = samples.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, STATS_SAMPLE_SIZE).map((s) => s.d).sort((a, b) => a - b);
  const n = newest.length;
  const at = (p: number) => (n === 0 ? null : newest[Math.max(1, Math.floor((p * n + 99) / 100)) - 1]!);
  return { p50: at(50), p95: at(95), p99: at(99) };
}

/** Sorted as SQL's ORDER BY direction, use_case_slug, status would (NULL first). */
const byCountKey = (a: CountRow, b: CountRow) => {
  for (const k of ["direction", "use_case_slug", "status"] as const) {
    if (a[k] === b[k]) continue;
    if (a[k] === null) return -1;
    if (b[k] === null) return 1;
    return a[k]! < b[k]! ? -1 : 1;
  }
  return 0;
};

/** Counts, processing-time percentiles (per direction) and ACK counts of a window: D1 in one batch, the log's shards and the endpoints beside it. */
export async function stats(env: EventsEnv, tenantId: string, integrationId: string, window: keyof typeof WINDOWS) {
  const db = env.DB;
  await getIntegration(db, tenantId, integrationId);
  const since = new Date(Date.now() - WINDOWS[window]).toISOString();
  const [[counts, file], shards, endpoints] = await Promise.all([
    db.batch<Record<string, unknown>>([db.prepare(STATS_SQL.counts).bind(integrationId, since), db.prepare(STATS_SQL.filePercentiles).bind(integrationId, since, STATS_SAMPLE_SIZE)]),
    Promise.all(eventLogs(env, integrationId).map((log) => log.stats(integrationId, since, STATS_SAMPLE_SIZE))),
    endpointsOfIntegrations(db, [integrationId]).then((list) => Promise.all(list.map((e) => endpointObject(env, e.id).stats(integrationId, since, STATS_SAMPLE_SIZE)))),
  ]);
  // Several objects count the same (direction, use case, status): their counts are summed.
  const summed = new Map<string, CountRow>();
  for (const row of [...shards, ...endpoints].flatMap((s) => s.counts)) {
    const key = JSON.stringify([row.direction, row.use_case_slug, row.status]);
    const sum = summed.get(key);
    summed.set(key, sum ? { ...sum, n: sum.n + row.n, timed: sum.timed + row.timed } : { ...row });
  }
  const countRows = [...summed.values(), ...(counts!.results as CountRow[])].sort(byCountKey);
  const timed = (direction: string) => countRows.filter((c) => c.direction === direction).reduce((sum, c) => sum + c.timed, 0);
  const summary = (direction: string, row: PercentileRow | undefined) => ({ count: timed(direction), p50: row?.p50 ?? null, p95: row?.p95 ?? null, p99: row?.p99 ?? null });
  const ack: Record<string, number> = {};
  for (const r of [...shards, ...endpoints].flatMap((s) => s.acks)) ack[r.ack_status] = (ack[r.ack_status] ?? 0) + r.n;
  return {
    window,
    since,
    counts: countRows.map((c) => ({ direction: c.direction, use_case: c.use_case_slug, status: c.status, count: c.n })),
    processing_ms: {
      inbound: summary("inbound", percentilesOf(shards.flatMap((s) => s.durations))),
      outbound: summary("outbound", percentilesOf(endpoints.flatMap((s) => s.durations))),
      file: summary("file", file!.results[0] as PercentileRow | undefined),
    },
    acks: { pending: ack.pending ?? 0, timeout: ack.timeout ?? 0, processed: ack.processed ?? 0, failed: ack.failed ?? 0 },
  };
}

/** Everything that happened for one correlation id, all directions, in time order. */
export async function trace(env: EventsEnv, tenantId: string, integrationId: string, correlationId: string) {
  await getIntegration(env.DB, tenantId, integrationId);
  // Downloads carry no correlation id: a trace reads the log's shards and the endpoints.
  const filter = filterOf({ correlation_id: correlationId });
  const [inbound, outbound] = await Promise.all([inboundRows(env, integrationId, filter, "trace", 1000), outboundRows(env, integrationId, filter, "trace", 1000)]);
  const rows = [...inbound, ...outbound].sort(byTimeThenId).slice(0, 1000);
  if (rows.length === 0) throw new AppError("NOT_FOUND", `Nothing recorded for correlation id '${correlationId}'`);
  return { correlation_id: correlationId, events: rows.map(toMonitoredEvent) };
}

/** A page of a tenant's audit log, newest first (kept by platform/audit.ts). */
export const auditLog = listAuditLog;

// ---- retention ------------------------------------------------------------------

/**
 * Bounds of one retention run (every minute). Integrations are visited round-robin from a cursor
 * kept in `maintenance_cursors`; each visit deletes at most `rowsPerIntegration` of its oldest
 * expired events, as many deliveries and as many file downloads, and an integration that had more
 * is visited again first next run. Audit entries are kept `auditDays` days (the same for every tenant).
 */
export const RETENTION = { integrationsPerRun: 20, rowsPerIntegration: 500, auditRowsPerRun: 1000, auditDays: 365, defaultDays: 30, deadLetterDays: 30 } as const;

const CURSOR = jobCursorSql("retention");

/** The D1 statements of a retention run, each from the owner of its table; exported so their query plans are checked. */
export const RETENTION_SQL = {
  cursor: CURSOR.position,
  /** The next integrations after the cursor with their retention_days (a corrupt settings row fails the run, and is logged by the cron). */
  integrations: retentionDaysSql(CURSOR.after, RETENTION.defaultDays),
  fileDownloads: EXPIRED_DOWNLOADS_SQL,
  auditLog: AUDIT_RETENTION_SQL,
  coreEventDeadLetters: EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL,
  saveCursor: CURSOR.save,
};

/** An integration's D1 deletes in a retention run, in the order their counts are read back: file downloads. */
const EXPIRED_PER_INTEGRATION = [deleteExpiredDownloadsStatement] as const;

/**
 * One bounded retention run: deletes events, deliveries, file downloads and access-log entries older than their
 * integration's retention_days, and audit entries older than RETENTION.auditDays, within RETENTION's
 * row limits (events and deliveries: that many per object); what is left is deleted by the next runs.
 * D1 takes four round trips, each visited integration's log shards and endpoints one call each.
 * Answers what it deleted.
 */
export async function applyRetention(env: EventsEnv & AccessLogEnv, now = Date.now()) {
  const db = env.DB;
  const [cursor, picked] = await db.batch<Record<string, unknown>>([db.prepare(RETENTION_SQL.cursor), db.prepare(RETENTION_SQL.integrations).bind(RETENTION.integrationsPerRun)]);
  const position = (cursor!.results[0] as { position: string } | undefined)?.position ?? "";
  const integrations = picked!.results as { id: string; days: number }[];
  const limit = RETENTION.rowsPerIntegration;
  const cutoff = (days: number) => new Date(now - days * 86_400_000).toISOString();
  const deletes = integrations.flatMap((i) => EXPIRED_PER_INTEGRATION.map((statement) => statement(db, i.id, cutoff(i.days), limit)));
  const endpoints = await endpointsOfIntegrations(db, integrations.map((i) => i.id));
  const [results, events, deliveries, accessLogs] = await Promise.all([
    db.batch([
      ...deletes,
      deleteExpiredAuditStatement(db, cutoff(RETENTION.auditDays), RETENTION.auditRowsPerRun),
      deleteExpiredCoreEventDeadLettersStatement(db, now - RETENTION.deadLetterDays * 86_400_000, RETENTION.auditRowsPerRun),
    ]),
    Promise.all(integrations.map((i) => Promise.all(eventLogs(env, i.id).map((log) => log.expire(cutoff(i.days), limit))))),
    Promise.all(
      integrations.map((i) => Promise.all(endpoints.filter((e) => e.integration_id === i.id).map((e) => endpointObject(env, e.id).expire(i.id, cutoff(i.days), limit)))),
    ),
    Promise.all(integrations.map((i) => expireAccessLog(env, i.id, cutoff(i.days), limit))),
  ]);
  const changes = (i: number) => results[i]!.meta.changes;
  const changesOf = (integration: number, table: number) => changes(EXPIRED_PER_INTEGRATION.length * integration + table);
  // Continue next run at the first integration that may have more; else after the last one, or from the start.
  const unfinished = integrations.findIndex((_, i) => events[i]!.some((n) => n >= limit) || deliveries[i]!.some((n) => n >= limit) || accessLogs[i]! >= limit || EXPIRED_PER_INTEGRATION.some((_, table) => changesOf(i, table) >= limit));
  const next = unfinished === 0 ? position : unfinished > 0 ? integrations[unfinished - 1]!.id : integrations.length < RETENTION.integrationsPerRun ? "" : integrations.at(-1)!.id;
  await db.prepare(RETENTION_SQL.saveCursor).bind(next, new Date(now).toISOString()).run();
  const sum = (table: number) => integrations.reduce((n, _, i) => n + changesOf(i, table), 0);
  return {
    integrations: integrations.length,
    events: events.flat().reduce((n, m) => n + m, 0),
    deliveries: deliveries.flat().reduce((n, m) => n + m, 0),
    file_downloads: sum(0),
    audit_log: changes(deletes.length),
    core_event_dead_letters: changes(deletes.length + 1),
    access_logs: accessLogs.reduce((n, m) => n + m, 0),
  };
}
