// What every Durable Object with SQLite storage does alike: insert many rows in few statements, and
// empty itself when what owns it is deleted.
import { jsonChunks } from "./json";

/**
 * Inserts rows (each an array in `columns` order) with as few json_each statements as fit: a
 * statement has a fixed cost well above its rows'. `insert` is the statement's head, e.g.
 * "INSERT INTO events" or "INSERT OR IGNORE INTO deliveries".
 */
export function insertRows(sql: SqlStorage, insert: string, columns: readonly string[], rows: unknown[][]): void {
  const select = columns.map((_, i) => `value ->> '$[${i}]'`).join(", ");
  for (const chunk of jsonChunks(rows)) sql.exec(`${insert} (${columns.join(", ")}) SELECT ${select} FROM json_each(?)`, chunk);
}

/**
 * Deletes the object's data and alarm and creates its empty tables again (`schema`). No other call
 * runs in between, so a late read finds an empty object, not missing tables.
 */
export async function emptyStorage(ctx: DurableObjectState, schema: string): Promise<void> {
  await ctx.blockConcurrencyWhile(async () => {
    await ctx.storage.deleteAlarm();
    await ctx.storage.deleteAll();
    ctx.storage.sql.exec(schema);
  });
}
