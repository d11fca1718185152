// Keys derived from SECRETS_KEY (HKDF, one key per purpose) for token signatures and secrets at rest.
import { base64url } from "jose";

type Purpose = "tokens" | "environment-values" | "file-proxy-urls";

const keyCache = new Map<string, Promise<CryptoKey>>();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function derive(secret: string, purpose: Purpose, algorithm: SubtleCryptoImportKeyAlgorithm, usages: string[]) {
  const cacheKey = `${purpose}\u0000${secret}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = crypto.subtle
      .importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"])
      .then((base) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: encoder.encode("erp-edge"), info: encoder.encode(purpose) },
          base,
          algorithm,
          false,
          usages,
        ),
      );
    keyCache.set(cacheKey, key);
  }
  return key;
}

/** HMAC-SHA256 key that signs and verifies tenant API tokens (JWT HS256). */
export function tokenSigningKey(secretsKey: string): Promise<CryptoKey> {
  return derive(secretsKey, "tokens", { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign", "verify"]);
}

/** HMAC-SHA256 key that signs file-proxy download URLs (src/file-proxy/signing.ts): its own purpose, so a URL signature is never a token's. */
export function fileUrlSigningKey(secretsKey: string): Promise<CryptoKey> {
  return derive(secretsKey, "file-proxy-urls", { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign", "verify"]);
}

function valueKey(secretsKey: string): Promise<CryptoKey> {
  return derive(secretsKey, "environment-values", { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]);
}

/**
 * Encrypts a value with AES-256-GCM. `context` (e.g. "<integration id>/<key>") is bound as additional
 * data, so a ciphertext copied to another row does not decrypt there.
 */
export async function encryptValue(secretsKey: string, plaintext: string, context: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(context) },
    await valueKey(secretsKey),
    encoder.encode(plaintext),
  );
  const out = new Uint8Array(iv.length + sealed.byteLength);
  out.set(iv);
  out.set(new Uint8Array(sealed), iv.length);
  return base64url.encode(out);
}

export async function decryptValue(secretsKey: string, ciphertext: string, context: string): Promise<string> {
  const bytes = base64url.decode(ciphertext);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: encoder.encode(context) },
    await valueKey(secretsKey),
    bytes.slice(12),
  );
  return decoder.decode(plain);
}

/** Compares two secrets in constant time (hashing first so lengths never leak). */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}

/** Hex SHA-256 of a text's UTF-8 bytes (cache keys, code identities). */
export async function sha256Hex(text: string): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
