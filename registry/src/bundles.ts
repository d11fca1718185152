// Where archives live in R2, and the two operations on them. The key names the exact bytes (its
// digest), so an object is written once and never replaced by other content: see storeBundle.

/** The hex form of a `sha256-<base64>` digest. */
function digestHex(digest: string): string {
  const binary = atob(digest.replace(/^sha256-/, ""));
  let hex = "";
  for (let i = 0; i < binary.length; i++) hex += binary.charCodeAt(i).toString(16).padStart(2, "0");
  return hex;
}

/**
 * The R2 key of a version's archive: `bundles/@acme/hello-erp/1.2.0/<sha256 hex>.zip`. Derived
 * from the name, the version and the digest, never stored: a version row's digest names its object.
 */
export function bundleKey(name: string, version: string, digest: string): string {
  return `bundles/${name}/${version}/${digestHex(digest)}.zip`;
}

/**
 * Writes an archive before any row names it. Two uploads of one version with different bytes get
 * different keys, so neither can overwrite the other's object; the same bytes get the same key and
 * the same content, so a retry after a crash rewrites an identical object. R2 checks the SHA-256.
 */
export async function storeBundle(bucket: R2Bucket, key: string, archive: Uint8Array, digest: string): Promise<void> {
  await bucket.put(key, archive, {
    sha256: digestHex(digest),
    httpMetadata: { contentType: "application/zip" },
    customMetadata: { digest },
  });
}

/** Removes an object that no row names (an upload that lost a race for its version). */
export async function discardBundle(bucket: R2Bucket, key: string): Promise<void> {
  try {
    await bucket.delete(key);
  } catch (err) {
    // An orphan costs storage only: no row names it, so nothing can serve it.
    console.error(JSON.stringify({ level: "warn", worker: "erp-edge-registry", message: "orphan bundle not deleted", key, error: String((err as Error)?.message ?? err) }));
  }
}
