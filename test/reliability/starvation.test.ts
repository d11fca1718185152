// Background work yields: a stream's backlog drains in small alarm slices, so requests are answered
// while it drains, and the recovery sweep takes a bounded share of each integration's events.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { streamKey } from "../../src/inbound/events-log";
import { nextSweepBatch, SWEEP } from "../../src/inbound/service";
import { SLICE_EVENTS, type EventStream } from "../../src/inbound/stream-do";
import { api } from "../helpers";
import { setup } from "../inbound-helpers";

/** Stores accepted contact events as POST /v3/erp/updates/events would, `minutesAgo` old. */
async function storeAccepted(tenantId: string, integrationId: string, ids: string[], opts: { groupId?: string; minutesAgo?: number } = {}) {
  const at = new Date(Date.now() - (opts.minutesAgo ?? 0) * 60_000).toISOString();
  await env.DB.batch(
    ids.map((id, i) =>
      env.DB.prepare(
        `INSERT INTO events (id, tenant_id, integration_id, use_case_id, use_case_slug, group_id, format, payload, status, received_at, source_timestamp)
         VALUES (?, ?, ?, (SELECT id FROM use_cases WHERE integration_id = ? AND slug = 'contacts'), 'contacts', ?, 'json', ?, 'accepted', ?, ?)`,
      ).bind(id, tenantId, integrationId, integrationId, opts.groupId ?? null, JSON.stringify({ id: `BACKLOG-${i}`, name: `Contact ${i}` }), at, at),
    ),
  );
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(26 - prefix.length, "0")}`);

/**
 * Runs one alarm slice of the stream the way the runtime does, and takes back the alarm the slice
 * re-armed (answering when it was due), so the test, not the runtime, decides when the next one runs.
 */
function runSlice(stub: DurableObjectStub<EventStream>): Promise<number | null> {
  return runInDurableObject(stub, async (instance: EventStream, state) => {
    await instance.alarm();
    const next = await state.storage.getAlarm();
    await state.storage.deleteAlarm();
    return next;
  });
}

describe("a stream backlog", () => {
  it("drains in slices of at most SLICE_EVENTS events, re-armed at once, and requests are answered while it drains", async () => {
    const { tenant, token, integrationId } = await setup();
    const backlog = ids("01JDBACKLOG", 3 * SLICE_EVENTS + 7);
    await storeAccepted(tenant.id, integrationId, backlog, { groupId: "backlog" });
    const stub = env.EVENT_STREAM.get(env.EVENT_STREAM.idFromName(streamKey(integrationId, "backlog")));
    // Queued as enqueue() queues them, but without waking the stream: the test drives its slices.
    await runInDurableObject(stub, (instance: EventStream, state) => {
      for (const id of backlog) state.storage.sql.exec("INSERT INTO queue (event_id, enqueued_at) VALUES (?, ?)", id, new Date().toISOString());
    });

    const before = Date.now();
    const rearmedAt = await runSlice(stub);
    const left = (await stub.pending()).length;
    expect(backlog.length - left).toBeGreaterThan(0);
    expect(backlog.length - left).toBeLessThanOrEqual(SLICE_EVENTS);
    // The next slice is due at once: the slice ended to let other work in, not to wait.
    expect(rearmedAt).not.toBeNull();
    expect(rearmedAt!).toBeLessThanOrEqual(Date.now());
    expect(rearmedAt!).toBeGreaterThanOrEqual(before);

    // While the next slice runs, the Worker answers its public document and a tenant's read.
    const slice = runSlice(stub);
    const [doc, integration] = await Promise.all([api("GET", "/openapi.json"), api("GET", `/v2/integrations/${integrationId}`, { token })]);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(integration.status).toBe(200);
    expect(integration.body.id).toBe(integrationId);
    expect((await stub.pending()).length).toBeGreaterThan(0);
    await slice;

    let slices = 2;
    while ((await runSlice(stub)) !== null) slices++;
    expect(await stub.pending()).toEqual([]);
    expect(slices).toBeGreaterThanOrEqual(Math.ceil(backlog.length / SLICE_EVENTS));
    const { results } = await env.DB.prepare("SELECT status, COUNT(*) AS n FROM events WHERE integration_id = ? GROUP BY status").bind(integrationId).all();
    expect(results).toEqual([{ status: "done", n: backlog.length }]);
  });
});

describe("the recovery sweep", () => {
  it("takes at most SWEEP.eventsPerIntegration of one integration's backlog, so another's lost events are handed back in the same run", async () => {
    const busy = await setup();
    const quiet = await setup();
    // The busy integration's unfinished events are older than the quiet one's: oldest-first alone would take only them.
    await storeAccepted(busy.tenant.id, busy.integrationId, ids("01JDBUSY", SWEEP.eventsPerIntegration + 15), { minutesAgo: 30 });
    await storeAccepted(quiet.tenant.id, quiet.integrationId, ids("01JDQUIET", 2), { minutesAgo: 5 });
    await storeAccepted(quiet.tenant.id, quiet.integrationId, ids("01JDFRESH", 1), { minutesAgo: 0 });

    const swept = await nextSweepBatch(env.DB);
    const of = (integrationId: string) => swept.filter((e) => e.integration_id === integrationId).map((e) => e.id);
    expect(of(busy.integrationId)).toEqual(ids("01JDBUSY", SWEEP.eventsPerIntegration + 15).slice(0, SWEEP.eventsPerIntegration));
    // Events younger than a minute may still be on their way to their stream: not swept yet.
    expect(of(quiet.integrationId)).toEqual(ids("01JDQUIET", 2));
  });
});
