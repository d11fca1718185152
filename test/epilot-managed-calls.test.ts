// Secure proxies and managed calls (epilot's listSecureProxies, secureProxy, managedCallExecute)
// through the Worker against the fake archive (scripts/fake-archive.mjs, allowed past the private
// address rules by FILE_PROXY_ALLOWED_PRIVATE_HOSTS in tests): mapping both ways, the connector's
// OAuth2 credentials, and the hostile paths (escaping base_url, redirects to metadata addresses,
// partners echoing secrets, other tenants, malformed bodies).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AppError } from "../src/platform/errors";
import { Secrets } from "../src/platform/template";
import { ConnectorConfig, ManagedCallConfiguration } from "../src/managed-calls/configuration";
import { runManagedCall, type ManagedCallEnv } from "../src/managed-calls/service";
import { api, createToken, expectError, tenantWithToken } from "./helpers";

const ARCHIVE = env.ARCHIVE_URL;
const SECRET = `s3cret`;

const call = (slug: string, configuration: Record<string, unknown>, enabled = true) => ({ name: slug, slug, type: "managed_call", enabled, configuration });

async function connector(opts: { baseSuffix?: string; useCases?: unknown[] } = {}) {
  const ctx = await tenantWithToken();
  const client = `edge-${crypto.randomUUID()}`;
  const res = await api("POST", "/v2/integrations", {
    token: ctx.token,
    json: {
      name: "Archive connector",
      integration_type: "connector",
      environment_config: [
        { key: "ARCHIVE_URL", label: "Archive", type: "String" },
        { key: "ARCHIVE_CLIENT", label: "Client", type: "String" },
        { key: "ARCHIVE_SECRET", label: "Secret", type: "SecretString" },
      ],
      connector_config: {
        base_url: `{{{env.ARCHIVE_URL}}}${opts.baseSuffix ?? ""}`,
        auth: { type: "oauth2_client_credentials", token_url: "{{{env.ARCHIVE_URL}}}/oauth/token", client_id: "{{env.ARCHIVE_CLIENT}}", client_secret: "{{env.ARCHIVE_SECRET}}" },
      },
      use_cases: opts.useCases ?? [
        call("get-document", { operation: { method: "GET", path: "/api/documents/{{document_id}}" }, response_mapping: '{ "id": document_id, "name": filename, "bytes": size }' }),
        call("raw-document", { operation: { method: "GET", path: "/api/documents/{{document_id}}", headers: { "x-trace": "{{trace}}" } } }),
        call("echo", { operation: { method: "GET", path: "/api/documents/echo-{{n}}" } }),
        call("bounce", { operation: { method: "GET", path: "/redirect", query_params: { to: "{{to}}" } } }),
        call("off", { operation: { method: "GET", path: "/api/documents/x" } }, false),
        { name: "Archive proxy", slug: "archive-proxy", type: "secure_proxy", configuration: { vpc_mode: "static_ip" } },
        { name: "Partner VPN", slug: "vpn", type: "secure_proxy", configuration: { vpc_mode: "secure_link", allowed_domains: ["*.partner.example"], allowed_ips: ["10.1.0.0/16"] } },
      ],
    },
  });
  if (res.status !== 201) throw new Error(`integration: ${res.status} ${JSON.stringify(res.body)}`);
  const env_ = await api("PUT", `/v1/integrations/${res.body.id}/environment`, { token: ctx.token, json: { ARCHIVE_URL: ARCHIVE, ARCHIVE_CLIENT: client, ARCHIVE_SECRET: SECRET } });
  if (env_.status !== 200) throw new Error(`environment: ${env_.status} ${JSON.stringify(env_.body)}`);
  return { ...ctx, integrationId: res.body.id as string, useCases: res.body.use_cases as { id: string; slug: string }[] };
}

const execute = (token: string, slug: string, json: unknown) => api("POST", `/v1/managed-call/${slug}/execute`, { token, json });

describe("managed calls", () => {
  it("runs the operation with the connector's OAuth2 credentials and maps the answer", async () => {
    const { token, integrationId } = await connector();
    const res = await execute(token, "get-document", { integration_id: integrationId, payload: { document_id: "doc-size-42" }, correlation_id: "corr-1" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ id: "doc-size-42", name: "Rechnung doc-size-42.pdf", bytes: 42 });
    expect(res.headers.get("x-correlation-id")).toBe("corr-1");
    // Without a response_mapping the partner's answer comes back as it is; a payload value is URL-encoded into the path.
    const raw = await execute(token, "raw-document", { integration_id: integrationId, payload: { document_id: "a/b c", trace: "t1" } });
    expect(raw.status).toBe(200);
    expect(raw.body).toMatchObject({ document_id: "a/b c", download_path: "/files/a%2Fb%20c" });
    expect(raw.headers.get("x-correlation-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers partner failures with 502 and never echoes a secret", async () => {
    const { token, integrationId } = await connector();
    const res = await execute(token, "echo", { integration_id: integrationId, payload: { n: "1" } });
    expect(res.status).toBe(502);
    expect(res.body.code).toBe(res.body.error.code);
    expect(res.body.error.details).toMatchObject({ reason: "EXTERNAL_API_ERROR", status: 500 });
    expect(res.body.error.details.body).toBe(JSON.stringify({ error: "internal", received_authorization: "*****" }));
    expect(JSON.stringify(res.body)).not.toMatch(/tok-\d+/);
    expect(JSON.stringify(res.body)).not.toContain(SECRET);
    const missing = await execute(token, "get-document", { integration_id: integrationId, payload: { document_id: "missing-7" } });
    expect(missing.status).toBe(502);
    expect(missing.body.error.details).toMatchObject({ status: 404 });
  });

  it("refuses to leave base_url: payload paths, redirects to other hosts and metadata addresses", async () => {
    const { token, integrationId } = await connector();
    for (const to of ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "https://example.com/"]) {
      const res = await execute(token, "bounce", { integration_id: integrationId, payload: { to } });
      expect(res.status, to).toBe(400);
      expect(res.body.error.details).toMatchObject({ reason: "SSRF_BLOCKED" });
    }
    // A base_url with a path: a raw path from the payload cannot climb out of it.
    const scoped = await connector({ baseSuffix: "/api", useCases: [call("raw-path", { operation: { method: "GET", path: "{{{p}}}" } })] });
    const out = await execute(scoped.token, "raw-path", { integration_id: scoped.integrationId, payload: { p: "/../oauth/token" } });
    expect(out.status).toBe(400);
    expect(out.body.error.details).toMatchObject({ reason: "SSRF_BLOCKED" });
    const inside = await execute(scoped.token, "raw-path", { integration_id: scoped.integrationId, payload: { p: "/documents/doc-1" } });
    expect(inside.status).toBe(200);
    expect(inside.body.document_id).toBe("doc-1");
  });

  it("refuses malformed requests, unknown or disabled calls and other tenants with the envelope", async () => {
    const { token, tenant, integrationId } = await connector();
    for (const body of [{}, { integration_id: "not-a-uuid" }, { integration_id: integrationId, payload: [1] }, { integration_id: integrationId, payload: "x" }]) {
      const res = await execute(token, "get-document", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe("VALIDATION_FAILED");
    }
    expect((await execute(token, "Bad!Slug", { integration_id: integrationId })).status).toBe(400);
    expectError(await execute(token, "nope", { integration_id: integrationId }), 404, "NOT_FOUND");
    expectError(await execute(token, "off", { integration_id: integrationId }), 404, "NOT_FOUND");
    // A secure_proxy use case is not a managed call.
    expectError(await execute(token, "archive-proxy", { integration_id: integrationId }), 404, "NOT_FOUND");
    const other = await tenantWithToken();
    expectError(await execute(other.token, "get-document", { integration_id: integrationId, payload: { document_id: "d" } }), 404, "NOT_FOUND");
    expectError(await api("POST", "/v1/managed-call/get-document/execute", { json: { integration_id: integrationId } }), 401, "UNAUTHORIZED");
    const reader = await createToken(tenant.id, ["integrations:read"]);
    expectError(await execute(reader.token, "get-document", { integration_id: integrationId }), 403, "FORBIDDEN");
  });
});

describe("secure proxies", () => {
  it("lists the tenant's secure_proxy use cases, and no one else's", async () => {
    const { token, integrationId, useCases } = await connector();
    const res = await api("GET", "/v1/integrations/secure-proxies", { token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byslug = (slug: string) => useCases.find((u) => u.slug === slug)!.id;
    expect(res.body.secure_proxies).toEqual([
      { id: byslug("archive-proxy"), name: "Archive proxy", slug: "archive-proxy", enabled: true, vpc_mode: "static_ip", integration_id: integrationId, integration_name: "Archive connector" },
      { id: byslug("vpn"), name: "Partner VPN", slug: "vpn", enabled: true, vpc_mode: "secure_link", allowed_domains: ["*.partner.example"], allowed_ips: ["10.1.0.0/16"], integration_id: integrationId, integration_name: "Archive connector" },
    ]);
    const other = await tenantWithToken();
    expect((await api("GET", "/v1/integrations/secure-proxies", { token: other.token })).body).toEqual({ secure_proxies: [] });
    expectError(await api("GET", "/v1/integrations/secure-proxies", {}), 401, "UNAUTHORIZED");
  });

  it("forwards to the connector's host with its credentials and answers status, headers and body", async () => {
    const { token, integrationId, useCases } = await connector();
    const res = await api("POST", "/v1/secure-proxy", { token, json: { integration_id: integrationId, use_case_slug: "archive-proxy", url: `${ARCHIVE}/api/documents/doc-9`, method: "GET" } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.status_code).toBe(200);
    expect(res.body.headers["content-type"]).toContain("application/json");
    expect(res.body.body).toMatchObject({ document_id: "doc-9" });
    // Upstream statuses are passed on in status_code; an echoed credential is masked; by id works too.
    const echo = await api("POST", "/v1/secure-proxy", { token, json: { integration_id: integrationId, use_case_id: useCases.find((u) => u.slug === "archive-proxy")!.id, url: `${ARCHIVE}/api/documents/echo-2`, method: "GET" } });
    expect(echo.body.status_code).toBe(500);
    expect(echo.body.body.received_authorization).toBe("*****");
    const binary = await api("POST", "/v1/secure-proxy", { token, json: { integration_id: integrationId, use_case_slug: "archive-proxy", url: `${ARCHIVE}/files/doc-size-3`, method: "GET", response_type: "binary" } });
    expect(binary.body.status_code).toBe(200);
    expect(binary.body.body).toBe(btoa(String.fromCharCode(7, 38, 69)));
  });

  it("refuses targets the use case does not allow, private addresses and malformed requests", async () => {
    const { token, integrationId } = await connector();
    const proxy = (json: Record<string, unknown>) => api("POST", "/v1/secure-proxy", { token, json: { integration_id: integrationId, method: "GET", ...json } });
    for (const [slug, url] of [
      ["archive-proxy", "https://example.com/"],
      ["archive-proxy", "http://169.254.169.254/latest/meta-data/"],
      ["vpn", `${ARCHIVE}/api/documents/doc-1`],
      ["vpn", "http://10.2.0.1/"],
      ["vpn", "http://api.partner.example.evil.com/"],
    ]) {
      const res = await proxy({ use_case_slug: slug, url });
      expect(res.status, `${slug} ${url}`).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
    }
    for (const body of [
      { use_case_slug: "archive-proxy" },
      { use_case_slug: "archive-proxy", url: "ftp://example.com/x" },
      { use_case_slug: "archive-proxy", url: `${ARCHIVE}/x`, method: "TRACE" },
      { url: `${ARCHIVE}/x` },
      { use_case_slug: "archive-proxy", use_case_id: "0190a6f0-0000-7000-8000-000000000000", url: `${ARCHIVE}/x` },
      { use_case_slug: "archive-proxy", url: `${ARCHIVE}/x`, headers: { "x-a": "b\r\nx-injected: 1" } },
    ]) {
      const res = await proxy(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe("VALIDATION_FAILED");
    }
    expectError(await proxy({ use_case_slug: "archive-proxy", url: `${ARCHIVE}/x`, body: { a: 1 } }), 400, "BAD_REQUEST");
    expectError(await proxy({ use_case_slug: "get-document", url: `${ARCHIVE}/x` }), 404, "NOT_FOUND");
    const other = await tenantWithToken();
    expectError(await api("POST", "/v1/secure-proxy", { token: other.token, json: { integration_id: integrationId, use_case_slug: "archive-proxy", method: "GET", url: `${ARCHIVE}/api/documents/d` } }), 404, "NOT_FOUND");
  });
});

const receiver = new URL(env.RECEIVER_URL);
const archive = new URL(env.ARCHIVE_URL);
const testEnv: ManagedCallEnv = { ...env, FILE_PROXY_ALLOWED_PRIVATE_HOSTS: `${receiver.host},${archive.host}` };

const run = (config: unknown, connector: unknown, payload: Record<string, unknown>, environment: Record<string, string> = {}) =>
  runManagedCall(testEnv, crypto.randomUUID(), ManagedCallConfiguration.parse(config), ConnectorConfig.parse(connector), environment, payload, new Secrets());

async function failure(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected a failure");
}

// The executor itself, against the test receiver too (allowed here), to see exactly what is sent.
describe("runManagedCall", () => {
  it("sends the mapped body, rendered headers and the API key; maps the answer", async () => {
    const key = `mc-${crypto.randomUUID()}`;
    await fetch(`${env.RECEIVER_URL}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses: [{ status: 200, body: { items: [{ id: 1 }, { id: 2 }] } }] }) });
    const result = await run(
      {
        operation: { method: "POST", path: "/hook/{{key}}", headers: { "x-customer": "{{customer.id}}" } },
        request_mapping: '{ "name": customer.name, "count": $count(lines) }',
        response_mapping: "items.id",
      },
      { base_url: "{{{env.BASE}}}", auth: { type: "api_key", api_key_header: "X-Partner-Key", api_key: "{{env.KEY}}" } },
      { key, customer: { id: "C-1", name: "Ada" }, lines: [1, 2, 3] },
      { BASE: env.RECEIVER_URL, KEY: "k-123" },
    );
    expect(result).toEqual([1, 2]);
    const [seen] = (await (await fetch(`${env.RECEIVER_URL}/_requests/${key}`)).json()) as { headers: Record<string, string>; body: string }[];
    expect(JSON.parse(seen!.body)).toEqual({ name: "Ada", count: 3 });
    expect(seen!.headers["x-partner-key"]).toBe("k-123");
    expect(seen!.headers["x-customer"]).toBe("C-1");
    expect(seen!.headers["content-type"]).toBe("application/json");
  });

  it("keeps payload values inside their query parameter and the bearer token out of answers", async () => {
    // The receiver keys requests by everything after /hook/, query included: the exact encoding is the key.
    const key = `mc-${crypto.randomUUID()}?q=x%26admin%3D1`;
    await fetch(`${env.RECEIVER_URL}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses: [{ status: 200, body: { echoed: "token was tk-secret-9" } }] }) });
    const result = await run({ operation: { method: "GET", path: `/hook/${key.split("?")[0]}`, query_params: { q: "{{q}}" } } }, { base_url: env.RECEIVER_URL, auth: { type: "bearer", token: "{{env.T}}" } }, { q: "x&admin=1" }, { T: "tk-secret-9" });
    expect(result).toEqual({ echoed: "token was *****" });
    const [seen] = (await (await fetch(`${env.RECEIVER_URL}/_requests/${key}`)).json()) as { headers: Record<string, string> }[];
    expect(seen!.headers.authorization).toBe("Bearer tk-secret-9");
  });

  it("bounds time and size", async () => {
    const oauth = { base_url: env.ARCHIVE_URL, auth: { type: "oauth2_client_credentials", token_url: `${env.ARCHIVE_URL}/oauth/token`, client_id: "edge", client_secret: "s3cret" } };
    const slow = await failure(run({ operation: { method: "GET", path: "/api/documents/slow-1" }, timeout_seconds: 1 }, oauth, {}));
    expect(slow.code).toBe("UPSTREAM_TIMEOUT");
    const big = await failure(run({ operation: { method: "GET", path: "/files/big-size-6000000" } }, oauth, {}));
    expect(big.status).toBe(502);
    expect(big.message).toContain("larger than");
  });

  it("refuses a base_url at a private address that is not allow-listed", async () => {
    const blocked = await failure(run({ operation: { method: "GET", path: "/" } }, { base_url: "http://127.0.0.2:9/" }, {}));
    expect(blocked.status).toBe(400);
    expect(blocked.details).toMatchObject({ reason: "SSRF_BLOCKED" });
    const none = await failure(run({ operation: { method: "GET", path: "/" } }, {}, {}));
    expect(none.status).toBe(400);
  });
});
