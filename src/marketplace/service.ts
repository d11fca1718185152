// Blueprint installs: trusted publishers, plan-first installs, three-way-merge upgrades, rollbacks
// and removals. The integrations themselves are written through integrations/service.ts statements,
// in the same D1 batch as the install record and the audit entry, so each change is all or nothing.
import { purgeAccessLogs, type AccessLogEnv } from "../monitoring/access-log";
import semver from "semver";
import { readManifest, resolveConfigurations, unpackBundle } from "../../apps-sdk/src/blueprint/bundle";
import { PackageError, type BlueprintManifest } from "../../apps-sdk/src/blueprint/manifest";
import { assertSafeOutboundUseCases } from "../integrations/outbound-configuration";
import type { UseCaseInput } from "../integrations/schema";
import { assertMayUseSecrets } from "../integrations/secrets-policy";
import {
  createIntegrationStatements,
  decryptStoredValue,
  deleteIntegrationStatements,
  environmentValueStatements,
  integrationSnapshots,
  integrationUnchangedStatement,
  isIntegrationVersionConflict,
  restoreEnvironmentStatements,
  rewriteIntegrationStatements,
  type IntegrationSnapshot,
  type IntegrationState,
} from "../integrations/service";
import { callerLabel, type Caller } from "../platform/app";
import { auditStatement } from "../platform/audit";
import { atomically } from "../platform/db";
import { AppError } from "../platform/errors";
import { newId, newUuid, nowIso } from "../platform/ids";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { VERSION } from "../platform/version";
import { fetchPackage } from "../registry/client";
import {
  emptyModel,
  emptyResources,
  environmentEntries,
  mergeEnvironmentEntries,
  modelOf,
  planChanges,
  planRestore,
  tenantAddedUseCases,
  type BlueprintModel,
  type ModelAppReference,
  type PlanEntry,
  type Resources,
} from "./plan";
import { majorsCrossed, resolveVersion } from "../registry/resolution";
import { assertTrusted } from "../registry/trust";
import { blueprintAppStatements, installedApps, removeBlueprintAppsStatement } from "../apps/service";
import { purgeEventLogs } from "../inbound/service";
import { endpointsOfIntegrations, purgeEndpoints } from "../outbound/service";
import { PLATFORM_PUBLISHER, type Installation, type InstallRequest, type PlanResult, type TrustList, type UpgradeRequest } from "./schema";
import { fetchVerifiedArchive, packageProblem, publisherOf } from "../registry/verify";

/** Rollback steps kept per install; older ones are dropped as new steps are recorded. */
export const HISTORY_LIMIT = 20;

/** Rounds an upgrade, rollback or removal is decided again when a concurrent change beat it, before 409. */
const ROUNDS = 3;

/**
 * What one change may write. D1 refuses a string or row over 2,000,000 bytes and counts every
 * statement of a batch toward the 1,000 queries of an invocation; local D1 enforces neither, so
 * the host checks before writing (422 naming the limit) instead of failing in production with 500.
 */
export const INSTALL_LIMITS = {
  /** The verified manifest with its configurations read in, as JSON: stored whole as the next merge's base. */
  manifestBytes: 512 * 1024,
  /** Any one JSON value written (a history step's snapshot and previous record together). */
  rowBytes: 1_800_000,
  /** Statements of the one batch a change is written in (room left for the reads around it). */
  batchStatements: 900,
} as const;

const byteLength = (text: string) => new TextEncoder().encode(text).length;

function tooLarge(what: string, details: Record<string, unknown>): AppError {
  return new AppError("UNPROCESSABLE", `${what} is too large to apply in one transaction; split the blueprint, or change it in smaller steps`, details);
}

/** 422 unless the batch stays within D1's statement budget. */
function assertBatchFits(statements: D1PreparedStatement[], what: string) {
  if (statements.length > INSTALL_LIMITS.batchStatements) {
    throw tooLarge(what, { path: "integrations", statements: statements.length, max_statements: INSTALL_LIMITS.batchStatements });
  }
}

// ---- rows ------------------------------------------------------------------------------------------

interface InstallRow {
  id: string;
  tenant_id: string;
  name: string;
  version: string;
  digest: string;
  manifest: string;
  resources: string;
  installed_at: string;
  installed_by: string;
  updated_at: string;
  updated_by: string;
  revision: number;
}

interface HistoryRow {
  id: string;
  install_id: string;
  action: "installed" | "upgraded";
  version: string;
  digest: string;
  previous: string | null;
  snapshot: string;
  changed_at: string;
  changed_by: string;
}

/** The install record as it was before a step: what a rollback puts back. */
interface PreviousRecord {
  version: string;
  digest: string;
  manifest: BlueprintManifest;
  resources: Resources;
}

interface Snapshot {
  integrations: IntegrationSnapshot[];
}

function fromInstallRow(row: InstallRow): Installation {
  const resources = JSON.parse(row.resources) as Resources;
  return {
    name: row.name,
    version: row.version,
    digest: row.digest,
    installed_at: row.installed_at,
    installed_by: row.installed_by,
    updated_at: row.updated_at,
    updated_by: row.updated_by,
    resources: {
      integrations: Object.entries(resources.integrations).map(([slug, id]) => ({ slug, id })),
      use_cases: Object.entries(resources.use_cases).map(([key, id]) => ({ key, id })),
    },
  };
}

function fromHistoryRow(row: HistoryRow) {
  const previous = row.previous ? (JSON.parse(row.previous) as PreviousRecord) : null;
  return { action: row.action, version: row.version, digest: row.digest, from_version: previous?.version ?? null, changed_at: row.changed_at, changed_by: row.changed_by };
}

const resourcesOf = (row: InstallRow) => JSON.parse(row.resources) as Resources;
const manifestOf = (row: InstallRow) => JSON.parse(row.manifest) as BlueprintManifest;

// ---- trust -----------------------------------------------------------------------------------------

/** The publishers a tenant installs from: its own list, with the platform's publisher always first. */
export async function getTrust(db: D1Database, tenantId: string): Promise<TrustList> {
  const { results } = await db.prepare("SELECT publisher FROM blueprint_trust WHERE tenant_id = ? ORDER BY publisher").bind(tenantId).all<{ publisher: string }>();
  return { publishers: [PLATFORM_PUBLISHER, ...results.map((r) => r.publisher).filter((p) => p !== PLATFORM_PUBLISHER)] };
}

/** Replaces the tenant's trusted publishers (the platform's publisher stays trusted whatever the list says). */
export async function putTrust(db: D1Database, changedBy: string, tenantId: string, input: TrustList): Promise<TrustList> {
  const publishers = [...new Set(input.publishers)].filter((p) => p !== PLATFORM_PUBLISHER).sort();
  const at = nowIso();
  await atomically(db, [
    db.prepare("DELETE FROM blueprint_trust WHERE tenant_id = ?").bind(tenantId),
    ...publishers.map((p) => db.prepare("INSERT INTO blueprint_trust (tenant_id, publisher, trusted_at, trusted_by) VALUES (?, ?, ?, ?)").bind(tenantId, p, at, changedBy)),
    auditStatement(db, { tenantId, actor: changedBy, action: "blueprint.trust_updated", details: { publishers } }),
  ]);
  return getTrust(db, tenantId);
}

// ---- installed blueprints ----------------------------------------------------------------------------

async function installRow(db: D1Database, tenantId: string, name: string): Promise<InstallRow | null> {
  return db.prepare("SELECT * FROM blueprint_installs WHERE tenant_id = ? AND name = ?").bind(tenantId, name).first<InstallRow>();
}

async function requireInstallRow(db: D1Database, tenantId: string, name: string): Promise<InstallRow> {
  const row = await installRow(db, tenantId, name);
  if (!row) throw new AppError("NOT_FOUND", `Blueprint '${name}' is not installed`);
  return row;
}

export async function listInstalled(db: D1Database, tenantId: string, page: PageQuery) {
  const { results } = await db
    .prepare("SELECT * FROM blueprint_installs WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?")
    .bind(tenantId, decodeCursor(page.cursor), page.limit + 1)
    .all<InstallRow>();
  const { items, next_cursor } = toPage(results, page.limit, fromInstallRow);
  return { installed: items, next_cursor };
}

/** One installed blueprint with the steps a rollback can undo, newest first. */
export async function getInstalled(db: D1Database, tenantId: string, name: string) {
  const row = await requireInstallRow(db, tenantId, name);
  const { results } = await db.prepare("SELECT * FROM blueprint_install_history WHERE install_id = ? ORDER BY id DESC").bind(row.id).all<HistoryRow>();
  return { ...fromInstallRow(row), history: results.map(fromHistoryRow) };
}

/** Other installed blueprints that require `name`, with the range each requires. */
async function dependentsOf(db: D1Database, tenantId: string, name: string): Promise<{ name: string; range: string }[]> {
  const { results } = await db.prepare("SELECT name, manifest FROM blueprint_installs WHERE tenant_id = ? AND name <> ?").bind(tenantId, name).all<{ name: string; manifest: string }>();
  return results.flatMap((o) => {
    const requires = (JSON.parse(o.manifest) as BlueprintManifest).requires ?? {};
    return Object.hasOwn(requires, name) ? [{ name: o.name, range: requires[name]! }] : [];
  });
}

async function assertNoDependents(db: D1Database, tenantId: string, name: string) {
  const dependents = (await dependentsOf(db, tenantId, name)).map((d) => d.name);
  if (dependents.length > 0) throw new AppError("CONFLICT", `${dependents.join(", ")} require${dependents.length === 1 ? "s" : ""} '${name}'; uninstall ${dependents.length === 1 ? "it" : "them"} first`, { dependents });
}

// ---- fetching and verifying a package ------------------------------------------------------------------

/** A blueprint version the host verified itself, its configurations read from their files. */
export interface VerifiedBlueprint {
  name: string;
  version: string;
  digest: string;
  manifest: BlueprintManifest;
  warnings: string[];
}

/** A blueprint version resolved, downloaded and verified in the host (fetchVerifiedArchive), its manifest and configuration files read. */
export async function fetchVerifiedBlueprint(env: Pick<Env, "REGISTRY">, name: string, spec: string): Promise<VerifiedBlueprint> {
  const { version, digest, archive, label, warnings } = await fetchVerifiedArchive(env, name, spec, "blueprint");
  try {
    const files = unpackBundle(archive);
    const manifest = readManifest(files);
    if (manifest.name !== name || manifest.version !== version) {
      throw new AppError("UNPROCESSABLE", `${label}: the bundle's blueprint.json is ${manifest.name}@${manifest.version}`);
    }
    return { name, version, digest, manifest: resolveConfigurations(manifest, files), warnings };
  } catch (err) {
    if (err instanceof PackageError) throw packageProblem(err, label);
    throw err;
  }
}

// ---- checks every install and upgrade makes -------------------------------------------------------------

/** The model of a verified blueprint after every check that needs no tenant state (422 with paths), with the app actions its use cases run. */
async function checkedModel(env: Env, caller: Caller, pkg: VerifiedBlueprint): Promise<{ model: BlueprintModel; references: ModelAppReference[] }> {
  const engines = pkg.manifest.engines["erp-edge"];
  if (!semver.satisfies(VERSION, engines, { includePrerelease: true })) {
    throw new AppError("UNPROCESSABLE", `${pkg.name}@${pkg.version} needs erp-edge ${engines}; this is ${VERSION}`, { path: "engines.erp-edge", required: engines, actual: VERSION });
  }
  const bytes = byteLength(JSON.stringify(pkg.manifest));
  if (bytes > INSTALL_LIMITS.manifestBytes) {
    throw tooLarge(`${pkg.name}@${pkg.version}`, { path: "integrations", bytes, max_bytes: INSTALL_LIMITS.manifestBytes, message: "the manifest with its configuration files read in" });
  }
  const { model, issues, references } = modelOf(pkg.manifest);
  if (issues.length > 0) throw new AppError("UNPROCESSABLE", `${pkg.name}@${pkg.version} has use cases or environment keys this host refuses`, issues);
  for (const [n, integration] of model.integrations.entries()) {
    const useCases = integration.use_cases as UseCaseInput[];
    assertMayUseSecrets(caller, useCases);
    try {
      await assertSafeOutboundUseCases(useCases, env, ["integrations", n, "use_cases"]);
    } catch (err) {
      if (err instanceof AppError && err.code === "VALIDATION_FAILED") throw new AppError("UNPROCESSABLE", `${pkg.name}@${pkg.version} sends to destinations this host refuses`, err.details);
      throw err;
    }
  }
  return { model, references };
}

/**
 * Every app a use case of the blueprint runs (pre_mapping, transform, pull) must come with it: listed
 * in its `apps` (installed in the same batch), or already installed in the tenant by other means (an
 * app this blueprint installed and no longer lists is removed by the change, so it does not count).
 * 422 naming each use case's path otherwise. Whether the action exists is checked when it runs.
 */
async function assertAppsAvailable(db: D1Database, tenantId: string, pkg: VerifiedBlueprint, references: ModelAppReference[]) {
  if (references.length === 0) return;
  const listed = new Set((pkg.manifest.apps ?? []).map((a) => a.name));
  const installed = await installedApps(db, tenantId);
  // Only an app the tenant installed itself counts besides the listed ones: one another blueprint
  // installed leaves with that blueprint, and would take this blueprint's use cases' app with it.
  const missing = references.filter((r) => !listed.has(r.app) && installed.get(r.app) !== null);
  if (missing.length > 0) {
    throw new AppError(
      "UNPROCESSABLE",
      `${pkg.name}@${pkg.version} runs apps it neither lists in apps nor finds installed: ${[...new Set(missing.map((m) => m.app))].join(", ")}`,
      missing.map((m) => ({ path: m.path, app: m.app, message: `${m.app} is not listed in the blueprint's apps, nor installed in this tenant (directly, not by another blueprint)` })),
    );
  }
}

/** `requires`: every package named must be installed in a version in range (422 listing what is not). */
async function assertRequirementsMet(db: D1Database, tenantId: string, pkg: VerifiedBlueprint) {
  const requires = Object.entries(pkg.manifest.requires ?? {});
  if (requires.length === 0) return;
  const { results } = await db
    .prepare("SELECT name, version, json_extract(manifest, '$.requires') AS requires FROM blueprint_installs WHERE tenant_id = ?")
    .bind(tenantId)
    .all<{ name: string; version: string; requires: string | null }>();
  const installed = new Map(results.map((r) => [r.name, r.version]));
  // Installed blueprints that require this one, directly or through others: requiring any of them
  // would make a cycle that no uninstall can break.
  const requiredBy = new Map<string, string[]>();
  for (const r of results) {
    if (r.name === pkg.name) continue;
    for (const dep of Object.keys(r.requires ? (JSON.parse(r.requires) as Record<string, string>) : {})) requiredBy.set(dep, [...(requiredBy.get(dep) ?? []), r.name]);
  }
  const dependents = new Set<string>();
  for (let queue = [pkg.name]; queue.length > 0; ) {
    for (const d of requiredBy.get(queue.pop()!) ?? []) {
      if (dependents.has(d)) continue;
      dependents.add(d);
      queue.push(d);
    }
  }
  const cycles = requires.filter(([name]) => dependents.has(name));
  if (cycles.length > 0) {
    throw new AppError(
      "UNPROCESSABLE",
      `${pkg.name}@${pkg.version} requires blueprints that require it: ${cycles.map(([n]) => n).join(", ")}`,
      cycles.map(([name]) => ({ path: `requires.${name}`, name, message: `${name} requires ${pkg.name}: a cycle` })),
    );
  }
  const unmet = requires
    .filter(([name, range]) => !installed.has(name) || !semver.satisfies(installed.get(name)!, range, { includePrerelease: true }))
    .map(([name, range]) => ({ path: `requires.${name}`, name, range, installed: installed.get(name) ?? null, message: installed.has(name) ? `${name} ${installed.get(name)} is installed; ${range} is required` : `${name} ${range} must be installed first` }));
  if (unmet.length > 0) throw new AppError("UNPROCESSABLE", `${pkg.name}@${pkg.version} requires blueprints that are not installed`, unmet);
}

/** Environment values given for keys the blueprint does not declare are refused (422). */
function assertDeclaredKeys(model: BlueprintModel, values: Record<string, string>) {
  const declared = new Set(model.environment.map((e) => e.key));
  const unknown = Object.keys(values).filter((k) => !declared.has(k));
  if (unknown.length > 0) {
    throw new AppError("UNPROCESSABLE", "Environment values for keys the blueprint does not declare", unknown.map((key) => ({ path: `environment.${key}`, message: "not declared by the blueprint", code: "unknown_key" })));
  }
}

function assertRequiredPresent(missing: string[]) {
  if (missing.length > 0) {
    throw new AppError("UNPROCESSABLE", `Required environment values are missing: ${missing.join(", ")}`, missing.map((key) => ({ path: `environment.${key}`, message: "required by the blueprint", code: "missing_value" })));
  }
}

/** Apps the blueprint uses: each must be in the registry as an app with a version in range (installed in the same batch, blueprintAppStatements). */
async function appEntries(env: Pick<Env, "REGISTRY">, base: BlueprintManifest | null, incoming: BlueprintManifest): Promise<PlanEntry[]> {
  const missing: { path: string; name: string; message: string }[] = [];
  for (const [i, app] of (incoming.apps ?? []).entries()) {
    const pkg = await fetchPackage(env, app.name);
    const resolved = pkg && pkg.kind === "app" ? resolveVersion(pkg, app.version) : null;
    if (!resolved?.ok) missing.push({ path: `apps.${i}.name`, name: app.name, message: pkg?.kind === "app" ? `no installable version of ${app.name} satisfies ${app.version}` : `no app '${app.name}' in the registry` });
  }
  if (missing.length > 0) throw new AppError("UNPROCESSABLE", `${incoming.name}@${incoming.version} uses apps the registry does not have`, missing);
  return appPlanEntries(base?.apps ?? [], incoming.apps ?? []);
}

/** Plan entries for the apps a blueprint lists going from `base` to `incoming` (by name, the range compared). */
function appPlanEntries(base: { name: string; version: string }[], incoming: { name: string; version: string }[]): PlanEntry[] {
  const before = new Map(base.map((a) => [a.name, a.version]));
  const entries: PlanEntry[] = incoming.map((app) => {
    const range = before.get(app.name);
    const action = range === undefined ? "create" : range === app.version ? "no-op" : "update";
    return { resource: "app", key: app.name, action, ...(action !== "no-op" && { diff: { changes: [{ path: "version", from: range ?? null, to: app.version }] } }) };
  });
  for (const [name, range] of before) {
    if (!incoming.some((a) => a.name === name)) entries.push({ resource: "app", key: name, action: "delete", diff: { changes: [{ path: "version", from: range, to: null }] } });
  }
  return entries;
}

// ---- environment values ---------------------------------------------------------------------------------

/** An integration's stored environment in clear (compared server-side; secrets are masked in plans). */
async function clearValues(env: Pick<Env, "SECRETS_KEY">, snapshot: IntegrationSnapshot): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const value of snapshot.environment) out[value.key] = await decryptStoredValue(env, snapshot.integration.id, value);
  return out;
}

const secretKeys = (...configs: { key: string; type: string }[][]) => new Set(configs.flat().filter((e) => e.type === "SecretString").map((e) => e.key));

// ---- writing -------------------------------------------------------------------------------------------------

/** Fails the batch unless the install record is still at `revision` (see the integrations' version claims). */
const installUnchangedStatement = (db: D1Database, id: string, revision: number) =>
  db.prepare("SELECT CASE WHEN EXISTS (SELECT 1 FROM blueprint_installs WHERE id = ?1 AND revision = ?2) THEN 1 ELSE abs(-9223372036854775808) END").bind(id, revision);

/** Fails the batch unless the tenant still trusts the package's publisher (trust can be withdrawn while a change is planned). */
const trustedStatement = (db: D1Database, tenantId: string, name: string) =>
  db
    .prepare("SELECT CASE WHEN ?2 = ?3 OR EXISTS (SELECT 1 FROM blueprint_trust WHERE tenant_id = ?1 AND publisher = ?2) THEN 1 ELSE abs(-9223372036854775808) END")
    .bind(tenantId, publisherOf(name), PLATFORM_PUBLISHER);

/** 422 unless a history step (its snapshot and the record before it) fits in one D1 row. */
function assertStepFits(previous: string | null, snapshot: string, what: string) {
  const bytes = byteLength(snapshot) + (previous ? byteLength(previous) : 0);
  if (bytes > INSTALL_LIMITS.rowBytes) throw tooLarge(what, { path: "integrations", reason: "the rollback step (the configuration before it) would not fit in one row", bytes, max_bytes: INSTALL_LIMITS.rowBytes });
}

function historyStatements(db: D1Database, installId: string, step: Omit<HistoryRow, "id" | "install_id">): D1PreparedStatement[] {
  return [
    db
      .prepare("INSERT INTO blueprint_install_history (id, install_id, action, version, digest, previous, snapshot, changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(newId(), installId, step.action, step.version, step.digest, step.previous, step.snapshot, step.changed_at, step.changed_by),
    db
      .prepare("DELETE FROM blueprint_install_history WHERE install_id = ?1 AND id NOT IN (SELECT id FROM blueprint_install_history WHERE install_id = ?1 ORDER BY id DESC LIMIT ?2)")
      .bind(installId, HISTORY_LIMIT),
  ];
}

/** Runs a read-decide-write round again when a concurrent change made its claims fail; 409 after ROUNDS. */
async function withRounds<T>(what: string, round: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await round();
    } catch (err) {
      if (!isIntegrationVersionConflict(err)) throw err;
      if (attempt >= ROUNDS) throw new AppError("CONFLICT", `${what} is being changed concurrently; retry`);
    }
  }
}

const sortPlan = (entries: PlanEntry[]) => {
  const order = { integration: 0, use_case: 0, environment: 1, app: 2 };
  return entries.map((e, i) => ({ e, i })).sort((a, b) => order[a.e.resource] - order[b.e.resource] || a.i - b.i).map(({ e }) => e);
};

// ---- install ---------------------------------------------------------------------------------------------------

/** POST /v1/blueprints/install: fetch, verify, check, plan, and (unless a dry run) apply in one batch. */
export async function install(env: Env, caller: Caller, tenantId: string, input: InstallRequest): Promise<PlanResult> {
  await assertTrusted(env.DB, tenantId, input.name);
  await assertNotInstalled(env.DB, tenantId, input.name);
  const pkg = await fetchVerifiedBlueprint(env, input.name, input.version);
  return installVerified(env, caller, tenantId, pkg, input);
}

async function assertNotInstalled(db: D1Database, tenantId: string, name: string) {
  const existing = await installRow(db, tenantId, name);
  if (existing) {
    throw new AppError("CONFLICT", `Blueprint '${name}' is already installed (${existing.version}); upgrade it with POST /v1/blueprints/installed/${name}/upgrade`, { name, version: existing.version });
  }
}

/** The install of a blueprint already fetched and verified (fetchVerifiedBlueprint); tests call it with their own. */
export async function installVerified(env: Env, caller: Caller, tenantId: string, pkg: VerifiedBlueprint, input: Pick<InstallRequest, "environment" | "dry_run">): Promise<PlanResult> {
  await assertTrusted(env.DB, tenantId, pkg.name);
  await assertNotInstalled(env.DB, tenantId, pkg.name);
  const { model, references } = await checkedModel(env, caller, pkg);
  await assertRequirementsMet(env.DB, tenantId, pkg);
  await assertAppsAvailable(env.DB, tenantId, pkg, references);
  assertDeclaredKeys(model, input.environment);
  const values = Object.fromEntries(Object.entries(input.environment).filter(([, v]) => v !== ""));
  assertRequiredPresent(model.environment.filter((e) => e.required && !Object.hasOwn(values, e.key)).map((e) => e.key));
  const apps = await appEntries(env, null, pkg.manifest);

  const at = nowIso();
  const changes = planChanges({ base: emptyModel(), incoming: model, resources: emptyResources(), current: new Map(), newId: newUuid, at });
  const secret = secretKeys(model.environment);
  const environment = changes.creates.length > 0 ? environmentEntries({}, values, secret) : [];
  const result: PlanResult = {
    name: pkg.name,
    version: pkg.version,
    digest: pkg.digest,
    from: null,
    dry_run: input.dry_run,
    plan: sortPlan([...changes.entries, ...environment, ...apps]),
    warnings: pkg.warnings,
    installation: null,
  };

  const label = callerLabel(caller);
  const installId = newId();
  const statements: D1PreparedStatement[] = [trustedStatement(env.DB, tenantId, pkg.name), ...(await blueprintAppStatements(env, label, tenantId, pkg.name, [], pkg.manifest.apps ?? []))];
  for (const state of changes.creates) {
    statements.push(...createIntegrationStatements(env.DB, label, tenantId, state, at), ...(await environmentValueStatements(env, state.id, values, at)));
  }
  statements.push(
    env.DB
      .prepare(
        `INSERT INTO blueprint_installs (id, tenant_id, name, version, digest, manifest, resources, installed_at, installed_by, updated_at, updated_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(installId, tenantId, pkg.name, pkg.version, pkg.digest, JSON.stringify(pkg.manifest), JSON.stringify(changes.resources), at, label, at, label),
    ...historyStatements(env.DB, installId, { action: "installed", version: pkg.version, digest: pkg.digest, previous: null, snapshot: JSON.stringify({ integrations: [] } satisfies Snapshot), changed_at: at, changed_by: label }),
    auditStatement(env.DB, {
      tenantId,
      actor: label,
      action: "blueprint.installed",
      target: pkg.name,
      details: { name: pkg.name, version: pkg.version, digest: pkg.digest, integrations: changes.creates.map((s) => s.id) },
    }),
  );
  assertBatchFits(statements, `${pkg.name}@${pkg.version}`);
  if (input.dry_run) return result;
  try {
    await atomically(env.DB, statements);
  } catch (err) {
    if (err instanceof AppError && err.code === "CONFLICT") throw new AppError("CONFLICT", `Blueprint '${pkg.name}' was installed concurrently; upgrade it instead`, { name: pkg.name });
    // The only claim an install makes is the trust guard: the publisher was untrusted meanwhile.
    if (isIntegrationVersionConflict(err)) {
      await assertTrusted(env.DB, tenantId, pkg.name);
      throw new AppError("CONFLICT", `The trusted publishers of this tenant changed during the install of '${pkg.name}'; retry`, { name: pkg.name });
    }
    throw err;
  }
  return { ...result, installation: fromInstallRow((await installRow(env.DB, tenantId, pkg.name))!) };
}

// ---- upgrade ------------------------------------------------------------------------------------------------------

/** POST /v1/blueprints/installed/{scope}/{name}/upgrade. */
export async function upgrade(env: Env, caller: Caller, tenantId: string, name: string, input: UpgradeRequest): Promise<PlanResult> {
  await requireInstallRow(env.DB, tenantId, name);
  await assertTrusted(env.DB, tenantId, name);
  const pkg = await fetchVerifiedBlueprint(env, name, input.version);
  return upgradeVerified(env, caller, tenantId, pkg, input);
}

/** The upgrade to a blueprint version already fetched and verified. */
export async function upgradeVerified(env: Env, caller: Caller, tenantId: string, pkg: VerifiedBlueprint, input: Omit<UpgradeRequest, "version">): Promise<PlanResult> {
  const first = await requireInstallRow(env.DB, tenantId, pkg.name);
  await assertTrusted(env.DB, tenantId, pkg.name);
  if (first.version === pkg.version) {
    throw new AppError("CONFLICT", `${pkg.name} ${pkg.version} is already installed`, { path: "version", version: pkg.version });
  }
  const crossed = majorsCrossed(first.version, pkg.version);
  if (crossed.length > 0 && !input.accept_breaking) {
    const notes = Object.fromEntries(crossed.map((m) => [String(m), pkg.manifest.breaking_changes?.[String(m)] ?? "(the publisher wrote no notes for this major version)"]));
    throw new AppError("CONFLICT", `Upgrading ${pkg.name} from ${first.version} to ${pkg.version} crosses a major version; read the breaking changes and send accept_breaking: true`, {
      path: "accept_breaking",
      from: first.version,
      to: pkg.version,
      breaking_changes: notes,
    });
  }
  const broken = (await dependentsOf(env.DB, tenantId, pkg.name)).filter((d) => !semver.satisfies(pkg.version, d.range, { includePrerelease: true }));
  if (broken.length > 0) {
    throw new AppError("CONFLICT", `${broken.map((d) => `${d.name} requires ${pkg.name} ${d.range}`).join("; ")}: ${pkg.version} does not satisfy that`, { path: "version", dependents: broken });
  }
  const { model, references } = await checkedModel(env, caller, pkg);
  await assertRequirementsMet(env.DB, tenantId, pkg);
  await assertAppsAvailable(env.DB, tenantId, pkg, references);
  assertDeclaredKeys(model, input.environment);
  const given = Object.fromEntries(Object.entries(input.environment).filter(([, v]) => v !== ""));
  const warnings = [...pkg.warnings, ...(semver.lt(pkg.version, first.version) ? [`${pkg.version} is older than the installed ${first.version}: this is a downgrade`] : [])];
  const label = callerLabel(caller);

  return withRounds(`Blueprint '${pkg.name}'`, async () => {
    const row = await requireInstallRow(env.DB, tenantId, pkg.name);
    // Again in every round: a failed round may be the trust guard below (trust withdrawn meanwhile).
    await assertTrusted(env.DB, tenantId, pkg.name);
    const baseManifest = manifestOf(row);
    const resources = resourcesOf(row);
    const current = await integrationSnapshots(env.DB, tenantId, Object.values(resources.integrations));
    const at = nowIso();
    const changes = planChanges({ base: modelOf(baseManifest, true).model, incoming: model, resources, current, newId: newUuid, at });
    const apps = await appEntries(env, baseManifest, pkg.manifest);

    // Environment values after the upgrade, per integration: what is stored (less keys no longer
    // declared, or no longer secret) with the values given; new integrations copy the others' values.
    const targets: { state: IntegrationState; before: Record<string, string>; beforeConfig: IntegrationState["environment_config"]; isNew: boolean }[] = [];
    for (const { snapshot, target } of changes.rewrites) targets.push({ state: target, before: await clearValues(env, snapshot), beforeConfig: snapshot.integration.environment_config, isNew: false });
    for (const snapshot of changes.unchanged) targets.push({ state: snapshot.integration, before: await clearValues(env, snapshot), beforeConfig: snapshot.integration.environment_config, isNew: false });
    // A value inherited from an integration where it was secret stays secret: a new integration
    // declaring the key as a String must not receive it (its value would be readable in clear).
    const inherited: Record<string, string> = {};
    const inheritedSecret = new Set<string>();
    for (const t of targets) {
      const secret = secretKeys(t.beforeConfig);
      for (const [k, v] of Object.entries(t.before)) {
        if (!Object.hasOwn(inherited, k)) inherited[k] = v;
        if (secret.has(k)) inheritedSecret.add(k);
      }
    }
    for (const state of changes.creates) targets.push({ state, before: {}, beforeConfig: [], isNew: true });
    // Integrations kept only because the tenant changed what the new version removes are no longer the blueprint's.
    const stillOwned = new Set(Object.values(changes.resources.integrations));
    targets.splice(0, targets.length, ...targets.filter((t) => stillOwned.has(t.state.id)));
    const missing = new Set<string>();
    const writes: { integrationId: string; values: Record<string, string> }[] = [];
    const perIntegration: PlanEntry[][] = [];
    for (const t of targets) {
      const declared = new Map(t.state.environment_config.map((e) => [e.key, e]));
      const wasSecret = t.isNew ? inheritedSecret : secretKeys(t.beforeConfig);
      const after: Record<string, string> = {};
      const source = t.isNew ? inherited : t.before;
      for (const [k, v] of Object.entries(source)) {
        const decl = declared.get(k);
        if (decl && !(wasSecret.has(k) && decl.type !== "SecretString")) after[k] = v;
      }
      for (const [k, v] of Object.entries(given)) if (declared.has(k)) after[k] = v;
      for (const e of declared.values()) if (e.required && !Object.hasOwn(after, e.key)) missing.add(e.key);
      const changed = Object.fromEntries(Object.entries(after).filter(([k, v]) => t.before[k] !== v));
      if (Object.keys(changed).length > 0) writes.push({ integrationId: t.state.id, values: changed });
      // Keys are planned per blueprint: a new integration taking the values already set changes none of them.
      const masked = secretKeys(t.beforeConfig, t.state.environment_config);
      if (t.isNew) for (const k of inheritedSecret) masked.add(k);
      perIntegration.push(environmentEntries(t.isNew ? inherited : t.before, after, masked));
    }
    assertRequiredPresent([...missing].sort());

    const result: PlanResult = {
      name: pkg.name,
      version: pkg.version,
      digest: pkg.digest,
      from: { version: row.version, digest: row.digest },
      dry_run: input.dry_run,
      plan: sortPlan([...changes.entries, ...mergeEnvironmentEntries(perIntegration), ...apps]),
      warnings,
      installation: null,
    };

    const statements: D1PreparedStatement[] = [
      installUnchangedStatement(env.DB, row.id, row.revision),
      trustedStatement(env.DB, tenantId, pkg.name),
      env.DB
        .prepare("UPDATE blueprint_installs SET version = ?, digest = ?, manifest = ?, resources = ?, updated_at = ?, updated_by = ?, revision = revision + 1 WHERE id = ?")
        .bind(pkg.version, pkg.digest, JSON.stringify(pkg.manifest), JSON.stringify(changes.resources), at, label, row.id),
    ];
    for (const state of changes.creates) statements.push(...createIntegrationStatements(env.DB, label, tenantId, state, at));
    for (const { snapshot, target } of changes.rewrites) statements.push(...rewriteIntegrationStatements(env.DB, label, tenantId, snapshot.integration, snapshot.version, target, at));
    for (const snapshot of changes.unchanged) statements.push(integrationUnchangedStatement(env.DB, snapshot.integration.id, snapshot.version));
    for (const snapshot of changes.deletes) statements.push(...deleteIntegrationStatements(env.DB, tenantId, snapshot.integration.id, snapshot.version));
    for (const w of writes) statements.push(...(await environmentValueStatements(env, w.integrationId, w.values, at)));
    const previous = JSON.stringify({ version: row.version, digest: row.digest, manifest: baseManifest, resources } satisfies PreviousRecord);
    const snapshot = JSON.stringify({ integrations: [...current.values()] } satisfies Snapshot);
    assertStepFits(previous, snapshot, `The upgrade of ${pkg.name} to ${pkg.version}`);
    statements.push(
      ...historyStatements(env.DB, row.id, {
        action: "upgraded",
        version: pkg.version,
        digest: pkg.digest,
        previous,
        snapshot,
        changed_at: at,
        changed_by: label,
      }),
      auditStatement(env.DB, {
        tenantId,
        actor: label,
        action: "blueprint.upgraded",
        target: pkg.name,
        details: {
          name: pkg.name,
          from_version: row.version,
          from_digest: row.digest,
          version: pkg.version,
          digest: pkg.digest,
          conflicts: result.plan.filter((e) => e.action === "conflict").map((e) => `${e.resource}:${e.key}`),
        },
      }),
    );
    statements.push(...(await blueprintAppStatements(env, label, tenantId, pkg.name, baseManifest.apps ?? [], pkg.manifest.apps ?? [])));
    assertBatchFits(statements, `The upgrade of ${pkg.name} to ${pkg.version}`);
    if (input.dry_run) return result;
    const gone = changes.deletes.map((d) => d.integration.id);
    const endpoints = await endpointsOfIntegrations(env.DB, gone);
    await atomically(env.DB, statements);
    await purgeIntegrationData(env, gone, endpoints);
    return { ...result, installation: fromInstallRow((await installRow(env.DB, tenantId, pkg.name))!) };
  });
}

// ---- rollback -----------------------------------------------------------------------------------------------------

/** Integration id → blueprint slug, from the resources of the record now and before the step. */
function slugsOf(...all: (Resources | null | undefined)[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of all) for (const [slug, id] of Object.entries(r?.integrations ?? {})) if (!out.has(id)) out.set(id, slug);
  return out;
}

/**
 * POST /v1/blueprints/installed/{scope}/{name}/rollback: undoes the latest step (install or upgrade)
 * still recorded. The owned integrations become exactly what the step's snapshot holds (fields, use
 * cases by id, environment ciphertexts); the record takes back the version, digest, base manifest
 * and resources it had. Rolling back an install removes the record and what it created. Each call
 * goes one step further back, as far as the last HISTORY_LIMIT steps.
 */
export async function rollback(env: Env, caller: Caller, tenantId: string, name: string, input: { dry_run: boolean; force: boolean }): Promise<PlanResult> {
  const label = callerLabel(caller);
  return withRounds(`Blueprint '${name}'`, async () => {
    const row = await requireInstallRow(env.DB, tenantId, name);
    const step = await env.DB.prepare("SELECT * FROM blueprint_install_history WHERE install_id = ? ORDER BY id DESC LIMIT 1").bind(row.id).first<HistoryRow>();
    if (!step) throw new AppError("CONFLICT", `No earlier state of '${name}' is kept (rollback undoes at most the last ${HISTORY_LIMIT} steps)`, { name });
    const previous = step.previous ? (JSON.parse(step.previous) as PreviousRecord) : null;
    const snapshot = JSON.parse(step.snapshot) as Snapshot;
    const resources = resourcesOf(row);
    const ids = [...new Set([...Object.values(resources.integrations), ...snapshot.integrations.map((s) => s.integration.id)])];
    const current = await integrationSnapshots(env.DB, tenantId, ids);
    if (!previous) await assertNoDependents(env.DB, tenantId, name);
    const slugs = slugsOf(resources, previous?.resources);
    const restore = planRestore(current, snapshot.integrations, slugs);
    // Use cases the tenant added that the snapshot does not hold would go: only when asked to.
    const kept = new Set(snapshot.integrations.flatMap((s) => s.integration.use_cases.map((uc) => uc.id)));
    const added = tenantAddedUseCases(current, resources, slugs).filter((uc) => !kept.has(uc.id));
    if (added.length > 0 && !input.force) {
      throw new AppError("CONFLICT", `Rolling back '${name}' would remove use cases the tenant added since; move them, or pass force: true`, { tenant_use_cases: added });
    }

    const perIntegration: PlanEntry[][] = [];
    const targetById = new Map(snapshot.integrations.map((s) => [s.integration.id, s]));
    for (const id of new Set([...targetById.keys(), ...current.keys()])) {
      const cur = current.get(id);
      const tgt = targetById.get(id);
      const configs = [cur?.integration.environment_config ?? [], tgt?.integration.environment_config ?? []];
      perIntegration.push(environmentEntries(cur ? await clearValues(env, cur) : {}, tgt ? await clearValues(env, tgt) : {}, secretKeys(...configs)));
    }
    const result: PlanResult = {
      name,
      version: previous?.version ?? null,
      digest: previous?.digest ?? null,
      from: { version: row.version, digest: row.digest },
      dry_run: input.dry_run,
      plan: sortPlan([...restore.entries, ...mergeEnvironmentEntries(perIntegration), ...appPlanEntries(manifestOf(row).apps ?? [], previous?.manifest.apps ?? [])]),
      warnings: added.length > 0 ? [`use cases the tenant added are removed too: ${added.map((a) => a.key).join(", ")}`] : [],
      installation: null,
    };
    const at = nowIso();
    const statements: D1PreparedStatement[] = [installUnchangedStatement(env.DB, row.id, row.revision)];
    // The apps go back to what the record before the step listed (none, when the install itself is undone).
    statements.push(...(previous ? await blueprintAppStatements(env, label, tenantId, name, manifestOf(row).apps ?? [], previous.manifest.apps ?? []) : [removeBlueprintAppsStatement(env.DB, tenantId, name)]));
    for (const state of restore.creates) statements.push(...createIntegrationStatements(env.DB, label, tenantId, state, at), ...restoreEnvironmentStatements(env.DB, state.id, targetById.get(state.id)!.environment, at));
    for (const { snapshot: cur, target } of restore.rewrites) {
      statements.push(...rewriteIntegrationStatements(env.DB, label, tenantId, cur.integration, cur.version, target, at), ...restoreEnvironmentStatements(env.DB, target.id, targetById.get(target.id)!.environment, at));
    }
    for (const cur of restore.unchanged) {
      statements.push(integrationUnchangedStatement(env.DB, cur.integration.id, cur.version), ...restoreEnvironmentStatements(env.DB, cur.integration.id, targetById.get(cur.integration.id)!.environment, at));
    }
    for (const cur of restore.deletes) statements.push(...deleteIntegrationStatements(env.DB, tenantId, cur.integration.id, cur.version));
    if (previous) {
      statements.push(
        env.DB
          .prepare("UPDATE blueprint_installs SET version = ?, digest = ?, manifest = ?, resources = ?, updated_at = ?, updated_by = ?, revision = revision + 1 WHERE id = ?")
          .bind(previous.version, previous.digest, JSON.stringify(previous.manifest), JSON.stringify(previous.resources), at, label, row.id),
        env.DB.prepare("DELETE FROM blueprint_install_history WHERE id = ?").bind(step.id),
      );
    } else {
      statements.push(env.DB.prepare("DELETE FROM blueprint_installs WHERE id = ?").bind(row.id));
    }
    statements.push(
      auditStatement(env.DB, {
        tenantId,
        actor: label,
        action: "blueprint.rolled_back",
        target: name,
        details: { name, from_version: row.version, from_digest: row.digest, version: previous?.version ?? null, digest: previous?.digest ?? null, undone: step.action },
      }),
    );
    assertBatchFits(statements, `The rollback of ${name}`);
    if (input.dry_run) return result;
    const gone = restore.deletes.map((d) => d.integration.id);
    const endpoints = await endpointsOfIntegrations(env.DB, gone);
    await atomically(env.DB, statements);
    await purgeIntegrationData(env, gone, endpoints);
    const after = previous ? await installRow(env.DB, tenantId, name) : null;
    return { ...result, installation: after ? fromInstallRow(after) : null };
  });
}

// ---- uninstall ------------------------------------------------------------------------------------------------------

/**
 * DELETE /v1/blueprints/installed/{scope}/{name}: removes the integrations the install owns (their
 * use cases, environment values and event log go with them; entities stay) and the record. Refused
 * with 409 while another installed blueprint requires it, and while the tenant has added use cases
 * of its own to those integrations, unless `force`.
 */
export async function uninstall(env: Env, caller: Caller, tenantId: string, name: string, input: { force: boolean; dry_run: boolean }): Promise<PlanResult> {
  const label = callerLabel(caller);
  return withRounds(`Blueprint '${name}'`, async () => {
    const row = await requireInstallRow(env.DB, tenantId, name);
    await assertNoDependents(env.DB, tenantId, name);
    const resources = resourcesOf(row);
    const current = await integrationSnapshots(env.DB, tenantId, Object.values(resources.integrations));
    const slugs = slugsOf(resources);
    const added = tenantAddedUseCases(current, resources, slugs);
    if (added.length > 0 && !input.force) {
      throw new AppError("CONFLICT", `The tenant added use cases to the integrations of '${name}'; they would be removed with them. Move them, or pass force=true`, { tenant_use_cases: added });
    }
    const restore = planRestore(current, [], slugs);
    const perIntegration: PlanEntry[][] = [];
    for (const cur of current.values()) perIntegration.push(environmentEntries(await clearValues(env, cur), {}, secretKeys(cur.integration.environment_config)));
    const result: PlanResult = {
      name,
      version: null,
      digest: null,
      from: { version: row.version, digest: row.digest },
      dry_run: input.dry_run,
      plan: sortPlan([...restore.entries, ...mergeEnvironmentEntries(perIntegration)]),
      warnings: added.length > 0 ? [`use cases the tenant added are removed too: ${added.map((a) => a.key).join(", ")}`] : [],
      installation: null,
    };
    const statements = [
      installUnchangedStatement(env.DB, row.id, row.revision),
      ...[...current.values()].flatMap((cur) => deleteIntegrationStatements(env.DB, tenantId, cur.integration.id, cur.version)),
      env.DB.prepare("DELETE FROM blueprint_installs WHERE id = ?").bind(row.id),
      removeBlueprintAppsStatement(env.DB, tenantId, name),
      auditStatement(env.DB, {
        tenantId,
        actor: label,
        action: "blueprint.uninstalled",
        target: name,
        details: { name, version: row.version, digest: row.digest, integrations: [...current.keys()], forced: input.force && added.length > 0 },
      }),
    ];
    assertBatchFits(statements, `The removal of ${name}`);
    if (input.dry_run) return result;
    const gone = [...current.values()].map((cur) => cur.integration.id);
    const endpoints = await endpointsOfIntegrations(env.DB, gone);
    await atomically(env.DB, statements);
    await purgeIntegrationData(env, gone, endpoints);
    return result;
  });
}

/**
 * Deleted integrations take their per-event data along (Durable Objects, not cascading D1 rows):
 * their event logs, the deliveries of their endpoints (read before the D1 delete) and their access logs.
 */
async function purgeIntegrationData(env: Pick<Env, "EVENT_LOG" | "OUTBOUND_ENDPOINT"> & Partial<Pick<Env, "EVENT_LOG_SHARDS">> & AccessLogEnv, integrationIds: string[], endpoints: { id: string }[]) {
  await Promise.all([purgeEventLogs(env, integrationIds), purgeEndpoints(env, endpoints.map((e) => e.id)), purgeAccessLogs(env, integrationIds)]);
}
