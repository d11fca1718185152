// Integrations, use cases, their history and environment values: plain functions over D1.
import { decryptValue, encryptValue } from "../platform/crypto";
import { atomically } from "../platform/db";
import { AppError, validationError } from "../platform/errors";
import { newUuid, nowIso } from "../platform/ids";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { hasPrototypeSegment } from "../platform/paths";
import { auditStatement } from "../platform/audit";
import { tenantRateLimitOf } from "../tenants/service";
import { cachedConfig } from "../platform/config-cache";
import { nextRun } from "./pull-configuration";
import {
  EpilotIntegrationFields,
  IntegrationSettings,
  MASK,
  UseCaseInput,
  type AppMapping,
  type CreateIntegration,
  type CreateIntegrationV1,
  type DeleteAppMapping,
  type IntegrationPatch,
  type IntegrationSummary,
  type SetAppMapping,
  type UseCasePatch,
  type DeclaredUseCase,
  type EnvironmentConfigEntry,
  type EnvironmentValues,
  type Integration,
  type PutIntegration,
  type UseCase,
  type UseCaseHistoryEntry,
} from "./schema";

interface IntegrationRow {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  environment_config: string;
  settings: string;
  epilot_fields: string;
  version: number;
  created_at: string;
  updated_at: string;
}

interface UseCaseRow {
  id: string;
  integration_id: string;
  tenant_id: string;
  name: string;
  slug: string;
  type: UseCase["type"];
  enabled: number;
  configuration: string;
  change_description: string | null;
  version: number;
  extra: string;
  created_at: string;
  updated_at: string;
}

interface HistoryRow {
  id: string;
  use_case_id: string;
  integration_id: string;
  action: UseCaseHistoryEntry["action"];
  snapshot: string;
  change_description: string | null;
  changed_by: string;
  changed_at: string;
}

// ---- ids and cursors ----------------------------------------------------------------------------

/** A UUID, the form of epilot's ids (and of erp-edge's since 0014; older rows keep their ULIDs). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;


/** Fields a use case stores besides its configuration (managed_call's type annotations), in use_cases.extra. */
const USE_CASE_EXTRA_KEYS = ["type_annotations", "types_locked"] as const;

function useCaseExtra(uc: object): Record<string, unknown> {
  const source = uc as Record<string, unknown>;
  return Object.fromEntries(USE_CASE_EXTRA_KEYS.filter((k) => source[k] !== undefined).map((k) => [k, source[k]]));
}

function fromUseCaseRow(row: UseCaseRow): UseCase {
  return {
    id: row.id,
    integrationId: row.integration_id,
    name: row.name,
    slug: row.slug,
    type: row.type,
    enabled: row.enabled === 1,
    configuration: JSON.parse(row.configuration),
    ...(JSON.parse(row.extra ?? "{}") as Record<string, unknown>),
    ...(row.change_description !== null && { change_description: row.change_description }),
    created_at: row.created_at,
    updated_at: row.updated_at,
  } as UseCase;
}

/**
 * Stored settings, read leniently: a redaction path that today's schema refuses (a prototype key,
 * saved before the check existed) is dropped rather than failing every read of the integration.
 */
function storedSettings(text: string | undefined): IntegrationSettings {
  const raw = JSON.parse(text ?? "{}") as { redact_paths?: unknown };
  const paths = Array.isArray(raw.redact_paths) ? raw.redact_paths.filter((p) => typeof p === "string" && !hasPrototypeSegment(p)) : raw.redact_paths;
  const parsed = IntegrationSettings.safeParse({ ...raw, redact_paths: paths });
  return parsed.success ? parsed.data : IntegrationSettings.parse({});
}

/** epilot's stored fields, read leniently like the settings: what no longer validates is left out. */
function storedEpilotFields(text: string | undefined): EpilotIntegrationFields {
  const parsed = EpilotIntegrationFields.safeParse(JSON.parse(text ?? "{}"));
  return parsed.success ? parsed.data : {};
}

/** The epilot fields of an input, as stored in integrations.epilot_fields. */
const epilotFieldsOf = (input: EpilotIntegrationFields) => JSON.stringify(EpilotIntegrationFields.parse(input));

function fromIntegrationSummaryRow(row: IntegrationRow): IntegrationSummary {
  return {
    id: row.id,
    orgId: row.tenant_id,
    name: row.name,
    ...(row.description !== null && { description: row.description }),
    environment_config: JSON.parse(row.environment_config) as EnvironmentConfigEntry[],
    settings: storedSettings(row.settings),
    ...storedEpilotFields(row.epilot_fields),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function fromIntegrationRow(row: IntegrationRow, useCases: UseCase[]): Integration {
  const { created_at, updated_at, ...summary } = fromIntegrationSummaryRow(row);
  return { ...summary, use_cases: useCases, created_at, updated_at };
}

/** A history row in epilot's shape (the use case as it was then, flat) beside erp-edge's fields. */
function fromHistoryRow(row: HistoryRow): UseCaseHistoryEntry {
  const snapshot = { ...(JSON.parse(row.snapshot) as UseCase), integrationId: row.integration_id };
  const { id: _useCaseId, integrationId: _integrationId, change_description: _description, ...state } = snapshot;
  return {
    ...state,
    id: row.id,
    useCaseId: row.use_case_id,
    integrationId: row.integration_id,
    ...(row.change_description !== null && { change_description: row.change_description }),
    history_created_at: row.changed_at,
    use_case_id: row.use_case_id,
    action: row.action,
    changed_by: row.changed_by,
    changed_at: row.changed_at,
    snapshot,
  };
}

// ---- statements -------------------------------------------------------------------------------

function insertUseCaseStmt(db: D1Database, tenantId: string, integrationId: string, uc: UseCase) {
  return db
    .prepare(
      `INSERT INTO use_cases (id, integration_id, tenant_id, name, slug, type, enabled, configuration, change_description, extra, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(uc.id, integrationId, tenantId, uc.name, uc.slug, uc.type, uc.enabled ? 1 : 0, JSON.stringify(uc.configuration), uc.change_description ?? null, JSON.stringify(useCaseExtra(uc)), uc.created_at, uc.updated_at);
}

/** Updates a use case and moves its version on; with `expected`, only from that version (see claimVersion). */
function updateUseCaseStmt(db: D1Database, uc: UseCase, expected?: number) {
  return db
    .prepare(
      `UPDATE use_cases SET name = ?, type = ?, enabled = ?, configuration = ?, change_description = ?, extra = ?, updated_at = ?,
       version = ${expected === undefined ? "version + 1" : "CASE version WHEN ? THEN version + 1 END"} WHERE id = ?`,
    )
    .bind(uc.name, uc.type, uc.enabled ? 1 : 0, JSON.stringify(uc.configuration), uc.change_description ?? null, JSON.stringify(useCaseExtra(uc)), uc.updated_at, ...(expected === undefined ? [] : [expected]), uc.id);
}

function historyStmt(db: D1Database, integrationId: string, action: HistoryRow["action"], uc: UseCase, changedBy: string, at: string) {
  return db
    .prepare(
      `INSERT INTO use_case_history (id, use_case_id, integration_id, action, snapshot, change_description, changed_by, changed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(newUuid(), uc.id, integrationId, action, JSON.stringify(uc), uc.change_description ?? null, changedBy, at);
}

/** A use case changed: so did the integration that embeds it (its updated_at and its version). */
const touchIntegrationStmt = (db: D1Database, integrationId: string, at: string) =>
  db.prepare("UPDATE integrations SET updated_at = ?, version = version + 1 WHERE id = ?").bind(at, integrationId);

// ---- pull schedules ---------------------------------------------------------------------------
// A pull use case's clock (pull_schedules, claimed and run by inbound/pull.ts) is written with the use
// case, in the same batch, by every path that saves use cases (the API and blueprint installs alike).

type ScheduledUseCase = Pick<UseCase, "id" | "type" | "configuration">;

const scheduleOf = (uc: ScheduledUseCase | undefined): unknown => (uc?.type === "pull" ? (uc.configuration as { schedule?: unknown }).schedule : undefined);

/**
 * The pull_schedules writes for one integration's use cases going from `before` to `after` (matched
 * by id): a pull that is new, or whose schedule changed, is due at its schedule's next time after
 * `now` (a run in progress keeps its lease); one deleted, or no longer a pull, loses its row. Rows of
 * a deleted integration go with it (ON DELETE CASCADE). The cron tick still registers a pull it
 * finds without a row (one saved before schedules were written here).
 */
/**
 * What a use-case save writes besides the use cases, in the same transaction: their pull schedules,
 * and the entity schemas their mappings write to (tenant_entity_schemas, kept for the tenant's life,
 * so deleting the tenant finds every EntityStore it ever used).
 */
function derivedStatements(db: D1Database, tenantId: string, integrationId: string, before: readonly ScheduledUseCase[], after: readonly ScheduledUseCase[]): D1PreparedStatement[] {
  const schemas = [...new Set(after.flatMap((uc) => (uc.type === "inbound" ? entitySchemasOf(uc.configuration) : [])))];
  return [
    ...pullScheduleStatements(db, tenantId, integrationId, before, after),
    ...(schemas.length === 0
      ? []
      : [db.prepare("INSERT OR IGNORE INTO tenant_entity_schemas (tenant_id, schema) SELECT ?, value FROM json_each(?)").bind(tenantId, JSON.stringify(schemas))]),
  ];
}

/** The entity schemas an inbound mapping writes or relates to (read leniently: it may be a stored configuration). */
function entitySchemasOf(configuration: unknown): string[] {
  const config = configuration as { entities?: { entity_schema?: unknown; fields?: { relations?: { items?: { entity_schema?: unknown }[] } }[] }[] } | null;
  const out: string[] = [];
  for (const entity of config?.entities ?? []) {
    if (typeof entity.entity_schema === "string") out.push(entity.entity_schema);
    for (const field of entity.fields ?? []) for (const item of field.relations?.items ?? []) if (typeof item.entity_schema === "string") out.push(item.entity_schema);
  }
  return out;
}

function pullScheduleStatements(db: D1Database, tenantId: string, integrationId: string, before: readonly ScheduledUseCase[], after: readonly ScheduledUseCase[], now = new Date()): D1PreparedStatement[] {
  const was = new Map(before.map((uc) => [uc.id, uc]));
  const is = new Map(after.map((uc) => [uc.id, uc]));
  const remove = (id: string) => db.prepare("DELETE FROM pull_schedules WHERE use_case_id = ?").bind(id);
  const statements: D1PreparedStatement[] = [];
  for (const uc of after) {
    const schedule = scheduleOf(uc);
    if (schedule === undefined || schedule === scheduleOf(was.get(uc.id))) continue;
    let next: Date | null = null;
    try {
      next = typeof schedule === "string" ? nextRun(schedule, now) : null;
    } catch {
      // A schedule the configuration schema let through always parses; never due otherwise.
    }
    statements.push(
      next
        ? db
            .prepare(
              `INSERT INTO pull_schedules (use_case_id, tenant_id, integration_id, next_run_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (use_case_id) DO UPDATE SET tenant_id = excluded.tenant_id, integration_id = excluded.integration_id, next_run_at = excluded.next_run_at`,
            )
            .bind(uc.id, tenantId, integrationId, next.toISOString())
        : remove(uc.id),
    );
  }
  for (const uc of before) if (scheduleOf(uc) !== undefined && scheduleOf(is.get(uc.id)) === undefined) statements.push(remove(uc.id));
  return statements;
}

// ---- optimistic concurrency -------------------------------------------------------------------

/** A representation's strong validator: `"<id>.<version>"`, the version moving on with every change. */
const etagOf = (id: string, version: number) => `"${id}.${version}"`;

/**
 * Whether an If-Match header value holds for the current ETag: `*` holds for any existing resource,
 * otherwise one of the listed tags must equal it (strong comparison: a weak `W/` tag never does).
 */
function ifMatchHolds(ifMatch: string, etag: string): boolean {
  const tags = ifMatch.split(",").map((t) => t.trim());
  return tags.includes("*") || tags.includes(etag);
}

function assertIfMatch(ifMatch: string | undefined, etag: string, what: string) {
  if (ifMatch !== undefined && !ifMatchHolds(ifMatch, etag)) {
    throw new AppError("PRECONDITION_FAILED", `${what} has changed since If-Match was read; GET it again and retry`, { etag });
  }
}

/**
 * The statement that moves a row from version `expected` to the next. When the stored version is
 * anything else it writes NULL into the NOT NULL column, so the statement fails and the D1 batch it
 * leads rolls back as a whole: two writers that read the same version cannot both commit.
 */
function claimVersion(db: D1Database, table: "integrations" | "use_cases", id: string, expected: number) {
  return [
    db.prepare(`UPDATE ${table} SET version = CASE version WHEN ? THEN version + 1 END WHERE id = ?`).bind(expected, id),
    versionGuard(db, table, id, expected),
  ];
}

/**
 * Fails the batch unless the row now holds `expected + 1`: the claim's UPDATE matches nothing (and
 * fails nothing) when a concurrent delete removed the row, so its existence is checked explicitly.
 * `abs()` of the smallest integer is SQLite's way to raise an error from a plain statement.
 */
function versionGuard(db: D1Database, table: "integrations" | "use_cases", id: string, expected: number) {
  return db.prepare(`SELECT CASE WHEN EXISTS (SELECT 1 FROM ${table} WHERE id = ?1 AND version = ?2 + 1) THEN 1 ELSE abs(-9223372036854775808) END`).bind(id, expected);
}

/** The failure of a claimVersion (or a guarded updateUseCaseStmt): another write got there first. */
const isVersionConflict = (err: unknown) =>
  err instanceof Error && /NOT NULL constraint failed: (integrations|use_cases)\.version|integer overflow/i.test(err.message);

/** Rounds a write without If-Match gets before a stream of concurrent writers makes it give up with 409. */
const WRITE_ROUNDS = 3;

/**
 * Runs a read-decide-write `round` until its version claim holds. A stale If-Match fails with 412
 * at once; without If-Match (or with `*`, which asks only that the resource exist) the round is run
 * again on fresh data (the last writer wins, but every write is decided on the state it replaces),
 * and after WRITE_ROUNDS fails with 409.
 */
async function withVersionClaim<T>(ifMatch: string | undefined, what: string, round: () => Promise<T>): Promise<T> {
  const namesVersion = ifMatch !== undefined && ifMatch.trim() !== "*";
  for (let attempt = 1; ; attempt++) {
    try {
      return await round();
    } catch (err) {
      if (!isVersionConflict(err)) throw err;
      if (namesVersion) throw new AppError("PRECONDITION_FAILED", `${what} has changed since If-Match was read; GET it again and retry`);
      if (attempt >= WRITE_ROUNDS) throw new AppError("CONFLICT", `${what} is being changed concurrently; retry`);
    }
  }
}

// ---- reads ------------------------------------------------------------------------------------

async function integrationRow(db: D1Database, tenantId: string, id: string): Promise<IntegrationRow> {
  const row = await db.prepare("SELECT * FROM integrations WHERE id = ? AND tenant_id = ?").bind(id, tenantId).first<IntegrationRow>();
  if (!row) throw new AppError("NOT_FOUND", `Integration '${id}' not found`);
  return row;
}

async function useCasesOf(db: D1Database, integrationIds: string[]): Promise<Map<string, UseCase[]>> {
  const byIntegration = new Map<string, UseCase[]>(integrationIds.map((id) => [id, []]));
  if (integrationIds.length === 0) return byIntegration;
  const { results } = await db
    .prepare("SELECT * FROM use_cases WHERE integration_id IN (SELECT value FROM json_each(?)) ORDER BY id")
    .bind(JSON.stringify(integrationIds))
    .all<UseCaseRow>();
  for (const row of results) byIntegration.get(row.integration_id)!.push(fromUseCaseRow(row));
  return byIntegration;
}

function assertUniqueSlugs(useCases: { slug: string }[]) {
  const seen = new Set<string>();
  useCases.forEach((uc, i) => {
    if (seen.has(uc.slug)) {
      throw new AppError("CONFLICT", `Use case slug '${uc.slug}' is used twice in this integration`, { path: `use_cases.${i}.slug`, slug: uc.slug });
    }
    seen.add(uc.slug);
  });
}

/**
 * A slug for a use case created without one (epilot's slug is optional): its name in lowercase
 * letters, digits, '-' and '_', made unique among `taken` with -2, -3, ... (and added to it).
 * @example slugFor("Sync Contacts (SAP)", new Set(["sync-contacts-sap"])) // "sync-contacts-sap-2"
 */
export function slugFor(name: string, taken: Set<string>): string {
  const base =
    name
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, "-")
      .replace(/^[-_]+/, "")
      .slice(0, 64)
      .replace(/-+$/, "") || "use-case";
  let slug = base;
  for (let n = 2; taken.has(slug); n++) slug = `${base}-${n}`;
  taken.add(slug);
  return slug;
}

/** Slugs for the inputs that have none, unique among the given slugs and `taken`. */
function withSlugs<T extends { name: string; slug?: string }>(inputs: T[], taken: Iterable<string> = []): (T & { slug: string })[] {
  const used = new Set([...taken, ...inputs.flatMap((uc) => (uc.slug === undefined ? [] : [uc.slug]))]);
  return inputs.map((uc) => (uc.slug === undefined ? { ...uc, slug: slugFor(uc.name, used) } : (uc as T & { slug: string })));
}

function newUseCase(input: UseCaseInput | DeclaredUseCase, integrationId: string, at: string, id = newUuid()): UseCase {
  const { id: _ignored, ...fields } = input as DeclaredUseCase;
  return { ...fields, id, integrationId, created_at: at, updated_at: at } as UseCase;
}

/** The use case after applying `input`; slug is immutable (an input without one keeps it). */
function updatedUseCase(existing: UseCase, input: UseCaseInput | DeclaredUseCase, at: string, path: string): UseCase {
  if (input.slug !== undefined && input.slug !== existing.slug) {
    throw new AppError("IMMUTABLE_FIELD", `The slug of use case '${existing.id}' cannot change (is '${existing.slug}')`, {
      path,
      slug: existing.slug,
    });
  }
  const { id: _ignored, ...fields } = input as DeclaredUseCase;
  return { ...fields, slug: existing.slug, id: existing.id, integrationId: existing.integrationId, created_at: existing.created_at, updated_at: at } as UseCase;
}

/** What makes two states of a use case different; change_description describes a change and is none by itself. */
const comparable = (uc: UseCase) => JSON.stringify([uc.name, uc.type, uc.enabled, uc.configuration, useCaseExtra(uc)]);

const invalid = (path: string, message: string, code: string) => new AppError("VALIDATION_FAILED", "Invalid request body", [{ path, message, code }]);

/**
 * Decides what each declared use case is (epilot's EmbeddedUseCaseRequest): with the id of one of
 * `existing` it updates it, with a new id it creates one with that id (a UUID, not used by any other
 * use case), without one it creates one with a new id. Slugs are derived where missing. Returns the
 * use cases as they will be stored, in the order declared.
 */
async function declaredUseCases(db: D1Database, integrationId: string, existing: UseCase[], declared: DeclaredUseCase[], at: string): Promise<UseCase[]> {
  const byId = new Map(existing.map((uc) => [uc.id, uc]));
  const seen = new Set<string>();
  const ids = declared.map((uc, i) => {
    if (uc.id === undefined) return undefined;
    const id = UUID.test(uc.id) ? uc.id.toLowerCase() : uc.id;
    if (seen.has(id)) throw invalid(`use_cases.${i}.id`, `use case '${uc.id}' is declared twice`, "duplicate_id");
    seen.add(id);
    if (!byId.has(id) && !UUID.test(id)) throw invalid(`use_cases.${i}.id`, `no use case '${uc.id}' in this integration; a new use case's id must be a UUID (or omit id)`, "unknown_id");
    return id;
  });
  const fresh = ids.filter((id): id is string => id !== undefined && !byId.has(id));
  if (fresh.length > 0) {
    // Taken is also an id another integration ever used: its deleted use case may have left an
    // outbound endpoint (row, signing secret, deliveries, named "<use case id>/<mapping id>") that a
    // new use case with the same id would inherit.
    const taken = await db
      .prepare(
        `SELECT value AS id FROM json_each(?1) WHERE value IN (SELECT id FROM use_cases)
           OR value IN (SELECT use_case_id FROM use_case_history WHERE integration_id != ?2)
           OR EXISTS (SELECT 1 FROM outbound_endpoints WHERE id > value || '/' AND id < value || '0' AND integration_id != ?2)`,
      )
      .bind(JSON.stringify(fresh), integrationId)
      .first<{ id: string }>();
    if (taken) throw new AppError("CONFLICT", `Use case id '${taken.id}' is already used by another use case`, { path: `use_cases.${ids.indexOf(taken.id)}.id`, id: taken.id });
  }
  // Updated use cases keep their slugs; the others may take any slug still free.
  const kept = declared.map((uc, i) => (ids[i] !== undefined && byId.has(ids[i]!) ? (uc.slug ?? byId.get(ids[i]!)!.slug) : undefined));
  const slugged = withSlugs(declared.map((uc, i) => ({ ...uc, slug: uc.slug ?? kept[i] })));
  return slugged.map((uc, i) => {
    const id = ids[i];
    const before = id === undefined ? undefined : byId.get(id);
    return before ? updatedUseCase(before, uc, at, `use_cases.${i}.slug`) : newUseCase(uc, integrationId, at, id);
  });
}

// ---- integrations -----------------------------------------------------------------------------

/** The INSERT of a new integration row. */
function insertIntegrationStmt(db: D1Database, tenantId: string, id: string, input: CreateIntegrationV1, at: string) {
  return db
    .prepare("INSERT INTO integrations (id, tenant_id, name, description, environment_config, settings, epilot_fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    .bind(id, tenantId, input.name, input.description ?? null, JSON.stringify(input.environment_config), JSON.stringify(input.settings), epilotFieldsOf(input), at, at);
}

/**
 * Creates an integration with its use cases (epilot's createIntegrationV2; createIntegration for v1
 * passes none). A new integration gets a UUIDv7, unless `id` names one (a PUT of a new id).
 */
export async function createIntegration(
  db: D1Database,
  changedBy: string,
  tenantId: string,
  input: CreateIntegration,
  id = newUuid(),
): Promise<{ integration: Integration; etag: string }> {
  const at = nowIso();
  const useCases = await declaredUseCases(db, id, [], input.use_cases, at);
  assertUniqueSlugs(useCases);
  await atomically(db, [
    insertIntegrationStmt(db, tenantId, id, input, at),
    ...useCases.flatMap((uc) => [insertUseCaseStmt(db, tenantId, id, uc), historyStmt(db, id, "created", uc, changedBy, at)]),
    ...derivedStatements(db, tenantId, id, [], useCases),
    auditStatement(db, { tenantId, actor: changedBy, action: "integration.created", target: id, details: { name: input.name, use_cases: useCases.map((u) => u.slug) } }),
  ]);
  const { integration, etag } = await getVersionedIntegration(db, tenantId, id);
  return { integration, etag };
}

async function integrationPage(db: D1Database, tenantId: string, page: PageQuery) {
  const { results } = await db
    .prepare("SELECT * FROM integrations WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?")
    .bind(tenantId, decodeCursor(page.cursor), page.limit + 1)
    .all<IntegrationRow>();
  return results;
}

export async function listIntegrations(db: D1Database, tenantId: string, page: PageQuery) {
  const results = await integrationPage(db, tenantId, page);
  const rows = results.slice(0, page.limit);
  const useCases = await useCasesOf(db, rows.map((r) => r.id));
  const { items, next_cursor } = toPage(results, page.limit, (row) => fromIntegrationRow(row, useCases.get(row.id) ?? []));
  return { integrations: items, next_cursor };
}

/** A page of integrations without their use cases (epilot's v1 listIntegrations). */
export async function listIntegrationSummaries(db: D1Database, tenantId: string, page: PageQuery) {
  const { items, next_cursor } = toPage(await integrationPage(db, tenantId, page), page.limit, fromIntegrationSummaryRow);
  return { integrations: items, next_cursor };
}

export async function getIntegration(db: D1Database, tenantId: string, id: string): Promise<Integration> {
  return (await getVersionedIntegration(db, tenantId, id)).integration;
}

/** An integration without its use cases (epilot's v1 Integration). */
export function summaryOf(integration: Integration): IntegrationSummary {
  const { use_cases: _useCases, ...summary } = integration;
  return summary;
}

/**
 * The integration with its ETag. Row and use cases are read in one batch (one snapshot), so the
 * ETag names exactly the representation returned.
 */
export async function getVersionedIntegration(db: D1Database, tenantId: string, id: string): Promise<{ integration: Integration; version: number; etag: string }> {
  const [rows, useCases] = await db.batch([
    db.prepare("SELECT * FROM integrations WHERE id = ? AND tenant_id = ?").bind(id, tenantId),
    db.prepare("SELECT * FROM use_cases WHERE integration_id = ? AND tenant_id = ? ORDER BY id").bind(id, tenantId),
  ]);
  const row = rows!.results[0] as IntegrationRow | undefined;
  if (!row) throw new AppError("NOT_FOUND", `Integration '${id}' not found`);
  const integration = fromIntegrationRow(row, (useCases!.results as UseCaseRow[]).map(fromUseCaseRow));
  return { integration, version: row.version, etag: etagOf(row.id, row.version) };
}

/**
 * Declarative replace (epilot's updateIntegrationV2): use cases with a known `id` are updated, those
 * with a new id or none are created, and existing ones missing from the body are deleted, all in one
 * transaction. The transaction claims the version it was decided on, so a concurrent change makes it
 * 412 (with If-Match) or decide again. The integration id is client-provided in epilot's contract: a
 * PUT (without If-Match) of a UUID no integration has yet creates the integration with it.
 */
export async function replaceIntegration(
  db: D1Database,
  changedBy: string,
  tenantId: string,
  id: string,
  input: PutIntegration,
  ifMatch?: string,
): Promise<{ integration: Integration; etag: string; created: boolean }> {
  if (ifMatch === undefined && UUID.test(id) && !(await db.prepare("SELECT 1 FROM integrations WHERE id = ?").bind(id.toLowerCase()).first())) {
    // A concurrent PUT creating the same id loses with 409 (atomically turns the UNIQUE failure into CONFLICT).
    return { ...(await createIntegration(db, changedBy, tenantId, input, id.toLowerCase())), created: true };
  }
  await withVersionClaim(ifMatch, `Integration '${id}'`, async () => {
    const { integration: current, version, etag } = await getVersionedIntegration(db, tenantId, id);
    assertIfMatch(ifMatch, etag, `Integration '${id}'`);
    await atomically(db, [...claimVersion(db, "integrations", id, version), ...(await replaceStatements(db, changedBy, tenantId, current, input))]);
  });
  const { integration, etag } = await getVersionedIntegration(db, tenantId, id);
  return { integration, etag, created: false };
}

/**
 * A partial update of the integration's own fields (epilot's v1 updateIntegration): the fields
 * given replace the stored ones (settings key by key), the others and the use cases are kept.
 */
export async function patchIntegration(
  db: D1Database,
  changedBy: string,
  tenantId: string,
  id: string,
  patch: IntegrationPatch,
  ifMatch?: string,
): Promise<{ integration: Integration; etag: string }> {
  await withVersionClaim(ifMatch, `Integration '${id}'`, async () => {
    const { integration: current, version, etag } = await getVersionedIntegration(db, tenantId, id);
    assertIfMatch(ifMatch, etag, `Integration '${id}'`);
    const { id: _id, orgId: _orgId, created_at: _c, updated_at: _u, use_cases, ...fields } = current;
    const given = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    const target = {
      ...fields,
      ...given,
      settings: IntegrationSettings.parse({ ...current.settings, ...patch.settings }),
      use_cases: use_cases as DeclaredUseCase[],
    } as PutIntegration;
    await atomically(db, [...claimVersion(db, "integrations", id, version), ...(await replaceStatements(db, changedBy, tenantId, current, target))]);
  });
  const { integration, etag } = await getVersionedIntegration(db, tenantId, id);
  return { integration, etag };
}

/** The writes that turn `current` into `input`; they run after the version claim, in one batch. */
async function replaceStatements(db: D1Database, changedBy: string, tenantId: string, current: Integration, input: PutIntegration): Promise<D1PreparedStatement[]> {
  const id = current.id;
  const existing = new Map(current.use_cases.map((uc) => [uc.id, uc]));
  const at = nowIso();
  const statements: D1PreparedStatement[] = [];

  const declared = await declaredUseCases(db, id, current.use_cases, input.use_cases, at);
  const kept = new Set(declared.filter((uc) => existing.has(uc.id)).map((uc) => uc.id));
  assertUniqueSlugs(declared);

  // Deletes go first so a slug freed by a deleted use case can be taken by a new one in the same call.
  for (const uc of current.use_cases) {
    if (kept.has(uc.id)) continue;
    statements.push(db.prepare("DELETE FROM use_cases WHERE id = ?").bind(uc.id), historyStmt(db, id, "deleted", uc, changedBy, at));
  }
  for (const uc of declared) {
    const before = existing.get(uc.id);
    if (!before) statements.push(insertUseCaseStmt(db, tenantId, id, uc), historyStmt(db, id, "created", uc, changedBy, at));
    else if (comparable(before) !== comparable(uc)) statements.push(updateUseCaseStmt(db, uc), historyStmt(db, id, "updated", uc, changedBy, at));
  }
  statements.push(...derivedStatements(db, tenantId, id, current.use_cases, declared));

  // A secret's value is never revealed by re-declaring its key as a plain String: it is dropped
  // with the change, to be set again. (Keys no longer declared lose their values below.)
  const secretBefore = new Set(current.environment_config.filter((e) => e.type === "SecretString").map((e) => e.key));
  const keptKeys = input.environment_config.filter((e) => !(secretBefore.has(e.key) && e.type !== "SecretString")).map((e) => e.key);
  statements.push(
    db
      .prepare("UPDATE integrations SET name = ?, description = ?, environment_config = ?, settings = ?, epilot_fields = ?, updated_at = ? WHERE id = ?")
      .bind(input.name, input.description ?? null, JSON.stringify(input.environment_config), JSON.stringify(input.settings), epilotFieldsOf(input), at, id),
    auditStatement(db, { tenantId, actor: changedBy, action: "integration.replaced", target: id, details: { name: input.name, use_cases: declared.map((u) => u.slug) } }),
    // Values of keys no longer declared (or no longer secret) are removed with the declaration.
    db
      .prepare("DELETE FROM environment_values WHERE integration_id = ? AND key NOT IN (SELECT value FROM json_each(?))")
      .bind(id, JSON.stringify(keptKeys)),
  );
  return statements;
}

/** Deletes the integration; with If-Match, only while it is still the version named. */
export async function deleteIntegration(db: D1Database, changedBy: string, tenantId: string, id: string, ifMatch?: string): Promise<void> {
  await withVersionClaim(ifMatch, `Integration '${id}'`, async () => {
    const { version, etag } = await getVersionedIntegration(db, tenantId, id);
    assertIfMatch(ifMatch, etag, `Integration '${id}'`);
    await atomically(db, [
      ...claimVersion(db, "integrations", id, version),
      auditStatement(db, { tenantId, actor: changedBy, action: "integration.deleted", target: id }),
      db.prepare("DELETE FROM integrations WHERE id = ? AND tenant_id = ?").bind(id, tenantId),
    ]);
  });
}

// ---- use cases --------------------------------------------------------------------------------

export async function listUseCases(db: D1Database, tenantId: string, integrationId: string, page: PageQuery) {
  await integrationRow(db, tenantId, integrationId);
  const { results } = await db
    .prepare("SELECT * FROM use_cases WHERE integration_id = ? AND id > ? ORDER BY id LIMIT ?")
    .bind(integrationId, decodeCursor(page.cursor), page.limit + 1)
    .all<UseCaseRow>();
  const { items, next_cursor } = toPage(results, page.limit, fromUseCaseRow);
  return { use_cases: items, next_cursor };
}

export async function getUseCase(db: D1Database, tenantId: string, integrationId: string, useCaseId: string): Promise<UseCase> {
  return (await getVersionedUseCase(db, tenantId, integrationId, useCaseId)).useCase;
}

/** The use case with its ETag. */
export async function getVersionedUseCase(db: D1Database, tenantId: string, integrationId: string, useCaseId: string): Promise<{ useCase: UseCase; version: number; etag: string }> {
  const row = await db
    .prepare("SELECT * FROM use_cases WHERE id = ? AND integration_id = ? AND tenant_id = ?")
    .bind(useCaseId, integrationId, tenantId)
    .first<UseCaseRow>();
  if (!row) throw new AppError("NOT_FOUND", `Use case '${useCaseId}' not found in integration '${integrationId}'`);
  return { useCase: fromUseCaseRow(row), version: row.version, etag: etagOf(row.id, row.version) };
}

export async function createUseCase(
  db: D1Database,
  changedBy: string,
  tenantId: string,
  integrationId: string,
  input: UseCaseInput,
): Promise<{ useCase: UseCase; etag: string }> {
  await integrationRow(db, tenantId, integrationId);
  const { results } = await db.prepare("SELECT slug FROM use_cases WHERE integration_id = ?").bind(integrationId).all<{ slug: string }>();
  const slugs = new Set(results.map((r) => r.slug));
  if (input.slug !== undefined && slugs.has(input.slug)) throw new AppError("CONFLICT", `Use case slug '${input.slug}' already exists in this integration`, { path: "slug", slug: input.slug });
  const at = nowIso();
  const [slugged] = withSlugs([input], slugs);
  const uc = newUseCase(slugged!, integrationId, at);
  // The same slug taken by a concurrent create fails the batch: atomically answers it with 409.
  await atomically(db, [
    insertUseCaseStmt(db, tenantId, integrationId, uc),
    historyStmt(db, integrationId, "created", uc, changedBy, at),
    ...derivedStatements(db, tenantId, integrationId, [], [uc]),
    touchIntegrationStmt(db, integrationId, at),
    auditStatement(db, { tenantId, actor: changedBy, action: "use_case.created", target: uc.id, details: { integration_id: integrationId, slug: uc.slug } }),
  ]);
  return { useCase: uc, etag: etagOf(uc.id, 1) };
}

/**
 * The use case a partial update asks for: the fields given replace the stored ones (a new
 * configuration replaces the whole configuration), and the result is validated as a whole, so a
 * configuration is checked against the type. change_description describes only this change.
 */
function patchedUseCase(before: UseCase, patch: UseCasePatch): UseCaseInput {
  const { id: _id, integrationId: _integrationId, created_at: _c, updated_at: _u, change_description: _d, ...stored } = before;
  if (patch.type !== undefined && patch.type !== before.type && patch.configuration === undefined) {
    throw invalid("configuration", `changing the type to '${patch.type}' needs a configuration for it`, "required");
  }
  const given = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  const parsed = UseCaseInput.safeParse({ ...stored, ...given });
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}

/**
 * Updates a use case with the fields given (epilot's partial UpdateUseCaseRequest); with If-Match,
 * only while it is still the version named (412 otherwise). `check` sees the use case as it will be
 * stored before anything is written (the caller's secrets and destination checks).
 */
export async function updateUseCase(
  db: D1Database,
  changedBy: string,
  tenantId: string,
  integrationId: string,
  useCaseId: string,
  patch: UseCasePatch,
  ifMatch?: string,
  check?: (useCase: UseCaseInput) => Promise<void> | void,
): Promise<{ useCase: UseCase; etag: string }> {
  return withVersionClaim(ifMatch, `Use case '${useCaseId}'`, async () => {
    const { useCase: before, version, etag } = await getVersionedUseCase(db, tenantId, integrationId, useCaseId);
    assertIfMatch(ifMatch, etag, `Use case '${useCaseId}'`);
    const input = patchedUseCase(before, patch);
    await check?.({ ...input, slug: before.slug });
    const at = nowIso();
    const uc = updatedUseCase(before, input, at, "slug");
    if (comparable(before) === comparable(uc)) return { useCase: before, etag };
    await atomically(db, [
      updateUseCaseStmt(db, uc, version),
      versionGuard(db, "use_cases", uc.id, version),
      historyStmt(db, integrationId, "updated", uc, changedBy, at),
      ...derivedStatements(db, tenantId, integrationId, [before], [uc]),
      touchIntegrationStmt(db, integrationId, at),
      auditStatement(db, { tenantId, actor: changedBy, action: "use_case.updated", target: uc.id, details: { integration_id: integrationId, slug: uc.slug } }),
    ]);
    return { useCase: uc, etag: etagOf(uc.id, version + 1) };
  });
}

/** Deletes a use case (its history stays); with If-Match, only while it is still the version named. */
export async function deleteUseCase(db: D1Database, changedBy: string, tenantId: string, integrationId: string, useCaseId: string, ifMatch?: string) {
  await withVersionClaim(ifMatch, `Use case '${useCaseId}'`, async () => {
    const { useCase: uc, version, etag } = await getVersionedUseCase(db, tenantId, integrationId, useCaseId);
    assertIfMatch(ifMatch, etag, `Use case '${useCaseId}'`);
    const at = nowIso();
    await atomically(db, [
      ...claimVersion(db, "use_cases", useCaseId, version),
      db.prepare("DELETE FROM use_cases WHERE id = ?").bind(useCaseId),
      historyStmt(db, integrationId, "deleted", uc, changedBy, at),
      ...derivedStatements(db, tenantId, integrationId, [uc], []),
      touchIntegrationStmt(db, integrationId, at),
      auditStatement(db, { tenantId, actor: changedBy, action: "use_case.deleted", target: useCaseId, details: { integration_id: integrationId, slug: uc.slug } }),
    ]);
  });
}

/** Every change to a use case, newest first; kept after the use case itself is deleted. */
export async function useCaseHistory(db: D1Database, tenantId: string, integrationId: string, useCaseId: string, page: PageQuery) {
  await integrationRow(db, tenantId, integrationId);
  const after = decodeCursor(page.cursor);
  const { results } = await db
    .prepare(
      `SELECT * FROM use_case_history WHERE use_case_id = ? AND integration_id = ? AND (? = '' OR id < ?)
       ORDER BY id DESC LIMIT ?`,
    )
    .bind(useCaseId, integrationId, after, after, page.limit + 1)
    .all<HistoryRow>();
  if (results.length === 0 && !after) throw new AppError("NOT_FOUND", `Use case '${useCaseId}' not found in integration '${integrationId}'`);
  const { items, next_cursor } = toPage(results, page.limit, fromHistoryRow);
  // epilot's history answer leaves next_cursor out on the last page (a string when present, never null).
  return { history: items, ...(next_cursor !== null && { next_cursor }) };
}

// ---- app mapping ------------------------------------------------------------------------------
// epilot's integration apps: a component (app_id, component_id) of an installed app points at one
// integration of the tenant. Stored in integration_app_mappings; it goes with its integration.

interface AppMappingRow {
  app_id: string;
  component_id: string;
  integration_id: string;
  created_at: string;
  updated_at: string;
}

const fromAppMappingRow = (row: AppMappingRow): AppMapping => ({
  integration_id: row.integration_id,
  app_id: row.app_id,
  component_id: row.component_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
});

/** Most app components one tenant may map (configuration: a hostile tenant must not fill D1). */
const MAX_APP_MAPPINGS_PER_TENANT = 1_000;

/**
 * Points an app component at the integration. An existing mapping of the component (to this or
 * another integration of the tenant) is a 409 unless `overwrite` is set.
 */
export async function setAppMapping(db: D1Database, changedBy: string, tenantId: string, integrationId: string, input: SetAppMapping): Promise<AppMapping> {
  await integrationRow(db, tenantId, integrationId);
  const appId = input.app_id.toLowerCase();
  const componentId = input.component_id.toLowerCase();
  const key = [tenantId, appId, componentId];
  const existing = await db.prepare("SELECT 1 FROM integration_app_mappings WHERE tenant_id = ? AND app_id = ? AND component_id = ?").bind(...key).first();
  if (existing && !input.overwrite) {
    throw new AppError("CONFLICT", "This app component is already mapped to an integration; send overwrite: true to replace the mapping", { app_id: appId, component_id: componentId });
  }
  if (!existing) {
    const { n } = (await db.prepare("SELECT COUNT(*) AS n FROM integration_app_mappings WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!;
    if (n >= MAX_APP_MAPPINGS_PER_TENANT) throw new AppError("CONFLICT", `A tenant may map at most ${MAX_APP_MAPPINGS_PER_TENANT} app components; delete a mapping first`);
  }
  const at = nowIso();
  // Without overwrite, a mapping created since the check fails the INSERT: atomically answers 409.
  await atomically(db, [
    db
      .prepare(
        `INSERT INTO integration_app_mappings (tenant_id, app_id, component_id, integration_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ${input.overwrite ? "ON CONFLICT (tenant_id, app_id, component_id) DO UPDATE SET integration_id = excluded.integration_id, updated_at = excluded.updated_at" : ""}`,
      )
      .bind(...key, integrationId, at, at),
    auditStatement(db, { tenantId, actor: changedBy, action: "app_mapping.set", target: integrationId, details: { app_id: appId, component_id: componentId, overwrite: input.overwrite } }),
  ]);
  const row = await db
    .prepare("SELECT * FROM integration_app_mappings WHERE tenant_id = ? AND app_id = ? AND component_id = ?")
    .bind(tenantId, appId, componentId)
    .first<AppMappingRow>();
  if (!row) throw new AppError("NOT_FOUND", `Integration '${integrationId}' not found`);
  return fromAppMappingRow(row);
}

/** Removes an app component's mapping, which must point at this integration (404 otherwise). */
export async function deleteAppMapping(db: D1Database, changedBy: string, tenantId: string, integrationId: string, input: DeleteAppMapping): Promise<void> {
  await integrationRow(db, tenantId, integrationId);
  const appId = input.app_id.toLowerCase();
  const componentId = input.component_id.toLowerCase();
  const [result] = await atomically(db, [
    db
      .prepare("DELETE FROM integration_app_mappings WHERE tenant_id = ? AND app_id = ? AND component_id = ? AND integration_id = ?")
      .bind(tenantId, appId, componentId, integrationId),
    auditStatement(db, { tenantId, actor: changedBy, action: "app_mapping.deleted", target: integrationId, details: { app_id: appId, component_id: componentId } }),
  ]);
  if ((result?.meta.changes ?? 0) === 0) throw new AppError("NOT_FOUND", "No mapping of this app component to this integration");
}

/** The app components mapped to an integration. */
export async function appMappingsOf(db: D1Database, tenantId: string, integrationId: string): Promise<AppMapping[]> {
  const { results } = await db
    .prepare("SELECT * FROM integration_app_mappings WHERE tenant_id = ? AND integration_id = ? ORDER BY app_id, component_id")
    .bind(tenantId, integrationId)
    .all<AppMappingRow>();
  return results.map(fromAppMappingRow);
}

// ---- environment ------------------------------------------------------------------------------

const valueContext = (integrationId: string, key: string) => `${integrationId}/${key}`;

function upsertEnvironmentValueStmt(db: D1Database, integrationId: string, key: string, ciphertext: string, at: string) {
  return db
    .prepare(
      `INSERT INTO environment_values (integration_id, key, ciphertext, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (integration_id, key) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
    )
    .bind(integrationId, key, ciphertext, at);
}

async function environmentRows(db: D1Database, integrationId: string) {
  const { results } = await db
    .prepare("SELECT key, ciphertext FROM environment_values WHERE integration_id = ? ORDER BY key")
    .bind(integrationId)
    .all<{ key: string; ciphertext: string }>();
  return results;
}

/** The integration's environment values, every SecretString masked. Safe to return to clients. */
export async function getEnvironment(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, integrationId: string) {
  const integration = await integrationRow(env.DB, tenantId, integrationId);
  const config = JSON.parse(integration.environment_config) as EnvironmentConfigEntry[];
  const secret = new Set(config.filter((e) => e.type === "SecretString").map((e) => e.key));
  const out: Record<string, string> = {};
  for (const row of await environmentRows(env.DB, integrationId)) {
    out[row.key] = secret.has(row.key) ? MASK : await decryptValue(env.SECRETS_KEY, row.ciphertext, valueContext(integrationId, row.key));
  }
  return out;
}

/** Sets (or with null, removes) values of declared keys; every value is encrypted at rest. */
export async function putEnvironment(
  env: Pick<Env, "DB" | "SECRETS_KEY">,
  changedBy: string,
  tenantId: string,
  integrationId: string,
  values: EnvironmentValues,
) {
  const integration = await integrationRow(env.DB, tenantId, integrationId);
  const declared = new Set((JSON.parse(integration.environment_config) as EnvironmentConfigEntry[]).map((e) => e.key));
  const unknown = Object.keys(values).filter((key) => !declared.has(key));
  if (unknown.length > 0) {
    throw new AppError(
      "VALIDATION_FAILED",
      "Invalid request body",
      unknown.map((key) => ({ path: key, message: "not declared in the integration's environment_config", code: "unknown_key" })),
    );
  }
  const at = nowIso();
  const statements = await Promise.all(
    Object.entries(values).map(async ([key, value]) =>
      value === null
        ? env.DB.prepare("DELETE FROM environment_values WHERE integration_id = ? AND key = ?").bind(integrationId, key)
        : upsertEnvironmentValueStmt(env.DB, integrationId, key, await encryptValue(env.SECRETS_KEY, value, valueContext(integrationId, key)), at),
    ),
  );
  // The audit entry names the keys, never the values.
  statements.push(auditStatement(env.DB, { tenantId, actor: changedBy, action: "environment.updated", target: integrationId, details: { keys: Object.keys(values) } }));
  await atomically(env.DB, statements);
  return getEnvironment(env, tenantId, integrationId);
}

/**
 * The decrypted environment for server-side use (templates' `{{env.<key>}}`). Never return this
 * from a route or write it to a log.
 */
export async function resolveEnvironment(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, integrationId: string) {
  await integrationRow(env.DB, tenantId, integrationId);
  const out: Record<string, string> = {};
  for (const row of await environmentRows(env.DB, integrationId)) {
    out[row.key] = await decryptValue(env.SECRETS_KEY, row.ciphertext, valueContext(integrationId, row.key));
  }
  return out;
}

/**
 * One decrypted environment value (a webhook's signing secret): nothing else is decrypted for a
 * caller that has not authenticated yet. Undefined when the key has no value.
 */
export async function resolveEnvironmentValue(env: Pick<Env, "DB" | "SECRETS_KEY">, integrationId: string, key: string): Promise<string | undefined> {
  const row = await env.DB.prepare("SELECT ciphertext FROM environment_values WHERE integration_id = ? AND key = ?").bind(integrationId, key).first<{ ciphertext: string }>();
  return row ? decryptValue(env.SECRETS_KEY, row.ciphertext, valueContext(integrationId, key)) : undefined;
}

/**
 * An integration by id alone with its use cases and its tenant's rate limit, cached in the isolate
 * (platform/config-cache.ts): the event path (accepting, processing, webhooks) reads it per event,
 * and D1 must not. Null when there is no such integration. Callers must not change what they get.
 */
function eventPathIntegration(db: D1Database, id: string): Promise<{ tenantId: string; tenantRateLimit: number | null; integration: Integration } | null> {
  return cachedConfig(`integration:${id}`, async () => {
    const row = await db.prepare("SELECT * FROM integrations WHERE id = ?").bind(id).first<IntegrationRow>();
    if (!row) return null;
    // Integrations cascade with their tenant, so the tenant exists; its limit is read beside the use cases.
    const [useCases, tenantRateLimit] = await Promise.all([useCasesOf(db, [id]), tenantRateLimitOf(db, row.tenant_id)]);
    return { tenantId: row.tenant_id, tenantRateLimit, integration: fromIntegrationRow(row, useCases.get(id)!) };
  });
}

/** The tenant's integration for the event path (cached, see eventPathIntegration); NOT_FOUND when it is not theirs. */
export async function integrationForEvents(db: D1Database, tenantId: string, id: string): Promise<Integration> {
  const found = await eventPathIntegration(db, id);
  if (!found || found.tenantId !== tenantId) throw new AppError("NOT_FOUND", `Integration '${id}' not found`);
  return found.integration;
}

/**
 * The integration an epilot app component is mapped to (PUT /v1/integrations/{id}/app-mapping),
 * cached like the rest of the event path's configuration; null when none is. Ids are stored lowercase.
 */
export function integrationIdForAppComponent(db: D1Database, tenantId: string, appId: string, componentId: string): Promise<string | null> {
  const [app, component] = [appId.toLowerCase(), componentId.toLowerCase()];
  return cachedConfig(`app-mapping:${tenantId}:${app}:${component}`, async () => {
    const row = await db
      .prepare("SELECT integration_id FROM integration_app_mappings WHERE tenant_id = ? AND app_id = ? AND component_id = ?")
      .bind(tenantId, app, component)
      .first<{ integration_id: string }>();
    return row?.integration_id ?? null;
  });
}

/** The ids of a tenant's integrations (cached): where its events can be. */
export function tenantIntegrationIds(db: D1Database, tenantId: string): Promise<string[]> {
  return cachedConfig(`integrations-of:${tenantId}`, async () => {
    const { results } = await db.prepare("SELECT id FROM integrations WHERE tenant_id = ?").bind(tenantId).all<{ id: string }>();
    return results.map((r) => r.id);
  });
}

/**
 * What processing an event needs of its configuration: the use case (null if gone) and the
 * integration's settings. The event pipeline calls this once per event; it is served from the
 * isolate's cache.
 */
export async function processingConfiguration(db: D1Database, tenantId: string, integrationId: string, useCaseId: string | null) {
  const found = await eventPathIntegration(db, integrationId);
  const integration = found && found.tenantId === tenantId ? found.integration : null;
  return {
    useCase: (useCaseId && integration?.use_cases.find((uc) => uc.id === useCaseId)) || null,
    settings: integration?.settings ?? storedSettings(undefined),
  };
}

/** An integration by id alone, for routes authenticated by something other than a tenant token (signed webhooks). */
export async function findIntegrationForWebhook(
  db: D1Database,
  id: string,
): Promise<{ tenantId: string; tenantRateLimit: number | null; integration: Integration } | null> {
  return eventPathIntegration(db, id);
}

// ---- what outbound and monitoring read --------------------------------------------------------

/** A tenant's enabled outbound use cases (index use_cases_tenant_type). */
export const ENABLED_OUTBOUND_USE_CASES_SQL = "SELECT id, integration_id, slug, configuration FROM use_cases WHERE tenant_id = ? AND type = 'outbound' AND enabled = 1";

/**
 * A tenant's enabled outbound use cases with their stored configurations, unvalidated (outbound
 * decides what to do with one that no longer validates). Read fresh on every call.
 */
export async function enabledOutboundUseCases(db: D1Database, tenantId: string): Promise<{ id: string; integrationId: string; slug: string; configuration: unknown }[]> {
  const { results } = await db.prepare(ENABLED_OUTBOUND_USE_CASES_SQL).bind(tenantId).all<{ id: string; integration_id: string; slug: string; configuration: string }>();
  return results.map((r) => ({ id: r.id, integrationId: r.integration_id, slug: r.slug, configuration: JSON.parse(r.configuration) as unknown }));
}

/**
 * The core-event names a tenant's enabled outbound use cases take (their `event_catalog_event`, read
 * from the stored configuration as fan-out matches it), cached like the rest of the event path's
 * configuration: an entity store queues only the events some use case takes, so a tenant without
 * outbound use cases costs the queue nothing. A use case saved through this isolate counts at once,
 * elsewhere within CONFIG_TTL_MS, as fan-out's own view of the subscriptions does.
 */
export function subscribedEventNames(db: D1Database, tenantId: string): Promise<Set<string>> {
  return cachedConfig(`subscribed-events:${tenantId}`, async () => {
    const names = (await enabledOutboundUseCases(db, tenantId)).map((uc) => (uc.configuration as { event_catalog_event?: unknown } | null)?.event_catalog_event);
    return new Set(names.filter((n): n is string => typeof n === "string"));
  });
}

/** An outbound use case by id alone, enabled or not, with its stored configuration unvalidated; null when there is none. */
export async function outboundUseCase(db: D1Database, id: string) {
  const row = await db
    .prepare("SELECT id, tenant_id, integration_id, slug, enabled, configuration FROM use_cases WHERE id = ? AND type = 'outbound'")
    .bind(id)
    .first<{ id: string; tenant_id: string; integration_id: string; slug: string; enabled: number; configuration: string }>();
  if (!row) return null;
  return { id: row.id, tenantId: row.tenant_id, integrationId: row.integration_id, slug: row.slug, enabled: row.enabled === 1, configuration: JSON.parse(row.configuration) as unknown };
}

/**
 * Retention's read of integrations: the next `?` integrations after the id that the SQL expression
 * `after` yields, each with its retention_days setting (`defaultDays` when unset). A corrupt settings
 * row fails the statement, so the run that reads it is logged rather than guessing.
 */
export const retentionDaysSql = (after: string, defaultDays: number) => `SELECT id, COALESCE(json_extract(settings, '$.retention_days'), ${defaultDays}) AS days FROM integrations
    WHERE id > ${after} ORDER BY id LIMIT ?`;

// ---- what blueprint installs read and write (src/marketplace) ---------------------------------
// The installer owns no integrations SQL: it reads states and takes statements from here, to run
// in its own all-or-nothing D1 batch next to its install record.

/** An integration's whole configuration, ids included: what an install writes, snapshots and restores. */
export interface IntegrationState {
  id: string;
  name: string;
  description?: string;
  environment_config: EnvironmentConfigEntry[];
  settings: IntegrationSettings;
  use_cases: UseCase[];
}

/** An environment value as stored: the ciphertext is bound to its integration and key. */
export interface StoredEnvironmentValue {
  key: string;
  ciphertext: string;
}

/** An integration as read for an install: configuration, version (for the claim) and stored environment. */
export interface IntegrationSnapshot {
  integration: Integration;
  version: number;
  environment: StoredEnvironmentValue[];
}

/**
 * The tenant's integrations among `ids` with their versions and stored environment values, read in
 * one batch (one consistent snapshot); ids that are not (or no longer) the tenant's are left out.
 */
export async function integrationSnapshots(db: D1Database, tenantId: string, ids: string[]): Promise<Map<string, IntegrationSnapshot>> {
  const out = new Map<string, IntegrationSnapshot>();
  if (ids.length === 0) return out;
  const list = JSON.stringify(ids);
  const [integrations, useCases, values] = await db.batch([
    db.prepare("SELECT * FROM integrations WHERE tenant_id = ? AND id IN (SELECT value FROM json_each(?)) ORDER BY id").bind(tenantId, list),
    db.prepare("SELECT * FROM use_cases WHERE tenant_id = ? AND integration_id IN (SELECT value FROM json_each(?)) ORDER BY id").bind(tenantId, list),
    db
      .prepare(
        `SELECT v.integration_id, v.key, v.ciphertext FROM environment_values v JOIN integrations i ON i.id = v.integration_id
         WHERE i.tenant_id = ? AND v.integration_id IN (SELECT value FROM json_each(?)) ORDER BY v.integration_id, v.key`,
      )
      .bind(tenantId, list),
  ]);
  const byIntegration = new Map<string, UseCase[]>();
  for (const row of useCases!.results as UseCaseRow[]) byIntegration.set(row.integration_id, [...(byIntegration.get(row.integration_id) ?? []), fromUseCaseRow(row)]);
  const environment = new Map<string, StoredEnvironmentValue[]>();
  for (const row of values!.results as { integration_id: string; key: string; ciphertext: string }[]) {
    environment.set(row.integration_id, [...(environment.get(row.integration_id) ?? []), { key: row.key, ciphertext: row.ciphertext }]);
  }
  for (const row of integrations!.results as IntegrationRow[]) {
    out.set(row.id, { integration: fromIntegrationRow(row, byIntegration.get(row.id) ?? []), version: row.version, environment: environment.get(row.id) ?? [] });
  }
  return out;
}

/** Inserts `state` as a new integration with its use cases (ids and created_at kept), a 'created' history row each, and its pulls' schedules. */
export function createIntegrationStatements(db: D1Database, changedBy: string, tenantId: string, state: IntegrationState, at: string): D1PreparedStatement[] {
  return [
    db
      .prepare("INSERT INTO integrations (id, tenant_id, name, description, environment_config, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(state.id, tenantId, state.name, state.description ?? null, JSON.stringify(state.environment_config), JSON.stringify(state.settings), at, at),
    ...state.use_cases.flatMap((uc) => [insertUseCaseStmt(db, tenantId, state.id, uc), historyStmt(db, state.id, "created", uc, changedBy, at)]),
    ...derivedStatements(db, tenantId, state.id, [], state.use_cases),
  ];
}

/**
 * Turns the stored integration `current` (read at `version`) into `target`: claims that version
 * first (so a concurrent change fails the whole batch, see isIntegrationVersionConflict), then
 * deletes the use cases `target` lacks, inserts those it adds (their ids kept), updates the changed
 * ones (a history row each), registers or removes their pulls' schedules, and writes the
 * integration's own fields. Environment values of keys no longer declared, or no longer secret, go
 * with the declaration, as in a PUT.
 */
export function rewriteIntegrationStatements(
  db: D1Database,
  changedBy: string,
  tenantId: string,
  current: Integration,
  version: number,
  target: IntegrationState,
  at: string,
): D1PreparedStatement[] {
  const id = current.id;
  const wanted = new Map(target.use_cases.map((uc) => [uc.id, uc]));
  const existing = new Map(current.use_cases.map((uc) => [uc.id, uc]));
  const statements = [...claimVersion(db, "integrations", id, version)];
  for (const uc of current.use_cases) {
    if (!wanted.has(uc.id)) statements.push(db.prepare("DELETE FROM use_cases WHERE id = ?").bind(uc.id), historyStmt(db, id, "deleted", uc, changedBy, at));
  }
  for (const uc of target.use_cases) {
    const before = existing.get(uc.id);
    if (!before) statements.push(insertUseCaseStmt(db, tenantId, id, uc), historyStmt(db, id, "created", uc, changedBy, at));
    else if (comparable(before) !== comparable(uc)) {
      const updated = { ...uc, slug: before.slug, created_at: before.created_at, updated_at: at } as UseCase;
      statements.push(updateUseCaseStmt(db, updated), historyStmt(db, id, "updated", updated, changedBy, at));
    }
  }
  statements.push(...derivedStatements(db, tenantId, id, current.use_cases, target.use_cases));
  const secretBefore = new Set(current.environment_config.filter((e) => e.type === "SecretString").map((e) => e.key));
  const keptKeys = target.environment_config.filter((e) => !(secretBefore.has(e.key) && e.type !== "SecretString")).map((e) => e.key);
  statements.push(
    db
      .prepare("UPDATE integrations SET name = ?, description = ?, environment_config = ?, settings = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
      .bind(target.name, target.description ?? null, JSON.stringify(target.environment_config), JSON.stringify(target.settings), at, id, tenantId),
    db.prepare("DELETE FROM environment_values WHERE integration_id = ? AND key NOT IN (SELECT value FROM json_each(?))").bind(id, JSON.stringify(keptKeys)),
  );
  return statements;
}

/** Deletes the integration read at `version` (its use cases, history and values cascade); a concurrent change fails the batch. */
export function deleteIntegrationStatements(db: D1Database, tenantId: string, id: string, version: number): D1PreparedStatement[] {
  return [...claimVersion(db, "integrations", id, version), db.prepare("DELETE FROM integrations WHERE id = ? AND tenant_id = ?").bind(id, tenantId)];
}

/** Fails the batch unless the integration is still at `version` (read, decided on, but not written). */
export function integrationUnchangedStatement(db: D1Database, id: string, version: number): D1PreparedStatement {
  return db.prepare("SELECT CASE WHEN EXISTS (SELECT 1 FROM integrations WHERE id = ?1 AND version = ?2) THEN 1 ELSE abs(-9223372036854775808) END").bind(id, version);
}

/** Whether a batch failed because an integration changed after it was read (the claims above). */
export const isIntegrationVersionConflict = isVersionConflict;

/** Encrypts and upserts values of an integration's environment, exactly as putEnvironment stores them. */
export async function environmentValueStatements(env: Pick<Env, "DB" | "SECRETS_KEY">, integrationId: string, values: Record<string, string>, at: string): Promise<D1PreparedStatement[]> {
  return Promise.all(Object.entries(values).map(async ([key, value]) => upsertEnvironmentValueStmt(env.DB, integrationId, key, await encryptValue(env.SECRETS_KEY, value, valueContext(integrationId, key)), at)));
}

/** Replaces an integration's stored environment with `values` (ciphertexts as snapshotted, byte for byte). */
export function restoreEnvironmentStatements(db: D1Database, integrationId: string, values: StoredEnvironmentValue[], at: string): D1PreparedStatement[] {
  return [
    db.prepare("DELETE FROM environment_values WHERE integration_id = ?").bind(integrationId),
    ...values.map((v) => upsertEnvironmentValueStmt(db, integrationId, v.key, v.ciphertext, at)),
  ];
}

/** A stored value in clear, for server-side comparison only (never return a SecretString's). */
export function decryptStoredValue(env: Pick<Env, "SECRETS_KEY">, integrationId: string, value: StoredEnvironmentValue): Promise<string> {
  return decryptValue(env.SECRETS_KEY, value.ciphertext, valueContext(integrationId, value.key));
}

// ---- what the file proxy reads -----------------------------------------------------------------

/**
 * A file_proxy use case by integration and slug, for downloads (a signed URL carries no tenant token,
 * so the integration names the tenant). The configuration is returned unvalidated; null when there is none.
 */
export async function fileProxyUseCase(db: D1Database, integrationId: string, slug: string): Promise<{ id: string; tenantId: string; enabled: boolean; configuration: string } | null> {
  const row = await db
    .prepare("SELECT id, tenant_id, enabled, configuration FROM use_cases WHERE integration_id = ? AND slug = ? AND type = 'file_proxy'")
    .bind(integrationId, slug)
    .first<{ id: string; tenant_id: string; enabled: number; configuration: string }>();
  return row ? { id: row.id, tenantId: row.tenant_id, enabled: row.enabled === 1, configuration: row.configuration } : null;
}

/**
 * Where a tenant's per-event data lives, for deleting it with the tenant: its integrations (their
 * event logs), its outbound endpoints (their deliveries) and every entity schema its inbound mappings write or relate to (their entity
 * stores), plus the meter stores readings go to.
 */
export async function tenantDataLocations(db: D1Database, tenantId: string): Promise<{ integrationIds: string[]; endpointIds: string[]; schemas: string[] }> {
  const [integrations, used, useCases, endpoints] = await db.batch([
    db.prepare("SELECT id FROM integrations WHERE tenant_id = ?").bind(tenantId),
    db.prepare("SELECT schema FROM tenant_entity_schemas WHERE tenant_id = ?").bind(tenantId),
    db.prepare("SELECT configuration FROM use_cases WHERE tenant_id = ? AND type = 'inbound'").bind(tenantId),
    db.prepare("SELECT id FROM outbound_endpoints WHERE tenant_id = ?").bind(tenantId),
  ]);
  const schemas = new Set(["meter", "meter_counter", ...(used!.results as { schema: string }[]).map((r) => r.schema)]);
  for (const row of useCases!.results as { configuration: string }[]) for (const schema of entitySchemasOf(JSON.parse(row.configuration))) schemas.add(schema);
  return {
    integrationIds: (integrations!.results as { id: string }[]).map((r) => r.id),
    endpointIds: (endpoints!.results as { id: string }[]).map((r) => r.id),
    schemas: [...schemas],
  };
}
