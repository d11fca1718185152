// Tenant API tokens are JWTs (HS256, jose) signed with a key derived from SECRETS_KEY, backed by a
// row in api_tokens that every request reads.
import { SignJWT, base64url, decodeProtectedHeader, jwtVerify, errors } from "jose";
import { tokenSigningKey } from "./crypto";
import { auditStatement } from "./audit";
import { nowIso } from "./ids";
import type { Scope } from "./scopes";

const ISSUER = "erp-edge";
const AUDIENCE = "erp-edge:tenant-api";

export interface TokenClaims {
  tokenId: string;
  tenantId: string;
  scopes: Scope[];
}

const keyIds = new Map<string, Promise<string>>();

/**
 * The `kid` of the current signing key: a MAC of a fixed label under that key, so it names the key
 * (and changes when SECRETS_KEY is rotated) without revealing anything about it.
 */
export function tokenKeyId(secretsKey: string): Promise<string> {
  let kid = keyIds.get(secretsKey);
  if (!kid) {
    kid = tokenSigningKey(secretsKey)
      .then((key) => crypto.subtle.sign("HMAC", key, new TextEncoder().encode("erp-edge token key id")))
      .then((mac) => `k1-${base64url.encode(new Uint8Array(mac).slice(0, 9))}`);
    keyIds.set(secretsKey, kid);
  }
  return kid;
}

export async function signToken(secretsKey: string, claims: TokenClaims, expiresAt?: Date): Promise<string> {
  const jwt = new SignJWT({ tid: claims.tenantId, scopes: claims.scopes })
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: await tokenKeyId(secretsKey) })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setJti(claims.tokenId)
    .setSubject(claims.tokenId)
    .setIssuedAt();
  if (expiresAt) jwt.setExpirationTime(Math.floor(expiresAt.getTime() / 1000));
  return jwt.sign(await tokenSigningKey(secretsKey));
}

/**
 * Verifies key id, signature, issuer, audience and expiry; returns null for any token that fails.
 * A token naming another key (one signed before SECRETS_KEY was rotated) fails; tokens issued before
 * key ids existed carry none and are still checked by signature. The scopes returned are the
 * token's claims; the auth middleware trusts the token row's scopes, not these.
 */
export async function verifyToken(secretsKey: string, token: string): Promise<TokenClaims | null> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return null; // not a JWT at all (jose throws a TypeError here, not a JOSEError)
  }
  if (kid !== undefined && kid !== (await tokenKeyId(secretsKey))) return null;
  try {
    const { payload } = await jwtVerify(token, await tokenSigningKey(secretsKey), {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ["HS256"],
    });
    if (typeof payload.jti !== "string" || typeof payload.tid !== "string" || !Array.isArray(payload.scopes)) return null;
    return { tokenId: payload.jti, tenantId: payload.tid, scopes: payload.scopes as Scope[] };
  } catch (err) {
    if (err instanceof errors.JOSEError) return null;
    throw err;
  }
}

// ---- token rows (api_tokens): read on every request so revocation takes effect at once ----------

/**
 * The token's scopes, `last_used_at` and its tenant's rate limit while the token exists, belongs to
 * the tenant, is not revoked and has not expired; null otherwise.
 */
export async function findActiveToken(
  db: D1Database,
  tokenId: string,
  tenantId: string,
): Promise<{ last_used_at: string | null; rate_limit_per_second: number | null; scopes: Scope[] } | null> {
  const row = await db
    .prepare(
      `SELECT t.last_used_at, t.scopes, n.rate_limit_per_second FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
       WHERE t.id = ? AND t.tenant_id = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)`,
    )
    .bind(tokenId, tenantId, nowIso())
    .first<{ last_used_at: string | null; scopes: string; rate_limit_per_second: number | null }>();
  return row && { ...row, scopes: JSON.parse(row.scopes) as Scope[] };
}

/** Records token use at minute resolution, so a busy token costs one write a minute, not one per request. */
export async function touchToken(db: D1Database, tokenId: string, lastUsedAt: string | null): Promise<void> {
  const now = nowIso();
  if (lastUsedAt && Date.parse(now) - Date.parse(lastUsedAt) < 60_000) return;
  const tenant = await db.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ? RETURNING tenant_id").bind(now, tokenId).first<{ tenant_id: string }>();
  if (tenant) await auditStatement(db, { tenantId: tenant.tenant_id, actor: `token:${tokenId}`, action: "token.used", target: tokenId }).run();
}
