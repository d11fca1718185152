// The contract between monitoring and the contexts whose rows it shows: each owner builds its own
// arm of the unified events view and its own statistics, and monitoring only composes them.

/** Filters of the unified events view, already canonical (times as ISO strings); an undefined one is not applied. */
export interface MonitoredEventFilter {
  event_id?: string;
  correlation_id?: string;
  event_name?: string;
  use_case?: string;
  status?: string;
  error_category?: string;
  /** received (or created) at or after */
  from?: string;
  /** received (or created) before */
  to?: string;
  /** ids before this one (the page cursor) */
  before?: string;
}

/** One direction's `SELECT <monitored columns> FROM ... WHERE ...`, to be joined with UNION ALL. */
export interface MonitoredArm {
  sql: string;
  params: unknown[];
}

/**
 * The WHERE clauses both arms share, in one fixed order so both directions' statements (and their
 * query plans) stay predictable; `timeColumn` is the owner's arrival time column.
 */
export function monitoredWhere(integrationId: string, q: MonitoredEventFilter, timeColumn: string) {
  const where = ["integration_id = ?"];
  const params: unknown[] = [integrationId];
  const add = (clause: string, value: unknown) => {
    if (value === undefined) return;
    where.push(clause);
    params.push(value);
  };
  add("id = ?", q.event_id);
  add("correlation_id = ?", q.correlation_id);
  add("event_name = ?", q.event_name);
  add("use_case_slug = ?", q.use_case);
  add("status = ?", q.status);
  add(`${timeColumn} >= ?`, q.from);
  add(`${timeColumn} < ?`, q.to);
  add("id < ?", q.before);
  return { where, params };
}

/** Nearest-rank percentile p of n sorted values: rank max(1, ceil(p × n / 100)), in integer arithmetic. */
const rank = (p: number) => `MAX(1, (${p} * n + 99) / 100)`;

/**
 * p50/p95/p99 of processing_duration_ms over the newest ?3 timed rows of an integration (?1) since ?2,
 * sorted in D1. Each owner calls it with its own table.
 */
export const percentilesSql = (table: string, timeColumn: string) => `
  WITH sample AS (
    SELECT processing_duration_ms AS d FROM ${table}
     WHERE integration_id = ?1 AND ${timeColumn} >= ?2 AND processing_duration_ms IS NOT NULL
     ORDER BY ${timeColumn} DESC LIMIT ?3),
  ranked AS (SELECT d, ROW_NUMBER() OVER (ORDER BY d) AS position, COUNT(*) OVER () AS n FROM sample)
  SELECT MAX(CASE WHEN position = ${rank(50)} THEN d END) AS p50, MAX(CASE WHEN position = ${rank(95)} THEN d END) AS p95,
         MAX(CASE WHEN position = ${rank(99)} THEN d END) AS p99
    FROM ranked`;

/**
 * A Durable Object's half of monitoring's statistics over its own `table`, each statement bound to
 * (?1 integration id, ?2 since[, ?3 sample size]): counts per use case and status (with how many are
 * timed), ACK counts, and the newest timed rows' durations, which monitoring merges over the objects
 * and ranks (percentilesSql ranks them in D1 for a table kept there).
 */
export const objectStatsSql = (direction: "inbound" | "outbound", table: string, timeColumn: string) => ({
  counts: `SELECT '${direction}' AS direction, use_case_slug, status, COUNT(*) AS n, COUNT(processing_duration_ms) AS timed
      FROM ${table} WHERE integration_id = ?1 AND ${timeColumn} >= ?2 GROUP BY use_case_slug, status`,
  acks: `SELECT ack_status, COUNT(*) AS n FROM ${table} WHERE integration_id = ?1 AND ${timeColumn} >= ?2 AND ack_status IS NOT NULL GROUP BY ack_status`,
  durations: `SELECT ${timeColumn} AS at, processing_duration_ms AS d FROM ${table}
      WHERE integration_id = ?1 AND ${timeColumn} >= ?2 AND processing_duration_ms IS NOT NULL ORDER BY ${timeColumn} DESC LIMIT ?3`,
});
