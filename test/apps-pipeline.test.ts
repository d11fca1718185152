// Apps where the pipeline runs them, through the real Worker: an inbound use case's pre_mapping, an
// outbound mapping's transform, and scheduled pulls whose records become entities.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { runDuePulls } from "../src/inbound/pull";
import { api, expectError } from "./helpers";
import { publishApp, trust, type TestAction } from "./app-helpers";
import { contactMapping, findOne, logOf, post, setup, waitFor } from "./inbound-helpers";
import { runInDurableObject } from "cloudflare:test";
import type { EventLog } from "../src/inbound/log-do";
import { shardCount, shardOf } from "../src/inbound/shards";

/** Two groups whose events go to different log shards. */
function groupsInDifferentShards(): [string, string] {
  const first = "pull-a";
  for (let i = 0; ; i++) if (shardOf(`pull-b${i}`, shardCount(env)) !== shardOf(first, shardCount(env))) return [first, `pull-b${i}`];
}
import { newPublisher, unique, type Publisher } from "./registry-helpers";

const RECEIVER = env.RECEIVER_URL;
const receiver = new URL(RECEIVER);

const ACTIONS: Record<string, TestAction> = {
  // SAP quirks: /Date(ms)/ and ALPHA zero padding, fixed before the mapping reads the payload.
  normalise: {
    body: `const out = {};
      for (const [k, v] of Object.entries(input)) {
        const date = typeof v === "string" && /^\\/Date\\((\\d+)\\)\\/$/.exec(v);
        out[k] = date ? new Date(Number(date[1])).toISOString() : typeof v === "string" && /^0+\\d+$/.test(v) ? v.replace(/^0+/, "") : v;
      }
      ctx.log.info("normalised", Object.keys(out).length, "fields");
      return out;`,
  },
  reject: { body: `throw new Error("customer " + input.id + " is blocked in SAP");` },
  wrap: { body: `return { erp_document: { customer: input.customer, source: "erp-edge" } };` },
  // Delta sync: reads its cursor, asks the ERP for what changed since, returns events, moves the cursor.
  pull: {
    hosts: [receiver.host],
    body: `const since = (await ctx.state.get("cursor")) ?? 0;
      const res = await ctx.fetch(input.url, { method: "POST", body: JSON.stringify({ since }) });
      const { records } = await res.json();
      const fresh = records.filter((r) => r.seq > since);
      if (fresh.length) await ctx.state.put("cursor", Math.max(...fresh.map((r) => r.seq)));
      // A failure after the cursor was written: the run's state writes must not be kept.
      if (fresh.some((r) => r.poison)) throw new Error("poison record " + fresh.find((r) => r.poison).id);
      return { events: fresh.map((r) => ({ timestamp: r.changed, deduplication_id: "rec-" + r.id + "-" + r.seq, ...(r.group && { group_id: r.group }), payload: { id: r.id, name: r.name } })) };`,
  },
};

let publisher: Publisher;
let app: string;

beforeAll(async () => {
  publisher = await newPublisher("pipe");
  app = `${publisher.name}/sap-${unique()}`;
  await publishApp(publisher, app, "1.0.0", ACTIONS);
});

async function tenantWithApp(useCases: Record<string, unknown>[] = [], grants: string[] = []) {
  const s = await setup(useCases);
  await trust(s.token, publisher.name);
  const res = await api("POST", "/v1/apps/install", { token: s.token, json: { name: app, grants: { hosts: grants } } });
  if (res.status !== 201) throw new Error(`install: ${res.status} ${JSON.stringify(res.body)}`);
  return s;
}

describe("pre_mapping", () => {
  const sapContacts = (action: string) => ({
    name: "SAP contacts", slug: "sap-contacts", type: "inbound",
    configuration: { ...contactMapping, event_names: ["SapContactChanged"], pre_mapping: { app: "APP", action } },
  });
  const withApp = (uc: ReturnType<typeof sapContacts>) => ({ ...uc, configuration: { ...uc.configuration, pre_mapping: { app, action: uc.configuration.pre_mapping.action } } });

  it("normalises SAP values before the mapping; a throwing app fails the event with its message", async () => {
    const s = await tenantWithApp([withApp(sapContacts("normalise")), { ...withApp(sapContacts("reject")), slug: "blocked", configuration: { ...withApp(sapContacts("reject")).configuration, event_names: ["Blocked"] } }]);
    const [ok] = await post(s.token, s.integrationId, [{ event_name: "SapContactChanged", payload: { id: "0000012345", name: "Ada", changed: "/Date(1700000000000)/" } }]);
    expect(await waitFor(s.token, ok!.event_id)).toMatchObject({ status: "done" });
    expect((await findOne(s.token, "contact", "external_id=12345")).attributes.full_name).toBe("Ada");

    const [bad] = await post(s.token, s.integrationId, [{ event_name: "Blocked", payload: { id: "77", name: "Eve" } }]);
    const status = await waitFor(s.token, bad!.event_id);
    expect(status).toMatchObject({ status: "error", error_category: "validation", errors: [{ code: "APP_FAILED", message: "customer 77 is blocked in SAP", app, action: "reject" }] });

    const runs = (await api("GET", "/v1/apps/runs?trigger=pre_mapping", { token: s.token })).body.runs;
    expect(runs.map((r: { event_id: string; outcome: string }) => [r.event_id, r.outcome])).toEqual([
      [bad!.event_id, "APP_FAILED"],
      [ok!.event_id, "ok"],
    ]);
    expect(runs[1].logs).toEqual([{ level: "info", message: "normalised 3 fields" }]);
  });

  it("fails the event with APP_NOT_INSTALLED when the tenant removed the app", async () => {
    const s = await tenantWithApp([withApp(sapContacts("normalise"))]);
    expect((await api("DELETE", `/v1/apps/installed/${app}`, { token: s.token })).status).toBe(409);
    expect((await api("DELETE", `/v1/apps/installed/${app}?force=true`, { token: s.token })).status).toBe(204);
    const [r] = await post(s.token, s.integrationId, [{ event_name: "SapContactChanged", payload: { id: "1", name: "X" } }]);
    expect(await waitFor(s.token, r!.event_id)).toMatchObject({ status: "error", error_category: "configuration", errors: [{ code: "APP_NOT_INSTALLED" }] });
  });
});

describe("outbound transform", () => {
  it("sends what the app makes of the JSONata result", async () => {
    const key = `transform-${unique()}`;
    const s = await tenantWithApp([
      {
        name: "push", slug: "push", type: "outbound",
        configuration: {
          event_catalog_event: "contact.created",
          mappings: [{ id: "main", name: "to ERP", jsonata_expression: '{ "customer": entity.unique_ids.external_id }', transform: { app, action: "wrap" }, delivery: { type: "webhook", url: `${RECEIVER}/hook/${key}` } }],
        },
      },
    ]);
    await post(s.token, s.integrationId, [{ event_name: "ContactChanged", payload: { id: "T1", name: "Tom" } }]);
    const delivered = await vi.waitFor(
      async () => {
        const list = (await (await fetch(`${RECEIVER}/_requests/${key}`)).json()) as { body: string }[];
        if (list.length === 0) throw new Error("not delivered yet");
        return list;
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(JSON.parse(delivered[0]!.body)).toEqual({ erp_document: { customer: "T1", source: "erp-edge" } });
    const runs = (await api("GET", "/v1/apps/runs?trigger=transform", { token: s.token })).body.runs;
    expect(runs[0]).toMatchObject({ action: "wrap", outcome: "ok" });
  });
});

describe("scheduled pull", () => {
  const pullUseCase = (key: string, schedule = "*/5 * * * *") => ({
    name: "ERP delta", slug: "delta", type: "pull",
    configuration: { app: "APP", action: "pull", schedule, target_use_case: "contacts", input: { url: `${RECEIVER}/hook/${key}` } },
  });

  it("advances its cursor; records become entities and a second run fetches only newer ones", async () => {
    const key = `pull-${unique()}`;
    const records = [
      { id: "P1", name: "First", seq: 1, changed: "2026-02-01T00:00:00Z" },
      { id: "P2", name: "Second", seq: 2, changed: "2026-02-01T00:01:00Z" },
    ];
    await fetch(`${RECEIVER}/_script/${key}`, {
      method: "POST",
      body: JSON.stringify({ responses: [{ status: 200, body: { records } }, { status: 200, body: { records: [...records, { id: "P3", name: "Third", seq: 3, changed: "2026-02-01T00:02:00Z" }] } }] }),
    });
    const uc = pullUseCase(key);
    const s = await tenantWithApp([{ ...uc, configuration: { ...uc.configuration, app } }], [receiver.host]);
    const run = (path = `/v1/integrations/${s.integrationId}/use-cases/delta/run`) => api("POST", path, { token: s.token });

    const first = await run();
    expect(first.status).toBe(200);
    expect(first.body.events).toEqual({ received: 2, accepted: 2, refused: 0 });
    for (const r of first.body.results) expect((await waitFor(s.token, r.event_id)).status).toBe("done");
    expect((await findOne(s.token, "contact", "external_id=P2")).attributes.full_name).toBe("Second");

    const second = await run();
    expect(second.body.events).toEqual({ received: 1, accepted: 1, refused: 0 });
    await waitFor(s.token, second.body.results[0].event_id);
    expect((await findOne(s.token, "contact", "external_id=P3")).attributes.full_name).toBe("Third");
    const asked = ((await (await fetch(`${RECEIVER}/_requests/${key}`)).json()) as { body: string }[]).map((r) => JSON.parse(r.body));
    expect(asked).toEqual([{ since: 0 }, { since: 2 }]);

    expectError(await run(`/v1/integrations/${s.integrationId}/use-cases/contacts/run`), 422, "UNPROCESSABLE");
    expectError(await run(`/v1/integrations/${s.integrationId}/use-cases/nope/run`), 404, "NOT_FOUND");
  });

  it("keeps the cursor where it was when the pull fails, and the cron tick runs due pulls", async () => {
    const key = `pull-${unique()}`;
    await fetch(`${RECEIVER}/_script/${key}`, {
      method: "POST",
      body: JSON.stringify({ responses: [{ status: 200, body: { records: [{ id: "Q0", name: "Bad", seq: 5, poison: true, changed: "2026-02-02T00:00:00Z" }] } }, { status: 200, body: { records: [{ id: "Q1", name: "Que", seq: 7, changed: "2026-02-02T00:00:00Z" }] } }] }),
    });
    const uc = pullUseCase(key, "* * * * *");
    const s = await tenantWithApp([{ ...uc, configuration: { ...uc.configuration, app } }], [receiver.host]);
    const failed = await api("POST", `/v1/integrations/${s.integrationId}/use-cases/delta/run`, { token: s.token });
    expect(expectError(failed, 502, "APP_FAILED")).toBeTruthy();
    expect(failed.body.error.message).toBe("poison record Q0");

    // Saving the pull scheduled it (a tick now finds nothing due); a tick at its due time runs it.
    const useCaseId = s.useCases.find((u) => u.slug === "delta")!.id;
    await runDuePulls(env, new Date());
    const schedule = await env.DB.prepare("SELECT next_run_at FROM pull_schedules WHERE use_case_id = ?").bind(useCaseId).first<{ next_run_at: string }>();
    expect(schedule).not.toBeNull();
    await runDuePulls(env, new Date(Date.parse(schedule!.next_run_at) + 1000));
    const after = await env.DB.prepare("SELECT last_outcome FROM pull_schedules WHERE use_case_id = ?").bind(useCaseId).first<{ last_outcome: string }>();
    expect(after!.last_outcome).toBe("ok");
    const contact = await vi.waitFor(async () => {
      const found = await findOne(s.token, "contact", "external_id=Q1");
      if (!found) throw new Error("not yet");
      return found;
    }, { timeout: 15_000, interval: 50 });
    expect(contact.attributes.full_name).toBe("Que");
    // The failed run's cursor write was dropped with it: the tick's request asked from the start.
    const asked = ((await (await fetch(`${RECEIVER}/_requests/${key}`)).json()) as { body: string }[]).map((r) => JSON.parse(r.body));
    expect(asked).toEqual([{ since: 0 }, { since: 0 }]);
  });

  it("keeps the cursor where it was when a log shard refuses some of the run's events, so the next run fetches them again", async () => {
    const key = `pull-${unique()}`;
    const [g1, g2] = groupsInDifferentShards();
    const records = [
      { id: "S1", name: "Stored", seq: 1, group: g1, changed: "2026-02-03T00:00:00Z" },
      { id: "S2", name: "Refused", seq: 2, group: g2, changed: "2026-02-03T00:00:00Z" },
    ];
    await fetch(`${RECEIVER}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses: [{ status: 200, body: { records } }, { status: 200, body: { records } }] }) });
    const uc = pullUseCase(key);
    const s = await tenantWithApp([{ ...uc, configuration: { ...uc.configuration, app } }], [receiver.host]);
    // The shard of the second record's group refuses new events; the first record's shard stores its one.
    const refusing = logOf(s.integrationId, g2);
    await runInDurableObject(refusing, (_instance: EventLog, state) => {
      state.storage.sql.exec("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'log storage unavailable'); END");
    });
    const failed = await api("POST", `/v1/integrations/${s.integrationId}/use-cases/delta/run`, { token: s.token });
    expectError(failed, 500, "INTERNAL");
    await runInDurableObject(refusing, (_instance: EventLog, state) => {
      state.storage.sql.exec("DROP TRIGGER refuse");
    });

    const again = await api("POST", `/v1/integrations/${s.integrationId}/use-cases/delta/run`, { token: s.token });
    expect(again.status).toBe(200);
    // The stored one is a duplicate now; the refused one is accepted at last.
    expect(again.body.results.map((r: { status: string }) => r.status).sort()).toEqual(["skipped", "success"]);
    for (const r of again.body.results) expect((await waitFor(s.token, r.event_id)).status).toBe("done");
    expect((await findOne(s.token, "contact", "external_id=S2")).attributes.full_name).toBe("Refused");
    const asked = ((await (await fetch(`${RECEIVER}/_requests/${key}`)).json()) as { body: string }[]).map((r) => JSON.parse(r.body));
    expect(asked).toEqual([{ since: 0 }, { since: 0 }]);
  });

  it("refuses a pull use case with a bad schedule or no app reference", async () => {
    const s = await setup();
    const bad = await api("POST", `/v1/integrations/${s.integrationId}/use-cases`, {
      token: s.token,
      json: { name: "bad", slug: "bad", type: "pull", configuration: { app: "@x/y", action: "pull", schedule: "every day", target_use_case: "contacts" } },
    });
    expectError(bad, 400, "VALIDATION_FAILED");
    const noApp = await api("POST", `/v1/integrations/${s.integrationId}/use-cases`, {
      token: s.token,
      json: { name: "bad", slug: "bad", type: "pull", configuration: { schedule: "* * * * *", target_use_case: "contacts" } },
    });
    expectError(noApp, 400, "VALIDATION_FAILED");
  });
});
