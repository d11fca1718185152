// Cursor pagination over rows keyed by ULIDs or UUIDv7s (both sort by creation, and every UUIDv7
// minted now sorts after every ULID): the cursor is the opaque form of the last id returned.
import { z } from "@hono/zod-openapi";
import { AppError } from "./errors";

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50).openapi({ description: "Page size, 1..100" }),
  cursor: z.string().max(200).optional().openapi({ description: "`next_cursor` of the previous page" }),
});
export type PageQuery = z.infer<typeof PageQuery>;

export const NextCursor = z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page" });

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const encode = (position: Record<string, unknown>) => btoa(JSON.stringify(position)).replace(/=+$/, "");

/** The cursor's position object, or a 400 when the cursor is not one this API issued. */
function decode(cursor: string): Record<string, unknown> {
  try {
    const position = JSON.parse(atob(cursor)) as unknown;
    if (typeof position === "object" && position !== null) return position as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new AppError("INVALID_CURSOR", "cursor is not one this API issued");
}

export const encodeCursor = (lastId: string) => encode({ after: lastId });

/** The id to continue after, or "" for the first page; a cursor we did not issue is a 400. */
export function decodeCursor(cursor: string | undefined): string {
  if (!cursor) return "";
  const { after } = decode(cursor);
  if (typeof after === "string" && (ULID.test(after) || UUID.test(after))) return after;
  throw new AppError("INVALID_CURSOR", "cursor is not one this API issued");
}

/** Cursors over version-numbered rows (entity history), kept apart from id cursors. */
export const encodeVersionCursor = (version: number) => encode({ version });

export function decodeVersionCursor(cursor: string): number {
  const { version } = decode(cursor);
  if (Number.isInteger(version) && (version as number) > 0) return version as number;
  throw new AppError("INVALID_CURSOR", "cursor is not one this API issued");
}

/** Given up to limit+1 rows ordered by id, the page and the cursor for the next one. */
export function toPage<Row extends { id: string }, Item>(rows: Row[], limit: number, map: (row: Row) => Item) {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return {
    items: pageRows.map(map),
    next_cursor: more ? encodeCursor(pageRows[pageRows.length - 1]!.id) : null,
  };
}
