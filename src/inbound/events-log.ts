// The inbound event log in D1: rows, statuses and the statements that write them.
import { nowIso } from "../platform/ids";
import { monitoredWhere, percentilesSql, type MonitoredArm, type MonitoredEventFilter } from "../platform/monitored-events";
import type { ErrorCategory, EventEntityResult, EventError, EventStatus, InboundEventStatus } from "./schema";

export interface EventRow {
  id: string;
  tenant_id: string;
  integration_id: string;
  use_case_id: string | null;
  use_case_slug: string | null;
  direction: "inbound" | "outbound";
  event_name: string | null;
  correlation_id: string | null;
  group_id: string | null;
  deduplication_id: string | null;
  source_timestamp: string | null;
  format: "json" | "xml";
  payload: string | null;
  status: EventStatus;
  error_category: ErrorCategory | null;
  errors: string;
  entities: string;
  warnings: string;
  attempts: number;
  received_at: string;
  started_at: string | null;
  completed_at: string | null;
  processing_duration_ms: number | null;
  replay_of: string | null;
}

export type NewEvent = Pick<
  EventRow,
  "id" | "tenant_id" | "integration_id" | "use_case_id" | "use_case_slug" | "event_name" | "correlation_id" | "group_id" | "deduplication_id" | "source_timestamp" | "format" | "payload" | "status" | "received_at"
> & {
  error_category?: ErrorCategory | null;
  errors?: EventError[];
  warnings?: Record<string, unknown>[];
  replay_of?: string | null;
  /**
   * An X-Signature webhook's Idempotency-Key, stored as its correlation_id: a second duplicate test
   * beside the deduplication id (see KEY_SEEN_SQL), never instead of it.
   */
  idempotency_key?: string | null;
};

export const DEDUP_WINDOW_MS = 24 * 3600 * 1000;

const COLUMNS =
  "id, tenant_id, integration_id, use_case_id, use_case_slug, event_name, correlation_id, group_id, deduplication_id, source_timestamp, format, payload, status, error_category, errors, warnings, received_at, replay_of";

function values(e: NewEvent) {
  return [
    e.id, e.tenant_id, e.integration_id, e.use_case_id, e.use_case_slug, e.event_name, e.correlation_id, e.group_id, e.deduplication_id,
    e.source_timestamp, e.format, e.payload, e.status, e.error_category ?? null, JSON.stringify(e.errors ?? []), JSON.stringify(e.warnings ?? []), e.received_at, e.replay_of ?? null,
  ];
}

const SAME_ID = "SELECT id FROM events WHERE integration_id = ? AND deduplication_id = ? AND received_at > ?";
/**
 * An X-Signature webhook of the same use case that carried the same Idempotency-Key (its
 * correlation_id) in the window: only webhook events have `xsig-` deduplication ids. `+received_at`
 * keeps the planner on events_correlation (a handful of rows) rather than a day of the integration's events.
 */
export const KEY_SEEN_SQL =
  "SELECT id FROM events WHERE integration_id = ? AND correlation_id = ? AND use_case_id = ? AND substr(deduplication_id, 1, 5) = 'xsig-' AND +received_at > ?";

/** The duplicate tests of `e` with their bindings: its deduplication id, and its Idempotency-Key when it has one. */
function duplicateTests(e: NewEvent): { sql: string[]; binds: unknown[] } {
  const since = new Date(Date.parse(e.received_at) - DEDUP_WINDOW_MS).toISOString();
  const sql = [SAME_ID];
  const binds: unknown[] = [e.integration_id, e.deduplication_id, since];
  if (e.idempotency_key) {
    sql.push(KEY_SEEN_SQL);
    binds.push(e.integration_id, e.idempotency_key, e.use_case_id, since);
  }
  return { sql, binds };
}

/**
 * Inserts an event. With a deduplication id, the insert happens only if no event of the integration
 * carried that id in the last 24 hours (nor, for a webhook with an Idempotency-Key, that key): one
 * statement, so concurrent duplicates cannot both pass.
 */
export function insertEventStatement(db: D1Database, e: NewEvent): D1PreparedStatement {
  const placeholders = COLUMNS.split(",").map(() => "?").join(", ");
  if (!e.deduplication_id) return db.prepare(`INSERT INTO events (${COLUMNS}) VALUES (${placeholders})`).bind(...values(e));
  const tests = duplicateTests(e);
  return db
    .prepare(`INSERT INTO events (${COLUMNS}) SELECT ${placeholders} WHERE ${tests.sql.map((t) => `NOT EXISTS (${t})`).join(" AND ")}`)
    .bind(...values(e), ...tests.binds);
}

/** The event that holds a deduplication id (or Idempotency-Key) in the window: the original of any duplicate. */
export function dedupHolderStatement(db: D1Database, e: NewEvent): D1PreparedStatement {
  const tests = duplicateTests(e);
  // One indexed lookup per test (events_dedup, events_correlation), not an OR the planner may scan for.
  return db.prepare(`SELECT id FROM (${tests.sql.join(" UNION ALL ")}) ORDER BY id LIMIT 1`).bind(...tests.binds);
}

export async function loadEvent(db: D1Database, id: string): Promise<EventRow | null> {
  return db.prepare("SELECT * FROM events WHERE id = ?").bind(id).first<EventRow>();
}

export async function markProcessing(db: D1Database, id: string): Promise<string> {
  const at = nowIso();
  await db.prepare("UPDATE events SET status = 'processing', started_at = ?, attempts = attempts + 1 WHERE id = ?").bind(at, id).run();
  return at;
}

export interface EventOutcome {
  status: EventStatus;
  error_category: ErrorCategory | null;
  errors: EventError[];
  entities: EventEntityResult[];
  warnings: unknown[];
}

/**
 * Records an event's outcome in one statement; `redactedPayload`, when given, replaces the stored
 * payload in that same write, so an event is never finished with its PII still in the log.
 */
export async function completeEvent(db: D1Database, id: string, startedAt: string, outcome: EventOutcome, redactedPayload?: string | null): Promise<void> {
  const completedAt = nowIso();
  const payload = redactedPayload === undefined ? [] : [redactedPayload];
  await db
    .prepare(
      `UPDATE events SET status = ?, error_category = ?, errors = ?, entities = ?, warnings = ?, completed_at = ?, processing_duration_ms = ?
       ${redactedPayload === undefined ? "" : ", payload = ?"} WHERE id = ?`,
    )
    .bind(
      outcome.status, outcome.error_category, JSON.stringify(outcome.errors), JSON.stringify(outcome.entities), JSON.stringify(outcome.warnings),
      completedAt, Date.parse(completedAt) - Date.parse(startedAt), ...payload, id,
    )
    .run();
}

export function toEventStatus(row: EventRow): InboundEventStatus {
  return {
    event_id: row.id,
    status: row.status,
    integration_id: row.integration_id,
    use_case_slug: row.use_case_slug,
    event_name: row.event_name,
    correlation_id: row.correlation_id,
    group_id: row.group_id,
    deduplication_id: row.deduplication_id,
    entities: JSON.parse(row.entities),
    errors: JSON.parse(row.errors),
    warnings: JSON.parse(row.warnings),
    error_category: row.error_category,
    attempts: row.attempts,
    received_at: row.received_at,
    completed_at: row.completed_at,
    processing_duration_ms: row.processing_duration_ms,
  };
}

/** The ordering stream an event belongs to: its integration and group. */
export const streamKey = (integrationId: string, groupId: string | null) => `${integrationId}/${groupId ?? ""}`;

// ---- what other contexts may read or change of the log ---------------------------------------

/** The inbound arm of monitoring's unified events view (the monitored-event row shape). */
const MONITORED_COLUMNS = `id, id AS event_id, 'inbound' AS direction, event_name, use_case_slug, status, error_category, correlation_id,
  received_at, completed_at, processing_duration_ms, attempts,
  CASE WHEN errors = '[]' THEN NULL ELSE json_extract(errors, '$[0].message') END AS last_error, ack_status, replay_of, NULL AS file_details`;

/**
 * An integration's inbound events as monitored-event rows, filtered. With a correlation id it reads
 * that index (without statistics the planner would walk the integration's history in id order).
 */
export function monitoredInboundEvents(integrationId: string, q: MonitoredEventFilter): MonitoredArm {
  const from = q.correlation_id !== undefined ? "events INDEXED BY events_correlation" : "events";
  const { where, params } = monitoredWhere(integrationId, q, "received_at");
  if (q.error_category !== undefined) where.push("error_category = ?"), params.push(q.error_category);
  return { sql: `SELECT ${MONITORED_COLUMNS} FROM ${from} WHERE ${where.join(" AND ")}`, params };
}

/** The inbound halves of monitoring's statistics, each bound to (?1 integration id, ?2 since[, ?3 sample size]). */
export const INBOUND_STATS_SQL = {
  counts: `SELECT 'inbound' AS direction, use_case_slug, status, COUNT(*) AS n, COUNT(processing_duration_ms) AS timed
      FROM events WHERE integration_id = ?1 AND received_at >= ?2 GROUP BY use_case_slug, status`,
  acks: "SELECT ack_status, COUNT(*) AS n FROM events WHERE integration_id = ?1 AND received_at >= ?2 AND ack_status IS NOT NULL GROUP BY ack_status",
  percentiles: percentilesSql("events", "received_at"),
};

/** Retention: an integration's oldest events received before ?, at most ? of them (index on (integration_id, received_at)). */
export const EXPIRED_EVENTS_SQL = "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE integration_id = ? AND received_at < ? ORDER BY received_at LIMIT ?)";

export const deleteExpiredEventsStatement = (db: D1Database, integrationId: string, before: string, limit: number) =>
  db.prepare(EXPIRED_EVENTS_SQL).bind(integrationId, before, limit);

/**
 * The ERP's ACK of an inbound event (its ack_id is the event id): sets ack_status to `status` only
 * over one of `overwritable` (or none), so ACK statuses only move forward. Null when the tenant has
 * no such event; else how many rows changed and the status now recorded.
 */
export async function acknowledgeInboundEvent(
  db: D1Database,
  tenantId: string,
  ack: { ack_id: string; status: string; message?: string },
  overwritable: readonly string[],
  at = nowIso(),
): Promise<{ acknowledged: number; statuses: (string | null)[] } | null> {
  const [updated, now] = await db.batch<{ ack_status: string | null }>([
    db
      .prepare("UPDATE events SET ack_status = ?, ack_message = ?, acked_at = ? WHERE id = ? AND tenant_id = ? AND (ack_status IS NULL OR ack_status IN (SELECT value FROM json_each(?))) RETURNING ack_status")
      .bind(ack.status, ack.message ?? null, at, ack.ack_id, tenantId, JSON.stringify(overwritable)),
    db.prepare("SELECT ack_status FROM events WHERE id = ? AND tenant_id = ?").bind(ack.ack_id, tenantId),
  ]);
  if (now!.results.length === 0) return null;
  return { acknowledged: updated!.results.length, statuses: now!.results.map((r) => r.ack_status) };
}
