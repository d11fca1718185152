// Signature checks for inbound webhooks: the telematics seed's X-Signature scheme and Standard
// Webhooks. Comparisons go through crypto.subtle.verify (constant time); timestamps more than five
// minutes off are refused so a captured request cannot be replayed later.
import { fromBase64, standardWebhooksKey } from "../platform/standard-webhooks";

export const TOLERANCE_SECONDS = 5 * 60;
const encoder = new TextEncoder();

export type SignatureScheme = "x-signature" | "standard-webhooks";

export type SignatureCheck =
  | { ok: true; scheme: SignatureScheme; timestamp: number; id?: string }
  | { ok: false; reason: string };

async function hmacKey(secret: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["verify", "sign"]);
}

function fromHex(hex: string): Uint8Array | null {
  if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) return null;
  return Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
}

function fresh(timestamp: number, now: number): boolean {
  return Number.isFinite(timestamp) && Math.abs(now - timestamp) <= TOLERANCE_SECONDS;
}

/** `X-Signature: t=<unix seconds>,s=sha256=<hex HMAC-SHA256 of "<t>.<raw body>">`, secret used as UTF-8. */
export async function verifyXSignature(header: string, rawBody: Uint8Array, secret: string, now: number): Promise<SignatureCheck> {
  const parts = Object.fromEntries(header.split(",").map((p) => [p.slice(0, p.indexOf("=")).trim(), p.slice(p.indexOf("=") + 1).trim()]));
  const t = Number(parts.t);
  const signature = parts.s?.startsWith("sha256=") ? fromHex(parts.s.slice(7)) : null;
  if (!/^\d+$/.test(parts.t ?? "") || !signature) return { ok: false, reason: "malformed X-Signature (expected t=<unix>,s=sha256=<hex>)" };
  if (!fresh(t, now)) return { ok: false, reason: "X-Signature timestamp is more than 5 minutes off" };
  const signed = concat(encoder.encode(`${parts.t}.`), rawBody);
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(encoder.encode(secret)), signature, signed);
  return valid ? { ok: true, scheme: "x-signature", timestamp: t } : { ok: false, reason: "X-Signature does not match" };
}

/**
 * Standard Webhooks: `webhook-signature` holds space-separated `v1,<base64>` signatures of
 * "<webhook-id>.<webhook-timestamp>.<raw body>"; any one matching passes (secret rotation).
 */
export async function verifyStandardWebhook(
  headers: { id?: string; timestamp?: string; signature?: string },
  rawBody: Uint8Array,
  secret: string,
  now: number,
): Promise<SignatureCheck> {
  if (!headers.id || !headers.timestamp || !headers.signature) return { ok: false, reason: "missing webhook-id, webhook-timestamp or webhook-signature" };
  const t = Number(headers.timestamp);
  if (!/^\d+$/.test(headers.timestamp)) return { ok: false, reason: "malformed webhook-timestamp" };
  if (!fresh(t, now)) return { ok: false, reason: "webhook-timestamp is more than 5 minutes off" };
  const key = await hmacKey(standardWebhooksKey(secret));
  const signed = concat(encoder.encode(`${headers.id}.${headers.timestamp}.`), rawBody);
  for (const candidate of headers.signature.split(" ")) {
    const [version, value] = candidate.split(",", 2);
    const bytes = version === "v1" && value ? fromBase64(value) : null;
    if (bytes && (await crypto.subtle.verify("HMAC", key, bytes, signed))) return { ok: true, scheme: "standard-webhooks", timestamp: t, id: headers.id };
  }
  return { ok: false, reason: "no webhook-signature matches" };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
