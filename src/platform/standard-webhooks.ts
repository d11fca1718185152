// Standard Webhooks secrets, shared by inbound verification and outbound signing.

/** Bytes of base64 text, or null when it is not base64. */
export function fromBase64(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

/** The signing key of a Standard Webhooks secret: base64 after the `whsec_` prefix (else the text as UTF-8). */
export function standardWebhooksKey(secret: string): Uint8Array {
  const text = new TextEncoder().encode(secret);
  return secret.startsWith("whsec_") ? (fromBase64(secret.slice(6)) ?? text) : text;
}
