// Replays and deduplication of signed webhooks, far-future timestamps, token scopes and key ids,
// and who may make erp-edge send an integration's secrets somewhere.
import { env, exports } from "cloudflare:workers";
import { decodeProtectedHeader } from "jose";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { configChanged } from "../../src/platform/config-cache";
import { api, createToken, expectError, tenantWithToken } from "../helpers";
import { eventRow, findOne, logQuery, post, setup, waitFor } from "../inbound-helpers";

const SECRET = "replay-test-secret";
const WHSEC = "whsec_" + btoa("standard-webhooks-secret-bytes!!");

const tripMapping = (secret_env: string, scheme?: string) => ({
  webhook: { secret_env, ...(scheme && { scheme }) },
  entities: [{ entity_schema: "trip", unique_ids: ["trip_id"], fields: [{ attribute: "trip_id", jsonataExpression: "trip" }, { attribute: "n", jsonataExpression: "n" }] }],
});

async function xSignature(raw: string, t = Math.floor(Date.now() / 1000)) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${t}.${raw}`)));
  return `t=${t},s=sha256=${[...sig].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function deliver(path: string, raw: string, headers: Record<string, string>) {
  const res = await exports.default.fetch(new Request(`http://erp-edge.test${path}`, { method: "POST", body: raw, headers: { "content-type": "application/json", ...headers } }));
  return { status: res.status, body: (await res.json()) as any };
}

async function webhookSetup() {
  const ctx = await setup(
    [
      { name: "Trips", slug: "trips", type: "inbound", configuration: tripMapping("X_SECRET", "x-signature") },
      { name: "Trips SW", slug: "trips-sw", type: "inbound", configuration: tripMapping("SW_SECRET", "standard-webhooks") },
      { name: "Trips SW 2", slug: "trips-sw-2", type: "inbound", configuration: tripMapping("SW_SECRET", "standard-webhooks") },
    ],
    { X_SECRET: SECRET, SW_SECRET: WHSEC },
  );
  // Events stored in the integration's log, every shard of it.
  const count = async () => (await logQuery(ctx.integrationId, "SELECT id FROM events")).length;
  return { ...ctx, count, path: (slug: string) => `/v1/webhooks/${ctx.integrationId}/${slug}` };
}

describe("signed webhook replays", () => {
  it("treats an identical X-Signature request replayed inside the window as a duplicate, however its header is spelled and whatever its Idempotency-Key", async () => {
    const { path, count } = await webhookSetup();
    const raw = JSON.stringify({ trip: "R-1", n: 1 });
    const signature = await xSignature(raw);
    const first = await deliver(path("trips"), raw, { "x-signature": signature });
    expect(first.body.status).toBe("success");
    const [t, s] = signature.split(",");
    const respelled = [signature, `${t}, ${s}`, ` ${signature}`, `${t},s=sha256=${s!.slice("s=sha256=".length).toUpperCase()}`, `${signature},x=1`, `x=2,${signature}`, `${s},${t}`];
    for (const [i, header] of respelled.entries()) {
      const replay = await deliver(path("trips"), raw, { "x-signature": header, "idempotency-key": `fresh-key-${i}` });
      expect(replay.status, header).toBe(202);
      expect(replay.body, header).toMatchObject({ status: "skipped", event_id: first.body.event_id });
    }
    expect(await count()).toBe(1);
  });

  it("deduplicates on the signed webhook-id, exactly and per use case: an unsigned Idempotency-Key cannot override it, evt.1 and evt_1 stay distinct, and API ids never collide with it", async () => {
    const { token, integrationId, path } = await webhookSetup();
    const send = async (id: string, trip: string, extra: Record<string, string> = {}, slug = "trips-sw") => {
      const raw = JSON.stringify({ trip, n: 1 });
      const ts = new Date();
      return deliver(path(slug), raw, { "webhook-id": id, "webhook-timestamp": String(Math.floor(ts.getTime() / 1000)), "webhook-signature": new Webhook(WHSEC).sign(id, ts, raw), ...extra });
    };
    const a = await send("evt.1", "S-1", { "idempotency-key": "same-key" });
    const b = await send("evt_1", "S-2", { "idempotency-key": "same-key" });
    expect(a.body.status).toBe("success");
    expect(b.body.status).toBe("success");
    const idA = (await waitFor(token, a.body.event_id)).deduplication_id;
    const idB = (await waitFor(token, b.body.event_id)).deduplication_id;
    expect(idA).toMatch(/^whsw-[0-9a-f]{64}$/);
    expect(idB).not.toBe(idA);
    const again = await send("evt.1", "S-1", { "idempotency-key": "another-key" });
    expect(again.body).toMatchObject({ status: "skipped", event_id: a.body.event_id });
    expect((await findOne(token, "trip", "trip_id=S-2")).attributes.trip_id).toBe("S-2");
    // The same webhook-id at another use case, and an API event using the raw id, are their own events.
    expect((await send("evt_1", "S-3", {}, "trips-sw-2")).body.status).toBe("success");
    const [api1] = await post(token, integrationId, [{ use_case_slug: "contacts", deduplication_id: "msg_2", payload: { id: "D-1", name: "API" } }]);
    expect(api1!.status).toBe("success");
    expect((await send("msg_2", "S-4")).body.status).toBe("success");
  });

  it("limits unverified webhook calls per source address in their own bucket, so junk cannot use up the tenant's API budget", async () => {
    const { tenant, token, path } = await webhookSetup();
    await env.DB.prepare("UPDATE tenants SET rate_limit_per_second = 3 WHERE id = ?").bind(tenant.id).run();
    configChanged(); // the webhook route reads the tenant's limit with its integration, cached
    const statuses: number[] = [];
    // WEBHOOK_SOURCE_RATE_LIMIT_PER_SECOND is 25 in the test configuration (bursts of 50).
    for (let i = 0; i < 150 && !statuses.includes(429); i++) statuses.push((await deliver(path("trips"), "{}", { "x-signature": "t=1,s=sha256=00", "cf-connecting-ip": "203.0.113.9" })).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses).toContain(429);
    // The tenant's own bucket (3/s, bursts of 6) was not touched by any of them.
    for (let i = 0; i < 5; i++) expect((await api("GET", "/v2/integrations", { token })).status).toBe(200);
    // Another source is not affected by the first one's bucket.
    expect((await deliver(path("trips"), "{}", { "x-signature": "t=1,s=sha256=00", "cf-connecting-ip": "198.51.100.7" })).status).toBe(401);
  });
});

describe("event timestamps", () => {
  it("refuses a far-future timestamp per event, so later real updates still apply", async () => {
    const { token, integrationId } = await setup();
    const results = await post(token, integrationId, [
      { use_case_slug: "contacts", timestamp: "9999-12-31T23:59:59Z", payload: { id: "F-1", name: "From the future" } },
      { use_case_slug: "contacts", payload: { id: "F-2", name: "Now" } },
    ]);
    expect(results[0]).toMatchObject({ status: "error" });
    expect(results[0]!.message).toMatch(/in the future/);
    expect(results[1]!.status).toBe("success");
    const refused = await waitFor(token, results[0]!.event_id);
    expect(refused.errors[0].code).toBe("TIMESTAMP_IN_FUTURE");
    const [real] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "F-1", name: "Real" } }]);
    expect((await waitFor(token, real!.event_id)).status).toBe("done");
    expect((await findOne(token, "contact", "external_id=F-1")).attributes.full_name).toBe("Real");
  });

  it("redacts personal data of events that are ignored and never processed", async () => {
    const { token, integrationId } = await setup();
    const current = (await api("GET", `/v2/integrations/${integrationId}`, { token })).body;
    const use_cases = current.use_cases.map(({ id, name, slug, type, enabled, configuration }: Record<string, unknown>) => ({ id, name, slug, type, enabled, configuration }));
    const put = await api("PUT", `/v2/integrations/${integrationId}`, { token, json: { name: current.name, environment_config: current.environment_config, settings: { redact_paths: ["email"], retention_days: 30 }, use_cases } });
    expect(put.status).toBe(200);
    const [ignored] = await post(token, integrationId, [{ event_name: "NobodyListens", payload: { id: "I-1", email: "jane@example.com" } }]);
    expect(ignored!.status).toBe("ignored");
    const row = await eventRow(integrationId, ignored!.event_id);
    expect(JSON.parse(row!.payload!)).toEqual({ id: "I-1", email: "[REDACTED]" });
  });
});

describe("tokens", () => {
  it("carry a key id and expire by default", async () => {
    const { tenant } = await tenantWithToken();
    const created = await createToken(tenant.id, ["integrations:read"]);
    expect(decodeProtectedHeader(created.token).kid).toMatch(/^k1-/);
    const row = await env.DB.prepare("SELECT expires_at FROM api_tokens WHERE id = ?").bind(created.id).first<{ expires_at: string | null }>();
    expect(Date.parse(row!.expires_at!) - Date.now()).toBeGreaterThan(89 * 86_400_000);
  });

  it("take their scopes from the token row, not the JWT", async () => {
    const { tenant } = await tenantWithToken();
    const created = await createToken(tenant.id, ["integrations:read", "integrations:write"]);
    expect((await api("GET", "/v2/integrations", { token: created.token })).status).toBe(200);
    await env.DB.prepare("UPDATE api_tokens SET scopes = ? WHERE id = ?").bind(JSON.stringify(["events:write"]), created.id).run();
    expectError(await api("GET", "/v2/integrations", { token: created.token }), 403, "FORBIDDEN");
  });
});

describe("who may use secrets", () => {
  it("needs secrets:use to make an environment value a webhook's signing key", async () => {
    const { tenant, integrationId } = await setup([], { SAP_PASSWORD: "s3cret" });
    const { token } = await createToken(tenant.id, ["integrations:read", "integrations:write"]);
    const oracle = { name: "Hook", slug: "hook", type: "inbound", configuration: tripMapping("SAP_PASSWORD") };
    expect(expectError(await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: oracle }), 403, "FORBIDDEN")).toMatchObject({ environment_keys: ["SAP_PASSWORD"] });
  });

  it("drops a secret's value when its key is re-declared as a plain String, so it is never shown unmasked", async () => {
    const { token, integrationId } = await setup([], { SAP_PASSWORD: "hunter2-secret" });
    const current = (await api("GET", `/v2/integrations/${integrationId}`, { token })).body;
    const use_cases = current.use_cases.map(({ id, name, slug, type, enabled, configuration }: Record<string, unknown>) => ({ id, name, slug, type, enabled, configuration }));
    const put = await api("PUT", `/v2/integrations/${integrationId}`, { token, json: { name: current.name, environment_config: [{ key: "SAP_PASSWORD", label: "pw", type: "String" }], use_cases } });
    expect(put.status).toBe(200);
    const environment = await api("GET", `/v1/integrations/${integrationId}/environment`, { token });
    expect(JSON.stringify(environment.body)).not.toContain("hunter2");
  });
});

describe("who may send secrets", () => {
  const outbound = (auth: Record<string, unknown>) => ({
    name: "Push", slug: "push", type: "outbound",
    configuration: { event_catalog_event: "contact.updated", mappings: [{ id: "m1", name: "M", jsonata_expression: "$", delivery: { type: "webhook", url: "https://erp.example.com/hook", auth } }] },
  });

  it("refuses an outbound delivery referencing {{env.*}} without the secrets:use scope, on every save route", async () => {
    const { tenant, integrationId } = await setup([], { SAP_PASSWORD: "s3cret" });
    const { token } = await createToken(tenant.id, ["integrations:read", "integrations:write"]);
    const leaky = outbound({ type: "api_key", header: "x-api-key", value: "{{env.SAP_PASSWORD}}" });
    const create = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: leaky });
    expect(expectError(create, 403, "FORBIDDEN")).toMatchObject({ required_scope: "secrets:use", environment_keys: ["SAP_PASSWORD"] });
    expectError(await api("POST", "/v2/integrations", { token, json: { name: "X", use_cases: [leaky] } }), 403, "FORBIDDEN");
    // A literal value (not from the environment) needs no extra scope.
    expect((await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: outbound({ type: "api_key", header: "x-api-key", value: "public-key" }) })).status).toBe(201);
    const privileged = await createToken(tenant.id, ["integrations:read", "integrations:write", "secrets:use"]);
    const ok = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token: privileged.token, json: { ...leaky, slug: "push-2" } });
    expect(ok.status).toBe(201);
    // Re-pointing it with a token lacking the scope is refused too.
    const moved = { ...leaky, slug: "push-2", configuration: { ...leaky.configuration, mappings: [{ ...leaky.configuration.mappings[0], delivery: { ...leaky.configuration.mappings[0]!.delivery, url: "https://attacker.example.net/" } }] } };
    expectError(await api("PUT", `/v1/integrations/${integrationId}/use-cases/${ok.body.id}`, { token, json: moved }), 403, "FORBIDDEN");
  });
});
