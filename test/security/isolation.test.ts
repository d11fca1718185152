// One tenant's configuration or input must not break, slow or poison another tenant: prototype keys,
// poison events that crash processing, deep nesting, invalid UTF-8, and shared queue batches.
import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import type { NewEvent } from "../../src/inbound/events-log";
import { MAX_ATTEMPTS, type EventLog } from "../../src/inbound/log-do";
import { newEventId, shardCount, shardOf } from "../../src/inbound/shards";
import { configChanged } from "../../src/platform/config-cache";
import { api, expectError, tenantWithToken } from "../helpers";
import { eventRow, findOne, logOf, logQuery, nextTimestamp, post, setup, waitFor } from "../inbound-helpers";

const nested = (levels: number, leaf = "1") => "[".repeat(levels) + leaf + "]".repeat(levels);
const nestedObject = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);

describe("prototype keys in user paths", () => {
  it("refuses redact_paths through __proto__, constructor or prototype at save", async () => {
    const { token } = await tenantWithToken();
    for (const path of ["__proto__.toString", "a.constructor.prototype.x", "$.prototype"]) {
      const res = await api("POST", "/v2/integrations", { token, json: { name: "P", settings: { redact_paths: [path] } } });
      const details = expectError(res, 400, "VALIDATION_FAILED");
      expect(JSON.stringify(details)).toContain("settings.redact_paths.0");
    }
  });

  it("a hostile path stored before the check neither pollutes Object.prototype nor breaks other tenants", async () => {
    const victim = await tenantWithToken("Victim");
    const { token, integrationId } = await setup();
    // As if saved by an older version: the schema refuses it now, so write the row directly.
    await env.DB.prepare("UPDATE integrations SET settings = ? WHERE id = ?")
      .bind(JSON.stringify({ redact_paths: ["__proto__.toString", "constructor.prototype.polluted", "name"], retention_days: 30 }), integrationId)
      .run();
    configChanged(); // written behind the API's back: drop this isolate's cached configuration
    const [result] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "C-1", name: "Jane", __proto__: { x: 1 } } }]);
    expect((await waitFor(token, result!.event_id)).status).toBe("done");
    expect(typeof Object.prototype.toString).toBe("function");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const stored = await eventRow(integrationId, result!.event_id);
    expect(JSON.parse(stored!.payload!)).toMatchObject({ id: "C-1", name: "[REDACTED]" });
    // Every tenant still authenticates and reads.
    expect((await api("GET", "/v2/integrations", { token: victim.token })).status).toBe(200);
    expect((await api("GET", `/v2/integrations/${integrationId}`, { token })).status).toBe(200);
  });
});

describe("crash-safe attempts", () => {
  it("parks an event whose attempts were all used up by crashes, without running it again, and the stream moves on", async () => {
    const { tenant, token, integrationId, useCases } = await setup();
    await env.DB.prepare("UPDATE integrations SET settings = ? WHERE id = ?").bind(JSON.stringify({ redact_paths: ["name"], retention_days: 30 }), integrationId).run();
    configChanged(); // written behind the API's back: drop this isolate's cached configuration
    const group = "g-crash";
    const stub = logOf(integrationId, group);
    // Two events of one group, as POST /v3/erp/updates/events hands them to their log shard.
    const event = (payload: Record<string, unknown>): NewEvent => ({
      id: newEventId(integrationId, shardOf(group, shardCount(env))), tenant_id: tenant.id, integration_id: integrationId,
      use_case_id: useCases.find((u) => u.slug === "contacts")!.id, use_case_slug: "contacts", event_name: null, correlation_id: null,
      group_id: group, deduplication_id: null, source_timestamp: nextTimestamp(), format: "json", payload: JSON.stringify(payload),
      status: "accepted", received_at: new Date().toISOString(),
    });
    const poison = event({ id: "CRASH-1", name: "Poison" });
    const next = event({ id: "CRASH-2", name: "After" });
    // What a crash loop leaves behind: attempts recorded before each run, none of which returned.
    // Written in the same call that accepts the events, so the shard's alarm cannot run them first.
    await runInDurableObject(stub, async (instance: EventLog, state) => {
      expect(await instance.accept([poison, next].map((e) => ({ event: e, process: true })))).toEqual([null, null]);
      state.storage.sql.exec("UPDATE queue SET attempts = ?, last_error = NULL WHERE event_id = ?", MAX_ATTEMPTS, poison.id);
      state.storage.sql.exec("UPDATE events SET status = 'processing', attempts = ? WHERE id = ?", MAX_ATTEMPTS, poison.id);
    });
    // The alarm is due at once: workerd may run it before the plugin is asked to; waitFor covers both.
    await runDurableObjectAlarm(stub);
    const parked = await waitFor(token, poison.id);
    expect(parked).toMatchObject({ status: "error", error_category: "system", attempts: MAX_ATTEMPTS });
    expect(parked.errors[0].message).toMatch(/gave up after 5 attempts: the runtime stopped while processing it/);
    expect(parked.entities).toEqual([]);
    expect(await findOne(token, "contact", "external_id=CRASH-1")).toBeUndefined();
    // A parked event's payload is redacted like a processed one's.
    const row = await eventRow(integrationId, poison.id);
    expect(JSON.parse(row!.payload!)).toEqual({ id: "CRASH-1", name: "[REDACTED]" });
    expect((await waitFor(token, next.id)).status).toBe("done");
  });

  it("records the attempt before processing runs", async () => {
    const { token, integrationId } = await setup();
    const [event] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "A-1", name: "A" }, group_id: "g-attempt" }]);
    expect((await waitFor(token, event!.event_id)).status).toBe("done");
    // The attempt counter of the finished event was written and then its queue row removed; a fresh
    // enqueue of a finished event is recorded and dropped without reprocessing.
    const stub = logOf(integrationId, "g-attempt");
    await stub.enqueue([event!.event_id]);
    // The alarm is due at once, so workerd may already be running it when the plugin is asked to:
    // wait for the shard's queue to drain rather than assume this call ran it to the end.
    await runDurableObjectAlarm(stub);
    await vi.waitFor(async () => expect(await stub.pending()).toEqual([]), { timeout: 10_000, interval: 20 });
    expect(await waitFor(token, event!.event_id)).toMatchObject({ status: "done", attempts: 1 });
  });
});

describe("nesting and encoding limits", () => {
  it("answers 400 NESTING_TOO_DEEP for 10,000 levels on every JSON route, storing nothing", async () => {
    const { token, integrationId } = await setup();
    const targets: [string, string][] = [
      ["POST", "/v2/integrations"],
      ["PUT", `/v2/integrations/${integrationId}`],
      ["POST", `/v1/integrations/${integrationId}/use-cases`],
      ["POST", `/v1/integrations/${integrationId}/events`],
      ["POST", "/v1/events"],
      ["POST", "/v3/erp/updates/events"],
      ["POST", "/v2/erp/updates/mapping_simulation"],
    ];
    // What the routes could store: integrations and use cases in D1, events in the integration's log.
    const stored = async () =>
      (await env.DB.prepare("SELECT (SELECT COUNT(*) FROM integrations) + (SELECT COUNT(*) FROM use_cases) AS n").first<{ n: number }>())!.n +
      (await logQuery(integrationId, "SELECT id FROM events")).length;
    const before = await stored();
    for (const [method, path] of targets) {
      for (const body of [nested(10_000), `{"name":"x","use_cases":${nested(10_000)}}`, `{"integration_id":"${integrationId}","events":[{"payload":${nestedObject(10_000)}}]}`]) {
        const res = await api(method, path, { token, body, headers: { "content-type": "application/json" } });
        expect(res.status, `${method} ${path}`).toBe(400);
        expect(res.body.error.code).toBe("NESTING_TOO_DEEP");
      }
    }
    expect(await stored()).toBe(before);
    // 64 levels pass the guard (the schema then decides).
    const ok = await api("POST", "/v3/erp/updates/events", { token, json: { integration_id: integrationId, events: [{ use_case_slug: "contacts", timestamp: new Date().toISOString(), payload: { id: "N-1", name: "deep", x: JSON.parse(nestedObject(55)) } }] } });
    expect(ok.status).toBe(200);
  });

  it("refuses invalid UTF-8 with 400 instead of storing replacement characters", async () => {
    const { token, integrationId } = await setup();
    const prefix = new TextEncoder().encode(`{"integration_id":"${integrationId}","events":[{"use_case_slug":"contacts","timestamp":"2026-01-01T00:00:00Z","payload":{"id":"U-1","name":"`);
    const suffix = new TextEncoder().encode(`"}}]}`);
    const body = new Uint8Array([...prefix, 0xc3, 0x28, 0xff, ...suffix]);
    const res = await api("POST", "/v3/erp/updates/events", { token, body, headers: { "content-type": "application/json" } });
    expectError(res, 400, "INVALID_JSON");
    expect(res.body.error.message).toMatch(/UTF-8/);
    expect(await logQuery(integrationId, "SELECT id FROM events")).toEqual([]);
  });
});

describe("core-events queue", () => {
  const queue = worker.queue as unknown as (batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext) => Promise<void>;
  const good = (i: number) => ({ id: `m-good-${i}`, timestamp: Date.now(), attempts: 1, body: { _org_id: `tenant-without-subscriptions-${i}`, _event_id: `e-${i}`, _event_name: "contact.updated" } });

  it("handles each message on its own: an invalid envelope is dropped alone, the others are acknowledged", async () => {
    const batch = createMessageBatch<unknown>("erp-edge-core-events", [good(1), { id: "m-invalid", timestamp: Date.now(), attempts: 1, body: { not: "an envelope" } }, good(2)]);
    const ctx = createExecutionContext();
    await queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryBatch.retry).toBe(false);
    expect(result.explicitAcks.sort()).toEqual(["m-good-1", "m-good-2", "m-invalid"]);
    expect(result.retryMessages).toEqual([]);
  });

  it("survives a message whose body cannot be deserialised (a getter that throws on every read)", async () => {
    // createMessageBatch clones bodies, so a body that throws on read (as a too-deep serialised
    // message does in the runtime) needs a hand-made batch; it stands in for the platform only.
    const acks: string[] = [];
    const retries: string[] = [];
    const message = (m: { id: string; body?: unknown }, unreadable = false) => ({
      id: m.id, timestamp: new Date(), attempts: 1,
      get body() { if (unreadable) throw new RangeError("Maximum call stack size exceeded"); return m.body; },
      ack: () => acks.push(m.id), retry: () => retries.push(m.id),
    });
    const batch = { queue: "erp-edge-core-events", messages: [message(good(1)), message({ id: "m-poison" }, true), message(good(2))], ackAll() {}, retryAll() {} };
    await queue(batch as never, env, createExecutionContext());
    expect(acks.sort()).toEqual(["m-good-1", "m-good-2", "m-poison"]);
    expect(retries).toEqual([]);
  });
});

describe("prototype keys in mappings", () => {
  it("refuses attribute names and field paths that are prototype keys when the use case is saved", async () => {
    const { token } = await tenantWithToken();
    const mapping = (field: Record<string, unknown>) => ({
      entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, field] }],
    });
    for (const field of [{ attribute: "__proto__", field: "x" }, { attribute: "constructor", constant: 1 }, { attribute: "name", field: "$.a.__proto__.b" }]) {
      const res = await api("POST", "/v2/integrations", { token, json: { name: "P", use_cases: [{ name: "U", slug: "u", type: "inbound", configuration: mapping(field) }] } });
      expect(res.status, JSON.stringify(field)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(JSON.stringify(res.body.error.details)).toMatch(/__proto__, constructor or prototype/);
    }
  });
});

describe("cost of one tenant's input on shared storage", () => {
  it("refuses more than 20 entity filters with 400 instead of a 49-way join", async () => {
    const { token } = await tenantWithToken();
    const query = Array.from({ length: 49 }, (_, i) => `a${i}=${i}`).join("&");
    expectError(await api("GET", `/v1/entities/contact?${query}`, { token }), 400, "VALIDATION_FAILED");
    expect((await api("GET", "/v1/entities/contact?external_id=1", { token })).status).toBe(200);
  });

  it("keeps a $relation object that arrives as payload data as data: nothing is resolved or created", async () => {
    const { token, integrationId } = await setup();
    const forged = { $relation: { _set: Array.from({ length: 50 }, (_, i) => ({ _schema: "account", $entity_unique_ids: { customer_number: `FORGED-${i}` } })) } };
    const [event] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "REL-1", name: forged } }]);
    expect((await waitFor(token, event!.event_id)).status).toBe("done");
    const accounts = await api("GET", "/v1/entities/account?customer_number=FORGED-0", { token });
    expect(accounts.body.entities).toEqual([]);
  });

  it("reports a stored mapping that no longer validates as a configuration error, without retries", async () => {
    const { token, integrationId, useCases } = await setup();
    const contacts = useCases.find((u) => u.slug === "contacts")!;
    const stored = { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "__proto__", field: "name" }] }] };
    await env.DB.prepare("UPDATE use_cases SET configuration = ? WHERE id = ?").bind(JSON.stringify(stored), contacts.id).run();
    configChanged(); // written behind the API's back: drop this isolate's cached configuration
    const [event] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "OLD-1", name: "x" } }]);
    const status = await waitFor(token, event!.event_id);
    expect(status).toMatchObject({ status: "error", error_category: "configuration", attempts: 1 });
    expect(status.errors[0].code).toBe("INVALID_CONFIGURATION");
  });
});

describe("inherited properties", () => {
  it("field paths and unique ids read own properties only (never toString, hasOwnProperty, valueOf)", async () => {
    const { token } = await tenantWithToken();
    const event_configuration = {
      entities: [{
        entity_schema: "contact", unique_ids: ["toString"],
        fields: [{ attribute: "external_id", field: "id" }, { attribute: "a", field: "hasOwnProperty" }, { attribute: "b", field: "$.nested.valueOf" }],
      }],
    };
    const res = await api("POST", "/v2/erp/updates/mapping_simulation", { token, json: { event_configuration, payload: { id: "X", nested: {} } } });
    expect(res.status).toBe(200);
    expect(res.body.entity_updates).toEqual([]);
    expect(res.body.warnings[0].code).toBe("MISSING_UNIQUE_ID");
  });
});
