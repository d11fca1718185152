// `erp-edge app pack|publish`: an app folder built and packed into the archive that is signed and
// published (app.json, app.js and the folder's README.md if it has one), or an archive made earlier,
// checked as the registry will.
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { readPublishableApp } from "../app/publishable";
import { APP_MANIFEST_FILE } from "../app/manifest";
import { assertNoSecrets, digestOf, packBundle, PackageError, README_FILE, unpackBundle, type PackageFiles } from "../blueprint";
import { buildApp, type BuiltApp } from "./app-build";
import { formatIssue } from "./check";
import { CliError, messageOf } from "./io";
import type { PreparedArchive } from "./publish";

export interface PreparedApp extends PreparedArchive {
  fileCount: number;
  source: "folder" | "archive";
  actions: string[];
  /** The build, when the source was a folder. */
  built?: BuiltApp;
}

/** Checks the files like the registry (readPublishableApp); CliError listing each problem by file and path. */
function checked(files: PackageFiles, path: string) {
  try {
    return readPublishableApp(files).manifest;
  } catch (err) {
    if (err instanceof PackageError) {
      throw new CliError(`${path} is not a valid app package: ${err.message}`, err.issues.map((i) => `  ${formatIssue(i)}`));
    }
    throw err;
  }
}

/**
 * Builds and packs an app folder (`app build`, then app.json and app.js into a deterministic zip),
 * or reads an archive made by `app pack` (kept byte for byte: its digest is what gets signed).
 */
export async function prepareApp(path: string): Promise<PreparedApp> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    throw new CliError(`${path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or folder" : messageOf(err)}`);
  }
  let files: PackageFiles;
  let archive: Uint8Array | undefined;
  let built: BuiltApp | undefined;
  if (stats.isDirectory()) {
    built = await buildApp(path);
    files = { [APP_MANIFEST_FILE]: new Uint8Array(await readFile(built.manifestPath)), [built.manifest.main]: new Uint8Array(await readFile(built.modulePath)) };
    // The folder's README.md travels along (the registry serves it as the package's readme), as blueprints' do.
    const readme = join(path, README_FILE);
    const readmeStats = await lstat(readme).catch(() => undefined);
    if (readmeStats?.isSymbolicLink()) throw new CliError(`${readme}: symbolic links are not packed; copy the file into the app folder`);
    if (readmeStats?.isFile()) files[README_FILE] = new Uint8Array(await readFile(readme));
  } else if (stats.isFile()) {
    archive = new Uint8Array(await readFile(path));
    try {
      files = unpackBundle(archive);
    } catch (err) {
      if (err instanceof PackageError) throw new CliError(`${path}: ${err.message}`, err.issues.map((i) => `  ${formatIssue(i)}`));
      throw err;
    }
  } else throw new CliError(`${path} is neither a folder nor a file`);
  const manifest = checked(files, path);
  try {
    // Checked before anything is signed or sent, archives too: a key bundled into app.js by mistake
    // (an import of the key file, say) would be public for good.
    assertNoSecrets(files);
    archive ??= packBundle(files);
  } catch (err) {
    if (err instanceof PackageError) throw new CliError(`${path}: ${err.message}`, err.issues.map((i) => `  ${formatIssue(i)}`));
    throw err;
  }
  return {
    name: manifest.name,
    version: manifest.version,
    archive,
    digest: await digestOf(archive),
    fileCount: Object.keys(files).length,
    source: built ? "folder" : "archive",
    actions: manifest.actions.map((a) => a.name),
    ...(built && { built }),
  };
}
