// Tenant API tokens are JWTs (HS256, jose) signed with a key derived from SECRETS_KEY.
import { SignJWT, jwtVerify, errors } from "jose";
import { tokenSigningKey } from "./crypto";
import type { Scope } from "./scopes";

const ISSUER = "erp-edge";
const AUDIENCE = "erp-edge:tenant-api";

export interface TokenClaims {
  tokenId: string;
  tenantId: string;
  scopes: Scope[];
}

export async function signToken(secretsKey: string, claims: TokenClaims, expiresAt?: Date): Promise<string> {
  const jwt = new SignJWT({ tid: claims.tenantId, scopes: claims.scopes })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setJti(claims.tokenId)
    .setSubject(claims.tokenId)
    .setIssuedAt();
  if (expiresAt) jwt.setExpirationTime(Math.floor(expiresAt.getTime() / 1000));
  return jwt.sign(await tokenSigningKey(secretsKey));
}

/** Verifies signature, issuer, audience and expiry; returns null for any token that fails. */
export async function verifyToken(secretsKey: string, token: string): Promise<TokenClaims | null> {
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
