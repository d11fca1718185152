import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { entityStore, RoundWriter } from "../src/entities/service";
import type { NewEvent } from "../src/inbound/events-log";
import type { EventLog } from "../src/inbound/log-do";
import { processEvent } from "../src/inbound/process";
import { newEventId, shardCount, shardOf } from "../src/inbound/shards";
import { ADMIN, api, createToken, expectError, tenantWithToken } from "./helpers";
import { eventRow, example, findOne, logOf, logOfEvent, logQuery, nextTimestamp, post, setup, waitFor } from "./inbound-helpers";

describe("POST /v3/erp/updates/events", () => {
  it("answers per event in request order: success, error, ignored", async () => {
    const { token, integrationId } = await setup();
    const results = await post(token, integrationId, [
      { use_case_slug: "contacts", payload: { id: "C1", name: "Ada" } },
      { use_case_slug: "contacts", payload: { id: "C2" }, timestamp: "yesterday" },
      { use_case_slug: "nope", payload: {} },
      { event_name: "ContactChanged", payload: JSON.stringify({ id: "C3", name: "Grace" }) },
      { event_name: "Unknown", payload: {} },
      { payload: {} },
      { use_case_slug: "contacts", payload: "{broken" },
      { use_case_slug: "contacts", format: "xml", payload: { not: "a string" } },
      { use_case_slug: "contacts", payload: {}, deduplication_id: "has spaces" },
    ]);
    expect(results.map((r) => r.status)).toEqual(["success", "error", "ignored", "success", "ignored", "error", "error", "error", "error"]);
    for (const r of results) expect(r.event_id).toMatch(/^[0-9A-Z]{26}$/);
    expect(results[1]!.message).toContain("timestamp");
    expect(results[5]!.message).toContain("use_case_slug");

    expect((await waitFor(token, results[0]!.event_id)).status).toBe("done");
    expect((await waitFor(token, results[3]!.event_id)).status).toBe("done");
    expect((await findOne(token, "contact", "external_id=C3")).attributes.full_name).toBe("Grace");
    // Invalid and ignored events are logged too, with their category.
    const invalid = await waitFor(token, results[1]!.event_id);
    expect(invalid).toMatchObject({ status: "error", error_category: "validation" });
    expect((await waitFor(token, results[2]!.event_id)).status).toBe("ignored");
  });

  it("refuses malformed batches with 4xx envelopes and stores nothing", async () => {
    const { token, integrationId } = await setup();
    // The integration's whole log, every shard of it.
    const count = async () => (await logQuery(integrationId, "SELECT id FROM events")).length;
    const ev = { use_case_slug: "contacts", timestamp: nextTimestamp(), payload: {} };
    expectError(await api("POST", "/v3/erp/updates/events", { token, json: { events: [ev] } }), 400, "VALIDATION_FAILED");
    // An empty batch is valid (epilot's schema allows it): nothing stored, no results.
    const empty = await api("POST", "/v3/erp/updates/events", { token, json: { integration_id: integrationId, events: [] } });
    expect(empty.status).toBe(200);
    expect(empty.body.results).toEqual([]);
    expectError(await api("POST", "/v3/erp/updates/events", { token, json: { integration_id: integrationId, events: Array(101).fill(ev) } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v3/erp/updates/events", { token, json: { integration_id: integrationId, group_id: "g".repeat(129), events: [ev] } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v3/erp/updates/events", { token, json: { integration_id: "01JD0000000000000000000000", events: [ev] } }), 404, "NOT_FOUND");
    expectError(await api("POST", "/v3/erp/updates/events", { token, body: "not json", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON");
    expectError(await api("GET", "/v3/erp/updates/events/01JD0000000000000000000000", { token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v3/erp/updates/events/x?wait=26`, { token }), 400, "VALIDATION_FAILED");
    expect(await count()).toBe(0);

    // Another tenant can neither post to this integration nor read its events.
    const other = await tenantWithToken();
    expectError(await api("POST", "/v3/erp/updates/events", { token: other.token, json: { integration_id: integrationId, events: [ev] } }), 404, "NOT_FOUND");
    const [accepted] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "X" } }]);
    expectError(await api("GET", `/v3/erp/updates/events/${accepted!.event_id}`, { token: other.token }), 404, "NOT_FOUND");
    const readOnly = await createToken((await api("GET", `/v1/tenants`, { token: ADMIN })).body.tenants[0].id, ["integrations:read"]);
    expectError(await api("POST", "/v3/erp/updates/events", { token: readOnly.token, json: { integration_id: integrationId, events: [ev] } }), 403, "FORBIDDEN");
  });

  it("applies a duplicate storm once and answers the duplicates with the original event id", async () => {
    const { token, integrationId } = await setup();
    const event = { use_case_slug: "contacts", deduplication_id: "sap-msg-0001", timestamp: nextTimestamp(), payload: { id: "D1", name: "Once", tag: "t" } };
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(token, integrationId, [event])));
    const statuses = answers.map((a) => a[0]!.status);
    expect(statuses.filter((s) => s === "success")).toHaveLength(1);
    expect(statuses.filter((s) => s === "skipped")).toHaveLength(19);
    expect(new Set(answers.map((a) => a[0]!.event_id)).size).toBe(1);
    // The same id twice within one batch is a duplicate too.
    const inBatch = await post(token, integrationId, [{ ...event, deduplication_id: "sap-msg-0002" }, { ...event, deduplication_id: "sap-msg-0002" }]);
    expect(inBatch.map((r) => r.status)).toEqual(["success", "skipped"]);
    await waitFor(token, inBatch[0]!.event_id);

    await waitFor(token, answers[0]![0]!.event_id);
    const contact = await findOne(token, "contact", "external_id=D1");
    expect(contact.attributes._tags).toEqual(["t"]);
    const history = await api("GET", `/v1/entities/contact/${contact.id}/history`, { token });
    expect(history.body.history.map((h: { operation: string }) => h.operation)).toEqual(["created"]);
  });

  it("keeps the newer state when an older update arrives later, and says it was stale", async () => {
    const { token, integrationId } = await setup();
    const [newer] = await post(token, integrationId, [{ use_case_slug: "contacts", timestamp: "2026-05-02T10:00:00Z", payload: { id: "O1", name: "New name" } }]);
    await waitFor(token, newer!.event_id);
    const [older] = await post(token, integrationId, [{ use_case_slug: "contacts", timestamp: "2026-05-02T11:00:00+02:00", payload: { id: "O1", name: "Old name" } }]);
    const status = await waitFor(token, older!.event_id);
    expect(status.status).toBe("done");
    expect(status.entities[0]).toMatchObject({ slug: "contact", operation: "skipped_stale" });
    expect((await findOne(token, "contact", "external_id=O1")).attributes.full_name).toBe("New name");
  });

  it("loses none of many concurrent updates to one entity (parallel groups)", async () => {
    const { token, integrationId } = await setup();
    const ts = nextTimestamp();
    const answers = await Promise.all(
      Array.from({ length: 25 }, (_, i) => post(token, integrationId, [{ use_case_slug: "contacts", group_id: `g${i}`, timestamp: ts, payload: { id: "HOT", tag: `t${i}` } }])),
    );
    for (const a of answers) expect((await waitFor(token, a[0]!.event_id)).status).toBe("done");
    const hot = await findOne(token, "contact", "external_id=HOT");
    expect([...hot.attributes._tags].sort()).toEqual(Array.from({ length: 25 }, (_, i) => `t${i}`).sort());
    expect(hot.version).toBe(25);
  });

  it("keeps a group's order when a round runs its events side by side and some wait on relations first", async () => {
    const { token, integrationId } = await setup();
    const ts = nextTimestamp();
    // One request, one group: every event in one round. Every other event names an account, so it
    // resolves a relation (a store call) before its update; the others reach their commit first.
    const events = Array.from({ length: 40 }, (_, i) => ({ use_case_slug: "contacts", group_id: "mixed", timestamp: ts, payload: { id: "MIX", tag: `t${i}`, ...(i % 2 === 0 ? { account: `ACC-M${i}` } : {}) } }));
    const answers = await post(token, integrationId, events);
    for (const a of answers) expect((await waitFor(token, a.event_id)).status).toBe("done");
    const mixed = await findOne(token, "contact", "external_id=MIX");
    expect(mixed.attributes._tags).toEqual(Array.from({ length: 40 }, (_, i) => `t${i}`));
    expect(mixed.version).toBe(40);
  });

  it("resolves a later event's reference only after its group's earlier updates: an id claimed just before is found, not split off", async () => {
    const { token, integrationId } = await setup([
      { name: "Accounts", slug: "accounts", type: "inbound", configuration: { entities: [{ entity_schema: "account", unique_ids: ["customer_number", "email"], fields: [{ attribute: "customer_number", field: "no" }, { attribute: "email", field: "email" }] }] } },
      {
        name: "Contacts by email", slug: "contacts-by-email", type: "inbound",
        configuration: { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "account", relations: { operation: "_set", items: [{ entity_schema: "account", unique_ids: [{ attribute: "email", field: "account_email" }] }] } }] }] },
      },
    ]);
    // Both use cases' configurations cached, the accounts there without emails.
    const warm = await post(token, integrationId, [
      ...Array.from({ length: 10 }, (_, i) => ({ use_case_slug: "accounts", payload: { no: `A${i}` } })),
      { use_case_slug: "contacts-by-email", payload: { id: "C-WARM" } },
    ]);
    for (const w of warm) expect((await waitFor(token, w.event_id)).status).toBe("done");
    // One round; in each group an account gets its email, then a contact names the account by it.
    const answers = await post(token, integrationId, Array.from({ length: 10 }, (_, i) => [
      { use_case_slug: "accounts", group_id: `g${i}`, payload: { no: `A${i}`, email: `a${i}@example.com` } },
      { use_case_slug: "contacts-by-email", group_id: `g${i}`, payload: { id: `C-REF-${i}`, account_email: `a${i}@example.com` } },
    ]).flat());
    for (const a of answers) expect((await waitFor(token, a.event_id)).status).toBe("done");
    for (let i = 0; i < 10; i++) {
      const account = await findOne(token, "account", `customer_number=A${i}`);
      expect(account.attributes.email).toBe(`a${i}@example.com`);
      const contact = await findOne(token, "contact", `external_id=C-REF-${i}`);
      expect(contact.attributes.account).toEqual([{ entity_id: account.id, _schema: "account" }]);
    }
    expect((await api("GET", "/v1/entities/account?limit=100", { token })).body.entities).toHaveLength(10);
  });

  it("applies events of one stream strictly in the order accepted", async () => {
    const { token, integrationId } = await setup();
    const ts = nextTimestamp();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const batch = await post(token, integrationId, [
        { use_case_slug: "contacts", timestamp: ts, payload: { id: "ORD", tag: `a${i}` } },
        { use_case_slug: "contacts", timestamp: ts, payload: { id: "ORD", tag: `b${i}` } },
      ]);
      ids.push(...batch.map((r) => r.event_id));
    }
    await waitFor(token, ids[ids.length - 1]!);
    const ord = await findOne(token, "contact", "external_id=ORD");
    expect(ord.attributes._tags).toEqual(Array.from({ length: 12 }, (_, i) => [`a${i}`, `b${i}`]).flat());
  });

  it("makes a redelivered event and a repeated entity update no-ops", async () => {
    const { tenant, token, integrationId } = await setup();
    const [r] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "R1", tag: "once" } }]);
    const done = await waitFor(token, r!.event_id);
    const contactId = done.entities[0]._id;

    // Processing the finished event again (a redelivery) applies nothing new.
    const row = (await eventRow(integrationId, r!.event_id))!;
    expect((await processEvent({ ...env, entities: new RoundWriter(env, ["g"]).forEvent(0) }, row, row.started_at!)).outcome).toMatchObject({ status: "done", entities: [{ _id: contactId }] });
    // As if the log died before recording the outcome: the event is unfinished and queued again, and the log runs it once more.
    const log = logOfEvent(integrationId, r!.event_id);
    await runInDurableObject(log, (_instance: EventLog, state) => {
      state.storage.sql.exec("UPDATE events SET status = 'accepted' WHERE id = ?", r!.event_id);
    });
    await log.enqueue([r!.event_id]);
    await vi.waitFor(async () => expect(await log.pending()).toEqual([]), { timeout: 10_000, interval: 20 });
    expect((await waitFor(token, r!.event_id)).status).toBe("done");
    const [again] = await entityStore(env, tenant.id, "contact").apply([{
      updateId: `${r!.event_id}#0`, eventId: r!.event_id, tenantId: tenant.id, schema: "contact", entityId: contactId,
      uniqueIds: { external_id: "R1" }, attributes: { _tags: { _append: ["twice"] } }, mode: "upsert",
    }]);
    expect(again).toMatchObject({ duplicate: true, operation: "created", version: 1 });
    const contact = (await api("GET", `/v1/entities/contact/${contactId}`, { token })).body;
    expect(contact).toMatchObject({ version: 1, attributes: { _tags: ["once"] } });
  });

  it("creates relation stubs and fills them when their own event arrives", async () => {
    const { token, integrationId } = await setup();
    const [c] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "S1", name: "Stub Owner", account: "ACC-1" } }]);
    const status = await waitFor(token, c!.event_id);
    expect(status.status).toBe("done");
    const contact = await findOne(token, "contact", "external_id=S1");
    const stub = await findOne(token, "account", "customer_number=ACC-1");
    expect(stub).toMatchObject({ stub: true, attributes: { customer_number: "ACC-1" } });
    expect(contact.attributes.account).toEqual([{ entity_id: stub.id, _schema: "account" }]);

    // The account's own event (CustomerChanged for a business customer) fills the stub in place.
    const payload = { ...example("payload.customer"), customerId: "ACC-1" };
    const [a] = await post(token, integrationId, [{ event_name: "CustomerChanged", payload }]);
    expect((await waitFor(token, a!.event_id)).status).toBe("done");
    const filled = (await api("GET", `/v1/entities/account/${stub.id}`, { token })).body;
    expect(filled).toMatchObject({ id: stub.id, stub: false, attributes: { customer_number: "ACC-1", name: "Acme Corporation" } });
  });

  it("runs the published CustomerChanged and ContractChanged mappings end to end into queryable entities", async () => {
    const { token, integrationId } = await setup();
    const [cust, contract] = await post(token, integrationId, [
      { event_name: "CustomerChanged", payload: example("payload.customer") },
      { use_case_slug: "contracts", payload: example("payload.contract") },
    ]);
    expect((await waitFor(token, cust!.event_id)).entities.map((e: { slug: string }) => e.slug)).toEqual(["contact", "account", "billing_account"]);
    const contractStatus = await waitFor(token, contract!.event_id);
    expect(contractStatus.status).toBe("done");

    const contact = await findOne(token, "contact", "external_id=CUST-9876");
    const account = await findOne(token, "account", "customer_number=CUST-9876");
    expect(contact.attributes.account).toEqual([{ entity_id: account.id, _schema: "account" }]);
    expect(account.attributes.contacts).toEqual([{ entity_id: contact.id, _schema: "contact" }]);
    const contractEntity = await findOne(token, "contract", "external_id=CON-2024-5678");
    expect(contractEntity.attributes.customer).toEqual([{ entity_id: contact.id, _schema: "contact" }]);
    const meter = await findOne(token, "meter", "external_id=MTR-001234");
    expect(meter.attributes.meter_type).toBe("smart-meter");
    const readings = await api("GET", `/v1/entities/meter/${meter.id}/readings`, { token });
    expect(readings.body.meter_readings.map((r: { external_id: string; value: number }) => [r.external_id, r.value])).toEqual(
      example("payload.contract").meterReadings.map((r: { readingId: string; value: number }) => [r.readingId, r.value]),
    );
    const counter = await findOne(token, "meter_counter", "external_id=CNT-001234-HT");
    expect(readings.body.meter_readings[0].counter_id).toBe(counter.id);
  });

  it("maps XML payloads through the same pipeline", async () => {
    const xmlUseCase = {
      name: "IDoc", slug: "idoc", type: "inbound",
      configuration: { entities: [{ entity_schema: "account", unique_ids: ["customer_number"], jsonataExpression: "DEBMAS07.IDOC.E1KNA1M", fields: [{ attribute: "customer_number", field: "KUNNR" }, { attribute: "name", field: "NAME1" }] }] },
    };
    const { token, integrationId } = await setup([xmlUseCase]);
    const [r] = await post(token, integrationId, [{ use_case_slug: "idoc", format: "xml", payload: "<DEBMAS07><IDOC><E1KNA1M><KUNNR>0000012345</KUNNR><NAME1>Müller GmbH</NAME1></E1KNA1M></IDOC></DEBMAS07>" }]);
    expect((await waitFor(token, r!.event_id)).status).toBe("done");
    expect((await findOne(token, "account", "customer_number=0000012345")).attributes.name).toBe("Müller GmbH");
  });

  it("reports AMBIGUOUS_IDENTIFIER instead of merging two entities", async () => {
    const both = {
      name: "Both ids", slug: "both", type: "inbound",
      configuration: { entities: [{ entity_schema: "contact", unique_ids: ["external_id", "customer_number"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "customer_number", field: "no" }, { attribute: "full_name", field: "name" }] }] },
    };
    const byNumber = {
      name: "By number", slug: "by-number", type: "inbound",
      configuration: { entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "no" }] }] },
    };
    const { token, integrationId } = await setup([both, byNumber]);
    const [a, b] = await post(token, integrationId, [
      { use_case_slug: "contacts", payload: { id: "X1", name: "by external id" } },
      { use_case_slug: "by-number", payload: { no: "N1" } },
    ]);
    await waitFor(token, a!.event_id);
    await waitFor(token, b!.event_id);
    const [c] = await post(token, integrationId, [{ use_case_slug: "both", payload: { id: "X1", no: "N1", name: "merge?" } }]);
    const status = await waitFor(token, c!.event_id);
    expect(status).toMatchObject({ status: "error", error_category: "validation" });
    expect(status.errors[0]).toMatchObject({ code: "AMBIGUOUS_IDENTIFIER", matches: expect.any(Array) });
    expect((await findOne(token, "contact", "external_id=X1")).attributes.full_name).toBe("by external id");
  });

  it("soft-deletes (restorable) and purges", async () => {
    const lifecycle = (mode: string) => ({
      name: mode, slug: `contact-${mode}`, type: "inbound",
      configuration: { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], mode, fields: [{ attribute: "external_id", field: "id" }] }] },
    });
    const { token, integrationId } = await setup([lifecycle("delete"), lifecycle("purge")]);
    const [c] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "L1", name: "Lifecycle" } }]);
    const id = (await waitFor(token, c!.event_id)).entities[0]._id;
    const [d] = await post(token, integrationId, [{ use_case_slug: "contact-delete", payload: { id: "L1" } }]);
    expect((await waitFor(token, d!.event_id)).entities[0].operation).toBe("deleted");
    expect((await api("GET", `/v1/entities/contact/${id}`, { token })).body.deleted_at).not.toBeNull();
    const restored = await api("POST", `/v1/entities/contact/${id}/restore`, { token });
    expect(restored.body).toMatchObject({ deleted_at: null, attributes: { full_name: "Lifecycle" } });
    const [p] = await post(token, integrationId, [{ use_case_slug: "contact-purge", payload: { id: "L1" } }]);
    expect((await waitFor(token, p!.event_id)).entities[0].operation).toBe("purged");
    expectError(await api("GET", `/v1/entities/contact/${id}`, { token }), 404, "NOT_FOUND");
    expect(await findOne(token, "contact", "external_id=L1")).toBeUndefined();
  });

  it("loses nothing between accepting and processing: the event is stored and queued in one write of its log shard", async () => {
    const { tenant, token, integrationId, useCases } = await setup();
    const group = "g-handoff";
    const log = logOf(integrationId, group);
    const event: NewEvent = {
      id: newEventId(integrationId, shardOf(group, shardCount(env))), tenant_id: tenant.id, integration_id: integrationId,
      use_case_id: useCases.find((u) => u.slug === "contacts")!.id, use_case_slug: "contacts", event_name: null, correlation_id: null,
      group_id: group, deduplication_id: null, source_timestamp: nextTimestamp(), format: "json",
      payload: JSON.stringify({ id: "SW1", name: "Recovered" }), status: "accepted", received_at: new Date().toISOString(),
    };
    // Accepted by its shard (what POST /v3/erp/updates/events does), looked at inside the object before
    // its alarm can run: once accept answers, the event is both stored and queued, with nothing left to hand off.
    await runInDurableObject(log, async (instance: EventLog, state) => {
      expect(await instance.accept([{ event, process: true }])).toEqual([null]);
      expect(await instance.event(event.id)).toMatchObject({ status: "accepted", attempts: 0 });
      expect(await instance.pending()).toEqual([{ event_id: event.id, attempts: 0, last_error: null }]);
      expect(await state.storage.getAlarm()).not.toBeNull();
      // The alarm that would process it is lost.
      await state.storage.deleteAlarm();
    });
    // The queue is durable: the next event accepted by the shard re-arms the alarm, and the waiting
    // event is processed, ahead of the new one of its group.
    const [next] = await post(token, integrationId, [{ use_case_slug: "contacts", group_id: group, payload: { id: "SW1", name: "Next" } }]);
    expect(logOfEvent(integrationId, next!.event_id).id.equals(log.id)).toBe(true);
    expect((await waitFor(token, event.id)).status).toBe("done");
    expect((await waitFor(token, next!.event_id)).status).toBe("done");
    const contact = await findOne(token, "contact", "external_id=SW1");
    expect(contact.attributes.full_name).toBe("Next");
    const history = await api("GET", `/v1/entities/contact/${contact.id}/history`, { token });
    expect(history.body.history.map((h: { event_id: string }) => h.event_id)).toEqual([next!.event_id, event.id]);
  });
});

describe("entities API", () => {
  it("finds by unique ids, lists history with event ids and changes, and refuses bad input", async () => {
    const { token, integrationId } = await setup();
    const [a] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "H1", name: "v1" } }]);
    const [b] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "H1", name: "v2" } }]);
    await waitFor(token, b!.event_id);
    const contact = await findOne(token, "contact", "external_id=H1");
    expect(contact).toMatchObject({ schema: "contact", version: 2, unique_ids: { external_id: "H1" }, attributes: { full_name: "v2" } });
    const history = await api("GET", `/v1/entities/contact/${contact.id}/history?limit=1`, { token });
    expect(history.body.history).toEqual([{ version: 2, event_id: b!.event_id, operation: "updated", changes: { full_name: { from: "v1", to: "v2" } }, at: expect.any(String) }]);
    const rest = await api("GET", `/v1/entities/contact/${contact.id}/history?cursor=${history.body.next_cursor}`, { token });
    expect(rest.body.history[0]).toMatchObject({ version: 1, event_id: a!.event_id, operation: "created" });

    expect((await api("GET", "/v1/entities/contact?external_id=nobody", { token })).body.entities).toEqual([]);
    expectError(await api("GET", `/v1/entities/contact/${contact.id}/history?cursor=zzz`, { token }), 400, "INVALID_CURSOR");
    expectError(await api("GET", "/v1/entities/contact/01JD0000000000000000000000", { token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/entities/account/${contact.id}`, { token }), 404, "NOT_FOUND");
    const other = await tenantWithToken();
    expectError(await api("GET", `/v1/entities/contact/${contact.id}`, { token: other.token }), 404, "NOT_FOUND");
    expect((await api("GET", "/v1/entities/contact?external_id=H1", { token: other.token })).body.entities).toEqual([]);
  });
});

describe("throttling", () => {
  it("answers 429 with Retry-After past the tenant's rate", async () => {
    const tenant = (await api("POST", "/v1/tenants", { token: ADMIN, json: { name: "slow", rate_limit_per_second: 1 } })).body;
    const { token } = await createToken(tenant.id);
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const res = await api("GET", "/v2/integrations", { token });
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get("retry-after");
        expectError(res, 429, "RATE_LIMITED");
      }
    }
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  });
});
