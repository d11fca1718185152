// The entity store: each tenant's entities of one schema live in one EntityStore Durable Object
// (identity index, state, history, outbox), named `<tenant>/<schema>`. Writes from event processing
// are gathered per store and sent as one call per store and processing round (RoundWriter); reads go to the
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

type Ref = { ids: Record<string, string>; integrationId: string | null };
type EventState = "running" | "waiting" | "done" | "failed";
type Queued =
  | { pos: number; kind: "resolve"; tenantId: string; schema: string; ref: Ref; resolve: (o: { entityId: string } | Ambiguous) => void; reject: (e: unknown) => void }
  | {
      pos: number;
      kind: "commit";
      updates: EntityUpdateInput[];
      readings: { tenantId: string; readings: MeterReadingWrite[] };
      /** The event's last store call: later events of its group may go in the same flush. */
      final: boolean;
      resolve: (o: (EntityUpdateResult | Ambiguous)[]) => void;
      reject: (e: unknown) => void;
    };

/** A commit or reference lookup refused because an earlier event of its group failed: the group stops there. */
export class GroupStopped extends Error {
  override name = "GroupStopped";
}

/** Longest a queued call waits for the round's other events before it is sent anyway. */
const MAX_HOLD_MS = 25;

/**
 * The entity writer of one processing round. The round's events run side by side, those of one group
 * too; their store calls are held until every running event is waiting on this writer (or MAX_HOLD_MS
 * passed), then sent as one call per store: a round of many events costs each store about one call.
 *
 * Order per group, and so per entity, is kept by the commits: an event's entity updates and meter
 * readings go in its `commit`s, and a commit is sent only in the same flush as the final commit of
 * each of its group's earlier events, or after they finished, in their order (so within each store,
 * in one batch, one transaction). A commit waits while an earlier event of its group is still
 * running or its last commit is in flight, and is refused (GroupStopped) once an earlier one failed.
 * Resolving a reference may claim ids and create stubs, so what it finds depends on what earlier
 * updates wrote: a resolve waits until every earlier event of its group has finished, and processing
 * commits an event's own earlier updates before it resolves a later one's references.
 */
export class RoundWriter {
  private readonly state: EventState[];
  private readonly calls: number[];
  /** Position of each event's predecessor in its group (-1 for a group's first event). */
  private readonly previous: number[];
  private queue: Queued[] = [];
  private running: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = 0;
  private oldest = 0;

  constructor(private readonly env: StoreEnv, groups: string[]) {
    this.state = groups.map(() => "running");
    this.calls = groups.map(() => 0);
    const last = new Map<string, number>();
    this.previous = groups.map((g, i) => {
      const before = last.get(g) ?? -1;
      last.set(g, i);
      return before;
    });
    this.running = groups.length;
  }

  /** The writer processing of the event at `pos` uses. */
  forEvent(pos: number): EntityWriter {
    return {
      resolve: (tenantId, schema, ids, integrationId) =>
        this.call<{ entityId: string } | Ambiguous>(pos, (resolve, reject) => ({ pos, kind: "resolve", tenantId, schema, ref: { ids, integrationId }, resolve, reject })),
      commit: (updates, readings, final = true) =>
        this.call<(EntityUpdateResult | Ambiguous)[]>(pos, (resolve, reject) => ({ pos, kind: "commit", updates, readings, final, resolve, reject })),
    };
  }

  /** The event finished (ok) or threw (failed): later events of its group may go on, or stop. */
  finished(pos: number, ok: boolean): void {
    if (this.state[pos] === "running") this.running--;
    this.state[pos] = ok ? "done" : "failed";
    this.schedule();
  }

  private call<T>(pos: number, make: (resolve: (o: T) => void, reject: (e: unknown) => void) => Queued): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.calls[pos] = this.calls[pos]! + 1;
      if (this.calls[pos] === 1 && this.state[pos] === "running") {
        this.state[pos] = "waiting";
        this.running--;
      }
      const settle = () => {
        if (--this.calls[pos]! === 0 && this.state[pos] === "waiting") {
          this.state[pos] = "running";
          this.running++;
        }
      };
      if (this.queue.length === 0) this.oldest = Date.now();
      this.queue.push(make((o) => (settle(), resolve(o as T)), (e) => (settle(), reject(e))));
      this.schedule();
    });
  }

  /**
   * Sends the queue once no event is running (checked after this turn's microtasks, when an event
   * whose call just returned is running again), or MAX_HOLD_MS after its oldest call; an earlier
   * check replaces a later one.
   */
  private schedule() {
    if (this.queue.length === 0) return;
    const at = this.running === 0 ? Date.now() : this.oldest + MAX_HOLD_MS;
    if (this.timer !== null) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.queue.length === 0) return;
      if (this.running === 0 || Date.now() >= this.oldest + MAX_HOLD_MS) this.flush();
      else this.schedule();
    }, Math.max(0, at - Date.now()));
  }

  /**
   * Whether a call of the event at `pos` may go now: every earlier event of its group finished, or
   * (for a commit) has its final commit going in this flush, ahead of it in each store's batch.
   */
  private mayGo(pos: number, sending: Set<number> | null): "yes" | "wait" | "stop" {
    for (let q = this.previous[pos]!; q >= 0; q = this.previous[q]!) {
      if (this.state[q] === "failed") return "stop";
      if (this.state[q] === "done" || sending?.has(q)) continue;
      return "wait";
    }
    return "yes";
  }

  /** Keeps a call for a later flush (it goes once an earlier event of its group finishes or commits). */
  private hold(item: Queued) {
    if (this.queue.length === 0) this.oldest = Date.now();
    this.queue.push(item);
  }

  private flush() {
    const queued = this.queue.sort((a, b) => a.pos - b.pos);
    this.queue = [];
    const resolves = new Map<string, Extract<Queued, { kind: "resolve" }>[]>();
    const updates = new Map<string, { tenantId: string; schema: string; items: { commit: number; index: number }[]; inputs: EntityUpdateInput[] }>();
    const readings = new Map<string, { commits: number[]; readings: MeterReadingWrite[] }>();
    const commits: Extract<Queued, { kind: "commit" }>[] = [];
    const sending = new Set<number>();
    for (const item of queued) {
      const may = this.mayGo(item.pos, item.kind === "commit" ? sending : null);
      if (may === "stop") {
        item.reject(new GroupStopped("an earlier event of its group failed"));
        continue;
      }
      if (may === "wait") {
        this.hold(item);
        continue;
      }
      if (item.kind === "resolve") {
        const key = `${item.tenantId}/${item.schema}`;
        resolves.set(key, [...(resolves.get(key) ?? []), item]);
        continue;
      }
      if (item.final) sending.add(item.pos);
      const c = commits.push(item) - 1;
      for (const [index, u] of item.updates.entries()) {
        const key = `${u.tenantId}/${u.schema}`;
        const entry = updates.get(key) ?? { tenantId: u.tenantId, schema: u.schema, items: [], inputs: [] };
        entry.items.push({ commit: c, index });
        entry.inputs.push(u);
        updates.set(key, entry);
      }
      if (item.readings.readings.length > 0) {
        const entry = readings.get(item.readings.tenantId) ?? { commits: [], readings: [] };
        entry.commits.push(c);
        entry.readings.push(...item.readings.readings);
        readings.set(item.readings.tenantId, entry);
      }
    }
    for (const items of resolves.values()) {
      const { tenantId, schema } = items[0]!;
      Promise.resolve()
        .then(() => entityStore(this.env, tenantId, schema).resolve(tenantId, schema, items.map((i) => i.ref)))
        .then(
          (outs) => items.forEach((item, i) => item.resolve(outs[i]!)),
          (err) => items.forEach((item) => item.reject(err)),
        );
    }
    // Calls held back here go once an earlier event of their group finishes or commits (finished()
    // and call() check again), not by polling.
    if (commits.length === 0) return;
    // Each commit waits for every store call it has a part in; one failed call fails its commits.
    const results = commits.map((c) => new Array<EntityUpdateResult | Ambiguous>(c.updates.length));
    const failed = new Map<number, unknown>();
    const calls = [
      ...[...updates.values()].map(({ tenantId, schema, items, inputs }) =>
        Promise.resolve()
          // The RPC stub's type cannot express `unknown` attribute values; the inputs are plain JSON.
          .then(() => entityStore(this.env, tenantId, schema).apply(inputs as never) as Promise<(EntityUpdateResult | Ambiguous)[]>)
          .then(
            (outs) => items.forEach(({ commit, index }, i) => (results[commit]![index] = outs[i]!)),
            (err) => items.forEach(({ commit }) => failed.set(commit, err)),
          ),
      ),
      ...[...readings].map(([tenantId, entry]) =>
        Promise.resolve()
          .then(() => putMeterReadings(this.env, tenantId, entry.readings))
          .then(
            () => undefined,
            (err) => entry.commits.forEach((commit) => failed.set(commit, err)),
          ),
      ),
    ];
    void Promise.all(calls).then(() => commits.forEach((c, i) => (failed.has(i) ? c.reject(failed.get(i)) : c.resolve(results[i]!))));
  }
}

/** What processing writes through: a round's writer for one event. */
export interface EntityWriter {
  /** Finds (or claims, creating a stub) the entity a relation or meter reference names. */
  resolve(tenantId: string, schema: string, ids: Record<string, string>, integrationId: string | null): Promise<{ entityId: string } | Ambiguous>;
  /**
   * Applies entity updates and stores meter readings of an event, in its group's order; answers each
   * update's result. `final` (the default) says the event makes no further store call.
   */
  commit(updates: EntityUpdateInput[], readings: { tenantId: string; readings: MeterReadingWrite[] }, final?: boolean): Promise<(EntityUpdateResult | Ambiguous)[]>;
}

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
