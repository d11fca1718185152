// Outbound delivery against a real HTTP receiver on loopback (test/receiver.mjs), signatures checked
// with the independent `standardwebhooks` package.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import type { EventLog } from "../src/inbound/log-do";
import { applyRetention } from "../src/monitoring/service";
import { destinationProblem } from "../src/platform/destination";
import { sweepAckTimeouts } from "../src/outbound/service";
import { api, eventually, expectError, tenantWithToken } from "./helpers";
import { contactMapping, eventRow, logOf, post, waitFor } from "./inbound-helpers";

const RECEIVER = env.RECEIVER_URL;
let keys = 0;
const newKey = () => `k${Date.now().toString(36)}${keys++}`;

async function script(key: string, responses: unknown[]) {
  await fetch(`${RECEIVER}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses }) });
}
async function received(key: string): Promise<{ at: number; headers: Record<string, string>; body: string; status: number }[]> {
  return (await fetch(`${RECEIVER}/_requests/${key}`)).json();
}


const webhookUseCase = (slug: string, url: string, delivery: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  name: slug,
  slug,
  type: "outbound",
  configuration: {
    event_catalog_event: "contact.created",
    mappings: [{ id: "main", name: "to ERP", jsonata_expression: '{ "customer": entity.unique_ids.external_id, "name": entity.attributes.full_name, "ack": _ack_id }', delivery: { type: "webhook", url, ...delivery } }],
    ...extra,
  },
});

async function outboundSetup(useCases: Record<string, unknown>[], settings?: Record<string, unknown>) {
  const { tenant, token } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", {
    token,
    json: { name: "ERP", ...(settings && { settings }), use_cases: [{ name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping }, ...useCases] },
  });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  const integrationId: string = res.body.id;
  const byslug = Object.fromEntries(res.body.use_cases.map((u: { slug: string; id: string }) => [u.slug, u.id]));
  const secret = async (slug: string) =>
    (await api("POST", `/v1/integrations/${integrationId}/outbound/endpoints/${byslug[slug]}/main/secret`, { token })).body.secret as string;
  const events = async (query: Record<string, unknown>) => (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: query })).body.events;
  const deliveries = (slug: string) => events({ direction: "outbound", use_case: slug });
  return { tenant, token, integrationId, byslug, secret, events, deliveries };
}

const contact = (id: string, name = `Name ${id}`) => ({ use_case_slug: "contacts", payload: { id, name } });

/** Writes event rows straight into an integration's log (the shard of events without a group); monitoring reads every shard. */
async function insertEvents(integrationId: string, rows: Record<string, SqlStorageValue>[]) {
  await runInDurableObject(logOf(integrationId), (_instance: EventLog, state) => {
    for (const row of rows) {
      const columns = Object.keys(row);
      state.storage.sql.exec(`INSERT INTO events (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`, ...Object.values(row));
    }
  });
}

describe("webhook delivery", () => {
  it("retries a failing receiver until it succeeds, delivering exactly once with verifiable signatures", async () => {
    const key = newKey();
    await script(key, [500, 503]);
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`)]);
    const secret = await s.secret("push");
    expect(secret).toMatch(/^whsec_/);
    await post(s.token, s.integrationId, [contact("W1", "Ada")]);

    const [delivery] = await eventually(() => s.deliveries("push"), (d) => d[0]?.status === "delivered", "delivery");
    expect(delivery).toMatchObject({ attempts: 3, direction: "outbound", event_name: "contact.created" });
    const requests = await received(key);
    expect(requests.map((r) => r.status)).toEqual([500, 503, 200]);
    expect(new Set(requests.map((r) => r.headers["webhook-id"])).size).toBe(1);
    const wh = new Webhook(secret);
    for (const r of requests) {
      const verified = wh.verify(r.body, { "webhook-id": r.headers["webhook-id"]!, "webhook-timestamp": r.headers["webhook-timestamp"]!, "webhook-signature": r.headers["webhook-signature"]! });
      expect(verified).toMatchObject({ customer: "W1", name: "Ada" });
    }
  });

  it("refuses malformed endpoint requests with 4xx envelopes", async () => {
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${newKey()}`)]);
    const base = `/v1/integrations/${s.integrationId}/outbound/endpoints`;
    expectError(await api("POST", `${base}/${s.byslug.push}/main/secret`, { token: s.token, json: { overlap_seconds: -1 } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `${base}/${s.byslug.push}/nope/secret`, { token: s.token }), 404, "NOT_FOUND");
    expectError(await api("POST", `${base}/${s.byslug.contacts}/main/secret`, { token: s.token }), 404, "NOT_FOUND");
    expectError(await api("POST", `${base}/${s.byslug.push}/nope/enable`, { token: s.token }), 404, "NOT_FOUND");
    const other = await tenantWithToken();
    expectError(await api("POST", `${base}/${s.byslug.push}/main/secret`, { token: other.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/integrations/${s.integrationId}/outbound/dlq`, { token: other.token }), 404, "NOT_FOUND");
    const badConfig = { ...webhookUseCase("bad", "ftp://example.com/x"), slug: "bad" };
    expectError(await api("POST", `/v1/integrations/${s.integrationId}/use-cases`, { token: s.token, json: badConfig }), 400, "VALIDATION_FAILED");
  });

  it("sends both signatures while a rotated secret overlaps", async () => {
    const key = newKey();
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`)]);
    const old = await s.secret("push");
    const fresh = await s.secret("push");
    await post(s.token, s.integrationId, [contact("ROT")]);
    await eventually(() => received(key), (r) => r.length === 1, "delivery");
    const [r] = await received(key);
    expect(r!.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    for (const secret of [old, fresh]) expect(new Webhook(secret).verify(r!.body, r!.headers as never)).toBeTruthy();
  });

  it("disables an endpoint that answers 410", async () => {
    const key = newKey();
    await script(key, [410]);
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`)]);
    await post(s.token, s.integrationId, [contact("G1")]);
    await eventually(() => s.deliveries("push"), (d) => d[0]?.status === "failed", "failed delivery");
    const endpoints = (await api("GET", `/v1/integrations/${s.integrationId}/outbound/endpoints`, { token: s.token })).body.endpoints;
    expect(endpoints[0]).toMatchObject({ state: "disabled", disabled_reason: expect.stringContaining("410") });
    await post(s.token, s.integrationId, [contact("G2")]);
    // The second delivery exists and waits at the disabled endpoint: nothing more was sent.
    const waiting = await eventually(() => s.deliveries("push"), (d) => d.length === 2, "second delivery recorded");
    expect(waiting.filter((d: { status: string }) => d.status === "delivered")).toHaveLength(0);
    expect(await received(key)).toHaveLength(1);
    // Re-enabling delivers what waited.
    expect((await api("POST", `/v1/integrations/${s.integrationId}/outbound/endpoints/${s.byslug.push}/main/enable`, { token: s.token })).status).toBe(204);
    await eventually(() => received(key), (r) => r.length === 2, "delivery after enabling");
  });

  it("dead-letters after max attempts, and a redrive delivers", async () => {
    const key = newKey();
    await script(key, [500, 500, 500]);
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`, { max_attempts: 3 })]);
    await post(s.token, s.integrationId, [contact("DLQ1")]);
    const dlq = await eventually(
      async () => (await api("GET", `/v1/integrations/${s.integrationId}/outbound/dlq`, { token: s.token })).body.deliveries,
      (d) => d.length === 1,
      "dead letter",
    );
    expect(dlq[0]).toMatchObject({ status: "dead_lettered", attempts: 3, last_status_code: 500, payload: { customer: "DLQ1" } });
    const redrive = await api("POST", `/v1/integrations/${s.integrationId}/outbound/dlq/redrive`, { token: s.token, json: { ids: [dlq[0].id] } });
    expect(redrive.body).toEqual({ redriven: 1, ids: [dlq[0].id] });
    await eventually(() => s.deliveries("push"), (d) => d[0]?.status === "delivered", "redriven delivery");
    expect((await received(key)).map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expectError(await api("POST", `/v1/integrations/${s.integrationId}/outbound/dlq/redrive`, { token: s.token, json: { ids: [] } }), 400, "VALIDATION_FAILED");
  });

  it("waits at least as long as Retry-After says", async () => {
    const key = newKey();
    await script(key, [{ status: 429, retry_after: 1 }]);
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`)]);
    await post(s.token, s.integrationId, [contact("RA1")]);
    const requests = await eventually(() => received(key), (r) => r.length === 2, "retry");
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it("records a 2xx as delivered even when the receiver's answer body stalls, without waiting for it", async () => {
    const key = newKey();
    await script(key, [{ status: 200, stall: true }]);
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`)]);
    await post(s.token, s.integrationId, [contact("STALL")]);
    const [delivery] = await eventually(() => s.deliveries("push"), (d) => d[0]?.status === "delivered", "delivery despite the stalled body");
    expect(delivery).toMatchObject({ status: "delivered", attempts: 1, last_error: null });
    expect(await received(key)).toHaveLength(1);
    await fetch(`${RECEIVER}/_release/${key}`, { method: "POST" });
  });

  it("spaces deliveries by the endpoint's rate limit", async () => {
    const key = newKey();
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`, { rate_limit_per_second: 5 })]);
    await post(s.token, s.integrationId, ["RL1", "RL2", "RL3", "RL4"].map((id) => contact(id)));
    const requests = await eventually(() => received(key), (r) => r.length === 4, "rate-limited deliveries");
    const at = requests.map((r) => r.at).sort((a, b) => a - b);
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(180);
  });

  it("keeps an ordered endpoint in order under retries", async () => {
    const key = newKey();
    await script(key, [500, 500, 503]);
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`, { ordered: true })]);
    await post(s.token, s.integrationId, ["O1", "O2", "O3", "O4"].map((id) => contact(id)));
    const requests = await eventually(() => received(key), (r) => r.filter((x) => x.status === 200).length === 4, "ordered deliveries");
    const customers = requests.map((r) => JSON.parse(r.body).customer);
    expect(customers).toEqual(["O1", "O1", "O1", "O1", "O2", "O3", "O4"]);
  });

  it("pauses an endpoint that keeps failing (circuit breaker), says so, and resumes after the cool-down", async () => {
    const key = newKey();
    await script(key, Array(6).fill(500));
    const s = await outboundSetup([webhookUseCase("push", `${RECEIVER}/hook/${key}`, { max_attempts: 50 })]);
    await post(s.token, s.integrationId, [contact("CB1")]);
    // OUTBOUND_BREAKER_THRESHOLD is 6 and the cool-down 400 ms in the tests' configuration.
    const log = await eventually(
      async () => (await api("GET", "/v1/audit-log", { token: s.token })).body.entries,
      (e) => e.some((x: { action: string }) => x.action === "erp_edge.endpoint.paused"),
      "pause",
    );
    expect(log.find((x: { action: string }) => x.action === "erp_edge.endpoint.paused").details).toMatchObject({ failures: 6 });
    await eventually(() => s.deliveries("push"), (d) => d[0]?.status === "delivered", "delivery after the cool-down");
    expect((await received(key)).map((r) => r.status)).toEqual([500, 500, 500, 500, 500, 500, 200]);
    const endpoints = (await api("GET", `/v1/integrations/${s.integrationId}/outbound/endpoints`, { token: s.token })).body.endpoints;
    expect(endpoints[0]).toMatchObject({ state: "active", consecutive_failures: 0 });
  });

  it("refuses private, loopback, link-local and metadata destinations without calling them", async () => {
    // Refused when saved; test/security/ssrf.test.ts covers a stored URL refused at send time.
    const s = await outboundSetup([]);
    const refused = await api("POST", `/v1/integrations/${s.integrationId}/use-cases`, { token: s.token, json: webhookUseCase("push", "http://10.1.2.3/hook") });
    expect(expectError(refused, 400, "VALIDATION_FAILED")).toEqual([expect.objectContaining({ path: "configuration.mappings.0.delivery.url", code: "unsafe_destination" })]);
    for (const url of ["http://localhost/x", "http://127.0.0.1:9/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data", "http://192.168.1.1/", "http://metadata.google.internal/", "https://172.20.0.1/"]) {
      expect(destinationProblem(url, []), url).not.toBeNull();
    }
    expect(destinationProblem("https://erp.example.com/hook", [])).toBeNull();
    expect(destinationProblem("http://127.0.0.1:8080/hook", ["127.0.0.1:8080"])).toBeNull();
  });
});

describe("business events, ACKs and poll delivery", () => {
  it("delivers a business event posted to /v1/events and tracks its ACK to processed and timeout", async () => {
    const key = newKey();
    const s = await outboundSetup([
      {
        name: "meter readings", slug: "readings", type: "outbound",
        configuration: {
          event_catalog_event: "MeterReadingAdded",
          event_filter: "reading.value > 0",
          ack_tracking: "on",
          mappings: [{ id: "main", name: "to ERP", jsonata_expression: '{ "meter": reading.meter, "value": reading.value, "ack_id": _ack_id }', delivery: { type: "webhook", url: `${RECEIVER}/hook/${key}` } }],
        },
      },
    ]);
    const emitted = await api("POST", "/v1/events", { token: s.token, json: { event_name: "MeterReadingAdded", correlation_id: "corr-42", payload: { reading: { meter: "M1", value: 12 } } } });
    expect(emitted.status).toBe(202);
    await api("POST", "/v1/events", { token: s.token, json: { event_name: "MeterReadingAdded", payload: { reading: { meter: "M1", value: 0 } } } }); // filtered out
    const [d] = await eventually(() => s.deliveries("readings"), (d) => d[0]?.status === "delivered", "delivery");
    expect(d.ack_status).toBe("pending");
    const [r] = await received(key);
    expect(JSON.parse(r!.body)).toEqual({ meter: "M1", value: 12, ack_id: emitted.body.ack_id });

    const ack = await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { ack_id: emitted.body.ack_id, status: "processed" } });
    expect(ack.body).toMatchObject({ direction: "outbound", status: "processed" });
    expect((await s.deliveries("readings"))[0].ack_status).toBe("processed");
    expectError(await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { ack_id: "nope" } }), 404, "NOT_FOUND");
    expectError(await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { status: "processed" } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v1/events", { token: s.token, json: { event_name: "x y", payload: {} } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v1/events", { token: s.token, json: { event_name: "Ok", payload: { _org_id: "spoof" } } }), 400, "VALIDATION_FAILED");

    // A second one nobody acknowledges times out.
    const second = await api("POST", "/v1/events", { token: s.token, json: { event_name: "MeterReadingAdded", payload: { reading: { meter: "M2", value: 3 } } } });
    await eventually(() => s.deliveries("readings"), (d) => d.filter((x: { ack_status: string }) => x.ack_status === "pending").length === 1, "second delivery");
    expect(await sweepAckTimeouts(env, Date.now() + 2 * 3600_000)).toBeGreaterThanOrEqual(1);
    const stats = (await api("GET", `/v1/integrations/${s.integrationId}/monitoring/stats?window=1h`, { token: s.token })).body;
    expect(stats.acks).toMatchObject({ processed: 1, timeout: 1, pending: 0 });
    expect(second.body.ack_id).toBeTruthy();

    // Inbound events can be acknowledged too (ack_id = event id).
    const [inbound] = await post(s.token, s.integrationId, [contact("ACKIN")]);
    await waitFor(s.token, inbound!.event_id);
    const inAck = await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { ack_id: inbound!.event_id, status: "failed", message: "ERP refused" } });
    expect(inAck.body).toMatchObject({ direction: "inbound", status: "failed" });
  });

  it("leases poll messages, refuses stale leases, and brings unacked ones back after the visibility timeout", async () => {
    const s = await outboundSetup([
      { name: "poll", slug: "poll", type: "outbound", configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name: "poll", jsonata_expression: "entity.unique_ids", delivery: { type: "poll", max_delivery_attempts: 3 } }] } },
    ]);
    const base = `/v1/integrations/${s.integrationId}/outbound/messages`;
    await post(s.token, s.integrationId, [contact("PL1")]);
    const first = await eventually(async () => (await api("POST", `${base}/poll`, { token: s.token, json: { limit: 10, visibility_timeout_seconds: 1 } })).body, (b) => b.messages.length === 1, "poll message");
    expect(first.messages[0]).toMatchObject({ event_name: "contact.created", payload: { external_id: "PL1" } });
    expect(first.visibility_timeout_seconds).toBe(1);
    expect((await api("POST", `${base}/poll`, { token: s.token, json: {} })).body.messages).toEqual([]);

    // Once the 1 s visibility timeout passes, the unacked message is leased again.
    const second = await eventually(async () => (await api("POST", `${base}/poll`, { token: s.token, json: { limit: 10 } })).body, (b) => b.messages.length === 1, "message visible again");
    expect(second.messages.map((m: { id: string }) => m.id)).toEqual([first.messages[0].id]);
    const acks = await api("POST", `${base}/ack`, {
      token: s.token,
      json: { acks: [{ id: first.messages[0].id, lease_token: first.messages[0].lease_token }, { id: second.messages[0].id, lease_token: second.messages[0].lease_token }, { id: "01JD0000000000000000000000", lease_token: "x" }] },
    });
    expect(acks.body.results.map((r: { status: string }) => r.status)).toEqual(["stale_lease", "acked", "not_found"]);
    expect((await api("POST", `${base}/poll`, { token: s.token, json: {} })).body.messages).toEqual([]);
    expect((await s.deliveries("poll"))[0]).toMatchObject({ status: "delivered", attempts: 2 });

    expectError(await api("POST", `${base}/poll`, { token: s.token, json: { limit: 101 } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `${base}/ack`, { token: s.token, json: { acks: [] } }), 400, "VALIDATION_FAILED");
  });

  it("dead-letters a poll message after max_delivery_attempts", async () => {
    const s = await outboundSetup([
      { name: "poll", slug: "poll", type: "outbound", configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name: "poll", jsonata_expression: "entity.unique_ids", delivery: { type: "poll", max_delivery_attempts: 1 } }] } },
    ]);
    const base = `/v1/integrations/${s.integrationId}/outbound/messages`;
    await post(s.token, s.integrationId, [contact("PZ1")]);
    await eventually(async () => (await api("POST", `${base}/poll`, { token: s.token, json: { visibility_timeout_seconds: 1 } })).body, (b) => b.messages.length === 1, "poll message");
    // After the visibility timeout, the next poll dead-letters it instead of leasing it again.
    await eventually(
      async () => {
        expect((await api("POST", `${base}/poll`, { token: s.token, json: {} })).body.messages).toEqual([]);
        return (await api("GET", `/v1/integrations/${s.integrationId}/outbound/dlq`, { token: s.token })).body.deliveries;
      },
      (d) => d.length === 1,
      "dead-lettered poll message",
    );
  });
});

describe("monitoring", () => {
  it("replays a failed inbound event after its use case is fixed, linking the replay to the original", async () => {
    const { token } = await tenantWithToken();
    const broken = { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "score", jsonataExpression: "$number(score) * 2" }] }] };
    const created = await api("POST", "/v2/integrations", { token, json: { name: "ERP", use_cases: [{ name: "c", slug: "contacts", type: "inbound", configuration: broken }] } });
    const integrationId = created.body.id;
    const [r] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "RP1", score: "high" }, correlation_id: "order-7" }]);
    expect(await waitFor(token, r!.event_id)).toMatchObject({ status: "error", error_category: "configuration" });

    const failed = (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { status: "error", direction: "inbound" } })).body.events;
    expect(failed.map((e: { event_id: string }) => e.event_id)).toEqual([r!.event_id]);

    const fixed = { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "score", jsonataExpression: "$type(score) = 'number' ? score * 2 : undefined" }] }] };
    const uc = created.body.use_cases[0];
    await api("PUT", `/v1/integrations/${integrationId}/use-cases/${uc.id}`, { token, json: { ...uc, configuration: fixed } });
    const replay = await api("POST", `/v1/integrations/${integrationId}/events/replay`, { token, json: { event_ids: [r!.event_id, "01JD0000000000000000000000"] } });
    expect(replay.body.replayed).toBe(1);
    expect(replay.body.results[1]).toMatchObject({ status: "not_found" });
    const replayId = replay.body.results[0].replay_event_id;
    expect(await waitFor(token, replayId)).toMatchObject({ status: "done", correlation_id: "order-7" });
    const rows = (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { event_id: replayId } })).body.events;
    expect(rows[0]).toMatchObject({ replay_of: r!.event_id, status: "done" });

    const trace = (await api("GET", `/v1/integrations/${integrationId}/monitoring/traces/order-7`, { token })).body;
    expect(trace.events.map((e: { event_id: string }) => e.event_id)).toEqual([r!.event_id, replayId]);
    expectError(await api("GET", `/v1/integrations/${integrationId}/monitoring/traces/none`, { token }), 404, "NOT_FOUND");
    expectError(await api("POST", `/v1/integrations/${integrationId}/events/replay`, { token, json: { event_ids: [] } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { colour: "red" } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { limit: 500 } }), 400, "VALIDATION_FAILED");
  });

  it("computes percentiles over known durations", async () => {
    const { tenant, token } = await tenantWithToken();
    const integrationId = (await api("POST", "/v2/integrations", { token, json: { name: "stats" } })).body.id;
    const now = new Date().toISOString();
    await insertEvents(
      integrationId,
      Array.from({ length: 20 }, (_, i) => ({
        id: `01JDSTAT${String(i).padStart(18, "0")}`, tenant_id: tenant.id, integration_id: integrationId, use_case_slug: "u",
        status: "done", received_at: now, completed_at: now, processing_duration_ms: (i + 1) * 10,
      })),
    );
    const stats = (await api("GET", `/v1/integrations/${integrationId}/monitoring/stats?window=1h`, { token })).body;
    expect(stats.processing_ms.inbound).toEqual({ count: 20, p50: 100, p95: 190, p99: 200 });
    expect(stats.counts).toEqual([{ direction: "inbound", use_case: "u", status: "done", count: 20 }]);
    expectError(await api("GET", `/v1/integrations/${integrationId}/monitoring/stats?window=2d`, { token }), 400, "VALIDATION_FAILED");
  });

  it("deletes events older than the integration's retention_days", async () => {
    const { tenant, token } = await tenantWithToken();
    const integrationId = (await api("POST", "/v2/integrations", { token, json: { name: "short memory", settings: { retention_days: 2 } } })).body.id;
    const at = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString();
    await insertEvents(
      integrationId,
      [["01JDRET0000000000000000001", at(3)], ["01JDRET0000000000000000002", at(1)]].map(([id, when]) => ({ id: id!, tenant_id: tenant.id, integration_id: integrationId, status: "done", received_at: when! })),
    );
    await applyRetention(env);
    const left = (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: {} })).body.events;
    expect(left.map((e: { event_id: string }) => e.event_id)).toEqual(["01JDRET0000000000000000002"]);
  });

  it("keeps an audit log of configuration changes and token use, and redacts configured payload paths", async () => {
    const { token, tokenId } = await tenantWithToken();
    const integration = await api("POST", "/v2/integrations", {
      token,
      json: {
        name: "audited",
        settings: { redact_paths: ["email", "bank.iban"] },
        environment_config: [{ key: "K", label: "k", type: "SecretString" }],
        use_cases: [{ name: "c", slug: "contacts", type: "inbound", configuration: contactMapping }],
      },
    });
    await api("PUT", `/v1/integrations/${integration.body.id}/environment`, { token, json: { K: "very-secret" } });
    const [r] = await post(token, integration.body.id, [{ use_case_slug: "contacts", payload: { id: "PII1", email: "a@b.c", bank: { iban: "DE00", bic: "X" } } }]);
    await waitFor(token, r!.event_id);
    const stored = await eventRow(integration.body.id, r!.event_id);
    expect(JSON.parse(stored!.payload!)).toEqual({ id: "PII1", email: "[REDACTED]", bank: { iban: "[REDACTED]", bic: "X" } });

    const log = await eventually(
      async () => (await api("GET", "/v1/audit-log", { token })).body.entries,
      (e) => e.some((x: { action: string }) => x.action === "token.used"),
      "audit entries",
    );
    const actions = log.map((e: { action: string }) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["integration.created", "environment.updated", "token.created", "token.used"]));
    const envEntry = log.find((e: { action: string }) => e.action === "environment.updated");
    expect(envEntry).toMatchObject({ actor: `token:${tokenId}`, details: { keys: ["K"] } });
    expect(JSON.stringify(log)).not.toContain("very-secret");
  });
});
