// Hostile blueprints and racing clients against the install service: secrets that must stay
// secret, configuration bombs that must fail cleanly before D1's limits, dependency cycles, trust
// withdrawn mid-install, and odd requests that must get a 4xx envelope.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BlueprintManifest } from "../apps-sdk/src/blueprint/manifest";
import type { Caller } from "../src/platform/app";
import { AppError } from "../src/platform/errors";
import { SCOPES } from "../src/platform/scopes";
import { installVerified, putTrust, uninstall, upgradeVerified, type VerifiedBlueprint } from "../src/marketplace/service";
import { api, createTenant, createToken, expectError, tenantWithToken } from "./helpers";

const inbound = (id = "id") => ({ entities: [{ entity_schema: "contact", unique_ids: [id], fields: [{ attribute: id, field: id }] }] });

function blueprint(name: string, version: string, overrides: Record<string, unknown> = {}): VerifiedBlueprint {
  const manifest = BlueprintManifest.parse({
    name,
    version,
    title: "Hostile",
    description: { summary: "Built in the test" },
    engines: { "erp-edge": "*" },
    environment: [],
    integrations: [{ slug: "erp", name: "ERP", use_cases: [{ slug: "customers", name: "Customers", type: "inbound", configuration: inbound() }] }],
    ...overrides,
  });
  return { name, version, digest: `sha256-${"A".repeat(43)}=`, manifest, warnings: [] };
}

async function tenant(publishers = ["@evil"]) {
  const { id } = await createTenant("Victim");
  const caller: Caller = { kind: "tenant", tenantId: id, tokenId: "test-token", scopes: [...SCOPES] };
  await putTrust(env.DB, "test", id, { publishers });
  const { token } = await createToken(id);
  return { tenantId: id, caller, token };
}

const upgradeInput = { environment: {}, dry_run: false, accept_breaking: false };
const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as AppError);

/** Every row of the tables an install writes, for "nothing changed". */
async function tenantState(tenantId: string) {
  const q = (sql: string) => env.DB.prepare(sql).bind(tenantId).all().then((r) => r.results);
  return {
    integrations: await q("SELECT * FROM integrations WHERE tenant_id = ?"),
    use_cases: await q("SELECT * FROM use_cases WHERE tenant_id = ?"),
    installs: await q("SELECT * FROM blueprint_installs WHERE tenant_id = ?"),
    values: await q("SELECT v.* FROM environment_values v JOIN integrations i ON i.id = v.integration_id WHERE i.tenant_id = ?"),
  };
}

describe("secrets", () => {
  it("never turns a stored SecretString into a readable String, not even in an integration an upgrade adds", async () => {
    const { tenantId, caller, token } = await tenant();
    const name = "@evil/secret-flip";
    const v1 = blueprint(name, "1.0.0", { environment: [{ key: "ERP_TOKEN", label: "Token", type: "SecretString", required: true }] });
    await installVerified(env, caller, tenantId, v1, { environment: { ERP_TOKEN: "s3cr3t-value" }, dry_run: false });
    // The next version declares the key as a plain String and adds an integration that would inherit it.
    const v2 = blueprint(name, "1.1.0", {
      environment: [{ key: "ERP_TOKEN", label: "Token", type: "String", required: false }],
      integrations: [
        { slug: "erp", name: "ERP", use_cases: [{ slug: "customers", name: "Customers", type: "inbound", configuration: inbound() }] },
        { slug: "spy", name: "Spy", use_cases: [] },
      ],
    });
    const dry = await upgradeVerified(env, caller, tenantId, v2, { ...upgradeInput, dry_run: true });
    expect(JSON.stringify(dry)).not.toContain("s3cr3t-value");
    const result = await upgradeVerified(env, caller, tenantId, v2, upgradeInput);
    expect(JSON.stringify(result)).not.toContain("s3cr3t-value");
    for (const { id } of result.installation!.resources.integrations) {
      const values = await api("GET", `/v1/integrations/${id}/environment`, { token });
      expect(values.status).toBe(200);
      expect(JSON.stringify(values.body)).not.toContain("s3cr3t-value");
    }
    const audit = await env.DB.prepare("SELECT details FROM audit_log WHERE tenant_id = ?").bind(tenantId).all<{ details: string }>();
    expect(JSON.stringify(audit.results)).not.toContain("s3cr3t-value");
  });
});

describe("configuration bombs", () => {
  it("refuses, with a 422 before any write (dry run too), a blueprint whose install would exceed D1's batch limits", async () => {
    const { tenantId, caller } = await tenant();
    const useCases = Array.from({ length: 100 }, (_, i) => ({ slug: `uc-${i}`, name: `UC ${i}`, type: "inbound", configuration: inbound() }));
    const bomb = blueprint("@evil/bomb", "1.0.0", {
      environment: Array.from({ length: 100 }, (_, i) => ({ key: `K${i}`, label: `K${i}`, type: "String", required: false })),
      integrations: Array.from({ length: 20 }, (_, i) => ({ slug: `i-${i}`, name: `I ${i}`, use_cases: useCases })),
    });
    const before = await tenantState(tenantId);
    const environment = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`K${i}`, "v"]));
    for (const dry_run of [true, false]) {
      const err = await failure(installVerified(env, caller, tenantId, bomb, { environment, dry_run }));
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: "UNPROCESSABLE" });
      expect(err!.message).toMatch(/too large/);
    }
    expect(await tenantState(tenantId)).toEqual(before);
  });

  it("refuses a blueprint whose configurations would not fit a D1 row (2 MB) with a 422", async () => {
    const { tenantId, caller } = await tenant();
    // Large but valid configurations: every use case maps many fields with long JSONata expressions.
    const big = (n: number) => ({
      entities: [
        {
          entity_schema: "contact",
          unique_ids: ["id"],
          fields: [{ attribute: "id", field: "id" }, ...Array.from({ length: 200 }, (_, i) => ({ attribute: `a${n}_${i}`, jsonataExpression: `"${"x".repeat(400)}"` }))],
        },
      ],
    });
    const huge = blueprint("@evil/huge", "1.0.0", {
      integrations: [{ slug: "erp", name: "ERP", use_cases: Array.from({ length: 30 }, (_, n) => ({ slug: `uc-${n}`, name: `UC ${n}`, type: "inbound", configuration: big(n) })) }],
    });
    expect(JSON.stringify(huge.manifest).length).toBeGreaterThan(2_000_000);
    const before = await tenantState(tenantId);
    const err = await failure(installVerified(env, caller, tenantId, huge, { environment: {}, dry_run: false }));
    expect(err).toMatchObject({ code: "UNPROCESSABLE" });
    expect(await tenantState(tenantId)).toEqual(before);
  });
});

describe("rollback steps that would not fit a row", () => {
  it("refuses an upgrade whose rollback step (the tenant's large configuration) exceeds a D1 row, before writing", async () => {
    const { tenantId, caller, token } = await tenant();
    const name = "@evil/grown";
    const installed = await installVerified(env, caller, tenantId, blueprint(name, "1.0.0"), { environment: {}, dry_run: false });
    const integrationId = installed.installation!.resources.integrations[0]!.id;
    // The tenant grows the integration within the API's own limits: two use cases near 1 MB each.
    for (const slug of ["big-a", "big-b"]) {
      const fields = [{ attribute: "id", field: "id" }, ...Array.from({ length: 19 }, (_, i) => ({ attribute: `f${i}`, jsonataExpression: `"${"y".repeat(49_000)}"` }))];
      const res = await api("POST", `/v1/integrations/${integrationId}/use-cases`, {
        token,
        json: { slug, name: slug, type: "inbound", configuration: { entities: [{ entity_schema: "contact", unique_ids: ["id"], fields }] } },
      });
      expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(201);
    }
    const before = await tenantState(tenantId);
    const err = await failure(upgradeVerified(env, caller, tenantId, blueprint(name, "1.0.1", { title: "next" }), upgradeInput));
    expect(err).toMatchObject({ code: "UNPROCESSABLE" });
    expect(err!.message).toMatch(/too large/);
    expect(await tenantState(tenantId)).toEqual(before);
  });
});

describe("requires", () => {
  it("refuses an upgrade that would make two blueprints require each other (no uninstall could break the cycle)", async () => {
    const { tenantId, caller } = await tenant();
    const base = "@evil/base";
    const top = "@evil/top";
    await installVerified(env, caller, tenantId, blueprint(base, "1.0.0", { integrations: [] }), { environment: {}, dry_run: false });
    await installVerified(env, caller, tenantId, blueprint(top, "1.0.0", { integrations: [], requires: { [base]: "^1" } }), { environment: {}, dry_run: false });
    const err = await failure(upgradeVerified(env, caller, tenantId, blueprint(base, "1.1.0", { integrations: [], requires: { [top]: "^1" } }), upgradeInput));
    expect(err).toMatchObject({ code: "UNPROCESSABLE", details: [{ path: `requires.${top}` }] });
    // Both can still be removed, dependents first.
    expect(await failure(uninstall(env, caller, tenantId, base, { force: false, dry_run: true }))).toMatchObject({ code: "CONFLICT" });
    await uninstall(env, caller, tenantId, top, { force: false, dry_run: false });
    await uninstall(env, caller, tenantId, base, { force: false, dry_run: false });
  });
});

describe("trust withdrawn while a change is planned", () => {
  /** The tenant's D1, where the tenant's trust list is emptied just before the change's batch runs. */
  function untrustingDb(tenantId: string): D1Database {
    const db = env.DB;
    return new Proxy(db, {
      get(target, prop) {
        if (prop === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            await db.prepare("DELETE FROM blueprint_trust WHERE tenant_id = ?").bind(tenantId).run();
            return db.batch(statements);
          };
        }
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  it("does not install or upgrade from a publisher the tenant stopped trusting mid-way (403, nothing written)", async () => {
    const { tenantId, caller } = await tenant();
    const racing = { ...env, DB: untrustingDb(tenantId) } as Env;
    const before = await tenantState(tenantId);
    const err = await failure(installVerified(racing, caller, tenantId, blueprint("@evil/raced", "1.0.0"), { environment: {}, dry_run: false }));
    expect(err).toMatchObject({ code: "FORBIDDEN" });
    expect(await tenantState(tenantId)).toEqual(before);

    await putTrust(env.DB, "test", tenantId, { publishers: ["@evil"] });
    await installVerified(env, caller, tenantId, blueprint("@evil/raced", "1.0.0"), { environment: {}, dry_run: false });
    const installed = await tenantState(tenantId);
    const upgraded = await failure(upgradeVerified(racing, caller, tenantId, blueprint("@evil/raced", "1.0.1", { title: "next" }), upgradeInput));
    expect(upgraded).toMatchObject({ code: "FORBIDDEN" });
    expect(await tenantState(tenantId)).toEqual(installed);
  });
});

describe("prototype keys", () => {
  it("refuses __proto__ as an environment key with a 422 naming it, and keeps `constructor` slugs as plain data", async () => {
    const { tenantId, caller } = await tenant();
    const err = await failure(
      installVerified(env, caller, tenantId, blueprint("@evil/proto", "1.0.0", { environment: [{ key: "__proto__", label: "P", type: "String", required: true }] }), {
        environment: JSON.parse('{"__proto__":"x"}') as Record<string, string>,
        dry_run: false,
      }),
    );
    expect(err).toMatchObject({ code: "UNPROCESSABLE", details: [{ path: "environment.0.key" }] });

    const odd = (version: string, title = "Hostile") =>
      blueprint("@evil/ctor", version, {
        title,
        integrations: [{ slug: "constructor", name: "Ctor", use_cases: [{ slug: "prototype", name: "Proto", type: "inbound", configuration: inbound() }] }],
      });
    const installed = await installVerified(env, caller, tenantId, odd("1.0.0"), { environment: {}, dry_run: false });
    expect(installed.installation!.resources).toMatchObject({ integrations: [{ slug: "constructor" }], use_cases: [{ key: "constructor/prototype" }] });
    const upgraded = await upgradeVerified(env, caller, tenantId, odd("1.0.1", "again"), upgradeInput);
    expect(upgraded.plan.map((e) => `${e.key} ${e.action}`)).toEqual(["constructor no-op", "constructor/prototype no-op"]);
    const removed = await uninstall(env, caller, tenantId, "@evil/ctor", { force: false, dry_run: false });
    expect(removed.plan.map((e) => `${e.key} ${e.action}`)).toEqual(["constructor delete", "constructor/prototype delete"]);
  });
});

describe("odd requests", () => {
  it("answers 4xx envelopes for encoded, overlong and odd names, versions and bodies", async () => {
    const { token } = await tenantWithToken();
    const long = "a".repeat(1000);
    const paths = [
      "/v1/blueprints/installed/@acme/a%2Fb",
      "/v1/blueprints/installed/%40acme/x%00",
      "/v1/blueprints/installed/@acme/..",
      `/v1/blueprints/installed/@acme/${long}`,
      `/v1/blueprints/installed/@${long}/x`,
      "/v1/blueprints/installed/@/x",
      "/v1/blueprints/installed/@acme/__proto__",
    ];
    for (const path of paths) {
      for (const [method, suffix, json] of [["GET", "", undefined], ["DELETE", "", undefined], ["POST", "/upgrade", {}], ["POST", "/rollback", {}]] as const) {
        const res = await api(method, `${path}${suffix}`, { token, json });
        expect(res.status, `${method} ${path}${suffix}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${method} ${path}${suffix}`).toBeLessThan(500);
        expect(typeof res.body?.error?.code, `${method} ${path}${suffix}`).toBe("string");
      }
    }
    const bodies: unknown[] = [
      { name: "@acme/x", version: "*".repeat(129) },
      { name: "@acme/x", version: "1.0.0 || ".repeat(20) + "2.0.0" },
      { name: "@acme/x", version: 1 },
      { name: "@acme/x", version: null },
      { name: "@acme/x", environment: { ["K".repeat(129)]: "v" } },
      { name: "@acme/x", environment: { K: "v".repeat(10_001) } },
      { name: ["@acme/x"] },
      [],
      "str",
      null,
    ];
    for (const json of bodies) {
      const res = await api("POST", "/v1/blueprints/install", { token, json });
      expect(res.status, JSON.stringify(json).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe("VALIDATION_FAILED");
    }
    // zod drops a `__proto__` key of a record before anything reads it: no pollution, the request goes on without it.
    const proto = await api("POST", "/v1/blueprints/install", { token, json: JSON.parse('{"name": "@acme/x", "environment": {"__proto__": {"polluted": "yes"}}}') as unknown });
    expectError(proto, 403, "FORBIDDEN");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Ranges that are valid but match nothing published, and names nobody published: 404, not 500.
    for (const version of ["latest", "*", ">=0.0.0-0", "1.0.0 || 2.0.0", "2.0.0-rc.1"]) {
      expectError(await api("POST", "/v1/blueprints/install", { token, json: { name: "@erp-edge/nothing-here", version } }), 404, "NOT_FOUND");
    }
  });
});
