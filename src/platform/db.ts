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
