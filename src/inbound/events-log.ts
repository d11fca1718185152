// The inbound event log in D1: rows, statuses and the statements that write them.
import { nowIso } from "../platform/ids";
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
> & { error_category?: ErrorCategory | null; errors?: EventError[]; warnings?: Record<string, unknown>[]; replay_of?: string | null };

export const DEDUP_WINDOW_MS = 24 * 3600 * 1000;

const COLUMNS =
  "id, tenant_id, integration_id, use_case_id, use_case_slug, event_name, correlation_id, group_id, deduplication_id, source_timestamp, format, payload, status, error_category, errors, warnings, received_at, replay_of";

function values(e: NewEvent) {
  return [
    e.id, e.tenant_id, e.integration_id, e.use_case_id, e.use_case_slug, e.event_name, e.correlation_id, e.group_id, e.deduplication_id,
    e.source_timestamp, e.format, e.payload, e.status, e.error_category ?? null, JSON.stringify(e.errors ?? []), JSON.stringify(e.warnings ?? []), e.received_at, e.replay_of ?? null,
  ];
}

/**
 * Inserts an event. With a deduplication id, the insert happens only if no event of the integration
 * carried that id in the last 24 hours: one statement, so concurrent duplicates cannot both pass.
 */
export function insertEventStatement(db: D1Database, e: NewEvent): D1PreparedStatement {
  const placeholders = COLUMNS.split(",").map(() => "?").join(", ");
  if (!e.deduplication_id) return db.prepare(`INSERT INTO events (${COLUMNS}) VALUES (${placeholders})`).bind(...values(e));
  const since = new Date(Date.parse(e.received_at) - DEDUP_WINDOW_MS).toISOString();
  return db
    .prepare(
      `INSERT INTO events (${COLUMNS}) SELECT ${placeholders}
       WHERE NOT EXISTS (SELECT 1 FROM events WHERE integration_id = ? AND deduplication_id = ? AND received_at > ?)`,
    )
    .bind(...values(e), e.integration_id, e.deduplication_id, since);
}

/** The event that holds a deduplication id in the window (the original of any duplicate). */
export function dedupHolderStatement(db: D1Database, e: NewEvent): D1PreparedStatement {
  const since = new Date(Date.parse(e.received_at) - DEDUP_WINDOW_MS).toISOString();
  return db
    .prepare("SELECT id FROM events WHERE integration_id = ? AND deduplication_id = ? AND received_at > ? ORDER BY id LIMIT 1")
    .bind(e.integration_id, e.deduplication_id, since);
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
