// Tests run inside workerd through @cloudflare/vitest-plugin, against the real Worker and local D1.
import { readFileSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { build, type BuildOptions } from "esbuild";
import { defineConfig } from "vitest/config";
import type { Reporter } from "vitest/reporters";
import "./scripts/wrangler-env.mjs";
import { startFakeArchive } from "./scripts/fake-archive.mjs";
import { startReceiver } from "./scripts/receiver.mjs";

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
  // A real webhook receiver on loopback, allowed past destination safety for these tests only.
  const receiver = await startReceiver();
  receiver.server.unref();
  // The fake ERP archive of the file-proxy tests (scripts/fake-archive.mjs), also allowed for these tests only.
  const archive = await startFakeArchive();
  archive.server.unref();
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
                  SECRETS_KEY: "test-secrets-key-0123456789abcdef",
                  TEST_MIGRATIONS: migrations,
                  RECEIVER_URL: `http://127.0.0.1:${receiver.port}`,
                  OUTBOUND_ALLOWED_PRIVATE_HOSTS: `127.0.0.1:${receiver.port}`,
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
