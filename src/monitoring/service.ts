// Monitoring: one view over inbound events, outbound deliveries and file downloads, replay,
// statistics, traces, the audit log, payload redaction and retention.
import { deleteExpiredDownloadsStatement, EXPIRED_DOWNLOADS_SQL, FILE_STATS_SQL, monitoredFileDownloads } from "../file-proxy/downloads-log";
import { deleteExpiredEventsStatement, EXPIRED_EVENTS_SQL, INBOUND_STATS_SQL, monitoredInboundEvents } from "../inbound/events-log";
import { replayInboundEvent } from "../inbound/service";
import { getIntegration, retentionDaysSql } from "../integrations/service";
import { AUDIT_RETENTION_SQL, deleteExpiredAuditStatement, listAuditLog } from "../platform/audit";
import { jobCursorSql } from "../platform/db";
import { AppError } from "../platform/errors";
import type { MonitoredArm, MonitoredEventFilter } from "../platform/monitored-events";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import {
  copyDeliveryForReplay,
  deleteExpiredCoreEventDeadLettersStatement,
  deleteExpiredDeliveriesStatement,
  EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL,
  enqueueWebhookDeliveries,
  EXPIRED_DELIVERIES_SQL,
  groupByEndpoint,
  monitoredDeliveries,
  OUTBOUND_STATS_SQL,
} from "../outbound/service";
import type { EventQuery } from "./schema";

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
type MonitoredRow = Omit<MonitoredEvent, "file"> & { id: string; file_details: string | null };

const toMonitoredEvent = ({ id: _, file_details, ...row }: MonitoredRow): MonitoredEvent => ({
  ...row,
  file: file_details === null ? null : (JSON.parse(file_details) as FileDetails),
});

// The three directions as one row shape, each arm built by the context that owns its table
// (inbound/events-log.ts, outbound/service.ts, file-proxy/downloads-log.ts) through its own indexes.
// A compound SELECT ordered by id merges the index-ordered arms (MERGE in the query plan), so a page
// reads about `limit` rows of each table instead of sorting the integration's whole history.
type Arms = { inbound: MonitoredArm | null; outbound: MonitoredArm | null; file: MonitoredArm | null };

/** Each direction's arm for a query; an arm the filters exclude is null. */
function arms(integrationId: string, q: Partial<EventQuery> & { before?: string }): Arms {
  const filter: MonitoredEventFilter = {
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
  const wanted = (direction: NonNullable<EventQuery["direction"]>) => q.direction === undefined || q.direction === direction;
  return {
    inbound: wanted("inbound") ? monitoredInboundEvents(integrationId, filter) : null,
    outbound: wanted("outbound") ? monitoredDeliveries(integrationId, filter) : null,
    file: wanted("file") ? monitoredFileDownloads(integrationId, filter) : null,
  };
}

/** A compound SELECT over the arms the filters keep, with `tail` (ORDER BY ... LIMIT ?) applied to the whole. */
function unified(parts: Arms, tail: string, tailParams: unknown[]) {
  const kept = [parts.inbound, parts.outbound, parts.file].filter((arm): arm is MonitoredArm => arm !== null);
  if (kept.length === 0) return null;
  return { sql: `${kept.map((arm) => arm.sql).join(" UNION ALL ")} ${tail}`, params: [...kept.flatMap((arm) => arm.params), ...tailParams] };
}

/**
 * The statement behind POST /v1/integrations/{id}/events: a page of all directions, newest first;
 * null when the filters exclude them all (no statement to run). Exported so its query plan is checked.
 */
export function eventsQuery(integrationId: string, q: EventQuery & PageQuery) {
  return unified(arms(integrationId, { ...q, before: decodeCursor(q.cursor) }), "ORDER BY id DESC LIMIT ?", [q.limit + 1]);
}

/** The statement behind a trace: everything for one correlation id, all directions, in time order (downloads carry none). */
export function traceQuery(integrationId: string, correlationId: string) {
  return unified(arms(integrationId, { correlation_id: correlationId }), "ORDER BY received_at, id LIMIT 1000", [])!;
}

export async function queryEvents(db: D1Database, tenantId: string, integrationId: string, q: EventQuery & PageQuery) {
  await getIntegration(db, tenantId, integrationId);
  const query = eventsQuery(integrationId, q);
  if (!query) return { events: [], next_cursor: null };
  const { results } = await db.prepare(query.sql).bind(...query.params).all<MonitoredRow>();
  const { items, next_cursor } = toPage(results, q.limit, toMonitoredEvent);
  return { events: items, next_cursor };
}

/** Replays inbound events (through today's configuration) and outbound deliveries (sent again). */
export async function replay(env: Pick<Env, "DB" | "EVENT_STREAM" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, eventIds: string[]) {
  await getIntegration(env.DB, tenantId, integrationId);
  const results = [];
  const webhook: { id: string; use_case_id: string; mapping_id: string }[] = [];
  for (const eventId of eventIds) {
    const inbound = await replayInboundEvent(env, tenantId, integrationId, eventId);
    if (inbound) {
      const ok = inbound.status === "success";
      results.push({ event_id: eventId, status: ok ? "replayed" : inbound.status, replay_event_id: inbound.event_id, message: inbound.message });
      continue;
    }
    const copied = await copyDeliveryForReplay(env.DB, tenantId, integrationId, eventId);
    if (!copied) {
      results.push({ event_id: eventId, status: "not_found", replay_event_id: null, message: "No such event in this integration" });
      continue;
    }
    if (copied.type === "webhook") webhook.push({ id: copied.id, use_case_id: copied.use_case_id, mapping_id: copied.mapping_id });
    results.push({ event_id: eventId, status: "replayed", replay_event_id: copied.id, message: "Delivery queued again" });
  }
  await enqueueWebhookDeliveries(env, groupByEndpoint(webhook));
  return { replayed: results.filter((r) => r.status === "replayed").length, results };
}

export const WINDOWS = { "1h": 3600_000, "24h": 86_400_000, "7d": 7 * 86_400_000 } as const;

/**
 * Percentiles are computed from at most this many of the newest timed rows of each direction in the
 * window (all of them when there are fewer), so a 7-day window of a busy integration costs one
 * bounded sort in D1 and never loads durations into the Worker. Counts are always exact.
 */
export const STATS_SAMPLE_SIZE = 10_000;

/** The statements of the stats endpoint, each bound to (?1 integration id, ?2 since[, ?3 sample size]), composed of each direction's owner's halves; exported so their query plans are checked. */
export const STATS_SQL = {
  /** Rows per direction, use case and status, and how many of them carry a processing time. */
  counts: `
    ${INBOUND_STATS_SQL.counts}
    UNION ALL
    ${OUTBOUND_STATS_SQL.counts}
    UNION ALL
    ${FILE_STATS_SQL.counts}
    ORDER BY 1, 2, 3`,
  acks: `
    SELECT ack_status, SUM(n) AS n FROM (
      ${INBOUND_STATS_SQL.acks}
      UNION ALL
      ${OUTBOUND_STATS_SQL.acks})
    GROUP BY ack_status`,
  inboundPercentiles: INBOUND_STATS_SQL.percentiles,
  outboundPercentiles: OUTBOUND_STATS_SQL.percentiles,
  filePercentiles: FILE_STATS_SQL.percentiles,
};

type PercentileRow = { p50: number | null; p95: number | null; p99: number | null };

/** Counts, processing-time percentiles (per direction) and ACK counts of a window, aggregated in D1 (one batch). */
export async function stats(db: D1Database, tenantId: string, integrationId: string, window: keyof typeof WINDOWS) {
  await getIntegration(db, tenantId, integrationId);
  const since = new Date(Date.now() - WINDOWS[window]).toISOString();
  const [counts, acks, inbound, outbound, file] = await db.batch<Record<string, unknown>>([
    db.prepare(STATS_SQL.counts).bind(integrationId, since),
    db.prepare(STATS_SQL.acks).bind(integrationId, since),
    db.prepare(STATS_SQL.inboundPercentiles).bind(integrationId, since, STATS_SAMPLE_SIZE),
    db.prepare(STATS_SQL.outboundPercentiles).bind(integrationId, since, STATS_SAMPLE_SIZE),
    db.prepare(STATS_SQL.filePercentiles).bind(integrationId, since, STATS_SAMPLE_SIZE),
  ]);
  const countRows = counts!.results as { direction: string; use_case_slug: string | null; status: string; n: number; timed: number }[];
  const timed = (direction: string) => countRows.filter((c) => c.direction === direction).reduce((sum, c) => sum + c.timed, 0);
  const summary = (direction: string, row: PercentileRow | undefined) => ({ count: timed(direction), p50: row?.p50 ?? null, p95: row?.p95 ?? null, p99: row?.p99 ?? null });
  const ack = Object.fromEntries((acks!.results as { ack_status: string; n: number }[]).map((r) => [r.ack_status, r.n]));
  return {
    window,
    since,
    counts: countRows.map((c) => ({ direction: c.direction, use_case: c.use_case_slug, status: c.status, count: c.n })),
    processing_ms: {
      inbound: summary("inbound", inbound!.results[0] as PercentileRow | undefined),
      outbound: summary("outbound", outbound!.results[0] as PercentileRow | undefined),
      file: summary("file", file!.results[0] as PercentileRow | undefined),
    },
    acks: { pending: ack.pending ?? 0, timeout: ack.timeout ?? 0, processed: ack.processed ?? 0, failed: ack.failed ?? 0 },
  };
}

/** Everything that happened for one correlation id, all directions, in time order. */
export async function trace(db: D1Database, tenantId: string, integrationId: string, correlationId: string) {
  await getIntegration(db, tenantId, integrationId);
  const query = traceQuery(integrationId, correlationId);
  const { results } = await db.prepare(query.sql).bind(...query.params).all<MonitoredRow>();
  if (results.length === 0) throw new AppError("NOT_FOUND", `Nothing recorded for correlation id '${correlationId}'`);
  return { correlation_id: correlationId, events: results.map(toMonitoredEvent) };
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

/** The statements of a retention run, each from the owner of its table; exported so their query plans are checked. */
export const RETENTION_SQL = {
  cursor: CURSOR.position,
  /** The next integrations after the cursor with their retention_days (a corrupt settings row fails the run, and is logged by the cron). */
  integrations: retentionDaysSql(CURSOR.after, RETENTION.defaultDays),
  events: EXPIRED_EVENTS_SQL,
  deliveries: EXPIRED_DELIVERIES_SQL,
  fileDownloads: EXPIRED_DOWNLOADS_SQL,
  auditLog: AUDIT_RETENTION_SQL,
  coreEventDeadLetters: EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL,
  saveCursor: CURSOR.save,
};

/** An integration's deletes in a retention run, in the order their counts are read back: events, deliveries, file downloads. */
const EXPIRED_PER_INTEGRATION = [deleteExpiredEventsStatement, deleteExpiredDeliveriesStatement, deleteExpiredDownloadsStatement] as const;

/**
 * One bounded retention run: deletes events, deliveries and file downloads older than their
 * integration's retention_days, and audit entries older than RETENTION.auditDays, in at most three
 * round trips and RETENTION's row limits; what is left is deleted by the next runs. Answers what it deleted.
 */
export async function applyRetention(db: D1Database, now = Date.now()) {
  const [cursor, picked] = await db.batch<Record<string, unknown>>([db.prepare(RETENTION_SQL.cursor), db.prepare(RETENTION_SQL.integrations).bind(RETENTION.integrationsPerRun)]);
  const position = (cursor!.results[0] as { position: string } | undefined)?.position ?? "";
  const integrations = picked!.results as { id: string; days: number }[];
  const limit = RETENTION.rowsPerIntegration;
  const cutoff = (days: number) => new Date(now - days * 86_400_000).toISOString();
  const deletes = integrations.flatMap((i) => EXPIRED_PER_INTEGRATION.map((statement) => statement(db, i.id, cutoff(i.days), limit)));
  const results = await db.batch([
    ...deletes,
    deleteExpiredAuditStatement(db, cutoff(RETENTION.auditDays), RETENTION.auditRowsPerRun),
    deleteExpiredCoreEventDeadLettersStatement(db, now - RETENTION.deadLetterDays * 86_400_000, RETENTION.auditRowsPerRun),
  ]);
  const changes = (i: number) => results[i]!.meta.changes;
  const changesOf = (integration: number, table: number) => changes(EXPIRED_PER_INTEGRATION.length * integration + table);
  // Continue next run at the first integration that may have more; else after the last one, or from the start.
  const unfinished = integrations.findIndex((_, i) => EXPIRED_PER_INTEGRATION.some((_, table) => changesOf(i, table) >= limit));
  const next = unfinished === 0 ? position : unfinished > 0 ? integrations[unfinished - 1]!.id : integrations.length < RETENTION.integrationsPerRun ? "" : integrations.at(-1)!.id;
  await db.prepare(RETENTION_SQL.saveCursor).bind(next, new Date(now).toISOString()).run();
  const sum = (table: number) => integrations.reduce((n, _, i) => n + changesOf(i, table), 0);
  return {
    integrations: integrations.length,
    events: sum(0),
    deliveries: sum(1),
    file_downloads: sum(2),
    audit_log: changes(deletes.length),
    core_event_dead_letters: changes(deletes.length + 1),
  };
}
