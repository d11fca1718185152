// The host's own check of a package fetched from the registry: the archive must be the one the
// publisher signed, with a key of the publisher that owns the name. Nothing the registry says about
// integrity is taken on trust; a tampered stored archive is refused here.
import type { PackageError } from "../../apps-sdk/src/blueprint/manifest";
import { PublicKeyJwk, SignatureError, keyIdOf, signatureKeyId, verifyPackage } from "../../apps-sdk/src/blueprint/signing";
import { fetchBundle, fetchPackage, fetchVersion, type RegistryPackage, type RegistryVersion } from "./client";
import { resolveVersion } from "./resolution";
import { AppError } from "../platform/errors";

/** `@acme` of `@acme/sap-customers`. */
export const publisherOf = (name: string) => name.slice(0, name.indexOf("/"));

/**
 * Verifies `archive` as version `meta` of package `name`: the version's publisher owns the name's
 * scope, its public key's thumbprint is the key id both the registry and the signature's header
 * name, the signature verifies over `{ name, version, digest }` and the archive's SHA-256 is that
 * digest. Returns the verified digest; AppError SIGNATURE_INVALID or DIGEST_MISMATCH (422) otherwise.
 */
export async function verifyPublishedPackage(
  meta: Pick<RegistryVersion, "signature" | "public_key" | "key_id" | "publisher" | "digest">,
  archive: Uint8Array,
  expected: { name: string; version: string },
): Promise<string> {
  const label = `${expected.name}@${expected.version}`;
  if (meta.publisher !== publisherOf(expected.name)) {
    throw new AppError("SIGNATURE_INVALID", `${label} is published by '${meta.publisher}', but the name belongs to '${publisherOf(expected.name)}'`);
  }
  const key = PublicKeyJwk.safeParse(meta.public_key);
  if (!key.success) throw new AppError("SIGNATURE_INVALID", `${label}: the publisher key is not an Ed25519 public JWK`);
  const kid = await keyIdOf(key.data);
  if (kid !== meta.key_id || signatureKeyId(meta.signature) !== kid) {
    throw new AppError("SIGNATURE_INVALID", `${label}: the signature's key id, the registry's key id and the key's thumbprint (${kid}) disagree`);
  }
  let digest: string;
  try {
    digest = (await verifyPackage(meta.signature, key.data, archive, expected)).digest;
  } catch (err) {
    if (err instanceof SignatureError) throw new AppError(err.code, `${label}: ${err.message}`);
    throw err;
  }
  if (meta.digest !== digest) throw new AppError("DIGEST_MISMATCH", `${label}: the registry lists digest ${meta.digest}, the signed archive is ${digest}`);
  return digest;
}

/** A package's unusable files as the 422 a host install answers: each issue by file and path. */
export function packageProblem(err: PackageError, label: string): AppError {
  return new AppError("UNPROCESSABLE", `${label}: ${err.message}`, err.issues.map((i) => ({ path: i.path, file: i.file, message: i.message })));
}

/** A package version downloaded from the registry and verified in the host (verifyPublishedPackage). */
export interface VerifiedArchive {
  version: string;
  digest: string;
  archive: Uint8Array;
  /** `name@version`, for messages. */
  label: string;
  warnings: string[];
}

const withArticle = (kind: RegistryPackage["kind"]) => (kind === "app" ? "an app" : `a ${kind}`);

/**
 * Resolves `spec` among the registry's versions of package `name`, which must be of `kind`, downloads
 * that version and verifies it: what blueprint and app installs share before each reads its own files.
 */
export async function fetchVerifiedArchive(env: Pick<Env, "REGISTRY">, name: string, spec: string, kind: RegistryPackage["kind"]): Promise<VerifiedArchive> {
  const pkg = await fetchPackage(env, name);
  if (!pkg) throw new AppError("NOT_FOUND", `No package '${name}' in the registry`);
  if (pkg.kind !== kind) throw new AppError("UNPROCESSABLE", `'${name}' is ${withArticle(pkg.kind)}, not ${withArticle(kind)}`);
  const resolved = resolveVersion(pkg, spec);
  if (!resolved.ok) throw new AppError("UNPROCESSABLE", `${name}: ${resolved.reason}`, { path: "version", available: resolved.available });
  const version = resolved.version;
  const [meta, archive] = await Promise.all([fetchVersion(env, name, version), fetchBundle(env, name, version)]);
  if (!meta || !archive) throw new AppError("NOT_FOUND", `${name}@${version} is listed but cannot be downloaded from the registry`);
  const digest = await verifyPublishedPackage(meta, archive, { name, version });
  return { version, digest, archive, label: `${name}@${version}`, warnings: resolved.warnings };
}
