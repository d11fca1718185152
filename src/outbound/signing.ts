// Standard Webhooks signing: webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256
// of "<id>.<timestamp>.<body>"> with a whsec_ secret (base64 key after the prefix).
import { standardWebhooksKey } from "../platform/standard-webhooks";

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
