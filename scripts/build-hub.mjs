// Builds the Integration Hub's client (src/hub/client/main.ts and its CSS) with esbuild into the Workers
// static assets folder wrangler.toml names (src/hub/public; the output in hub/assets/ is git-ignored), served under /hub/assets/.
// Run by `npm run build:hub`, by scripts/start.mjs before wrangler starts, by vitest.config.mts and by
// the browser tests. `--watch` rebuilds on change (wrangler dev picks the new files up).
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, context } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The assets directory of wrangler.toml; the Hub's files sit under hub/assets/ so their URL paths match. */
export const ASSETS_DIR = path.join(root, "src/hub/public");
const OUT = path.join(ASSETS_DIR, "hub/assets");
const CLIENT = path.join(root, "src/hub/client");

const options = {
  entryPoints: [path.join(CLIENT, "main.ts")],
  outdir: OUT,
  entryNames: "[name]",
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: false,
  // Same input, same bytes: no timestamps or absolute paths end up in the output.
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
};

function copyStatic() {
  mkdirSync(OUT, { recursive: true });
  const dir = path.join(CLIENT, "static");
  for (const name of readdirSync(dir)) copyFileSync(path.join(dir, name), path.join(OUT, name));
}

/** Builds the bundle once; resolves when src/hub/public/hub/assets/{main.js,main.css} are written. */
export async function buildHub() {
  copyStatic();
  await build(options);
  return OUT;
}

/** Builds, then rebuilds on every change until the process ends. */
export async function watchHub() {
  copyStatic();
  const ctx = await context(options);
  await ctx.watch();
  return ctx;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (process.argv.includes("--watch")) await watchHub();
  else console.log(`built the Hub into ${path.relative(root, await buildHub())}`);
}
