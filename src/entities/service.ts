// The entity store: each tenant's entities of one schema live in one EntityStore Durable Object
// (identity index, state, history, outbox), named `<tenant>/<schema>`. Writes from event processing
// are gathered per store and sent as one call per store and turn of the event loop; reads go to the
// store that owns the schema. Nothing here touches D1.
import { AppError } from "../platform/errors";
import { decodeCursor, decodeVersionCursor, encodeVersionCursor, toPage, type PageQuery } from "../platform/pagination";
import type { Ambiguous, EntityHistoryEntry, EntityState, EntityUpdateInput, EntityUpdateResult, MeterReadingWrite } from "./store-do";
import type { Entity, MeterReading } from "./schema";

type StoreEnv = Pick<Env, "ENTITY_STORE">;

/** The store holding a tenant's entities of one schema. */
export function entityStore(env: StoreEnv, tenantId: string, schema: string) {
  return env.ENTITY_STORE.get(env.ENTITY_STORE.idFromName(`${tenantId}/${schema}`));
}

const toEntity = (s: EntityState): Entity => ({
  id: s.id,
  schema: s.schema,
  attributes: s.attributes,
  unique_ids: s.unique_ids,
  version: s.version,
  stub: s.is_stub,
  created_at: s.created_at,
  updated_at: s.updated_at,
  deleted_at: s.deleted_at,
});

/** Unique id values are matched as strings: "00042" and 42 are different ids, "42" and 42 the same. */
export function canonicalIds(ids: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(ids).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

// ---- batched writes from event processing ----------------------------------------------------

/**
 * Calls to one store made in the same turn of the event loop, sent together as one RPC when the turn
 * ends. Event processing runs the groups of a log shard side by side, so their entity updates meet
 * here and a round of many events costs each store one call, whatever the number of events.
 */
class Batcher<In, Out> {
  private pending = new Map<string, { items: { input: In; resolve: (o: Out) => void; reject: (e: unknown) => void }[]; send: (inputs: In[]) => Promise<Out[]> }>();

  call(key: string, send: (inputs: In[]) => Promise<Out[]>, input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      let batch = this.pending.get(key);
      if (!batch) {
        batch = { items: [], send };
        this.pending.set(key, batch);
        // After the microtasks of this turn: every group that reached an update by then joins in.
        setTimeout(() => this.flush(key), 0);
      }
      batch.items.push({ input, resolve, reject });
    });
  }

  private flush(key: string) {
    const batch = this.pending.get(key);
    this.pending.delete(key);
    if (!batch) return;
    // Through a promise, so a send that throws at once still settles every caller.
    Promise.resolve()
      .then(() => batch.send(batch.items.map((i) => i.input)))
      .then(
      (outs) => batch.items.forEach((item, i) => item.resolve(outs[i]!)),
      (err) => batch.items.forEach((item) => item.reject(err)),
    );
  }
}

/**
 * The batched entity writes of one caller. Each EventLog object makes its own: a Durable Object may
 * only await I/O it started itself, so calls from two objects never share a batch.
 */
export function entityWriter(env: StoreEnv) {
  const updates = new Batcher<EntityUpdateInput, EntityUpdateResult | Ambiguous>();
  const references = new Batcher<{ ids: Record<string, string>; integrationId: string | null }, { entityId: string } | Ambiguous>();
  return {
    /** Applies one update through its schema's store (batched with the turn's other updates to that store). */
    apply(input: EntityUpdateInput): Promise<EntityUpdateResult | Ambiguous> {
      // The RPC stub's type cannot express `unknown` attribute values; the inputs are plain JSON.
      const send = (batch: EntityUpdateInput[]) => entityStore(env, input.tenantId, input.schema).apply(batch as never) as Promise<(EntityUpdateResult | Ambiguous)[]>;
      return updates.call(`${input.tenantId}/${input.schema}`, send, input);
    },
    /** Finds (or claims, creating a stub) the entity a relation or meter reference names (batched per store). */
    resolve(tenantId: string, schema: string, ids: Record<string, string>, integrationId: string | null): Promise<{ entityId: string } | Ambiguous> {
      return references.call(`${tenantId}/${schema}`, (batch) => entityStore(env, tenantId, schema).resolve(tenantId, schema, batch), { ids, integrationId });
    },
  };
}
export type EntityWriter = ReturnType<typeof entityWriter>;

/** Stores meter readings in the tenant's meter store. */
export async function putMeterReadings(env: StoreEnv, tenantId: string, readings: MeterReadingWrite[]): Promise<void> {
  if (readings.length > 0) await entityStore(env, tenantId, "meter").putReadings(readings as never);
}

/**
 * The whole core event (JSON text parsed) that an entity sent by reference because it was too large
 * for a queue message, or null when its store no longer keeps it.
 */
export async function referencedCoreEvent(env: StoreEnv, tenantId: string, schema: string, eventId: string): Promise<Record<string, unknown> | null> {
  const text = await entityStore(env, tenantId, schema).coreEvent(eventId);
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

// ---- reads ------------------------------------------------------------------------------------

export async function getEntity(env: StoreEnv, tenantId: string, schema: string, id: string): Promise<Entity> {
  const state = (await entityStore(env, tenantId, schema).get(id)) as EntityState | null;
  if (!state) throw new AppError("NOT_FOUND", `No ${schema} '${id}'`);
  return toEntity(state);
}

/** Entities of a schema, optionally filtered by unique ids (`{ customer_number: "C1" }`, all must match). */
export async function findEntities(env: StoreEnv, tenantId: string, schema: string, filter: Record<string, string>, page: PageQuery) {
  const rows = (await entityStore(env, tenantId, schema).find(filter, decodeCursor(page.cursor), page.limit + 1)) as EntityState[];
  const { items, next_cursor } = toPage(rows, page.limit, toEntity);
  return { entities: items, next_cursor };
}

export async function entityHistory(env: StoreEnv, tenantId: string, schema: string, id: string, page: PageQuery) {
  await getEntity(env, tenantId, schema, id);
  const before = page.cursor ? decodeVersionCursor(page.cursor) : undefined;
  const rows = (await entityStore(env, tenantId, schema).history(id, page.limit + 1, before)) as EntityHistoryEntry[];
  const more = rows.length > page.limit;
  const history = rows.slice(0, page.limit);
  return { history, next_cursor: more ? encodeVersionCursor(history[history.length - 1]!.version) : null };
}

export async function restoreEntity(env: StoreEnv, tenantId: string, schema: string, id: string): Promise<Entity> {
  await getEntity(env, tenantId, schema, id);
  await entityStore(env, tenantId, schema).restore(id);
  return getEntity(env, tenantId, schema, id);
}

export async function listMeterReadings(env: StoreEnv, tenantId: string, meterId: string, page: PageQuery) {
  await getEntity(env, tenantId, "meter", meterId);
  const rows = await entityStore(env, tenantId, "meter").readings(meterId, decodeCursor(page.cursor), page.limit + 1);
  const { items, next_cursor } = toPage(rows, page.limit, (r): MeterReading => ({ ...r, attributes: JSON.parse(r.attributes) }));
  return { meter_readings: items, next_cursor };
}

export type { MeterReadingWrite };

/** Deletes a (deleted) tenant's entity stores of these schemas. */
export async function purgeEntityStores(env: StoreEnv, tenantId: string, schemas: string[]): Promise<void> {
  await Promise.all(schemas.map((schema) => entityStore(env, tenantId, schema).purge()));
}
