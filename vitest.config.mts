// Tests run inside workerd through @cloudflare/vitest-plugin, against the real Worker and local D1.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { build, type BuildOptions } from "esbuild";
import { defineConfig } from "vitest/config";
import type { Reporter } from "vitest/reporters";
import "./scripts/wrangler-env.mjs";
import { startFakeArchive } from "./scripts/fake-archive.mjs";
import { startReceiver } from "./scripts/receiver.mjs";
import { buildHub } from "./scripts/build-hub.mjs";

/** Ends the run with the plain "N passed, N failed" line that CI reads, whatever else is printed. */
const closingLine: Reporter = {
  onTestRunEnd(testModules) {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") count.passed++;
        else if (state === "failed") count.failed++;
        else count.skipped++;
      }
    }
    console.log(`\n${count.passed} passed, ${count.failed} failed${count.skipped ? `, ${count.skipped} skipped` : ""}`);
  },
};

/**
 * The repository's prebuilt blueprints for the tests (test/blueprint-helpers.ts publishes them): each
 * folder of blueprints/ with a blueprint.json, its text files by relative path (its own app/ apart),
 * and its app built exactly as `erp-edge app build` builds it (module and app.json).
 */
async function repoBlueprints(): Promise<Record<string, { files: Record<string, string>; app?: { manifest: unknown; source: string } }>> {
  const { buildApp } = await import("./apps-sdk/src/cli/app-build.ts");
  const root = path.join(import.meta.dirname, "blueprints");
  const out: Record<string, { files: Record<string, string>; app?: { manifest: unknown; source: string } }> = {};
  for (const name of readdirSync(root)) {
    const dir = path.join(root, name);
    if (!existsSync(path.join(dir, "blueprint.json"))) continue;
    const files: Record<string, string> = {};
    const walk = (at: string) => {
      for (const entry of readdirSync(path.join(dir, at))) {
        const rel = at ? `${at}/${entry}` : entry;
        if (rel === "app" || entry === "node_modules" || entry === "dist") continue;
        if (statSync(path.join(dir, rel)).isDirectory()) walk(rel);
        else files[rel] = readFileSync(path.join(dir, rel), "utf8");
      }
    };
    walk("");
    let app;
    if (existsSync(path.join(dir, "app/src/index.ts"))) {
      const built = await buildApp(path.join(dir, "app"));
      app = { manifest: built.manifest, source: readFileSync(built.modulePath, "utf8") };
    }
    out[name] = { files, ...(app && { app }) };
  }
  return out;
}

/** Bundles `entry` into one ES module at `outfile` (both relative to the repository); returns its path. */
async function bundle(entry: string, outfile: string, extra: Partial<BuildOptions> = {}): Promise<string> {
  const out = path.join(import.meta.dirname, outfile);
  await build({
    entryPoints: [path.join(import.meta.dirname, entry)],
    outfile: out,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2023",
    mainFields: ["module", "main"],
    logLevel: "warning",
    ...extra,
  });
  return out;
}

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  const registryMigrations = await readD1Migrations(path.join(import.meta.dirname, "registry/migrations"));
  // The registry Worker runs beside the Worker under test as an auxiliary Worker, the way wrangler
  // dev runs both configs: auxiliary Workers are not bundled by Vite, so it is bundled here first.
  const registryScript = await bundle("registry/src/index.ts", ".wrangler/vitest/registry.mjs", {
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*", "node:*"],
  });
  // A real SDK app (defineApp + zod), bundled into one module as `erp-edge app build` does, for the sandbox tests.
  const appBundle = await bundle("test/fixtures/apps/echo/index.ts", ".wrangler/vitest/apps/echo.js");
  // The example app of the README walkthrough, bundled the same way (its SDK import is the workspace's built package).
  const sapBundle = await bundle("blueprints/examples/sap-normalise/src/index.ts", ".wrangler/vitest/apps/sap-normalise.js");
  const blueprints = await repoBlueprints();
  // The Integration Hub's client, served by the Worker from its static assets (test/hub.test.ts).
  await buildHub();
  // A real webhook receiver on loopback, allowed past destination safety for these tests only.
  const receiver = await startReceiver();
  receiver.server.unref();
  // The fake ERP archive of the file-proxy tests (scripts/fake-archive.mjs), also allowed for these tests only.
  const archive = await startFakeArchive();
  archive.server.unref();
  // The fake ERP services the prebuilt blueprints' tests and walkthroughs use (scripts/fake-sap.mjs:
  // SAP OData; scripts/fake-telematics.mjs: the telematics API), each exporting start(): { server, port }.
  const fake = async (script: string, exported: string) => {
    const file = path.join(import.meta.dirname, "scripts", script);
    if (!existsSync(file)) return null;
    const started = (await (await import(file))[exported]()) as { server: { unref(): void }; port: number };
    started.server.unref();
    return `127.0.0.1:${started.port}`;
  };
  const sap = await fake("fake-sap.mjs", "startFakeSap");
  const telematics = await fake("fake-telematics.mjs", "startFakeTelematics");
  return {
    test: {
      reporters: ["default", closingLine],
      // One run, two runtimes: the Worker's tests inside workerd, the apps SDK and CLI in Node.
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  ADMIN_TOKEN: "test-admin-token",
                  // `MAPPING_COMPILER=off npm test` runs every mapping in the JSONata interpreter (docs/mapping-compiler.md).
                  MAPPING_COMPILER: process.env.MAPPING_COMPILER === "off" ? "off" : "on",
                  SECRETS_KEY: "test-secrets-key-0123456789abcdef",
                  TEST_MIGRATIONS: migrations,
                  RECEIVER_URL: `http://127.0.0.1:${receiver.port}`,
                  // Apps reach private hosts under the same allow-list as webhooks: the fake ERP services are on it.
                  OUTBOUND_ALLOWED_PRIVATE_HOSTS: [`127.0.0.1:${receiver.port}`, sap, telematics].filter(Boolean).join(","),
                  SAP_ODATA_URL: sap ? `http://${sap}` : "",
                  TELEMATICS_API_URL: telematics ? `http://${telematics}` : "",
                  ARCHIVE_URL: `http://127.0.0.1:${archive.port}`,
                  FILE_PROXY_ALLOWED_PRIVATE_HOSTS: `127.0.0.1:${archive.port}`,
                  OUTBOUND_RETRY_BASE_MS: "20",
                  OUTBOUND_RETRY_MAX_MS: "200",
                  OUTBOUND_BREAKER_THRESHOLD: "6",
                  OUTBOUND_BREAKER_COOLDOWN_MS: "400",
                  // Low enough for a test to reach it; bursts of twice this per source address.
                  WEBHOOK_SOURCE_RATE_LIMIT_PER_SECOND: "25",
                  TEST_REGISTRY_MIGRATIONS: registryMigrations,
                  TEST_SDK_APP_BUNDLE: readFileSync(appBundle, "utf8"),
                  TEST_SAP_NORMALISE_BUNDLE: readFileSync(sapBundle, "utf8"),
                  TEST_REPO_BLUEPRINTS: JSON.stringify(blueprints),
                },
                // The registry's own database, also bound here so the setup file can migrate it.
                d1Databases: { REGISTRY_DB: "erp-edge-registry" },
                // The registry's bundle store, bound here so tests can tamper with a stored archive.
                r2Buckets: { BUNDLES: "erp-edge-bundles" },
                workers: [
                  {
                    name: "erp-edge-registry",
                    modules: true,
                    scriptPath: registryScript,
                    compatibilityDate: "2026-11-01",
                    compatibilityFlags: ["nodejs_compat"],
                    d1Databases: { REGISTRY_DB: "erp-edge-registry" },
                    r2Buckets: { BUNDLES: "erp-edge-bundles" },
                  },
                ],
              },
            }),
          ],
          test: {
            name: "worker",
            include: ["test/**/*.test.ts", "src/**/*.test.ts"],
            // Node-side tests of the Node scripts (the fake archive) run in the node project.
            exclude: ["test/node/**"],
            setupFiles: ["./test/apply-migrations.ts"],
            // A hang guard, not a speed check: CI machines are slower and shared, and tests that drive
            // whole backlogs through workerd took over 5 s (vitest's default) there while passing here.
            testTimeout: 60_000,
            hookTimeout: 60_000,
          },
        },
        {
          test: {
            name: "node",
            environment: "node",
            include: ["apps-sdk/test/**/*.test.ts", "test/node/**/*.test.ts"],
            testTimeout: 60_000,
          },
        },
      ],
    },
  };
});
