// Identifiers and timestamps: ULIDs sort by creation time, which list pagination relies on.
import { encodeTime, monotonicFactory } from "ulidx";
import { v7 as uuidv7 } from "uuid";

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

/**
 * A new UUIDv7 (RFC 9562), for the ids epilot's schemas declare as UUIDs (integrations, use cases,
 * webhook configurations): time-ordered like a ULID, so lists keyed by it still sort by creation.
 */
export function newUuid(): string {
  return uuidv7();
}
