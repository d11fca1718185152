// Outbound webhook auth against a real local server: basic and api_key headers from environment
// values, and OAuth2 client credentials fetched from a token endpoint (the test receiver plays it).
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { api, tenantWithToken } from "../helpers";
import { contactMapping, post } from "../inbound-helpers";

const RECEIVER = env.RECEIVER_URL;
let n = 0;
const newKey = () => `auth${Date.now().toString(36)}${n++}`;
const script = (key: string, responses: unknown[]) => fetch(`${RECEIVER}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses }) });
const received = async (key: string) => (await fetch(`${RECEIVER}/_requests/${key}`)).json() as Promise<{ headers: Record<string, string>; body: string }[]>;

async function setupWith(auth: Record<string, unknown>, hookKey: string) {
  const { token } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", {
    token,
    json: {
      name: "ERP",
      environment_config: [{ key: "USER", label: "user", type: "String" }, { key: "PASS", label: "password", type: "SecretString" }],
      use_cases: [
        { name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping },
        {
          name: "Push", slug: "push", type: "outbound",
          configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name: "M", jsonata_expression: "entity.unique_ids", delivery: { type: "webhook", url: `${RECEIVER}/hook/${hookKey}`, auth } }] },
        },
      ],
    },
  });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  await api("PUT", `/v1/integrations/${res.body.id}/environment`, { token, json: { USER: "erp-user", PASS: "s3cret" } });
  return { token, integrationId: res.body.id as string };
}

async function deliveredTo(key: string) {
  return vi.waitFor(async () => {
    const requests = await received(key);
    expect(requests.length).toBeGreaterThan(0);
    return requests;
  }, { timeout: 15_000, interval: 50 });
}

describe("outbound webhook auth", () => {
  it("basic: user and password from the environment", async () => {
    const hook = newKey();
    const s = await setupWith({ type: "basic", username: "{{env.USER}}", password: "{{env.PASS}}" }, hook);
    await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "B-1", name: "b" } }]);
    const [request] = await deliveredTo(hook);
    expect(request!.headers.authorization).toBe(`Basic ${btoa("erp-user:s3cret")}`);
  });

  it("api_key: a header of the configured name", async () => {
    const hook = newKey();
    const s = await setupWith({ type: "api_key", header: "x-erp-key", value: "{{env.PASS}}" }, hook);
    await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "K-1", name: "k" } }]);
    const [request] = await deliveredTo(hook);
    expect(request!.headers["x-erp-key"]).toBe("s3cret");
  });

  it("oauth2_client_credentials: fetches a token from the token endpoint, then sends it as a bearer", async () => {
    const hook = newKey();
    const tokenKey = newKey();
    await script(tokenKey, [{ status: 200, body: { access_token: "issued-token-123", token_type: "Bearer", expires_in: 3600 } }]);
    const s = await setupWith({ type: "oauth2_client_credentials", token_url: `${RECEIVER}/hook/${tokenKey}`, client_id: "{{env.USER}}", client_secret: "{{env.PASS}}", scope: "erp.write" }, hook);
    await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "O-1", name: "o" } }]);
    const [request] = await deliveredTo(hook);
    expect(request!.headers.authorization).toBe("Bearer issued-token-123");
    const [tokenRequest] = await received(tokenKey);
    const form = new URLSearchParams(tokenRequest!.body);
    expect(Object.fromEntries(form)).toEqual({ grant_type: "client_credentials", client_id: "erp-user", client_secret: "s3cret", scope: "erp.write" });
  });

  it("oauth2_client_credentials: a token endpoint that redirects is not followed and nothing is delivered", async () => {
    const hook = newKey();
    const tokenKey = newKey();
    const elsewhere = newKey();
    await script(tokenKey, [{ status: 302, location: `${RECEIVER}/hook/${elsewhere}` }, { status: 302, location: `${RECEIVER}/hook/${elsewhere}` }]);
    const s = await setupWith({ type: "oauth2_client_credentials", token_url: `${RECEIVER}/hook/${tokenKey}`, client_id: "{{env.USER}}", client_secret: "{{env.PASS}}" }, hook);
    await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "R-1", name: "r" } }]);
    await vi.waitFor(async () => expect((await received(tokenKey)).length).toBeGreaterThan(0), { timeout: 15_000, interval: 50 });
    expect(await received(elsewhere)).toEqual([]);
    expect(await received(hook)).toEqual([]);
  });
});
