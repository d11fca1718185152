// Hostile tenants against the epilot surface: environment values smuggled past `secrets:use` in
// template forms a text match misses, a deleted use case's id taken over by another tenant to inherit
// its endpoint's signing secret, and a webhook transform that makes the platform key sign another
// tenant's name.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { ALL_SCOPES, api, createToken, expectError, tenantWithToken } from "../helpers";

const withoutSecrets = ALL_SCOPES.filter((s) => s !== "secrets:use");
const RECEIVER = env.RECEIVER_URL;

describe("secrets:use cannot be bypassed", () => {
  it("refuses every template form of an environment value in connector_config and managed calls", async () => {
    const { tenant } = await tenantWithToken();
    const { token } = await createToken(tenant.id, withoutSecrets);
    for (const value of ["{{env.SAP_PASSWORD}}", "{{&env.SAP_PASSWORD}}", "{{{env.SAP_PASSWORD}}}", "{{#env.SAP_PASSWORD}}{{.}}{{/env.SAP_PASSWORD}}", "{{#env}}{{SAP_PASSWORD}}{{/env}}"]) {
      const connector = { base_url: "https://erp.example.com", auth: { type: "api_key", api_key: value } };
      expectError(await api("POST", "/v1/integrations", { token, json: { name: "c", connector_config: connector } }), 403, "FORBIDDEN");
      const managed = { name: "m", type: "managed_call", enabled: true, configuration: { operation: { method: "GET", path: `/x/${value}` } } };
      const res = await api("POST", "/v2/integrations", { token, json: { name: "m", use_cases: [managed] } });
      expect(res.status, value).toBe(403);
    }
    // Nothing was stored.
    expect((await api("GET", "/v2/integrations", { token })).body.integrations).toEqual([]);
  });

  it("refuses webhook configurations sending environment values in custom headers or OAuth parameters", async () => {
    const { tenant } = await tenantWithToken();
    const { token } = await createToken(tenant.id, withoutSecrets);
    const base = { name: "leak", eventName: "contact.updated", url: "https://erp.example.com/hook" };
    expectError(await api("POST", "/v1/webhooks/configs", { token, json: { ...base, payloadConfiguration: { custom_headers: { "x-leak": "{{env.SAP_PASSWORD}}" } } } }), 403, "FORBIDDEN");
    const oauth = { authType: "OAUTH_CLIENT_CREDENTIALS", oauthConfig: { clientId: "id", clientSecret: "s", endpoint: "https://erp.example.com/token", httpMethod: "POST", customParameterList: [{ type: "body", key: "k", value: "{{env.SAP_PASSWORD}}" }] } };
    expectError(await api("POST", "/v1/webhooks/configs", { token, json: { ...base, auth: oauth } }), 403, "FORBIDDEN");
    expect((await api("GET", "/v1/webhooks/configs", { token })).body).toHaveLength(0);
  });
});

describe("use case ids", () => {
  it("refuses another tenant a deleted use case's id, which its endpoint (signing secret, deliveries) still carries", async () => {
    const b = await tenantWithToken("B");
    const outboundUseCase = (id?: string) => ({
      ...(id && { id }),
      name: "push",
      type: "outbound",
      enabled: true,
      configuration: { event_catalog_event: "contact.updated", mappings: [{ id: "main", name: "m", jsonata_expression: "{ 'a': 1 }", delivery: { type: "webhook", url: `${RECEIVER}/hook/b-${Date.now()}` } }] },
    });
    const created = await api("POST", "/v2/integrations", { token: b.token, json: { name: "B", use_cases: [outboundUseCase()] } });
    expect(created.status).toBe(201);
    const useCaseId: string = created.body.use_cases[0].id;
    // The endpoint row exists once its secret is read.
    const secret = await api("POST", `/v1/integrations/${created.body.id}/outbound/endpoints/${useCaseId}/main/secret`, { token: b.token, json: {} });
    expect(secret.status).toBeLessThan(300);
    expect((await api("DELETE", `/v1/integrations/${created.body.id}/use-cases/${useCaseId}`, { token: b.token })).status).toBe(200);

    const a = await tenantWithToken("A");
    const stolen = await api("POST", "/v2/integrations", { token: a.token, json: { name: "A", use_cases: [outboundUseCase(useCaseId)] } });
    expectError(stolen, 409, "CONFLICT");
  });
});

describe("webhook configuration triggers", () => {
  it("keeps the caller's organization in what the platform key signs, whatever the transform says", async () => {
    const { tenant, token } = await tenantWithToken();
    const key = `org-${Date.now()}`;
    const config = await api("POST", "/v1/webhooks/configs", {
      token,
      json: { name: "t", eventName: "contact.updated", url: `${RECEIVER}/hook/${key}`, jsonataExpression: '{ "metadata": { "organization_id": "someone-else" }, "x": 1 }' },
    });
    expect(config.status).toBe(201);
    const sent = await api("POST", `/v1/webhooks/configs/${config.body.id}/trigger?sync=true`, { token, json: { metadata: { organization_id: tenant.id } } });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    const [request] = await vi.waitFor(async () => {
      const requests = (await (await fetch(`${RECEIVER}/_requests/${key}`)).json()) as { body: string }[];
      expect(requests).toHaveLength(1);
      return requests;
    });
    expect(JSON.parse(request!.body)).toEqual({ metadata: { organization_id: tenant.id }, x: 1 });
  });
});
