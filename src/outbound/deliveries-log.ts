// The deliveries of one outbound mapping, as its OutboundEndpoint Durable Object stores them: the
// schema and every statement that reads or changes them. The rows keep the columns the D1 table had
// (tenant and integration included), so monitoring's filters and the poll, redrive and ACK statements
// are the same SQL, run in the object that owns the rows instead of in the one shared D1 database.
import { insertRows } from "../platform/object-storage";
import { monitoredWhere, objectStatsSql, type MonitoredArm, type MonitoredEventFilter } from "../platform/monitored-events";
import type { Delivery } from "./schema";

export const DELIVERIES_SCHEMA = `
  CREATE TABLE IF NOT EXISTS deliveries (
    id                      TEXT PRIMARY KEY,            -- ULID; also the webhook-id header
    tenant_id               TEXT NOT NULL,
    integration_id          TEXT NOT NULL,
    use_case_id             TEXT NOT NULL,
    use_case_slug           TEXT NOT NULL,
    mapping_id              TEXT NOT NULL,
    type                    TEXT NOT NULL CHECK (type IN ('webhook', 'poll')),
    event_id                TEXT NOT NULL UNIQUE,        -- the core event's _event_id: one delivery per event and mapping
    event_name              TEXT NOT NULL,
    correlation_id          TEXT,
    payload                 TEXT NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead_lettered')),
    ack_id                  TEXT,
    ack_status              TEXT CHECK (ack_status IN ('pending', 'processed', 'failed', 'timeout')),
    ack_message             TEXT,
    acked_at                TEXT,
    attempts                INTEGER NOT NULL DEFAULT 0,
    max_attempts            INTEGER NOT NULL,
    last_error              TEXT,
    last_status_code        INTEGER,
    lease_token             TEXT,
    visible_at              TEXT,
    due_at                  INTEGER,                     -- webhook: when the next attempt may go (ms)
    created_at              TEXT NOT NULL,
    completed_at            TEXT,
    processing_duration_ms  INTEGER,
    replay_of               TEXT
  );
  CREATE INDEX IF NOT EXISTS deliveries_integration ON deliveries(integration_id, id);
  CREATE INDEX IF NOT EXISTS deliveries_integration_created ON deliveries(integration_id, created_at);
  CREATE INDEX IF NOT EXISTS deliveries_poll ON deliveries(integration_id, type, status, visible_at);
  CREATE INDEX IF NOT EXISTS deliveries_ack ON deliveries(ack_id) WHERE ack_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS deliveries_correlation ON deliveries(integration_id, correlation_id) WHERE correlation_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS deliveries_ack_pending ON deliveries(completed_at) WHERE ack_status = 'pending';
  CREATE INDEX IF NOT EXISTS deliveries_dead_lettered ON deliveries(integration_id, id) WHERE status = 'dead_lettered';
  CREATE INDEX IF NOT EXISTS deliveries_pending_order ON deliveries(use_case_id, mapping_id, id) WHERE status = 'pending';
  CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(due_at, id) WHERE status = 'pending' AND type = 'webhook';
  CREATE INDEX IF NOT EXISTS deliveries_webhook_order ON deliveries(id) WHERE status = 'pending' AND type = 'webhook';
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/** What every delivery of one endpoint shares. */
export interface EndpointMeta {
  endpoint_id: string;
  tenant_id: string;
  integration_id: string;
  use_case_id: string;
  mapping_id: string;
  type: "webhook" | "poll";
}

/** A delivery as fan-out creates it: pending, or dead-lettered at once with `last_error`. */
export interface NewDelivery {
  id: string;
  use_case_slug: string;
  event_id: string;
  event_name: string;
  correlation_id: string | null;
  payload: string;
  status: "pending" | "dead_lettered";
  ack_id: string | null;
  max_attempts: number;
  last_error: string | null;
  created_at: string;
  completed_at: string | null;
}

export interface DeliveryRow {
  id: string;
  tenant_id: string;
  integration_id: string;
  use_case_id: string;
  use_case_slug: string;
  mapping_id: string;
  type: "webhook" | "poll";
  event_id: string;
  event_name: string;
  correlation_id: string | null;
  payload: string;
  status: Delivery["status"];
  ack_id: string | null;
  ack_status: string | null;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  last_status_code: number | null;
  lease_token: string | null;
  visible_at: string | null;
  created_at: string;
  completed_at: string | null;
}

export const fromDeliveryRow = (r: DeliveryRow): Delivery => ({
  id: r.id, use_case_id: r.use_case_id, use_case_slug: r.use_case_slug, mapping_id: r.mapping_id, type: r.type, event_id: r.event_id,
  event_name: r.event_name, correlation_id: r.correlation_id, status: r.status, ack_id: r.ack_id, ack_status: r.ack_status, attempts: r.attempts,
  last_error: r.last_error, last_status_code: r.last_status_code, created_at: r.created_at, completed_at: r.completed_at, payload: JSON.parse(r.payload),
});

const INSERT_COLUMNS = [
  "id", "tenant_id", "integration_id", "use_case_id", "use_case_slug", "mapping_id", "type", "event_id", "event_name", "correlation_id",
  "payload", "status", "ack_id", "max_attempts", "last_error", "visible_at", "due_at", "created_at", "completed_at",
];
/**
 * Inserts new deliveries in as few statements as fit; a delivery whose event this endpoint already
 * has is ignored (UNIQUE event_id), so a fan-out repeated by the queue creates nothing twice.
 */
export function insertDeliveries(sql: SqlStorage, meta: EndpointMeta, rows: NewDelivery[], now: number): void {
  const values = rows.map((r) => [
    r.id, meta.tenant_id, meta.integration_id, meta.use_case_id, r.use_case_slug, meta.mapping_id, meta.type, r.event_id, r.event_name, r.correlation_id,
    r.payload, r.status, r.ack_id, r.max_attempts, r.last_error, r.created_at, r.status === "pending" && meta.type === "webhook" ? now : null, r.created_at, r.completed_at,
  ]);
  insertRows(sql, "INSERT OR IGNORE INTO deliveries", INSERT_COLUMNS, values);
}

/** Due webhook deliveries: the endpoint's oldest pending one when ordered (it holds the rest back), else the earliest due. */
export const DUE_SQL = {
  ordered: "SELECT id, due_at FROM deliveries INDEXED BY deliveries_webhook_order WHERE status = 'pending' AND type = 'webhook' ORDER BY id LIMIT 1",
  unordered: "SELECT id, due_at FROM deliveries WHERE status = 'pending' AND type = 'webhook' ORDER BY due_at, id LIMIT ?",
};

export type FinalStatus = "delivered" | "failed" | "dead_lettered";

/**
 * Records an attempt's outcome (?1 status code, ?2 error, ?3 final status or null, ?4 now as ISO,
 * ?5 when to try again (ms) or null, ?6 id). A delivered one with ACK tracking starts ACK_PENDING.
 */
export const OUTCOME_SQL = `UPDATE deliveries SET attempts = attempts + 1, last_status_code = ?1, last_error = ?2, status = COALESCE(?3, status),
    completed_at = CASE WHEN ?3 IS NULL THEN completed_at ELSE ?4 END,
    processing_duration_ms = CASE WHEN ?3 IS NULL THEN processing_duration_ms ELSE CAST((julianday(?4) - julianday(created_at)) * 86400000 AS INTEGER) END,
    ack_status = CASE WHEN ?3 = 'delivered' AND ack_id IS NOT NULL AND ack_status IS NULL THEN 'pending' ELSE ack_status END,
    due_at = ?5
  WHERE id = ?6`;

/** Every pending webhook delivery of an endpoint whose use case or mapping is gone is dead-lettered. ?1 now, ?2 error. */
export const ORPHANED_SQL = "UPDATE deliveries SET status = 'dead_lettered', completed_at = ?1, last_error = ?2, due_at = NULL WHERE status = 'pending' AND type = 'webhook'";

// ---- poll delivery ----------------------------------------------------------------------------

/**
 * Messages a poll may lease now, in the order they became visible: pending, not leased (visible_at
 * <= now, so leased rows are never read: the range of index deliveries_poll ends before them), with
 * attempts left, and, under poison_policy "block", only the oldest pending message of its mapping (a
 * leased or exhausted head holds the rest back). Parameters: ?1 now, ?2 the policies as JSON
 * `{ "<use_case_id>/<mapping_id>": { "max": n, "block": 0|1 } }` (a mapping not in it keeps its row's
 * max_attempts and does not block), ?3 integration id, ?4 limit.
 */
const POLL_CANDIDATES = `
  SELECT message.id FROM deliveries message
    LEFT JOIN json_each(?2) policy ON policy.key = message.use_case_id || '/' || message.mapping_id
   WHERE message.integration_id = ?3 AND message.type = 'poll' AND message.status = 'pending' AND message.visible_at <= ?1
     AND message.attempts < COALESCE(json_extract(policy.value, '$.max'), message.max_attempts)
     AND (COALESCE(json_extract(policy.value, '$.block'), 0) = 0 OR NOT EXISTS (
           SELECT 1 FROM deliveries older WHERE older.use_case_id = message.use_case_id AND older.mapping_id = message.mapping_id AND older.status = 'pending' AND older.id < message.id))
   ORDER BY message.visible_at LIMIT ?4`;

/** The statements of one poll, run in one transaction, in this order. */
export const POLL_SQL = {
  /** Exhausted messages of non-blocking mappings go to the dead-letter queue. ?1 now, ?2 policies, ?3 integration, ?4 batch size. */
  deadLetter: `UPDATE deliveries SET status = 'dead_lettered', completed_at = ?1, last_error = 'max_delivery_attempts reached without ack'
    WHERE id IN (
      SELECT message.id FROM deliveries message
        LEFT JOIN json_each(?2) policy ON policy.key = message.use_case_id || '/' || message.mapping_id
       WHERE message.integration_id = ?3 AND message.type = 'poll' AND message.status = 'pending' AND message.visible_at <= ?1
         AND COALESCE(json_extract(policy.value, '$.block'), 0) = 0 AND message.attempts >= COALESCE(json_extract(policy.value, '$.max'), message.max_attempts)
       ORDER BY message.visible_at LIMIT ?4)`,
  /** Leases the candidates, each with its own token. ?5 = the end of the lease. */
  lease: `UPDATE deliveries SET lease_token = lower(hex(randomblob(16))), visible_at = ?5, attempts = attempts + 1
    WHERE id IN (${POLL_CANDIDATES}) AND status = 'pending' AND visible_at <= ?1
    RETURNING id, lease_token, use_case_id, event_name, event_id, payload, created_at`,
  /** Whether another message could be leased now (after `lease` took its share). ?4 = 1. */
  more: `SELECT EXISTS (${POLL_CANDIDATES}) AS more`,
};

/** A poll message's ACK: delivered if its lease is still the current one. ?1 now, ?2 id, ?3 lease token. */
export const POLL_ACK_SQL = `UPDATE deliveries SET status = 'delivered', completed_at = ?1, lease_token = NULL,
    processing_duration_ms = CAST((julianday(?1) - julianday(created_at)) * 86400000 AS INTEGER),
    ack_status = CASE WHEN ack_id IS NOT NULL AND ack_status IS NULL THEN 'pending' ELSE ack_status END
  WHERE id = ?2 AND type = 'poll' AND status = 'pending' AND lease_token = ?3 AND visible_at > ?1 RETURNING id`;

// ---- ACK tracking -----------------------------------------------------------------------------

/** The ERP's ACK over the rows of one ack_id: ?1 status, ?2 message, ?3 now, ?4 ack id, ?5 tenant, ?6 statuses it may overwrite (JSON). */
export const ACKNOWLEDGE_SQL = {
  update: `UPDATE deliveries SET ack_status = ?1, ack_message = ?2, acked_at = ?3
    WHERE ack_id = ?4 AND tenant_id = ?5 AND (ack_status IS NULL OR ack_status IN (SELECT value FROM json_each(?6))) RETURNING ack_status`,
  now: "SELECT ack_status FROM deliveries WHERE ack_id = ? AND tenant_id = ?",
};

/** Delivered deliveries still ACK_PENDING that were completed before ?, oldest first (index deliveries_ack_pending). */
export const ACK_TIMEOUT_SQL = `UPDATE deliveries SET ack_status = 'timeout'
  WHERE id IN (SELECT id FROM deliveries WHERE ack_status = 'pending' AND completed_at < ? ORDER BY completed_at LIMIT ?) AND ack_status = 'pending'`;

/** The oldest delivery waiting for its ACK: when the endpoint next has an ACK to time out. */
export const NEXT_ACK_DEADLINE_SQL = "SELECT completed_at FROM deliveries WHERE ack_status = 'pending' ORDER BY completed_at LIMIT 1";

// ---- dead-letter queue ------------------------------------------------------------------------

/** A page of an integration's dead letters in this endpoint, oldest first, after ?2 (index deliveries_dead_lettered). */
export const DEAD_LETTERS_SQL = "SELECT * FROM deliveries WHERE integration_id = ?1 AND status = 'dead_lettered' AND id > ?2 ORDER BY id LIMIT ?3";

/** Puts the given dead letters back (?1 now as ISO, ?2 now in ms, ?3 ids as JSON, ?4 integration). */
export const REDRIVE_SQL = `UPDATE deliveries SET status = 'pending', attempts = 0, last_error = NULL, completed_at = NULL, lease_token = NULL, visible_at = ?1,
    due_at = CASE WHEN type = 'webhook' THEN ?2 END
  WHERE id IN (SELECT value FROM json_each(?3)) AND integration_id = ?4 AND status = 'dead_lettered'
  RETURNING id, type`;

/**
 * A replay of a delivery: a new pending copy (id ?1, `replay_of` the original ?5), sent again.
 * ?2 now as ISO, ?3 now in ms, ?4 tenant, ?6 integration.
 */
export const REPLAY_SQL = `INSERT INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, correlation_id, payload,
    status, ack_id, max_attempts, visible_at, due_at, created_at, replay_of)
  SELECT ?1, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id || ':replay:' || ?1, event_name, correlation_id, payload,
    'pending', ack_id, max_attempts, ?2, CASE WHEN type = 'webhook' THEN ?3 END, ?2, id
  FROM deliveries WHERE id = ?5 AND tenant_id = ?4 AND integration_id = ?6 RETURNING type`;

// ---- webhook configurations' events ------------------------------------------------------------

/** A query over an endpoint's deliveries as a webhook configuration's events. */
export interface WebhookEventQuery {
  /** Delivery statuses to include; null or absent = all. */
  statuses?: string[] | null;
  /** Only ids below this one (the keyset cursor: the last id of the previous page). */
  before?: string | null;
  from?: string | null;
  to?: string | null;
  eventId?: string | null;
  limit: number;
}

/** ?1 statuses (JSON array or null), ?2 id below, ?3 created from, ?4 created to, ?5 id, ?6 limit; newest first. */
export const WEBHOOK_EVENTS_SQL = `SELECT * FROM deliveries
  WHERE (?1 = 'null' OR status IN (SELECT value FROM json_each(?1)))
    AND (?2 IS NULL OR id < ?2) AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at <= ?4) AND (?5 IS NULL OR id = ?5)
  ORDER BY id DESC LIMIT ?6`;

// ---- what monitoring reads --------------------------------------------------------------------

/** The outbound arm of monitoring's unified events view (the monitored-event row shape). */
const MONITORED_COLUMNS = `id, id AS event_id, 'outbound' AS direction, event_name, use_case_slug, status,
  CASE WHEN status IN ('failed', 'dead_lettered') THEN 'downstream' END AS error_category, correlation_id,
  created_at AS received_at, completed_at, processing_duration_ms, attempts, last_error, ack_status, replay_of, NULL AS file_details`;

/**
 * An endpoint's deliveries as monitored-event rows, filtered; null when the filters exclude them
 * all (a delivery's error category is 'downstream' exactly when it failed or was dead-lettered).
 */
export function monitoredDeliveries(integrationId: string, q: MonitoredEventFilter): MonitoredArm | null {
  const from = q.correlation_id !== undefined ? "deliveries INDEXED BY deliveries_correlation" : "deliveries";
  const { where, params } = monitoredWhere(integrationId, q, "created_at");
  if (q.error_category !== undefined && q.error_category !== "downstream") return null;
  if (q.error_category === "downstream") where.push("status IN ('failed', 'dead_lettered')");
  return { sql: `SELECT ${MONITORED_COLUMNS} FROM ${from} WHERE ${where.join(" AND ")}`, params };
}

/** The outbound halves of monitoring's statistics, run in each endpoint. */
export const OUTBOUND_STATS_SQL = objectStatsSql("outbound", "deliveries", "created_at");

/** Retention: the endpoint's oldest deliveries created before ?, at most ? of them (index on (integration_id, created_at)). */
export const EXPIRED_DELIVERIES_SQL = "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE integration_id = ? AND created_at < ? ORDER BY created_at LIMIT ?)";
