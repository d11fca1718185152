// Resolving an app's imports of the SDK and zod when the app has not installed them: an app made by
// `erp-edge app init` outside this repository has no node_modules until `npm install`, yet
// `npx erp-edge app build|test` should work at once. The CLI then lends its own copies.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "esbuild";

const SDK_NAME = "@erp-edge/apps-sdk";
/** The bare specifiers lent to apps: the SDK (and its subpaths) and zod (and its subpaths). */
const LENT = /^(@erp-edge\/apps-sdk|zod)(\/.*)?$/;
/** Marks the plugin's own calls to build.resolve, so they are not intercepted again. */
const NESTED = Symbol("erp-edge-sdk-resolve");

let root: string | undefined;

/**
 * The folder of the SDK package this CLI belongs to (the one holding its package.json). Found by
 * walking up from this module, which is dist/cli.js (or a chunk) when built and src/cli/ in tests.
 */
export function sdkRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === SDK_NAME) return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${SDK_NAME} package this CLI belongs to`);
    dir = parent;
  }
}

/** The file the SDK's package.json `exports` maps `subpath` (".", "./blueprint") to for `import`. */
function sdkExport(subpath: string): string | undefined {
  const exports = (JSON.parse(readFileSync(join(sdkRoot(), "package.json"), "utf8")) as { exports?: Record<string, unknown> }).exports ?? {};
  const target = Object.hasOwn(exports, subpath) ? exports[subpath] : undefined;
  const file = typeof target === "string" ? target : (target as { import?: unknown } | undefined)?.import;
  return typeof file === "string" ? join(sdkRoot(), file) : undefined;
}

/**
 * An esbuild plugin: `@erp-edge/apps-sdk` and `zod` resolve as usual from the app's folder (an app
 * that installed them gets its own versions, and inside this repository npm's workspace link
 * serves); only when that fails do they resolve to this CLI's SDK (its package.json `exports`) and
 * the zod that SDK depends on, so the app and the SDK share one zod.
 */
export function sdkFallback(): Plugin {
  return {
    name: "erp-edge-sdk-fallback",
    setup(build) {
      build.onResolve({ filter: LENT }, async (args) => {
        if (args.pluginData === NESTED) return undefined;
        const own = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: NESTED });
        if (own.errors.length === 0) return { path: own.path, external: own.external, namespace: own.namespace, sideEffects: own.sideEffects, suffix: own.suffix };
        if (args.path === SDK_NAME || args.path.startsWith(`${SDK_NAME}/`)) {
          const file = sdkExport(`.${args.path.slice(SDK_NAME.length)}`);
          if (file && existsSync(file)) return { path: file };
          return { errors: [{ text: `${args.path} is not installed in the app and not an entry point of this CLI's ${SDK_NAME} (${sdkRoot()}); run npm install, or rebuild the SDK` }] };
        }
        const lent = await build.resolve(args.path, { kind: args.kind, resolveDir: sdkRoot(), pluginData: NESTED });
        if (lent.errors.length === 0) return { path: lent.path, external: lent.external, namespace: lent.namespace, sideEffects: lent.sideEffects, suffix: lent.suffix };
        return { errors: own.errors };
      });
    },
  };
}
