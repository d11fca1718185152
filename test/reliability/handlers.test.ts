// The cron handler called directly (failing jobs), the event log needing no recovery job, and
// business events at the queue size limit. A failing job fails the invocation (logged) without
// stopping the others.
import { createExecutionContext, createScheduledController, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { EventLog } from "../../src/inbound/log-do";
import worker from "../../src/index";
import { configChanged } from "../../src/platform/config-cache";
import { api, expectError } from "../helpers";
import { logOf, logQuery, post, setup, waitFor } from "../inbound-helpers";
import { endpointQuery } from "../outbound-helpers";

const scheduled = worker.scheduled as unknown as (c: ScheduledController, e: Env, ctx: ExecutionContext) => Promise<void>;

/** Undone after each test, so no storage fault outlives its test. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A trigger in one log shard's own SQLite, dropped when the test ends (or when the returned heal() is called). */
async function shardFault(log: DurableObjectStub<EventLog>, name: string, definition: string) {
  const drop = () => runInDurableObject(log, (_instance: EventLog, state) => void state.storage.sql.exec(`DROP TRIGGER IF EXISTS ${name}`));
  await runInDurableObject(log, (_instance: EventLog, state) => void state.storage.sql.exec(`CREATE TRIGGER ${name} ${definition}`));
  cleanups.push(drop);
  return drop;
}

describe("the event log needs no recovery sweep", () => {
  it("stores an event and its queue entry in one write: a refused queue write stores nothing, and stored events run without the cron", async () => {
    const { token, integrationId } = await setup();
    const log = logOf(integrationId, "g-queue");
    // The shard's queue refuses every write: what the sweep existed for (stored, never queued) must be impossible.
    const heal = await shardFault(log, "refuse_queue", "BEFORE INSERT ON queue BEGIN SELECT RAISE(ABORT, 'queue unavailable'); END");
    const refused = await api("POST", "/v3/erp/updates/events", {
      token,
      json: { integration_id: integrationId, events: [{ use_case_slug: "contacts", timestamp: new Date().toISOString(), group_id: "g-queue", payload: { id: "Q-1", name: "One" } }] },
    });
    // No AppError code fits a storage failure: the generic error envelope.
    expectError(refused, 500, "INTERNAL");
    // The event was not stored without its queue entry: it was not stored at all.
    expect(await logQuery(integrationId, "SELECT id FROM events")).toEqual([]);
    expect(await log.pending()).toEqual([]);

    await heal();
    const [ok] = await post(token, integrationId, [{ use_case_slug: "contacts", group_id: "g-queue", payload: { id: "Q-1", name: "One" } }]);
    // Every unfinished event of the shard is queued, at any moment it can be observed.
    await runInDurableObject(log, (_instance: EventLog, state) => {
      expect(state.storage.sql.exec("SELECT id FROM events WHERE status IN ('accepted', 'processing') AND id NOT IN (SELECT event_id FROM queue)").toArray()).toEqual([]);
    });
    // Applied by the log's own alarm: no cron run is needed.
    expect((await waitFor(token, ok!.event_id)).status).toBe("done");
    expect(await log.pending()).toEqual([]);
  });
});

describe("scheduled()", () => {
  it("fails the invocation when a job fails, after running the others", async () => {
    const { token, tenant, integrationId } = await setup();
    const [kept] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "K-1", name: "Keep" } }]);
    expect((await waitFor(token, kept!.event_id)).status).toBe("done");
    // A delivery whose ACK is long overdue, in its endpoint's object (listed in D1's endpoint
    // directory): the ACK-timeout sweep, another job of the same run, times it out.
    const longAgo = new Date(Date.now() - 2 * 86_400_000).toISOString();
    const endpointId = `${integrationId}-uc/main`;
    await env.DB.prepare("INSERT INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at) VALUES (?, ?, ?, ?, 'main', ?)")
      .bind(endpointId, tenant.id, integrationId, `${integrationId}-uc`, longAgo)
      .run();
    await endpointQuery(
      endpointId,
      `INSERT INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, payload, status,
         attempts, max_attempts, visible_at, created_at, completed_at, ack_id, ack_status)
       VALUES ('01JDHANDLERACK00000000000A', ?, ?, ?, 'poll', 'main', 'poll', 'ev', 'contact.created', '{}', 'delivered', 1, 3, ?, ?, ?, 'ack-1', 'pending')`,
      tenant.id, integrationId, `${integrationId}-uc`, longAgo, longAgo, longAgo,
    );
    const ackStatus = async () => (await endpointQuery<{ ack_status: string }>(endpointId, "SELECT ack_status FROM deliveries WHERE id = '01JDHANDLERACK00000000000A'"))[0]?.ack_status;
    expect(await ackStatus()).toBe("pending");
    // Retention reads every integration's settings as JSON: one corrupt row makes that job fail.
    await env.DB.prepare("UPDATE integrations SET settings = 'not json' WHERE id = ?").bind(integrationId).run();
    configChanged();
    await expect(scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }), env, createExecutionContext())).rejects.toThrow(/apply_retention/);
    // The other jobs still ran: the overdue ACK timed out.
    expect(await ackStatus()).toBe("timeout");
  });
});

describe("business events", () => {
  it("refuses one too large for a queue message with 413, not 500", async () => {
    const { token } = await setup();
    const res = await api("POST", "/v1/events", { token, json: { event_name: "BigThing", payload: { blob: "x".repeat(200_000) } } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await api("POST", "/v1/events", { token, json: { event_name: "SmallThing", payload: { ok: true } } })).status).toBe(202);
  });
});
