// Background work yields: a log shard's backlog drains in small alarm slices, so requests are answered
// while it drains, and one group's backlog in a shard does not hold up the other groups of that shard.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SLICE_EVENTS, type EventLog } from "../../src/inbound/log-do";
import { newEventId, shardCount, shardOf } from "../../src/inbound/shards";
import { api } from "../helpers";
import { groupsInOneShard, logOf, setup } from "../inbound-helpers";

/**
 * Stores accepted contact events of one group in its log shard as accept() would (the event row and
 * its queue entry), but without waking the shard: the test drives its slices. Answers the ids, oldest first.
 */
async function storeAccepted(s: { tenant: { id: string }; integrationId: string; useCases: { id: string; slug: string }[] }, groupId: string, n: number, label = groupId) {
  const shard = shardOf(groupId, shardCount(env));
  const useCase = s.useCases.find((u) => u.slug === "contacts")!;
  const ids = Array.from({ length: n }, () => newEventId(s.integrationId, shard));
  const at = new Date().toISOString();
  await runInDurableObject(logOf(s.integrationId, groupId), (_instance: EventLog, state) => {
    state.storage.transactionSync(() => {
      ids.forEach((id, i) => {
        state.storage.sql.exec(
          `INSERT INTO events (id, tenant_id, integration_id, use_case_id, use_case_slug, group_id, format, payload, status, received_at, source_timestamp)
           VALUES (?, ?, ?, ?, 'contacts', ?, 'json', ?, 'accepted', ?, ?)`,
          id, s.tenant.id, s.integrationId, useCase.id, groupId, JSON.stringify({ id: `${label}-${i}`, name: `Contact ${i}` }), at, at,
        );
        state.storage.sql.exec("INSERT INTO queue (event_id, group_key, enqueued_at) VALUES (?, ?, ?)", id, groupId, at);
      });
    });
  });
  return ids;
}

/**
 * Runs one alarm slice of the shard the way the runtime does, and takes back the alarm the slice
 * re-armed (answering when it was due), so the test, not the runtime, decides when the next one runs.
 */
function runSlice(stub: DurableObjectStub<EventLog>): Promise<number | null> {
  return runInDurableObject(stub, async (instance: EventLog, state) => {
    await instance.alarm();
    const next = await state.storage.getAlarm();
    await state.storage.deleteAlarm();
    return next;
  });
}

/** The shard's events per status, of the given ids. */
async function statuses(stub: DurableObjectStub<EventLog>, ids: string[]): Promise<Record<string, number>> {
  return runInDurableObject(stub, (_instance: EventLog, state) => {
    const rows = state.storage.sql.exec<{ status: string; n: number }>("SELECT status, COUNT(*) AS n FROM events WHERE id IN (SELECT value FROM json_each(?)) GROUP BY status", JSON.stringify(ids)).toArray();
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  });
}

describe("a log shard's backlog", () => {
  it("drains in slices of at most SLICE_EVENTS events, re-armed at once, and requests are answered while it drains", async () => {
    const s = await setup();
    const backlog = await storeAccepted(s, "backlog", 2 * SLICE_EVENTS + 7);
    const stub = logOf(s.integrationId, "backlog");

    const before = Date.now();
    const rearmedAt = await runSlice(stub);
    const left = (await stub.pending()).length;
    expect(backlog.length - left).toBeGreaterThan(0);
    expect(backlog.length - left).toBeLessThanOrEqual(SLICE_EVENTS);
    // The next slice is due at once: the slice ended to let other work in, not to wait.
    expect(rearmedAt).not.toBeNull();
    expect(rearmedAt!).toBeLessThanOrEqual(Date.now());
    expect(rearmedAt!).toBeGreaterThanOrEqual(before);

    // While the next slice runs, the Worker answers its public document and a tenant's read, and the shard its reads.
    const slice = runSlice(stub);
    const [doc, integration, pending] = await Promise.all([api("GET", "/openapi.json"), api("GET", `/v2/integrations/${s.integrationId}`, { token: s.token }), stub.pending()]);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(integration.status).toBe(200);
    expect(integration.body.id).toBe(s.integrationId);
    expect(pending.length).toBeGreaterThan(0);
    await slice;
    const afterSecond = (await stub.pending()).length;
    expect(left - afterSecond).toBeGreaterThan(0);
    expect(left - afterSecond).toBeLessThanOrEqual(SLICE_EVENTS);

    let slices = 2;
    let remaining = afterSecond;
    for (;;) {
      const rearmed = await runSlice(stub);
      slices++;
      const now = (await stub.pending()).length;
      expect(remaining - now).toBeLessThanOrEqual(SLICE_EVENTS);
      remaining = now;
      if (rearmed === null) break;
    }
    expect(await stub.pending()).toEqual([]);
    expect(slices).toBeGreaterThanOrEqual(Math.ceil(backlog.length / SLICE_EVENTS));
    expect(await statuses(stub, backlog)).toEqual({ done: backlog.length });
  });

  it("does not hold up another group of the same shard: its events finish in the first slice while the backlog is still long", async () => {
    const s = await setup();
    const [busy, quiet] = groupsInOneShard(2, "starve");
    // The busy group's backlog is queued first: oldest-first alone would run all of it before the quiet group.
    const backlog = await storeAccepted(s, busy!, 2 * SLICE_EVENTS + 7, "busy");
    const few = await storeAccepted(s, quiet!, 3, "quiet");
    const stub = logOf(s.integrationId, busy);
    expect(logOf(s.integrationId, quiet).id.equals(stub.id)).toBe(true);

    const rearmedAt = await runSlice(stub);
    // The quiet group's events are done in the same slice...
    expect(await statuses(stub, few)).toEqual({ done: few.length });
    // ...while the busy group still has a long queue, and the shard goes on at once.
    const left = (await stub.pending()).map((p) => p.event_id);
    expect(left.filter((id) => few.includes(id))).toEqual([]);
    expect(left.length).toBeGreaterThanOrEqual(backlog.length - SLICE_EVENTS);
    expect(rearmedAt).not.toBeNull();
    // The busy group keeps its order: what is left of it is its newest events.
    expect(left).toEqual(backlog.slice(backlog.length - left.length));

    while ((await runSlice(stub)) !== null);
    expect(await stub.pending()).toEqual([]);
    expect(await statuses(stub, [...backlog, ...few])).toEqual({ done: backlog.length + few.length });
  });
});
