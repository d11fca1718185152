// What may be published as an app package: exactly app.json, the module it names as `main` and,
// optionally, README.md, as `erp-edge app pack|publish` makes it. The CLI checks this before signing,
// the registry at publish.
import { BUNDLE_LIMITS, README_FILE, readReadme, type PackageFiles } from "../blueprint/bundle";
import { PackageError } from "../blueprint/manifest";
import { APP_MANIFEST_FILE } from "./manifest";
import { readAppPackage, type AppPackage } from "./package";

/**
 * Reads an app package for publishing: readAppPackage's checks (app.json valid, its `main` module
 * present, UTF-8, at most 4 MB), app.json within 1 MB (the registry stores it whole in one D1 row,
 * as it does blueprint.json), README.md (if any) UTF-8 within 256 KB (the registry serves it as the
 * package's `readme`), and no other file. A file nobody reads would still be served to every tenant,
 * so a stray one (the sources, a test) is refused rather than carried along.
 */
export function readPublishableApp(files: PackageFiles): AppPackage {
  const manifestBytes = Object.hasOwn(files, APP_MANIFEST_FILE) ? files[APP_MANIFEST_FILE]! : undefined;
  if (manifestBytes && manifestBytes.byteLength > BUNDLE_LIMITS.maxManifestBytes) {
    throw new PackageError("PACKAGE_TOO_LARGE", `${APP_MANIFEST_FILE} is over ${BUNDLE_LIMITS.maxManifestBytes} bytes`, [{ file: APP_MANIFEST_FILE, path: "", message: "file too large" }]);
  }
  const pkg = readAppPackage(files);
  const main = pkg.manifest.main;
  const stray = Object.keys(files).filter((file) => file !== APP_MANIFEST_FILE && file !== main && file !== README_FILE);
  if (stray.length > 0) {
    throw new PackageError(
      "INVALID_PACKAGE",
      `An app package holds ${APP_MANIFEST_FILE}, its main module (${main}) and ${README_FILE} only`,
      stray.map((file) => ({ file, path: "", message: `not part of an app package (${APP_MANIFEST_FILE}, ${main} and ${README_FILE} only)` })),
    );
  }
  readReadme(files);
  return pkg;
}
