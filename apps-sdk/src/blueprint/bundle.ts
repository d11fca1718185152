// A package on the wire: a zip archive (fflate, which runs the same in Node and workerd) of the
// package folder, bounded in size and file count, with paths that cannot leave the package.
import { unzipSync, zipSync, type Zippable } from "fflate";
import { isFileReference, MANIFEST_FILE, PackageError, parseManifest, type BlueprintManifest, type PackageIssue } from "./manifest";

export const BUNDLE_LIMITS = Object.freeze({
  /** The archive as uploaded. */
  maxArchiveBytes: 10 * 1024 * 1024,
  /** All files together once unpacked (a zip bomb stops here). */
  maxUnpackedBytes: 25 * 1024 * 1024,
  maxFiles: 500,
  /** One JSON file of the package (manifest, configuration, fixture). */
  maxJsonBytes: 2 * 1024 * 1024,
  maxJsonDepth: 64,
  /** blueprint.json itself: the registry stores it in one D1 row (D1 rows hold at most 2 MB). */
  maxManifestBytes: 1024 * 1024,
  /**
   * Every `{ "$file" }` reference counted each time it is read: a file referenced by 2,000 use cases
   * would otherwise be parsed 2,000 times (a JSON bomb made of references).
   */
  maxResolvedBytes: 4 * 1024 * 1024,
  /** Entries of the zip's central directory, folders included. */
  maxEntries: 2000,
  /** README.md, which the registry stores beside the version and serves as its `readme`. */
  maxReadmeBytes: 256 * 1024,
});

/** The package's description for people (the Hub shows it): markdown at the archive's root, blueprints and apps alike. */
export const README_FILE = "README.md";

/** Files of a package by their path inside it (`blueprint.json`, `mappings/customers.json`). */
export type PackageFiles = Record<string, Uint8Array>;

/** The path problem of a name in a package, or null when it is a plain relative path. */
export function packagePathProblem(name: string): string | null {
  if (name.length === 0 || name.length > 255) return "must be 1 to 255 characters";
  if (name.includes("\\")) return "must use '/' separators";
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) return "must be relative";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return "must not contain control characters";
  const segments = name.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) return "must not contain empty, '.' or '..' segments";
  return null;
}

/** Names that are never package content, whatever folder they are in: environment files and keys. */
const SECRET_NAME = /(^|\/)(\.env(\..*)?|\.dev\.vars(\..*)?|[^/]*\.(jwk|pem|key|p12|pfx)|id_(rsa|ecdsa|ed25519)|\.npmrc)$/i;
/** A private JWK (`"d"` next to `"kty"`) or a PEM private key, wherever it is. */
const PRIVATE_JWK = /"kty"\s*:/;
const PRIVATE_JWK_D = /"d"\s*:\s*"[A-Za-z0-9_-]{16,}"/;
const PEM_PRIVATE = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/**
 * Files that look like secrets: an environment file (`.env`, `.dev.vars`), a key file (`*.jwk`,
 * `*.pem`, `*.key`), or any file holding a private JWK or PEM private key. A published package is
 * readable by every tenant, so a publisher's signing key packed by mistake would be public for good.
 */
export function secretFileIssues(files: PackageFiles): PackageIssue[] {
  const issues: PackageIssue[] = [];
  const latin1 = new TextDecoder("latin1");
  for (const [name, bytes] of Object.entries(files)) {
    if (SECRET_NAME.test(name)) {
      issues.push({ file: name, path: "", message: "looks like a secret (an environment or key file); it must not be in a package" });
      continue;
    }
    const text = latin1.decode(bytes);
    if (PEM_PRIVATE.test(text) || (PRIVATE_JWK.test(text) && PRIVATE_JWK_D.test(text))) {
      issues.push({ file: name, path: "", message: "holds a private key; it must not be in a package" });
    }
  }
  return issues;
}

/** Throws INVALID_PACKAGE naming every file that looks like a secret (see secretFileIssues). */
export function assertNoSecrets(files: PackageFiles): void {
  const issues = secretFileIssues(files);
  if (issues.length > 0) throw new PackageError("INVALID_PACKAGE", "The package holds files that look like secrets", issues);
}

/**
 * Packs files into the archive that is signed and published. Deterministic: the same files give
 * the same bytes (sorted names, fixed timestamps), so the digest names the content.
 */
export function packBundle(files: PackageFiles): Uint8Array {
  const names = Object.keys(files).sort();
  if (names.length > BUNDLE_LIMITS.maxFiles) throw new PackageError("PACKAGE_TOO_LARGE", `A package holds at most ${BUNDLE_LIMITS.maxFiles} files (this one ${names.length})`);
  const zippable: Zippable = {};
  for (const name of names) {
    const problem = packagePathProblem(name);
    if (problem) throw new PackageError("INVALID_PACKAGE", `File name '${name}' ${problem}`, [{ file: name, path: "", message: problem }]);
    // Not null-prototype safe otherwise: a file literally named "__proto__" would vanish.
    Object.defineProperty(zippable, name, { value: [files[name]!, { mtime: new Date("1980-01-01T00:00:00Z") }], enumerable: true, configurable: true, writable: true });
  }
  assertNoSecrets(files);
  const archive = zipSync(zippable, { level: 9 });
  if (archive.byteLength > BUNDLE_LIMITS.maxArchiveBytes) {
    throw new PackageError("PACKAGE_TOO_LARGE", `The packed archive is ${archive.byteLength} bytes; at most ${BUNDLE_LIMITS.maxArchiveBytes} are accepted`);
  }
  return archive;
}

/**
 * Unpacks an archive, refusing anything over the limits before inflating it: too many files,
 * declared sizes over the total, unsafe paths. Directory entries are skipped.
 */
export function unpackBundle(archive: Uint8Array): PackageFiles {
  if (archive.byteLength > BUNDLE_LIMITS.maxArchiveBytes) {
    throw new PackageError("PACKAGE_TOO_LARGE", `The archive is ${archive.byteLength} bytes; at most ${BUNDLE_LIMITS.maxArchiveBytes} are accepted`);
  }
  let count = 0;
  let entries = 0;
  let declared = 0;
  const names = new Set<string>();
  const issues: PackageIssue[] = [];
  let unzipped: Record<string, Uint8Array>;
  try {
    unzipped = unzipSync(archive, {
      filter: (file) => {
        if (++entries > BUNDLE_LIMITS.maxEntries) throw new PackageError("PACKAGE_TOO_LARGE", `An archive holds at most ${BUNDLE_LIMITS.maxEntries} entries`);
        if (file.name.endsWith("/")) return false;
        count++;
        // fflate copies a stored entry's compressed bytes whatever size it declares, and inflates a
        // deflated one into a buffer of its declared size: count what is really allocated. Entries
        // that share their bytes (overlapping entries) are each counted, so they cannot multiply.
        declared += file.compression === 0 ? Math.max(file.size, file.originalSize) : file.originalSize;
        if (count > BUNDLE_LIMITS.maxFiles) throw new PackageError("PACKAGE_TOO_LARGE", `A package holds at most ${BUNDLE_LIMITS.maxFiles} files`);
        if (declared > BUNDLE_LIMITS.maxUnpackedBytes) throw new PackageError("PACKAGE_TOO_LARGE", `A package unpacks to at most ${BUNDLE_LIMITS.maxUnpackedBytes} bytes`);
        const problem = packagePathProblem(file.name) ?? (file.name === "__proto__" ? "must not be '__proto__'" : null);
        if (problem) {
          issues.push({ file: file.name, path: "", message: `file name ${problem}` });
          return false;
        }
        // Two entries of one name: which one a reader sees depends on the reader. Refused.
        if (names.has(file.name)) {
          issues.push({ file: file.name, path: "", message: "appears twice in the archive" });
          return false;
        }
        names.add(file.name);
        return true;
      },
    });
  } catch (err) {
    if (err instanceof PackageError) throw err;
    throw new PackageError("INVALID_PACKAGE", `The bundle is not a readable zip archive: ${(err as Error).message}`);
  }
  if (issues.length > 0) throw new PackageError("INVALID_PACKAGE", "The bundle holds files with unsafe or duplicate names", issues);
  // A plain object from fflate: copy into one without a prototype so no name can reach Object.prototype.
  const files: PackageFiles = Object.create(null);
  for (const [name, bytes] of Object.entries(unzipped)) files[name] = bytes;
  return files;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The deepest nesting of `[`/`{` in a JSON text, stopping early past `limit` (strings skipped). */
function exceedsDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++;
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 91 || ch === 123) {
      if (++depth > limit) return true;
    } else if (ch === 93 || ch === 125) depth--;
  }
  return false;
}

/** A file of the package as text (strict UTF-8). */
export function readText(files: PackageFiles, name: string): string {
  const bytes = Object.hasOwn(files, name) ? files[name] : undefined;
  if (!bytes) throw new PackageError("INVALID_PACKAGE", `The package has no file '${name}'`, [{ file: name, path: "", message: "file not found in the package" }]);
  try {
    return decoder.decode(bytes);
  } catch {
    throw new PackageError("INVALID_PACKAGE", `${name} is not valid UTF-8`, [{ file: name, path: "", message: "not valid UTF-8" }]);
  }
}

/**
 * The package's README.md as text, or null when it has none: UTF-8, at most BUNDLE_LIMITS.maxReadmeBytes
 * (PackageError naming the file otherwise). Only the root's README.md counts, spelt exactly so.
 */
export function readReadme(files: PackageFiles): string | null {
  if (!Object.hasOwn(files, README_FILE)) return null;
  if (files[README_FILE]!.byteLength > BUNDLE_LIMITS.maxReadmeBytes) {
    throw new PackageError("PACKAGE_TOO_LARGE", `${README_FILE} is over ${BUNDLE_LIMITS.maxReadmeBytes} bytes`, [{ file: README_FILE, path: "", message: "file too large" }]);
  }
  return readText(files, README_FILE);
}

/** A JSON file of the package, parsed with size and depth bounds. */
export function readJson(files: PackageFiles, name: string): unknown {
  const bytes = Object.hasOwn(files, name) ? files[name] : undefined;
  if (bytes && bytes.byteLength > BUNDLE_LIMITS.maxJsonBytes) {
    throw new PackageError("PACKAGE_TOO_LARGE", `${name} is over ${BUNDLE_LIMITS.maxJsonBytes} bytes`, [{ file: name, path: "", message: "file too large" }]);
  }
  const text = readText(files, name);
  if (exceedsDepth(text, BUNDLE_LIMITS.maxJsonDepth)) {
    throw new PackageError("INVALID_PACKAGE", `${name} nests deeper than ${BUNDLE_LIMITS.maxJsonDepth} levels`, [{ file: name, path: "", message: "nested too deeply" }]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PackageError("INVALID_PACKAGE", `${name} is not valid JSON: ${(err as Error).message}`, [{ file: name, path: "", message: `invalid JSON: ${(err as Error).message}` }]);
  }
}

/** The package's validated manifest. */
export function readManifest(files: PackageFiles): BlueprintManifest {
  const bytes = Object.hasOwn(files, MANIFEST_FILE) ? files[MANIFEST_FILE]! : undefined;
  if (bytes && bytes.byteLength > BUNDLE_LIMITS.maxManifestBytes) {
    throw new PackageError("PACKAGE_TOO_LARGE", `${MANIFEST_FILE} is over ${BUNDLE_LIMITS.maxManifestBytes} bytes; move large configurations into files referenced with $file`, [
      { file: MANIFEST_FILE, path: "", message: "file too large" },
    ]);
  }
  return parseManifest(readJson(files, MANIFEST_FILE));
}

/** Resolves `a/../b`-free relative paths against the manifest's folder (the package root). */
function referencedFile(files: PackageFiles, ref: string, from: { file: string; path: string }): string {
  const problem = packagePathProblem(ref);
  if (problem) throw new PackageError("INVALID_PACKAGE", `$file '${ref}' ${problem}`, [{ ...from, message: `$file ${problem}` }]);
  if (!Object.hasOwn(files, ref)) throw new PackageError("INVALID_PACKAGE", `$file '${ref}' is not in the package`, [{ ...from, message: `$file '${ref}' not found in the package` }]);
  return ref;
}

/**
 * The manifest with every `{ "$file": "<path>" }` inside a use case's configuration replaced by
 * that file: parsed when it ends in `.json`, as text otherwise (a `.jsonata` expression, say).
 * Files are not followed from inside referenced files, so resolution cannot loop.
 */
export function resolveConfigurations(manifest: BlueprintManifest, files: PackageFiles): BlueprintManifest {
  let resolved = 0;
  const resolve = (value: unknown, path: string): unknown => {
    if (isFileReference(value)) {
      const name = referencedFile(files, value.$file, { file: MANIFEST_FILE, path });
      resolved += files[name]!.byteLength;
      if (resolved > BUNDLE_LIMITS.maxResolvedBytes) {
        throw new PackageError("PACKAGE_TOO_LARGE", `The $file references of ${MANIFEST_FILE} add up to over ${BUNDLE_LIMITS.maxResolvedBytes} bytes (each reference counts)`, [
          { file: MANIFEST_FILE, path, message: `$file references exceed ${BUNDLE_LIMITS.maxResolvedBytes} bytes in all` },
        ]);
      }
      return name.endsWith(".json") ? readJson(files, name) : readText(files, name);
    }
    if (Array.isArray(value)) return value.map((v, i) => resolve(v, `${path}.${i}`));
    if (typeof value === "object" && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: resolve(v, `${path}.${k}`), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return value;
  };
  return {
    ...manifest,
    integrations: manifest.integrations.map((integration, n) => ({
      ...integration,
      use_cases: integration.use_cases.map((uc, i) => {
        const configuration = resolve(uc.configuration, `integrations.${n}.use_cases.${i}.configuration`);
        if (typeof configuration !== "object" || configuration === null || Array.isArray(configuration)) {
          throw new PackageError("INVALID_PACKAGE", "A use case configuration must be a JSON object", [
            { file: MANIFEST_FILE, path: `integrations.${n}.use_cases.${i}.configuration`, message: "the referenced file must hold a JSON object" },
          ]);
        }
        return { ...uc, configuration: configuration as Record<string, unknown> };
      }),
    })),
  };
}
