// `erp-edge app build`: one ES module with its dependencies, and app.json from the app's definition.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AppManifest } from "../src/app/manifest";
import { main } from "../src/cli/main";

const repo = resolve(import.meta.dirname, "../..");
const temps: string[] = [];
afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd: repo });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** An app folder inside the repository, so `@erp-edge/apps-sdk` and `zod` resolve as in an installed app. */
async function appDir(source: string): Promise<string> {
  const dir = await mkdtemp(join(repo, "apps-sdk/test/.app-"));
  temps.push(dir);
  await mkdir(join(dir, "src"));
  await writeFile(join(dir, "src/index.ts"), source);
  return dir;
}

describe("app build", () => {
  it("bundles src/index.ts into dist/app.js and writes dist/app.json", async () => {
    const dir = await appDir(`
      import { z } from "zod";
      import { defineAction, defineApp } from "@erp-edge/apps-sdk";
      export default defineApp({
        name: "@acme/sap-dates", version: "0.2.0", description: "SAP dates",
        actions: [defineAction({
          name: "to-iso", description: "OData date to ISO", permissions: { hosts: ["erp.example.com"] },
          input: z.object({ value: z.string() }), output: z.string(),
          run: ({ value }) => new Date(Number(/\\((\\d+)\\)/.exec(value)?.[1])).toISOString(),
        })],
      });`);
    const result = await run(["app", "build", dir]);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toContain("@acme/sap-dates@0.2.0: 1 action (to-iso)");
    const manifest = AppManifest.parse(JSON.parse(await readFile(join(dir, "dist/app.json"), "utf8")));
    expect(manifest).toMatchObject({ name: "@acme/sap-dates", version: "0.2.0", main: "app.js", actions: [{ name: "to-iso", permissions: { hosts: ["erp.example.com"] }, output_schema: { type: "string" } }] });
    const bundle = await readFile(join(dir, "dist/app.js"), "utf8");
    // One module: zod and the SDK are inside it, nothing is imported at run time.
    expect(bundle).not.toMatch(/^\s*import\s/m);
    expect(bundle).toContain("erp-edge.app");
  });

  it("names the file when the entry is missing, does not bundle, or is not a defineApp export", async () => {
    const empty = await mkdtemp(join(repo, "apps-sdk/test/.app-"));
    temps.push(empty);
    expect(await run(["app", "build", empty])).toMatchObject({ code: 1, err: expect.stringContaining("src/index.ts: not found") });
    const broken = await appDir(`import { nothing } from "no-such-package"; export default nothing;`);
    expect(await run(["app", "build", broken])).toMatchObject({ code: 1, err: expect.stringContaining("no-such-package") });
    const plain = await appDir(`export default { actions: {} };`);
    expect(await run(["app", "build", plain])).toMatchObject({ code: 1, err: expect.stringContaining("must be defineApp") });
  });
});
