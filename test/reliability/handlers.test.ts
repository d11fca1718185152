// The cron handler called directly (recovery, failing jobs) and business events at the queue size limit.
// job fails the invocation (logged) without stopping the others.
import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { streamKey } from "../../src/inbound/events-log";
import worker from "../../src/index";
import { api } from "../helpers";
import { post, setup, waitFor } from "../inbound-helpers";

const scheduled = worker.scheduled as unknown as (c: ScheduledController, e: Env, ctx: ExecutionContext) => Promise<void>;

/** An accepted event as a lost hand-off leaves it: stored, never queued in its stream. */
async function orphan(integrationId: string, tenantId: string, id: string) {
  const at = new Date(Date.now() - 5 * 60_000).toISOString();
  await env.DB.prepare(
    `INSERT INTO events (id, tenant_id, integration_id, use_case_slug, event_name, format, payload, status, received_at, source_timestamp, errors)
     VALUES (?, ?, ?, 'contacts', NULL, 'json', ?, 'accepted', ?, ?, '[]')`,
  ).bind(id, tenantId, integrationId, JSON.stringify({ id: `ORPHAN-${id.slice(-4)}`, name: "Recovered" }), at, at).run();
  await env.DB.prepare("UPDATE events SET use_case_id = (SELECT id FROM use_cases WHERE integration_id = ? AND slug = 'contacts') WHERE id = ?").bind(integrationId, id).run();
}

describe("scheduled()", () => {
  it("re-queues accepted events whose stream hand-off was lost, and they are applied", async () => {
    const { token, tenant, integrationId } = await setup();
    await orphan(integrationId, tenant.id, "01JD00000000000000000000A1");
    await scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }), env, createExecutionContext());
    expect((await waitFor(token, "01JD00000000000000000000A1")).status).toBe("done");
  });

  it("fails the invocation when a job fails, after running the others", async () => {
    const { token, tenant, integrationId } = await setup();
    await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "K-1", name: "Keep" } }]);
    await orphan(integrationId, tenant.id, "01JD00000000000000000000B2");
    // Retention reads every integration's settings as JSON: one corrupt row makes that job fail.
    await env.DB.prepare("UPDATE integrations SET settings = 'not json' WHERE id = ?").bind(integrationId).run();
    await expect(scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }), env, createExecutionContext())).rejects.toThrow(/apply_retention/);
    // The recovery sweep still ran: the orphan is back in its stream (or already taken from it).
    const stream = env.EVENT_STREAM.get(env.EVENT_STREAM.idFromName(streamKey(integrationId, null)));
    await vi.waitFor(async () => {
      const queued = (await stream.pending()).some((p) => p.event_id === "01JD00000000000000000000B2");
      const row = await env.DB.prepare("SELECT status FROM events WHERE id = ?").bind("01JD00000000000000000000B2").first<{ status: string }>();
      expect(queued || row!.status !== "accepted").toBe(true);
    });
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
