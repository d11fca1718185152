// The inbound event log: rows, statuses and the statements that read and write them in each shard's
// Durable Object (inbound/log-do.ts).
import { nowIso } from "../platform/ids";
import { jsonChunks } from "../platform/json";
import { insertRows } from "../platform/object-storage";
import { monitoredWhere, objectStatsSql, type MonitoredArm, type MonitoredEventFilter } from "../platform/monitored-events";
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

/**
 * The event log of one shard (inbound/log-do.ts), in that object's own SQLite: the same columns the
 * log had in D1, plus the ordering queue. `group_key` is the group id ('' for none): each group's
 * events run in order, groups side by side.
 */
export const EVENT_LOG_SCHEMA = `
  CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, integration_id TEXT NOT NULL, use_case_id TEXT, use_case_slug TEXT,
    direction TEXT NOT NULL DEFAULT 'inbound', event_name TEXT, correlation_id TEXT, group_id TEXT, deduplication_id TEXT,
    source_timestamp TEXT, format TEXT NOT NULL DEFAULT 'json', payload TEXT, status TEXT NOT NULL, error_category TEXT,
    errors TEXT NOT NULL DEFAULT '[]', entities TEXT NOT NULL DEFAULT '[]', warnings TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0, received_at TEXT NOT NULL, started_at TEXT, completed_at TEXT,
    processing_duration_ms INTEGER, replay_of TEXT, ack_status TEXT, ack_message TEXT, acked_at TEXT);
  CREATE INDEX IF NOT EXISTS events_dedup ON events(deduplication_id, received_at) WHERE deduplication_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS events_correlation ON events(correlation_id) WHERE correlation_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
  CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, group_key TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_at INTEGER NOT NULL DEFAULT 0, enqueued_at TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS queue_group ON queue(group_key, seq);
  CREATE INDEX IF NOT EXISTS queue_waiting ON queue(next_at) WHERE next_at > 0;`;

const COLUMNS = [
  "id", "tenant_id", "integration_id", "use_case_id", "use_case_slug", "event_name", "correlation_id", "group_id", "deduplication_id", "source_timestamp",
  "format", "payload", "status", "error_category", "errors", "warnings", "received_at", "replay_of",
];

function values(e: NewEvent) {
  return [
    e.id, e.tenant_id, e.integration_id, e.use_case_id, e.use_case_slug, e.event_name, e.correlation_id, e.group_id, e.deduplication_id,
    e.source_timestamp, e.format, e.payload, e.status, e.error_category ?? null, JSON.stringify(e.errors ?? []), JSON.stringify(e.warnings ?? []), e.received_at, e.replay_of ?? null,
  ];
}

/** An event of the same group holding the deduplication id in the window (a retry repeats both). */
export const SAME_ID = "SELECT id FROM events WHERE deduplication_id = ? AND received_at > ? AND group_id IS ? ORDER BY id LIMIT 1";
/**
 * An X-Signature webhook of the same use case that carried the same Idempotency-Key (its
 * correlation_id) in the window: only webhook events have `xsig-` deduplication ids.
 */
export const KEY_SEEN_SQL =
  "SELECT id FROM events WHERE correlation_id = ? AND use_case_id = ? AND substr(deduplication_id, 1, 5) = 'xsig-' AND +received_at > ? ORDER BY id LIMIT 1";

/**
 * The event of this log that already holds `e`'s deduplication id in its group (or, for a webhook
 * with an Idempotency-Key, that key) within the 24-hour window, or null. The log is one object, so the check
 * and the insert that follows it cannot interleave with another writer's.
 */
export function duplicateHolder(sql: SqlStorage, e: NewEvent): string | null {
  if (!e.deduplication_id) return null;
  const since = new Date(Date.parse(e.received_at) - DEDUP_WINDOW_MS).toISOString();
  const same = sql.exec<{ id: string }>(SAME_ID, e.deduplication_id, since, e.group_id).toArray()[0];
  if (same) return same.id;
  if (!e.idempotency_key) return null;
  return sql.exec<{ id: string }>(KEY_SEEN_SQL, e.idempotency_key, e.use_case_id, since).toArray()[0]?.id ?? null;
}


/** Inserts many events in as few statements as fit (a statement costs more than its rows). */
export function insertEvents(sql: SqlStorage, events: NewEvent[]): void {
  insertRows(sql, "INSERT INTO events", COLUMNS, events.map(values));
}

export function loadEvent(sql: SqlStorage, id: string): EventRow | null {
  return (sql.exec<EventRow & Record<string, SqlStorageValue>>("SELECT * FROM events WHERE id = ?", id).toArray()[0] as EventRow | undefined) ?? null;
}

export interface EventOutcome {
  status: EventStatus;
  error_category: ErrorCategory | null;
  errors: EventError[];
  entities: EventEntityResult[];
  warnings: unknown[];
}

/**
 * Records many outcomes in as few statements as fit (jsonChunks): `outcomes` are `{ id, status,
 * error_category, errors, entities, warnings (JSON texts), started_at, duration, redact (0/1),
 * payload }`; where `redact` is 1 the stored payload is replaced in the same write.
 */
export function completeEvents(sql: SqlStorage, outcomes: unknown[], completedAt: string): void {
  for (const chunk of jsonChunks(outcomes)) completeChunk(sql, chunk, completedAt);
}

function completeChunk(sql: SqlStorage, outcomes: string, completedAt: string): void {
  sql.exec(
    `UPDATE events SET status = o.value ->> 'status', error_category = o.value ->> 'error_category', errors = o.value ->> 'errors',
       entities = o.value ->> 'entities', warnings = o.value ->> 'warnings', started_at = o.value ->> 'started_at', completed_at = ?,
       processing_duration_ms = o.value ->> 'duration',
       payload = CASE WHEN o.value ->> 'redact' = 1 THEN o.value ->> 'payload' ELSE events.payload END
     FROM json_each(?) AS o WHERE events.id = o.value ->> 'id'`,
    completedAt,
    outcomes,
  );
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

/** The inbound halves of monitoring's statistics, run in each shard. */
export const INBOUND_STATS_SQL = objectStatsSql("inbound", "events", "received_at");

/** Retention: a shard's oldest events received before ?, at most ? of them (index events_received). */
export const EXPIRED_EVENTS_SQL = "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? ORDER BY received_at LIMIT ?)";

/**
 * The ERP's ACK of an inbound event (its ack_id is the event id): sets ack_status to `status` only
 * over one of `overwritable` (or none), so ACK statuses only move forward. Null when the tenant has
 * no such event; else how many rows changed and the status now recorded.
 */
export function acknowledgeEvent(
  sql: SqlStorage,
  tenantId: string,
  ack: { ack_id: string; status: string; message?: string },
  overwritable: readonly string[],
  at: string,
): { acknowledged: number; statuses: (string | null)[] } | null {
  const updated = sql
    .exec<{ ack_status: string | null }>(
      "UPDATE events SET ack_status = ?, ack_message = ?, acked_at = ? WHERE id = ? AND tenant_id = ? AND (ack_status IS NULL OR ack_status IN (SELECT value FROM json_each(?))) RETURNING ack_status",
      ack.status, ack.message ?? null, at, ack.ack_id, tenantId, JSON.stringify(overwritable),
    )
    .toArray();
  const now = sql.exec<{ ack_status: string | null }>("SELECT ack_status FROM events WHERE id = ? AND tenant_id = ?", ack.ack_id, tenantId).toArray();
  if (now.length === 0) return null;
  return { acknowledged: updated.length, statuses: now.map((r) => r.ack_status) };
}
