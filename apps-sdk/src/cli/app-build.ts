// `erp-edge app build`: bundles an app's src/index.ts into one ES module (dist/app.js, dependencies
// included, as the host's sandbox loads it) and writes dist/app.json from the app's own definition.
import { mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { appManifest, type AppManifest } from "../app/manifest";
import type { App } from "../app/define";
import { CliError } from "./io";

export interface BuiltApp {
  manifest: AppManifest;
  modulePath: string;
  manifestPath: string;
  bytes: number;
}

/** Builds the app in `dir`; CliError naming the file when the entry is missing or is not a defineApp export. */
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
      logLevel: "silent",
    });
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors ?? [];
    throw new CliError(
      `bundling ${entry} failed`,
      errors.map((e) => (e.location ? `  ${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : `  ${e.text}`)),
    );
  }
  // The bundle is loaded in Node to read the app's definition (names, versions, schemas).
  let app: App | undefined;
  try {
    app = ((await import(`${pathToFileURL(modulePath).href}?build=${Date.now()}`)) as { default?: App }).default;
  } catch (err) {
    throw new CliError(`${modulePath}: the bundle does not load in Node: ${(err as Error).message}`);
  }
  if (app?.kind !== "erp-edge.app") throw new CliError(`${entry}: the default export must be defineApp({ … }) from @erp-edge/apps-sdk`);
  const manifest = appManifest(app, "app.js");
  const manifestPath = join(outDir, "app.json");
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const { size } = await import("node:fs/promises").then((fs) => fs.stat(modulePath));
  return { manifest, modulePath, manifestPath, bytes: size };
}
