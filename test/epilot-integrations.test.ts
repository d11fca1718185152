// epilot's integrations and use-cases operations (v1 and v2, use cases, history, app mapping) as an
// epilot client uses them, every answer checked against the schema epilot's own document gives it.
import { Validator } from "@cfworker/json-schema";
import { fromSchema } from "@openapi-contrib/openapi-schema-to-json-schema";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import epilot from "../../shared/compat/epilot-openapi/erp-integration.json";
import { api, createToken, expectError, tenantWithToken, type ApiResponse } from "./helpers";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const schemas = Object.fromEntries(Object.entries((epilot as any).components.schemas).map(([name, s]) => [name, fromSchema(s as object, { cloneSchema: true })]));

/** Fails with the validator's findings unless `body` is valid for epilot's schema (a component name or an inline schema). */
function expectEpilot(schema: string | object, body: unknown) {
  const root = typeof schema === "string" ? { $ref: `#/components/schemas/${schema}` } : fromSchema(schema as object, { cloneSchema: true });
  const result = new Validator({ ...root, components: { schemas } } as any, "2019-09", false).validate(body);
  if (!result.valid) throw new Error(`not a valid epilot ${typeof schema === "string" ? schema : "response"}: ${JSON.stringify(result.errors.slice(-4))}\n${JSON.stringify(body).slice(0, 800)}`);
}

/** The 200 schema of an epilot operation, by path and method. */
const responseSchema = (path: string, method: string, status = "200") => (epilot as any).paths[path][method].responses[status].content["application/json"].schema;

/** Expects epilot's error shape at the top (code, message) beside erp-edge's `error`. */
function expectEpilotError(res: ApiResponse, status: number, code: string) {
  expectError(res, status, code);
  expect(res.body).toMatchObject({ code, message: expect.any(String) });
  expectEpilot("ErrorResponseBase", res.body);
}

const inbound = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: "inbound",
  enabled: true,
  configuration: { entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "id" }] }] },
  ...extra,
});

/** An outbound use case as epilot exports it: mapping without id, delivery by webhook_id. */
const webhookId = "0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b";
const outbound = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: "outbound",
  enabled: true,
  configuration: {
    event_catalog_event: "contract.created",
    mappings: [{ name: "ERP Contract Sync", jsonata_expression: '{ "id": entity._id }', enabled: true, delivery: { type: "webhook", webhook_id: webhookId, webhook_name: "SAP" } }],
  },
  ...extra,
});

const epilotFields = {
  access_token_ids: ["tok-1"],
  app_ids: ["app-1"],
  protected: true,
  integration_type: "connector",
  connector_config: { base_url: "https://api.partner.example", auth: { type: "bearer", token: "{{env.partner_token}}" }, latest_types_version: "1.0.0" },
  _manifest: ["manifest-1"],
  settings: { autoRefresh: { enabled: true, freshnessThresholdMinutes: 15 } },
  environment_config: [
    { key: "api_url", label: "API URL", type: "String", required: true, order: 1 },
    { key: "api_key", label: "API key", type: "SecretString", order: 0 },
  ],
};

describe("/v1/integrations (epilot's Integration, without use cases)", () => {
  it("creates, reads, lists, partially updates and deletes, keeping every epilot field", async () => {
    const { tenant, token } = await tenantWithToken();
    const created = await api("POST", "/v1/integrations", { token, json: { name: "Partner API", description: "d", ...epilotFields } });
    expect(created.status).toBe(201);
    expectEpilot("Integration", created.body);
    expect(created.body.id).toMatch(UUID);
    expect(created.body).toMatchObject({ orgId: tenant.id, name: "Partner API", ...epilotFields, settings: { autoRefresh: { enabled: true, freshnessThresholdMinutes: 15 } } });
    expect(created.body.use_cases).toBeUndefined();
    const id = created.body.id;

    const got = await api("GET", `/v1/integrations/${id}`, { token });
    expect(got.body).toEqual(created.body);
    const list = await api("GET", "/v1/integrations", { token });
    expectEpilot(responseSchema("/v1/integrations", "get"), list.body);
    expect(list.body.integrations).toEqual([created.body]);

    // A use case added meanwhile is not touched by a v1 PUT, which changes only what it names.
    expect((await api("POST", `/v1/integrations/${id}/use-cases`, { token, json: inbound("Customers") })).status).toBe(201);
    const updated = await api("PUT", `/v1/integrations/${id}`, { token, json: { description: "new", protected: false, settings: { retention_days: 7 } } });
    expect(updated.status).toBe(200);
    expectEpilot("Integration", updated.body);
    expect(updated.body).toMatchObject({ name: "Partner API", description: "new", protected: false, app_ids: ["app-1"], environment_config: epilotFields.environment_config });
    expect(updated.body.settings).toMatchObject({ retention_days: 7, autoRefresh: { enabled: true, freshnessThresholdMinutes: 15 } });
    const v2 = await api("GET", `/v2/integrations/${id}`, { token });
    expect(v2.body.use_cases.map((u: { slug: string }) => u.slug)).toEqual(["customers"]);
    expect(v2.body.protected).toBe(false);

    const del = await api("DELETE", `/v1/integrations/${id}`, { token });
    expect(del.status).toBe(200);
    expectEpilot(responseSchema("/v1/integrations/{integrationId}", "delete"), del.body);
    expect(del.body.message).toEqual(expect.any(String));
    expectEpilotError(await api("GET", `/v1/integrations/${id}`, { token }), 404, "NOT_FOUND");
    expectEpilotError(await api("DELETE", `/v1/integrations/${id}`, { token }), 404, "NOT_FOUND");
  });

  it("answers 404 for unknown ids of any form and 400 for malformed bodies, changing nothing", async () => {
    const { token } = await tenantWithToken();
    for (const id of ["not-a-uuid", "0193a3c4-5b6d-7e8f-9a0b-000000000000", "01JD0000000000000000000000", "x".repeat(64)]) {
      expectEpilotError(await api("GET", `/v1/integrations/${id}`, { token }), 404, "NOT_FOUND");
      expectEpilotError(await api("PUT", `/v1/integrations/${id}`, { token, json: { name: "x" } }), 404, "NOT_FOUND");
      expectEpilotError(await api("DELETE", `/v2/integrations/${id}`, { token }), 404, "NOT_FOUND");
      expectEpilotError(await api("GET", `/v1/integrations/${id}/use-cases/${id}`, { token }), 404, "NOT_FOUND");
    }
    const created = (await api("POST", "/v1/integrations", { token, json: { name: "Keep" } })).body;
    for (const body of [{ name: "" }, { integration_type: "other" }, { protected: "yes" }, { access_token_ids: "tok" }, { settings: { autoRefresh: { freshnessThresholdMinutes: 0 } } }, { environment_config: [{ key: "-x", label: "x", type: "String" }] }, { environment_config: [{ key: "a", label: "x", type: "String", order: -1 }] }]) {
      expectEpilotError(await api("PUT", `/v1/integrations/${created.id}`, { token, json: body }), 400, "VALIDATION_FAILED");
      expectEpilotError(await api("POST", "/v1/integrations", { token, json: { name: "n", ...body } }), 400, "VALIDATION_FAILED");
    }
    expectEpilotError(await api("POST", "/v1/integrations", { token, body: "{not json", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON");
    expect((await api("POST", "/v1/integrations", { token, body: "name=x", headers: { "content-type": "text/plain" } })).status).toBeGreaterThanOrEqual(400);
    expect((await api("GET", `/v1/integrations/${created.id}`, { token })).body).toEqual(created);
    expect((await api("GET", "/v1/integrations", { token })).body.integrations).toHaveLength(1);
  });
});

describe("/v2/integrations (epilot's IntegrationWithUseCases)", () => {
  it("accepts an exported epilot integration: optional slugs, mapping ids and webhook_id deliveries", async () => {
    const { tenant, token } = await tenantWithToken();
    const res = await api("POST", "/v2/integrations", {
      token,
      json: { name: "SAP", ...epilotFields, integration_type: "erp", use_cases: [inbound("Sync Contacts"), inbound("Sync Contacts"), outbound("Contracts to SAP", { slug: "sync-contacts-3" })] },
    });
    expect(res.status).toBe(201);
    expectEpilot("IntegrationWithUseCases", res.body);
    expect(res.body.orgId).toBe(tenant.id);
    expect(res.body.use_cases.map((u: { slug: string }) => u.slug)).toEqual(["sync-contacts", "sync-contacts-2", "sync-contacts-3"]);
    for (const uc of res.body.use_cases) {
      expect(uc.id).toMatch(UUID);
      expect(uc.integrationId).toBe(res.body.id);
    }
    const mapping = res.body.use_cases[2].configuration.mappings[0];
    expect(mapping.id).toMatch(UUID);
    expect(mapping.delivery).toMatchObject({ type: "webhook", webhook_id: webhookId, webhook_name: "SAP" });
    expect(mapping.delivery.url).toBeUndefined();

    // Sent back as read, the mapping keeps its id; the list answers the same integration.
    const put = await api("PUT", `/v2/integrations/${res.body.id}`, { token, json: { ...res.body, name: "SAP (renamed)" } });
    expect(put.status).toBe(200);
    expectEpilot("IntegrationWithUseCases", put.body);
    expect(put.body.use_cases[2].configuration.mappings[0].id).toBe(mapping.id);
    expect(put.body.use_cases.map((u: { id: string }) => u.id)).toEqual(res.body.use_cases.map((u: { id: string }) => u.id));
    const list = await api("GET", "/v2/integrations", { token });
    expectEpilot(responseSchema("/v2/integrations", "get"), list.body);
    expect(list.body.integrations[0]).toEqual(put.body);
  });

  it("creates a use case declared with a new client-chosen UUID, and refuses other unknown ids", async () => {
    const { token } = await tenantWithToken();
    const created = (await api("POST", "/v2/integrations", { token, json: { name: "SAP", use_cases: [inbound("Customers")] } })).body;
    const chosen = "0193a3c4-aaaa-7bbb-8ccc-dddddddddddd";
    const put = await api("PUT", `/v2/integrations/${created.id}`, { token, json: { name: "SAP", use_cases: [created.use_cases[0], { ...inbound("Meters"), id: chosen.toUpperCase() }] } });
    expect(put.status).toBe(200);
    expect(put.body.use_cases.find((u: { slug: string }) => u.slug === "meters")).toMatchObject({ id: chosen, integrationId: created.id });
    // Declared again, the same id now updates it.
    const again = await api("PUT", `/v2/integrations/${created.id}`, { token, json: { name: "SAP", use_cases: [{ ...inbound("Meters"), id: chosen, enabled: false }] } });
    expect(again.body.use_cases).toEqual([expect.objectContaining({ id: chosen, slug: "meters", enabled: false })]);
    expect((await api("GET", `/v1/integrations/${created.id}/use-cases/${chosen}/history`, { token })).body.history.map((h: { action: string }) => h.action)).toEqual(["updated", "created"]);

    const before = (await api("GET", `/v2/integrations/${created.id}`, { token })).body;
    const other = (await api("POST", "/v2/integrations", { token, json: { name: "Other", use_cases: [inbound("Elsewhere")] } })).body;
    let details = expectError(await api("PUT", `/v2/integrations/${created.id}`, { token, json: { name: "x", use_cases: [{ ...inbound("A"), id: "not-a-uuid" }] } }), 400, "VALIDATION_FAILED");
    expect(details[0].path).toBe("use_cases.0.id");
    details = expectError(await api("PUT", `/v2/integrations/${created.id}`, { token, json: { name: "x", use_cases: [{ ...inbound("A"), id: chosen }, { ...inbound("B"), id: chosen }] } }), 400, "VALIDATION_FAILED");
    expect(details[0].path).toBe("use_cases.1.id");
    // Another integration's use case id is not taken over.
    expectEpilotError(await api("PUT", `/v2/integrations/${created.id}`, { token, json: { name: "x", use_cases: [{ ...inbound("A"), id: other.use_cases[0].id }] } }), 409, "CONFLICT");
    expect((await api("GET", `/v2/integrations/${created.id}`, { token })).body).toEqual(before);
    expect((await api("GET", `/v2/integrations/${other.id}`, { token })).body).toEqual(other);
  });

  it("creates an integration by PUT of a new UUID (client-provided id), but never another tenant's", async () => {
    const a = await tenantWithToken("A");
    const b = await tenantWithToken("B");
    const id = "0193a3c4-1111-7222-8333-444444444444";
    const put = await api("PUT", `/v2/integrations/${id}`, { token: a.token, json: { name: "By PUT", use_cases: [inbound("Customers")] } });
    expect(put.status).toBe(200);
    expectEpilot("IntegrationWithUseCases", put.body);
    expect(put.body).toMatchObject({ id, orgId: a.tenant.id, name: "By PUT" });
    expectEpilotError(await api("PUT", `/v2/integrations/${id}`, { token: b.token, json: { name: "Stolen" } }), 404, "NOT_FOUND");
    expectEpilotError(await api("PUT", `/v2/integrations/not-a-uuid`, { token: a.token, json: { name: "x" } }), 404, "NOT_FOUND");
    // With If-Match (a change of a version read before), a missing integration is not created.
    const other = "0193a3c4-1111-7222-8333-555555555555";
    expectEpilotError(await api("PUT", `/v2/integrations/${other}`, { token: a.token, json: { name: "x" }, headers: { "if-match": "*" } }), 404, "NOT_FOUND");
    expectEpilotError(await api("GET", `/v2/integrations/${other}`, { token: a.token }), 404, "NOT_FOUND");
    expect((await api("GET", `/v2/integrations/${id}`, { token: a.token })).body.name).toBe("By PUT");
    const del = await api("DELETE", `/v2/integrations/${id}`, { token: a.token });
    expect(del.status).toBe(200);
    expectEpilot(responseSchema("/v2/integrations/{integrationId}", "delete"), del.body);
  });

  it("validates outbound deliveries: exactly one of webhook_id and url, webhook_id a UUID", async () => {
    const { token } = await tenantWithToken();
    const withDelivery = (delivery: unknown) => {
      const uc = outbound("Out") as any;
      uc.configuration.mappings[0].delivery = delivery;
      return { name: "x", use_cases: [uc] };
    };
    for (const [delivery, path] of [
      [{ type: "webhook" }, "use_cases.0.configuration.mappings.0.delivery.webhook_id"],
      [{ type: "webhook", webhook_id: webhookId, url: "https://erp.example.com/hook" }, "use_cases.0.configuration.mappings.0.delivery.webhook_id"],
      [{ type: "webhook", webhook_id: "hook-1" }, "use_cases.0.configuration.mappings.0.delivery.webhook_id"],
      [{ type: "webhook", url: "http://127.0.0.1/hook" }, "use_cases.0.configuration.mappings.0.delivery.url"],
    ] as const) {
      const details = expectError(await api("POST", "/v2/integrations", { token, json: withDelivery(delivery) }), 400, "VALIDATION_FAILED");
      expect(details.map((d: { path: string }) => d.path), JSON.stringify(delivery)).toContain(path);
    }
    // erp-edge's inline url keeps working, and a mapping id sent is kept.
    const inline = withDelivery({ type: "webhook", url: "https://erp.example.com/hook" });
    (inline.use_cases[0] as any).configuration.mappings[0].id = "main";
    const ok = await api("POST", "/v2/integrations", { token, json: inline });
    expect(ok.status).toBe(201);
    expect(ok.body.use_cases[0].configuration.mappings[0]).toMatchObject({ id: "main", delivery: { url: "https://erp.example.com/hook" } });
    expect((await api("GET", "/v2/integrations", { token })).body.integrations).toHaveLength(1);
  });

  it("still reads integrations created before UUIDs (ULID ids)", async () => {
    const { tenant, token } = await tenantWithToken();
    const id = "01JD8Q3V6Y2X9R4M7K5N0P1S2T";
    const at = new Date().toISOString();
    await env.DB.prepare("INSERT INTO integrations (id, tenant_id, name, created_at, updated_at) VALUES (?, ?, 'Legacy', ?, ?)").bind(id, tenant.id, at, at).run();
    const got = await api("GET", `/v2/integrations/${id}`, { token });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id, orgId: tenant.id, name: "Legacy", use_cases: [] });
    const uc = await api("POST", `/v1/integrations/${id}/use-cases`, { token, json: inbound("Customers") });
    expect(uc.status).toBe(201);
    expect(uc.body.integrationId).toBe(id);
    // A list page spanning both forms pages on (ULIDs sort before UUIDv7s).
    await api("POST", "/v1/integrations", { token, json: { name: "New" } });
    const first = await api("GET", "/v1/integrations?limit=1", { token });
    expect(first.body.integrations[0].id).toBe(id);
    const second = await api("GET", `/v1/integrations?limit=1&cursor=${first.body.next_cursor}`, { token });
    expect(second.body.integrations[0].name).toBe("New");
  });
});

describe("/v1/integrations/{integrationId}/use-cases (epilot's use cases)", () => {
  it("creates without a slug, updates partially, keeps the history in epilot's shape and deletes with 200", async () => {
    const { token, tokenId } = await tenantWithToken();
    const integration = (await api("POST", "/v2/integrations", { token, json: { name: "SAP", use_cases: [inbound("Customers")] } })).body;
    const base = `/v1/integrations/${integration.id}/use-cases`;

    const created = await api("POST", base, { token, json: inbound("Customers", { change_description: "first" }) });
    expect(created.status).toBe(201);
    expectEpilot("UseCase", created.body);
    expect(created.body).toMatchObject({ slug: "customers-2", integrationId: integration.id });
    expect(created.body.id).toMatch(UUID);
    const path = `${base}/${created.body.id}`;
    const list = await api("GET", base, { token });
    expectEpilot(responseSchema("/v1/integrations/{integrationId}/use-cases", "get"), list.body);

    // Only `enabled`: name and configuration stay.
    const disabled = await api("PUT", path, { token, json: { enabled: false } });
    expect(disabled.status).toBe(200);
    expectEpilot("UseCase", disabled.body);
    expect(disabled.body).toMatchObject({ name: "Customers", enabled: false, configuration: created.body.configuration, slug: "customers-2" });
    const renamed = await api("PUT", path, { token, json: { type: "inbound", name: "Customers v2", change_description: "rename" } });
    expect(renamed.body).toMatchObject({ name: "Customers v2", enabled: false, change_description: "rename" });
    // Repeating the stored slug is fine; changing it is not.
    expect((await api("PUT", path, { token, json: { slug: "customers-2" } })).status).toBe(200);

    const history = await api("GET", `${path}/history`, { token });
    expect(history.status).toBe(200);
    expectEpilot(responseSchema("/v1/integrations/{integrationId}/use-cases/{useCaseId}/history", "get"), history.body);
    expect(history.body.history[0]).toMatchObject({
      useCaseId: created.body.id, integrationId: integration.id, name: "Customers v2", type: "inbound", enabled: false, change_description: "rename",
      action: "updated", changed_by: `token:${tokenId}`, history_created_at: expect.any(String),
    });
    expect(history.body.history.map((h: { action: string }) => h.action)).toEqual(["updated", "updated", "created"]);

    const del = await api("DELETE", path, { token });
    expect(del.status).toBe(200);
    expectEpilot(responseSchema("/v1/integrations/{integrationId}/use-cases/{useCaseId}", "delete"), del.body);
    expectEpilotError(await api("GET", path, { token }), 404, "NOT_FOUND");
    expect((await api("GET", `${path}/history`, { token })).body.history[0].action).toBe("deleted");
  });

  it("refuses bad partial updates with paths and changes nothing", async () => {
    const { token } = await tenantWithToken();
    const integration = (await api("POST", "/v2/integrations", { token, json: { name: "SAP", use_cases: [inbound("Customers"), outbound("Out")] } })).body;
    const [customers, out] = integration.use_cases;
    const at = (uc: { id: string }) => `/v1/integrations/${integration.id}/use-cases/${uc.id}`;
    expectEpilotError(await api("PUT", at(customers), { token, json: { slug: "renamed" } }), 400, "IMMUTABLE_FIELD");
    let details = expectError(await api("PUT", at(customers), { token, json: { configuration: { entities: "no" } } }), 400, "VALIDATION_FAILED");
    expect(details[0].path).toBe("configuration.entities");
    details = expectError(await api("PUT", at(customers), { token, json: { type: "outbound" } }), 400, "VALIDATION_FAILED");
    expect(details[0].path).toBe("configuration");
    expectError(await api("PUT", at(customers), { token, json: { name: "" } }), 400, "VALIDATION_FAILED");
    expectError(await api("PUT", at(customers), { token, json: { enabled: "no" } }), 400, "VALIDATION_FAILED");
    expectError(await api("PUT", at(customers), { token, json: { type: "sideways" } }), 400, "VALIDATION_FAILED");
    expectError(await api("PUT", at(customers), { token, json: [] }), 400, "VALIDATION_FAILED");
    const badDelivery = structuredClone(out.configuration);
    badDelivery.mappings[0].delivery = { type: "webhook", url: "http://169.254.169.254/latest" };
    expectError(await api("PUT", at(out), { token, json: { configuration: badDelivery } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `/v1/integrations/${integration.id}/use-cases`, { token, json: inbound("Dup", { slug: "customers" }) }), 409, "CONFLICT");
    expect((await api("GET", `/v2/integrations/${integration.id}`, { token })).body).toEqual(integration);
  });

  it("stores managed_call and secure_proxy use cases with their epilot fields", async () => {
    const { token } = await tenantWithToken();
    const integration = (await api("POST", "/v1/integrations", { token, json: { name: "Connector", integration_type: "connector" } })).body;
    const base = `/v1/integrations/${integration.id}/use-cases`;
    const call = await api("POST", base, {
      token,
      json: {
        name: "List vendors", type: "managed_call", enabled: true,
        configuration: { operation: { method: "GET", path: "/vendors/{{id}}", headers: { accept: "application/json" } }, response_mapping: "$.items" },
        type_annotations: { response: { "items[].id": "string" } },
      },
    });
    expect(call.status).toBe(201);
    expectEpilot("UseCase", call.body);
    expect(call.body).toMatchObject({ type: "managed_call", slug: "list-vendors", type_annotations: { response: { "items[].id": "string" } } });
    const proxy = await api("POST", base, { token, json: { name: "VPN", type: "secure_proxy", enabled: true, configuration: { vpc_mode: "static_ip" } } });
    expect(proxy.status).toBe(201);
    expectEpilot("UseCase", proxy.body);
    expect((await api("PUT", `${base}/${call.body.id}`, { token, json: { type_annotations: { request: { q: "string" } } } })).body.type_annotations).toEqual({ request: { q: "string" } });
    expectError(await api("POST", base, { token, json: { name: "Bad", type: "managed_call", enabled: true, configuration: { operation: { method: "TRACE", path: "/" } } } }), 400, "VALIDATION_FAILED");
  });

  it("needs secrets:use to send environment values through a managed call or connector_config", async () => {
    const { tenant, token } = await tenantWithToken();
    const plain = (await createToken(tenant.id, ["integrations:read", "integrations:write"])).token;
    const withSecret = { base_url: "https://partner.example", auth: { type: "bearer", token: "{{env.partner_token}}" } };
    expectEpilotError(await api("POST", "/v1/integrations", { token: plain, json: { name: "C", connector_config: withSecret } }), 403, "FORBIDDEN");
    expectEpilotError(await api("POST", "/v2/integrations", { token: plain, json: { name: "C", connector_config: withSecret } }), 403, "FORBIDDEN");
    const integration = (await api("POST", "/v1/integrations", { token: plain, json: { name: "C", connector_config: { base_url: "https://partner.example" } } })).body;
    expectEpilotError(await api("PUT", `/v1/integrations/${integration.id}`, { token: plain, json: { connector_config: withSecret } }), 403, "FORBIDDEN");
    const base = `/v1/integrations/${integration.id}/use-cases`;
    const call = (headers: Record<string, string>) => ({ name: "Call", type: "managed_call", enabled: true, configuration: { operation: { method: "GET", path: "/x", headers } } });
    expectEpilotError(await api("POST", base, { token: plain, json: call({ authorization: "Bearer {{ env.partner_token }}" }) }), 403, "FORBIDDEN");
    const created = await api("POST", base, { token: plain, json: call({ accept: "application/json" }) });
    expect(created.status).toBe(201);
    // A partial update is checked on the use case it produces.
    expectEpilotError(await api("PUT", `${base}/${created.body.id}`, { token: plain, json: { configuration: call({ "x-key": "{{env.k}}" }).configuration } }), 403, "FORBIDDEN");
    expect((await api("GET", `${base}/${created.body.id}`, { token: plain })).body).toEqual(created.body);
    expect((await api("PUT", `/v1/integrations/${integration.id}`, { token, json: { connector_config: withSecret } })).status).toBe(200);
  });
});

describe("/v1/integrations/{integrationId}/app-mapping", () => {
  it("maps an app component to one integration, 409 unless overwrite, and deletes it", async () => {
    const a = await tenantWithToken("A");
    const b = await tenantWithToken("B");
    const first = (await api("POST", "/v1/integrations", { token: a.token, json: { name: "First" } })).body;
    const second = (await api("POST", "/v1/integrations", { token: a.token, json: { name: "Second" } })).body;
    const body = { app_id: "0193a3c4-0000-7000-8000-00000000000a", component_id: "0193a3c4-0000-7000-8000-00000000000c" };
    const path = (id: string) => `/v1/integrations/${id}/app-mapping`;

    const set = await api("PUT", path(first.id), { token: a.token, json: body });
    expect(set.status).toBe(200);
    expectEpilot("IntegrationAppMapping", set.body);
    expect(set.body.integration_id).toBe(first.id);
    expectEpilotError(await api("PUT", path(second.id), { token: a.token, json: body }), 409, "CONFLICT");
    expectEpilotError(await api("PUT", path(first.id), { token: a.token, json: body }), 409, "CONFLICT");
    const moved = await api("PUT", path(second.id), { token: a.token, json: { ...body, overwrite: true } });
    expect(moved.body.integration_id).toBe(second.id);

    // Another tenant neither sees the integration nor shares the component's mapping.
    expectEpilotError(await api("PUT", path(second.id), { token: b.token, json: body }), 404, "NOT_FOUND");
    expectEpilotError(await api("DELETE", path(second.id), { token: b.token, json: body }), 404, "NOT_FOUND");

    expectEpilotError(await api("DELETE", path(first.id), { token: a.token, json: body }), 404, "NOT_FOUND");
    const del = await api("DELETE", path(second.id), { token: a.token, json: body });
    expect(del.status).toBe(200);
    expectEpilot(responseSchema("/v1/integrations/{integrationId}/app-mapping", "delete"), del.body);
    expectEpilotError(await api("DELETE", path(second.id), { token: a.token, json: body }), 404, "NOT_FOUND");

    for (const bad of [{}, { app_id: "x", component_id: body.component_id }, { app_id: body.app_id }, []]) {
      expectEpilotError(await api("PUT", path(first.id), { token: a.token, json: bad }), 400, "VALIDATION_FAILED");
      expectEpilotError(await api("DELETE", path(first.id), { token: a.token, json: bad }), 400, "VALIDATION_FAILED");
    }
    expectEpilotError(await api("PUT", path(first.id), { token: a.token, json: { ...body, overwrite: "yes" } }), 400, "VALIDATION_FAILED");
    expectEpilotError(await api("DELETE", path(first.id), { token: a.token }), 400, "VALIDATION_FAILED");
    expectEpilotError(await api("PUT", path("0193a3c4-0000-7000-8000-000000000999"), { token: a.token, json: body }), 404, "NOT_FOUND");

    // The mapping goes with its integration.
    await api("PUT", path(first.id), { token: a.token, json: body });
    expect((await api("DELETE", `/v1/integrations/${first.id}`, { token: a.token })).status).toBe(200);
    expect((await api("PUT", path(second.id), { token: a.token, json: body })).status).toBe(200);
  });
});
