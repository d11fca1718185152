// The CLI with what issue #14's blueprints bring: `pull` use cases (checked with the host's schemas and
// its cross-use-case rules), a blueprint's own app in app/ (left out of its archive), and README.md.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { unpackBundle } from "../src/blueprint";
import { main } from "../src/cli/main";

const repo = resolve(import.meta.dirname, "../..");
const temps: string[] = [];

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd: repo });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

const APP = "@erp-edge/hello-erp-delta";
const pull = (configuration: Record<string, unknown> = {}) => ({
  slug: "delta",
  name: "Customer delta",
  type: "pull",
  configuration: { app: APP, action: "delta", schedule: "*/15 * * * *", target_use_case: "customers", input: { page_size: 100 }, ...configuration },
});

/** hello-erp copied to a temp folder with `useCase` added to its integration and `apps` set (null: none). */
async function helloErpWith(useCase: unknown, apps: unknown[] | null = [{ name: APP, version: "^1" }]): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), "erp-edge-pull-")), "hello-erp");
  temps.push(dir);
  await cp(resolve(repo, "blueprints/hello-erp"), dir, { recursive: true });
  const file = join(dir, "blueprint.json");
  const manifest = JSON.parse(await readFile(file, "utf8"));
  manifest.integrations[0].use_cases.push(useCase);
  if (apps) manifest.apps = apps;
  await writeFile(file, JSON.stringify(manifest, null, 2));
  return dir;
}

describe("pull use cases in blueprint validate and test", () => {
  it("accepts a pull use case whose app the blueprint lists, and still runs the inbound fixtures", async () => {
    const dir = await helloErpWith(pull());
    const validated = await run(["blueprint", "validate", dir]);
    expect(validated.stderr).toBe("");
    expect(validated.stdout).toBe("@erp-edge/hello-erp@1.0.0 is valid: 1 integration, 3 use cases, 7 fixtures.");
    expect(validated.code).toBe(0);
    const tested = await run(["blueprint", "test", dir]);
    expect(tested.code).toBe(0);
    expect(tested.stdout).toContain("7 fixtures: 7 passed");
  });

  it("accepts a pull configuration kept in its own file", async () => {
    const dir = await helloErpWith({ ...pull(), configuration: { $file: "pulls/delta.json" } });
    await mkdir(join(dir, "pulls"));
    await writeFile(join(dir, "pulls/delta.json"), JSON.stringify(pull().configuration));
    expect((await run(["blueprint", "validate", dir])).code).toBe(0);
  });

  it("warns when the app is not in apps: installing then needs it installed in the tenant already", async () => {
    const dir = await helloErpWith(pull(), null);
    const result = await run(["blueprint", "validate", dir]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(`warning: integrations.0.use_cases.2.configuration.app: ${APP} is not in "apps"; installing needs it installed in the tenant already`);
  });

  it("names the file and path of a bad schedule, a target that is not inbound, and a missing app reference", async () => {
    const badSchedule = await run(["blueprint", "validate", await helloErpWith(pull({ schedule: "every day" }))]);
    expect(badSchedule.code).toBe(1);
    expect(badSchedule.stderr).toContain("  blueprint.json: integrations.0.use_cases.2.configuration.schedule: not a cron expression");

    const noTarget = await run(["blueprint", "validate", await helloErpWith(pull({ target_use_case: "meters" }))]);
    expect(noTarget.code).toBe(1);
    expect(noTarget.stderr).toContain("  blueprint.json: integrations.0.use_cases.2.configuration.target_use_case: no use case 'meters' in this integration");

    // Referenced from a file: the problem is named in that file, with where it is referenced.
    const selfTarget = await helloErpWith({ ...pull(), configuration: { $file: "pulls/delta.json" } });
    await mkdir(join(selfTarget, "pulls"));
    await writeFile(join(selfTarget, "pulls/delta.json"), JSON.stringify(pull({ target_use_case: "delta" }).configuration));
    const self = await run(["blueprint", "validate", selfTarget]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain("  pulls/delta.json: target_use_case: 'delta' is a pull use case; a pull's events enter through an inbound one (referenced at blueprint.json integrations.0.use_cases.2.configuration)");

    const { app: _, ...noApp } = pull().configuration;
    const missing = await run(["blueprint", "validate", await helloErpWith({ ...pull(), configuration: noApp })]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("  blueprint.json: integrations.0.use_cases.2.configuration.app:");
  });

  it("refuses a fixture aimed at the pull use case: fixtures test inbound mappings", async () => {
    const dir = await helloErpWith(pull());
    await writeFile(join(dir, "fixtures/pulled.json"), JSON.stringify({ use_case: "delta", payload: {}, expected: {} }));
    const result = await run(["blueprint", "validate", dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("  fixtures/pulled.json: use_case: 'delta' is an pull use case; fixtures test inbound mappings");
  });
});

describe("blueprint pack with an app/ folder and a README", () => {
  it("leaves the blueprint's own app out of its archive and keeps README.md", async () => {
    const dir = await helloErpWith(pull());
    await mkdir(join(dir, "app/src"), { recursive: true });
    await writeFile(join(dir, "app/package.json"), JSON.stringify({ name: "hello-erp-delta", private: true, type: "module" }));
    await writeFile(join(dir, "app/src/index.ts"), "export default {};\n");
    // Only the root's app/ is the blueprint's app: a mapping folder named app deeper down travels along.
    await mkdir(join(dir, "mappings/app"));
    await writeFile(join(dir, "mappings/app/extra.json"), "{}");
    const zip = join(dir, "..", "out.zip");
    const packed = await run(["blueprint", "pack", dir, "--out", zip]);
    expect(packed.code).toBe(0);
    const files = Object.keys(unpackBundle(new Uint8Array(await readFile(zip))));
    expect(files).toContain("README.md");
    expect(files).toContain("mappings/app/extra.json");
    expect(files.filter((f) => f.startsWith("app/"))).toEqual([]);
  });

  it("refuses a README over 256 KB before packing", async () => {
    const dir = await helloErpWith(pull());
    await writeFile(join(dir, "README.md"), "x".repeat(256 * 1024 + 1));
    const result = await run(["blueprint", "validate", dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("  README.md: file too large");
  });
});
