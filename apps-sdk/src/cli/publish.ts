// Packing and publishing: a checked package, its deterministic archive and digest, signed and sent.
import { assertNoSecrets, digestOf, packBundle, PackageError, signPackage } from "../blueprint";
import { checkPackage, formatIssue, type PackageCheck } from "./check";
import { CliError } from "./io";
import type { PublisherKey } from "./keys";
import { readPackageSource } from "./package-source";
import type { RegistryClient } from "./registry";

/** What is signed and uploaded, whatever the package's kind. */
export interface PreparedArchive {
  name: string;
  version: string;
  /** The bytes that are signed and uploaded. */
  archive: Uint8Array;
  digest: string;
}

export interface PreparedPackage extends PreparedArchive {
  fileCount: number;
  source: "folder" | "archive";
  check: PackageCheck;
}

/** `@acme/sap-customers` 1.2.0 -> `acme-sap-customers-1.2.0.zip` (npm pack's naming). */
export const archiveFileName = (name: string, version: string) => `${name.replace(/^@/, "").replace("/", "-")}-${version}.zip`;

/** Throws a CliError listing every issue (file and path first) when the check found any. */
export function assertValid(check: PackageCheck, path: string): asserts check is PackageCheck & { manifest: NonNullable<PackageCheck["manifest"]> } {
  if (check.issues.length > 0 || !check.manifest) {
    const n = check.issues.length;
    throw new CliError(`${path} is not a valid blueprint (${n} problem${n === 1 ? "" : "s"})`, check.issues.map((i) => `  ${formatIssue(i)}`));
  }
}

/**
 * Reads a folder or archive, checks it like `blueprint validate`, and packs a folder (an archive is
 * kept byte for byte: its digest is what gets signed).
 */
export async function preparePackage(path: string): Promise<PreparedPackage> {
  const source = await readPackageSource(path);
  const check = checkPackage(source.files);
  assertValid(check, path);
  let archive: Uint8Array;
  try {
    // Checked before anything is signed or sent: a key or .env packed by mistake would be public for good.
    assertNoSecrets(source.files);
    archive = source.archive ?? packBundle(source.files);
  } catch (err) {
    if (err instanceof PackageError) throw new CliError(`${path}: ${err.message}`, err.issues.map((i) => `  ${formatIssue(i)}`));
    throw err;
  }
  return {
    name: check.manifest.name,
    version: check.manifest.version,
    archive,
    digest: await digestOf(archive),
    fileCount: Object.keys(source.files).length,
    source: source.kind,
    check,
  };
}

/** Signs `{ name, version, digest }` with the publisher's key and uploads archive and signature (blueprints and apps alike). */
export async function publishPackage(pkg: PreparedArchive, key: PublisherKey, client: RegistryClient): Promise<{ name: string; version: string; digest: string }> {
  const signature = await signPackage({ name: pkg.name, version: pkg.version, digest: pkg.digest }, key.privateJwk);
  return client.publish(pkg.archive, signature, archiveFileName(pkg.name, pkg.version));
}
