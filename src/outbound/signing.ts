// Standard Webhooks signing: webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256
// of "<id>.<timestamp>.<body>"> with a whsec_ secret (base64 key after the prefix).
import { standardWebhooksKey } from "../platform/standard-webhooks";
import { asymmetricSignature } from "../webhook-configs/signing-key";

export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

async function sign(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", standardWebhooksKey(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)));
  return btoa(String.fromCharCode(...mac));
}

/** Headers for one delivery attempt; during a rotation overlap both secrets sign (space-separated). */
export async function signatureHeaders(id: string, body: string, secrets: string[], now = new Date()): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(now.getTime() / 1000));
  const signatures = await Promise.all(secrets.map(async (s) => `v1,${await sign(s, `${id}.${timestamp}.${body}`)}`));
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signatures.join(" ") };
}

/**
 * Headers for a delivery through a webhook configuration (epilot's scheme): the HMAC `v1` signature
 * with the configuration's whsec_ secret and, beside it in the same header, the platform's Ed25519
 * `v1a` signature (public key at /v1/webhooks/.well-known/public-key). Inline-URL deliveries keep
 * signatureHeaders alone, so what their receivers get is unchanged.
 */
export async function configSignatureHeaders(secretsKey: string, id: string, body: string, secret: string, now = new Date()): Promise<Record<string, string>> {
  const headers = await signatureHeaders(id, body, [secret], now);
  const asymmetric = await asymmetricSignature(secretsKey, id, headers["webhook-timestamp"]!, body);
  return { ...headers, "webhook-signature": `${headers["webhook-signature"]} ${asymmetric}` };
}
