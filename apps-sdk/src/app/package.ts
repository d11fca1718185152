// An app package: the archive `erp-edge app publish` signs and the registry stores. It holds app.json
// (AppManifest) and the one bundled ES module it names as `main`; nothing else is read. The registry
// reads it to accept a publish, and the host reads it again from the archive it verified itself.
import { readJson, readText, type PackageFiles } from "../blueprint/bundle";
import { PackageError } from "../blueprint/manifest";
import { APP_MANIFEST_FILE, AppManifest } from "./manifest";

/** The largest bundled module an app may ship (the SDK and zod inside take about 840 KB unminified). */
export const MAX_APP_MODULE_BYTES = 4 * 1024 * 1024;

export interface AppPackage {
  manifest: AppManifest;
  /** The bundled ES module's source text. */
  source: string;
}

/** Reads and validates an app package's files; PackageError naming the file and path otherwise. */
export function readAppPackage(files: PackageFiles): AppPackage {
  const parsed = AppManifest.safeParse(readJson(files, APP_MANIFEST_FILE));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ file: APP_MANIFEST_FILE, path: i.path.map(String).join("."), message: i.message }));
    throw new PackageError("INVALID_PACKAGE", `${APP_MANIFEST_FILE} is not a valid app manifest`, issues);
  }
  const manifest = parsed.data;
  const bytes = Object.hasOwn(files, manifest.main) ? files[manifest.main]! : undefined;
  if (bytes && bytes.byteLength > MAX_APP_MODULE_BYTES) {
    throw new PackageError("PACKAGE_TOO_LARGE", `${manifest.main} is over ${MAX_APP_MODULE_BYTES} bytes`, [{ file: manifest.main, path: "", message: "file too large" }]);
  }
  return { manifest, source: readText(files, manifest.main) };
}
