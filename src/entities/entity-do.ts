// EntityObject: one Durable Object per entity (keyed by our entity id) that applies its updates one at
// a time, remembers which updates it applied, refuses stale ones, keeps history, and writes the D1
// projection. See docs/STORAGE.md for its storage layout.
import { DurableObject } from "cloudflare:workers";
import { envelope, type CoreEventEnvelope } from "../platform/core-events";
import { crashPoint } from "../platform/crash-points";
import { mergeAttributes, type AttributeChanges } from "./merge";

// Cloudflare Queues take messages of up to 128 KB (about 100 bytes of it metadata) and sendBatch
// calls of up to 100 messages and 256 KB. Messages go as JSON, so their size is their UTF-8 length.
const MAX_MESSAGE_BYTES = 127_000;
const MAX_BATCH_BYTES = 256_000;
const MESSAGE_OVERHEAD_BYTES = 200;
const MAX_BATCH_MESSAGES = 100;
/** Envelopes larger than this travel as a reference to the entity (see EntityObject.outgoing). */
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
  entityId: string;
  uniqueIds: Record<string, string>;
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
  body: string;
  attempts: number;
  [key: string]: SqlStorageValue;
}

interface OutgoingMessage {
  id: string;
  body: string;
  bytes: number;
  attempts: number;
}

export class EntityObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS entity (
        k INTEGER PRIMARY KEY CHECK (k = 1), id TEXT NOT NULL, tenant_id TEXT NOT NULL, schema TEXT NOT NULL,
        attributes TEXT NOT NULL, unique_ids TEXT NOT NULL, version INTEGER NOT NULL, is_stub INTEGER NOT NULL,
        source_timestamp TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deleted_at TEXT, purged INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS applied (update_id TEXT PRIMARY KEY, result TEXT NOT NULL, applied_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS history (version INTEGER PRIMARY KEY, event_id TEXT, operation TEXT NOT NULL, changes TEXT NOT NULL, at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, body TEXT NOT NULL, sending_since INTEGER);
      CREATE TABLE IF NOT EXISTS outbox_dead (id TEXT PRIMARY KEY, body TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL, dead_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS event_bodies (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL);
    `);
    // Outboxes created before send attempts were counted gain the columns (kept rows start at 0).
    const columns = new Set(this.sql.exec<{ name: string }>("PRAGMA table_info(outbox)").toArray().map((c) => c.name));
    if (!columns.has("attempts")) this.sql.exec("ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0");
    if (!columns.has("next_at")) this.sql.exec("ALTER TABLE outbox ADD COLUMN next_at INTEGER");
    if (!columns.has("last_error")) this.sql.exec("ALTER TABLE outbox ADD COLUMN last_error TEXT");
  }

  /**
   * Queues the core event of a change in the same storage transaction as the change (an outbox), so
   * a change is never applied without its event: flush() sends it, and the alarm sends it if flush()
   * never runs (the object stopped first) or fails.
   */
  private emit(s: EntityState, operation: EntityOperation, changes: AttributeChanges, input: { eventId: string | null; correlationId?: string | null }) {
    const kind = operation === "created" ? "created" : operation === "deleted" || operation === "purged" ? "deleted" : "updated";
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
    this.sql.exec("INSERT INTO outbox (id, body) VALUES (?, ?)", event._event_id, JSON.stringify(event));
    // Written in the same transaction as the row (storage calls made before the next await commit
    // together): should the object stop before flush() runs, this alarm sends the row. flush() moves it.
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
        "SELECT id, body, attempts FROM outbox WHERE (sending_since IS NULL OR sending_since < ?) AND COALESCE(next_at, 0) <= ? ORDER BY id LIMIT ?",
        now - CLAIM_MS,
        now,
        FLUSH_LIMIT,
      )
      .toArray();
    if (rows.length > 0) {
      for (const r of rows) this.sql.exec("UPDATE outbox SET sending_since = ? WHERE id = ?", now, r.id);
      // Set before sending, so a crash mid-send is retried once the claim expires.
      await this.ctx.storage.setAlarm(now + CLAIM_MS + 1_000);
      const messages: OutgoingMessage[] = [];
      for (const r of rows) {
        const m = this.outgoing(r);
        if (m.bytes > MAX_MESSAGE_BYTES) this.deadLetter(m, `message of ${m.bytes} bytes exceeds the queue's limit even as a reference`);
        else messages.push(m);
      }
      for (const batch of queueBatches(messages)) await this.send(batch);
    }
    // Bodies still referenced by a queued or dead-lettered row are kept: a redrive must find them.
    this.sql.exec(
      "DELETE FROM event_bodies WHERE created_at < ? AND id NOT IN (SELECT id FROM outbox) AND id NOT IN (SELECT id FROM outbox_dead)",
      now - EVENT_BODY_RETENTION_MS,
    );
    await this.scheduleFlush();
  }

  /**
   * The message for an outbox row. An envelope over INLINE_LIMIT_BYTES is kept whole in
   * `event_bodies` and replaced by a reference (`_truncated`, `_entity_id`, `_entity_version`),
   * from which fan-out loads it again (coreEvent), so no entity can be too large for the queue.
   */
  private outgoing(row: OutboxRow): OutgoingMessage {
    const bytes = utf8Length(row.body);
    if (bytes <= INLINE_LIMIT_BYTES) return { id: row.id, body: row.body, bytes, attempts: row.attempts };
    const body = JSON.stringify(referenceTo(JSON.parse(row.body) as CoreEventEnvelope));
    this.sql.exec("INSERT OR IGNORE INTO event_bodies (id, body, created_at) VALUES (?, ?, ?)", row.id, row.body, Date.now());
    this.sql.exec("UPDATE outbox SET body = ? WHERE id = ?", body, row.id);
    return { id: row.id, body, bytes: utf8Length(body), attempts: row.attempts };
  }

  /** Sends one batch; when a batch of several fails, each is sent alone so only a failing one waits. */
  private async send(batch: OutgoingMessage[]): Promise<void> {
    try {
      await this.env.CORE_EVENTS.sendBatch(batch.map((m) => ({ body: JSON.parse(m.body), contentType: "json" as const })));
      crashPoint("outbox.after-send", (why) => this.ctx.abort(why));
      for (const m of batch) this.sql.exec("DELETE FROM outbox WHERE id = ?", m.id);
    } catch (err) {
      if (batch.length > 1) {
        for (const m of batch) await this.send([m]);
        return;
      }
      const m = batch[0]!;
      const error = String((err as Error)?.message ?? err);
      const attempts = m.attempts + 1;
      if (attempts >= MAX_SEND_ATTEMPTS) return this.deadLetter({ ...m, attempts }, error);
      const retryAt = Date.now() + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempts - 1));
      this.sql.exec("UPDATE outbox SET sending_since = NULL, attempts = ?, last_error = ?, next_at = ? WHERE id = ?", attempts, error, retryAt, m.id);
      console.error(JSON.stringify({ level: "warn", message: "core event send failed; retrying", entity_id: this.entityId(), event_id: m.id, attempts, retry_at: new Date(retryAt).toISOString(), error }));
    }
  }

  /** Moves an event the queue would not take aside, so the entity's later events flow; redriveOutbox() sends it again. */
  private deadLetter(m: OutgoingMessage, error: string) {
    this.sql.exec(
      "INSERT OR REPLACE INTO outbox_dead (id, body, attempts, last_error, dead_at) VALUES (?, ?, ?, ?, ?)",
      m.id, m.body, m.attempts, error, new Date().toISOString(),
    );
    this.sql.exec("DELETE FROM outbox WHERE id = ?", m.id);
    console.error(JSON.stringify({ level: "error", message: "core event dead-lettered by the outbox", entity_id: this.entityId(), event_id: m.id, attempts: m.attempts, error }));
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

  /** Events waiting to be sent and events dead-lettered by the outbox, oldest first. */
  async outboxStatus(): Promise<OutboxStatus> {
    const pending = this.sql
      .exec<{ id: string; attempts: number; last_error: string | null; next_at: number | null }>("SELECT id, attempts, last_error, next_at FROM outbox ORDER BY id")
      .toArray()
      .map((r) => ({ event_id: r.id, attempts: r.attempts, last_error: r.last_error, next_attempt_at: r.next_at ? new Date(r.next_at).toISOString() : null }));
    const dead = this.sql
      .exec<{ id: string; body: string; attempts: number; last_error: string; dead_at: string }>("SELECT id, body, attempts, last_error, dead_at FROM outbox_dead ORDER BY id")
      .toArray()
      .map((r) => ({ event_id: r.id, event_name: String((JSON.parse(r.body) as CoreEventEnvelope)._event_name), attempts: r.attempts, last_error: r.last_error, dead_at: r.dead_at }));
    return { pending, dead };
  }

  /** Puts dead-lettered events (all, or the given ids) back in the outbox with fresh attempts, and sends them. */
  async redriveOutbox(eventIds?: string[]): Promise<number> {
    const rows = this.sql.exec<{ id: string; body: string }>("SELECT id, body FROM outbox_dead ORDER BY id").toArray().filter((r) => !eventIds || eventIds.includes(r.id));
    for (const r of rows) {
      this.sql.exec("INSERT OR IGNORE INTO outbox (id, body, attempts) VALUES (?, ?, 0)", r.id, r.body);
      this.sql.exec("DELETE FROM outbox_dead WHERE id = ?", r.id);
    }
    await this.flush();
    return rows.length;
  }

  /**
   * The whole envelope (JSON text) of a core event this entity sent by reference, or null once it is
   * older than EVENT_BODY_RETENTION_MS (longer than the queue keeps a message).
   */
  async coreEvent(eventId: string): Promise<string | null> {
    return this.sql.exec<{ body: string }>("SELECT body FROM event_bodies WHERE id = ?", eventId).toArray()[0]?.body ?? null;
  }

  private entityId(): string | null {
    return this.sql.exec<{ id: string }>("SELECT id FROM entity WHERE k = 1").toArray()[0]?.id ?? null;
  }

  private read(): EntityState | null {
    const row = this.sql.exec<StateRow>("SELECT * FROM entity WHERE k = 1").toArray()[0];
    if (!row) return null;
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

  private write(s: EntityState, eventId: string | null, operation: EntityHistoryEntry["operation"], changes: AttributeChanges) {
    this.sql.exec(
      `INSERT INTO entity (k, id, tenant_id, schema, attributes, unique_ids, version, is_stub, source_timestamp, created_at, updated_at, deleted_at, purged)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (k) DO UPDATE SET attributes = excluded.attributes, unique_ids = excluded.unique_ids, version = excluded.version,
         is_stub = excluded.is_stub, source_timestamp = excluded.source_timestamp, updated_at = excluded.updated_at,
         deleted_at = excluded.deleted_at, purged = excluded.purged`,
      s.id, s.tenant_id, s.schema, JSON.stringify(s.attributes), JSON.stringify(s.unique_ids), s.version, s.is_stub ? 1 : 0,
      s.source_timestamp, s.created_at, s.updated_at, s.deleted_at, s.purged ? 1 : 0,
    );
    this.sql.exec("INSERT INTO history (version, event_id, operation, changes, at) VALUES (?, ?, ?, ?, ?)", s.version, eventId, operation, JSON.stringify(changes), s.updated_at);
  }

  /** Writes the D1 read model; the version guard makes out-of-order or repeated writes harmless. */
  private async project(s: EntityState): Promise<void> {
    if (s.purged) {
      await this.env.DB.batch([
        this.env.DB.prepare("DELETE FROM entities WHERE id = ?").bind(s.id),
        this.env.DB.prepare("DELETE FROM entity_identifiers WHERE entity_id = ?").bind(s.id),
      ]);
      return;
    }
    await this.env.DB.prepare(
      `INSERT INTO entities (id, tenant_id, schema, attributes, unique_ids, version, is_stub, created_at, updated_at, deleted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET attributes = excluded.attributes, unique_ids = excluded.unique_ids, version = excluded.version,
         is_stub = excluded.is_stub, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at
       WHERE excluded.version > entities.version`,
    )
      .bind(s.id, s.tenant_id, s.schema, JSON.stringify(s.attributes), JSON.stringify(s.unique_ids), s.version, s.is_stub ? 1 : 0, s.created_at, s.updated_at, s.deleted_at)
      .run();
  }

  /**
   * Applies one update. The read-modify-write of the state has no await in it, so concurrent calls
   * are applied one after the other; only the projection write (idempotent) is awaited.
   */
  async apply(input: EntityUpdateInput): Promise<EntityUpdateResult> {
    const seen = this.sql.exec<{ result: string }>("SELECT result FROM applied WHERE update_id = ?", input.updateId).toArray()[0];
    if (seen) {
      const current = this.read();
      if (current) await this.project(current);
      return { ...(JSON.parse(seen.result) as EntityUpdateResult), duplicate: true };
    }
    const now = new Date().toISOString();
    const current = this.read();
    let result: EntityUpdateResult;
    let next: EntityState | null = null;

    if (current && !current.purged && input.sourceTimestamp && current.source_timestamp && input.sourceTimestamp < current.source_timestamp) {
      result = { operation: "skipped_stale", version: current.version, duplicate: false };
    } else if (input.mode === "upsert") {
      const base: EntityState =
        current && !current.purged
          ? current
          : { id: input.entityId, tenant_id: input.tenantId, schema: input.schema, attributes: {}, unique_ids: {}, version: 0, is_stub: false, source_timestamp: null, created_at: now, updated_at: now, deleted_at: null, purged: false };
      const { next: attributes, changes } = mergeAttributes(base.attributes, { ...input.uniqueIds, ...input.attributes });
      // Filling a stub is the entity's real creation as far as subscribers are concerned.
      const isNew = base.version === 0 || base.is_stub;
      const restored = base.deleted_at !== null;
      const uniqueIds = { ...base.unique_ids, ...input.uniqueIds };
      if (!isNew && !restored && !base.is_stub && Object.keys(changes).length === 0 && JSON.stringify(uniqueIds) === JSON.stringify(base.unique_ids)) {
        // Nothing to change, but the newer source time still guards against older updates to come.
        result = { operation: "unchanged", version: base.version, duplicate: false };
        this.sql.exec("UPDATE entity SET source_timestamp = ? WHERE k = 1", maxTimestamp(base.source_timestamp, input.sourceTimestamp));
      } else {
        next = {
          ...base,
          attributes,
          unique_ids: uniqueIds,
          version: base.version + 1,
          is_stub: false,
          source_timestamp: maxTimestamp(base.source_timestamp, input.sourceTimestamp),
          updated_at: now,
          deleted_at: null,
        };
        const operation: EntityOperation = isNew ? "created" : restored ? "restored" : "updated";
        this.write(next, input.eventId, operation, changes);
        this.emit(next, operation, changes, input);
        result = { operation, version: next.version, duplicate: false };
      }
    } else if (!current || current.purged) {
      result = { operation: "not_found", version: current?.version ?? 0, duplicate: false };
    } else if (input.mode === "delete") {
      if (current.deleted_at) result = { operation: "unchanged", version: current.version, duplicate: false };
      else {
        next = { ...current, version: current.version + 1, updated_at: now, deleted_at: now, source_timestamp: maxTimestamp(current.source_timestamp, input.sourceTimestamp) };
        this.write(next, input.eventId, "deleted", {});
        this.emit(next, "deleted", {}, input);
        result = { operation: "deleted", version: next.version, duplicate: false };
      }
    } else {
      next = { ...current, attributes: {}, version: current.version + 1, updated_at: now, purged: true, source_timestamp: maxTimestamp(current.source_timestamp, input.sourceTimestamp) };
      this.write(next, input.eventId, "purged", {});
      this.emit({ ...next, attributes: current.attributes }, "purged", {}, input);
      result = { operation: "purged", version: next.version, duplicate: false };
    }
    this.sql.exec("INSERT INTO applied (update_id, result, applied_at) VALUES (?, ?, ?)", input.updateId, JSON.stringify(result), now);
    if (next) await this.project(next);
    crashPoint("entity.before-flush", (why) => this.ctx.abort(why));
    await this.flush();
    return result;
  }

  /** Creates a placeholder for a relation target whose own event has not arrived; no-op if it exists. */
  async ensureStub(input: { tenantId: string; schema: string; entityId: string; uniqueIds: Record<string, string> }): Promise<void> {
    const current = this.read();
    if (current && !current.purged) return;
    const now = new Date().toISOString();
    const stub: EntityState = {
      id: input.entityId, tenant_id: input.tenantId, schema: input.schema, attributes: { ...input.uniqueIds }, unique_ids: input.uniqueIds,
      version: (current?.version ?? 0) + 1, is_stub: true, source_timestamp: null, created_at: now, updated_at: now, deleted_at: null, purged: false,
    };
    this.write(stub, null, "stub", {});
    await this.project(stub);
  }

  /** Lifts a soft delete. */
  async restore(): Promise<EntityUpdateResult> {
    const current = this.read();
    if (!current || current.purged) return { operation: "not_found", version: 0, duplicate: false };
    if (!current.deleted_at) return { operation: "unchanged", version: current.version, duplicate: false };
    const next = { ...current, version: current.version + 1, updated_at: new Date().toISOString(), deleted_at: null };
    this.write(next, null, "restored", {});
    this.emit(next, "restored", {}, { eventId: null });
    await this.project(next);
    await this.flush();
    return { operation: "restored", version: next.version, duplicate: false };
  }

  async state(): Promise<EntityState | null> {
    return this.read();
  }

  /** History newest first; `before` is a version to continue below. */
  async history(limit: number, before?: number): Promise<EntityHistoryEntry[]> {
    return this.sql
      .exec<{ version: number; event_id: string | null; operation: string; changes: string; at: string }>(
        "SELECT * FROM history WHERE version < ? ORDER BY version DESC LIMIT ?",
        before ?? Number.MAX_SAFE_INTEGER,
        limit,
      )
      .toArray()
      .map((r) => ({ version: r.version, event_id: r.event_id, operation: r.operation as EntityHistoryEntry["operation"], changes: JSON.parse(r.changes), at: r.at }));
  }
}

const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).byteLength;

/** Messages in order, cut into sendBatch calls within the queue's count and size limits. */
function queueBatches(messages: OutgoingMessage[]): OutgoingMessage[][] {
  const batches: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = m.bytes + MESSAGE_OVERHEAD_BYTES;
    if (current.length > 0 && (current.length === MAX_BATCH_MESSAGES || bytes + size > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * An entity event without its attributes and changes: the envelope fields, the entity's identity and
 * version, and `_truncated` so fan-out loads the whole event (EntityObject.coreEvent) before mapping.
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
