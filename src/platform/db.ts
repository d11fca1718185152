// D1 helpers shared by every context.
import { AppError } from "./errors";

/** Runs statements as one D1 batch (a single transaction: all or nothing). */
export async function atomically(db: D1Database, statements: D1PreparedStatement[]): Promise<D1Result[]> {
  if (statements.length === 0) return [];
  try {
    return await db.batch(statements);
  } catch (err) {
    throw uniqueViolationAsConflict(err);
  }
}

/** A UNIQUE constraint failure (a race past our own check) is the client's 409, not our 500. */
export function uniqueViolationAsConflict(err: unknown): unknown {
  if (err instanceof Error && /UNIQUE constraint failed/i.test(err.message)) {
    return new AppError("CONFLICT", "A resource with the same unique key already exists", { constraint: err.message.replace(/^.*UNIQUE constraint failed:\s*/i, "") });
  }
  return err;
}

/**
 * The statements of a round-robin background job's cursor in `maintenance_cursors` (one row per job):
 * `position` reads it, `after` is an SQL expression for it ('' when unset) to embed in the job's own
 * query, `save` (?1 position, ?2 now) moves it.
 */
export function jobCursorSql(job: "retention" | "sweep_pending_events" | "ack_timeouts") {
  return {
    position: `SELECT position FROM maintenance_cursors WHERE job = '${job}'`,
    after: `COALESCE((SELECT position FROM maintenance_cursors WHERE job = '${job}'), '')`,
    save: `INSERT INTO maintenance_cursors (job, position, updated_at) VALUES ('${job}', ?, ?)
    ON CONFLICT (job) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
  };
}
