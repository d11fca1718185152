// Blueprint installs through the real API: the registry Worker, its R2 bundles and the host's D1.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, createToken, expectError, tenantWithToken } from "./helpers";
import { findOne, post, waitFor } from "./inbound-helpers";
import { newPublisher, publish, sampleManifest, unique, type Publisher } from "./registry-helpers";

// ---- helpers -------------------------------------------------------------------------------------

const mapping = (nameField = "name") => ({
  entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "id" }, { attribute: "first_name", field: nameField }] }],
});

/** A blueprint with one integration, customers + contracts use cases and a secret key. */
function manifest(name: string, version: string, overrides: Record<string, unknown> = {}) {
  return sampleManifest(name, version, {
    environment: [
      { key: "ERP_URL", label: "ERP base URL", type: "String", required: true },
      { key: "ERP_TOKEN", label: "ERP token", type: "SecretString", required: false },
    ],
    integrations: [
      {
        slug: "sample-erp",
        name: "Sample ERP",
        description: "Customers and contracts",
        use_cases: [
          { slug: "customers", name: "Customers", type: "inbound", configuration: { $file: "mappings/customers.json" } },
          { slug: "contracts", name: "Contracts", type: "inbound", configuration: { entities: [{ entity_schema: "contract", unique_ids: ["contract_number"], fields: [{ attribute: "contract_number", field: "id" }] }] } },
        ],
      },
    ],
    ...overrides,
  });
}

/** A publisher and a tenant (with every scope) that trusts it. */
async function scenario(prefix = "mk") {
  const publisher = await newPublisher(prefix);
  const tenant = await tenantWithToken(`Installer ${prefix}`);
  const trusted = await api("PUT", "/v1/blueprints/trust", { token: tenant.token, json: { publishers: [publisher.name] } });
  expect(trusted.status).toBe(200);
  return { publisher, ...tenant, name: `${publisher.name}/erp-${unique()}` };
}

async function publishVersion(publisher: Publisher, name: string, version: string, overrides: Record<string, unknown> = {}, customersField = "name") {
  return publish(publisher, manifest(name, version, overrides), { "mappings/customers.json": mapping(customersField) });
}

const installedPath = (name: string) => `/v1/blueprints/installed/${name}`;

/** Every row of every table of the host's D1, by table: what "nothing changed" compares. */
async function hostTables() {
  const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name").all<{ name: string }>();
  const out: Record<string, string[]> = {};
  for (const { name } of results) {
    const rows = (await env.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>()).results;
    // A token's last use is stamped after the response (waitUntil): it is not configuration.
    out[name] = rows.map((r) => JSON.stringify({ ...r, ...("last_used_at" in r && { last_used_at: null }) })).sort();
  }
  return out;
}

/** The configuration of an integration as a client reads it: no ids' timestamps or versions. */
async function configuration(token: string, id: string) {
  const res = await api("GET", `/v2/integrations/${id}`, { token });
  expect(res.status).toBe(200);
  const { name, description, environment_config, settings, use_cases } = res.body;
  const environment = (await api("GET", `/v1/integrations/${id}/environment`, { token })).body;
  return {
    name,
    description,
    environment_config,
    settings,
    use_cases: (use_cases as Record<string, unknown>[]).map(({ id, slug, name, type, enabled, configuration }) => ({ id, slug, name, type, enabled, configuration })).sort((a, b) => String(a.slug).localeCompare(String(b.slug))),
    environment,
  };
}

async function auditEntries(token: string, action: string) {
  const res = await api("GET", "/v1/audit-log?limit=100", { token });
  expect(res.status).toBe(200);
  return (res.body.entries as { action: string; details: Record<string, unknown> }[]).filter((e) => e.action === action);
}

// ---- tests ---------------------------------------------------------------------------------------

describe("blueprint trust", () => {
  it("trusts @erp-edge by default, refuses untrusted publishers, and installs once trusted", async () => {
    const publisher = await newPublisher("trust");
    const name = `${publisher.name}/erp-${unique()}`;
    await publishVersion(publisher, name, "1.0.0");
    const { token } = await tenantWithToken();

    expect((await api("GET", "/v1/blueprints/trust", { token })).body).toEqual({ publishers: ["@erp-edge"] });
    const refused = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "https://erp.example.com" } } }), 403, "FORBIDDEN");
    expect(refused.publisher).toBe(publisher.name);
    expect(refused.trust).toMatchObject({ method: "PUT", path: "/v1/blueprints/trust" });

    // @erp-edge cannot be removed; duplicates collapse.
    const put = await api("PUT", "/v1/blueprints/trust", { token, json: { publishers: [publisher.name, publisher.name] } });
    expect(put.body).toEqual({ publishers: ["@erp-edge", publisher.name] });
    const installed = await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "https://erp.example.com" } } });
    expect(installed.status).toBe(201);

    // Untrusting blocks upgrades, not what is installed.
    await api("PUT", "/v1/blueprints/trust", { token, json: { publishers: [] } });
    expect((await api("GET", "/v1/blueprints/trust", { token })).body).toEqual({ publishers: ["@erp-edge"] });
    await publishVersion(publisher, name, "1.0.1");
    expectError(await api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "1.0.1" } }), 403, "FORBIDDEN");
    expect((await api("GET", installedPath(name), { token })).body.version).toBe("1.0.0");
  });
});

describe("POST /v1/blueprints/install", () => {
  it("installs a published blueprint whose integration turns events into entities, recorded and audited", async () => {
    const { publisher, token, tokenId, name } = await scenario("inst");
    const published = await publishVersion(publisher, name, "1.0.0");

    const res = await api("POST", "/v1/blueprints/install", { token, json: { name, version: "^1", environment: { ERP_URL: "https://erp.example.com", ERP_TOKEN: "s3cr3t" } } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name, version: "1.0.0", digest: published.digest, from: null, dry_run: false, warnings: [] });
    expect(res.body.plan.map((e: { resource: string; key: string; action: string }) => `${e.resource} ${e.key} ${e.action}`)).toEqual([
      "integration sample-erp create",
      "use_case sample-erp/customers create",
      "use_case sample-erp/contracts create",
      "environment ERP_TOKEN create",
      "environment ERP_URL create",
    ]);
    // Secret values never appear in a plan.
    expect(JSON.stringify(res.body)).not.toContain("s3cr3t");
    expect(res.body.plan.find((e: { key: string }) => e.key === "ERP_TOKEN").diff.changes[0].to).toBe("********");

    const installation = res.body.installation;
    expect(installation).toMatchObject({ name, version: "1.0.0", digest: published.digest, installed_by: `token:${tokenId}` });
    const integrationId = installation.resources.integrations[0].id as string;
    expect(installation.resources.integrations).toEqual([{ slug: "sample-erp", id: integrationId }]);
    expect(installation.resources.use_cases.map((u: { key: string }) => u.key)).toEqual(["sample-erp/customers", "sample-erp/contracts"]);

    const integration = await configuration(token, integrationId);
    expect(integration).toMatchObject({ name: "Sample ERP", description: "Customers and contracts", environment: { ERP_URL: "https://erp.example.com", ERP_TOKEN: "********" } });
    expect(integration.environment_config.map((e: { key: string }) => e.key)).toEqual(["ERP_URL", "ERP_TOKEN"]);

    // The installed integration works: an event becomes an entity.
    const [accepted] = await post(token, integrationId, [{ use_case_slug: "customers", payload: { id: "CUST-1", name: "Ada" } }]);
    expect((await waitFor(token, accepted!.event_id)).status).toBe("done");
    expect((await findOne(token, "contact", "customer_number=CUST-1")).attributes.first_name).toBe("Ada");

    const list = await api("GET", "/v1/blueprints/installed", { token });
    expect(list.body).toEqual({ installed: [installation], next_cursor: null });
    const one = await api("GET", installedPath(name), { token });
    expect(one.body).toMatchObject({ ...installation, history: [{ action: "installed", version: "1.0.0", digest: published.digest, from_version: null }] });

    const [audit] = await auditEntries(token, "blueprint.installed");
    expect(audit!.details).toMatchObject({ name, version: "1.0.0", digest: published.digest, integrations: [integrationId] });

    // Installed already: upgrade instead.
    const again = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "x" } } }), 409, "CONFLICT");
    expect(again.version).toBe("1.0.0");
  });

  it("changes nothing at all on a dry run", async () => {
    const { publisher, token, name } = await scenario("dry");
    await publishVersion(publisher, name, "1.0.0");
    const before = await hostTables();
    const res = await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "https://erp.example.com", ERP_TOKEN: "hidden" }, dry_run: true } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name, version: "1.0.0", dry_run: true, installation: null });
    expect(res.body.plan.filter((e: { action: string }) => e.action === "create")).toHaveLength(5);
    expect(JSON.stringify(res.body)).not.toContain("hidden");
    expect(await hostTables()).toEqual(before);
    expect((await api("GET", "/v1/blueprints/installed", { token })).body.installed).toEqual([]);
  });

  it("refuses a blueprint with one invalid mapping among several and leaves no partial state", async () => {
    const { publisher, token, name } = await scenario("bad");
    const useCase = (slug: string, configuration: unknown) => ({ slug, name: slug, type: "inbound", configuration });
    await publish(
      publisher,
      sampleManifest(name, "1.0.0", {
        integrations: [
          { slug: "first", name: "First", use_cases: [useCase("a", mapping())] },
          {
            slug: "second",
            name: "Second",
            use_cases: [useCase("b", mapping()), useCase("c", { entities: [{ entity_schema: "contact", unique_ids: ["id"], fields: [{ attribute: "id", jsonataExpression: "$$$(" }] }] }), useCase("d", mapping())],
          },
        ],
      }),
    );
    const before = await hostTables();
    const res = await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "https://erp.example.com" } } });
    const details = expectError(res, 422, "UNPROCESSABLE") as { path: string; message: string }[];
    expect(details.length).toBeGreaterThan(0);
    for (const d of details) expect(d.path).toMatch(/^integrations\.1\.use_cases\.1\.configuration\./);
    expect(await hostTables()).toEqual(before);
  });

  it("lists missing required environment values and refuses undeclared ones", async () => {
    const { publisher, token, name } = await scenario("env");
    await publishVersion(publisher, name, "1.0.0", {
      environment: [
        { key: "ERP_URL", label: "URL", type: "String", required: true },
        { key: "ERP_TOKEN", label: "Token", type: "SecretString", required: true },
        { key: "OPTIONAL", label: "Optional", type: "String", required: false },
      ],
    });
    const missing = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { OPTIONAL: "x", ERP_URL: "" } } }), 422, "UNPROCESSABLE");
    expect(missing.map((d: { path: string }) => d.path)).toEqual(["environment.ERP_URL", "environment.ERP_TOKEN"]);
    const unknown = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u", ERP_TOKEN: "t", NOPE: "x" } } }), 422, "UNPROCESSABLE");
    expect(unknown).toEqual([{ path: "environment.NOPE", message: "not declared by the blueprint", code: "unknown_key" }]);
    expect((await api("GET", "/v1/blueprints/installed", { token })).body.installed).toEqual([]);
  });

  it("never picks a yanked version by range, installs an exact pin with a warning, and warns of deprecation", async () => {
    const { publisher, token, name } = await scenario("yank");
    await publishVersion(publisher, name, "1.0.0");
    await publishVersion(publisher, name, "1.1.0");
    const yank = await api("POST", `/v1/registry/packages/${name}/1.1.0/yank`, { token: publisher.token, json: { reason: "broken mapping" } });
    expect(yank.status).toBe(200);
    const deprecate = await api("POST", `/v1/registry/packages/${name}/1.0.0/deprecate`, { token: publisher.token, json: { message: "use 2.x" } });
    expect(deprecate.status).toBe(200);

    const ranged = await api("POST", "/v1/blueprints/install", { token, json: { name, version: "^1", environment: { ERP_URL: "u" }, dry_run: true } });
    expect(ranged.status).toBe(200);
    expect(ranged.body.version).toBe("1.0.0");
    expect(ranged.body.warnings).toEqual(["1.0.0 is deprecated: use 2.x"]);

    const pinned = await api("POST", "/v1/blueprints/install", { token, json: { name, version: "1.1.0", environment: { ERP_URL: "u" } } });
    expect(pinned.status).toBe(201);
    expect(pinned.body.version).toBe("1.1.0");
    expect(pinned.body.warnings[0]).toContain("yanked: broken mapping");

    const none = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name: `${publisher.name}/erp-${unique()}`, environment: {} } }), 404, "NOT_FOUND");
    expect(none).toBeUndefined();
  });

  it("refuses a tampered stored bundle with DIGEST_MISMATCH", async () => {
    const { publisher, token, name } = await scenario("tamper");
    await publishVersion(publisher, name, "1.0.0");
    const listed = await env.BUNDLES.list({ prefix: `bundles/${name}/1.0.0/` });
    expect(listed.objects).toHaveLength(1);
    const key = listed.objects[0]!.key;
    const original = new Uint8Array(await (await env.BUNDLES.get(key))!.arrayBuffer());
    const tampered = original.slice();
    tampered[tampered.length - 40] = tampered[tampered.length - 40]! ^ 0xff;
    await env.BUNDLES.put(key, tampered);

    const before = await hostTables();
    const res = await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u" } } });
    expectError(res, 422, "DIGEST_MISMATCH");
    expect(await hostTables()).toEqual(before);
  });

  it("checks engines, requires and apps against the host and the tenant", async () => {
    const { publisher, token, name } = await scenario("req");
    const base = `${publisher.name}/base-${unique()}`;
    await publishVersion(publisher, base, "1.0.0");
    await publishVersion(publisher, name, "1.0.0", { requires: { [base]: "^1" } });
    const unmet = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u" } } }), 422, "UNPROCESSABLE");
    expect(unmet).toEqual([expect.objectContaining({ path: `requires.${base}`, name: base, range: "^1", installed: null })]);
    expect((await api("POST", "/v1/blueprints/install", { token, json: { name: base, environment: { ERP_URL: "u" } } })).status).toBe(201);
    expect((await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u" } } })).status).toBe(201);
    // A required blueprint is not uninstalled from under its dependents.
    expect(expectError(await api("DELETE", installedPath(base), { token }), 409, "CONFLICT")).toEqual({ dependents: [name] });
    // Nor upgraded out of the range they require.
    await publishVersion(publisher, base, "2.0.0");
    const outOfRange = expectError(await api("POST", `${installedPath(base)}/upgrade`, { token, json: { version: "2.0.0", accept_breaking: true } }), 409, "CONFLICT");
    expect(outOfRange).toEqual({ path: "version", dependents: [{ name, range: "^1" }] });

    const future = `${publisher.name}/future-${unique()}`;
    await publishVersion(publisher, future, "1.0.0", { engines: { "erp-edge": ">=99" } });
    expect(expectError(await api("POST", "/v1/blueprints/install", { token, json: { name: future, environment: { ERP_URL: "u" } } }), 422, "UNPROCESSABLE")).toMatchObject({ path: "engines.erp-edge", required: ">=99" });

    const withApp = `${publisher.name}/apps-${unique()}`;
    const app = `${publisher.name}/missing-app-${unique()}`;
    await publishVersion(publisher, withApp, "1.0.0", { apps: [{ name: app, version: "^1" }] });
    const apps = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name: withApp, environment: { ERP_URL: "u" } } }), 422, "UNPROCESSABLE");
    expect(apps).toEqual([{ path: "apps.0.name", name: app, message: `no app '${app}' in the registry` }]);
  });

  it("applies the host's outbound destination and secrets policies to blueprint use cases", async () => {
    const { publisher, token, tenant, name } = await scenario("policy");
    const outbound = (url: string) => ({
      slug: "push",
      name: "Push",
      type: "outbound",
      configuration: {
        event_catalog_event: "contact.updated",
        mappings: [{ id: "m1", name: "push", jsonata_expression: "$", delivery: { type: "webhook", url, auth: { type: "basic", username: "erp", password: "{{env.ERP_TOKEN}}" } } }],
      },
    });
    const integrationWith = (uc: unknown) => ({ integrations: [{ slug: "out", name: "Out", use_cases: [uc] }] });
    const unsafe = `${publisher.name}/unsafe-${unique()}`;
    await publishVersion(publisher, unsafe, "1.0.0", integrationWith(outbound("http://169.254.169.254/latest")));
    const refused = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name: unsafe, environment: { ERP_URL: "u" } } }), 422, "UNPROCESSABLE");
    expect(refused.map((d: { path: string }) => d.path)).toContain("integrations.0.use_cases.0.configuration.mappings.0.delivery.url");

    const secretUser = `${publisher.name}/secrets-${unique()}`;
    await publishVersion(publisher, secretUser, "1.0.0", integrationWith(outbound(`${env.RECEIVER_URL}/hook`)));
    const limited = await createToken(tenant.id, ["blueprints:install"]);
    const forbidden = expectError(await api("POST", "/v1/blueprints/install", { token: limited.token, json: { name: secretUser, environment: { ERP_URL: "u", ERP_TOKEN: "t" } } }), 403, "FORBIDDEN");
    expect(forbidden).toMatchObject({ required_scope: "secrets:use", environment_keys: ["ERP_TOKEN"] });
    expect((await api("POST", "/v1/blueprints/install", { token, json: { name: secretUser, environment: { ERP_URL: "u", ERP_TOKEN: "t" } } })).status).toBe(201);
  });

  it("lets exactly one of two concurrent installs of a blueprint succeed", async () => {
    const { publisher, token, name } = await scenario("race");
    await publishVersion(publisher, name, "1.0.0");
    const body = { name, environment: { ERP_URL: "u" } };
    const results = await Promise.all([1, 2, 3].map(() => api("POST", "/v1/blueprints/install", { token, json: body })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    const integrations = (await api("GET", "/v2/integrations", { token })).body.integrations;
    expect(integrations).toHaveLength(1);
  });
});

describe("upgrade and rollback", () => {
  it("keeps a tenant change as a conflict, applies the rest, and rolls back exactly, step by step", async () => {
    const { publisher, token, name } = await scenario("upg");
    const v1 = await publishVersion(publisher, name, "1.0.0");
    const installed = await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "https://erp.example.com", ERP_TOKEN: "t0k3n" } } });
    expect(installed.status).toBe(201);
    const integrationId = installed.body.installation.resources.integrations[0].id as string;
    const pristine = await configuration(token, integrationId);

    // The tenant changes the customers mapping and adds a use case of its own.
    const customers = pristine.use_cases.find((u) => u.slug === "customers")!;
    const mine = mapping("tenant_name");
    const edited = await api("PUT", `/v1/integrations/${integrationId}/use-cases/${customers.id}`, { token, json: { slug: "customers", name: "Customers", type: "inbound", configuration: mine } });
    expect(edited.status).toBe(200);
    const own = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: { slug: "own", name: "Own", type: "inbound", configuration: mapping() } });
    expect(own.status).toBe(201);
    const beforeUpgrade = await configuration(token, integrationId);
    const ciphertexts = () => env.DB.prepare("SELECT key, ciphertext FROM environment_values WHERE integration_id = ? ORDER BY key").bind(integrationId).all();
    const storedBefore = (await ciphertexts()).results;

    // 1.1.0 changes the same mapping field (conflict), renames the integration (no conflict) and adds a use case.
    const v2 = await publishVersion(
      publisher,
      name,
      "1.1.0",
      {
        integrations: [
          {
            slug: "sample-erp",
            name: "Sample ERP v1.1",
            description: "Customers and contracts",
            use_cases: [
              { slug: "customers", name: "Customers", type: "inbound", configuration: { $file: "mappings/customers.json" } },
              { slug: "contracts", name: "Contracts", type: "inbound", configuration: { entities: [{ entity_schema: "contract", unique_ids: ["contract_number"], fields: [{ attribute: "contract_number", field: "id" }] }] } },
              { slug: "meters", name: "Meters", type: "inbound", configuration: { entities: [{ entity_schema: "meter", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }] }] } },
            ],
          },
        ],
      },
      "full_name",
    );

    const dry = await api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "^1.1", environment: { ERP_URL: "https://s4.example.com" }, dry_run: true } });
    expect(dry.status).toBe(200);
    expect(await configuration(token, integrationId)).toEqual(beforeUpgrade);
    const byKey = Object.fromEntries(dry.body.plan.map((e: { key: string }) => [e.key, e]));
    expect(byKey["sample-erp"]).toEqual({ resource: "integration", key: "sample-erp", action: "update", diff: { changes: [{ path: "name", from: "Sample ERP", to: "Sample ERP v1.1" }] } });
    const conflict = byKey["sample-erp/customers"];
    expect(conflict.action).toBe("conflict");
    expect(conflict.diff.conflicts).toHaveLength(1);
    expect(conflict.diff.conflicts[0].path).toBe("configuration.entities");
    expect(conflict.diff.conflicts[0].current[0].fields[1].field).toBe("tenant_name");
    expect(conflict.diff.conflicts[0].base[0].fields[1].field).toBe("name");
    expect(conflict.diff.conflicts[0].incoming[0].fields[1].field).toBe("full_name");
    expect(byKey["sample-erp/meters"].action).toBe("create");
    expect(byKey["sample-erp/contracts"].action).toBe("no-op");
    expect(byKey["sample-erp/own"]).toBeUndefined();
    expect(byKey.ERP_URL).toEqual({ resource: "environment", key: "ERP_URL", action: "update", diff: { changes: [{ path: "value", from: "https://erp.example.com", to: "https://s4.example.com" }] } });
    expect(byKey.ERP_TOKEN.action).toBe("no-op");
    expect(dry.body.from).toEqual({ version: "1.0.0", digest: v1.digest });

    const applied = await api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "^1.1", environment: { ERP_URL: "https://s4.example.com" } } });
    expect(applied.status).toBe(200);
    expect(applied.body).toMatchObject({ version: "1.1.0", digest: v2.digest, dry_run: false, installation: { version: "1.1.0", digest: v2.digest } });
    const upgraded = await configuration(token, integrationId);
    expect(upgraded.name).toBe("Sample ERP v1.1");
    expect(upgraded.use_cases.find((u) => u.slug === "customers")!.configuration).toEqual(beforeUpgrade.use_cases.find((u) => u.slug === "customers")!.configuration);
    expect(upgraded.use_cases.map((u) => u.slug)).toEqual(["contracts", "customers", "meters", "own"]);
    expect(upgraded.environment).toEqual({ ERP_URL: "https://s4.example.com", ERP_TOKEN: "********" });
    const [audit] = await auditEntries(token, "blueprint.upgraded");
    expect(audit!.details).toMatchObject({ name, from_version: "1.0.0", from_digest: v1.digest, version: "1.1.0", digest: v2.digest, conflicts: ["use_case:sample-erp/customers"] });

    // Rollback: plan first, then exactly the configuration before the upgrade.
    const plan = await api("POST", `${installedPath(name)}/rollback`, { token, json: { dry_run: true } });
    expect(plan.status).toBe(200);
    expect(plan.body.plan.filter((e: { action: string }) => e.action !== "no-op").map((e: { key: string; action: string }) => `${e.key} ${e.action}`)).toEqual(["sample-erp update", "sample-erp/meters delete", "ERP_URL update"]);
    expect(await configuration(token, integrationId)).toEqual(upgraded);
    const rolled = await api("POST", `${installedPath(name)}/rollback`, { token, json: {} });
    expect(rolled.status).toBe(200);
    expect(rolled.body).toMatchObject({ version: "1.0.0", digest: v1.digest, from: { version: "1.1.0", digest: v2.digest }, installation: { version: "1.0.0" } });
    expect(await configuration(token, integrationId)).toEqual(beforeUpgrade);
    // Secrets too: the stored values are the very ciphertexts of before.
    expect((await ciphertexts()).results).toEqual(storedBefore);
    expect(storedBefore.map((r) => r.key)).toEqual(["ERP_TOKEN", "ERP_URL"]);
    const [rollbackAudit] = await auditEntries(token, "blueprint.rolled_back");
    expect(rollbackAudit!.details).toMatchObject({ name, from_version: "1.1.0", version: "1.0.0", digest: v1.digest });

    // Upgrading again from the restored base gives the same plan.
    const replay = await api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "1.1.0", environment: { ERP_URL: "https://s4.example.com" }, dry_run: true } });
    expect(replay.body.plan).toEqual(dry.body.plan);

    // One step further back: the install itself is undone, its integration removed; the tenant's own use case inside it only with force.
    const guarded = expectError(await api("POST", `${installedPath(name)}/rollback`, { token, json: { dry_run: true } }), 409, "CONFLICT");
    expect(guarded).toEqual({ tenant_use_cases: [{ key: "sample-erp/own", id: own.body.id }] });
    const undoInstall = await api("POST", `${installedPath(name)}/rollback`, { token, json: { force: true } });
    expect(undoInstall.status).toBe(200);
    expect(undoInstall.body).toMatchObject({ version: null, installation: null });
    expectError(await api("GET", `/v2/integrations/${integrationId}`, { token }), 404, "NOT_FOUND");
    expectError(await api("GET", installedPath(name), { token }), 404, "NOT_FOUND");
    expectError(await api("POST", `${installedPath(name)}/rollback`, { token, json: {} }), 404, "NOT_FOUND");
  });

  it("needs accept_breaking to cross a major version and answers the notes", async () => {
    const { publisher, token, name } = await scenario("major");
    await publishVersion(publisher, name, "1.0.0");
    expect((await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u" } } })).status).toBe(201);
    await publishVersion(publisher, name, "3.0.0", { breaking_changes: { "2": "Contracts moved.", "3": "Customers now need **ERP_TOKEN**." } });
    const refused = expectError(await api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "^3" } }), 409, "CONFLICT");
    expect(refused).toMatchObject({ from: "1.0.0", to: "3.0.0", breaking_changes: { "2": "Contracts moved.", "3": "Customers now need **ERP_TOKEN**." } });
    expect((await api("GET", installedPath(name), { token })).body.version).toBe("1.0.0");
    const accepted = await api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "^3", accept_breaking: true } });
    expect(accepted.status).toBe(200);
    expect(accepted.body.version).toBe("3.0.0");
    expectError(await api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "3.0.0" } }), 409, "CONFLICT");
  });

  it("does not lose a tenant edit that races an upgrade", async () => {
    const { publisher, token, name } = await scenario("edit");
    await publishVersion(publisher, name, "1.0.0");
    const installed = await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u" } } });
    const integrationId = installed.body.installation.resources.integrations[0].id as string;
    const customersId = installed.body.installation.resources.use_cases.find((u: { key: string }) => u.key === "sample-erp/customers").id;
    await publishVersion(publisher, name, "1.1.0", {}, "full_name");
    const [upgrade, edit] = await Promise.all([
      api("POST", `${installedPath(name)}/upgrade`, { token, json: { version: "1.1.0" } }),
      api("PUT", `/v1/integrations/${integrationId}/use-cases/${customersId}`, { token, json: { slug: "customers", name: "Customers", type: "inbound", configuration: mapping("tenant_name") } }),
    ]);
    expect(edit.status).toBe(200);
    expect([200, 409]).toContain(upgrade.status);
    const after = await configuration(token, integrationId);
    const field = (after.use_cases.find((u) => u.slug === "customers")!.configuration as ReturnType<typeof mapping>).entities[0]!.fields[1]!.field;
    // Whatever the order, the tenant's edit is what is stored: before the upgrade decided, the merge kept it; after, it overwrote the upgrade.
    expect(field).toBe("tenant_name");
  });
});

describe("DELETE /v1/blueprints/installed/{scope}/{name}", () => {
  it("removes exactly what the install created, and refuses to take the tenant's own use cases without force", async () => {
    const { publisher, token, name } = await scenario("rm");
    await publishVersion(publisher, name, "1.0.0");
    const other = await api("POST", "/v2/integrations", { token, json: { name: "Not from a blueprint", use_cases: [{ slug: "x", name: "X", type: "inbound", configuration: mapping() }] } });
    expect(other.status).toBe(201);
    const before = await hostTables();

    const installed = await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u", ERP_TOKEN: "t" } } });
    const integrationId = installed.body.installation.resources.integrations[0].id as string;
    const own = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: { slug: "own", name: "Own", type: "inbound", configuration: mapping() } });
    expect(own.status).toBe(201);

    const refused = expectError(await api("DELETE", installedPath(name), { token }), 409, "CONFLICT");
    expect(refused).toEqual({ tenant_use_cases: [{ key: "sample-erp/own", id: own.body.id }] });
    const dry = await api("DELETE", `${installedPath(name)}?force=true&dry_run=true`, { token });
    expect(dry.status).toBe(200);
    expect(dry.body.plan.map((e: { key: string; action: string }) => `${e.key} ${e.action}`)).toEqual([
      "sample-erp delete",
      "sample-erp/customers delete",
      "sample-erp/contracts delete",
      "sample-erp/own delete",
      "ERP_TOKEN delete",
      "ERP_URL delete",
    ]);
    expect((await api("GET", `/v2/integrations/${integrationId}`, { token })).status).toBe(200);

    const removed = await api("DELETE", `${installedPath(name)}?force=true`, { token });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ name, version: null, from: { version: "1.0.0" }, installation: null });
    const after = await hostTables();
    // Only the audit log remembers, and the tenant's record of the entity schemas it wrote to (its
    // entities stay with the tenant, and that record finds their stores when the tenant is deleted):
    // every other table is as it was before the install.
    expect({ ...after, audit_log: [], tenant_entity_schemas: [] }).toEqual({ ...before, audit_log: [], tenant_entity_schemas: [] });
    expect((await api("GET", `/v2/integrations/${other.body.id}`, { token })).status).toBe(200);
    const [audit] = await auditEntries(token, "blueprint.uninstalled");
    expect(audit!.details).toMatchObject({ name, version: "1.0.0", digest: installed.body.digest, integrations: [integrationId], forced: true });
    expectError(await api("DELETE", installedPath(name), { token }), 404, "NOT_FOUND");
  });
});

describe("hostile and malformed requests", () => {
  it("answers 4xx envelopes with paths", async () => {
    const { token, tenant } = await tenantWithToken();
    const cases: [string, string, unknown, string][] = [
      ["POST", "/v1/blueprints/install", { name: "not-scoped" }, "name"],
      ["POST", "/v1/blueprints/install", { name: "@Acme/x" }, "name"],
      ["POST", "/v1/blueprints/install", { name: "@acme/x", version: "^^1" }, "version"],
      ["POST", "/v1/blueprints/install", { name: "@acme/x", extra: true }, ""],
      ["POST", "/v1/blueprints/install", { name: "@acme/x", dry_run: "yes" }, "dry_run"],
      ["POST", "/v1/blueprints/install", { name: "@acme/x", environment: { A: 1 } }, "environment.A"],
      ["POST", "/v1/blueprints/install", { name: "@acme/x", environment: [] }, "environment"],
      ["PUT", "/v1/blueprints/trust", { publishers: ["acme"] }, "publishers.0"],
      ["PUT", "/v1/blueprints/trust", { publishers: "@acme" }, "publishers"],
      ["PUT", "/v1/blueprints/trust", {}, "publishers"],
      ["POST", "/v1/blueprints/installed/@acme/x/upgrade", { version: "nope" }, "version"],
      ["POST", "/v1/blueprints/installed/@acme/x/upgrade", { accept_breaking: "true" }, "accept_breaking"],
      ["POST", "/v1/blueprints/installed/@acme/x/rollback", { dry_run: 1 }, "dry_run"],
      ["POST", "/v1/blueprints/installed/acme/x/rollback", {}, "scope"],
      ["GET", "/v1/blueprints/installed/@acme/X", undefined, "name"],
      ["DELETE", "/v1/blueprints/installed/@acme/x?force=yes", undefined, "force"],
      ["GET", "/v1/blueprints/installed?limit=0", undefined, "limit"],
    ];
    for (const [method, path, json, at] of cases) {
      const res = await api(method, path, { token, json });
      const details = expectError(res, 400, "VALIDATION_FAILED") as { path: string }[];
      expect(details.map((d) => d.path), `${method} ${path} ${JSON.stringify(json)}`).toContain(at);
    }
    expectError(await api("POST", "/v1/blueprints/install", { token, body: "{", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON");
    expectError(await api("POST", "/v1/blueprints/install", { json: { name: "@acme/x" } }), 401, "UNAUTHORIZED");
    const narrow = await createToken(tenant.id, ["integrations:read"]);
    expectError(await api("GET", "/v1/blueprints/trust", { token: narrow.token }), 403, "FORBIDDEN");
  });

  it("keeps one tenant's installs, trust and records invisible to another", async () => {
    const { publisher, token, name } = await scenario("iso");
    await publishVersion(publisher, name, "1.0.0");
    expect((await api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "u" } } })).status).toBe(201);
    const stranger = await tenantWithToken();
    expect((await api("GET", "/v1/blueprints/installed", { token: stranger.token })).body.installed).toEqual([]);
    expect((await api("GET", "/v1/blueprints/trust", { token: stranger.token })).body).toEqual({ publishers: ["@erp-edge"] });
    expectError(await api("GET", installedPath(name), { token: stranger.token }), 404, "NOT_FOUND");
    expectError(await api("POST", `${installedPath(name)}/upgrade`, { token: stranger.token, json: { version: "1.0.0" } }), 404, "NOT_FOUND");
    expectError(await api("POST", `${installedPath(name)}/rollback`, { token: stranger.token, json: {} }), 404, "NOT_FOUND");
    expectError(await api("DELETE", installedPath(name), { token: stranger.token }), 404, "NOT_FOUND");
    // The stranger's own install of the same blueprint is its own (once it trusts the publisher).
    await api("PUT", "/v1/blueprints/trust", { token: stranger.token, json: { publishers: [publisher.name] } });
    expect((await api("POST", "/v1/blueprints/install", { token: stranger.token, json: { name, environment: { ERP_URL: "u" } } })).status).toBe(201);
    expect((await api("GET", installedPath(name), { token })).body.version).toBe("1.0.0");
  });
});
