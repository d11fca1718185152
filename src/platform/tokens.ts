// Tenant API tokens are JWTs (HS256, jose) signed with a key derived from SECRETS_KEY.
import { SignJWT, base64url, decodeProtectedHeader, jwtVerify, errors } from "jose";
import { tokenSigningKey } from "./crypto";
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
