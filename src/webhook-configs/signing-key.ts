// The platform's Ed25519 webhook signing key (Standard Webhooks "v1a" signatures): derived from
// SECRETS_KEY, so every isolate signs with the same key, and its public half is served at
// GET /v1/webhooks/.well-known/public-key for receivers to verify with.
import { base64url } from "jose";

const encoder = new TextEncoder();
/** DER prefixes of an Ed25519 private key (PKCS#8, RFC 8410) and public key (SPKI) around the 32 raw bytes. */
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

export interface WebhookSigningKey {
  privateKey: CryptoKey;
  /** PEM (SPKI) of the public key. */
  publicKeyPem: string;
}

const cache = new Map<string, Promise<WebhookSigningKey>>();

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

const pem = (der: Uint8Array) => `-----BEGIN PUBLIC KEY-----\n${btoa(String.fromCharCode(...der))}\n-----END PUBLIC KEY-----\n`;

async function derive(secretsKey: string): Promise<WebhookSigningKey> {
  // HKDF with its own info string: this key is never one of platform/crypto.ts's purposes.
  const base = await crypto.subtle.importKey("raw", encoder.encode(secretsKey), "HKDF", false, ["deriveBits"]);
  const seed = new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: encoder.encode("erp-edge"), info: encoder.encode("webhook-ed25519") }, base, 256));
  const extractable = await crypto.subtle.importKey("pkcs8", concat(PKCS8_PREFIX, seed), { name: "Ed25519" }, true, ["sign"]);
  const jwk = (await crypto.subtle.exportKey("jwk", extractable)) as JsonWebKey;
  const privateKey = await crypto.subtle.importKey("pkcs8", concat(PKCS8_PREFIX, seed), { name: "Ed25519" }, false, ["sign"]);
  return { privateKey, publicKeyPem: pem(concat(SPKI_PREFIX, base64url.decode(jwk.x!))) };
}

/** The platform's webhook signing key pair for this SECRETS_KEY (derived once per isolate). */
export function webhookSigningKey(secretsKey: string): Promise<WebhookSigningKey> {
  let key = cache.get(secretsKey);
  if (!key) {
    key = derive(secretsKey);
    key.catch(() => cache.delete(secretsKey));
    cache.set(secretsKey, key);
  }
  return key;
}

/**
 * The Standard Webhooks asymmetric signature of a delivery: `v1a,<base64 Ed25519 signature of
 * "<id>.<timestamp>.<body>">`, the same signed content as the HMAC `v1` signature beside it.
 */
export async function asymmetricSignature(secretsKey: string, id: string, timestamp: string, body: string): Promise<string> {
  const { privateKey } = await webhookSigningKey(secretsKey);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey, encoder.encode(`${id}.${timestamp}.${body}`)));
  return `v1a,${btoa(String.fromCharCode(...signature))}`;
}
