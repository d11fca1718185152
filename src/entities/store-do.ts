// EntityStore: one Durable Object per tenant and entity schema (entities/service.ts names it) holding
// that schema's entities, its index of unique ids, each entity's history and applied update ids,
// meter readings (in the meter store) and the outbox of core events. Updates arrive in batches, one
// call per store per processing round; each is resolved, applied exactly once, refused when stale,
// and recorded with its core event in one storage transaction. See docs/STORAGE.md and docs/SCALING.md.
import { DurableObject } from "cloudflare:workers";
import { emptyStorage } from "../platform/object-storage";
import { envelope, MAX_PACK_EVENTS, type CoreEventEnvelope, type CoreEventMessage } from "../platform/core-events";
import { crashPoint } from "../platform/crash-points";
import { newId, nowIso } from "../platform/ids";
import { subscribedEventNames } from "../integrations/service";
import { mergeAttributes, type AttributeChanges } from "./merge";

// Cloudflare Queues take messages of up to 128 KB (about 100 bytes of it metadata) and sendBatch
// calls of up to 100 messages and 256 KB. Messages go as JSON, so their size is their UTF-8 length.
// Events travel in packs (CoreEventPack) of up to MAX_PACK_EVENTS and MAX_MESSAGE_BYTES: a queue
// takes about 5,000 messages/s, and each message costs the local queue emulator memory and the
// consumer an invocation's share, so one message per event would cap and slow the whole platform.
const MAX_MESSAGE_BYTES = 127_000;
/** A pack's JSON around its events: `{"_events":[` … `]}` and the commas. */
const PACK_OVERHEAD_BYTES = 16;
const MAX_BATCH_BYTES = 256_000;
const MESSAGE_OVERHEAD_BYTES = 200;
const MAX_BATCH_MESSAGES = 100;
/** Envelopes larger than this travel as a reference to the entity (see EntityStore.outgoing). */
const INLINE_LIMIT_BYTES = 96_000;
/** Send attempts per event before the outbox dead-letters it (about an hour of backoff). */
const MAX_SEND_ATTEMPTS = 12;
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 15 * 60_000;
/** A claim on an outbox row older than this belongs to a sender that died. */
const CLAIM_MS = 30_000;
/** Rows sent per flush; the alarm continues with the rest. */
const FLUSH_LIMIT = 500;
/** Whole envelopes of events sent by reference are kept this long (the queue keeps a message at most 14 days). */
const EVENT_BODY_RETENTION_MS = 15 * 24 * 3600_000;

export interface EntityUpdateInput {
  /** Unique per update: `<event id>#<index of the update in the event>`; a repeat is a no-op. */
  updateId: string;
  eventId: string;
  tenantId: string;
  schema: string;
  /** The entity, when the caller already knows it (restore); otherwise it is resolved from uniqueIds in the store. */
  entityId?: string;
  uniqueIds: Record<string, string>;
  /** The integration that sent it (recorded with ids it claims first). */
  integrationId?: string | null;
  /** Relations already resolved to `{ $relation: { op: [{ entity_id, _schema, _tags }] } }`. */
  attributes: Record<string, unknown>;
  mode: "upsert" | "delete" | "purge";
  /** The ERP's event time; an update older than the last applied one is skipped as stale. */
  sourceTimestamp?: string;
  /** Carried into the core event this update emits. */
  correlationId?: string | null;
}

export type EntityOperation = "created" | "updated" | "deleted" | "purged" | "restored" | "unchanged" | "skipped_stale" | "not_found";

export interface EntityUpdateResult {
  entityId: string;
  operation: EntityOperation;
  version: number;
  /** True when this update id had been applied before (nothing changed now). */
  duplicate: boolean;
}

export interface EntityState {
  id: string;
  tenant_id: string;
  schema: string;
  attributes: Record<string, unknown>;
  unique_ids: Record<string, string>;
  version: number;
  is_stub: boolean;
  source_timestamp: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  purged: boolean;
}

export interface EntityHistoryEntry {
  version: number;
  event_id: string | null;
  operation: EntityOperation | "stub";
  changes: AttributeChanges;
  at: string;
}

interface StateRow {
  id: string;
  tenant_id: string;
  schema: string;
  attributes: string;
  unique_ids: string;
  version: number;
  is_stub: number;
  source_timestamp: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  purged: number;
  [key: string]: SqlStorageValue;
}

export interface OutboxStatus {
  pending: { event_id: string; attempts: number; last_error: string | null; next_attempt_at: string | null }[];
  dead: { event_id: string; event_name: string; attempts: number; last_error: string; dead_at: string }[];
}

interface OutboxRow {
  id: string;
  entity_id: string;
  body: string;
  attempts: number;
  [key: string]: SqlStorageValue;
}

interface OutgoingMessage {
  id: string;
  entityId: string;
  body: string;
  bytes: number;
  attempts: number;
}


/** An update, or a relation reference, whose unique ids name more than one entity: reported, never merged. */
export type Ambiguous = { ambiguous: string[] };

/** A meter reading to upsert or delete, matched by its meter and external_id. */
export interface MeterReadingWrite {
  meterId: string;
  counterId: string | null;
  eventId: string;
  mode: "upsert" | "delete";
  attributes: { external_id: string; timestamp: string; source: string; value?: number; reason?: string; [k: string]: unknown };
}

const STORE_SCHEMA = `
      CREATE TABLE IF NOT EXISTS entities (
        id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, schema TEXT NOT NULL, attributes TEXT NOT NULL, unique_ids TEXT NOT NULL,
        version INTEGER NOT NULL, is_stub INTEGER NOT NULL, source_timestamp TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        deleted_at TEXT, purged INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS identifiers (
        attribute TEXT NOT NULL, value TEXT NOT NULL, entity_id TEXT NOT NULL, integration_id TEXT, created_at TEXT NOT NULL,
        PRIMARY KEY (attribute, value));
      CREATE INDEX IF NOT EXISTS identifiers_entity ON identifiers(entity_id);
      CREATE TABLE IF NOT EXISTS applied (update_id TEXT PRIMARY KEY, result TEXT NOT NULL, applied_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS history (
        entity_id TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT, operation TEXT NOT NULL, changes TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (entity_id, version));
      CREATE TABLE IF NOT EXISTS outbox (
        id TEXT PRIMARY KEY, entity_id TEXT NOT NULL, body TEXT NOT NULL, sending_since INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER, last_error TEXT);
      CREATE TABLE IF NOT EXISTS outbox_dead (
        id TEXT PRIMARY KEY, entity_id TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL, dead_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS event_bodies (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meter_readings (
        id TEXT PRIMARY KEY, meter_id TEXT NOT NULL, counter_id TEXT, external_id TEXT NOT NULL, timestamp TEXT NOT NULL, value REAL NOT NULL,
        source TEXT NOT NULL, reason TEXT, attributes TEXT NOT NULL, event_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        UNIQUE (meter_id, external_id));
    `;

export class EntityStore extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Rows were added to the outbox since the alarm was last armed for them. */
  private emitted = false;
  /**
   * During apply(): the core-event names the tenant's outbound use cases take (subscribedEventNames);
   * emit() queues no other. Null (other calls, or configuration unreadable): every event is queued.
   */
  private subscribed: Set<string> | null = null;
  /** When this object last looked for expired event bodies (at most hourly). */
  private bodiesSweptAt = 0;
  /**
   * During apply(): the entities the batch read or wrote, each read once and written once at the end
   * of its transaction (a hot entity's many updates in one batch cost one read and one write).
   */
  private batch: Map<string, { state: EntityState | null; dirty: boolean }> | null = null;
  /** Envelopes emitted since the last flush, so flush() sends them without parsing their JSON again. */
  private readonly emittedEvents = new Map<string, CoreEventEnvelope>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(STORE_SCHEMA);
  }

  // ---- identity -------------------------------------------------------------------------------

  /**
   * The entity a set of unique ids names, claiming the missing ids for it (a new entity when none
   * does). Ids that point at two different entities are ambiguous: reported, never merged, and
   * nothing is claimed. Synchronous: no other call can interleave between the lookup and the claim.
   */
  private resolveIds(ids: Record<string, string>, integrationId: string | null | undefined): { entityId: string; created: boolean } | Ambiguous {
    const pairs = Object.entries(ids);
    const found = pairs.flatMap(([attribute, value]) =>
      this.sql.exec<{ attribute: string; value: string; entity_id: string }>("SELECT attribute, value, entity_id FROM identifiers WHERE attribute = ? AND value = ?", attribute, value).toArray(),
    );
    const matches = [...new Set(found.map((r) => r.entity_id))];
    if (matches.length > 1) return { ambiguous: matches };
    const entityId = matches[0] ?? newId();
    const at = nowIso();
    for (const [attribute, value] of pairs) {
      if (!found.some((r) => r.attribute === attribute && r.value === value)) {
        this.sql.exec("INSERT INTO identifiers (attribute, value, entity_id, integration_id, created_at) VALUES (?, ?, ?, ?, ?)", attribute, value, entityId, integrationId ?? null, at);
      }
    }
    return { entityId, created: matches.length === 0 };
  }

  /**
   * Resolves relation references to entity ids, creating a stub for each id that names no entity
   * yet (a relation target whose own event has not arrived). One answer per reference, in order.
   */
  async resolve(tenantId: string, schema: string, refs: { ids: Record<string, string>; integrationId?: string | null }[]): Promise<({ entityId: string } | Ambiguous)[]> {
    return this.ctx.storage.transactionSync(() =>
      refs.map((ref) => {
        const r = this.resolveIds(ref.ids, ref.integrationId);
        if ("ambiguous" in r) return r;
        if (r.created || !this.read(r.entityId)) this.ensureStub(tenantId, schema, r.entityId, ref.ids);
        return { entityId: r.entityId };
      }),
    );
  }

  private ensureStub(tenantId: string, schema: string, entityId: string, uniqueIds: Record<string, string>) {
    const current = this.read(entityId);
    if (current && !current.purged) return;
    const now = nowIso();
    const stub: EntityState = {
      id: entityId, tenant_id: tenantId, schema, attributes: { ...uniqueIds }, unique_ids: uniqueIds,
      version: (current?.version ?? 0) + 1, is_stub: true, source_timestamp: null, created_at: now, updated_at: now, deleted_at: null, purged: false,
    };
    this.write(stub, null, "stub", {});
  }

  // ---- applying updates -----------------------------------------------------------------------

  /**
   * Applies updates in the order given, each one resolved to its entity and applied exactly once
   * (a repeated update id answers its first result). The whole batch is one storage transaction,
   * its core events queued in the outbox in that same transaction and sent right after.
   */
  async apply(updates: EntityUpdateInput[]): Promise<(EntityUpdateResult | Ambiguous)[]> {
    // Read before the transaction (which is synchronous, so no other call runs between the two). When
    // configuration cannot be read, every event is queued, as before this check: none is lost.
    const subscribed = updates.length > 0 ? await subscribedEventNames(this.env.DB, updates[0]!.tenantId).catch(() => null) : null;
    const results = this.ctx.storage.transactionSync(() => {
      this.batch = new Map();
      this.subscribed = subscribed;
      try {
        const results = this.applyAll(updates);
        for (const { state, dirty } of this.batch.values()) if (dirty && state) this.writeRow(state);
        return results;
      } finally {
        this.batch = null;
        this.subscribed = null;
      }
    });
    this.armOutbox();
    // Durable before anything is sent: a change is never announced that a crash could still undo.
    await this.ctx.storage.sync();
    crashPoint("entity.before-flush", (why) => this.ctx.abort(why));
    if (results.some((r) => "operation" in r && !r.duplicate)) await this.flush();
    return results;
  }

  /** The batch's updates in order, inside apply()'s transaction; one applied before answers its recorded result. */
  private applyAll(updates: EntityUpdateInput[]): (EntityUpdateResult | Ambiguous)[] {
    // Which of the batch were applied before: one statement for all of them.
    const seen = new Map(
      this.sql
        .exec<{ update_id: string; result: string }>("SELECT update_id, result FROM applied WHERE update_id IN (SELECT value FROM json_each(?))", JSON.stringify(updates.map((u) => u.updateId)))
        .toArray()
        .map((r) => [r.update_id, r.result]),
    );
    return updates.map((u) => {
      const before = seen.get(u.updateId);
      if (before !== undefined) return { ...(JSON.parse(before) as EntityUpdateResult), duplicate: true };
      const result = this.applyOne(u);
      // A repeat of this update later in the same batch answers this result.
      if ("operation" in result) seen.set(u.updateId, JSON.stringify(result));
      return result;
    });
  }

  /** Applies one update not applied before (apply() checks `applied` for the whole batch). */
  private applyOne(input: EntityUpdateInput): EntityUpdateResult | Ambiguous {
    let entityId = input.entityId;
    if (!entityId) {
      const resolution = this.resolveIds(input.uniqueIds, input.integrationId);
      if ("ambiguous" in resolution) return resolution;
      entityId = resolution.entityId;
    }
    const now = nowIso();
    const current = this.read(entityId);
    let result: EntityUpdateResult;
    const done = (operation: EntityOperation, version: number) => ({ entityId: entityId!, operation, version, duplicate: false });

    if (current && !current.purged && input.sourceTimestamp && current.source_timestamp && input.sourceTimestamp < current.source_timestamp) {
      result = done("skipped_stale", current.version);
    } else if (input.mode === "upsert") {
      const base: EntityState =
        current && !current.purged
          ? current
          : { id: entityId, tenant_id: input.tenantId, schema: input.schema, attributes: {}, unique_ids: {}, version: current?.version ?? 0, is_stub: false, source_timestamp: null, created_at: now, updated_at: now, deleted_at: null, purged: false };
      const { next: attributes, changes } = mergeAttributes(base.attributes, { ...input.uniqueIds, ...input.attributes });
      // Filling a stub (or re-creating a purged entity) is its real creation as far as subscribers are concerned.
      const isNew = !current || current.purged || base.is_stub;
      const restored = base.deleted_at !== null;
      const uniqueIds = { ...base.unique_ids, ...input.uniqueIds };
      if (!isNew && !restored && Object.keys(changes).length === 0 && JSON.stringify(uniqueIds) === JSON.stringify(base.unique_ids)) {
        // Nothing to change, but the newer source time still guards against older updates to come.
        result = done("unchanged", base.version);
        this.touch({ ...base, source_timestamp: maxTimestamp(base.source_timestamp, input.sourceTimestamp) });
      } else {
        const next: EntityState = {
          ...base, attributes, unique_ids: uniqueIds, version: base.version + 1, is_stub: false,
          source_timestamp: maxTimestamp(base.source_timestamp, input.sourceTimestamp), updated_at: now, deleted_at: null, purged: false,
        };
        const operation: EntityOperation = isNew ? "created" : restored ? "restored" : "updated";
        this.write(next, input.eventId, operation, changes);
        this.emit(next, operation, changes, input);
        result = done(operation, next.version);
      }
    } else if (!current || current.purged) {
      result = done("not_found", current?.version ?? 0);
    } else if (input.mode === "delete") {
      if (current.deleted_at) result = done("unchanged", current.version);
      else {
        const next = { ...current, version: current.version + 1, updated_at: now, deleted_at: now, source_timestamp: maxTimestamp(current.source_timestamp, input.sourceTimestamp) };
        this.write(next, input.eventId, "deleted", {});
        this.emit(next, "deleted", {}, input);
        result = done("deleted", next.version);
      }
    } else {
      const next = { ...current, attributes: {}, version: current.version + 1, updated_at: now, purged: true, source_timestamp: maxTimestamp(current.source_timestamp, input.sourceTimestamp) };
      this.write(next, input.eventId, "purged", {});
      this.emit({ ...next, attributes: current.attributes }, "purged", {}, input);
      // A purged entity's ids are free again: the next update that names them creates a new entity.
      this.sql.exec("DELETE FROM identifiers WHERE entity_id = ?", entityId);
      result = done("purged", next.version);
    }
    this.sql.exec("INSERT INTO applied (update_id, result, applied_at) VALUES (?, ?, ?)", input.updateId, JSON.stringify(result), now);
    return result;
  }

  /** Lifts a soft delete. */
  async restore(entityId: string): Promise<EntityUpdateResult> {
    const current = this.read(entityId);
    if (!current || current.purged) return { entityId, operation: "not_found", version: 0, duplicate: false };
    if (!current.deleted_at) return { entityId, operation: "unchanged", version: current.version, duplicate: false };
    const next = { ...current, version: current.version + 1, updated_at: nowIso(), deleted_at: null };
    this.write(next, null, "restored", {});
    this.emit(next, "restored", {}, { eventId: null });
    this.armOutbox();
    await this.flush();
    return { entityId, operation: "restored", version: next.version, duplicate: false };
  }

  /** Upserts or deletes meter readings (this is the tenant's meter store), one transaction. */
  async putReadings(readings: MeterReadingWrite[]): Promise<void> {
    const at = nowIso();
    this.ctx.storage.transactionSync(() => {
      for (const r of readings) {
        if (r.mode === "delete") {
          this.sql.exec("DELETE FROM meter_readings WHERE meter_id = ? AND external_id = ?", r.meterId, r.attributes.external_id);
          continue;
        }
        const { external_id, timestamp, source, value, reason, ...rest } = r.attributes;
        this.sql.exec(
          `INSERT INTO meter_readings (id, meter_id, counter_id, external_id, timestamp, value, source, reason, attributes, event_id, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (meter_id, external_id) DO UPDATE SET counter_id = excluded.counter_id, timestamp = excluded.timestamp,
             value = excluded.value, source = excluded.source, reason = excluded.reason, attributes = excluded.attributes,
             event_id = excluded.event_id, updated_at = excluded.updated_at`,
          newId(), r.meterId, r.counterId, external_id, timestamp, value ?? 0, source, reason ?? null, JSON.stringify(rest), r.eventId, at, at,
        );
      }
    });
  }

  /** The tenant is gone: its entities of this schema go too. */
  async purge(): Promise<void> {
    await emptyStorage(this.ctx, STORE_SCHEMA);
  }

  // ---- reads ----------------------------------------------------------------------------------

  async get(entityId: string): Promise<EntityState | null> {
    const s = this.read(entityId);
    return s && !s.purged ? s : null;
  }

  /** Entities after `after` (by id), optionally only those holding every given unique id. */
  async find(filter: Record<string, string>, after: string, limit: number): Promise<EntityState[]> {
    const pairs = Object.entries(filter);
    const joins = pairs.map((_, i) => `JOIN identifiers i${i} ON i${i}.entity_id = e.id AND i${i}.attribute = ? AND i${i}.value = ?`).join(" ");
    return this.sql
      .exec<StateRow>(`SELECT e.* FROM entities e ${joins} WHERE e.purged = 0 AND e.id > ? ORDER BY e.id LIMIT ?`, ...pairs.flat(), after, limit)
      .toArray()
      .map(fromRow);
  }

  /** History newest first; `before` is a version to continue below. */
  async history(entityId: string, limit: number, before?: number): Promise<EntityHistoryEntry[]> {
    return this.sql
      .exec<{ version: number; event_id: string | null; operation: string; changes: string; at: string }>(
        "SELECT version, event_id, operation, changes, at FROM history WHERE entity_id = ? AND version < ? ORDER BY version DESC LIMIT ?",
        entityId,
        before ?? Number.MAX_SAFE_INTEGER,
        limit,
      )
      .toArray()
      .map((r) => ({ version: r.version, event_id: r.event_id, operation: r.operation as EntityHistoryEntry["operation"], changes: JSON.parse(r.changes), at: r.at }));
  }

  async readings(meterId: string, after: string, limit: number) {
    return this.sql
      .exec<{ id: string; meter_id: string; counter_id: string | null; external_id: string; timestamp: string; value: number; source: string; reason: string | null; attributes: string; event_id: string; updated_at: string }>(
        "SELECT id, meter_id, counter_id, external_id, timestamp, value, source, reason, attributes, event_id, updated_at FROM meter_readings WHERE meter_id = ? AND id > ? ORDER BY id LIMIT ?",
        meterId, after, limit,
      )
      .toArray();
  }

  /**
   * The whole envelope (JSON text) of a core event this store sent by reference, or null once it is
   * older than EVENT_BODY_RETENTION_MS (longer than the queue keeps a message).
   */
  async coreEvent(eventId: string): Promise<string | null> {
    return this.sql.exec<{ body: string }>("SELECT body FROM event_bodies WHERE id = ?", eventId).toArray()[0]?.body ?? null;
  }

  private read(entityId: string): EntityState | null {
    const cached = this.batch?.get(entityId);
    if (cached) return cached.state;
    const row = this.sql.exec<StateRow>("SELECT * FROM entities WHERE id = ?", entityId).toArray()[0];
    const state = row ? fromRow(row) : null;
    this.batch?.set(entityId, { state, dirty: false });
    return state;
  }

  /** A new state of an entity without a new version (in a batch, written with the batch). */
  private touch(s: EntityState) {
    if (this.batch) this.batch.set(s.id, { state: s, dirty: true });
    else this.writeRow(s);
  }

  private write(s: EntityState, eventId: string | null, operation: EntityHistoryEntry["operation"], changes: AttributeChanges) {
    this.touch(s);
    this.sql.exec("INSERT INTO history (entity_id, version, event_id, operation, changes, at) VALUES (?, ?, ?, ?, ?, ?)", s.id, s.version, eventId, operation, JSON.stringify(changes), s.updated_at);
  }

  /** The entity's row as `s` says (its created_at included: a re-created purged entity carries its new one). */
  private writeRow(s: EntityState) {
    this.sql.exec(
      `INSERT INTO entities (id, tenant_id, schema, attributes, unique_ids, version, is_stub, source_timestamp, created_at, updated_at, deleted_at, purged)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET attributes = excluded.attributes, unique_ids = excluded.unique_ids, version = excluded.version,
         is_stub = excluded.is_stub, source_timestamp = excluded.source_timestamp, updated_at = excluded.updated_at,
         deleted_at = excluded.deleted_at, purged = excluded.purged, created_at = excluded.created_at`,
      s.id, s.tenant_id, s.schema, JSON.stringify(s.attributes), JSON.stringify(s.unique_ids), s.version, s.is_stub ? 1 : 0,
      s.source_timestamp, s.created_at, s.updated_at, s.deleted_at, s.purged ? 1 : 0,
    );
  }

  // ---- the outbox -----------------------------------------------------------------------------

  /**
   * Queues the core event of a change in the same storage transaction as the change (an outbox), so
   * a change is never applied without its event: flush() sends it, and the alarm sends it if flush()
   * never runs (the object stopped first) or fails. In apply(), an event no outbound use case of the
   * tenant takes is not queued: fan-out would drop it (see `subscribed`).
   */
  private emit(s: EntityState, operation: EntityOperation, changes: AttributeChanges, input: { eventId: string | null; correlationId?: string | null }) {
    const kind = operation === "created" ? "created" : operation === "deleted" || operation === "purged" ? "deleted" : "updated";
    if (this.subscribed && !this.subscribed.has(`${s.schema}.${kind}`)) return;
    const event = envelope(
      s.tenant_id,
      `${s.schema}.${kind}`,
      {
        entity: { id: s.id, schema: s.schema, attributes: s.attributes, unique_ids: s.unique_ids, version: s.version, deleted_at: s.deleted_at },
        operation,
        changes,
        source_event_id: input.eventId,
      },
      { source: "erp-edge.entities", correlationId: input.correlationId },
    );
    this.sql.exec("INSERT INTO outbox (id, entity_id, body) VALUES (?, ?, ?)", event._event_id, s.id, JSON.stringify(event));
    this.emittedEvents.set(event._event_id, event);
    this.emitted = true;
  }

  /**
   * After rows were added to the outbox, with no await since: sets the alarm in the same atomic write,
   * so should the object stop before flush() runs, the alarm sends them. flush() moves it.
   */
  private armOutbox(): void {
    if (!this.emitted) return;
    this.emitted = false;
    void this.ctx.storage.setAlarm(Date.now() + RETRY_BASE_MS);
  }

  /**
   * Sends due core events, in order, in batches the queue accepts (at most 100 messages and 256 KB
   * each); an envelope too large for one message travels as a reference (see `outgoing`). Rows are
   * claimed synchronously (sending_since) so concurrent calls never send the same event twice, and a
   * claim older than CLAIM_MS (its sender died) is taken over. A row that fails waits with backoff
   * without holding back the others, and is dead-lettered after MAX_SEND_ATTEMPTS.
   */
  private async flush(): Promise<void> {
    const now = Date.now();
    const rows = this.sql
      .exec<OutboxRow>(
        "SELECT id, entity_id, body, attempts FROM outbox WHERE (sending_since IS NULL OR sending_since < ?) AND COALESCE(next_at, 0) <= ? ORDER BY id LIMIT ?",
        now - CLAIM_MS,
        now,
        FLUSH_LIMIT,
      )
      .toArray();
    if (rows.length > 0) {
      this.sql.exec("UPDATE outbox SET sending_since = ? WHERE id IN (SELECT value FROM json_each(?))", now, JSON.stringify(rows.map((r) => r.id)));
      // Set before sending, so a crash mid-send is retried once the claim expires.
      await this.ctx.storage.setAlarm(now + CLAIM_MS + 1_000);
      const messages: OutgoingMessage[] = [];
      for (const r of rows) {
        const m = this.outgoing(r);
        if (m.bytes > MAX_MESSAGE_BYTES) this.deadLetter(m, `message of ${m.bytes} bytes exceeds the queue's limit even as a reference`);
        else messages.push(m);
      }
      for (const batch of queueBatches(packs(messages))) await this.send(batch);
    }
    // Rows not sent now are read back from the outbox next time.
    this.emittedEvents.clear();
    // Bodies still referenced by a queued or dead-lettered row are kept: a redrive must find them.
    // Looked for at most hourly: bodies are kept for days, and flushes are frequent.
    if (now - this.bodiesSweptAt > 3_600_000) {
      this.bodiesSweptAt = now;
      this.sql.exec(
        "DELETE FROM event_bodies WHERE created_at < ? AND id NOT IN (SELECT id FROM outbox) AND id NOT IN (SELECT id FROM outbox_dead)",
        now - EVENT_BODY_RETENTION_MS,
      );
    }
    await this.scheduleFlush();
  }

  /**
   * The message for an outbox row. An envelope over INLINE_LIMIT_BYTES is kept whole in
   * `event_bodies` and replaced by a reference (`_truncated`, `_entity_id`, `_entity_version`),
   * from which fan-out loads it again (coreEvent), so no entity can be too large for the queue.
   */
  private outgoing(row: OutboxRow): OutgoingMessage {
    const bytes = utf8Length(row.body);
    if (bytes <= INLINE_LIMIT_BYTES) return { id: row.id, entityId: row.entity_id, body: row.body, bytes, attempts: row.attempts };
    this.emittedEvents.delete(row.id);
    const body = JSON.stringify(referenceTo(JSON.parse(row.body) as CoreEventEnvelope));
    this.sql.exec("INSERT OR IGNORE INTO event_bodies (id, body, created_at) VALUES (?, ?, ?)", row.id, row.body, Date.now());
    this.sql.exec("UPDATE outbox SET body = ? WHERE id = ?", body, row.id);
    return { id: row.id, entityId: row.entity_id, body, bytes: utf8Length(body), attempts: row.attempts };
  }

  /**
   * Sends one batch of packs. When the queue refuses a batch of several packs, each pack is sent
   * alone, and a refused pack of several events is sent one event at a time, so only a failing
   * event waits.
   */
  private async send(batch: OutgoingMessage[][]): Promise<void> {
    try {
      await this.env.CORE_EVENTS.sendBatch(batch.map((pack) => ({ body: this.messageOf(pack), contentType: "json" as const })));
      crashPoint("outbox.after-send", (why) => this.ctx.abort(why));
      this.sql.exec("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(batch.flat().map((m) => m.id)));
    } catch (err) {
      if (batch.length > 1) {
        for (const pack of batch) await this.send([pack]);
        return;
      }
      if (batch[0]!.length > 1) {
        for (const m of batch[0]!) await this.send([[m]]);
        return;
      }
      const m = batch[0]![0]!;
      const error = String((err as Error)?.message ?? err);
      const attempts = m.attempts + 1;
      if (attempts >= MAX_SEND_ATTEMPTS) return this.deadLetter({ ...m, attempts }, error);
      const retryAt = Date.now() + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempts - 1));
      this.sql.exec("UPDATE outbox SET sending_since = NULL, attempts = ?, last_error = ?, next_at = ? WHERE id = ?", attempts, error, retryAt, m.id);
      console.error(JSON.stringify({ level: "warn", message: "core event send failed; retrying", entity_id: m.entityId, event_id: m.id, attempts, retry_at: new Date(retryAt).toISOString(), error }));
    }
  }

  /** The queue message of a pack: its lone event as is, or several as a CoreEventPack. */
  private messageOf(pack: OutgoingMessage[]): CoreEventMessage {
    const events = pack.map((m) => this.emittedEvents.get(m.id) ?? (JSON.parse(m.body) as CoreEventEnvelope));
    return events.length === 1 ? events[0]! : { _events: events };
  }

  /** Moves an event the queue would not take aside, so later events flow; redriveOutbox() sends it again. */
  private deadLetter(m: OutgoingMessage, error: string) {
    this.sql.exec(
      "INSERT OR REPLACE INTO outbox_dead (id, entity_id, body, attempts, last_error, dead_at) VALUES (?, ?, ?, ?, ?, ?)",
      m.id, m.entityId, m.body, m.attempts, error, new Date().toISOString(),
    );
    this.sql.exec("DELETE FROM outbox WHERE id = ?", m.id);
    console.error(JSON.stringify({ level: "error", message: "core event dead-lettered by the outbox", entity_id: m.entityId, event_id: m.id, attempts: m.attempts, error }));
  }

  /** The alarm follows the outbox: at its earliest retry or claim expiry, and none once it is empty. */
  private async scheduleFlush(): Promise<void> {
    const { wake } = this.sql
      .exec<{ wake: number | null }>(
        "SELECT MIN(CASE WHEN sending_since IS NOT NULL THEN sending_since + ? ELSE COALESCE(next_at, 0) END) AS wake FROM outbox",
        CLAIM_MS + 1_000,
      )
      .one();
    if (wake === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(Math.max(wake, Date.now()));
  }

  override async alarm(): Promise<void> {
    await this.flush();
  }

  /** Events waiting to be sent and events dead-lettered by the outbox, oldest first (of one entity, when given). */
  async outboxStatus(entityId?: string): Promise<OutboxStatus> {
    const mine = entityId === undefined ? "1 = 1" : "entity_id = ?";
    const bind = entityId === undefined ? [] : [entityId];
    const pending = this.sql
      .exec<{ id: string; attempts: number; last_error: string | null; next_at: number | null }>(`SELECT id, attempts, last_error, next_at FROM outbox WHERE ${mine} ORDER BY id`, ...bind)
      .toArray()
      .map((r) => ({ event_id: r.id, attempts: r.attempts, last_error: r.last_error, next_attempt_at: r.next_at ? new Date(r.next_at).toISOString() : null }));
    const dead = this.sql
      .exec<{ id: string; body: string; attempts: number; last_error: string; dead_at: string }>(`SELECT id, body, attempts, last_error, dead_at FROM outbox_dead WHERE ${mine} ORDER BY id`, ...bind)
      .toArray()
      .map((r) => ({ event_id: r.id, event_name: String((JSON.parse(r.body) as CoreEventEnvelope)._event_name), attempts: r.attempts, last_error: r.last_error, dead_at: r.dead_at }));
    return { pending, dead };
  }

  /** Puts dead-lettered events (all, or the given ids) back in the outbox with fresh attempts, and sends them. */
  async redriveOutbox(eventIds?: string[]): Promise<number> {
    const rows = this.sql.exec<{ id: string; entity_id: string; body: string }>("SELECT id, entity_id, body FROM outbox_dead ORDER BY id").toArray().filter((r) => !eventIds || eventIds.includes(r.id));
    for (const r of rows) {
      this.sql.exec("INSERT OR IGNORE INTO outbox (id, entity_id, body, attempts) VALUES (?, ?, ?, 0)", r.id, r.entity_id, r.body);
      this.sql.exec("DELETE FROM outbox_dead WHERE id = ?", r.id);
    }
    await this.flush();
    return rows.length;
  }
}

function fromRow(row: StateRow): EntityState {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    schema: row.schema,
    attributes: JSON.parse(row.attributes),
    unique_ids: JSON.parse(row.unique_ids),
    version: row.version,
    is_stub: row.is_stub === 1,
    source_timestamp: row.source_timestamp,
    created_at: row.created_at,
    updated_at: row.updated_at,
    deleted_at: row.deleted_at,
    purged: row.purged === 1,
  };
}

const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).byteLength;

/** Items in order, cut into runs of at most `count` items and `limit` bytes (an item over the limit runs alone). */
function runs<T>(items: T[], sizeOf: (item: T) => number, count: number, limit: number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (current.length === count || bytes + size > limit)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Events in order, cut into packs (one queue message each) within a message's size and MAX_PACK_EVENTS. */
const packs = (messages: OutgoingMessage[]) => runs(messages, (m) => m.bytes + 1, MAX_PACK_EVENTS, MAX_MESSAGE_BYTES - PACK_OVERHEAD_BYTES);

/** Packs in order, cut into sendBatch calls within the queue's count and size limits. */
const packBytes = (pack: OutgoingMessage[]) => pack.reduce((n, m) => n + m.bytes + 1, PACK_OVERHEAD_BYTES);
const queueBatches = (packed: OutgoingMessage[][]) => runs(packed, (p) => packBytes(p) + MESSAGE_OVERHEAD_BYTES, MAX_BATCH_MESSAGES, MAX_BATCH_BYTES);

/**
 * An entity event without its attributes and changes: the envelope fields, the entity's identity and
 * version, and `_truncated` so fan-out loads the whole event (EntityStore.coreEvent) before mapping.
 */
function referenceTo(event: CoreEventEnvelope): CoreEventEnvelope {
  const entity = event.entity as Pick<EntityState, "id" | "schema" | "unique_ids" | "version" | "deleted_at">;
  const fields = Object.fromEntries(Object.entries(event).filter(([k]) => k.startsWith("_"))) as CoreEventEnvelope;
  const reference = {
    ...fields,
    _truncated: true as const,
    _entity_id: entity.id,
    _entity_version: entity.version,
    entity: { id: entity.id, schema: entity.schema, unique_ids: entity.unique_ids, version: entity.version, deleted_at: entity.deleted_at },
    operation: event.operation,
    source_event_id: event.source_event_id,
  };
  // Unique ids are the ERP's values; in the unlikely case they are large themselves, they stay behind too.
  if (utf8Length(JSON.stringify(reference)) > INLINE_LIMIT_BYTES) reference.entity = { ...reference.entity, unique_ids: {} };
  return reference;
}

function maxTimestamp(a: string | null, b: string | undefined): string | null {
  if (!b) return a;
  if (!a) return b;
  return b > a ? b : a;
}
