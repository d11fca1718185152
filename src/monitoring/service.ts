// Monitoring: one view over inbound events and outbound deliveries, replay, statistics, traces, the
// audit log, payload redaction and retention.
import { replayInboundEvent } from "../inbound/service";
import { getIntegration } from "../integrations/service";
import { AppError } from "../platform/errors";
import { newId, nowIso } from "../platform/ids";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { enqueueWebhookDeliveries, groupByEndpoint } from "../outbound/service";
import type { EventQuery } from "./schema";

export interface MonitoredEvent {
  id: string;
  event_id: string;
  direction: "inbound" | "outbound";
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
}

// The two directions as one row shape. Each arm reads its own table through its own indexes; a
// compound SELECT ordered by id merges the two index-ordered arms (MERGE in the query plan), so a page
// reads about `limit` rows of each table instead of sorting the integration's whole history.
const INBOUND_COLUMNS = `id, id AS event_id, 'inbound' AS direction, event_name, use_case_slug, status, error_category, correlation_id,
  received_at, completed_at, processing_duration_ms, attempts,
  CASE WHEN errors = '[]' THEN NULL ELSE json_extract(errors, '$[0].message') END AS last_error, ack_status, replay_of`;
const OUTBOUND_COLUMNS = `id, id AS event_id, 'outbound' AS direction, event_name, use_case_slug, status,
  CASE WHEN status IN ('failed', 'dead_lettered') THEN 'downstream' END AS error_category, correlation_id,
  created_at AS received_at, completed_at, processing_duration_ms, attempts, last_error, ack_status, replay_of`;

type Arm = { from: string; where: string[]; params: unknown[] };

/**
 * The FROM and WHERE of each direction's arm for a query; an arm the filters exclude is null. With a
 * correlation id the arms read its index (the planner, having no statistics, would otherwise walk
 * the integration's whole history in id order to spare itself sorting a handful of rows).
 */
function arms(integrationId: string, q: Partial<EventQuery> & { before?: string }): { inbound: Arm | null; outbound: Arm | null } {
  const byCorrelation = q.correlation_id !== undefined;
  const inbound: Arm = { from: byCorrelation ? "events INDEXED BY events_correlation" : "events", where: ["integration_id = ?"], params: [integrationId] };
  const outbound: Arm = { from: byCorrelation ? "deliveries INDEXED BY deliveries_correlation" : "deliveries", where: ["integration_id = ?"], params: [integrationId] };
  const add = (arm: Arm, clause: string, ...values: unknown[]) => {
    arm.where.push(clause);
    arm.params.push(...values);
  };
  const both = (inColumn: string, outColumn: string, op: string, value: unknown) => {
    if (value === undefined) return;
    add(inbound, `${inColumn} ${op} ?`, value);
    add(outbound, `${outColumn} ${op} ?`, value);
  };
  both("id", "id", "=", q.event_id);
  both("correlation_id", "correlation_id", "=", q.correlation_id);
  both("event_name", "event_name", "=", q.event_name);
  both("use_case_slug", "use_case_slug", "=", q.use_case);
  both("status", "status", "=", q.status);
  both("received_at", "created_at", ">=", q.from && new Date(q.from).toISOString());
  both("received_at", "created_at", "<", q.to && new Date(q.to).toISOString());
  both("id", "id", "<", q.before || undefined);
  let keepOutbound = q.direction !== "inbound";
  if (q.error_category !== undefined) {
    add(inbound, "error_category = ?", q.error_category);
    // An outbound row's category is 'downstream' exactly when it failed or was dead-lettered.
    if (q.error_category === "downstream") add(outbound, "status IN ('failed', 'dead_lettered')");
    else keepOutbound = false;
  }
  return { inbound: q.direction === "outbound" ? null : inbound, outbound: keepOutbound ? outbound : null };
}

/** A compound SELECT over the arms the filters keep, with `tail` (ORDER BY ... LIMIT ?) applied to the whole. */
function unified(parts: { inbound: Arm | null; outbound: Arm | null }, tail: string, tailParams: unknown[]) {
  const selects: string[] = [];
  const params: unknown[] = [];
  if (parts.inbound) selects.push(`SELECT ${INBOUND_COLUMNS} FROM ${parts.inbound.from} WHERE ${parts.inbound.where.join(" AND ")}`), params.push(...parts.inbound.params);
  if (parts.outbound) selects.push(`SELECT ${OUTBOUND_COLUMNS} FROM ${parts.outbound.from} WHERE ${parts.outbound.where.join(" AND ")}`), params.push(...parts.outbound.params);
  if (selects.length === 0) return null;
  return { sql: `${selects.join(" UNION ALL ")} ${tail}`, params: [...params, ...tailParams] };
}

/**
 * The statement behind POST /v1/integrations/{id}/events: a page of both directions, newest first;
 * null when the filters exclude both (no statement to run). Exported so its query plan is checked.
 */
export function eventsQuery(integrationId: string, q: EventQuery & PageQuery) {
  return unified(arms(integrationId, { ...q, before: decodeCursor(q.cursor) }), "ORDER BY id DESC LIMIT ?", [q.limit + 1]);
}

/** The statement behind a trace: everything for one correlation id, both directions, in time order. */
export function traceQuery(integrationId: string, correlationId: string) {
  return unified(arms(integrationId, { correlation_id: correlationId }), "ORDER BY received_at, id LIMIT 1000", [])!;
}

export async function queryEvents(db: D1Database, tenantId: string, integrationId: string, q: EventQuery & PageQuery) {
  await getIntegration(db, tenantId, integrationId);
  const query = eventsQuery(integrationId, q);
  if (!query) return { events: [], next_cursor: null };
  const { results } = await db.prepare(query.sql).bind(...query.params).all<MonitoredEvent & { id: string }>();
  const { items, next_cursor } = toPage(results, q.limit, ({ id: _, ...row }) => row);
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
    const id = newId();
    const copied = await env.DB
      .prepare(
        `INSERT INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, correlation_id, payload,
           status, ack_id, max_attempts, visible_at, created_at, replay_of)
         SELECT ?, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id || ':replay:' || ?, event_name, correlation_id, payload,
           'pending', ack_id, max_attempts, ?, ?, id
         FROM deliveries WHERE id = ? AND tenant_id = ? AND integration_id = ? RETURNING type, use_case_id, mapping_id`,
      )
      .bind(id, id, nowIso(), nowIso(), eventId, tenantId, integrationId)
      .first<{ type: string; use_case_id: string; mapping_id: string }>();
    if (!copied) {
      results.push({ event_id: eventId, status: "not_found", replay_event_id: null, message: "No such event in this integration" });
      continue;
    }
    if (copied.type === "webhook") webhook.push({ id, use_case_id: copied.use_case_id, mapping_id: copied.mapping_id });
    results.push({ event_id: eventId, status: "replayed", replay_event_id: id, message: "Delivery queued again" });
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

/** Nearest-rank percentile p of n sorted values: rank max(1, ceil(p × n / 100)), in integer arithmetic. */
const rank = (p: number) => `MAX(1, (${p} * n + 99) / 100)`;

const percentilesOf = (table: "events" | "deliveries", timeColumn: "received_at" | "created_at") => `
  WITH sample AS (
    SELECT processing_duration_ms AS d FROM ${table}
     WHERE integration_id = ?1 AND ${timeColumn} >= ?2 AND processing_duration_ms IS NOT NULL
     ORDER BY ${timeColumn} DESC LIMIT ?3),
  ranked AS (SELECT d, ROW_NUMBER() OVER (ORDER BY d) AS position, COUNT(*) OVER () AS n FROM sample)
  SELECT MAX(CASE WHEN position = ${rank(50)} THEN d END) AS p50, MAX(CASE WHEN position = ${rank(95)} THEN d END) AS p95,
         MAX(CASE WHEN position = ${rank(99)} THEN d END) AS p99
    FROM ranked`;

/** The statements of the stats endpoint, each bound to (?1 integration id, ?2 since[, ?3 sample size]); exported so their query plans are checked. */
export const STATS_SQL = {
  /** Rows per direction, use case and status, and how many of them carry a processing time. */
  counts: `
    SELECT 'inbound' AS direction, use_case_slug, status, COUNT(*) AS n, COUNT(processing_duration_ms) AS timed
      FROM events WHERE integration_id = ?1 AND received_at >= ?2 GROUP BY use_case_slug, status
    UNION ALL
    SELECT 'outbound', use_case_slug, status, COUNT(*), COUNT(processing_duration_ms)
      FROM deliveries WHERE integration_id = ?1 AND created_at >= ?2 GROUP BY use_case_slug, status
    ORDER BY 1, 2, 3`,
  acks: `
    SELECT ack_status, SUM(n) AS n FROM (
      SELECT ack_status, COUNT(*) AS n FROM events WHERE integration_id = ?1 AND received_at >= ?2 AND ack_status IS NOT NULL GROUP BY ack_status
      UNION ALL
      SELECT ack_status, COUNT(*) FROM deliveries WHERE integration_id = ?1 AND created_at >= ?2 AND ack_status IS NOT NULL GROUP BY ack_status)
    GROUP BY ack_status`,
  inboundPercentiles: percentilesOf("events", "received_at"),
  outboundPercentiles: percentilesOf("deliveries", "created_at"),
};

type PercentileRow = { p50: number | null; p95: number | null; p99: number | null };

/** Counts, processing-time percentiles and ACK counts of a window, aggregated in D1 (one batch). */
export async function stats(db: D1Database, tenantId: string, integrationId: string, window: keyof typeof WINDOWS) {
  await getIntegration(db, tenantId, integrationId);
  const since = new Date(Date.now() - WINDOWS[window]).toISOString();
  const [counts, acks, inbound, outbound] = await db.batch<Record<string, unknown>>([
    db.prepare(STATS_SQL.counts).bind(integrationId, since),
    db.prepare(STATS_SQL.acks).bind(integrationId, since),
    db.prepare(STATS_SQL.inboundPercentiles).bind(integrationId, since, STATS_SAMPLE_SIZE),
    db.prepare(STATS_SQL.outboundPercentiles).bind(integrationId, since, STATS_SAMPLE_SIZE),
  ]);
  const countRows = counts!.results as { direction: string; use_case_slug: string | null; status: string; n: number; timed: number }[];
  const timed = (direction: string) => countRows.filter((c) => c.direction === direction).reduce((sum, c) => sum + c.timed, 0);
  const summary = (direction: string, row: PercentileRow | undefined) => ({ count: timed(direction), p50: row?.p50 ?? null, p95: row?.p95 ?? null, p99: row?.p99 ?? null });
  const ack = Object.fromEntries((acks!.results as { ack_status: string; n: number }[]).map((r) => [r.ack_status, r.n]));
  return {
    window,
    since,
    counts: countRows.map((c) => ({ direction: c.direction, use_case: c.use_case_slug, status: c.status, count: c.n })),
    processing_ms: { inbound: summary("inbound", inbound!.results[0] as PercentileRow | undefined), outbound: summary("outbound", outbound!.results[0] as PercentileRow | undefined) },
    acks: { pending: ack.pending ?? 0, timeout: ack.timeout ?? 0, processed: ack.processed ?? 0, failed: ack.failed ?? 0 },
  };
}

/** Everything that happened for one correlation id, both directions, in time order. */
export async function trace(db: D1Database, tenantId: string, integrationId: string, correlationId: string) {
  await getIntegration(db, tenantId, integrationId);
  const query = traceQuery(integrationId, correlationId);
  const { results } = await db.prepare(query.sql).bind(...query.params).all<MonitoredEvent & { id: string }>();
  if (results.length === 0) throw new AppError("NOT_FOUND", `Nothing recorded for correlation id '${correlationId}'`);
  return { correlation_id: correlationId, events: results.map(({ id: _, ...row }) => row) };
}

/** A page of a tenant's audit log, newest first: without and with a cursor (index audit_log_tenant). */
export const AUDIT_LOG_SQL = {
  first: "SELECT * FROM audit_log WHERE tenant_id = ? ORDER BY id DESC LIMIT ?",
  after: "SELECT * FROM audit_log WHERE tenant_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
};

export async function auditLog(db: D1Database, tenantId: string, page: PageQuery) {
  const before = decodeCursor(page.cursor);
  const statement = before ? db.prepare(AUDIT_LOG_SQL.after).bind(tenantId, before, page.limit + 1) : db.prepare(AUDIT_LOG_SQL.first).bind(tenantId, page.limit + 1);
  const { results } = await statement.all<{ id: string; actor: string; action: string; target: string | null; details: string; at: string }>();
  const { items, next_cursor } = toPage(results, page.limit, (r) => ({ id: r.id, actor: r.actor, action: r.action, target: r.target, details: JSON.parse(r.details), at: r.at }));
  return { entries: items, next_cursor };
}

// ---- retention ------------------------------------------------------------------

/**
 * Bounds of one retention run (every minute). Integrations are visited round-robin from a cursor
 * kept in `maintenance_cursors`; each visit deletes at most `rowsPerIntegration` of its oldest
 * expired events and as many deliveries, and an integration that had more is visited again first
 * next run. Audit entries are kept `auditDays` days (the same for every tenant).
 */
export const RETENTION = { integrationsPerRun: 20, rowsPerIntegration: 500, auditRowsPerRun: 1000, auditDays: 365, defaultDays: 30 } as const;

/** The statements of a retention run; exported so their query plans are checked. */
export const RETENTION_SQL = {
  cursor: "SELECT position FROM maintenance_cursors WHERE job = 'retention'",
  /** The next integrations after the cursor with their retention_days (a corrupt settings row fails the run, and is logged by the cron). */
  integrations: `SELECT id, COALESCE(json_extract(settings, '$.retention_days'), ${RETENTION.defaultDays}) AS days FROM integrations
    WHERE id > COALESCE((SELECT position FROM maintenance_cursors WHERE job = 'retention'), '') ORDER BY id LIMIT ?`,
  events: "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE integration_id = ? AND received_at < ? ORDER BY received_at LIMIT ?)",
  deliveries: "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE integration_id = ? AND created_at < ? ORDER BY created_at LIMIT ?)",
  auditLog: "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)",
  saveCursor: `INSERT INTO maintenance_cursors (job, position, updated_at) VALUES ('retention', ?, ?)
    ON CONFLICT (job) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
};

/**
 * One bounded retention run: deletes events and deliveries older than their integration's
 * retention_days, and audit entries older than RETENTION.auditDays, in at most three round trips
 * and RETENTION's row limits; what is left is deleted by the next runs. Answers what it deleted.
 */
export async function applyRetention(db: D1Database, now = Date.now()) {
  const [cursor, picked] = await db.batch<Record<string, unknown>>([db.prepare(RETENTION_SQL.cursor), db.prepare(RETENTION_SQL.integrations).bind(RETENTION.integrationsPerRun)]);
  const position = (cursor!.results[0] as { position: string } | undefined)?.position ?? "";
  const integrations = picked!.results as { id: string; days: number }[];
  const limit = RETENTION.rowsPerIntegration;
  const cutoff = (days: number) => new Date(now - days * 86_400_000).toISOString();
  const deletes = integrations.flatMap((i) => [
    db.prepare(RETENTION_SQL.events).bind(i.id, cutoff(i.days), limit),
    db.prepare(RETENTION_SQL.deliveries).bind(i.id, cutoff(i.days), limit),
  ]);
  const results = await db.batch([...deletes, db.prepare(RETENTION_SQL.auditLog).bind(cutoff(RETENTION.auditDays), RETENTION.auditRowsPerRun)]);
  const changes = (i: number) => results[i]!.meta.changes;
  // Continue next run at the first integration that may have more; else after the last one, or from the start.
  const unfinished = integrations.findIndex((_, i) => changes(2 * i) >= limit || changes(2 * i + 1) >= limit);
  const next = unfinished === 0 ? position : unfinished > 0 ? integrations[unfinished - 1]!.id : integrations.length < RETENTION.integrationsPerRun ? "" : integrations.at(-1)!.id;
  await db.prepare(RETENTION_SQL.saveCursor).bind(next, new Date(now).toISOString()).run();
  const sum = (from: number) => integrations.reduce((n, _, i) => n + changes(2 * i + from), 0);
  return { integrations: integrations.length, events: sum(0), deliveries: sum(1), audit_log: changes(deletes.length) };
}
