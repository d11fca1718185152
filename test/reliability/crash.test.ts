// The crash test: the runtime stops between each pair of steps of inbound processing and outbound
// delivery (the crash points of src/platform/crash-points.ts), recovers by its own mechanisms, and
// nothing is lost or applied twice. The contract it proves: every event reaches one final status,
// every entity update is applied exactly once, and every core event is delivered to each subscribed
// mapping at least once, through one delivery whose id (the webhook-id header) is the same on every
// resend, so a receiver that remembers webhook-ids processes it exactly once.
import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { entityStore } from "../../src/entities/service";
import type { EntityStore } from "../../src/entities/store-do";
import { locate, shardCount, shardOf } from "../../src/inbound/shards";
import worker from "../../src/index";
import { envelope, type CoreEventEnvelope } from "../../src/platform/core-events";
import { armCrash, CRASH_POINTS, crashesLeft, disarmAll, type CrashPointName } from "../../src/platform/crash-points";
import { findOne, groupsInOneShard, logOf, logQuery, post, setup } from "../inbound-helpers";
import { deliveryRows, endpointOf, endpointQuery } from "../outbound-helpers";

const RECEIVER = env.RECEIVER_URL;
let keys = 0;
const newKey = () => `crash${Date.now().toString(36)}${keys++}`;
const received = async (key: string): Promise<{ headers: Record<string, string>; body: string; status: number }[]> => (await fetch(`${RECEIVER}/_requests/${key}`)).json();

const queue = worker.queue as unknown as (batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext) => Promise<void>;
const eventually = { timeout: 20_000, interval: 50 };
const TEST_TIMEOUT_MS = 40_000;

afterEach(() => disarmAll());

/** A contact and an account from one event: two entity updates, applied one after the other. */
const pairMapping = {
  event_names: ["PairChanged"],
  entities: [
    { entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "full_name", field: "name" }] },
    { entity_schema: "account", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "account" }, { attribute: "name", field: "company" }] },
  ],
};

const webhook = (slug: string, event: string, url: string) => ({
  name: slug,
  slug,
  type: "outbound",
  configuration: {
    event_catalog_event: event,
    mappings: [{ id: "main", name: "to ERP", jsonata_expression: '{ "event": _event_id, "entity": entity.id, "version": entity.version }', delivery: { type: "webhook", url } }],
  },
});

/** A tenant whose contact and account events are delivered as webhooks to one receiver key. */
async function pipeline() {
  const key = newKey();
  const url = `${RECEIVER}/hook/${key}`;
  const s = await setup([
    { name: "Pairs", slug: "pairs", type: "inbound", configuration: pairMapping },
    webhook("contact-created", "contact.created", url),
    webhook("contact-updated", "contact.updated", url),
    webhook("account-created", "account.created", url),
  ]);
  const endpoints = s.useCases.filter((u) => u.slug.includes("-")).map((u) => `${u.id}/main`);
  return { ...s, key, endpoints };
}
type Pipeline = Awaited<ReturnType<typeof pipeline>>;

/** The event log shard that holds a group's events. */
const streamOf = (p: Pipeline, group: string | null = null) => logOf(p.integrationId, group);
/** The store holding the pipeline tenant's entities of one schema (and their outbox). */
const storeOf = (p: Pipeline, schema: string) => entityStore(env, p.tenant.id, schema);
/** The schemas the pipeline's mappings write. */
const SCHEMAS = ["contact", "account"];
/**
 * An endpoint's queue: its webhook deliveries still to be sent (status pending; due_at is when the
 * next attempt may go), read from the endpoint's own SQLite.
 */
const queuedIn = (endpointId: string) =>
  endpointQuery<{ id: string; attempts: number; due_at: number | null }>(endpointId, "SELECT id, attempts, due_at FROM deliveries WHERE status = 'pending' AND type = 'webhook' ORDER BY id");

const contact = (id: string, name: string, group?: string) => ({ use_case_slug: "contacts", payload: { id, name }, ...(group && { group_id: group }) });

async function crashHappened(point: CrashPointName) {
  await vi.waitFor(() => expect(crashesLeft(point)).toBe(0), eventually);
}

/**
 * The runtime retries a crashed alarm, and runs a backoff alarm, seconds later; this runs it now,
 * as soon as it is scheduled (the plugin's runDurableObjectAlarm), instead of waiting for it.
 */
async function runScheduledAlarm(stub: DurableObjectStub) {
  await vi.waitFor(async () => expect(await runDurableObjectAlarm(stub)).toBe(true), eventually);
}

/** Time passes for an entity store's outbox: claims by a sender that died expire and backoffs end; then its alarm runs. */
async function outboxTimePasses(stub: DurableObjectStub<EntityStore>) {
  await runInDurableObject(stub, (_, state) => {
    state.storage.sql.exec("UPDATE outbox SET sending_since = CASE WHEN sending_since IS NULL THEN NULL ELSE 0 END, next_at = 0");
  });
  return runDurableObjectAlarm(stub);
}

/** Records the core events an entity store sends from now on (they still go to the queue). */
async function recordSends(stub: DurableObjectStub<EntityStore>): Promise<CoreEventEnvelope[]> {
  const sent: CoreEventEnvelope[] = [];
  await runInDurableObject(stub, (instance) => {
    const target = instance as unknown as { env: Env };
    const real = target.env.CORE_EVENTS;
    const recording = {
      send: (body: CoreEventEnvelope, options?: QueueSendOptions) => (sent.push(body), real.send(body, options)),
      sendBatch: (messages: Iterable<MessageSendRequest<CoreEventEnvelope>>, options?: QueueSendBatchOptions) => {
        const list = [...messages];
        sent.push(...list.map((m) => m.body));
        return real.sendBatch(list, options);
      },
    };
    target.env = { ...target.env, CORE_EVENTS: recording as unknown as Queue };
  });
  return sent;
}

interface EventRow {
  id: string;
  status: string;
  attempts: number;
  completed_at: string | null;
}
interface DeliveryRow {
  id: string;
  event_id: string;
  use_case_slug: string;
  mapping_id: string;
  status: string;
  attempts: number;
}
interface EntityRow {
  id: string;
  schema: string;
  unique_ids: string;
  attributes: string;
  version: number;
}

async function snapshot(p: Pipeline) {
  const [events, deliveries, entities] = await Promise.all([
    logQuery<EventRow & Record<string, SqlStorageValue>>(p.integrationId, "SELECT id, status, attempts, completed_at FROM events"),
    // Every delivery of the pipeline's integration, from each endpoint object that holds some, by id.
    deliveryRows(p.integrationId).then((rows) =>
      rows.map(({ id, event_id, use_case_slug, mapping_id, status, attempts }): DeliveryRow => ({ id, event_id, use_case_slug, mapping_id, status, attempts })),
    ),
    Promise.all(
      SCHEMAS.map((schema) =>
        runInDurableObject(storeOf(p, schema), (_, state) => state.storage.sql.exec<EntityRow & Record<string, SqlStorageValue>>("SELECT id, schema, unique_ids, attributes, version FROM entities").toArray()),
      ),
    ),
  ]);
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
  return { events: events.sort(byId) as EventRow[], deliveries, entities: (entities.flat() as EntityRow[]).sort(byId), requests: await received(p.key) };
}

interface Expected {
  /** Every posted event id. */
  events: string[];
  /** Per entity (`<schema>:<unique id value>`), the events that changed it, in order. */
  changes: Record<string, string[]>;
  /** Deliveries the receiver is expected to see twice (a crash after the POST, before its outcome was recorded); undefined: any number. */
  resent?: number;
}

/**
 * Waits until the pipeline has settled into exactly the expected state, and checks it: each event
 * done once; each entity's history has one version per change, from the expected events in order;
 * one delivery per core event and subscribed mapping, delivered; the receiver saw every delivery,
 * any resend under the same webhook-id with the same body; nothing left in a stream, outbox or
 * endpoint queue.
 */
async function expectExact(p: Pipeline, expected: Expected, streams: (string | null)[] = [null]) {
  const versions = Object.values(expected.changes).reduce((n, events) => n + events.length, 0);
  const state = await vi.waitFor(async () => {
    const s = await snapshot(p);
    expect(s.events.filter((e) => e.status !== "done")).toEqual([]);
    expect(s.deliveries.filter((d) => d.status !== "delivered")).toEqual([]);
    expect(s.deliveries).toHaveLength(versions);
    expect(new Set(s.requests.map((r) => r.headers["webhook-id"])).size).toBe(versions);
    if (expected.resent === undefined) expect(s.requests.length).toBeGreaterThanOrEqual(versions);
    else expect(s.requests).toHaveLength(versions + expected.resent);
    // Nothing is left waiting in a stream or an endpoint queue.
    for (const group of streams) expect(await streamOf(p, group).pending()).toEqual([]);
    for (const endpoint of p.endpoints) expect(await queuedIn(endpoint), endpoint).toEqual([]);
    return s;
  }, eventually);

  expect(state.events.map((e) => e.id).sort()).toEqual([...expected.events].sort());
  // Entities: exactly the expected ones, each change applied once, in order, and projected.
  const byKey = new Map(state.entities.map((e) => [`${e.schema}:${Object.values(JSON.parse(e.unique_ids) as Record<string, string>)[0]}`, e]));
  expect([...byKey.keys()].sort()).toEqual(Object.keys(expected.changes).sort());
  for (const [key, events] of Object.entries(expected.changes)) {
    const row = byKey.get(key)!;
    const stub = storeOf(p, row.schema);
    const { history, current } = await runInDurableObject(stub, async (instance: EntityStore) => ({ history: (await instance.history(row.id, 1000)).reverse(), current: await instance.get(row.id) }));
    expect(history.map((h) => h.event_id), key).toEqual(events);
    expect(history.map((h) => h.version), key).toEqual(events.map((_, i) => i + 1));
    expect(row.version, key).toBe(events.length);
    expect(current!.version, key).toBe(events.length);
    expect(await stub.outboxStatus(row.id), key).toEqual({ pending: [], dead: [] });
  }
  // Deliveries: one per (core event, use case, mapping); the receiver saw each under its id.
  expect(new Set(state.deliveries.map((d) => `${d.event_id}/${d.use_case_slug}/${d.mapping_id}`)).size).toBe(state.deliveries.length);
  const seen = new Map<string, typeof state.requests>();
  for (const r of state.requests) seen.set(r.headers["webhook-id"]!, [...(seen.get(r.headers["webhook-id"]!) ?? []), r]);
  expect([...seen.keys()].sort()).toEqual(state.deliveries.map((d) => d.id).sort());
  for (const [id, requests] of seen) {
    expect(requests.every((r) => r.status === 200 && r.body === requests[0]!.body), id).toBe(true);
  }
  return state;
}

/** The store of the contact `externalId` (checked to exist): it holds the contact's outbox. */
const contactObject = async (p: Pipeline, externalId: string) => {
  expect(await findOne(p.token, "contact", `external_id=${externalId}`)).toBeDefined();
  return storeOf(p, "contact");
};

describe("a crash between two steps of processing", () => {
  it("after the log recorded the attempt, before processing: the alarm's retry processes the event once", async () => {
    const p = await pipeline();
    armCrash("stream.after-attempt-recorded");
    const [r] = await post(p.token, p.integrationId, [contact("S1", "Ada")]);
    await crashHappened("stream.after-attempt-recorded");
    expect(await streamOf(p).pending()).toEqual([{ event_id: r!.event_id, attempts: 1, last_error: null }]);
    // Recorded on the event too, in the same durable write, before anything ran.
    expect((await snapshot(p)).events).toEqual([expect.objectContaining({ id: r!.event_id, status: "processing", attempts: 1, completed_at: null })]);
    expect((await snapshot(p)).entities).toEqual([]);
    await runScheduledAlarm(streamOf(p));

    const state = await expectExact(p, { events: [r!.event_id], changes: { "contact:S1": [r!.event_id] } });
    // The log counts every attempt it started, the crashed one included (so a crash loop ends at
    // MAX_ATTEMPTS); the update itself was applied once (expectExact).
    expect(state.events[0]!.attempts).toBe(2);
  }, TEST_TIMEOUT_MS);

  it("after the entity update, before the event's completion: the retry finds the update applied and completes the event", async () => {
    const p = await pipeline();
    armCrash("process.after-entity-update");
    const [r] = await post(p.token, p.integrationId, [contact("P1", "Ada")]);
    await crashHappened("process.after-entity-update");
    await runScheduledAlarm(streamOf(p));

    const state = await expectExact(p, { events: [r!.event_id], changes: { "contact:P1": [r!.event_id] } });
    expect(state.events[0]!.attempts).toBe(2);
  }, TEST_TIMEOUT_MS);

  it("after one event's updates to two stores were committed, before its outcome: the retry applies neither again", async () => {
    const p = await pipeline();
    armCrash("process.after-entity-update");
    const [r] = await post(p.token, p.integrationId, [{ use_case_slug: "pairs", payload: { id: "M1", name: "Ada", account: "ACC-1", company: "Lovelace Ltd" } }]);
    await crashHappened("process.after-entity-update");
    // The event's updates go in one commit (one call per store): both are applied.
    expect((await snapshot(p)).entities.map((e) => e.schema).sort()).toEqual(["account", "contact"]);
    await runScheduledAlarm(streamOf(p));

    await expectExact(p, { events: [r!.event_id], changes: { "contact:M1": [r!.event_id], "account:ACC-1": [r!.event_id] } });
  }, TEST_TIMEOUT_MS);

  it("when one of an event's two stores fails its part: the event is retried, the other store's part is not applied twice", async () => {
    const p = await pipeline();
    // The account store refuses to write entities (a store failure, not a crash).
    await storeOf(p, "account").find({}, "", 1);
    await runInDurableObject(storeOf(p, "account"), (_, state) => {
      state.storage.sql.exec("CREATE TRIGGER refuse BEFORE INSERT ON entities BEGIN SELECT RAISE(ABORT, 'store refused'); END");
    });
    const [r] = await post(p.token, p.integrationId, [{ use_case_slug: "pairs", payload: { id: "M2", name: "Ada", account: "ACC-2", company: "Lovelace Ltd" } }]);
    const stream = streamOf(p);
    await vi.waitFor(async () => expect((await stream.pending())[0]?.last_error).toMatch(/store refused/), eventually);
    // The contact's part went through; the account's did not.
    expect((await snapshot(p)).entities.map((e) => e.schema)).toEqual(["contact"]);

    await runInDurableObject(storeOf(p, "account"), (_, state) => {
      state.storage.sql.exec("DROP TRIGGER refuse");
    });
    // The backoff is over.
    await runInDurableObject(stream, (_, state) => {
      state.storage.sql.exec("UPDATE queue SET next_at = 0");
    });
    await runDurableObjectAlarm(stream);
    await expectExact(p, { events: [r!.event_id], changes: { "contact:M2": [r!.event_id], "account:ACC-2": [r!.event_id] } });
  }, TEST_TIMEOUT_MS);

  it("after processing, before the log recorded the outcome and removed the event (one write): the retry finds the update applied and completes the event once", async () => {
    const p = await pipeline();
    armCrash("stream.before-dequeue");
    const [r] = await post(p.token, p.integrationId, [contact("D1", "Ada")]);
    await crashHappened("stream.before-dequeue");
    // The outcome and the dequeue are one transaction after this point: neither happened.
    const [crashed] = (await snapshot(p)).events;
    expect(crashed).toMatchObject({ id: r!.event_id, status: "processing", attempts: 1, completed_at: null });
    expect(await streamOf(p).pending()).toEqual([{ event_id: r!.event_id, attempts: 1, last_error: null }]);
    // The entity update itself was applied before the crash.
    expect((await snapshot(p)).entities).toHaveLength(1);
    await runScheduledAlarm(streamOf(p));

    const state = await expectExact(p, { events: [r!.event_id], changes: { "contact:D1": [r!.event_id] } });
    expect(state.events[0]).toMatchObject({ status: "done", attempts: 2 });
    expect(state.events[0]!.completed_at).not.toBeNull();
  }, TEST_TIMEOUT_MS);

  it("after the log recorded the attempt, when the alarm's retries are lost too: the next event accepted in the shard wakes it, and both are applied once, in order", async () => {
    const p = await pipeline();
    armCrash("stream.after-attempt-recorded");
    const [r] = await post(p.token, p.integrationId, [contact("W1", "Ada")]);
    await crashHappened("stream.after-attempt-recorded");
    // The runtime gives up on an alarm after six retries; here the retry is gone at once.
    const stream = streamOf(p);
    await vi.waitFor(async () => expect(await runInDurableObject(stream, (_, state) => state.storage.getAlarm())).not.toBeNull(), eventually);
    await runInDurableObject(stream, (_, state) => state.storage.deleteAlarm());
    expect(await stream.pending()).toEqual([{ event_id: r!.event_id, attempts: 1, last_error: null }]);

    // No cron sweep exists any more: the event is still queued in its shard, and the shard's next
    // accept (here a later update of the same contact, same group) arms the alarm again.
    const [next] = await post(p.token, p.integrationId, [contact("W1", "Ada B.")]);
    const state = await expectExact(p, { events: [r!.event_id, next!.event_id], changes: { "contact:W1": [r!.event_id, next!.event_id] } });
    expect(state.events.find((e) => e.id === r!.event_id)!.attempts).toBe(2);
    expect(state.events.find((e) => e.id === next!.event_id)!.attempts).toBe(1);
  }, TEST_TIMEOUT_MS);

  it("after the entity committed a change and its outbox row, before the flush: the change is applied once and its event still goes out", async () => {
    const p = await pipeline();
    armCrash("entity.before-flush");
    const [r] = await post(p.token, p.integrationId, [contact("F1", "Ada")]);
    await crashHappened("entity.before-flush");
    // The stream saw the entity call fail and retries the event after a backoff; the retry is a no-op for the entity.
    await runScheduledAlarm(streamOf(p));
    await vi.waitFor(async () => expect((await snapshot(p)).events[0]!.status).toBe("done"), eventually);
    const stub = await contactObject(p, "F1");
    expect((await stub.outboxStatus()).pending).toHaveLength(1);
    // What sends the committed row: the entity's alarm, written with it.
    await runScheduledAlarm(stub);

    await expectExact(p, { events: [r!.event_id], changes: { "contact:F1": [r!.event_id] } });
  }, TEST_TIMEOUT_MS);
});

describe("a crash between two steps of delivery", () => {
  it("after the outbox sent a batch, before it deleted the rows: the resend is fanned out to nothing new", async () => {
    const p = await pipeline();
    armCrash("outbox.after-send");
    const [r] = await post(p.token, p.integrationId, [contact("O1", "Ada")]);
    await crashHappened("outbox.after-send");
    await runScheduledAlarm(streamOf(p));
    // The message reached the queue before the crash: its delivery goes out.
    await vi.waitFor(async () => expect(await received(p.key)).toHaveLength(1), eventually);
    const stub = await contactObject(p, "O1");
    expect((await stub.outboxStatus()).pending).toHaveLength(1);

    // Once the dead sender's claim expires, the alarm sends the row again.
    const resent = await recordSends(stub);
    expect(await outboxTimePasses(stub)).toBe(true);
    expect(resent.map((e) => e._event_name)).toEqual(["contact.created"]);
    // The queue hands the duplicate to the consumer (here directly, to see its result): acknowledged, nothing new.
    const batch = createMessageBatch<unknown>("erp-edge-core-events", [{ id: "resent", timestamp: new Date(), attempts: 1, body: resent[0] }]);
    await queue(batch, env, createExecutionContext());
    expect(await getQueueResult(batch, createExecutionContext())).toMatchObject({ explicitAcks: ["resent"], retryMessages: [] });

    await expectExact(p, { events: [r!.event_id], changes: { "contact:O1": [r!.event_id] } });
  }, TEST_TIMEOUT_MS);

  it("after fan-out inserted the deliveries, before the ack: the redelivered message creates no second delivery", async () => {
    const p = await pipeline();
    const [r] = await post(p.token, p.integrationId, [contact("Q1", "Ada")]);
    await expectExact(p, { events: [r!.event_id], changes: { "contact:Q1": [r!.event_id] } });
    // A core event for the same tenant, handed to the consumer as the queue would.
    const entity = { id: (await findOne(p.token, "contact", "external_id=Q1")).id, schema: "contact", attributes: { full_name: "Ada B." }, unique_ids: { external_id: "Q1" }, version: 2, deleted_at: null };
    const event = envelope(p.tenant.id, "contact.updated", { entity, operation: "updated", changes: {}, source_event_id: null });
    const message = (attempts: number) => createMessageBatch<unknown>("erp-edge-core-events", [{ id: "m-1", timestamp: new Date(), attempts, body: event }]);

    armCrash("queue.after-fan-out");
    const first = message(1);
    await queue(first, env, createExecutionContext());
    expect(crashesLeft("queue.after-fan-out")).toBe(0);
    expect(await getQueueResult(first, createExecutionContext())).toMatchObject({ explicitAcks: [], retryMessages: [{ msgId: "m-1" }] });
    const deliveries = await vi.waitFor(async () => {
      const d = (await snapshot(p)).deliveries.filter((x) => x.event_id === event._event_id);
      expect(d.map((x) => x.status)).toEqual(["delivered"]);
      return d;
    }, eventually);

    // The queue redelivers the message it was told to retry.
    const again = message(2);
    await queue(again, env, createExecutionContext());
    expect(await getQueueResult(again, createExecutionContext())).toMatchObject({ explicitAcks: ["m-1"], retryMessages: [] });
    expect((await snapshot(p)).deliveries.filter((x) => x.event_id === event._event_id)).toEqual(deliveries);
    const requests = (await received(p.key)).filter((x) => x.headers["webhook-id"] === deliveries[0]!.id);
    expect(requests).toHaveLength(1);
    for (const endpoint of p.endpoints) expect(await queuedIn(endpoint), endpoint).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it("after the webhook POST succeeded, before its outcome was recorded: the retry sends it again under the same webhook-id", async () => {
    const p = await pipeline();
    armCrash("endpoint.after-post");
    const [r] = await post(p.token, p.integrationId, [contact("E1", "Ada")]);
    await crashHappened("endpoint.after-post");
    const [endpoint] = p.endpoints;
    // The POST went out, but its outcome was never recorded: the delivery is still queued, unattempted.
    const queued = await queuedIn(endpoint!);
    expect(queued).toEqual([{ id: expect.any(String), attempts: 0, due_at: expect.any(Number) }]);
    await runScheduledAlarm(endpointOf(endpoint!));

    const state = await expectExact(p, { events: [r!.event_id], changes: { "contact:E1": [r!.event_id] }, resent: 1 });
    // The queued delivery is the one delivered: sent twice, recorded once, after one recorded attempt.
    expect(state.deliveries).toEqual([expect.objectContaining({ id: queued[0]!.id, status: "delivered", attempts: 1 })]);
    expect(state.requests.map((x) => x.headers["webhook-id"])).toEqual([state.deliveries[0]!.id, state.deliveries[0]!.id]);
  }, TEST_TIMEOUT_MS);
});

/** A small seeded generator (mulberry32), so the crashes fall the same way on every run. */
function seeded(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("50 events over four groups with crashes at random boundaries", () => {
  it("recovers to exactly the state a run without crashes reaches", async () => {
    const p = await pipeline();
    const random = seeded(10);
    const groups = ["g0", "g1", "g2", "g3"];
    const changes: Record<string, string[]> = {};
    const events: string[] = [];
    const crashes: CrashPointName[] = [];
    const batchOf = new Map<string, string>();
    let n = 0;
    // Five waves of ten events; before each, two crashes armed at random points.
    for (let wave = 0; wave < 5; wave++) {
      const armed = [0, 1].map(() => CRASH_POINTS[Math.floor(random() * CRASH_POINTS.length)]!);
      for (const point of armed) armCrash(point);
      crashes.push(...armed);
      const batch = Array.from({ length: 10 }, () => {
        const group = groups[n % groups.length]!;
        return contact(`${group}-c${Math.floor(n / groups.length) % 2}`, `name ${n++}`, group);
      });
      const results = await post(p.token, p.integrationId, batch);
      results.forEach((r, i) => {
        events.push(r.event_id);
        batchOf.set(r.event_id, batch[i]!.payload.name);
        (changes[`contact:${batch[i]!.payload.id}`] ??= []).push(r.event_id);
      });
      await vi.waitFor(async () => {
        for (const point of new Set(armed)) expect(crashesLeft(point), point).toBe(0);
        const open = await logQuery(p.integrationId, "SELECT id FROM events WHERE status != 'done'");
        expect(open).toEqual([]);
        for (const group of groups) expect(await streamOf(p, group).pending(), group).toEqual([]);
      }, { timeout: 30_000, interval: 100 });
    }

    // Time passes for the outboxes (a claim left by a crashed sender expires), then everything settles.
    await vi.waitFor(async () => {
      for (const schema of SCHEMAS) {
        const stub = storeOf(p, schema);
        if ((await stub.outboxStatus()).pending.length > 0) await outboxTimePasses(stub);
        expect(await stub.outboxStatus()).toEqual({ pending: [], dead: [] });
      }
    }, eventually);
    const state = await expectExact(p, { events, changes }, groups);
    // Resends come only from crashes after a POST: each such crash resends what its alarm run had in
    // flight (one to ten deliveries), under the same webhook-ids.
    const endpointCrashes = crashes.filter((c) => c === "endpoint.after-post").length;
    const resends = state.requests.length - state.deliveries.length;
    expect(resends).toBeGreaterThanOrEqual(endpointCrashes);
    expect(resends).toBeLessThanOrEqual(endpointCrashes * 10);
    // Each contact ends with the name of its last event.
    for (const [key, ids] of Object.entries(changes)) {
      const row = state.entities.find((e) => `contact:${JSON.parse(e.unique_ids).external_id}` === key)!;
      const last = batchOf.get(ids.at(-1)!)!;
      expect(JSON.parse(row.attributes).full_name, key).toBe(last);
    }
  }, 120_000);
});

describe("many events over several groups of one shard, with crashes mid-batch at both log boundaries", () => {
  it("recovers to every event done once and every entity update applied exactly once", async () => {
    const p = await pipeline();
    const groups = groupsInOneShard(4, "fault");
    // A fresh stub each time: a stub of an object that crashed stays broken.
    const log = () => streamOf(p, groups[0]!);
    const changes: Record<string, string[]> = {};
    const events: string[] = [];
    let n = 0;
    /** Six events per group, each group's two contacts updated alternately, in one request (one accept in the shard). */
    const wave = async () => {
      const batch = groups.flatMap((group) => Array.from({ length: 6 }, (_, i) => contact(`${group}-c${i % 2}`, `name ${n++}`, group)));
      const results = await post(p.token, p.integrationId, batch);
      results.forEach((r, i) => {
        expect(r.status).toBe("success");
        events.push(r.event_id);
        (changes[`contact:${batch[i]!.payload.id}`] ??= []).push(r.event_id);
      });
    };

    // 1. One round takes the whole wave, the four groups side by side: the first event to finish
    //    processing crashes the log before its outcome is recorded, the other groups' events in flight.
    armCrash("stream.before-dequeue");
    await wave();
    await crashHappened("stream.before-dequeue");
    const crashed = await runInDurableObject(log(), (_, state) => state.storage.sql.exec<{ attempts: number }>("SELECT attempts FROM queue").toArray());
    expect(crashed).toHaveLength(24);
    expect(crashed.every((q) => q.attempts === 1)).toBe(true);

    // 2. A second wave arrives; the log's next round (the runtime's retry) crashes again right after
    //    recording its attempt, with the rest of both waves still queued.
    armCrash("stream.after-attempt-recorded");
    await wave();
    await crashHappened("stream.after-attempt-recorded");
    expect((await log().pending()).length).toBeGreaterThan(24);

    // 3. The log recovers by its own alarm (run here as soon as it is scheduled, not seconds later).
    await vi.waitFor(async () => {
      await runDurableObjectAlarm(log());
      expect(await log().pending()).toEqual([]);
    }, { timeout: 30_000, interval: 50 });

    // All in one shard; each event has exactly one row, done (expectExact), completed, never parked.
    // (Attempt counts are not bounded here: the runtime may run a due alarm while the test runs it too.)
    expect(new Set(events.map((id) => locate(id)!.shard))).toEqual(new Set([shardOf(groups[0]!, shardCount(env))]));
    const state = await expectExact(p, { events, changes }, groups);
    expect(state.events).toHaveLength(events.length);
    for (const e of state.events) {
      expect(e.completed_at, e.id).not.toBeNull();
      expect(e.attempts, e.id).toBeGreaterThanOrEqual(1);
    }
    // Each contact ends with the name of its last event.
    const names = new Map(events.map((id, i) => [id, `name ${i}`]));
    for (const [key, ids] of Object.entries(changes)) {
      const row = state.entities.find((e) => `contact:${JSON.parse(e.unique_ids).external_id}` === key)!;
      expect(JSON.parse(row.attributes).full_name, key).toBe(names.get(ids.at(-1)!));
    }
  }, 90_000);
});
