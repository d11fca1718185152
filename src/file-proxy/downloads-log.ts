// The file proxy's download log in D1 (table file_downloads): the statement that records a download,
// and what monitoring reads and deletes of it (its arm of the events view, statistics, retention).
import { monitoredWhere, percentilesSql, type MonitoredArm, type MonitoredEventFilter } from "../platform/monitored-events";

/** One download as the proxy saw it, recorded once its stream ended (or it failed before one began). */
export interface DownloadRecord {
  /** ULID (newId()); orders the download among events and deliveries in monitoring */
  id: string;
  tenantId: string;
  integrationId: string;
  useCaseSlug: string;
  /** The query parameters of the download, secrets already masked by the caller. */
  params: Record<string, string>;
  status: "success" | "error";
  errorCode?: string;
  errorMessage?: string;
  /** One of the inbound error categories (validation, configuration, downstream, timeout, system). */
  errorCategory?: string;
  /** The archive's last HTTP status; null when it was never reached. */
  archiveStatus?: number | null;
  /** What the proxy answered the client. */
  httpStatus: number;
  /** Bytes streamed to the client. */
  bytes: number;
  /** The Range header asked, if any. */
  range?: string | null;
  auth: "signature" | "token";
  receivedAt: string;
  completedAt: string;
  durationMs: number;
}

/** The event name file rows carry in monitoring (the table has no such column). */
export const FILE_DOWNLOAD_EVENT = "file.download";

const COLUMNS = [
  "id", "tenant_id", "integration_id", "use_case_slug", "params", "status", "error_code", "error_message", "error_category",
  "archive_status", "http_status", "bytes", "range", "auth", "received_at", "completed_at", "processing_duration_ms",
] as const;

const INSERT_SQL = `INSERT INTO file_downloads (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`;

/**
 * The insert of one download, to run (or batch) after the stream ends:
 * `ctx.waitUntil(finished.then(() => recordDownloadStatement(env.DB, record).run()))`.
 */
export function recordDownloadStatement(db: D1Database, r: DownloadRecord): D1PreparedStatement {
  return db.prepare(INSERT_SQL).bind(
    r.id, r.tenantId, r.integrationId, r.useCaseSlug, JSON.stringify(r.params), r.status, r.errorCode ?? null, r.errorMessage ?? null, r.errorCategory ?? null,
    r.archiveStatus ?? null, r.httpStatus, r.bytes, r.range ?? null, r.auth, r.receivedAt, r.completedAt, r.durationMs,
  );
}

// ---- what monitoring reads and deletes ----------------------------------------------------------

/**
 * The file arm of monitoring's unified events view (the monitored-event row shape); a download is
 * one attempt, and `file_details` carries what only downloads have, as JSON text.
 */
const MONITORED_COLUMNS = `id, id AS event_id, 'file' AS direction, '${FILE_DOWNLOAD_EVENT}' AS event_name, use_case_slug, status, error_category,
  NULL AS correlation_id, received_at, completed_at, processing_duration_ms, 1 AS attempts, error_message AS last_error, NULL AS ack_status,
  NULL AS replay_of,
  json_object('params', json(params), 'bytes', bytes, 'archive_status', archive_status, 'http_status', http_status, 'range', range) AS file_details`;

/**
 * An integration's downloads as monitored-event rows, filtered; null when the filters exclude them
 * all (downloads carry no correlation id, and all are named 'file.download').
 */
export function monitoredFileDownloads(integrationId: string, q: MonitoredEventFilter): MonitoredArm | null {
  if (q.correlation_id !== undefined) return null;
  if (q.event_name !== undefined && q.event_name !== FILE_DOWNLOAD_EVENT) return null;
  const { where, params } = monitoredWhere(integrationId, { ...q, event_name: undefined }, "received_at");
  if (q.error_category !== undefined) where.push("error_category = ?"), params.push(q.error_category);
  return { sql: `SELECT ${MONITORED_COLUMNS} FROM file_downloads WHERE ${where.join(" AND ")}`, params };
}

/** The file halves of monitoring's statistics, each bound to (?1 integration id, ?2 since[, ?3 sample size]); downloads have no ACKs. */
export const FILE_STATS_SQL = {
  counts: `SELECT 'file' AS direction, use_case_slug, status, COUNT(*) AS n, COUNT(processing_duration_ms) AS timed
      FROM file_downloads WHERE integration_id = ?1 AND received_at >= ?2 GROUP BY use_case_slug, status`,
  percentiles: percentilesSql("file_downloads", "received_at"),
};

/** Retention: an integration's oldest downloads received before ?, at most ? of them (index on (integration_id, received_at)). */
export const EXPIRED_DOWNLOADS_SQL =
  "DELETE FROM file_downloads WHERE id IN (SELECT id FROM file_downloads WHERE integration_id = ? AND received_at < ? ORDER BY received_at LIMIT ?)";

export const deleteExpiredDownloadsStatement = (db: D1Database, integrationId: string, before: string, limit: number) =>
  db.prepare(EXPIRED_DOWNLOADS_SQL).bind(integrationId, before, limit);
