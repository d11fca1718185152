// The registry's logic: publishers and their keys, publishing signed immutable versions (blueprints
// and apps), search and reads, deprecation and yanking. Plain functions over (env or db, caller,
// input); no Hono context.
import { base64url } from "jose";
import semver from "semver";
import { APP_MANIFEST_FILE } from "../../apps-sdk/src/app/manifest";
import { readPublishableApp } from "../../apps-sdk/src/app/publishable";
import { assertNoSecrets, BUNDLE_LIMITS, readManifest, readReadme, resolveConfigurations, unpackBundle, type PackageFiles } from "../../apps-sdk/src/blueprint/bundle";
import { MANIFEST_FILE, PACKAGE_NAME_PATTERN } from "../../apps-sdk/src/blueprint/manifest";
import { keyIdOf, signatureKeyId, SignedPackage, verifyPackage, type PublicKeyJwk } from "../../apps-sdk/src/blueprint/signing";
import { bundleKey, discardBundle, storeBundle } from "./bundles";
import { RegistryError } from "./errors";
import type {
  Caller,
  PackageDocument,
  PackageKind,
  Published,
  Publisher,
  PublisherKey,
  RegistryEnv,
  SearchHit,
  SearchPage,
  SearchQuery,
  VersionDocument,
  VersionSummary,
} from "./schema";

/** Publisher names only the operator (the admin token) may register: the platform's own packages. */
export const RESERVED_PREFIX = "@erp-edge";
/** How many keys one publisher may hold (keys are never deleted, so rotation adds up). */
export const MAX_KEYS_PER_PUBLISHER = 20;
const PLATFORM = "platform";

/**
 * True for names the operator keeps: `@erp-edge…` and its look-alikes (`@erpedge`, `@erp--edge`,
 * `@3rp-edg3`), compared without hyphens and with the digits that pass for letters read as letters.
 */
export function isReservedPublisher(name: string): boolean {
  const skeleton = name.slice(1).replace(/-/g, "").replace(/3/g, "e").replace(/[69]/g, "g").replace(/0/g, "o").replace(/1/g, "l");
  return skeleton.startsWith(RESERVED_PREFIX.slice(1).replace(/-/g, ""));
}

const now = () => new Date().toISOString();
const isUniqueViolation = (err: unknown) => /UNIQUE constraint failed/i.test(String((err as Error)?.message ?? err));

/** The scope of a package name: `@acme/hello-erp` -> `@acme`. */
export const publisherOf = (name: string) => name.slice(0, name.indexOf("/"));

// ---- callers ------------------------------------------------------------------------------------

/**
 * The owner a caller publishes as: its tenant id (with the registry:publish scope), or 'platform'
 * for the operator. The host itself only reads.
 */
function publishingOwner(caller: Caller): string {
  if (caller.kind === "admin") return PLATFORM;
  if (caller.kind === "tenant" && caller.scopes.includes("registry:publish")) return caller.tenant_id;
  throw new RegistryError("FORBIDDEN", "Publishing needs a tenant token with the 'registry:publish' scope, or the admin token", { required_scope: "registry:publish" });
}

function assertOwner(caller: Caller, publisher: { name: string; owner: string }): void {
  if (publishingOwner(caller) !== publisher.owner) throw new RegistryError("FORBIDDEN", `Publisher ${publisher.name} belongs to another account`);
}

// ---- rows ---------------------------------------------------------------------------------------

interface PublisherRow {
  name: string;
  owner: string;
  created_at: string;
}
interface KeyRow {
  publisher: string;
  kid: string;
  jwk: string;
  created_at: string;
}
interface PackageRow {
  name: string;
  kind: PackageKind;
  publisher: string;
  title: string;
  summary: string;
  keywords: string;
  created_at: string;
  updated_at: string;
}
interface VersionRow {
  name: string;
  version: string;
  manifest: string;
  digest: string;
  signature: string;
  key_id: string;
  size: number;
  published_at: string;
  published_by: string;
  yanked: number;
  yank_reason: string | null;
  deprecated: number;
  deprecation_message: string | null;
  readme: string | null;
}

const keyFromRow = (row: KeyRow): PublisherKey => ({ kid: row.kid, public_key: JSON.parse(row.jwk) as PublicKeyJwk, created_at: row.created_at });

/** Tenant ids are not shown to other tenants: the owner is visible to itself, the operator and the host. */
function publisherFromRow(row: PublisherRow, keys: KeyRow[], caller: Caller): Publisher {
  const visible = row.owner === PLATFORM || caller.kind !== "tenant" || caller.tenant_id === row.owner;
  return { name: row.name, owner: visible ? row.owner : null, keys: keys.map(keyFromRow), created_at: row.created_at };
}

type SummaryRow = Pick<VersionRow, "version" | "published_at" | "digest" | "yanked" | "yank_reason" | "deprecated" | "deprecation_message">;

const summaryFromRow = (row: SummaryRow): VersionSummary => ({
  version: row.version,
  published_at: row.published_at,
  digest: row.digest,
  yanked: row.yanked === 1,
  yank_reason: row.yank_reason,
  deprecated: row.deprecated === 1,
  deprecation_message: row.deprecation_message,
});

const keywordsOf = (row: { keywords: string }) => JSON.parse(row.keywords) as string[];

/** The text ?q= searches: name, title, summary and keywords, lower-cased. */
const searchText = (name: string, title: string, summary: string, keywords: string[]) => [name, title, summary, ...keywords].join("\n").toLowerCase();

// ---- versions -----------------------------------------------------------------------------------

const byVersion = (a: { version: string }, b: { version: string }) => semver.compare(a.version, b.version);

/** What `latest` means here: the highest version that is neither yanked nor a prerelease, if any. */
export function latestOf(versions: { version: string; yanked: boolean | number }[]): string | undefined {
  const candidates = versions.filter((v) => !v.yanked && semver.prerelease(v.version) === null).map((v) => v.version);
  return semver.rsort(candidates)[0];
}

// ---- publishers ---------------------------------------------------------------------------------

async function findPublisher(db: D1Database, name: string): Promise<PublisherRow | null> {
  return db.prepare("SELECT name, owner, created_at FROM publishers WHERE name = ?").bind(name).first<PublisherRow>();
}

async function requirePublisher(db: D1Database, name: string): Promise<PublisherRow> {
  const row = await findPublisher(db, name);
  if (!row) throw new RegistryError("NOT_FOUND", `No publisher ${name}`);
  return row;
}

async function keysOf(db: D1Database, publisher: string): Promise<KeyRow[]> {
  const { results } = await db.prepare("SELECT publisher, kid, jwk, created_at FROM publisher_keys WHERE publisher = ? ORDER BY created_at, kid").bind(publisher).all<KeyRow>();
  return results;
}

/** The stored form of a public key: only its public members, with its thumbprint as `kid`. */
async function canonicalKey(jwk: PublicKeyJwk): Promise<{ kid: string; jwk: PublicKeyJwk }> {
  const kid = await keyIdOf(jwk);
  if (jwk.kid !== undefined && jwk.kid !== kid) {
    throw new RegistryError("VALIDATION_FAILED", "Invalid request body", [{ path: "public_key.kid", message: `a key id must be the key's RFC 7638 thumbprint (${kid})` }]);
  }
  return { kid, jwk: { kty: "OKP", crv: "Ed25519", x: jwk.x, kid, alg: "EdDSA", use: "sig" } };
}

/** Registers a publisher with its first key; `@erp-edge*` names are the operator's only. */
export async function createPublisher(db: D1Database, caller: Caller, input: { name: string; public_key: PublicKeyJwk }): Promise<Publisher> {
  const owner = publishingOwner(caller);
  if (isReservedPublisher(input.name) && owner !== PLATFORM) {
    throw new RegistryError("FORBIDDEN", `Publisher names starting with ${RESERVED_PREFIX}, and names that look like it, are reserved for the platform`);
  }
  const { kid, jwk } = await canonicalKey(input.public_key);
  const createdAt = now();
  try {
    await db.batch([
      db.prepare("INSERT INTO publishers (name, owner, created_at) VALUES (?, ?, ?)").bind(input.name, owner, createdAt),
      db.prepare("INSERT INTO publisher_keys (publisher, kid, jwk, created_at) VALUES (?, ?, ?, ?)").bind(input.name, kid, JSON.stringify(jwk), createdAt),
    ]);
  } catch (err) {
    if (isUniqueViolation(err)) throw new RegistryError("CONFLICT", `Publisher ${input.name} is already registered`);
    throw err;
  }
  return { name: input.name, owner, keys: [{ kid, public_key: jwk, created_at: createdAt }], created_at: createdAt };
}

export async function getPublisher(db: D1Database, caller: Caller, name: string): Promise<Publisher> {
  const row = await requirePublisher(db, name);
  return publisherFromRow(row, await keysOf(db, name), caller);
}

/** Adds a key (rotation). Old keys stay: the versions they signed keep verifying. */
export async function addPublisherKey(db: D1Database, caller: Caller, name: string, publicKey: PublicKeyJwk): Promise<PublisherKey> {
  const publisher = await requirePublisher(db, name);
  assertOwner(caller, publisher);
  const { kid, jwk } = await canonicalKey(publicKey);
  const count = await db.prepare("SELECT COUNT(*) AS n FROM publisher_keys WHERE publisher = ?").bind(name).first<number>("n");
  if ((count ?? 0) >= MAX_KEYS_PER_PUBLISHER) throw new RegistryError("UNPROCESSABLE", `A publisher holds at most ${MAX_KEYS_PER_PUBLISHER} keys`);
  const createdAt = now();
  try {
    await db.prepare("INSERT INTO publisher_keys (publisher, kid, jwk, created_at) VALUES (?, ?, ?, ?)").bind(name, kid, JSON.stringify(jwk), createdAt).run();
  } catch (err) {
    if (isUniqueViolation(err)) throw new RegistryError("CONFLICT", `Key ${kid} is already a key of ${name}`);
    throw err;
  }
  return { kid, public_key: jwk, created_at: createdAt };
}

// ---- publishing ---------------------------------------------------------------------------------

/** The `{ name, version, digest }` a signature claims, read before it is verified (to find its key). */
function claimedPackage(signature: string): SignedPackage {
  try {
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(signature.split(".")[1] ?? ""))) as unknown;
    const parsed = SignedPackage.safeParse(payload);
    if (parsed.success) return parsed.data;
  } catch {
    // answered below
  }
  throw new RegistryError("SIGNATURE_INVALID", "The signature's payload is not { name, version, digest }");
}

/** The package's kind from the manifest file at its root: blueprint.json wins, else app.json. */
function kindOf(files: PackageFiles): PackageKind {
  if (Object.hasOwn(files, MANIFEST_FILE)) return "blueprint";
  if (Object.hasOwn(files, APP_MANIFEST_FILE)) return "app";
  throw new RegistryError("UNPROCESSABLE", `The archive holds neither ${MANIFEST_FILE} (a blueprint) nor ${APP_MANIFEST_FILE} (an app) at its root`, [
    { file: MANIFEST_FILE, path: "", message: `file not found in the package (nor ${APP_MANIFEST_FILE})` },
  ]);
}

/** What publishing stores of a package, whatever its kind: the packages row's listing and the version's manifest. */
interface PackageListing {
  name: string;
  version: string;
  title: string;
  summary: string;
  keywords: string[];
  manifest: unknown;
  /** README.md at the archive's root (readReadme: UTF-8, at most 256 KB), or null. */
  readme: string | null;
}

/** A package row's summary is at most this long, like a blueprint's `description.summary`. */
const MAX_SUMMARY_CHARS = 1000;

/** `text` cut to `max` characters (code points, so no surrogate pair is split), marked with an ellipsis. */
function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

/** A blueprint: blueprint.json valid, every `$file` reference resolving. */
function readBlueprintListing(files: PackageFiles): PackageListing {
  const manifest = readManifest(files);
  resolveConfigurations(manifest, files);
  return { name: manifest.name, version: manifest.version, title: manifest.title, summary: manifest.description.summary, keywords: manifest.keywords ?? [], manifest, readme: readReadme(files) };
}

/**
 * An app: app.json valid, its `main` module present and nothing else in the archive
 * (readPublishableApp, the check the CLI makes before signing; the host reads it again at install).
 * Its title is its name and its summary its description: app.json has no separate title.
 */
function readAppListing(files: PackageFiles): PackageListing {
  const { manifest } = readPublishableApp(files);
  return { name: manifest.name, version: manifest.version, title: manifest.name, summary: clip(manifest.description, MAX_SUMMARY_CHARS), keywords: [], manifest, readme: readReadme(files) };
}

const callerLabel = (caller: Caller) => (caller.kind === "tenant" ? `tenant:${caller.tenant_id}/token:${caller.token_id}` : caller.kind);

/**
 * Publishes one version. The signature is checked before the archive is opened: its claimed name
 * picks the publisher (which the caller must own, 403) and its header the key (one of that
 * publisher's, SIGNATURE_INVALID); then the digest and the signature (DIGEST_MISMATCH,
 * SIGNATURE_INVALID). Only then is the archive unpacked and its manifest validated (422 with
 * `{ file, path, message }`): blueprint.json for a blueprint, app.json and its main module for an
 * app; then compared with the signed name and version. A name keeps its first kind (409 otherwise),
 * and an existing version is 409: versions are immutable.
 *
 * Storage: the archive is written to R2 first, under a key that names its digest, then the package
 * and version rows in one D1 batch. A crash in between leaves an object no row names, and the next
 * upload of that version succeeds; a crash after the batch leaves a published version, and every
 * upload after it is 409. A row never names a missing object or an object with other bytes.
 */
export async function publish(env: RegistryEnv, caller: Caller, upload: { archive: Uint8Array; signature: string }): Promise<Published> {
  const db = env.REGISTRY_DB;
  publishingOwner(caller); // 403 before any work for a caller that may not publish at all
  const { archive, signature } = upload;
  if (archive.byteLength > BUNDLE_LIMITS.maxArchiveBytes) {
    throw new RegistryError("PAYLOAD_TOO_LARGE", `The archive is ${archive.byteLength} bytes; at most ${BUNDLE_LIMITS.maxArchiveBytes} are accepted`, { max_bytes: BUNDLE_LIMITS.maxArchiveBytes });
  }
  const claimed = claimedPackage(signature);
  const publisherName = publisherOf(claimed.name);
  const publisher = await findPublisher(db, publisherName);
  if (!publisher) throw new RegistryError("UNPROCESSABLE", `No publisher ${publisherName} is registered; register it with POST /v1/registry/publishers first`);
  assertOwner(caller, publisher);
  const kid = signatureKeyId(signature);
  const key = kid ? await db.prepare("SELECT jwk FROM publisher_keys WHERE publisher = ? AND kid = ?").bind(publisherName, kid).first<{ jwk: string }>() : null;
  if (!kid || !key) throw new RegistryError("SIGNATURE_INVALID", `The signature names key ${kid ?? "(none)"}, which is not a key of ${publisherName}`);
  const { digest } = await verifyPackage(signature, JSON.parse(key.jwk) as PublicKeyJwk, archive, claimed);

  const files = unpackBundle(archive);
  assertNoSecrets(files);
  const kind = kindOf(files);
  const listing = kind === "app" ? readAppListing(files) : readBlueprintListing(files);
  if (listing.name !== claimed.name || listing.version !== claimed.version) {
    const file = kind === "app" ? APP_MANIFEST_FILE : MANIFEST_FILE;
    throw new RegistryError("SIGNATURE_INVALID", `${file} names ${listing.name}@${listing.version}, but the signature is for ${claimed.name}@${claimed.version}`);
  }

  const { name, version } = listing;
  const existing = await db.prepare("SELECT kind FROM packages WHERE name = ?").bind(name).first<{ kind: PackageKind }>();
  if (existing && existing.kind !== kind) throw new RegistryError("CONFLICT", `${name} is a package of kind ${existing.kind}, not ${kind}`);
  const { results: versions } = await db.prepare("SELECT version FROM versions WHERE name = ?").bind(name).all<{ version: string }>();
  if (versions.some((v) => v.version === version)) throw new RegistryError("CONFLICT", `${name}@${version} is already published; versions are immutable`);

  const objectKey = bundleKey(name, version, digest);
  await storeBundle(env.BUNDLES, objectKey, archive, digest);

  // The package's title, summary and keywords follow its highest version: a backport changes none.
  const highest = versions.every((v) => semver.gt(version, v.version));
  const { title, summary, keywords } = listing;
  const at = now();
  const metadata = highest ? ", title = excluded.title, summary = excluded.summary, keywords = excluded.keywords, search_text = excluded.search_text" : "";
  try {
    await db.batch([
      db
        .prepare(
          `INSERT INTO packages (name, kind, publisher, title, summary, keywords, search_text, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at${metadata}`,
        )
        .bind(name, kind, publisherName, title, summary, JSON.stringify(keywords), searchText(name, title, summary, keywords), at, at),
      db
        .prepare(
          `INSERT INTO versions (name, version, manifest, digest, signature, key_id, size, published_at, published_by, readme)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(name, version, JSON.stringify(listing.manifest), digest, signature, kid, archive.byteLength, at, callerLabel(caller), listing.readme),
    ]);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // Another upload of this version committed first. Its object is ours too when the bytes are equal.
    const winner = await db.prepare("SELECT digest FROM versions WHERE name = ? AND version = ?").bind(name, version).first<{ digest: string }>();
    if (winner && winner.digest !== digest) await discardBundle(env.BUNDLES, objectKey);
    throw new RegistryError("CONFLICT", `${name}@${version} is already published; versions are immutable`);
  }
  return { name, version, digest };
}

// ---- reads --------------------------------------------------------------------------------------

const encodeCursor = (after: string) => btoa(JSON.stringify({ after })).replace(/=+$/, "");

function decodeCursor(cursor: string | undefined): string {
  if (!cursor) return "";
  try {
    const { after } = JSON.parse(atob(cursor)) as { after?: unknown };
    if (typeof after === "string" && PACKAGE_NAME_PATTERN.test(after)) return after;
  } catch {
    // answered below
  }
  throw new RegistryError("INVALID_CURSOR", "cursor is not one this API issued");
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (ch) => `\\${ch}`);

/** Packages by name order, filtered by a case-insensitive substring of name, title, summary or keywords and by kind. */
export async function searchPackages(db: D1Database, query: SearchQuery): Promise<SearchPage> {
  const where = ["name > ?"];
  const binds: unknown[] = [decodeCursor(query.cursor)];
  if (query.q) {
    where.push("search_text LIKE ? ESCAPE '\\'");
    binds.push(`%${escapeLike(query.q.toLowerCase())}%`);
  }
  if (query.kind) {
    where.push("kind = ?");
    binds.push(query.kind);
  }
  const { results } = await db
    .prepare(`SELECT name, kind, publisher, title, summary, keywords, created_at, updated_at FROM packages WHERE ${where.join(" AND ")} ORDER BY name LIMIT ?`)
    .bind(...binds, query.limit + 1)
    .all<PackageRow>();
  const more = results.length > query.limit;
  const page = more ? results.slice(0, query.limit) : results;
  const latest = new Map<string, { version: string; yanked: number }[]>();
  if (page.length > 0) {
    const { results: versions } = await db
      .prepare(`SELECT name, version, yanked FROM versions WHERE name IN (${page.map(() => "?").join(", ")})`)
      .bind(...page.map((p) => p.name))
      .all<{ name: string; version: string; yanked: number }>();
    for (const v of versions) latest.set(v.name, [...(latest.get(v.name) ?? []), v]);
  }
  const packages: SearchHit[] = page.map((row) => ({
    name: row.name,
    kind: row.kind,
    title: row.title,
    summary: row.summary,
    keywords: keywordsOf(row),
    publisher: row.publisher,
    latest: latestOf(latest.get(row.name) ?? []) ?? null,
    updated_at: row.updated_at,
  }));
  return { packages, next_cursor: more ? encodeCursor(page[page.length - 1]!.name) : null };
}

/** The columns of SummaryRow: a version without its manifest and readme (large), as lists of versions read it. */
const SUMMARY_COLUMNS = "version, published_at, digest, yanked, yank_reason, deprecated, deprecation_message";

/**
 * A package with every version (ascending by semver), `dist_tags.latest`, and the README of that
 * latest version (of the highest version when none is latest: all yanked or prereleases).
 */
export async function getPackage(db: D1Database, name: string): Promise<PackageDocument> {
  const row = await db.prepare("SELECT name, kind, publisher, title, summary, keywords, created_at, updated_at FROM packages WHERE name = ?").bind(name).first<PackageRow>();
  if (!row) throw new RegistryError("NOT_FOUND", `No package ${name}`);
  const { results } = await db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM versions WHERE name = ?`).bind(name).all<SummaryRow>();
  const versions = results.map(summaryFromRow).sort(byVersion);
  const latest = latestOf(versions);
  const shown = latest ?? versions.at(-1)?.version;
  const readme = shown ? await db.prepare("SELECT readme FROM versions WHERE name = ? AND version = ?").bind(name, shown).first<string | null>("readme") : null;
  return {
    name: row.name,
    kind: row.kind,
    title: row.title,
    summary: row.summary,
    keywords: keywordsOf(row),
    publisher: row.publisher,
    dist_tags: latest ? { latest } : {},
    versions,
    readme: readme ?? null,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

type VersionJoin = VersionRow & { kind: PackageKind; publisher: string; owner: string; jwk: string };

async function findVersion(db: D1Database, name: string, version: string): Promise<VersionJoin> {
  const row = await db
    .prepare(
      `SELECT v.*, p.kind, p.publisher, pub.owner, k.jwk FROM versions v
       JOIN packages p ON p.name = v.name
       JOIN publishers pub ON pub.name = p.publisher
       JOIN publisher_keys k ON k.publisher = p.publisher AND k.kid = v.key_id
       WHERE v.name = ? AND v.version = ?`,
    )
    .bind(name, version)
    .first<VersionJoin>();
  if (!row) throw new RegistryError("NOT_FOUND", `No version ${version} of ${name}`);
  return row;
}

/** One version: its manifest as published, digest, signature, and the public key that signed it. */
export async function getVersion(db: D1Database, name: string, version: string): Promise<VersionDocument> {
  const row = await findVersion(db, name, version);
  return {
    name: row.name,
    kind: row.kind,
    ...summaryFromRow(row),
    manifest: JSON.parse(row.manifest) as unknown,
    signature: row.signature,
    publisher: row.publisher,
    key_id: row.key_id,
    public_key: JSON.parse(row.jwk) as PublicKeyJwk,
    readme: row.readme,
  };
}

/** The archive of one version, as stored. */
export async function openBundle(env: RegistryEnv, name: string, version: string): Promise<{ body: ReadableStream; digest: string; size: number }> {
  const row = await env.REGISTRY_DB.prepare("SELECT digest, size FROM versions WHERE name = ? AND version = ?").bind(name, version).first<{ digest: string; size: number }>();
  if (!row) throw new RegistryError("NOT_FOUND", `No version ${version} of ${name}`);
  const object = await env.BUNDLES.get(bundleKey(name, version, row.digest));
  // The publish order makes this impossible short of someone deleting objects by hand.
  if (!object) throw new Error(`bundle of ${name}@${version} missing from R2`);
  return { body: object.body, digest: row.digest, size: object.size };
}

// ---- yanking and deprecation --------------------------------------------------------------------

async function flagVersion(db: D1Database, caller: Caller, name: string, version: string, set: string, value: string): Promise<VersionSummary> {
  const row = await findVersion(db, name, version);
  assertOwner(caller, { name: row.publisher, owner: row.owner });
  await db.prepare(`UPDATE versions SET ${set} WHERE name = ? AND version = ?`).bind(value, name, version).run();
  return summaryFromRow((await db.prepare("SELECT * FROM versions WHERE name = ? AND version = ?").bind(name, version).first<VersionRow>())!);
}

/** Marks a version deprecated with a message; it stays installable and may still be `latest`. */
export function deprecateVersion(db: D1Database, caller: Caller, name: string, version: string, message: string): Promise<VersionSummary> {
  return flagVersion(db, caller, name, version, "deprecated = 1, deprecation_message = ?", message);
}

/** Yanks a version: no range resolves to it any more, but an exact pin still can (with a warning). */
export function yankVersion(db: D1Database, caller: Caller, name: string, version: string, reason: string): Promise<VersionSummary> {
  return flagVersion(db, caller, name, version, "yanked = 1, yank_reason = ?", reason);
}
