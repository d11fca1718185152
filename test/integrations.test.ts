import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { resolveEnvironment } from "../src/integrations/service";
import { api, createToken, expectError, tenantWithToken, type ApiResponse } from "./helpers";

const inbound = (slug: string, extra: Record<string, unknown> = {}) => ({
  name: `Sync ${slug}`,
  slug,
  type: "inbound",
  configuration: { entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "id" }] }] },
  ...extra,
});

const integration = (extra: Record<string, unknown> = {}) => ({
  name: "SAP IS-U",
  description: "Customer master data",
  environment_config: [
    { key: "API_URL", label: "ERP API URL", type: "String", required: true },
    { key: "API_KEY", label: "ERP API key", type: "SecretString", required: true },
  ],
  use_cases: [inbound("customers")],
  ...extra,
});

async function createIntegration(token: string, body = integration()) {
  const res = await api("POST", "/v2/integrations", { token, json: body });
  if (res.status !== 201) throw new Error(`integration: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

describe("/v2/integrations", () => {
  it("creates, reads, lists, replaces and deletes", async () => {
    const { token } = await tenantWithToken();
    const created = await createIntegration(token);
    expect(created).toMatchObject({ name: "SAP IS-U", description: "Customer master data" });
    expect(created.use_cases).toHaveLength(1);
    expect(created.use_cases[0]).toMatchObject({ slug: "customers", type: "inbound", enabled: true });
    expect(created.environment_config[1]).toMatchObject({ key: "API_KEY", type: "SecretString", required: true });

    expect((await api("GET", `/v2/integrations/${created.id}`, { token })).body).toEqual(created);

    for (let i = 0; i < 4; i++) await createIntegration(token, integration({ name: `n${i}`, use_cases: [] }));
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ApiResponse = await api("GET", `/v2/integrations?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token });
      expect(page.status).toBe(200);
      ids.push(...page.body.integrations.map((i: { id: string }) => i.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(ids).toHaveLength(5);
    expect(ids[0]).toBe(created.id);

    expect((await api("DELETE", `/v2/integrations/${created.id}`, { token })).status).toBe(200);
    expectError(await api("GET", `/v2/integrations/${created.id}`, { token }), 404, "NOT_FOUND");
  });

  it("applies a declarative PUT: update by id, create without id, delete the missing, in one call", async () => {
    const { token } = await tenantWithToken();
    const created = await createIntegration(token, integration({ use_cases: [inbound("customers"), inbound("contracts"), inbound("meters")] }));
    const [customers, contracts] = created.use_cases;

    const put = await api("PUT", `/v2/integrations/${created.id}`, {
      token,
      json: integration({
        name: "SAP IS-U (renamed)",
        use_cases: [
          { ...customers, enabled: false, change_description: "pause" }, // update (GET output round-trips)
          { ...contracts }, // unchanged
          inbound("meter-readings"), // create
          // "meters" is missing: deleted
        ],
      }),
    });
    expect(put.status).toBe(200);
    expect(put.body.name).toBe("SAP IS-U (renamed)");
    expect(put.body.use_cases.map((u: { slug: string }) => u.slug)).toEqual(["customers", "contracts", "meter-readings"]);
    expect(put.body.use_cases[0]).toMatchObject({ id: customers.id, enabled: false, created_at: customers.created_at });
    expect(put.body.use_cases[1]).toEqual(contracts);

    const history = async (id: string) => (await api("GET", `/v1/integrations/${created.id}/use-cases/${id}/history`, { token })).body.history;
    expect((await history(customers.id)).map((h: { action: string }) => h.action)).toEqual(["updated", "created"]);
    expect((await history(contracts.id)).map((h: { action: string }) => h.action)).toEqual(["created"]);
    const meters = created.use_cases[2];
    const metersHistory = await history(meters.id);
    expect(metersHistory[0]).toMatchObject({ action: "deleted", snapshot: { slug: "meters" } });

    // A deleted slug is free again in the same call that deletes it.
    const reuse = await api("PUT", `/v2/integrations/${created.id}`, { token, json: integration({ use_cases: [inbound("customers")] }) });
    expect(reuse.status).toBe(200);
    expect(reuse.body.use_cases).toHaveLength(1);
    expect(reuse.body.use_cases[0].id).not.toBe(customers.id);
  });

  it("keeps slugs unique (409) and immutable (400), changing nothing on failure", async () => {
    const { token } = await tenantWithToken();
    expectError(await api("POST", "/v2/integrations", { token, json: integration({ use_cases: [inbound("a"), inbound("a")] }) }), 409, "CONFLICT");
    const created = await createIntegration(token);
    const uc = created.use_cases[0];

    expectError(
      await api("PUT", `/v2/integrations/${created.id}`, { token, json: integration({ use_cases: [uc, inbound("customers")] }) }),
      409,
      "CONFLICT",
    );
    const details = expectError(
      await api("PUT", `/v2/integrations/${created.id}`, { token, json: integration({ name: "changed", use_cases: [{ ...uc, slug: "renamed" }] }) }),
      400,
      "IMMUTABLE_FIELD",
    );
    expect(details.path).toBe("use_cases.0.slug");
    expectError(
      await api("PUT", `/v2/integrations/${created.id}`, { token, json: integration({ use_cases: [{ ...uc, id: "01JD0000000000000000000000" }] }) }),
      400,
      "VALIDATION_FAILED",
    );
    expect((await api("GET", `/v2/integrations/${created.id}`, { token })).body).toEqual(created);

    // Through the v1 use-case routes too.
    const base = `/v1/integrations/${created.id}/use-cases`;
    expectError(await api("POST", base, { token, json: inbound("customers") }), 409, "CONFLICT");
    expectError(await api("PUT", `${base}/${uc.id}`, { token, json: { ...inbound("other") } }), 400, "IMMUTABLE_FIELD");
  });

  it("validates every field with paths, including use-case configuration by type", async () => {
    const { token } = await tenantWithToken();
    const cases: [unknown, string[]][] = [
      [{}, ["name"]],
      [{ name: "x".repeat(256) }, ["name"]],
      [{ name: "ok", description: "d".repeat(1001) }, ["description"]],
      [{ name: "ok", environment_config: [{ key: "A", label: "a", type: "Number" }] }, ["environment_config.0.type"]],
      [{ name: "ok", environment_config: [{ key: "A", label: "a", type: "String" }, { key: "A", label: "b", type: "String" }] }, ["environment_config.1.key"]],
      [{ name: "ok", use_cases: [inbound("Bad Slug")] }, ["use_cases.0.slug"]],
      [{ name: "ok", use_cases: [{ ...inbound("x"), type: "sideways" }] }, ["use_cases.0.type"]],
      [{ name: "ok", use_cases: [{ ...inbound("x"), configuration: { entities: "not-a-list" } }] }, ["use_cases.0.configuration.entities"]],
      [{ name: "ok", use_cases: [{ ...inbound("x"), enabled: "yes" }] }, ["use_cases.0.enabled"]],
    ];
    for (const [body, paths] of cases) {
      const details = expectError(await api("POST", "/v2/integrations", { token, json: body }), 400, "VALIDATION_FAILED");
      expect(details.map((d: { path: string }) => d.path), JSON.stringify(body).slice(0, 80)).toEqual(paths);
    }
    expectError(await api("GET", "/v2/integrations?limit=0", { token }), 400, "VALIDATION_FAILED");
    expectError(await api("GET", "/v2/integrations?cursor=%%%", { token }), 400, "INVALID_CURSOR");
    const created = await createIntegration(token);
    expectError(await api("PUT", `/v2/integrations/${created.id}`, { token, json: { name: 5 } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `/v1/integrations/${created.id}/use-cases`, { token, json: { name: "x" } }), 400, "VALIDATION_FAILED");
    expectError(await api("PUT", `/v1/integrations/${created.id}/environment`, { token, json: { API_URL: 5 } }), 400, "VALIDATION_FAILED");
    expectError(await api("PUT", `/v1/integrations/${created.id}/environment`, { token, json: ["x"] }), 400, "VALIDATION_FAILED");
    expect((await api("GET", `/v2/integrations/${created.id}`, { token })).body).toEqual(created);
  });
});

describe("tenant isolation and scopes", () => {
  it("hides tenant A's integration from tenant B for read, update and delete (404)", async () => {
    const a = await tenantWithToken("A");
    const b = await tenantWithToken("B");
    const created = await createIntegration(a.token);
    const uc = created.use_cases[0];
    expectError(await api("GET", `/v2/integrations/${created.id}`, { token: b.token }), 404, "NOT_FOUND");
    expectError(await api("PUT", `/v2/integrations/${created.id}`, { token: b.token, json: integration() }), 404, "NOT_FOUND");
    expectError(await api("DELETE", `/v2/integrations/${created.id}`, { token: b.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/integrations/${created.id}/use-cases`, { token: b.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/integrations/${created.id}/use-cases/${uc.id}`, { token: b.token }), 404, "NOT_FOUND");
    expectError(await api("PUT", `/v1/integrations/${created.id}/use-cases/${uc.id}`, { token: b.token, json: inbound("customers") }), 404, "NOT_FOUND");
    expectError(await api("DELETE", `/v1/integrations/${created.id}/use-cases/${uc.id}`, { token: b.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/integrations/${created.id}/use-cases/${uc.id}/history`, { token: b.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/integrations/${created.id}/environment`, { token: b.token }), 404, "NOT_FOUND");
    expectError(await api("PUT", `/v1/integrations/${created.id}/environment`, { token: b.token, json: { API_URL: "x" } }), 404, "NOT_FOUND");
    expect((await api("GET", "/v2/integrations", { token: b.token })).body.integrations).toEqual([]);
    expect((await api("GET", `/v2/integrations/${created.id}`, { token: a.token })).body).toEqual(created);
  });

  it("answers 403 when the token lacks the scope", async () => {
    const { tenant, token } = await tenantWithToken();
    const created = await createIntegration(token);
    const readOnly = (await createToken(tenant.id, ["integrations:read"])).token;
    const eventsOnly = (await createToken(tenant.id, ["events:write"])).token;
    expect((await api("GET", `/v2/integrations/${created.id}`, { token: readOnly })).status).toBe(200);
    const details = expectError(await api("POST", "/v2/integrations", { token: readOnly, json: integration() }), 403, "FORBIDDEN");
    expect(details).toEqual({ required_scope: "integrations:write" });
    expectError(await api("PUT", `/v2/integrations/${created.id}`, { token: readOnly, json: integration() }), 403, "FORBIDDEN");
    expectError(await api("DELETE", `/v2/integrations/${created.id}`, { token: readOnly }), 403, "FORBIDDEN");
    expectError(await api("PUT", `/v1/integrations/${created.id}/environment`, { token: readOnly, json: {} }), 403, "FORBIDDEN");
    expectError(await api("GET", "/v2/integrations", { token: eventsOnly }), 403, "FORBIDDEN");
    expectError(await api("GET", `/v1/integrations/${created.id}/use-cases`, { token: eventsOnly }), 403, "FORBIDDEN");
  });
});

describe("/v1/integrations/{id}/use-cases", () => {
  it("creates, lists, updates, deletes and keeps the history newest first with who and when", async () => {
    const { token, tokenId } = await tenantWithToken();
    const created = await createIntegration(token, integration({ use_cases: [] }));
    const base = `/v1/integrations/${created.id}/use-cases`;

    const uc = await api("POST", base, { token, json: inbound("customers", { change_description: "first" }) });
    expect(uc.status).toBe(201);
    const outbound = await api("POST", base, { token, json: { name: "Contracts out", slug: "contracts_out", type: "outbound", configuration: { event_catalog_event: "contract.updated", mappings: [{ id: "poll", name: "poll", jsonata_expression: "$", delivery: { type: "poll" } }] } } });
    expect(outbound.status).toBe(201);
    expect((await api("GET", base, { token })).body.use_cases.map((u: { slug: string }) => u.slug)).toEqual(["customers", "contracts_out"]);
    expect((await api("GET", `${base}/${uc.body.id}`, { token })).body).toEqual(uc.body);

    const updated = await api("PUT", `${base}/${uc.body.id}`, { token, json: inbound("customers", { name: "Customers v2", change_description: "rename" }) });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ id: uc.body.id, name: "Customers v2", created_at: uc.body.created_at });
    expect((await api("DELETE", `${base}/${uc.body.id}`, { token })).status).toBe(200);
    expectError(await api("GET", `${base}/${uc.body.id}`, { token }), 404, "NOT_FOUND");

    const history = await api("GET", `${base}/${uc.body.id}/history?limit=2`, { token });
    expect(history.body.history.map((h: { action: string }) => h.action)).toEqual(["deleted", "updated"]);
    expect(history.body.history[1]).toMatchObject({ change_description: "rename", changed_by: `token:${tokenId}`, snapshot: { name: "Customers v2" } });
    const rest = await api("GET", `${base}/${uc.body.id}/history?cursor=${history.body.next_cursor}`, { token });
    expect(rest.body.history.map((h: { action: string }) => h.action)).toEqual(["created"]);
    expect(rest.body.next_cursor).toBeUndefined();
    expectError(await api("GET", `${base}/01JD0000000000000000000000/history`, { token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/integrations/nope/use-cases`, { token }), 404, "NOT_FOUND");
  });
});

describe("environment values", () => {
  it("encrypts every value at rest, masks SecretString on read, and refuses undeclared keys", async () => {
    const { tenant, token } = await tenantWithToken();
    const created = await createIntegration(token);
    const path = `/v1/integrations/${created.id}/environment`;

    const put = await api("PUT", path, { token, json: { API_URL: "https://erp.example.com", API_KEY: "sk_live_verysecret" } });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ API_URL: "https://erp.example.com", API_KEY: "********" });
    expect((await api("GET", path, { token })).body).toEqual(put.body);

    const { results } = await env.DB.prepare("SELECT key, ciphertext FROM environment_values WHERE integration_id = ?").bind(created.id).all<{ key: string; ciphertext: string }>();
    expect(results).toHaveLength(2);
    for (const row of results) {
      expect(row.ciphertext).not.toContain("verysecret");
      expect(row.ciphertext).not.toContain("erp.example.com");
    }
    // Not returned by any route: the integration itself does not carry values.
    expect(JSON.stringify((await api("GET", `/v2/integrations/${created.id}`, { token })).body)).not.toContain("verysecret");
    // Server-side resolution sees the plaintext.
    expect(await resolveEnvironment(env, tenant.id, created.id)).toEqual({ API_URL: "https://erp.example.com", API_KEY: "sk_live_verysecret" });

    const details = expectError(await api("PUT", path, { token, json: { API_URL: "x", NOPE: "y" } }), 400, "VALIDATION_FAILED");
    expect(details[0].path).toBe("NOPE");
    expect((await api("GET", path, { token })).body.API_URL).toBe("https://erp.example.com");

    expect((await api("PUT", path, { token, json: { API_URL: null } })).body).toEqual({ API_KEY: "********" });

    // Dropping a key from environment_config drops its value.
    const { use_cases, environment_config } = created;
    await api("PUT", `/v2/integrations/${created.id}`, { token, json: { name: "x", use_cases, environment_config: environment_config.slice(0, 1) } });
    expect((await api("GET", path, { token })).body).toEqual({});
  });
});
