// epilot's Webhooks API (webhooks.json) on erp-edge: webhook configurations, the deliveries made
// through them (trigger, events, replay), outbound mappings delivering by webhook_id, the public key
// of v1a signatures, and acknowledgeTracking. Against the real receiver on loopback.
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { api, createToken, eventually, expectError, tenantWithToken } from "./helpers";

const RECEIVER = env.RECEIVER_URL;
let keys = 0;
const newKey = () => `wc${Date.now().toString(36)}${keys++}`;
const script = (key: string, responses: unknown[]) => fetch(`${RECEIVER}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses }) });
const received = async (key: string): Promise<{ headers: Record<string, string>; body: string; status: number }[]> => (await fetch(`${RECEIVER}/_requests/${key}`)).json();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const basicConfig = (key: string, extra: Record<string, unknown> = {}) => ({
  name: "ERP orders",
  eventName: "OrderPlaced",
  url: `${RECEIVER}/hook/${key}`,
  httpMethod: "POST",
  enabled: true,
  auth: { authType: "BASIC", basicAuthConfig: { username: "erp-user", password: "s3cret!" } },
  filter: { keyToFilter: "order.type", supportedValues: ["b2b"] },
  payloadConfiguration: { hydrate_entity: true, custom_headers: { "x-tenant-ref": "acme" } },
  protected: false,
  ...extra,
});

async function createConfig(token: string, body: Record<string, unknown>) {
  const res = await api("POST", "/v1/webhooks/configs", { token, json: body });
  if (res.status !== 201) throw new Error(`createConfig: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Verifies a v1a (Ed25519) signature of a received request with the served public key. */
async function verifyV1a(publicKeyPem: string, headers: Record<string, string>, body: string): Promise<boolean> {
  const der = Uint8Array.from(atob(publicKeyPem.replace(/-----[^-]+-----|\s/g, "")), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
  const v1a = headers["webhook-signature"]!.split(" ").find((s) => s.startsWith("v1a,"));
  if (!v1a) return false;
  const signature = Uint8Array.from(atob(v1a.slice(4)), (c) => c.charCodeAt(0));
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, new TextEncoder().encode(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`));
}

describe("public key", () => {
  it("serves the Ed25519 key without authentication, the same on every call and for every orgId", async () => {
    const a = await api("GET", "/v1/webhooks/.well-known/public-key?orgId=any-org");
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ algorithm: "ed25519", issuer: "erp-edge" });
    expect(a.body.public_key).toMatch(/^-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA[\s\S]+-----END PUBLIC KEY-----\n$/);
    const b = await api("GET", "/v1/webhooks/.well-known/public-key?orgId=other");
    expect(b.body.public_key).toBe(a.body.public_key);
    // epilot requires orgId; erp-edge's key is the platform's, so leaving it out is accepted.
    expect((await api("GET", "/v1/webhooks/.well-known/public-key")).body.public_key).toBe(a.body.public_key);
    const tooLong = await api("GET", `/v1/webhooks/.well-known/public-key?orgId=${"x".repeat(300)}`);
    expectError(tooLong, 400, "VALIDATION_FAILED");
    expect(tooLong.body.code).toBe("VALIDATION_FAILED");
  });
});

describe("webhook configurations", () => {
  it("creates, reads, lists, replaces and deletes a configuration, keeping every field and never answering secrets", async () => {
    const { tenant, token } = await tenantWithToken();
    const created = await createConfig(token, basicConfig(newKey(), { _manifest: ["123e4567-e89b-12d3-a456-426614174000"], eventVersion: "1.0", status: "active" }));
    expect(created.id).toMatch(UUID);
    expect(created.signingSecret).toMatch(/^whsec_/);
    expect(created).toMatchObject({
      orgId: tenant.id, name: "ERP orders", eventName: "OrderPlaced", httpMethod: "POST", enabled: true, eventVersion: "1.0", status: "active",
      filter: { keyToFilter: "order.type", supportedValues: ["b2b"] }, payloadConfiguration: { hydrate_entity: true, custom_headers: { "x-tenant-ref": "acme" } },
      retryPolicy: { enabled: true, maxAttempts: 3 }, _manifest: ["123e4567-e89b-12d3-a456-426614174000"], protected: false,
      auth: { authType: "BASIC", basicAuthConfig: { username: "erp-user" } },
    });
    expect(created.auth.basicAuthConfig.password).toBeUndefined();
    expect(created.creationTime).toBe(created.updatedTime);

    // Sealed at rest: the password is not in the row's text.
    const row = await env.DB.prepare("SELECT * FROM webhook_configs WHERE id = ?").bind(created.id).first<Record<string, string>>();
    expect(JSON.stringify(row)).not.toContain("s3cret!");

    const got = await api("GET", `/v1/webhooks/configs/${created.id}`, { token });
    expect(got.status).toBe(200);
    expect(got.body.signingSecret).toBeUndefined();
    expect(got.body.auth.basicAuthConfig).toEqual({ username: "erp-user" });

    await createConfig(token, { name: "other", eventName: "ContractSigned" });
    const all = await api("GET", "/v1/webhooks/configs", { token });
    expect(all.body.map((c: { name: string }) => c.name)).toEqual(["ERP orders", "other"]);
    const filtered = await api("GET", "/v1/webhooks/configs?eventName=ContractSigned", { token });
    expect(filtered.body.map((c: { name: string }) => c.name)).toEqual(["other"]);

    const events = await api("GET", "/v1/webhooks/configured-events", { token });
    expect(events.body).toEqual(expect.arrayContaining([{ eventName: "OrderPlaced", eventLabel: "OrderPlaced" }, { eventName: "ContractSigned", eventLabel: "ContractSigned" }]));

    // PUT replaces; the omitted password and retryPolicy keep their stored values.
    const put = await api("PUT", `/v1/webhooks/configs/${created.id}`, {
      token,
      json: { ...basicConfig(newKey(), { name: "renamed", auth: { authType: "BASIC", basicAuthConfig: { username: "erp-user" } } }), url: created.url, id: "ignored" },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id: created.id, name: "renamed", retryPolicy: { enabled: true, maxAttempts: 3 }, creationTime: created.creationTime });
    const example = await api("POST", `/v1/webhooks/configs/${created.id}/example`, { token, json: { automation_id: "auto-1" } });
    expect(example.status).toBe(200);
    expect(example.body).toMatchObject({ metadata: { organization_id: tenant.id, webhook_id: created.id, webhook_name: "renamed" }, relations: [] });

    const del = await api("DELETE", `/v1/webhooks/configs/${created.id}`, { token });
    expect(del.status).toBe(204);
    expectError(await api("GET", `/v1/webhooks/configs/${created.id}`, { token }), 404, "NOT_FOUND");
    expectError(await api("DELETE", `/v1/webhooks/configs/${created.id}`, { token }), 404, "NOT_FOUND");
  });

  it("refuses malformed, unsafe and foreign requests with the error envelope, writing nothing", async () => {
    const { tenant, token } = await tenantWithToken();
    const other = await tenantWithToken();
    const bad = [
      {},
      { name: "x" },
      { name: "x", eventName: "E", url: "ftp://example.com/" },
      { name: "x", eventName: "E", url: "http://user:pw@example.com/" },
      { name: "x", eventName: "E", auth: { authType: "BASIC" } },
      { name: "x", eventName: "E", auth: { authType: "NOPE" } },
      { name: "x", eventName: "E", payloadConfiguration: { custom_headers: { "bad header": "v" } } },
      { name: "x", eventName: "E", payloadConfiguration: { custom_headers: { Host: "internal" } } },
      { name: "x", eventName: "E", retryPolicy: { enabled: true, maxAttempts: 9 } },
      { name: "x", eventName: "E", eventVersion: "v1" },
      { name: "x", eventName: "E", jsonataExpression: "{ unclosed" },
      { name: "x", eventName: "E", secureProxy: { integration_id: "not-a-uuid", use_case_slug: "s" } },
    ];
    for (const body of bad) expectError(await api("POST", "/v1/webhooks/configs", { token, json: body }), 400, "VALIDATION_FAILED");
    // Private and metadata addresses are refused at save time.
    for (const url of ["http://169.254.169.254/latest", "http://10.0.0.1/hook", "http://localhost:8080/"]) {
      expectError(await api("POST", "/v1/webhooks/configs", { token, json: { name: "x", eventName: "E", url } }), 400, "VALIDATION_FAILED");
    }
    const notJson = await api("POST", "/v1/webhooks/configs", { token, body: "name=x", headers: { "content-type": "text/plain" } });
    expect(notJson.status).toBeGreaterThanOrEqual(400);
    expect(notJson.status).toBeLessThan(500);
    const broken = await api("POST", "/v1/webhooks/configs", { token, body: "{", headers: { "content-type": "application/json" } });
    expect(broken.status).toBe(400);
    expect(broken.body.code).toBeDefined();
    expect((await api("GET", "/v1/webhooks/configs", { token })).body).toEqual([]);

    expectError(await api("GET", "/v1/webhooks/configs"), 401, "UNAUTHORIZED");
    const readOnly = await createToken(tenant.id, ["integrations:read"]);
    expectError(await api("POST", "/v1/webhooks/configs", { token: readOnly.token, json: { name: "x", eventName: "E" } }), 403, "FORBIDDEN");

    // Another tenant's configuration does not exist for this one.
    const theirs = await createConfig(other.token, basicConfig(newKey()));
    expectError(await api("GET", `/v1/webhooks/configs/${theirs.id}`, { token }), 404, "NOT_FOUND");
    expectError(await api("PUT", `/v1/webhooks/configs/${theirs.id}`, { token, json: { name: "mine", eventName: "E" } }), 404, "NOT_FOUND");
    expectError(await api("DELETE", `/v1/webhooks/configs/${theirs.id}`, { token }), 404, "NOT_FOUND");
    expectError(await api("POST", `/v1/webhooks/configs/${theirs.id}/trigger`, { token, json: { metadata: { organization_id: "x" } } }), 404, "NOT_FOUND");
    expectError(await api("POST", `/v2/webhooks/configs/${theirs.id}/events`, { token, json: {} }), 404, "NOT_FOUND");
    expect((await api("GET", `/v1/webhooks/configs/${theirs.id}`, { token: other.token })).body.name).toBe("ERP orders");
  });

  it("needs secrets:use to send environment values, or to move stored secrets to another host", async () => {
    const { tenant, token } = await tenantWithToken();
    const plain = await createToken(tenant.id, ["integrations:read", "integrations:write"]);
    const envAuth = { authType: "API_KEY", apiKeyConfig: { keyName: "x-api-key", keyValue: "{{ env.ERP_KEY }}", keyValueIsEnvVar: true } };
    const refused = await api("POST", "/v1/webhooks/configs", { token: plain.token, json: { name: "x", eventName: "E", auth: envAuth } });
    expect(expectError(refused, 403, "FORBIDDEN")).toMatchObject({ required_scope: "secrets:use" });
    const allowed = await createConfig(token, { name: "x", eventName: "E", url: `${RECEIVER}/hook/a`, auth: envAuth });
    // An environment reference is not a secret: it is shown.
    expect(allowed.auth.apiKeyConfig).toEqual({ keyName: "x-api-key", keyValue: "{{ env.ERP_KEY }}", keyValueIsEnvVar: true });

    const literal = await createConfig(plain.token, basicConfig(newKey()));
    const moved = await api("PUT", `/v1/webhooks/configs/${literal.id}`, {
      token: plain.token,
      json: { ...basicConfig("elsewhere"), auth: { authType: "BASIC", basicAuthConfig: { username: "erp-user" } } },
    });
    expectError(moved, 403, "FORBIDDEN");
  });
});

describe("trigger, events and replay", () => {
  it("sends a synchronous trigger with the config's auth, headers and both signatures, and lists it as an event", async () => {
    const { tenant, token } = await tenantWithToken();
    const key = newKey();
    await script(key, [{ status: 200, body: { accepted: true } }]);
    const config = await createConfig(token, basicConfig(key));
    const res = await api("POST", `/v1/webhooks/configs/${config.id}/trigger?sync=true`, { token, json: { metadata: { organization_id: "epilot-org", correlation_id: "c-1" }, order: { id: "o1" } } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", status_code: "200", body: { accepted: true } });
    const [request] = await received(key);
    expect(request!.headers.authorization).toBe(`Basic ${btoa("erp-user:s3cret!")}`);
    expect(request!.headers["x-tenant-ref"]).toBe("acme");
    const body = JSON.parse(request!.body);
    expect(body).toMatchObject({ order: { id: "o1" }, metadata: { organization_id: tenant.id, webhook_id: config.id, webhook_name: "ERP orders", correlation_id: "c-1" } });
    // v1 (HMAC, the config's whsec_) verifies with the standard library; v1a with the served public key.
    const { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig } = request!.headers;
    expect(() => new Webhook(config.signingSecret).verify(request!.body, { "webhook-id": id!, "webhook-timestamp": ts!, "webhook-signature": sig! })).not.toThrow();
    const pem = (await api("GET", "/v1/webhooks/.well-known/public-key?orgId=x")).body.public_key;
    expect(await verifyV1a(pem, request!.headers, request!.body)).toBe(true);
    expect(await verifyV1a(pem, request!.headers, `${request!.body} `)).toBe(false);

    const v2 = await api("POST", `/v2/webhooks/configs/${config.id}/events`, { token, json: { limit: 10 } });
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({ has_more: false, next_cursor: null });
    expect(v2.body.data).toHaveLength(1);
    expect(v2.body.data[0]).toMatchObject({
      event_id: res.body.event_id, org_id: tenant.id, webhook_config_id: config.id, status: "succeeded", event_name: "OrderPlaced",
      http_method: "POST", http_response: { status_code: 200 }, retry_attempt: 0, url: config.url,
    });
    expect(JSON.parse(v2.body.data[0].payload)).toMatchObject({ order: { id: "o1" } });
    const one = await api("GET", `/v1/webhooks/configs/${config.id}/events/${res.body.event_id}`, { token });
    expect(one.body.event_id).toBe(res.body.event_id);
    expectError(await api("GET", `/v1/webhooks/configs/${config.id}/events/01NOPE`, { token }), 404, "NOT_FOUND");

    // Replay sends it again, as a new event.
    expect((await api("POST", `/v1/webhooks/configs/${config.id}/events/${res.body.event_id}/replay`, { token })).status).toBe(204);
    await eventually(() => received(key), (r) => r.length === 2, "replayed delivery");
    expectError(await api("POST", `/v1/webhooks/configs/${config.id}/events/01NOPE/replay`, { token }), 404, "NOT_FOUND");
    const batch = await api("POST", `/v1/webhooks/configs/${config.id}/events/replay-batch`, { token, json: { eventIds: [res.body.event_id, "01NOPE"] } });
    expect(batch.status).toBe(202);
    expect(batch.body).toEqual({ replayed_event_ids: [res.body.event_id] });
    await eventually(() => received(key), (r) => r.length === 3, "batch-replayed delivery");
    expectError(await api("POST", `/v1/webhooks/configs/${config.id}/events/replay-batch`, { token, json: { eventIds: [] } }), 400, "VALIDATION_FAILED");

    const v1 = await eventually(() => api("GET", `/v1/webhooks/configs/${config.id}/events?status=succeeded`, { token }), (r) => r.body.data?.length === 3, "three succeeded events");
    expect(v1.body.cursor).toBeUndefined();
    expectError(await api("GET", `/v1/webhooks/configs/${config.id}/events?status=bogus`, { token }), 400, "VALIDATION_FAILED");
  });

  it("queues an asynchronous trigger with the retry policy, pages events with a cursor, and refuses hostile triggers", async () => {
    const { token } = await tenantWithToken();
    const key = newKey();
    await script(key, [503]);
    const config = await createConfig(token, { name: "async", eventName: "OrderPlaced", url: `${RECEIVER}/hook/${key}`, retryPolicy: { enabled: true, maxAttempts: 2 } });
    const first = await api("POST", `/v1/webhooks/configs/${config.id}/trigger`, { token, json: { metadata: { organization_id: "x" }, n: 1 } });
    expect(first.status).toBe(200);
    expect(first.body.event_id).toBeTruthy();
    const event = await eventually(() => api("GET", `/v1/webhooks/configs/${config.id}/events/${first.body.event_id}`, { token }), (r) => r.body.status === "succeeded", "retried delivery");
    expect(event.body).toMatchObject({ retry_attempt: 1, attempts: 2 });
    await api("POST", `/v1/webhooks/configs/${config.id}/trigger?sync=true`, { token, json: { metadata: { organization_id: "x" }, n: 2 } });
    await api("POST", `/v1/webhooks/configs/${config.id}/trigger?sync=true`, { token, json: { metadata: { organization_id: "x" }, n: 3 } });

    const page1 = await api("POST", `/v2/webhooks/configs/${config.id}/events`, { token, json: { limit: 2 } });
    expect(page1.body.has_more).toBe(true);
    expect(page1.body.data).toHaveLength(2);
    const page2 = await api("POST", `/v2/webhooks/configs/${config.id}/events`, { token, json: { limit: 2, cursor: page1.body.next_cursor } });
    expect(page2.body).toMatchObject({ has_more: false, next_cursor: null });
    expect(page2.body.data.map((e: { event_id: string }) => e.event_id)).toEqual([first.body.event_id]);
    const none = await api("POST", `/v2/webhooks/configs/${config.id}/events`, { token, json: { status: "failed" } });
    expect(none.body.data).toEqual([]);
    const later = await api("POST", `/v2/webhooks/configs/${config.id}/events`, { token, json: { timestamp: { from: "2999-01-01T00:00:00Z" } } });
    expect(later.body.data).toEqual([]);
    expectError(await api("POST", `/v2/webhooks/configs/${config.id}/events`, { token, json: { limit: 26 } }), 400, "VALIDATION_FAILED");
    expectError(await api("GET", `/v1/webhooks/configs/${config.id}/events?cursor=%%%`, { token }), 400, "INVALID_CURSOR");

    expectError(await api("POST", `/v1/webhooks/configs/${config.id}/trigger`, { token, json: { order: 1 } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `/v1/webhooks/configs/${config.id}/trigger`, { token, json: { metadata: { organization_id: "x" }, big: "x".repeat(1_000_001) } }), 413, "PAYLOAD_TOO_LARGE");
  });

  it("reports a failed synchronous trigger and a disabled configuration as failed events, not crashes", async () => {
    const { token } = await tenantWithToken();
    const key = newKey();
    await script(key, [{ status: 422, body: { error: "bad order" } }]);
    const config = await createConfig(token, { name: "f", eventName: "E", url: `${RECEIVER}/hook/${key}` });
    const failed = await api("POST", `/v1/webhooks/configs/${config.id}/trigger?sync=true`, { token, json: { metadata: { organization_id: "x" } } });
    expect(failed.body).toMatchObject({ status: "failed", status_code: "422", body: { error: "bad order" } });
    await api("PUT", `/v1/webhooks/configs/${config.id}`, { token, json: { name: "f", eventName: "E", url: config.url, enabled: false } });
    const disabled = await api("POST", `/v1/webhooks/configs/${config.id}/trigger?sync=true`, { token, json: { metadata: { organization_id: "x" } } });
    expect(disabled.body).toMatchObject({ status: "failed", message: expect.stringContaining("disabled") });
    expect((await received(key)).length).toBe(1);
  });

  it("tests OAuth client credentials against the token endpoint", async () => {
    const { token } = await tenantWithToken();
    const tokenKey = newKey();
    await script(tokenKey, [{ status: 200, body: { access_token: "tok-1", expires_in: 3600, token_type: "Bearer" } }, 500]);
    const oauth = await createConfig(token, {
      name: "o", eventName: "E", url: `${RECEIVER}/hook/${newKey()}`,
      auth: { authType: "OAUTH_CLIENT_CREDENTIALS", oauthConfig: { clientId: "cid", clientSecret: "csecret", endpoint: `${RECEIVER}/hook/${tokenKey}`, httpMethod: "POST", customParameterList: [{ type: "body", key: "audience", value: "erp" }] } },
    });
    expect(oauth.auth.oauthConfig.clientSecret).toBeUndefined();
    const ok = await api("POST", `/v1/webhooks/configs/${oauth.id}/test-oauth`, { token });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ success: true, expires_in: 3600, token_type: "Bearer", message: "OAuth token exchange successful" });
    const [tokenRequest] = await received(tokenKey);
    expect(new URLSearchParams(tokenRequest!.body).get("client_secret")).toBe("csecret");
    expect(new URLSearchParams(tokenRequest!.body).get("audience")).toBe("erp");
    const failed = await api("POST", `/v1/webhooks/configs/${oauth.id}/test-oauth`, { token });
    expectError(failed, 500, "INTERNAL");
    expect(failed.body.message).toMatch(/OAuth token exchange failed/);
    const basic = await createConfig(token, basicConfig(newKey()));
    expectError(await api("POST", `/v1/webhooks/configs/${basic.id}/test-oauth`, { token }), 400, "BAD_REQUEST");
  });
});

describe("outbound mappings delivering by webhook_id", () => {
  const integrationWith = async (token: string, webhookId: string) => {
    const res = await api("POST", "/v2/integrations", {
      token,
      json: {
        name: "ERP",
        use_cases: [{
          name: "Orders out", slug: "orders-out", type: "outbound",
          configuration: { event_catalog_event: "OrderPlaced", mappings: [{ id: "main", name: "to ERP", jsonata_expression: "{ \"order\": order }", delivery: { type: "webhook", webhook_id: webhookId } }] },
        }],
      },
    });
    if (res.status !== 201) throw new Error(`integration: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const emit = (token: string, payload: Record<string, unknown>) => api("POST", "/v1/events", { token, json: { event_name: "OrderPlaced", payload } });

  it("sends to the configuration's url with its auth, follows a changed configuration, and dead-letters when it is disabled or gone", async () => {
    const { token } = await tenantWithToken();
    const [first, second] = [newKey(), newKey()];
    const config = await createConfig(token, basicConfig(first));
    const integration = await integrationWith(token, config.id);

    expect((await emit(token, { order: "A" })).status).toBe(202);
    const [a] = await eventually(() => received(first), (r) => r.length === 1, "delivery through the configuration");
    expect(JSON.parse(a!.body)).toEqual({ order: "A" });
    expect(a!.headers.authorization).toBe(`Basic ${btoa("erp-user:s3cret!")}`);
    expect(a!.headers["webhook-signature"]).toMatch(/^v1,\S+ v1a,\S+$/);

    const endpoints = await api("GET", `/v1/integrations/${integration.id}/outbound/endpoints`, { token });
    expect(endpoints.body.endpoints[0]).toMatchObject({ webhook_id: config.id, url: null });
    const events = await eventually(() => api("POST", `/v2/webhooks/configs/${config.id}/events`, { token, json: {} }), (r) => r.body.data?.[0]?.status === "succeeded", "event of the mapping");
    expect(events.body.data[0]).toMatchObject({ webhook_config_id: config.id, use_case_id: integration.use_cases[0].id, mapping_id: "main" });

    // A changed url takes effect for the next delivery (secrets re-sent: moving them needs them or secrets:use).
    await api("PUT", `/v1/webhooks/configs/${config.id}`, { token, json: basicConfig(second) });
    await emit(token, { order: "B" });
    await eventually(() => received(second), (r) => r.length === 1, "delivery to the new url");
    expect((await received(first)).length).toBe(1);

    // Disabled: the delivery is dead-lettered with a clear error.
    await api("PUT", `/v1/webhooks/configs/${config.id}`, { token, json: basicConfig(second, { enabled: false }) });
    await emit(token, { order: "C" });
    const dlq = await eventually(() => api("GET", `/v1/integrations/${integration.id}/outbound/dlq`, { token }), (r) => r.body.deliveries?.length === 1, "dead letter");
    expect(dlq.body.deliveries[0].last_error).toMatch(/webhook configuration '.+' is disabled/);

    // Gone: the same, saying so.
    expect((await api("DELETE", `/v1/webhooks/configs/${config.id}`, { token })).status).toBe(204);
    await emit(token, { order: "D" });
    const gone = await eventually(() => api("GET", `/v1/integrations/${integration.id}/outbound/dlq`, { token }), (r) => r.body.deliveries?.length === 2, "second dead letter");
    expect(gone.body.deliveries[1].last_error).toMatch(/webhook configuration '.+' not found/);
    expect((await received(second)).length).toBe(1);
  });
});

describe("acknowledgeTracking", () => {
  it("answers 404 for an unknown ack_id and 400 without one, with the error envelope", async () => {
    const { token } = await tenantWithToken();
    const unknown = await api("POST", "/v1/erp/tracking/acknowledgement", { token, json: { ack_id: "nope" } });
    expectError(unknown, 404, "NOT_FOUND");
    expect(unknown.body).toMatchObject({ code: "NOT_FOUND", message: expect.any(String) });
    expectError(await api("POST", "/v1/erp/tracking/acknowledgement", { token, json: {} }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v1/erp/tracking/acknowledgement", { json: { ack_id: "x" } }), 401, "UNAUTHORIZED");
  });

  it("answers epilot's message beside erp-edge's fields for an outbound event", async () => {
    const { token } = await tenantWithToken();
    const key = newKey();
    const res = await api("POST", "/v2/integrations", {
      token,
      json: {
        name: "ERP",
        use_cases: [{
          name: "Orders out", slug: "orders-out", type: "outbound",
          configuration: { event_catalog_event: "OrderPlaced", ack_tracking: "on", mappings: [{ id: "main", name: "m", jsonata_expression: "{ \"order\": order }", delivery: { type: "webhook", url: `${RECEIVER}/hook/${key}` } }] },
        }],
      },
    });
    expect(res.status).toBe(201);
    const emitted = await api("POST", "/v1/events", { token, json: { event_name: "OrderPlaced", payload: { order: "A" } } });
    await eventually(() => received(key), (r) => r.length === 1, "delivery");
    const ack = await eventually(() => api("POST", "/v1/erp/tracking/acknowledgement", { token, json: { ack_id: emitted.body.ack_id } }), (r) => r.status === 200, "ack");
    expect(ack.body).toMatchObject({ message: expect.any(String), ack_id: emitted.body.ack_id, status: "processed", direction: "outbound", acknowledged: 1 });
  });
});
