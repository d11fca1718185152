// The path of a core event from an entity store's outbox through the queue to fan-out: envelopes too large
// for a queue message, failing sends, the dead-letter queue, and ACKs that arrive before the webhook
// call that carried them has returned.
import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { entityStore } from "../../src/entities/service";
import type { EntityStore } from "../../src/entities/store-do";
import worker from "../../src/index";
import { sweepAckTimeouts } from "../../src/outbound/service";
import { envelope, eventsOfMessage, type CoreEventEnvelope, type CoreEventMessage } from "../../src/platform/core-events";
import { newId } from "../../src/platform/ids";
import { api, tenantWithToken } from "../helpers";
import { contactMapping, findOne, post, waitFor } from "../inbound-helpers";
import { deliveryRows, endpointQuery } from "../outbound-helpers";

const RECEIVER = env.RECEIVER_URL;
let keys = 0;
const newKey = () => `oq${Date.now().toString(36)}${keys++}`;
const script = (key: string, responses: unknown[]) => fetch(`${RECEIVER}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses }) });
const received = async (key: string): Promise<{ body: string; status: number }[]> => (await fetch(`${RECEIVER}/_requests/${key}`)).json();
const release = (key: string) => fetch(`${RECEIVER}/_release/${key}`, { method: "POST" });

const queue = worker.queue as unknown as (batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext) => Promise<void>;
const eventually = { timeout: 20_000, interval: 50 };
/** For tests that wait on the queue and a receiver (vitest's default is 5 s). */
const E2E_TIMEOUT_MS = 30_000;

/** A tenant with the inbound contacts use case and the given outbound use cases. */
async function integration(outbound: Record<string, unknown>[]) {
  const { tenant, token } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", {
    token,
    json: { name: "ERP", use_cases: [{ name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping }, ...outbound] },
  });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  const integrationId: string = res.body.id;
  const useCases = res.body.use_cases as { id: string; slug: string }[];
  /** The endpoint object of an outbound use case's "main" mapping. */
  const endpointId = (slug: string) => `${useCases.find((u) => u.slug === slug)!.id}/main`;
  const deliveries = async (slug: string) =>
    (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { direction: "outbound", use_case: slug } })).body.events as Record<string, any>[];
  return { tenant, token, integrationId, deliveries, endpointId };
}

const outboundUseCase = (slug: string, event: string, expression: string, delivery: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name: slug,
  slug,
  type: "outbound",
  configuration: { event_catalog_event: event, mappings: [{ id: "main", name: "to ERP", jsonata_expression: expression, delivery }], ...extra },
});

/** The integration's use cases as a declarative PUT body, with one more. */
async function withUseCase(s: { token: string; integrationId: string }, extra: Record<string, unknown>) {
  const current = (await api("GET", `/v2/integrations/${s.integrationId}`, { token: s.token })).body;
  return { name: current.name, use_cases: [...current.use_cases.map(({ id, name, slug, type, enabled, configuration }: Record<string, unknown>) => ({ id, name, slug, type, enabled, configuration })), extra] };
}

/** The store holding a tenant's contacts (its outbox carries every contact's core events). */
const contacts = (tenantId: string) => entityStore(env, tenantId, "contact");
const alarmOf = (stub: DurableObjectStub<EntityStore>) => runInDurableObject(stub, (_, state) => state.storage.getAlarm());

/**
 * The queue binding as the platform would behave when it refuses some messages: sends whose batch
 * holds a refused event throw, the rest reach the real queue. Installed on one EntityStore; `sent`
 * gets the ids of the events sent, and `calls` (when given) the events of each message of each call.
 */
function refusingQueue(real: Queue, refuse: (body: CoreEventEnvelope) => boolean, sent: string[], calls?: string[][][]): Queue {
  const pass = (bodies: CoreEventMessage[]) => {
    const messages = bodies.map((b) => eventsOfMessage(b) as CoreEventEnvelope[]);
    if (messages.flat().some(refuse)) throw new Error("Queue send failed: injected refusal");
    sent.push(...messages.flat().map((b) => b._event_id));
    calls?.push(messages.map((m) => m.map((b) => b._event_id)));
  };
  return {
    async send(body: CoreEventMessage, options?: QueueSendOptions) {
      pass([body]);
      return real.send(body, options);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<CoreEventMessage>>, options?: QueueSendBatchOptions) {
      const list = [...messages];
      pass(list.map((m) => m.body));
      return real.sendBatch(list, options);
    },
  } as unknown as Queue;
}

describe("entity outbox", () => {
  it("sends an 80 KB contact's event by reference, empties the outbox, clears the alarm, and delivers later updates in order", async () => {
    const key = newKey();
    const s = await integration([
      outboundUseCase(
        "updates",
        "contact.updated",
        '{ "event": _event_id, "truncated": _truncated, "version": entity.version, "name_length": $length(entity.attributes.full_name), "changed": $keys(changes) }',
        { type: "webhook", url: `${RECEIVER}/hook/${key}`, ordered: true },
      ),
    ]);
    const big = "n".repeat(80_000);
    const contact = (name: string) => ({ use_case_slug: "contacts", payload: { id: "BIG-1", name } });
    await post(s.token, s.integrationId, [contact("small")]);
    await post(s.token, s.integrationId, [contact(big)]);
    await post(s.token, s.integrationId, [contact("after 1")]);
    const [last] = await post(s.token, s.integrationId, [contact("after 2")]);
    expect((await waitFor(s.token, last!.event_id)).status).toBe("done");

    const bodies = await vi.waitFor(async () => {
      const requests = await received(key);
      expect(requests).toHaveLength(3);
      return requests.map((r) => JSON.parse(r.body));
    }, eventually);
    // Mapped from the whole event (attributes and changes), loaded again by fan-out ($keys of one key is that key).
    expect(bodies.map(({ event: _, ...rest }) => rest)).toEqual([
      { version: 2, name_length: 80_000, changed: "full_name" },
      { version: 3, name_length: 7, changed: "full_name" },
      { version: 4, name_length: 7, changed: "full_name" },
    ]);

    const entity = await findOne(s.token, "contact", "external_id=BIG-1");
    const stub = contacts(s.tenant.id);
    // Only the large event was kept aside for fan-out; the small ones went inline.
    expect(JSON.parse((await stub.coreEvent(bodies[0].event))!)).toMatchObject({ _event_id: bodies[0].event, entity: { version: 2 } });
    expect(await stub.coreEvent(bodies[1].event)).toBeNull();
    expect(await stub.outboxStatus(entity.id)).toEqual({ pending: [], dead: [] });
    expect(await stub.outboxStatus()).toEqual({ pending: [], dead: [] });
    expect(await alarmOf(stub)).toBeNull();
  }, E2E_TIMEOUT_MS);

  it("sends an oversized row an earlier version left in the outbox by reference once its alarm runs", async () => {
    const key = newKey();
    const s = await integration([outboundUseCase("updates", "contact.updated", '{ "name_length": $length(entity.attributes.full_name) }', { type: "webhook", url: `${RECEIVER}/hook/${key}` })]);
    const [created] = await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "OLD-1", name: "Old" } }]);
    await waitFor(s.token, created!.event_id);
    const entity = await findOne(s.token, "contact", "external_id=OLD-1");
    const stub = contacts(s.tenant.id);
    // What the old outbox wrote: the whole entity and change set inline, 300 KB, which no send could carry.
    const name = "o".repeat(150_000);
    const legacy = envelope(s.tenant.id, "contact.updated", {
      entity: { id: entity.id, schema: "contact", attributes: { ...entity.attributes, full_name: name }, unique_ids: entity.unique_ids, version: 2, deleted_at: null },
      operation: "updated",
      changes: { full_name: { from: "Old", to: name } },
      source_event_id: null,
    }, { source: "erp-edge.entities" });
    await runInDurableObject(stub, async (_, state) => {
      state.storage.sql.exec("INSERT INTO outbox (id, entity_id, body) VALUES (?, ?, ?)", legacy._event_id, entity.id, JSON.stringify(legacy));
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    expect(await stub.outboxStatus()).toEqual({ pending: [], dead: [] });
    expect(await alarmOf(stub)).toBeNull();
    await vi.waitFor(async () => expect((await received(key)).map((r) => JSON.parse(r.body))).toEqual([{ name_length: 150_000 }]), eventually);
  }, E2E_TIMEOUT_MS);

  it("retries a refused send with backoff without holding back later events, dead-letters it after 12 attempts, and redrives it", async () => {
    // A store queues only events some outbound use case takes: this tenant takes both.
    const mapping = '{ "n": entity.attributes.n }';
    const { tenant } = await integration([outboundUseCase("created", "contact.created", mapping, { type: "poll" }), outboundUseCase("updated", "contact.updated", mapping, { type: "poll" })]);
    const entityId = newId();
    const stub = contacts(tenant.id);
    const sent: string[] = [];
    let refusing = true;
    await runInDurableObject(stub, (instance) => {
      const target = instance as unknown as { env: Env };
      target.env = { ...target.env, CORE_EVENTS: refusingQueue(target.env.CORE_EVENTS, (b) => refusing && (b.entity as { attributes: { note?: string } }).attributes.note === "poison", sent) };
    });
    let n = 0;
    const update = (note: string) => {
      const eventId = newId();
      return stub.apply([{ updateId: `${eventId}#0`, eventId, tenantId: tenant.id, schema: "contact", entityId, uniqueIds: { external_id: "F-1" }, attributes: { note, n: n++ }, mode: "upsert" }]);
    };
    const timePasses = () => runInDurableObject(stub, (_, state) => void state.storage.sql.exec("UPDATE outbox SET next_at = 0"));

    await update("poison");
    const [poison] = (await stub.outboxStatus()).pending;
    expect(poison).toMatchObject({ attempts: 1, last_error: expect.stringContaining("injected refusal") });
    expect(Date.parse(poison!.next_attempt_at!)).toBeGreaterThan(Date.now());
    expect(await alarmOf(stub)).toBe(Date.parse(poison!.next_attempt_at!));

    // A later event goes out while the refused one waits for its retry.
    await update("fine");
    expect(sent).toHaveLength(1);
    // Due together, they share a batch: the batch fails, and each is sent alone.
    await timePasses();
    await update("fine too");
    expect(sent).toHaveLength(2);
    expect((await stub.outboxStatus()).pending).toEqual([expect.objectContaining({ event_id: poison!.event_id, attempts: 2 })]);

    for (let attempt = 3; attempt <= 12; attempt++) {
      await timePasses();
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    }
    const status = await stub.outboxStatus();
    expect(status.pending).toEqual([]);
    expect(status.dead).toEqual([{ event_id: poison!.event_id, event_name: "contact.created", attempts: 12, last_error: expect.stringContaining("injected refusal"), dead_at: expect.any(String) }]);
    expect(await alarmOf(stub)).toBeNull();

    refusing = false;
    expect(await stub.redriveOutbox()).toBe(1);
    expect(await stub.outboxStatus()).toEqual({ pending: [], dead: [] });
    expect(sent.at(-1)).toBe(poison!.event_id);
    expect(await alarmOf(stub)).toBeNull();
  });
});

describe("entity outbox without subscribers", () => {
  it("queues no core event for a tenant whose outbound use cases take none of the store's events", async () => {
    const s = await integration([outboundUseCase("poll", "meter.updated", '{ "a": 1 }', { type: "poll" })]);
    const stub = contacts(s.tenant.id);
    const sent: string[] = [];
    await runInDurableObject(stub, (instance) => {
      const target = instance as unknown as { env: Env };
      target.env = { ...target.env, CORE_EVENTS: refusingQueue(target.env.CORE_EVENTS, () => false, sent) };
    });
    const eventId = newId();
    const [result] = await stub.apply([{ updateId: `${eventId}#0`, eventId, tenantId: s.tenant.id, schema: "contact", uniqueIds: { external_id: "NOSUB-1" }, attributes: { n: 1 }, mode: "upsert" }]);
    expect(result).toMatchObject({ operation: "created" });
    expect(sent).toEqual([]);
    expect(await stub.outboxStatus()).toEqual({ pending: [], dead: [] });
    expect(await alarmOf(stub)).toBeNull();
    // Once a use case takes contact.updated, the next change is queued (the save cleared this isolate's cache).
    const added = await api("PUT", `/v2/integrations/${s.integrationId}`, { token: s.token, json: await withUseCase(s, outboundUseCase("contacts-out", "contact.updated", '{ "a": 1 }', { type: "poll" })) });
    expect(added.status).toBe(200);
    const next = newId();
    await stub.apply([{ updateId: `${next}#0`, eventId: next, tenantId: s.tenant.id, schema: "contact", uniqueIds: { external_id: "NOSUB-1" }, attributes: { n: 2 }, mode: "upsert" }]);
    expect(sent).toHaveLength(1);
  });
});

describe("entity outbox packs", () => {
  it("sends a batch's events in packs of at most 50 per message, in order, and the queue's consumer fans each one out", async () => {
    const s = await integration([outboundUseCase("poll", "contact.created", '{ "n": entity.attributes.n }', { type: "poll" })]);
    const stub = contacts(s.tenant.id);
    const sent: string[] = [];
    const calls: string[][][] = [];
    await runInDurableObject(stub, (instance) => {
      const target = instance as unknown as { env: Env };
      target.env = { ...target.env, CORE_EVENTS: refusingQueue(target.env.CORE_EVENTS, () => false, sent, calls) };
    });
    const eventId = newId();
    const updates = Array.from({ length: 120 }, (_, n) => ({ updateId: `${eventId}#${n}`, eventId, tenantId: s.tenant.id, schema: "contact", uniqueIds: { external_id: `PACK-${n}` }, attributes: { n }, mode: "upsert" as const }));
    await stub.apply(updates);
    // 120 events, in the order they were applied: three messages (50, 50, 20) in as few sendBatch calls as 256 KB allow.
    expect(calls.flat().map((m) => m.length)).toEqual([50, 50, 20]);
    expect(calls.length).toBeLessThanOrEqual(2);
    const rows = await vi.waitFor(async () => {
      const d = await deliveryRows(s.integrationId);
      expect(d).toHaveLength(120);
      return d;
    }, eventually);
    expect(rows.map((d) => d.event_id).sort()).toEqual([...sent].sort());
    expect(rows.map((d) => JSON.parse(d.payload).n).sort((a, b) => a - b)).toEqual(updates.map((_, n) => n));
    expect(await stub.outboxStatus()).toEqual({ pending: [], dead: [] });
  }, E2E_TIMEOUT_MS);
});

describe("queue()", () => {
  it("acks fanned-out and unreadable messages and retries a failed fan-out alone", async () => {
    const s = await integration([outboundUseCase("poll", "contact.updated", '{ "name": entity.attributes.full_name }', { type: "poll" })]);
    const other = await tenantWithToken();
    const entity = (name: string) => ({ entity: { id: newId(), schema: "contact", attributes: { full_name: name }, unique_ids: {}, version: 1, deleted_at: null }, operation: "updated", changes: {} });
    const ok = envelope(s.tenant.id, "contact.updated", entity("Queued"));
    const elsewhere = envelope(other.tenant.id, "contact.updated", entity("No subscribers"));
    // A reference to an event no entity store keeps: fan-out cannot map it now.
    const lost = { ...envelope(s.tenant.id, "contact.updated", entity("Lost")), _truncated: true, _entity_id: newId(), _entity_version: 1 };
    const packed = envelope(s.tenant.id, "contact.updated", entity("Packed"));
    const packedWithLost = envelope(s.tenant.id, "contact.updated", entity("Packed with a lost one"));
    const lostToo = { ...envelope(s.tenant.id, "contact.updated", entity("Lost too")), _truncated: true, _entity_id: newId(), _entity_version: 1 };
    const batch = createMessageBatch<unknown>("erp-edge-core-events", [
      { id: "m-ok", timestamp: Date.now(), attempts: 1, body: ok },
      { id: "m-unreadable", timestamp: Date.now(), attempts: 1, body: "not an envelope" },
      { id: "m-lost", timestamp: Date.now(), attempts: 3, body: lost },
      { id: "m-elsewhere", timestamp: Date.now(), attempts: 1, body: elsewhere },
      // Packs: an unreadable event in one is skipped alone; one event that cannot be fanned out retries its whole pack.
      { id: "m-pack", timestamp: Date.now(), attempts: 1, body: { _events: [packed, "not an envelope", null] } },
      { id: "m-pack-lost", timestamp: Date.now(), attempts: 1, body: { _events: [packedWithLost, lostToo] } },
      { id: "m-pack-empty", timestamp: Date.now(), attempts: 1, body: { _events: [] } },
    ]);
    const ctx = createExecutionContext();
    await queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["m-elsewhere", "m-ok", "m-pack", "m-pack-empty", "m-unreadable"]);
    // (getQueueResult reports which messages were retried, not their delay.)
    expect(result.retryMessages.map((m) => m.msgId).sort()).toEqual(["m-lost", "m-pack-lost"]);
    expect(result.retryBatch.retry).toBe(false);
    const rows = (await deliveryRows(s.integrationId)).map(({ tenant_id, event_id, status, payload }) => ({ tenant_id, event_id, status, payload }));
    expect(rows).toHaveLength(3);
    expect(rows).toEqual(
      expect.arrayContaining([
        { tenant_id: s.tenant.id, event_id: ok._event_id, status: "pending", payload: JSON.stringify({ name: "Queued" }) },
        { tenant_id: s.tenant.id, event_id: packed._event_id, status: "pending", payload: JSON.stringify({ name: "Packed" }) },
        // The retried pack's event that could be fanned out is stored now, and once only when the pack comes back.
        { tenant_id: s.tenant.id, event_id: packedWithLost._event_id, status: "pending", payload: JSON.stringify({ name: "Packed with a lost one" }) },
      ]),
    );
    const again = createMessageBatch<unknown>("erp-edge-core-events", [{ id: "m-pack-lost", timestamp: Date.now(), attempts: 2, body: { _events: [packedWithLost, lostToo] } }]);
    const retryCtx = createExecutionContext();
    await queue(again, env, retryCtx);
    expect((await getQueueResult(again, retryCtx)).retryMessages.map((m) => m.msgId)).toEqual(["m-pack-lost"]);
    expect(await deliveryRows(s.integrationId)).toHaveLength(3);
    // The tenant without subscribers got no endpoint object, so no delivery anywhere.
    const { results } = await env.DB.prepare("SELECT id FROM outbound_endpoints WHERE tenant_id = ?").bind(other.tenant.id).all();
    expect(results).toEqual([]);
  });

  it("writes a batch's deliveries per endpoint together, but deliveries an endpoint refuses fail only their own message", async () => {
    const mapping = '{ "name": entity.attributes.full_name }';
    const a = await integration([outboundUseCase("poll", "contact.updated", mapping, { type: "poll" })]);
    const b = await integration([outboundUseCase("poll", "contact.updated", mapping, { type: "poll" })]);
    const entity = (name: string) => ({ entity: { id: newId(), schema: "contact", attributes: { full_name: name }, unique_ids: {}, version: 1, deleted_at: null }, operation: "updated", changes: {} });
    const fromA = envelope(a.tenant.id, "contact.updated", entity("A"));
    const alsoFromA = envelope(a.tenant.id, "contact.updated", entity("A too"));
    const fromB = envelope(b.tenant.id, "contact.updated", entity("B"));
    const endpointA = a.endpointId("poll");
    const batch = (messages: { id: string; attempts: number; body: unknown }[]) => createMessageBatch<unknown>("erp-edge-core-events", messages.map((m) => ({ ...m, timestamp: Date.now() })));
    const consume = async (messages: MessageBatch<unknown>) => {
      const ctx = createExecutionContext();
      await queue(messages, env, ctx);
      return getQueueResult(messages, ctx);
    };
    const stored = async (integrationId: string) => (await deliveryRows(integrationId)).map((d) => ({ tenant_id: d.tenant_id, event_id: d.event_id, payload: d.payload }));
    // Tenant A's endpoint object refuses the rows of one of its events (as it would a row it cannot
    // store): the endpoint's write of the batch's two A events fails as a whole.
    await endpointQuery(endpointA, `CREATE TRIGGER refuse_a BEFORE INSERT ON deliveries WHEN NEW.event_id = '${fromA._event_id}' BEGIN SELECT RAISE(ABORT, 'row refused'); END`);
    try {
      const result = await consume(
        batch([
          { id: "m-a", attempts: 1, body: fromA },
          { id: "m-a-too", attempts: 1, body: alsoFromA },
          { id: "m-b", attempts: 1, body: fromB },
        ]),
      );
      expect(result.explicitAcks.sort()).toEqual(["m-a-too", "m-b"]);
      expect(result.retryMessages.map((m) => m.msgId)).toEqual(["m-a"]);
      // B's endpoint stored its delivery; A's stored the event it accepts, written alone after the batch's write failed.
      expect(await stored(b.integrationId)).toEqual([{ tenant_id: b.tenant.id, event_id: fromB._event_id, payload: JSON.stringify({ name: "B" }) }]);
      expect(await stored(a.integrationId)).toEqual([{ tenant_id: a.tenant.id, event_id: alsoFromA._event_id, payload: JSON.stringify({ name: "A too" }) }]);
    } finally {
      await endpointQuery(endpointA, "DROP TRIGGER IF EXISTS refuse_a");
    }
    // The queue redelivers the refused message; the endpoint accepts it now, and nothing is stored twice.
    const retried = await consume(batch([{ id: "m-a", attempts: 2, body: fromA }]));
    expect(retried.explicitAcks).toEqual(["m-a"]);
    expect(retried.retryMessages).toEqual([]);
    const storedA = await stored(a.integrationId);
    expect(storedA).toHaveLength(2);
    expect(storedA).toEqual(
      expect.arrayContaining([
        { tenant_id: a.tenant.id, event_id: fromA._event_id, payload: JSON.stringify({ name: "A" }) },
        { tenant_id: a.tenant.id, event_id: alsoFromA._event_id, payload: JSON.stringify({ name: "A too" }) },
      ]),
    );
    expect(await stored(b.integrationId)).toHaveLength(1);
  });

  it("records each dead-lettered core event once, with its tenant, and acks it", async () => {
    const { tenant } = await tenantWithToken();
    const event = envelope(tenant.id, "contact.updated", { entity: { id: newId() }, operation: "updated" });
    const [first, second] = [envelope(tenant.id, "contact.created", { entity: { id: newId() } }), envelope(tenant.id, "contact.updated", { entity: { id: newId() } })];
    const deliver = async () => {
      const batch = createMessageBatch<unknown>("erp-edge-core-events-dlq", [
        { id: "dlq-1", timestamp: Date.now(), attempts: 1, body: event },
        { id: "dlq-2", timestamp: Date.now(), attempts: 1, body: "garbage" },
        { id: "dlq-3", timestamp: Date.now(), attempts: 1, body: { _events: [first, second] } },
      ]);
      const ctx = createExecutionContext();
      await queue(batch, env, ctx);
      return getQueueResult(batch, ctx);
    };
    expect((await deliver()).explicitAcks.sort()).toEqual(["dlq-1", "dlq-2", "dlq-3"]);
    // Delivered again (at least once): still one record per message, and per event of a pack.
    expect((await deliver()).explicitAcks.sort()).toEqual(["dlq-1", "dlq-2", "dlq-3"]);
    const { results } = await env.DB.prepare("SELECT message_id, tenant_id, event_id, event_name, body FROM core_event_dead_letters WHERE message_id LIKE 'dlq-%' ORDER BY message_id").all();
    expect(results).toEqual([
      { message_id: "dlq-1", tenant_id: tenant.id, event_id: event._event_id, event_name: "contact.updated", body: JSON.stringify(event) },
      { message_id: "dlq-2", tenant_id: null, event_id: null, event_name: null, body: '"garbage"' },
      { message_id: "dlq-3/0", tenant_id: tenant.id, event_id: first._event_id, event_name: "contact.created", body: JSON.stringify(first) },
      { message_id: "dlq-3/1", tenant_id: tenant.id, event_id: second._event_id, event_name: "contact.updated", body: JSON.stringify(second) },
    ]);
  });
});

describe("ACK status", () => {
  it("keeps an ACK the receiver sent before answering its webhook call, and only moves forward", async () => {
    const key = newKey();
    await script(key, [{ status: 200, hold: true }]);
    const s = await integration([
      outboundUseCase("push", "contact.created", '{ "customer": entity.unique_ids.external_id, "ack": _ack_id }', { type: "webhook", url: `${RECEIVER}/hook/${key}` }, { ack_tracking: "on" }),
    ]);
    await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "EARLY-1", name: "Early" } }]);
    // The receiver holds the call open; it processes the event and ACKs before answering 200.
    const [request] = await vi.waitFor(async () => {
      const requests = await received(key);
      expect(requests).toHaveLength(1);
      return requests;
    }, eventually);
    const ackId = JSON.parse(request!.body).ack;
    const ack = await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { ack_id: ackId, status: "processed" } });
    expect(ack.body).toEqual({ message: "Acknowledged", ack_id: ackId, status: "processed", direction: "outbound", acknowledged: 1 });
    await release(key);

    const [delivery] = await vi.waitFor(async () => {
      const d = await s.deliveries("push");
      expect(d[0]?.status).toBe("delivered");
      return d;
    }, eventually);
    expect(delivery!.ack_status).toBe("processed");
    // Neither the timeout sweep nor a contradicting ACK moves it back.
    await sweepAckTimeouts(env, Date.now() + 2 * 3600_000);
    const again = await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { ack_id: ackId, status: "failed" } });
    expect(again.body).toEqual({ message: "Acknowledged", ack_id: ackId, status: "processed", direction: "outbound", acknowledged: 0 });
    expect((await s.deliveries("push"))[0]!.ack_status).toBe("processed");
  }, E2E_TIMEOUT_MS);
});
