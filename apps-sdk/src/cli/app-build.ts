// `erp-edge app build`: bundles an app's src/index.ts into one ES module (dist/app.js, dependencies
// included, as the host's sandbox loads it) and writes dist/app.json from the app's own definition.
import { mkdir, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { appManifest, type AppManifest } from "../app/manifest";
import type { App } from "../app/define";
import { CliError } from "./io";
import { sdkFallback } from "./sdk-resolve";

export interface BuiltApp {
  manifest: AppManifest;
  modulePath: string;
  manifestPath: string;
  bytes: number;
}

/** esbuild's errors (thrown by build) as detail lines, `  file:line:column: text`. */
export function bundleErrorLines(err: unknown): string[] {
  const errors = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors ?? [];
  return errors.map((e) => (e.location ? `  ${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : `  ${e.text}`));
}

/**
 * Builds the app in `dir`; CliError naming the file when the entry is missing or is not a defineApp
 * export. `@erp-edge/apps-sdk` and `zod` come from the app's node_modules, else from this CLI's own
 * (sdkFallback), so a freshly initialised app builds before `npm install`.
 */
export async function buildApp(dir: string): Promise<BuiltApp> {
  const entry = join(dir, "src/index.ts");
  if (!existsSync(entry)) throw new CliError(`${entry}: not found; an app's entry is src/index.ts, whose default export is defineApp({ … })`);
  const outDir = join(dir, "dist");
  await mkdir(outDir, { recursive: true });
  const modulePath = join(outDir, "app.js");
  try {
    await build({
      entryPoints: [entry],
      outfile: modulePath,
      bundle: true,
      format: "esm",
      // The sandbox is a Worker isolate: no Node built-ins beyond node:* imports, no dynamic import.
      platform: "neutral",
      target: "es2023",
      mainFields: ["module", "main"],
      conditions: ["worker", "browser"],
      external: ["node:*"],
      plugins: [sdkFallback()],
      logLevel: "silent",
    });
  } catch (err) {
    throw new CliError(`bundling ${entry} failed`, bundleErrorLines(err));
  }
  // The bundle is loaded in Node to read the app's definition (names, versions, schemas).
  let app: App | undefined;
  try {
    app = ((await import(`${pathToFileURL(modulePath).href}?build=${Date.now()}`)) as { default?: App }).default;
  } catch (err) {
    throw new CliError(`${modulePath}: the bundle does not load in Node: ${(err as Error).message}`);
  }
  if (app?.kind !== "erp-edge.app") throw new CliError(`${entry}: the default export must be defineApp({ … }) from @erp-edge/apps-sdk`);
  let manifest: AppManifest;
  try {
    manifest = appManifest(app, "app.js");
  } catch (err) {
    // The definition loaded but does not fit app.json (a description over 2,000 characters, say).
    const issues = (err as { issues?: { path: PropertyKey[]; message: string }[] }).issues ?? [];
    throw new CliError(`${entry}: the app does not fit app.json`, issues.length > 0 ? issues.map((i) => `  app.json: ${i.path.map(String).join(".")}: ${i.message}`) : [`  ${(err as Error).message}`]);
  }
  const manifestPath = join(outDir, "app.json");
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const { size } = await stat(modulePath);
  return { manifest, modulePath, manifestPath, bytes: size };
}
