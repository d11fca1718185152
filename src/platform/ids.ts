// Identifiers and timestamps: ULIDs sort by creation time, which list pagination relies on.
import { encodeTime, monotonicFactory } from "ulidx";

const ulid = monotonicFactory();

/** A new ULID, monotonic within this isolate so ids minted in one request keep their order. */
export function newId(): string {
  return ulid();
}

/** The current time as ISO 8601 UTC with milliseconds, the format of every `*_at` column. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** The smallest ULID of a moment: rows keyed by ULID and older than `ms` have ids below it. */
export const ulidFloor = (ms: number) => `${encodeTime(ms, 10)}${"0".repeat(16)}`;
