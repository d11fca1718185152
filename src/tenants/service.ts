// Tenants and API tokens: plain functions over D1, called by routes, auth middleware and tests.
import { auditStatement, auditStatementIf } from "../platform/audit";
import { AppError } from "../platform/errors";
import { newId, nowIso } from "../platform/ids";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { signToken } from "../platform/tokens";
import type { Scope } from "../platform/scopes";
import type { ApiToken, CreateTenant, CreateToken, Tenant } from "./schema";

interface TenantRow {
  id: string;
  slug: string;
  name: string;
  rate_limit_per_second: number | null;
  created_at: string;
}

interface TokenRow {
  id: string;
  tenant_id: string;
  name: string;
  scopes: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

const fromTenantRow = (row: TenantRow): Tenant => ({
  id: row.id,
  slug: row.slug,
  name: row.name,
  rate_limit_per_second: row.rate_limit_per_second,
  created_at: row.created_at,
});

const fromTokenRow = (row: TokenRow): ApiToken => ({
  id: row.id,
  name: row.name,
  scopes: JSON.parse(row.scopes) as Scope[],
  created_at: row.created_at,
  expires_at: row.expires_at,
  revoked_at: row.revoked_at,
  last_used_at: row.last_used_at,
});

function slugify(name: string): string {
  const slug = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50);
  return slug || "tenant";
}

export async function createTenant(db: D1Database, input: CreateTenant): Promise<Tenant> {
  const tenant: Tenant = {
    id: newId(),
    slug: input.slug ?? slugify(input.name),
    name: input.name,
    rate_limit_per_second: input.rate_limit_per_second ?? null,
    created_at: nowIso(),
  };
  // An explicit slug is the caller's promise of uniqueness; a derived one just gets a suffix.
  const taken = () => new AppError("CONFLICT", `Tenant slug '${tenant.slug}' is taken`, { field: "slug" });
  const wanted = tenant.slug;
  const suffixed = () => `${wanted}-${tenant.id.slice(-6).toLowerCase()}`;
  if (await db.prepare("SELECT 1 FROM tenants WHERE slug = ?").bind(tenant.slug).first()) {
    if (input.slug) throw taken();
    tenant.slug = suffixed();
  }
  const insert = () =>
    db
      .prepare("INSERT INTO tenants (id, slug, name, rate_limit_per_second, created_at) VALUES (?, ?, ?, ?, ?)")
      .bind(tenant.id, tenant.slug, tenant.name, tenant.rate_limit_per_second, tenant.created_at)
      .run();
  try {
    await insert();
  } catch (err) {
    // A concurrent request took the slug between the check and the insert: the UNIQUE index decides.
    if (!isSlugTaken(err)) throw err;
    if (input.slug || tenant.slug !== wanted) throw taken();
    tenant.slug = suffixed();
    await insert().catch((again: unknown) => {
      throw isSlugTaken(again) ? taken() : again;
    });
  }
  return tenant;
}

const isSlugTaken = (err: unknown) => err instanceof Error && /UNIQUE constraint failed: tenants\.slug/i.test(err.message);

export async function listTenants(db: D1Database, page: PageQuery) {
  const { results } = await db
    .prepare("SELECT * FROM tenants WHERE id > ? ORDER BY id LIMIT ?")
    .bind(decodeCursor(page.cursor), page.limit + 1)
    .all<TenantRow>();
  const { items, next_cursor } = toPage(results, page.limit, fromTenantRow);
  return { tenants: items, next_cursor };
}

export async function getTenant(db: D1Database, id: string): Promise<Tenant> {
  const row = await db.prepare("SELECT * FROM tenants WHERE id = ?").bind(id).first<TenantRow>();
  if (!row) throw new AppError("NOT_FOUND", `Tenant '${id}' not found`);
  return fromTenantRow(row);
}

/** Deletes the tenant and, through ON DELETE CASCADE, its tokens and integrations. */
export async function deleteTenant(db: D1Database, id: string): Promise<void> {
  const { meta } = await db.prepare("DELETE FROM tenants WHERE id = ?").bind(id).run();
  if (!meta.changes) throw new AppError("NOT_FOUND", `Tenant '${id}' not found`);
}

/** DEFAULT_TOKEN_TTL_SECONDS; 90 days when it is missing or not a number, so a misconfiguration never means "no expiry". */
function tokenTtlSeconds(env: Partial<Pick<Env, "DEFAULT_TOKEN_TTL_SECONDS">>): number {
  const seconds = Number(env.DEFAULT_TOKEN_TTL_SECONDS ?? NaN);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : 90 * 86_400;
}

export async function createToken(
  env: Pick<Env, "DB" | "SECRETS_KEY" | "DEFAULT_TOKEN_TTL_SECONDS">,
  tenantId: string,
  input: CreateToken,
): Promise<ApiToken & { token: string }> {
  await getTenant(env.DB, tenantId);
  const ttl = input.expires_in_seconds ?? tokenTtlSeconds(env);
  const createdAt = new Date();
  const expiresAt = ttl > 0 ? new Date(createdAt.getTime() + ttl * 1000) : undefined;
  const row: TokenRow = {
    id: newId(),
    tenant_id: tenantId,
    name: input.name,
    scopes: JSON.stringify(input.scopes),
    created_at: createdAt.toISOString(),
    expires_at: expiresAt?.toISOString() ?? null,
    revoked_at: null,
    last_used_at: null,
  };
  const token = await signToken(env.SECRETS_KEY, { tokenId: row.id, tenantId, scopes: input.scopes }, expiresAt);
  await env.DB.batch([
    env.DB.prepare("INSERT INTO api_tokens (id, tenant_id, name, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)").bind(
      row.id, row.tenant_id, row.name, row.scopes, row.created_at, row.expires_at,
    ),
    auditStatement(env.DB, { tenantId, actor: "admin", action: "token.created", target: row.id, details: { name: row.name, scopes: input.scopes } }),
  ]);
  return { ...fromTokenRow(row), token };
}

export async function listTokens(db: D1Database, tenantId: string, page: PageQuery) {
  await getTenant(db, tenantId);
  const { results } = await db
    .prepare("SELECT * FROM api_tokens WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?")
    .bind(tenantId, decodeCursor(page.cursor), page.limit + 1)
    .all<TokenRow>();
  const { items, next_cursor } = toPage(results, page.limit, fromTokenRow);
  return { tokens: items, next_cursor };
}

/**
 * Revokes a token; the next request carrying it gets 401. Revoking twice is a no-op. The revocation
 * and its audit entry are one transaction: neither is ever written without the other.
 */
export async function revokeToken(db: D1Database, tenantId: string, tokenId: string): Promise<void> {
  const [revoked] = await db.batch([
    db.prepare("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?").bind(nowIso(), tokenId, tenantId),
    auditStatementIf(db, { tenantId, actor: "admin", action: "token.revoked", target: tokenId }, "SELECT 1 FROM api_tokens WHERE id = ? AND tenant_id = ?", [tokenId, tenantId]),
  ]);
  if (!revoked!.meta.changes) throw new AppError("NOT_FOUND", `Token '${tokenId}' not found for tenant '${tenantId}'`);
}


/** A tenant's own requests-per-second limit (null: the default applies, or no such tenant). */
export async function tenantRateLimitOf(db: D1Database, tenantId: string): Promise<number | null> {
  const row = await db.prepare("SELECT rate_limit_per_second FROM tenants WHERE id = ?").bind(tenantId).first<{ rate_limit_per_second: number | null }>();
  return row?.rate_limit_per_second ?? null;
}

/** The tenant's id if it exists, else null: for rows that may outlive their tenant (a nullable tenant_id). */
export async function existingTenantId(db: D1Database, tenantId: string | null): Promise<string | null> {
  if (tenantId === null) return null;
  const row = await db.prepare("SELECT id FROM tenants WHERE id = ?").bind(tenantId).first<{ id: string }>();
  return row?.id ?? null;
}
