// epilot's inbound operations through the real Worker, fed epilot's own request examples and checked
// against its response schemas: events v1, v2 and v3, mapping simulation v1 and v2, and the ERP trigger.
import { beforeAll, describe, expect, it } from "vitest";
import { api, createToken, expectError, tenantWithToken, type ApiResponse } from "./helpers";
import { publishApp, trust } from "./app-helpers";
import { waitFor } from "./inbound-helpers";
import { newPublisher, unique, type Publisher } from "./registry-helpers";
import { describeErrors, operationsOf, requestBodyOf, responseSchemaOf, SchemaBook, type OpenApiDocument } from "./contract/openapi";

const documents = import.meta.glob<string>("../../shared/compat/epilot-openapi/erp-integration.json", { eager: true, query: "?raw", import: "default" });
const doc = JSON.parse(Object.values(documents)[0]!) as OpenApiDocument;
const book = new SchemaBook(doc, "response");
const operation = (id: string) => operationsOf(doc).find((op) => op.operationId === id)!;
/** epilot's request examples of an operation, by name ("example" for a single one). */
const examples = (id: string) => requestBodyOf(doc, operation(id))!.examples as Record<string, any>;

/** Fails with the validator's words unless `body` is what epilot's schema for this operation and status describes. */
function expectEpilotShape(operationId: string, status: number, body: unknown) {
  const schema = responseSchemaOf(doc, operation(operationId), status);
  if (!schema) throw new Error(`${operationId} has no JSON response for ${status}`);
  const errors = book.validate(schema, body);
  if (errors.length > 0) throw new Error(`${operationId} ${status} does not match epilot's schema: ${describeErrors(errors)}\n${JSON.stringify(body).slice(0, 800)}`);
}

/** Error answers carry epilot's top-level code and message (ErrorResponseBase) and erp-edge's envelope. */
function expectEpilotError(operationId: string, res: ApiResponse, status: number, code: string) {
  const details = expectError(res, status, code);
  expect(res.body).toMatchObject({ code, message: expect.any(String) });
  if (responseSchemaOf(doc, operation(operationId), status)) expectEpilotShape(operationId, status, res.body);
  return details;
}

// Mappings for the payloads of epilot's event examples (a business partner and a contract account).
const businessPartner = {
  entities: [{ entity_schema: "account", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "id" }, { attribute: "name", field: "name" }] }],
};
const contractAccount = {
  entities: [{ entity_schema: "billing_account", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "payment_method", field: "payment_method" }] }],
};

async function integration(token: string, useCases: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  const res = await api("POST", "/v2/integrations", { token, json: { name: "ERP", ...extra, use_cases: useCases } });
  if (res.status !== 201) throw new Error(`integration: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; use_cases: { id: string; slug?: string; name: string }[]; app_ids?: string[] };
}

/** epilot's example body with its integration id swapped for one of ours and deduplication ids made unique to this run. */
function withIntegration(body: any, integrationId: string, suffix = unique()) {
  return { ...body, integration_id: integrationId, events: body.events.map((e: any) => ({ ...e, deduplication_id: `${e.deduplication_id}-${suffix}` })) };
}

describe("processErpUpdatesEventsV3: routing by event_name as epilot's example does", () => {
  it("routes the example's events to the use cases named like them, and processes them", async () => {
    const { token } = await tenantWithToken();
    // epilot's integration UI names an inbound use case after its event; the slugs here say something else.
    const { id } = await integration(token, [
      { name: "business_partner", slug: "bp-sync", type: "inbound", enabled: true, configuration: businessPartner },
      { name: "contract_account", slug: "ca-sync", type: "inbound", enabled: true, configuration: contractAccount },
    ]);
    const res = await api("POST", "/v3/erp/updates/events", { token, json: withIntegration(examples("processErpUpdatesEventsV3").example, id) });
    expect(res.status).toBe(200);
    expectEpilotShape("processErpUpdatesEventsV3", 200, res.body);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(["success", "success"]);
    const [bp, ca] = await Promise.all(res.body.results.map((r: { event_id: string }) => waitFor(token, r.event_id)));
    expect(bp).toMatchObject({ status: "done", use_case_slug: "bp-sync", event_name: "business_partner", correlation_id: "req-789e4567-e89b-12d3-a456-426614174000" });
    expect(bp.entities).toMatchObject([{ slug: "account", unique_ids: { customer_number: "BP10001" } }]);
    expect(ca).toMatchObject({ status: "done", use_case_slug: "ca-sync", entities: [{ slug: "billing_account", unique_ids: { external_id: "CA20001" } }] });
  });

  it("routes by slug when no use case has the name; event_names and use_case_slug still come first; disabled and unknown are ignored", async () => {
    const { token } = await tenantWithToken();
    const { id } = await integration(token, [
      { name: "Business partners", slug: "business_partner", type: "inbound", configuration: businessPartner },
      // Declares contract_account explicitly, so it wins over the use case named contract_account.
      { name: "Accounts (explicit)", slug: "explicit", type: "inbound", configuration: { ...contractAccount, event_names: ["contract_account"] } },
      { name: "contract_account", slug: "by-name", type: "inbound", configuration: contractAccount },
      { name: "meter", slug: "meter", type: "inbound", enabled: false, configuration: contractAccount },
    ]);
    const body = withIntegration(examples("processErpUpdatesEventsV3").example, id);
    const res = await api("POST", "/v3/erp/updates/events", { token, json: body });
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(["success", "success"]);
    expect((await waitFor(token, res.body.results[0].event_id)).use_case_slug).toBe("business_partner");
    expect((await waitFor(token, res.body.results[1].event_id)).use_case_slug).toBe("explicit");

    const template = body.events[1];
    const more = await api("POST", "/v3/erp/updates/events", {
      token,
      json: {
        integration_id: id,
        events: [
          { ...template, deduplication_id: undefined, use_case_slug: "by-name", event_name: "business_partner" },
          { ...template, deduplication_id: undefined, event_name: "meter" },
          { ...template, deduplication_id: undefined, event_name: "nobody_listens" },
          { ...template, deduplication_id: undefined, use_case_slug: "business_partner", event_name: undefined },
        ],
      },
    });
    expectEpilotShape("processErpUpdatesEventsV3", 200, more.body);
    expect(more.body.results.map((r: { status: string }) => r.status)).toEqual(["success", "ignored", "ignored", "success"]);
    expect((await waitFor(token, more.body.results[0].event_id)).use_case_slug).toBe("by-name");
  });

  it("deduplicates a repeated example, and refuses malformed requests with epilot's error fields", async () => {
    const { token } = await tenantWithToken();
    const { id } = await integration(token, [{ name: "business_partner", slug: "bp", type: "inbound", configuration: businessPartner }]);
    const body = withIntegration(examples("processErpUpdatesEventsV3").example, id);
    const first = await api("POST", "/v3/erp/updates/events", { token, json: body });
    const again = await api("POST", "/v3/erp/updates/events", { token, json: body });
    expect(first.body.results.map((r: { status: string }) => r.status)).toEqual(["success", "ignored"]);
    expect(again.body.results[0]).toMatchObject({ status: "skipped", event_id: first.body.results[0].event_id });
    expectEpilotShape("processErpUpdatesEventsV3", 200, again.body);

    const op = "processErpUpdatesEventsV3";
    expectEpilotError(op, await api("POST", "/v3/erp/updates/events", { token, json: { events: body.events } }), 400, "VALIDATION_FAILED");
    expectEpilotError(op, await api("POST", "/v3/erp/updates/events", { token, json: { integration_id: id, events: "nope" } }), 400, "VALIDATION_FAILED");
    expectEpilotError(op, await api("POST", "/v3/erp/updates/events", { token, body: "{", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON");
    expectEpilotError(op, await api("POST", "/v3/erp/updates/events", { json: body }), 401, "UNAUTHORIZED");
    // A use_case_slug longer than any slug is an invalid event, not a refused batch.
    const long = await api("POST", "/v3/erp/updates/events", { token, json: { integration_id: id, events: [{ ...body.events[0], deduplication_id: undefined, use_case_slug: "a".repeat(256) }] } });
    expect(long.body.results[0].status).toBe("error");
  });
});

describe("processErpUpdatesEventsV2 (deprecated, still served)", () => {
  it("takes epilot's v2 example: object_type routes like event_name, on the same durable, deduplicated path as v3", async () => {
    const { token } = await tenantWithToken();
    const { id } = await integration(token, [
      { name: "business_partner", slug: "bp", type: "inbound", configuration: businessPartner },
      { name: "contract_account", slug: "ca", type: "inbound", configuration: contractAccount },
    ]);
    const body = withIntegration(examples("processErpUpdatesEventsV2").example, id);
    const res = await api("POST", "/v2/erp/updates/events", { token, json: body });
    expect(res.status).toBe(200);
    expectEpilotShape("processErpUpdatesEventsV2", 200, res.body);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(["success", "success"]);
    const done = await waitFor(token, res.body.results[1].event_id);
    expect(done).toMatchObject({ status: "done", use_case_slug: "ca", event_name: "contract_account", correlation_id: body.correlation_id });

    // The same deduplication ids through v3 are duplicates: one log, one deduplication window.
    const v3 = { integration_id: id, events: body.events.map(({ event_type: _, object_type, ...e }: any) => ({ ...e, event_name: object_type })) };
    const dup = await api("POST", "/v3/erp/updates/events", { token, json: v3 });
    expect(dup.body.results.map((r: { status: string }) => r.status)).toEqual(["skipped", "skipped"]);
    expect(dup.body.results[0].event_id).toBe(res.body.results[0].event_id);
  });

  it("refuses each malformed event on its own and malformed batches as a whole", async () => {
    const { tenant, token } = await tenantWithToken();
    const { id } = await integration(token, [{ name: "business_partner", slug: "bp", type: "inbound", configuration: businessPartner }]);
    const [event] = examples("processErpUpdatesEventsV2").example.events;
    const res = await api("POST", "/v2/erp/updates/events", {
      token,
      json: {
        integration_id: id,
        events: [
          { ...event, deduplication_id: undefined, event_type: "MERGE" },
          { ...event, deduplication_id: undefined, object_type: undefined },
          { ...event, deduplication_id: undefined, timestamp: "yesterday" },
          "not an event",
          { ...event, deduplication_id: undefined },
        ],
      },
    });
    expectEpilotShape("processErpUpdatesEventsV2", 200, res.body);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(["error", "error", "error", "error", "success"]);
    expect(res.body.results[0].message).toContain("event_type");
    expect(res.body.results[1].message).toContain("object_type");
    expect(await waitFor(token, res.body.results[0].event_id)).toMatchObject({ status: "error", error_category: "validation", event_name: "business_partner" });

    const op = "processErpUpdatesEventsV2";
    expectEpilotError(op, await api("POST", "/v2/erp/updates/events", { token, json: { events: [event] } }), 400, "VALIDATION_FAILED");
    expectEpilotError(op, await api("POST", "/v2/erp/updates/events", { token, json: { integration_id: id, events: Array(101).fill(event) } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v2/erp/updates/events", { token, json: { integration_id: "01JD0000000000000000000000", events: [event] } }), 404, "NOT_FOUND");
    const readOnly = await createToken(tenant.id, ["integrations:read"]);
    expectError(await api("POST", "/v2/erp/updates/events", { token: readOnly.token, json: { integration_id: id, events: [event] } }), 403, "FORBIDDEN");
  });
});

describe("processErpUpdatesEvents v1 (deprecated, still served)", () => {
  it("validates epilot's v1 body and finds no integration for an unmapped app", async () => {
    const { token } = await tenantWithToken();
    const body = examples("processErpUpdatesEvents").example;
    const op = "processErpUpdatesEvents";
    expectEpilotError(op, await api("POST", "/v1/erp/updates/events", { token, json: body }), 404, "NOT_FOUND");
    expectEpilotError(op, await api("POST", "/v1/erp/updates/events", { token, json: { ...body, app_id: "not-a-uuid" } }), 400, "VALIDATION_FAILED");
    expectEpilotError(op, await api("POST", "/v1/erp/updates/events", { token, json: { ...body, meta: undefined } }), 400, "VALIDATION_FAILED");
    expectEpilotError(op, await api("POST", "/v1/erp/updates/events", { json: body }), 401, "UNAUTHORIZED");
  });

  it("routes epilot's v1 example through the integration its app_id belongs to", async (ctx) => {
    const { token } = await tenantWithToken();
    const body = examples("processErpUpdatesEvents").example;
    const created = await integration(
      token,
      [
        { name: "business_partner", slug: "bp", type: "inbound", configuration: businessPartner },
        { name: "contract_account", slug: "ca", type: "inbound", configuration: contractAccount },
      ],
      { app_ids: [body.app_id] },
    );
    // The app's integration is known once integrations keep epilot's app_ids (or its app mapping).
    if (!created.app_ids?.includes(body.app_id)) ctx.skip();
    const res = await api("POST", "/v1/erp/updates/events", { token, json: { ...withIntegration(body, created.id), integration_id: undefined } });
    expect(res.status).toBe(200);
    expectEpilotShape("processErpUpdatesEvents", 200, res.body);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(["success", "success"]);
    expect(await waitFor(token, res.body.results[0].event_id)).toMatchObject({ status: "done", correlation_id: body.meta.correlation_id, use_case_slug: "bp" });
  });
});

describe("simulateMapping and simulateMappingV2", () => {
  it("answers every v1 example of epilot's (v1.0 and v2.0 configurations) in epilot's response shape", async () => {
    const { token } = await tenantWithToken();
    const all = examples("simulateMapping");
    expect(Object.keys(all).length).toBeGreaterThanOrEqual(5);
    for (const [name, body] of Object.entries(all)) {
      const res = await api("POST", "/v1/erp/updates/mapping_simulation", { token, json: body });
      if (res.status !== 200) throw new Error(`${name}: ${res.status} ${JSON.stringify(res.body)}`);
      expectEpilotShape("simulateMapping", 200, res.body);
    }
    const v1 = (await api("POST", "/v1/erp/updates/mapping_simulation", { token, json: all.v1_example })).body;
    // The map form of unique_ids: the payload's partner_id is the contact's _id.
    expect(v1.entity_updates).toEqual([
      { entity_slug: "contact", unique_identifiers: { _id: "BP10001" }, attributes: { _id: "BP10001", first_name: "John", last_name: "Doe" }, mode: "upsert" },
    ]);
    const enabled = (await api("POST", "/v1/erp/updates/mapping_simulation", { token, json: all.v2_field_enabled })).body;
    expect(enabled.entity_updates[0].attributes).toMatchObject({ customer_number: "12345", email: "user@example.com", mobile: "555-1234", vip_status: "VIP" });
    expect(enabled.entity_updates[0].attributes).not.toHaveProperty("phone");
    expect(enabled.entity_updates[0].attributes).not.toHaveProperty("internal_notes");
    const relations = (await api("POST", "/v1/erp/updates/mapping_simulation", { token, json: all.v2_advanced })).body;
    expect(relations.entity_updates.map((u: { entity_slug: string }) => u.entity_slug)).toEqual(["contract", "meter", "meter"]);
  });

  it("answers every v2 example of epilot's in epilot's response shape", async () => {
    const { token } = await tenantWithToken();
    const all = examples("simulateMappingV2");
    expect(Object.keys(all).length).toBeGreaterThanOrEqual(4);
    for (const [name, body] of Object.entries(all)) {
      const res = await api("POST", "/v2/erp/updates/mapping_simulation", { token, json: body });
      if (res.status !== 200) throw new Error(`${name}: ${res.status} ${JSON.stringify(res.body)}`);
      expectEpilotShape("simulateMappingV2", 200, res.body);
    }
    const readings = (await api("POST", "/v2/erp/updates/mapping_simulation", { token, json: all.with_meter_readings })).body;
    expect(readings.meter_readings_updates).toEqual([
      {
        meter: { $entity_unique_ids: { external_id: "M-001" } },
        attributes: expect.objectContaining({ external_id: "R-001", source: "ERP", value: 12345.6 }),
        mode: "upsert",
      },
    ]);
  });

  it("gives every warning the entity_schema, field and message epilot requires", async () => {
    const { token } = await tenantWithToken();
    const event_configuration = {
      entities: [
        { entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "missing" }] },
        { entity_schema: "contact", unique_ids: ["not_indexed"], fields: [{ attribute: "not_indexed", field: "id" }] },
      ],
      meter_readings: [{ meter: { unique_ids: [{ attribute: "external_id", field: "nothing" }] }, fields: [{ attribute: "value", field: "v" }] }],
    };
    const res = await api("POST", "/v2/erp/updates/mapping_simulation", { token, json: { event_configuration, format: "json", payload: { id: "1", v: 1 } } });
    expect(res.status).toBe(200);
    expectEpilotShape("simulateMappingV2", 200, res.body);
    expect(res.body.warnings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ code: "MISSING_UNIQUE_ID", entity_schema: "contact", field: "customer_number" }),
        expect.objectContaining({ code: "UNIQUE_ID_NOT_INDEXED", entity_schema: "contact", field: "not_indexed" }),
        expect.objectContaining({ code: "INVALID_METER_READING", entity_schema: "meter_reading", field: "" }),
      ]),
    );
  });

  it("answers 422 for configurations and payloads that cannot be mapped, 400 for malformed requests", async () => {
    const { token } = await tenantWithToken();
    const { v2_simple } = examples("simulateMapping");
    const v1 = "/v1/erp/updates/mapping_simulation";
    const op = "simulateMapping";
    let details = expectEpilotError(op, await api("POST", v1, { token, json: { ...v2_simple, object_type: "Unknown" } }), 422, "UNPROCESSABLE");
    expect(details).toMatchObject({ path: "object_type", known: ["CustomerChanged"] });
    expectEpilotError(op, await api("POST", v1, { token, json: { ...v2_simple, object_type: "__proto__" } }), 422, "UNPROCESSABLE");
    const broken = structuredClone(v2_simple);
    broken.mapping_configuration.mapping.events.CustomerChanged.entities[0].fields.push({ attribute: "x", jsonataExpression: "a.(" });
    details = expectEpilotError(op, await api("POST", v1, { token, json: broken }), 422, "UNPROCESSABLE");
    expect(details[0].path).toBe("mapping_configuration.mapping.events.CustomerChanged.entities.0.fields.5.jsonataExpression");
    expectEpilotError(op, await api("POST", v1, { token, json: { ...v2_simple, mapping_configuration: { version: "2.0", mapping: {} } } }), 422, "UNPROCESSABLE");
    expectEpilotError(op, await api("POST", v1, { token, json: { ...v2_simple, mapping_configuration: { version: "3.0", mapping: {} } } }), 422, "UNPROCESSABLE");
    expectEpilotError(op, await api("POST", v1, { token, json: { ...v2_simple, payload: "{nope" } }), 422, "UNPROCESSABLE");
    expectEpilotError(op, await api("POST", v1, { token, json: { ...v2_simple, object_type: undefined } }), 400, "VALIDATION_FAILED");
    expectEpilotError(op, await api("POST", v1, { json: v2_simple }), 401, "UNAUTHORIZED");

    const { simple } = examples("simulateMappingV2");
    const v2 = "/v2/erp/updates/mapping_simulation";
    expectEpilotError("simulateMappingV2", await api("POST", v2, { token, json: { ...simple, event_configuration: { entities: "x" } } }), 422, "UNPROCESSABLE");
    expectEpilotError("simulateMappingV2", await api("POST", v2, { token, json: { ...simple, format: "csv" } }), 400, "VALIDATION_FAILED");
  });
});

describe("triggerErp", () => {
  let publisher: Publisher;
  let app: string;
  beforeAll(async () => {
    publisher = await newPublisher("trig");
    app = `${publisher.name}/erp-${unique()}`;
    await publishApp(publisher, app, "1.0.0", {
      pull: { body: `return { events: [{ timestamp: "2026-03-01T00:00:00Z", deduplication_id: "trig-" + input.n, payload: { id: "T" + input.n, name: "Triggered" } }] };` },
      fail: { body: `throw new Error("ERP is down");` },
    });
  });

  async function setupTrigger() {
    const { tenant, token } = await tenantWithToken();
    await trust(token, publisher.name);
    const installed = await api("POST", "/v1/apps/install", { token, json: { name: app, grants: { hosts: [] } } });
    if (installed.status !== 201) throw new Error(`install: ${installed.status} ${JSON.stringify(installed.body)}`);
    const pull = (slug: string, action: string) => ({ name: slug, slug, type: "pull", configuration: { app, action, schedule: "0 0 1 1 *", target_use_case: "bp", input: { n: 1 } } });
    const created = await integration(token, [
      { name: "business_partner", slug: "bp", type: "inbound", configuration: businessPartner },
      pull("sync", "pull"),
      pull("broken", "fail"),
      { ...pull("off", "pull"), enabled: false },
    ]);
    const idOf = (slug: string) => created.use_cases.find((u) => u.slug === slug)!.id;
    const request = (webhook_id: string) => ({
      execution_id: "exec-1", org_id: tenant.id, webhook_id, flow_id: "flow-1", created_at: "2026-03-01T10:00:00Z",
      action_id: "action-1", flow_action_id: "fa-1", flow_name: "Sync customer", activity_id: "act-1", entity_id: "ent-1",
    });
    return { token, tenant, idOf, request };
  }

  it("runs the pull use case webhook_id names and answers epilot's TriggerWebhookResp; a failed run answers failed", async () => {
    const { token, idOf, request } = await setupTrigger();
    const res = await api("POST", "/v1/erp/trigger", { token, json: request(idOf("sync")) });
    expect(res.status).toBe(200);
    expectEpilotShape("triggerErp", 200, res.body);
    expect(res.body).toMatchObject({ status: "succeeded", status_code: "200", event_id: expect.any(String), body: { events: { received: 1, accepted: 1, refused: 0 } } });
    expect(Date.parse(res.body.end_date)).toBeGreaterThanOrEqual(Date.parse(res.body.start_date));
    expect(await waitFor(token, res.body.body.results[0].event_id)).toMatchObject({ status: "done", use_case_slug: "bp" });

    const failed = await api("POST", "/v1/erp/trigger", { token, json: request(idOf("broken")) });
    expect(failed.status).toBe(200);
    expectEpilotShape("triggerErp", 200, failed.body);
    expect(failed.body).toMatchObject({ status: "failed", status_code: "502", code: "APP_FAILED", message: "ERP is down" });
  });

  it("refuses what cannot be triggered with 400, and strangers with 401", async () => {
    const { token, idOf, request } = await setupTrigger();
    for (const body of [
      request("no-such-use-case"),
      request(idOf("bp")),
      request(idOf("off")),
      { ...request(idOf("sync")), org_id: "another-org" },
      { ...request(idOf("sync")), entity_id: undefined },
      { ...request(idOf("sync")), created_at: "yesterday" },
    ]) {
      expectEpilotError("triggerErp", await api("POST", "/v1/erp/trigger", { token, json: body }), 400, body.entity_id && body.created_at !== "yesterday" ? "BAD_REQUEST" : "VALIDATION_FAILED");
    }
    expectError(await api("POST", "/v1/erp/trigger", { json: request(idOf("sync")) }), 401, "UNAUTHORIZED");
    // Another tenant cannot run this tenant's pull, even naming this tenant's org.
    const other = await tenantWithToken();
    expectError(await api("POST", "/v1/erp/trigger", { token: other.token, json: { ...request(idOf("sync")), org_id: other.tenant.id } }), 400, "BAD_REQUEST");
  });
});
