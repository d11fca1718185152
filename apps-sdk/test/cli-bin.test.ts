// The built executable, spawned once as `npx erp-edge` runs it: tsup bundles the host's schemas and
// mapping engine into dist/ for Node, and this proves the bundle works there.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, expect, it } from "vitest";

const repo = resolve(import.meta.dirname, "../..");

beforeAll(() => {
  // The JavaScript only (declarations are not needed to run it), from this checkout's sources. Built
  // beside dist/ and moved in file by file, chunks before entries: other test files build apps
  // against dist/index.js meanwhile, and tsup's own clean would leave dist/ without it for a moment.
  const dist = resolve(repo, "apps-sdk/dist");
  mkdirSync(dist, { recursive: true });
  const next = mkdtempSync(join(dist, ".next-"));
  try {
    const build = spawnSync(process.execPath, [resolve(repo, "node_modules/tsup/dist/cli-default.js"), "--silent", "--out-dir", next], { cwd: resolve(repo, "apps-sdk"), encoding: "utf8" });
    expect(build.status, build.stderr).toBe(0);
    const chunkFirst = (name: string) => (name.startsWith("chunk-") ? 0 : 1);
    for (const name of readdirSync(next).sort((a, b) => chunkFirst(a) - chunkFirst(b))) renameSync(join(next, name), join(dist, name));
  } finally {
    rmSync(next, { recursive: true, force: true });
  }
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

it("erp-edge app init then app test work outside the repository with nothing installed", () => {
  const dir = mkdtempSync(join(tmpdir(), "erp-edge-bin-"));
  try {
    const bin = (...args: string[]) => spawnSync(process.execPath, [resolve(repo, "apps-sdk/bin/erp-edge.js"), ...args], { cwd: dir, encoding: "utf8" });
    const init = bin("app", "init", "hello", "--name", "@acme/hello");
    expect(init.stderr).toBe("");
    expect(init.status).toBe(0);
    // The SDK and zod resolve to the CLI's own copies (sdk-resolve.ts): the built package finds its root from dist/.
    const test = bin("app", "test", "hello");
    expect(test.stderr).toBe("");
    expect(test.stdout).toMatch(/ℹ pass 2\nℹ fail 0/);
    expect(test.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
