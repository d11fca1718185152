// Signed download URLs of file-proxy use cases (issue #13): an HMAC over the tenant, the integration,
// the use case (its slug and its id, so deleting it revokes its links even if the slug is used again),
// every parameter in canonical order and the expiry, so a URL can be handed to a browser without a
// token and no part of it can be changed or reused elsewhere.
import { base64url } from "jose";
import { fileUrlSigningKey } from "../platform/crypto";

export interface FileUrlClaims {
  tenantId: string;
  integrationId: string;
  useCaseSlug: string;
  /** The use case's id: not in the URL, but signed. */
  useCaseId: string;
  params: Record<string, string>;
  /** Expiry, Unix seconds. */
  exp: number;
}


const encoder = new TextEncoder();

/**
 * The signed text: a version tag, then each field on its own line, parameters sorted by name (code
 * unit order) and percent-encoded, so no choice of values can make two different URLs sign alike.
 */
export function canonicalText(claims: FileUrlClaims): string {
  const params = Object.keys(claims.params)
    .sort()
    // A lone surrogate cannot be percent-encoded; URLs carry it as U+FFFD, and so does the signed text.
    .map((name) => `${encodeURIComponent(name.toWellFormed())}=${encodeURIComponent(claims.params[name]!.toWellFormed())}`)
    .join("&");
  return ["erp-edge-file-url-v1", claims.tenantId, claims.integrationId, claims.useCaseSlug, claims.useCaseId, params, String(claims.exp)].join("\n");
}

/** The signature of `claims` (base64url HMAC-SHA256). */
export async function signFileUrl(secretsKey: string, claims: FileUrlClaims): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await fileUrlSigningKey(secretsKey), encoder.encode(canonicalText(claims)));
  return base64url.encode(new Uint8Array(mac));
}

/** Why a signed URL is refused, or null when its signature holds and it has not expired at `now`. */
export async function fileUrlProblem(secretsKey: string, claims: FileUrlClaims, sig: string, now = Date.now()): Promise<"expired" | "bad_signature" | null> {
  let mac: Uint8Array;
  try {
    mac = base64url.decode(sig);
  } catch {
    return "bad_signature";
  }
  // Web Crypto's verify compares in constant time.
  const valid = await crypto.subtle.verify("HMAC", await fileUrlSigningKey(secretsKey), mac, encoder.encode(canonicalText(claims)));
  if (!valid) return "bad_signature";
  return claims.exp * 1000 <= now ? "expired" : null;
}

/** The download URL for `claims` under `origin` (e.g. https://edge.example.com). */
export async function fileUrl(origin: string, secretsKey: string, claims: FileUrlClaims): Promise<string> {
  const url = new URL("/v1/files/download", origin);
  url.searchParams.set("integration_id", claims.integrationId);
  url.searchParams.set("use_case_slug", claims.useCaseSlug);
  for (const name of Object.keys(claims.params).sort()) url.searchParams.set(name, claims.params[name]!);
  url.searchParams.set("exp", String(claims.exp));
  url.searchParams.set("sig", await signFileUrl(secretsKey, claims));
  return url.toString();
}
