// The apps SDK in Node: actions validate their input and output, the local harness confines fetch to
// the declared hosts and keeps state, app.json describes the actions, and the built package imports.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { AppManifest, AppRunError, appManifest, defineAction, defineApp, runAction } from "../src";

const normalise = defineAction({
  name: "normalise",
  description: "SAP OData date to ISO",
  input: z.object({ value: z.string() }),
  output: z.object({ iso: z.string() }),
  run: ({ value }) => ({ iso: new Date(Number(/\/Date\((-?\d+)\)\//.exec(value)?.[1] ?? NaN)).toISOString() }),
});
const sync = defineAction({
  name: "sync",
  description: "Counts runs in state and calls the ERP",
  input: z.object({}),
  output: z.object({ runs: z.number(), status: z.number() }),
  permissions: { hosts: ["erp.example.com"] },
  async run(_input, ctx) {
    const runs = ((await ctx.state.get<number>("runs")) ?? 0) + 1;
    await ctx.state.put("runs", runs);
    ctx.log.info("run", runs);
    const res = await ctx.fetch("https://erp.example.com/changes");
    return { runs, status: res.status };
  },
});
const broken = defineAction({ name: "broken", description: "returns the wrong shape", input: z.object({}), output: z.object({ n: z.number() }), run: () => ({ n: "x" }) as never });
const app = defineApp({ name: "@acme/sap-tools", version: "1.0.0", description: "SAP helpers", config: z.object({ client: z.string() }), actions: [normalise, sync, broken] });

describe("defineApp and defineAction", () => {
  it("runs an action with validated input and output", async () => {
    const { output } = await runAction(app, "normalise", { value: "/Date(1700000000000)/" });
    expect(output).toEqual({ iso: "2023-11-14T22:13:20.000Z" });
    await expect(runAction(app, "normalise", { value: 1 })).rejects.toMatchObject({ code: "APP_INPUT_INVALID", issues: [{ path: "value" }] });
    await expect(runAction(app, "broken", {})).rejects.toMatchObject({ code: "APP_OUTPUT_INVALID", issues: [{ path: "n" }] });
    await expect(runAction(app, "missing", {})).rejects.toBeInstanceOf(AppRunError);
  });

  it("confines fetch to the declared hosts and keeps state between runs", async () => {
    const state = new Map<string, unknown>();
    const calls: string[] = [];
    const fetch = (async (url: string) => (calls.push(String(url)), new Response("[]", { status: 200 }))) as typeof globalThis.fetch;
    expect((await runAction(app, "sync", {}, { fetch, state })).output).toEqual({ runs: 1, status: 200 });
    const second = await runAction(app, "sync", {}, { fetch, state });
    expect(second.output).toEqual({ runs: 2, status: 200 });
    expect(second.logs).toEqual([{ level: "info", message: "run 2" }]);
    expect(calls).toEqual(["https://erp.example.com/changes", "https://erp.example.com/changes"]);
    const other = defineApp({ name: "@acme/other", version: "1.0.0", description: "", actions: [defineAction({ ...sync, name: "sync", permissions: { hosts: [] }, run: async (_i, ctx) => ({ runs: 0, status: (await ctx.fetch("https://erp.example.com/")).status }) })] });
    await expect(runAction(other, "sync", {}, { fetch })).rejects.toMatchObject({ code: "APP_HOST_NOT_GRANTED" });
  });

  it("refuses bad names, duplicate actions and foreign objects", () => {
    expect(() => defineAction({ ...normalise, name: "Bad Name", run: () => ({ iso: "" }) })).toThrow(/lowercase/);
    expect(() => defineApp({ name: "not-scoped", version: "1.0.0", description: "", actions: [] })).toThrow();
    expect(() => defineApp({ name: "@acme/x", version: "1.0", description: "", actions: [] })).toThrow();
    expect(() => defineApp({ name: "@acme/x", version: "1.0.0", description: "", actions: [normalise, normalise] })).toThrow(/twice/);
    expect(() => defineApp({ name: "@acme/x", version: "1.0.0", description: "", actions: [{ name: "x" } as never] })).toThrow(/defineAction/);
  });

  it("describes the app in app.json with JSON Schemas of each action", () => {
    const manifest = appManifest(app);
    expect(AppManifest.parse(manifest)).toEqual(manifest);
    expect(manifest.actions.map((a) => a.name)).toEqual(["normalise", "sync", "broken"]);
    expect(manifest.actions[0]!.input_schema).toMatchObject({ type: "object", properties: { value: { type: "string" } }, required: ["value"] });
    expect(manifest.actions[1]!.permissions).toEqual({ hosts: ["erp.example.com"] });
    expect(manifest.config_schema).toMatchObject({ properties: { client: { type: "string" } } });
  });
});

describe("the built package", () => {
  it("imports cleanly from Node (dist, as npm install builds it)", () => {
    const root = resolve(import.meta.dirname, "..");
    const script = `import("@erp-edge/apps-sdk").then((m) => console.log(JSON.stringify(Object.keys(m).filter((k) => ["defineApp", "defineAction", "runAction", "appManifest"].includes(k)).sort())))`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
    expect(JSON.parse(out)).toEqual(["appManifest", "defineAction", "defineApp", "runAction"]);
  });
});
