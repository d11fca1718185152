// The built executable, spawned once as `npx erp-edge` runs it: tsup bundles the host's schemas and
// mapping engine into dist/ for Node, and this proves the bundle works there.
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { beforeAll, expect, it } from "vitest";

const repo = resolve(import.meta.dirname, "../..");

beforeAll(() => {
  // The JavaScript only (declarations are not needed to run it), from this checkout's sources.
  const build = spawnSync(process.execPath, [resolve(repo, "node_modules/tsup/dist/cli-default.js"), "--silent"], { cwd: resolve(repo, "apps-sdk"), encoding: "utf8" });
  expect(build.status, build.stderr).toBe(0);
}, 120_000);

it("erp-edge blueprint test runs the hello-erp fixtures from the built bin", () => {
  const run = spawnSync(process.execPath, [resolve(repo, "apps-sdk/bin/erp-edge.js"), "blueprint", "test", "blueprints/hello-erp"], { cwd: repo, encoding: "utf8" });
  expect(run.stderr).toBe("");
  expect(run.stdout).toMatch(/7 fixtures: 7 passed, 0 failed\n$/);
  expect(run.status).toBe(0);
  const usage = spawnSync(process.execPath, [resolve(repo, "apps-sdk/bin/erp-edge.js"), "nonsense"], { cwd: repo, encoding: "utf8" });
  expect(usage.status).toBe(2);
  expect(usage.stderr).toMatch(/^erp-edge: unknown command 'nonsense'/);
});
