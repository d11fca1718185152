// The entity store: identity resolution through the ID-mapping table, writes through each entity's
// Durable Object, reads from the D1 projection.
import { AppError } from "../platform/errors";
import { newId, nowIso } from "../platform/ids";
import { decodeCursor, decodeVersionCursor, encodeVersionCursor, toPage, type PageQuery } from "../platform/pagination";
import type { EntityHistoryEntry, EntityUpdateInput, EntityUpdateResult } from "./entity-do";
import type { Entity, MeterReading } from "./schema";

interface EntityRow {
  id: string;
  tenant_id: string;
  schema: string;
  attributes: string;
  unique_ids: string;
  version: number;
  is_stub: number;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

const fromEntityRow = (row: EntityRow): Entity => ({
  id: row.id,
  schema: row.schema,
  attributes: JSON.parse(row.attributes),
  unique_ids: JSON.parse(row.unique_ids),
  version: row.version,
  stub: row.is_stub === 1,
  created_at: row.created_at,
  updated_at: row.updated_at,
  deleted_at: row.deleted_at,
});

/** Unique id values are matched as strings: "00042" and 42 are different ids, "42" and 42 the same. */
export function canonicalIds(ids: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(ids).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

export type Resolution = { entityId: string; created: boolean } | { ambiguous: string[] };

function lookupStatement(db: D1Database, tenantId: string, schema: string, ids: Record<string, string>): D1PreparedStatement {
  const pairs = Object.entries(ids);
  const where = pairs.map(() => "(attribute = ? AND value = ?)").join(" OR ");
  return db
    .prepare(`SELECT attribute, value, entity_id FROM entity_identifiers WHERE tenant_id = ? AND schema = ? AND (${where})`)
    .bind(tenantId, schema, ...pairs.flat());
}

type IdentifierRow = { attribute: string; value: string; entity_id: string };

async function lookupIdentifiers(db: D1Database, tenantId: string, schema: string, ids: Record<string, string>) {
  return (await lookupStatement(db, tenantId, schema, ids).all<IdentifierRow>()).results;
}

/**
 * Claims `missing` ids for `entityId`, all or none: nothing is inserted while any of `ids` belongs to
 * another entity, so a resolution that turns out ambiguous leaves no claim of its own behind.
 */
function claimStatement(db: D1Database, tenantId: string, schema: string, entityId: string, ids: Record<string, string>, missing: [string, string][], integrationId: string | null) {
  return db
    .prepare(
      `INSERT OR IGNORE INTO entity_identifiers (tenant_id, schema, attribute, value, entity_id, integration_id, created_at)
       SELECT ?, ?, json_extract(p.value, '$[0]'), json_extract(p.value, '$[1]'), ?, ?, ? FROM json_each(?) p
       WHERE NOT EXISTS (
         SELECT 1 FROM json_each(?) q JOIN entity_identifiers i
           ON i.tenant_id = ? AND i.schema = ? AND i.attribute = json_extract(q.value, '$[0]') AND i.value = json_extract(q.value, '$[1]')
         WHERE i.entity_id <> ?)`,
    )
    .bind(tenantId, schema, entityId, integrationId, nowIso(), JSON.stringify(missing), JSON.stringify(Object.entries(ids)), tenantId, schema, entityId);
}

/**
 * Finds the entity that a set of unique ids names, claiming the ids for a new entity when none does.
 * Ids that point at two different entities are ambiguous: reported, never merged, and nothing is
 * claimed. Claims use the table's primary key and are checked in the same transaction that makes
 * them, so two writers racing to create the same entity end up with one.
 */
export async function resolveEntity(db: D1Database, tenantId: string, schema: string, ids: Record<string, string>, integrationId?: string): Promise<Resolution> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await lookupIdentifiers(db, tenantId, schema, ids);
    const matches = [...new Set(found.map((r) => r.entity_id))];
    if (matches.length > 1) return { ambiguous: matches };
    const entityId = matches[0] ?? newId();
    const missing = Object.entries(ids).filter(([a, v]) => !found.some((r) => r.attribute === a && r.value === v));
    if (missing.length === 0) return { entityId, created: false };
    const [, after] = await db.batch<IdentifierRow>([
      claimStatement(db, tenantId, schema, entityId, ids, missing, integrationId ?? null),
      lookupStatement(db, tenantId, schema, ids),
    ]);
    const owners = [...new Set(after!.results.map((r) => r.entity_id))];
    if (owners.length === 1 && owners[0] === entityId) return { entityId, created: matches.length === 0 };
    if (owners.length > 1) return { ambiguous: owners };
    // Another writer claimed the ids first for its entity: go again and join it.
  }
  throw new Error(`could not resolve ${schema} ${JSON.stringify(ids)}`);
}

export function entityStub(env: Pick<Env, "ENTITY">, entityId: string) {
  return env.ENTITY.get(env.ENTITY.idFromName(entityId));
}

export function applyEntityUpdate(env: Pick<Env, "ENTITY">, input: EntityUpdateInput): Promise<EntityUpdateResult> {
  return entityStub(env, input.entityId).apply(input);
}

/**
 * The whole core event (JSON text parsed) that an entity sent by reference because it was too large
 * for a queue message, or null when its EntityObject no longer keeps it.
 */
export async function referencedCoreEvent(env: Pick<Env, "ENTITY">, entityId: string, eventId: string): Promise<Record<string, unknown> | null> {
  const text = await entityStub(env, entityId).coreEvent(eventId);
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

export async function getEntity(db: D1Database, tenantId: string, schema: string, id: string): Promise<Entity> {
  const row = await db.prepare("SELECT * FROM entities WHERE id = ? AND tenant_id = ? AND schema = ?").bind(id, tenantId, schema).first<EntityRow>();
  if (!row) throw new AppError("NOT_FOUND", `No ${schema} '${id}'`);
  return fromEntityRow(row);
}

/** Entities of a schema, optionally filtered by unique ids (`{ customer_number: "C1" }`, all must match). */
export async function findEntities(db: D1Database, tenantId: string, schema: string, filter: Record<string, string>, page: PageQuery) {
  const after = decodeCursor(page.cursor);
  const pairs = Object.entries(filter);
  const joins = pairs
    .map((_, i) => `JOIN entity_identifiers i${i} ON i${i}.entity_id = e.id AND i${i}.tenant_id = e.tenant_id AND i${i}.schema = e.schema AND i${i}.attribute = ? AND i${i}.value = ?`)
    .join(" ");
  const { results } = await db
    .prepare(`SELECT e.* FROM entities e ${joins} WHERE e.tenant_id = ? AND e.schema = ? AND e.id > ? ORDER BY e.id LIMIT ?`)
    .bind(...pairs.flat(), tenantId, schema, after, page.limit + 1)
    .all<EntityRow>();
  const { items, next_cursor } = toPage(results, page.limit, fromEntityRow);
  return { entities: items, next_cursor };
}

export async function entityHistory(env: Pick<Env, "DB" | "ENTITY">, tenantId: string, schema: string, id: string, page: PageQuery) {
  await getEntity(env.DB, tenantId, schema, id);
  const before = page.cursor ? decodeVersionCursor(page.cursor) : undefined;
  // The RPC stub's type cannot express `unknown` attribute values; the entries are plain JSON.
  const rows = (await entityStub(env, id).history(page.limit + 1, before)) as EntityHistoryEntry[];
  const more = rows.length > page.limit;
  const history = rows.slice(0, page.limit);
  return { history, next_cursor: more ? encodeVersionCursor(history[history.length - 1]!.version) : null };
}

export async function restoreEntity(env: Pick<Env, "DB" | "ENTITY">, tenantId: string, schema: string, id: string): Promise<Entity> {
  await getEntity(env.DB, tenantId, schema, id);
  await entityStub(env, id).restore();
  return getEntity(env.DB, tenantId, schema, id);
}

// ---- meter readings ---------------------------------------------------------------------------

export interface MeterReadingWrite {
  tenantId: string;
  meterId: string;
  counterId: string | null;
  eventId: string;
  mode: "upsert" | "delete";
  attributes: { external_id: string; timestamp: string; source: string; value?: number; reason?: string; [k: string]: unknown };
}

/** Upserts (or deletes) a reading, matched by its meter and external_id. */
export function meterReadingStatement(db: D1Database, r: MeterReadingWrite): D1PreparedStatement {
  if (r.mode === "delete") {
    return db.prepare("DELETE FROM meter_readings WHERE tenant_id = ? AND meter_id = ? AND external_id = ?").bind(r.tenantId, r.meterId, r.attributes.external_id);
  }
  const { external_id, timestamp, source, value, reason, ...rest } = r.attributes;
  const at = nowIso();
  return db
    .prepare(
      `INSERT INTO meter_readings (id, tenant_id, meter_id, counter_id, external_id, timestamp, value, source, reason, attributes, event_id, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, meter_id, external_id) DO UPDATE SET counter_id = excluded.counter_id, timestamp = excluded.timestamp,
         value = excluded.value, source = excluded.source, reason = excluded.reason, attributes = excluded.attributes,
         event_id = excluded.event_id, updated_at = excluded.updated_at`,
    )
    .bind(newId(), r.tenantId, r.meterId, r.counterId, external_id, timestamp, value ?? 0, source, reason ?? null, JSON.stringify(rest), r.eventId, at, at);
}

export async function listMeterReadings(db: D1Database, tenantId: string, meterId: string, page: PageQuery) {
  await getEntity(db, tenantId, "meter", meterId);
  const { results } = await db
    .prepare("SELECT * FROM meter_readings WHERE tenant_id = ? AND meter_id = ? AND id > ? ORDER BY id LIMIT ?")
    .bind(tenantId, meterId, decodeCursor(page.cursor), page.limit + 1)
    .all<{ id: string; meter_id: string; counter_id: string | null; external_id: string; timestamp: string; value: number; source: string; reason: string | null; attributes: string; event_id: string; updated_at: string }>();
  const { items, next_cursor } = toPage(results, page.limit, (r): MeterReading => ({ ...r, attributes: JSON.parse(r.attributes) }));
  return { meter_readings: items, next_cursor };
}

