// Apps in a tenant: install (resolve, verify, grant, configure), change, remove, and run an installed
// app's action in the sandbox with the tenant's grants, configuration and state, recording every run.
import { Validator } from "@cfworker/json-schema";
import { unpackBundle } from "../../apps-sdk/src/blueprint/bundle";
import { PackageError } from "../../apps-sdk/src/blueprint/manifest";
import { digestOf } from "../../apps-sdk/src/blueprint/signing";
import { AppManifest } from "../../apps-sdk/src/app/manifest";
import { readAppPackage } from "../../apps-sdk/src/app/package";
import { assertTrusted } from "../registry/trust";
import { fetchVerifiedArchive, packageProblem } from "../registry/verify";
import type { Caller } from "../platform/app";
import { callerLabel } from "../platform/app";
import { decryptValue, encryptValue } from "../platform/crypto";
import { destinationPolicy } from "../platform/destination";
import { AppError } from "../platform/errors";
import { newId, nowIso } from "../platform/ids";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { fetchBundle } from "../registry/client";
import { grantProblem } from "./gateway";
import { RunState } from "./run-state";
import { isolateId, runAction } from "./sandbox";
import { appStateName } from "./state-do";
import type { AppInstallation, AppInstallRequest, AppPatchRequest, RunTrigger } from "./schema";
import type { RunLimits, RunResult } from "./schema";

export type AppsEnv = Pick<Env, "DB" | "REGISTRY" | "LOADER" | "APP_STATE" | "SECRETS_KEY" | "OUTBOUND_ALLOWED_PRIVATE_HOSTS" | "OUTBOUND_DNS_CHECK">;

/** What a masked configuration value reads as. */
export const CONFIG_MASK = "*****";
/** Configuration keys treated as secrets even when the schema does not mark them writeOnly. */
const SECRET_KEY = /secret|passw|pwd|pass$|token|api[_-]?key|private|credential|auth|bearer|cert|signature|(^|_)key$/i;
const MAX_CONFIG_BYTES = 64 * 1024;

interface InstallRow {
  tenant_id: string;
  name: string;
  version_range: string;
  version: string;
  digest: string;
  manifest: string;
  grants: string;
  config: string | null;
  installed_via: string | null;
  installed_at: string;
  installed_by: string;
  updated_at: string;
  updated_by: string;
}

// ---- fetching and verifying ---------------------------------------------------------------------

/** An app version the host verified itself (publisher, key, signature, digest) and read. */
export interface VerifiedApp {
  name: string;
  version: string;
  digest: string;
  manifest: AppManifest;
  source: string;
  warnings: string[];
}

/** Reads a verified archive's app.json and module. */
function readVerified(archive: Uint8Array, label: string) {
  try {
    return readAppPackage(unpackBundle(archive));
  } catch (err) {
    if (err instanceof PackageError) throw packageProblem(err, label);
    throw err;
  }
}

/** Resolves `spec` among the registry's versions of app `name`, downloads and verifies it in the host. */
export async function fetchVerifiedApp(env: Pick<Env, "REGISTRY">, name: string, spec: string): Promise<VerifiedApp> {
  const { version, digest, archive, label, warnings } = await fetchVerifiedArchive(env, name, spec, "app");
  const { manifest, source } = readVerified(archive, label);
  if (manifest.name !== name || manifest.version !== version) throw new AppError("UNPROCESSABLE", `${label}: the bundle's app.json is ${manifest.name}@${manifest.version}`);
  sources.set(digest, source);
  return { name, version, digest, manifest, source, warnings };
}

/**
 * Bundles by digest, so a warm host isolate builds a cold app isolate without the registry. Bounded:
 * the oldest entry goes first. A miss re-downloads the archive and checks it is the installed digest.
 */
const sources = new (class extends Map<string, string> {
  override set(key: string, value: string) {
    if (!this.has(key) && this.size >= 32) this.delete(this.keys().next().value!);
    return super.set(key, value);
  }
})();

async function sourceOf(env: Pick<Env, "REGISTRY">, row: Pick<InstallRow, "name" | "version" | "digest">): Promise<string> {
  const cached = sources.get(row.digest);
  if (cached !== undefined) return cached;
  const archive = await fetchBundle(env, row.name, row.version);
  if (!archive) throw new AppError("APP_FAILED", `${row.name}@${row.version} cannot be downloaded from the registry`);
  const digest = await digestOf(archive);
  if (digest !== row.digest) throw new AppError("DIGEST_MISMATCH", `${row.name}@${row.version}: the registry's archive is ${digest}, the installed one ${row.digest}`);
  const { source } = readVerified(archive, `${row.name}@${row.version}`);
  sources.set(digest, source);
  return source;
}

// ---- checks -------------------------------------------------------------------------------------

const declaredHosts = (manifest: AppManifest) => [...new Set(manifest.actions.flatMap((a) => a.permissions.hosts))];

/** Whether `host` may be granted under the app's declarations: a concrete host they cover, or one of the declared entries itself (a "*.domain" too). */
const grantable = (declared: string[], host: string) => declared.includes(host.toLowerCase()) || grantProblem(`https://${host}/`, declared) === null;

/** Granted hosts must be among those the app declares (422 naming each other one). */
export function assertGrantable(manifest: AppManifest, hosts: string[], path = "grants.hosts") {
  const declared = declaredHosts(manifest);
  const extra = hosts.map((host, i) => ({ host, i })).filter(({ host }) => !grantable(declared, host));
  if (extra.length > 0) {
    throw new AppError(
      "UNPROCESSABLE",
      `${manifest.name} does not declare ${extra.map((e) => e.host).join(", ")}; it asks for ${declared.join(", ") || "no hosts"}`,
      extra.map(({ host, i }) => ({ path: `${path}.${i}`, message: `'${host}' is not among the hosts the app declares`, requested_hosts: declared })),
    );
  }
}

/**
 * The schema without regular expressions (`pattern`, `patternProperties`, `format: "regex"`): they
 * would run with backtracking in the host on values the same party may choose. The host checks
 * structure and types; the app's own zod schema checks patterns inside its sandbox.
 */
function withoutPatterns(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutPatterns);
  if (!schema || typeof schema !== "object") return schema;
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([k, v]) => k !== "pattern" && k !== "patternProperties" && !(k === "format" && v === "regex"))
      .map(([k, v]) => [k, withoutPatterns(v)]),
  );
}

/** The configuration must satisfy the app's config schema (422 with paths), within a size bound. */
function assertConfig(manifest: AppManifest, config: Record<string, unknown>) {
  const bytes = new TextEncoder().encode(JSON.stringify(config)).byteLength;
  if (bytes > MAX_CONFIG_BYTES) throw new AppError("PAYLOAD_TOO_LARGE", `The configuration is ${bytes} bytes; at most ${MAX_CONFIG_BYTES}`);
  if (!manifest.config_schema) return;
  let result;
  try {
    result = new Validator(withoutPatterns(manifest.config_schema) as never, "2020-12", false).validate(config);
  } catch (err) {
    // A schema the validator cannot use (a $ref cycle, say) is the app's fault, never a 500.
    throw new AppError("UNPROCESSABLE", `${manifest.name}'s config schema cannot be applied: ${(err as Error).message}`.slice(0, 500));
  }
  if (!result.valid) {
    throw new AppError(
      "UNPROCESSABLE",
      `The configuration does not match ${manifest.name}'s config schema`,
      result.errors.filter((e) => e.keyword !== "properties").slice(0, 20).map((e) => ({ path: `config${e.instanceLocation.replace(/^#/, "").replaceAll("/", ".")}`, message: e.error })),
    );
  }
}

type Schema = { properties?: Record<string, Schema>; items?: Schema; writeOnly?: boolean } | undefined;

/** Whether a value is secret: under a secret-looking key or a `writeOnly` schema, at any depth. */
const isSecret = (key: string, schema: Schema) => SECRET_KEY.test(key) || schema?.writeOnly === true;

const childSchema = (schema: Schema, key: string): Schema =>
  schema?.properties && Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;

/** The configuration with every secret value (at any depth) replaced by CONFIG_MASK. */
function maskConfig(value: unknown, schema: Schema): unknown {
  if (Array.isArray(value)) return value.map((v) => maskConfig(v, schema?.items));
  if (!value || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isSecret(k, childSchema(schema, k)) ? CONFIG_MASK : maskConfig(v, childSchema(schema, k))]));
}

/** A configuration sent back with masked values: each CONFIG_MASK keeps the stored value at its path. */
function unmaskConfig(sent: unknown, stored: unknown): unknown {
  if (sent === CONFIG_MASK) return stored;
  if (Array.isArray(sent)) return sent.map((v, i) => unmaskConfig(v, Array.isArray(stored) ? stored[i] : undefined));
  if (!sent || typeof sent !== "object") return sent;
  const from = stored && typeof stored === "object" && !Array.isArray(stored) ? (stored as Record<string, unknown>) : {};
  return Object.fromEntries(Object.entries(sent).map(([k, v]) => [k, unmaskConfig(v, Object.hasOwn(from, k) ? from[k] : undefined)]));
}

const configContext = (tenantId: string, name: string) => `app-config:${tenantId}:${name}`;

async function readConfig(env: Pick<Env, "SECRETS_KEY">, row: Pick<InstallRow, "tenant_id" | "name" | "config">): Promise<Record<string, unknown>> {
  if (!row.config) return {};
  return JSON.parse(await decryptValue(env.SECRETS_KEY, row.config, configContext(row.tenant_id, row.name))) as Record<string, unknown>;
}

const sealConfig = (env: Pick<Env, "SECRETS_KEY">, tenantId: string, name: string, config: Record<string, unknown>) =>
  encryptValue(env.SECRETS_KEY, JSON.stringify(config), configContext(tenantId, name));

// ---- installs -----------------------------------------------------------------------------------

async function view(env: Pick<Env, "SECRETS_KEY">, row: InstallRow): Promise<AppInstallation> {
  const manifest = JSON.parse(row.manifest) as AppManifest;
  const config = await readConfig(env, row);
  return {
    name: row.name,
    version: row.version,
    version_range: row.version_range,
    digest: row.digest,
    description: manifest.description,
    actions: manifest.actions.map((a) => ({ name: a.name, description: a.description, input_schema: a.input_schema, output_schema: a.output_schema, hosts: a.permissions.hosts })),
    requested_hosts: declaredHosts(manifest),
    grants: JSON.parse(row.grants) as { hosts: string[] },
    config: maskConfig(config, manifest.config_schema as Schema) as Record<string, unknown>,
    installed_via: row.installed_via,
    installed_at: row.installed_at,
    installed_by: row.installed_by,
    updated_at: row.updated_at,
    updated_by: row.updated_by,
  };
}

async function loadInstall(db: D1Database, tenantId: string, name: string): Promise<InstallRow> {
  const row = await db.prepare("SELECT * FROM app_installs WHERE tenant_id = ? AND name = ?").bind(tenantId, name).first<InstallRow>();
  if (!row) throw new AppError("APP_NOT_INSTALLED", `${name} is not installed in this tenant; install it with POST /v1/apps/install`, { name });
  return row;
}

/** POST /v1/apps/install: resolve, verify, check grants and configuration, store (201), or only check (dry_run). */
export async function installApp(env: AppsEnv, caller: Caller, tenantId: string, input: AppInstallRequest): Promise<{ installation: AppInstallation; warnings: string[] }> {
  await assertTrusted(env.DB, tenantId, input.name);
  const existing = await env.DB.prepare("SELECT 1 FROM app_installs WHERE tenant_id = ? AND name = ?").bind(tenantId, input.name).first();
  if (existing) throw new AppError("CONFLICT", `${input.name} is already installed; change it with PATCH /v1/apps/installed/${input.name}`, { name: input.name });
  const app = await fetchVerifiedApp(env, input.name, input.version);
  assertGrantable(app.manifest, input.grants.hosts);
  assertConfig(app.manifest, input.config);
  const at = nowIso();
  const by = callerLabel(caller);
  const row: InstallRow = {
    tenant_id: tenantId, name: app.name, version_range: input.version, version: app.version, digest: app.digest, manifest: JSON.stringify(app.manifest),
    grants: JSON.stringify({ hosts: input.grants.hosts }), config: await sealConfig(env, tenantId, app.name, input.config), installed_via: null,
    installed_at: at, installed_by: by, updated_at: at, updated_by: by,
  };
  if (!input.dry_run) {
    try {
      await env.DB.prepare(
        `INSERT INTO app_installs (tenant_id, name, version_range, version, digest, manifest, grants, config, installed_via, installed_at, installed_by, updated_at, updated_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
        .bind(row.tenant_id, row.name, row.version_range, row.version, row.digest, row.manifest, row.grants, row.config, row.installed_via, at, by, at, by)
        .run();
    } catch (err) {
      if (/UNIQUE constraint failed/.test(String(err))) throw new AppError("CONFLICT", `${input.name} is already installed`, { name: input.name });
      throw err;
    }
  }
  return { installation: await view(env, row), warnings: app.warnings };
}

export async function listApps(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, page: PageQuery) {
  // Names are not ULIDs: the cursor is the last name, kept in the same opaque form.
  const after = page.cursor ? decodeNameCursor(page.cursor) : "";
  const { results } = await env.DB.prepare("SELECT * FROM app_installs WHERE tenant_id = ? AND name > ? ORDER BY name LIMIT ?").bind(tenantId, after, page.limit + 1).all<InstallRow>();
  const more = results.length > page.limit;
  const rows = more ? results.slice(0, page.limit) : results;
  return { installed: await Promise.all(rows.map((r) => view(env, r))), next_cursor: more ? btoa(JSON.stringify({ name: rows.at(-1)!.name })) : null };
}

function decodeNameCursor(cursor: string): string {
  try {
    const { name } = JSON.parse(atob(cursor)) as { name?: unknown };
    if (typeof name === "string" && name.length <= 104) return name;
  } catch {
    // answered below
  }
  throw new AppError("INVALID_CURSOR", "cursor is not one this API issued");
}

export async function getApp(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, name: string): Promise<AppInstallation> {
  return view(env, await loadInstall(env.DB, tenantId, name));
}

/** PATCH: a new version (resolved and verified), grants, configuration; unchanged parts stay. */
export async function patchApp(env: AppsEnv, caller: Caller, tenantId: string, name: string, input: AppPatchRequest): Promise<AppInstallation> {
  const row = await loadInstall(env.DB, tenantId, name);
  let manifest = JSON.parse(row.manifest) as AppManifest;
  let { version, digest, version_range } = row;
  if (input.version !== undefined) {
    await assertTrusted(env.DB, tenantId, name);
    const app = await fetchVerifiedApp(env, name, input.version);
    ({ manifest, version, digest } = app);
    version_range = input.version;
  }
  const hosts = input.grants?.hosts ?? (JSON.parse(row.grants) as { hosts: string[] }).hosts;
  // A new version may declare fewer hosts: the kept grants must still be among them.
  assertGrantable(manifest, hosts);
  const stored = await readConfig(env, row);
  let config = stored;
  if (input.config !== undefined) {
    // A masked value sent back (e.g. from GET), at any depth, keeps the stored secret.
    config = unmaskConfig(input.config, stored) as Record<string, unknown>;
  }
  assertConfig(manifest, config);
  const by = callerLabel(caller);
  const sealed = await sealConfig(env, tenantId, name, config);
  const at = nowIso();
  const result = await env.DB.prepare(
    `UPDATE app_installs SET version_range = ?, version = ?, digest = ?, manifest = ?, grants = ?, config = ?, updated_at = ?, updated_by = ?
     WHERE tenant_id = ? AND name = ? AND updated_at = ?`,
  )
    .bind(version_range, version, digest, JSON.stringify(manifest), JSON.stringify({ hosts }), sealed, at, by, tenantId, name, row.updated_at)
    .run();
  if (result.meta.changes === 0) throw new AppError("CONFLICT", `${name} changed during this request; retry`, { name });
  return view(env, { ...row, version_range, version, digest, manifest: JSON.stringify(manifest), grants: JSON.stringify({ hosts }), config: sealed, updated_at: at, updated_by: by });
}

/** Use cases of the tenant whose configuration names the app (pre_mapping, transform, pull). */
async function useCasesNaming(db: D1Database, tenantId: string, name: string): Promise<{ id: string; slug: string; integration_id: string }[]> {
  const quoted = JSON.stringify(name).replace(/[\\%_]/g, (ch) => `\\${ch}`);
  const { results } = await db
    .prepare("SELECT id, slug, integration_id FROM use_cases WHERE tenant_id = ? AND configuration LIKE ? ESCAPE '\\' LIMIT 20")
    .bind(tenantId, `%"app":${quoted}%`)
    .all<{ id: string; slug: string; integration_id: string }>();
  return results;
}

/** DELETE: removes the install and forgets its state; refused (409) while use cases or a blueprint use it, unless forced. */
export async function removeApp(env: AppsEnv, tenantId: string, name: string, force: boolean): Promise<void> {
  const row = await loadInstall(env.DB, tenantId, name);
  if (!force) {
    if (row.installed_via) throw new AppError("CONFLICT", `${name} was installed by ${row.installed_via}; uninstall that blueprint, or pass force=true`, { installed_via: row.installed_via });
    const users = await useCasesNaming(env.DB, tenantId, name);
    if (users.length > 0) throw new AppError("CONFLICT", `${name} is used by ${users.length} use case(s); change them first, or pass force=true`, { use_cases: users });
  }
  // State first: a failure leaves the app installed (retry the DELETE), never a removed app whose old
  // state a later install would inherit.
  await env.APP_STATE.getByName(appStateName(tenantId, name)).clear();
  await env.DB.prepare("DELETE FROM app_installs WHERE tenant_id = ? AND name = ?").bind(tenantId, name).run();
}

// ---- running ------------------------------------------------------------------------------------

export interface RunOptions {
  trigger: RunTrigger;
  integration_id?: string | null;
  event_id?: string | null;
  /** Keep ctx.state writes until commit() (pull runs: committed after their events are stored). */
  buffer_state?: boolean;
  /** Tighter limits for this trigger (e.g. a transform inside the shared queue consumer). */
  limits?: Partial<RunLimits>;
}

export interface InstalledRun {
  run_id: string;
  version: string;
  result: RunResult;
  state: RunState;
}

/**
 * Runs `action` of the tenant's installed app `name`: its grants, its decrypted configuration and
 * its (tenant, app) state, in the sandbox; the run is recorded for monitoring. Throws only for an app
 * that is not installed or an action it does not have; everything the app does is in `result`.
 */
export async function runInstalled(env: AppsEnv, tenantId: string, name: string, action: string, input: unknown, options: RunOptions): Promise<InstalledRun> {
  const row = await loadInstall(env.DB, tenantId, name);
  const manifest = JSON.parse(row.manifest) as AppManifest;
  if (!manifest.actions.some((a) => a.name === action)) {
    throw new AppError("NOT_FOUND", `${name}@${row.version} has no action '${action}' (it has ${manifest.actions.map((a) => a.name).join(", ")})`, { actions: manifest.actions.map((a) => a.name) });
  }
  const state = new RunState(env.APP_STATE.getByName(appStateName(tenantId, name)), options.buffer_state ?? false);
  const started = nowIso();
  const result = await runAction(env.LOADER, {
    id: isolateId(row.digest, tenantId),
    source: () => sourceOf(env, row),
    actionName: action,
    input,
    grants: JSON.parse(row.grants) as { hosts: string[] },
    policy: destinationPolicy(env),
    context: { config: await readConfig(env, row), tenant_id: tenantId, integration_id: options.integration_id ?? null },
    state,
    ...(options.limits && { limits: options.limits }),
  });
  const runId = newId();
  await recordRun(env.DB, { id: runId, tenantId, app: name, version: row.version, action, options, result, started });
  return { run_id: runId, version: row.version, result, state };
}

/** A failed run as the error an HTTP caller gets: its code, message, the limit, the app's log lines. */
export function runError(result: Extract<RunResult, { ok: false }>, runId: string): AppError {
  return new AppError(result.code, result.message, { run_id: runId, ...(result.limit && { limit: result.limit }), logs: result.logs, duration_ms: result.duration_ms });
}

const MAX_RECORDED_ERROR = 2000;
/** Runs kept per (tenant, app), newest first; older ones also expire after 30 days. */
export const RUNS_KEPT_PER_APP = 1000;

async function recordRun(
  db: D1Database,
  run: { id: string; tenantId: string; app: string; version: string; action: string; options: RunOptions; result: RunResult; started: string },
): Promise<void> {
  const { result } = run;
  try {
    await db.batch([
      db
      .prepare(
        `INSERT INTO app_runs (id, tenant_id, app, version, action, trigger, integration_id, event_id, outcome, error, exceeded_limit, duration_ms, logs, dropped_logs, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        run.id, run.tenantId, run.app, run.version, run.action, run.options.trigger, run.options.integration_id ?? null, run.options.event_id ?? null,
        result.ok ? "ok" : result.code, result.ok ? null : result.message.slice(0, MAX_RECORDED_ERROR), result.ok ? null : (result.limit ?? null),
        result.duration_ms, JSON.stringify(result.logs), result.dropped_logs, run.started,
      ),
      // At most RUNS_KEPT_PER_APP runs per (tenant, app): a busy app cannot grow the shared database.
      db
        .prepare(
          `DELETE FROM app_runs WHERE tenant_id = ?1 AND app = ?2 AND id <= (SELECT id FROM app_runs WHERE tenant_id = ?1 AND app = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)`,
        )
        .bind(run.tenantId, run.app, RUNS_KEPT_PER_APP),
    ]);
  } catch (err) {
    // The run's own outcome stands; a lost record is logged, never a failed run.
    console.error(JSON.stringify({ level: "error", message: "app run not recorded", run_id: run.id, app: run.app, error: String((err as Error)?.message ?? err) }));
  }
}

interface RunRow {
  id: string;
  tenant_id?: string;
  app: string;
  version: string;
  action: string;
  trigger: RunTrigger;
  integration_id: string | null;
  event_id: string | null;
  outcome: string;
  error: string | null;
  exceeded_limit: string | null;
  duration_ms: number;
  logs: string;
  dropped_logs: number;
  started_at: string;
}

/** GET /v1/apps/runs: the tenant's runs, newest first, filtered. */
export async function listRuns(db: D1Database, tenantId: string, q: PageQuery & { app?: string; action?: string; trigger?: RunTrigger; outcome?: string }) {
  const before = decodeCursor(q.cursor);
  const where = ["tenant_id = ?"];
  const binds: unknown[] = [tenantId];
  if (before) (where.push("id < ?"), binds.push(before));
  for (const key of ["app", "action", "trigger", "outcome"] as const) {
    if (q[key] !== undefined) (where.push(`${key} = ?`), binds.push(q[key]));
  }
  const { results } = await db.prepare(`SELECT * FROM app_runs WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ?`).bind(...binds, q.limit + 1).all<RunRow>();
  const { items, next_cursor } = toPage(results, q.limit, ({ tenant_id: _, ...r }) => ({ ...r, logs: JSON.parse(r.logs) as { level: string; message: string }[] }));
  return { runs: items, next_cursor };
}

// ---- apps a blueprint brings --------------------------------------------------------------------

/** An app a blueprint lists (`apps` in blueprint.json): name, version range, the hosts it grants. */
export interface BlueprintApp {
  name: string;
  version: string;
  grants?: { hosts: string[] };
}

/**
 * The statements that bring a tenant's apps from what blueprint `via` listed (`base`) to what it lists
 * now (`incoming`), for the blueprint's own all-or-nothing batch. New and changed apps are resolved and
 * verified here (trusted publisher, signature, digest, grants within what they declare); an app the
 * tenant installed itself is never touched; an app the blueprint no longer lists is removed. Apps a
 * blueprint installs start with an empty configuration (PATCH /v1/apps/installed/… sets it).
 */
export async function blueprintAppStatements(
  env: Pick<Env, "DB" | "REGISTRY" | "SECRETS_KEY">,
  by: string,
  tenantId: string,
  via: string,
  base: BlueprintApp[],
  incoming: BlueprintApp[],
): Promise<D1PreparedStatement[]> {
  const statements: D1PreparedStatement[] = [];
  const before = new Map(base.map((a) => [a.name, a]));
  for (const [i, wanted] of incoming.entries()) {
    const was = before.get(wanted.name);
    const blueprintHosts = wanted.grants?.hosts ?? [];
    if (was && was.version === wanted.version && JSON.stringify(was.grants?.hosts ?? []) === JSON.stringify(blueprintHosts)) continue;
    await assertTrusted(env.DB, tenantId, wanted.name);
    const app = await fetchVerifiedApp(env, wanted.name, wanted.version);
    assertGrantable(app.manifest, blueprintHosts, `apps.${i}.grants.hosts`);
    // Hosts the tenant granted itself since (its own SAP system, say) survive an upgrade or rollback
    // while the new version still declares them.
    const current = await env.DB.prepare("SELECT grants FROM app_installs WHERE tenant_id = ? AND name = ? AND installed_via = ?").bind(tenantId, app.name, via).first<{ grants: string }>();
    const own = current ? ((JSON.parse(current.grants) as { hosts?: string[] }).hosts ?? []) : [];
    const declared = declaredHosts(app.manifest);
    const hosts = [...new Set([...blueprintHosts, ...own.filter((h) => grantable(declared, h))])];
    const at = nowIso();
    statements.push(
      env.DB.prepare(
        `INSERT INTO app_installs (tenant_id, name, version_range, version, digest, manifest, grants, config, installed_via, installed_at, installed_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10, ?11)
         ON CONFLICT (tenant_id, name) DO UPDATE SET version_range = ?3, version = ?4, digest = ?5, manifest = ?6, grants = ?7, updated_at = ?10, updated_by = ?11
         WHERE app_installs.installed_via = ?9`,
      ).bind(tenantId, app.name, wanted.version, app.version, app.digest, JSON.stringify(app.manifest), JSON.stringify({ hosts }), await sealConfig(env, tenantId, app.name, {}), via, at, by),
    );
  }
  for (const name of before.keys()) {
    if (!incoming.some((a) => a.name === name)) statements.push(env.DB.prepare("DELETE FROM app_installs WHERE tenant_id = ? AND name = ? AND installed_via = ?").bind(tenantId, name, via));
  }
  return statements;
}

/** The apps installed in a tenant, each with the blueprint that installed it (null: installed directly). */
export async function installedApps(db: D1Database, tenantId: string): Promise<Map<string, string | null>> {
  const { results } = await db.prepare("SELECT name, installed_via FROM app_installs WHERE tenant_id = ?").bind(tenantId).all<{ name: string; installed_via: string | null }>();
  return new Map(results.map((r) => [r.name, r.installed_via]));
}

/** Removes every app blueprint `via` installed (the blueprint is being uninstalled). */
export const removeBlueprintAppsStatement = (db: D1Database, tenantId: string, via: string) =>
  db.prepare("DELETE FROM app_installs WHERE tenant_id = ? AND installed_via = ?").bind(tenantId, via);

/** App runs are kept this long, then removed by the minute's retention job, oldest first, in bounded batches. */
export const APP_RUN_RETENTION = { days: 30, rowsPerRun: 1000 } as const;

export async function deleteExpiredRuns(db: D1Database, now = Date.now()): Promise<void> {
  const before = new Date(now - APP_RUN_RETENTION.days * 86_400_000).toISOString();
  await db.prepare("DELETE FROM app_runs WHERE id IN (SELECT id FROM app_runs WHERE started_at < ? ORDER BY started_at LIMIT ?)").bind(before, APP_RUN_RETENTION.rowsPerRun).run();
}
