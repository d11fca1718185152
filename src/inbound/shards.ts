// Where an integration's events live: its event log is split into EVENT_LOG_SHARDS Durable Objects,
// an event's shard chosen by its group, so one group's events are in one object (ordered there) and
// a hot integration spreads over several objects. Event ids carry their integration's tag and their
// shard, so an event is found from its id alone (GET /v3/erp/updates/events/{id}, ACKs) with no
// directory to write on the way in.
import { newId } from "../platform/ids";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** At most 32 shards: the shard is one base32 character of the id. */
export const MAX_SHARDS = 32;

/** FNV-1a, 32 bits: a stable spread of keys, not a security boundary. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The shard count of this deployment (EVENT_LOG_SHARDS, 1..32, default 4); fixed for the life of a deployment's data. */
export function shardCount(env: Partial<Pick<Env, "EVENT_LOG_SHARDS">>): number {
  const n = Number(env.EVENT_LOG_SHARDS ?? 4);
  return Number.isInteger(n) && n >= 1 && n <= MAX_SHARDS ? n : 4;
}

/** An event's shard: by its group, so a group's order is kept inside one object. */
export const shardOf = (groupId: string | null, shards: number) => fnv1a(groupId ?? "") % shards;

/** Three base32 characters (15 bits) naming the integration inside an event id. */
export function integrationTag(integrationId: string): string {
  const h = fnv1a(integrationId);
  return CROCKFORD[(h >>> 10) & 31]! + CROCKFORD[(h >>> 5) & 31]! + CROCKFORD[h & 31]!;
}

/**
 * A new event id, still a ULID in form (26 characters, time first): the millisecond time, the low
 * 60 bits of a monotonic ULID's randomness (where its increments land, so ids minted in one
 * millisecond stay distinct and ordered), then the integration's tag and the shard.
 */
export function newEventId(integrationId: string, shard: number): string {
  const ulid = newId();
  return ulid.slice(0, 10) + ulid.slice(14) + integrationTag(integrationId) + CROCKFORD[shard]!;
}

/** The tag and shard an event id names, or null for an id we did not mint. */
export function locate(eventId: string): { tag: string; shard: number } | null {
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(eventId)) return null;
  return { tag: eventId.slice(22, 25), shard: CROCKFORD.indexOf(eventId[25]!) };
}

/** The name of the object holding one shard of an integration's event log. */
export const logName = (integrationId: string, shard: number) => `${integrationId}/${shard}`;

export function eventLog(env: Pick<Env, "EVENT_LOG">, integrationId: string, shard: number) {
  return env.EVENT_LOG.get(env.EVENT_LOG.idFromName(logName(integrationId, shard)));
}

/** Every shard of an integration's log, for reads that fan out (monitoring, retention). */
export function eventLogs(env: Pick<Env, "EVENT_LOG"> & Partial<Pick<Env, "EVENT_LOG_SHARDS">>, integrationId: string) {
  return Array.from({ length: shardCount(env) }, (_, shard) => eventLog(env, integrationId, shard));
}
