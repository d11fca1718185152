// Signed webhooks: the seed's X-Signature scheme and Standard Webhooks (signed by the independent
// `standardwebhooks` package), every failure mode refused with 401 and nothing stored.
import { exports } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { api, expectError } from "./helpers";
import { findOne, logQuery, setup, waitFor } from "./inbound-helpers";

const SECRET = "telematics-shared-secret";
const WHSEC = "whsec_" + btoa("standard-webhooks-secret-bytes!!");

const tripMapping = (scheme?: string, secret_env = "TELEMATICS_SECRET") => ({
  webhook: { secret_env, ...(scheme && { scheme }) },
  entities: [
    {
      entity_schema: "trip",
      unique_ids: ["trip_id"],
      fields: [
        { attribute: "trip_id", jsonataExpression: "data.trip_id" },
        { attribute: "status", jsonataExpression: "data.status" },
        { attribute: "site_id", jsonataExpression: "data.site_id" },
        { attribute: "status_changed_at", jsonataExpression: "data.ts" },
      ],
    },
  ],
});

const body = (trip = "T-9001", status = "arrived") =>
  JSON.stringify({ event: "trip.status.changed", id: "evt_123", data: { trip_id: trip, status, site_id: "CUST-77", ts: "2025-10-29T14:01:00Z" } });

async function hmacHex(secret: string, message: string) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)));
  return [...sig].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function xSignature(raw: string, t = Math.floor(Date.now() / 1000), secret = SECRET) {
  return `t=${t},s=sha256=${await hmacHex(secret, `${t}.${raw}`)}`;
}

async function deliver(path: string, raw: string, headers: Record<string, string>) {
  const res = await exports.default.fetch(new Request(`http://erp-edge.test${path}`, { method: "POST", body: raw, headers: { "content-type": "application/json", ...headers } }));
  return { status: res.status, body: (await res.json()) as any, headers: res.headers };
}

async function setupWebhooks() {
  const ctx = await setup(
    [
      { name: "Trips", slug: "trips", type: "inbound", configuration: tripMapping() },
      { name: "Trips (SW only)", slug: "trips-sw", type: "inbound", configuration: tripMapping("standard-webhooks", "WHSEC") },
      { name: "Trips (unset secret)", slug: "trips-unset", type: "inbound", configuration: tripMapping(undefined, "NOT_SET") },
    ],
    { TELEMATICS_SECRET: SECRET, WHSEC: WHSEC, NOT_SET: "" },
  );
  await api("PUT", `/v1/integrations/${ctx.integrationId}/environment`, { token: ctx.token, json: { NOT_SET: null } });
  // Events stored in the integration's log, every shard of it.
  const count = async () => (await logQuery(ctx.integrationId, "SELECT id FROM events")).length;
  return { ...ctx, count, path: (slug: string) => `/v1/webhooks/${ctx.integrationId}/${slug}` };
}

describe("POST /v1/webhooks/{integration_id}/{use_case_slug}", () => {
  it("accepts the seed's X-Signature sample, dedups the identical signed request, and maps it", async () => {
    const { token, path } = await setupWebhooks();
    const raw = body();
    const headers = { "x-signature": await xSignature(raw), "idempotency-key": "2c1f3b76-aaaa-bbbb" };
    const res = await deliver(path("trips"), raw, headers);
    expect(res.status).toBe(202);
    expect(res.body.status).toBe("success");
    const status = await waitFor(token, res.body.event_id);
    expect(status).toMatchObject({ status: "done", event_name: "trip.status.changed" });
    // The signature, not the unsigned Idempotency-Key, identifies the request.
    expect(status.deduplication_id).toMatch(/^xsig-[0-9a-f]{64}$/);
    expect((await findOne(token, "trip", "trip_id=T-9001")).attributes).toMatchObject({ status: "arrived", site_id: "CUST-77" });

    const again = await deliver(path("trips"), raw, headers);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ status: "skipped", event_id: res.body.event_id });
  });

  it("accepts Standard Webhooks signatures made by the standardwebhooks package, including rotation", async () => {
    const { token, path } = await setupWebhooks();
    const raw = body("T-42", "departed");
    const id = "msg_2b9f";
    const timestamp = new Date();
    const signature = new Webhook(WHSEC).sign(id, timestamp, raw);
    const rotated = `${new Webhook("whsec_" + btoa("an-older-secret-that-was-rotated")).sign(id, timestamp, raw)} ${signature}`;
    const res = await deliver(path("trips-sw"), raw, { "webhook-id": id, "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)), "webhook-signature": rotated });
    expect(res.status).toBe(202);
    // The signed webhook-id, in the use case's own namespace.
    expect((await waitFor(token, res.body.event_id)).deduplication_id).toMatch(/^whsw-[0-9a-f]{64}$/);
    expect((await findOne(token, "trip", "trip_id=T-42")).attributes.status).toBe("departed");
  });

  it("refuses every signature failure with 401 and stores nothing", async () => {
    const { path, count, integrationId } = await setupWebhooks();
    const raw = body();
    const now = Math.floor(Date.now() / 1000);
    const sw = (secret: string, ts = now, id = "msg_1") => ({ "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": new Webhook(secret).sign(id, new Date(ts * 1000), raw) });
    const cases: [string, string, Record<string, string>, string?][] = [
      ["missing signature", path("trips"), {}],
      ["wrong secret", path("trips"), { "x-signature": await xSignature(raw, now, "not-the-secret") }],
      ["tampered body", path("trips"), { "x-signature": await xSignature(raw.replace("arrived", "cancelled")) }],
      ["stale timestamp", path("trips"), { "x-signature": await xSignature(raw, now - 400) }],
      ["future timestamp", path("trips"), { "x-signature": await xSignature(raw, now + 400) }],
      ["malformed header", path("trips"), { "x-signature": "sha256=abc" }],
      ["non-hex signature", path("trips"), { "x-signature": `t=${now},s=sha256=zz` }],
      ["standard webhooks, wrong secret", path("trips-sw"), sw("whsec_" + btoa("wrong-secret-wrong-secret-wrong!"))],
      ["standard webhooks, stale", path("trips-sw"), sw(WHSEC, now - 600)],
      ["standard webhooks, missing id", path("trips-sw"), { ...sw(WHSEC), "webhook-id": "" }],
      ["scheme not accepted here", path("trips-sw"), { "x-signature": await xSignature(raw) }],
      ["secret not set", path("trips-unset"), { "x-signature": await xSignature(raw) }],
      ["unknown use case", path("nope"), { "x-signature": await xSignature(raw) }],
      ["use case without webhook", path("contacts"), { "x-signature": await xSignature(raw) }],
      ["unknown integration", `/v1/webhooks/01JD0000000000000000000000/trips`, { "x-signature": await xSignature(raw) }],
    ];
    for (const [name, target, headers] of cases) {
      const res = await deliver(target, raw, headers);
      expect(res.status, name).toBe(401);
      expect(res.body.error.code, name).toBe("UNAUTHORIZED");
    }
    expect(await count()).toBe(0);
    expect(integrationId).toBeTruthy();
  });

  it("refuses a validly signed body that is not JSON with 400, storing nothing", async () => {
    const { path, count } = await setupWebhooks();
    const raw = "not json at all";
    const res = await deliver(path("trips"), raw, { "x-signature": await xSignature(raw) });
    expectError({ ...res, body: res.body }, 400, "INVALID_JSON");
    expect(await count()).toBe(0);
  });
});
