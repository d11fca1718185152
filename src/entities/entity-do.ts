// EntityObject: one Durable Object per entity (keyed by our entity id) that applies its updates one at
// a time, remembers which updates it applied, refuses stale ones, keeps history, and writes the D1
// projection. See docs/STORAGE.md for its storage layout.
import { DurableObject } from "cloudflare:workers";
import { envelope } from "../outbound/service";
import { mergeAttributes, type AttributeChanges } from "./merge";

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
    `);
  }

  /**
   * Queues the core event of a change in the same storage transaction as the change (an outbox), so
   * a change is never applied without its event: flush() sends it, and the alarm retries if that fails.
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
  }

  /**
   * Sends queued core events. Rows are claimed synchronously (sending_since) so concurrent calls never
   * send the same event twice; a claim older than 30 s (its sender died) is taken over, and an alarm
   * is set first so a crash mid-send is retried.
   */
  private async flush(): Promise<void> {
    const now = Date.now();
    const rows = this.sql
      .exec<{ id: string; body: string }>("SELECT id, body FROM outbox WHERE sending_since IS NULL OR sending_since < ? ORDER BY id", now - 30_000)
      .toArray();
    if (rows.length === 0) return;
    for (const r of rows) this.sql.exec("UPDATE outbox SET sending_since = ? WHERE id = ?", now, r.id);
    await this.ctx.storage.setAlarm(now + 31_000);
    try {
      await this.env.CORE_EVENTS.sendBatch(rows.map((r) => ({ body: JSON.parse(r.body) })));
      for (const r of rows) this.sql.exec("DELETE FROM outbox WHERE id = ?", r.id);
    } catch (err) {
      console.error(JSON.stringify({ level: "warn", message: "core event flush failed; retrying", error: (err as Error).message }));
      for (const r of rows) this.sql.exec("UPDATE outbox SET sending_since = NULL WHERE id = ?", r.id);
      await this.ctx.storage.setAlarm(Date.now() + 5_000);
    }
  }

  override async alarm(): Promise<void> {
    await this.flush();
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

function maxTimestamp(a: string | null, b: string | undefined): string | null {
  if (!b) return a;
  if (!a) return b;
  return b > a ? b : a;
}
