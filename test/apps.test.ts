// Apps in tenants through the real API: install with grants and configuration, invoke in the real
// Worker Loader sandbox, ctx.state and ctx.config per (tenant, app), classified errors, run records.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { deleteExpiredRuns } from "../src/apps/service";
import { api, createToken, expectError, tenantWithToken } from "./helpers";
import { invoke, publishApp, trust, type TestAction } from "./app-helpers";
import { newPublisher, publish, sampleManifest, unique, type Publisher } from "./registry-helpers";

const receiver = new URL(env.RECEIVER_URL);

const ACTIONS: Record<string, TestAction> = {
  echo: { body: `ctx.log.info("echo", input); return { input, tenant: ctx.tenant_id, integration: ctx.integration_id };` },
  count: { body: `const n = ((await ctx.state.get("n")) ?? 0) + 1; await ctx.state.put("n", n); return { n };` },
  config: { body: `return { region: ctx.config.region, has_secret: typeof ctx.config.api_key === "string" };` },
  call: { body: `const res = await ctx.fetch(input.url, { method: "POST", body: "{}" }); return { status: res.status };`, hosts: [receiver.host, "erp.example.com"] },
  loop: { body: `for (;;) {}` },
  boom: { body: `throw new Error("SAP said no: document 4711 is locked");` },
  big: { body: `return "x".repeat(2_000_000);` },
};

const CONFIG_SCHEMA = {
  type: "object",
  properties: { region: { type: "string", enum: ["eu", "us"] }, api_key: { type: "string", writeOnly: true } },
  required: ["region"],
  additionalProperties: false,
};

let publisher: Publisher;
let name: string;

beforeAll(async () => {
  publisher = await newPublisher("apps");
  name = `${publisher.name}/tools-${unique()}`;
  await publishApp(publisher, name, "1.0.0", ACTIONS, { configSchema: CONFIG_SCHEMA });
  await publishApp(publisher, name, "1.1.0", { ...ACTIONS, echo: { body: `return { version: "1.1.0", input };` } }, { configSchema: CONFIG_SCHEMA });
});

/** A tenant that trusts the publisher and installed the app (version ^1.0.0 unless said). */
async function installed(extra: Record<string, unknown> = {}) {
  const t = await tenantWithToken();
  await trust(t.token, publisher.name);
  const res = await api("POST", "/v1/apps/install", { token: t.token, json: { name, version: "1.0.0", config: { region: "eu", api_key: "k-123" }, ...extra } });
  if (res.status !== 201) throw new Error(`install: ${res.status} ${JSON.stringify(res.body)}`);
  return t;
}

describe("installing apps", () => {
  it("lets a tenant grant its own system under a host pattern the app declares (*.domain)", async () => {
    const wild = `${publisher.name}/wild-${unique()}`;
    await publishApp(publisher, wild, "1.0.0", { call: { body: ACTIONS.call!.body, hosts: ["*.s4hana.cloud.sap", receiver.host] } });
    const t = await tenantWithToken();
    await trust(t.token, publisher.name);
    const install = (hosts: string[]) => api("POST", "/v1/apps/install", { token: t.token, json: { name: wild, version: "1.0.0", grants: { hosts }, dry_run: true } });
    expect((await install(["my401.s4hana.cloud.sap"])).status).toBe(200);
    expect((await install(["*.s4hana.cloud.sap"])).status).toBe(200);
    expectError(await install(["s4hana.cloud.sap"]), 422, "UNPROCESSABLE");
    expectError(await install(["*.cloud.sap"]), 422, "UNPROCESSABLE");
    expectError(await install(["evil.example.com"]), 422, "UNPROCESSABLE");
  });


  it("installs a verified app, shows the hosts it asks for, masks secrets, and lists it", async () => {
    const t = await tenantWithToken();
    expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name, config: { region: "eu" } } }), 403, "FORBIDDEN");
    await trust(t.token, publisher.name);
    const res = await api("POST", "/v1/apps/install", { token: t.token, json: { name, version: "^1.0.0", grants: { hosts: ["erp.example.com"] }, config: { region: "eu", api_key: "k-1" } } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name, version: "1.1.0", version_range: "^1.0.0", grants: { hosts: ["erp.example.com"] }, config: { region: "eu", api_key: "*****" }, installed_via: null });
    expect(res.body.requested_hosts.sort()).toEqual([receiver.host, "erp.example.com"].sort());
    expect(res.body.digest).toMatch(/^sha256-/);
    const raw = await env.DB.prepare("SELECT config FROM app_installs WHERE tenant_id = ? AND name = ?").bind(t.tenant.id, name).first<{ config: string }>();
    expect(raw!.config).not.toContain("k-1");

    const list = await api("GET", "/v1/apps/installed", { token: t.token });
    expect(list.body.installed.map((a: { name: string }) => a.name)).toEqual([name]);
    expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name, config: { region: "eu" } } }), 409, "CONFLICT");
  });

  it("refuses grants the app does not declare, configuration its schema refuses, and unknown apps", async () => {
    const t = await tenantWithToken();
    await trust(t.token, publisher.name);
    const grant = expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name, grants: { hosts: ["evil.example.net"] }, config: { region: "eu" } } }), 422, "UNPROCESSABLE");
    expect(grant[0]).toMatchObject({ path: "grants.hosts.0" });
    const config = expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name, config: { region: "mars" } } }), 422, "UNPROCESSABLE");
    expect(JSON.stringify(config)).toContain("config");
    expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name: `${publisher.name}/nope-${unique()}` } }), 404, "NOT_FOUND");
    expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name, version: "^9.0.0", config: { region: "eu" } } }), 422, "UNPROCESSABLE");
    expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name: "not a name" } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v1/apps/install", { token: t.token, json: { name, __proto__: { x: 1 }, extra: 1 } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v1/apps/install", { token: t.token, body: "{", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON");
    // Nothing was stored by any refused install.
    expect((await api("GET", "/v1/apps/installed", { token: t.token })).body.installed).toEqual([]);
  });

  it("changes version, grants and configuration with PATCH; a masked secret keeps its value", async () => {
    const t = await installed();
    const path = `/v1/apps/installed/${name}`;
    const patched = await api("PATCH", path, { token: t.token, json: { version: "1.1.0", grants: { hosts: [receiver.host] }, config: { region: "us", api_key: "*****" } } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ version: "1.1.0", grants: { hosts: [receiver.host] }, config: { region: "us", api_key: "*****" } });
    const run = await invoke(t.token, name, "config", { input: {} });
    expect(run.body.output).toEqual({ region: "us", has_secret: true });
    expect((await invoke(t.token, name, "echo", { input: 1 })).body.output).toEqual({ version: "1.1.0", input: 1 });
    expectError(await api("PATCH", path, { token: t.token, json: { grants: { hosts: ["other.example.org"] } } }), 422, "UNPROCESSABLE");
    expectError(await api("PATCH", path, { token: t.token, json: { color: "red" } }), 400, "VALIDATION_FAILED");
    expectError(await api("PATCH", `/v1/apps/installed/${publisher.name}/missing`, { token: t.token, json: {} }), 404, "APP_NOT_INSTALLED");
  });

  it("removes an app and forgets its state", async () => {
    const t = await installed();
    await invoke(t.token, name, "count", { input: {} });
    const del = await api("DELETE", `/v1/apps/installed/${name}`, { token: t.token });
    expect(del.status).toBe(204);
    expectError(await invoke(t.token, name, "count", { input: {} }), 404, "APP_NOT_INSTALLED");
    await api("POST", "/v1/apps/install", { token: t.token, json: { name, config: { region: "eu" } } });
    expect((await invoke(t.token, name, "count", { input: {} })).body.output).toEqual({ n: 1 });
  });
});

describe("invoking actions", () => {
  it("runs an action with the tenant's context and records the run with its logs", async () => {
    const t = await installed();
    const integration = await api("POST", "/v2/integrations", { token: t.token, json: { name: "ERP" } });
    const res = await invoke(t.token, name, "echo", { input: { kunnr: "0042" }, integration_id: integration.body.id });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ output: { input: { kunnr: "0042" }, tenant: t.tenant.id, integration: integration.body.id }, logs: [{ level: "info", message: 'echo {"kunnr":"0042"}' }] });
    const runs = await api("GET", `/v1/apps/runs?app=${encodeURIComponent(name)}`, { token: t.token });
    expect(runs.body.runs[0]).toMatchObject({ id: res.body.run_id, app: name, action: "echo", trigger: "invoke", outcome: "ok", integration_id: integration.body.id, logs: [{ level: "info" }] });
  });

  it("keeps state between runs, per tenant", async () => {
    const a = await installed();
    const b = await installed();
    expect((await invoke(a.token, name, "count", { input: {} })).body.output).toEqual({ n: 1 });
    expect((await invoke(a.token, name, "count", { input: {} })).body.output).toEqual({ n: 2 });
    expect((await invoke(b.token, name, "count", { input: {} })).body.output).toEqual({ n: 1 });
  });

  it("one tenant cannot invoke, configure, read the state of or see another tenant's app", async () => {
    const a = await installed();
    await invoke(a.token, name, "count", { input: {} });
    const other = await tenantWithToken();
    expectError(await invoke(other.token, name, "count", { input: {} }), 404, "APP_NOT_INSTALLED");
    expectError(await api("GET", `/v1/apps/installed/${name}`, { token: other.token }), 404, "APP_NOT_INSTALLED");
    expectError(await api("PATCH", `/v1/apps/installed/${name}`, { token: other.token, json: { config: { region: "us" } } }), 404, "APP_NOT_INSTALLED");
    expect((await api("GET", "/v1/apps/runs", { token: other.token })).body.runs).toEqual([]);
    // An integration of another tenant cannot be named as ctx.integration_id.
    const theirs = await api("POST", "/v2/integrations", { token: other.token, json: { name: "Theirs" } });
    expectError(await invoke(a.token, name, "echo", { input: {}, integration_id: theirs.body.id }), 404, "NOT_FOUND");
  });

  it("lets the app reach a granted host and fails an ungranted one inside the app", async () => {
    const t = await installed({ grants: { hosts: [receiver.host] } });
    const ok = await invoke(t.token, name, "call", { input: { url: `${env.RECEIVER_URL}/hook/apps-route` } });
    expect(ok.status).toBe(200);
    expect(ok.body.output).toEqual({ status: 200 });
    const refused = await invoke(t.token, name, "call", { input: { url: "https://erp.example.com/odata" } });
    const details = expectError(refused, 502, "APP_HOST_NOT_GRANTED");
    expect(details.run_id).toBeTruthy();
  });

  it("classifies a throwing app, an endless loop and oversized output; the next request is served", async () => {
    const t = await installed();
    const boom = await invoke(t.token, name, "boom", { input: {} });
    expectError(boom, 502, "APP_FAILED");
    expect(boom.body.error.message).toContain("document 4711 is locked");
    const loop = expectError(await invoke(t.token, name, "loop", { input: {} }), 422, "APP_LIMIT_EXCEEDED");
    expect(["steps", "cpu", "time"]).toContain(loop.limit);
    const big = expectError(await invoke(t.token, name, "big", { input: {} }), 422, "APP_LIMIT_EXCEEDED");
    expect(big.limit).toBe("output_size");
    expect((await invoke(t.token, name, "echo", { input: 1 })).status).toBe(200);
    const failed = await api("GET", "/v1/apps/runs?outcome=APP_FAILED", { token: t.token });
    expect(failed.body.runs[0]).toMatchObject({ action: "boom", error: expect.stringContaining("4711") });
  });

  it("keeps runs for 30 days", async () => {
    const t = await installed();
    const run = (await invoke(t.token, name, "echo", { input: 1 })).body.run_id as string;
    const old = new Date(Date.now() - 31 * 86_400_000).toISOString();
    await env.DB.prepare("UPDATE app_runs SET started_at = ? WHERE id = ?").bind(old, run).run();
    await deleteExpiredRuns(env.DB);
    expect((await api("GET", "/v1/apps/runs", { token: t.token })).body.runs).toEqual([]);
  });

  it("answers bad invocations with the error envelope", async () => {
    const t = await installed();
    expectError(await invoke(t.token, name, "nope", { input: {} }), 404, "NOT_FOUND");
    expectError(await invoke(t.token, name, "echo", { input: {}, extra: true }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `/v1/apps/${name}/actions/Bad%20Name/invoke`, { token: t.token, json: { input: {} } }), 400, "VALIDATION_FAILED");
    expectError(await api("GET", "/v1/apps/runs?cursor=nope", { token: t.token }), 400, "INVALID_CURSOR");
    const readOnly = await createToken(t.tenant.id, ["integrations:read"]);
    expectError(await invoke(readOnly.token, name, "echo", { input: {} }), 403, "FORBIDDEN");
    expectError(await invoke("", name, "echo", { input: {} }), 401, "UNAUTHORIZED");
  });
});

describe("apps a blueprint brings", () => {
  it("installs the apps a blueprint lists in the same plan, keeps them while it is installed, removes them with it", async () => {
    const blueprint = `${publisher.name}/with-app-${unique()}`;
    await publish(publisher, sampleManifest(blueprint, "1.0.0", { apps: [{ name, version: "^1.0.0", grants: { hosts: ["erp.example.com"] } }] }));
    const t = await tenantWithToken();
    await trust(t.token, publisher.name);
    const res = await api("POST", "/v1/blueprints/install", { token: t.token, json: { name: blueprint, environment: { ERP_URL: "https://erp.example.com" } } });
    expect(res.status).toBe(201);
    expect(res.body.plan).toContainEqual(expect.objectContaining({ resource: "app", key: name, action: "create" }));
    const installedApp = await api("GET", `/v1/apps/installed/${name}`, { token: t.token });
    expect(installedApp.body).toMatchObject({ version: "1.1.0", installed_via: blueprint, grants: { hosts: ["erp.example.com"] } });
    expect((await invoke(t.token, name, "count", { input: {} })).body.output).toEqual({ n: 1 });
    expectError(await api("DELETE", `/v1/apps/installed/${name}`, { token: t.token }), 409, "CONFLICT");

    expect((await api("DELETE", `/v1/blueprints/installed/${blueprint}`, { token: t.token })).status).toBe(200);
    expectError(await api("GET", `/v1/apps/installed/${name}`, { token: t.token }), 404, "APP_NOT_INSTALLED");
  });

  it("refuses the whole blueprint when an app's grant exceeds what the app declares, storing nothing", async () => {
    const blueprint = `${publisher.name}/greedy-${unique()}`;
    await publish(publisher, sampleManifest(blueprint, "1.0.0", { apps: [{ name, version: "^1.0.0", grants: { hosts: ["evil.example.net"] } }] }));
    const t = await tenantWithToken();
    await trust(t.token, publisher.name);
    const res = await api("POST", "/v1/blueprints/install", { token: t.token, json: { name: blueprint, environment: { ERP_URL: "https://erp.example.com" } } });
    const details = expectError(res, 422, "UNPROCESSABLE");
    expect(details[0]).toMatchObject({ path: "apps.0.grants.hosts.0" });
    expect((await api("GET", "/v1/apps/installed", { token: t.token })).body.installed).toEqual([]);
    expect((await api("GET", "/v1/blueprints/installed", { token: t.token })).body.installed).toEqual([]);
  });
});

describe("hostile apps and configurations", () => {
  it("answers an app that tampers with the harness's built-ins with a classified error, never a 500, within its limits", async () => {
    const hostile = `${publisher.name}/tamper-${unique()}`;
    await publishApp(publisher, hostile, "1.0.0", {
      // Replaces JSON.stringify for everything after it: the host must not trust what comes back.
      stringify: { body: `JSON.stringify = () => "not json{"; return { a: 1 };` },
      // Tries to catch the harness's run record to lift its step budget, then loops.
      // (the module's top level, below, tries to catch the harness's run record to lift its step budget)
      budget: { body: `let n = 0; for (let i = 0; i < 30_000_000; i++) n++; return n;` },
      // Makes the output look small to the harness.
      encode: { body: `TextEncoder.prototype.encode = () => new Uint8Array(1); return "x".repeat(3_000_000);` },
    }, { prelude: `const set = Map.prototype.set; Map.prototype.set = function (k, v) { if (v && typeof v === "object" && "budget" in v) v.budget = 1e15; return set.call(this, k, v); };` });
    const t = await tenantWithToken();
    await trust(t.token, publisher.name);
    expect((await api("POST", "/v1/apps/install", { token: t.token, json: { name: hostile } })).status).toBe(201);
    const first = await invoke(t.token, hostile, "stringify", { input: {} });
    expect(first.status).toBeLessThan(500);
    const budget = await invoke(t.token, hostile, "budget", { input: {} });
    expect(expectError(budget, 422, "APP_LIMIT_EXCEEDED").limit).toBe("steps");
    const big = await invoke(t.token, hostile, "encode", { input: {} });
    expect(big.status).toBeLessThan(500);
    expect(big.status).not.toBe(200);
  });

  it("masks nested and oddly named secrets, keeps them on a masked PATCH, and survives hostile config schemas", async () => {
    const t = await installed();
    // The fixture's schema refuses extra keys, so a fresh app with an open schema carries the nested secrets.
    const open = `${publisher.name}/open-${unique()}`;
    await publishApp(publisher, open, "1.0.0", { config: ACTIONS.config! }, { configSchema: { type: "object", properties: { erp: { type: "object", properties: { url: { type: "string" }, password: { type: "string" } } }, code: { type: "string", pattern: "^(a+)+$" } } } });
    const res = await api("POST", "/v1/apps/install", { token: t.token, json: { name: open, config: { erp: { url: "https://erp.example.com", password: "hunter2" }, pwd: "p", authorization: "Bearer abc", code: `${"a".repeat(40)}!` } } });
    expect(res.status).toBe(201);
    expect(res.body.config).toEqual({ erp: { url: "https://erp.example.com", password: "*****" }, pwd: "*****", authorization: "*****", code: `${"a".repeat(40)}!` });
    expect(JSON.stringify((await api("GET", `/v1/apps/installed/${open}`, { token: t.token })).body)).not.toContain("hunter2");
    const patched = await api("PATCH", `/v1/apps/installed/${open}`, { token: t.token, json: { config: { erp: { url: "https://erp2.example.com", password: "*****" }, pwd: "*****", authorization: "*****" } } });
    expect(patched.body.config).toEqual({ erp: { url: "https://erp2.example.com", password: "*****" }, pwd: "*****", authorization: "*****" });
    // The masked values kept the stored secrets: the app still sees them.
    const stored = await env.DB.prepare("SELECT config FROM app_installs WHERE tenant_id = ? AND name = ?").bind(t.tenant.id, open).first<{ config: string }>();
    const { decryptValue } = await import("../src/platform/crypto");
    expect(JSON.parse(await decryptValue(env.SECRETS_KEY, stored!.config, `app-config:${t.tenant.id}:${open}`))).toMatchObject({ erp: { password: "hunter2" }, pwd: "p", authorization: "Bearer abc" });

    const cyclic = `${publisher.name}/cyclic-${unique()}`;
    await publishApp(publisher, cyclic, "1.0.0", { config: ACTIONS.config! }, { configSchema: { $ref: "#", type: "object" } });
    const refused = await api("POST", "/v1/apps/install", { token: t.token, json: { name: cyclic, config: { a: 1 } } });
    expect(refused.status).toBeLessThan(500);
  });
});
