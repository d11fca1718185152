// A package as the CLI reads it: a blueprint folder (walked, hidden files left out) or a packed archive.
import { lstat, readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { BUNDLE_LIMITS, MANIFEST_FILE, PackageError, unpackBundle, type PackageFiles } from "../blueprint";
import { CliError, messageOf } from "./io";

export interface PackageSource {
  kind: "folder" | "archive";
  /** The folder or archive path as given, resolved. */
  path: string;
  files: PackageFiles;
  /** The archive's bytes, when the source is one (published as is, never re-packed). */
  archive?: Uint8Array;
}

/** Names never packed from a folder: hidden files and folders (.git, .DS_Store) and node_modules. */
const skipped = (name: string) => name.startsWith(".") || name === "node_modules";

/**
 * The folder at a blueprint's root that holds the blueprint's own app (its sources, tests, build):
 * published on its own, as a package of kind app (`erp-edge app publish <blueprint>/app`), before
 * the blueprint that lists it in `apps`; never part of the blueprint's archive.
 */
export const BLUEPRINT_APP_FOLDER = "app";

async function walk(root: string): Promise<PackageFiles> {
  const files: PackageFiles = Object.create(null);
  let count = 0;
  let total = 0;
  const visit = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      if (skipped(entry.name)) continue;
      if (dir === root && entry.name === BLUEPRINT_APP_FOLDER && entry.isDirectory()) continue;
      const full = join(dir, entry.name);
      const name = relative(root, full).split(sep).join("/");
      if (entry.isSymbolicLink()) throw new CliError(`${name}: symbolic links are not packed; copy the file into the blueprint folder`);
      if (entry.isDirectory()) {
        await visit(full);
        continue;
      }
      if (!entry.isFile()) continue;
      if (++count > BUNDLE_LIMITS.maxFiles) throw new CliError(`${root} holds more than ${BUNDLE_LIMITS.maxFiles} files, the most a package may hold`);
      const bytes = new Uint8Array(await readFile(full));
      total += bytes.byteLength;
      if (total > BUNDLE_LIMITS.maxUnpackedBytes) throw new CliError(`${root} holds more than ${BUNDLE_LIMITS.maxUnpackedBytes} bytes, the most a package may unpack to`);
      files[name] = bytes;
    }
  };
  await visit(root);
  return files;
}

/** Reads a blueprint folder or a `.zip` archive made by `blueprint pack`. */
export async function readPackageSource(path: string): Promise<PackageSource> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    throw new CliError(`${path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or folder" : messageOf(err)}`);
  }
  if (stats.isDirectory()) {
    const files = await walk(path);
    if (!Object.hasOwn(files, MANIFEST_FILE)) throw new CliError(`${path} has no ${MANIFEST_FILE}; is it a blueprint folder?`);
    return { kind: "folder", path, files };
  }
  if (!stats.isFile()) throw new CliError(`${path} is neither a folder nor a file`);
  const archive = new Uint8Array(await readFile(path));
  try {
    return { kind: "archive", path, files: unpackBundle(archive), archive };
  } catch (err) {
    if (err instanceof PackageError) throw new CliError(`${path}: ${err.message}`, err.issues.map((i) => `${i.file}: ${i.message}`));
    throw err;
  }
}
