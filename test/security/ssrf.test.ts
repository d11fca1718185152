// SSRF through outbound destinations: unsafe webhook URLs and OAuth token URLs are refused when a
// configuration is saved, and again before every request, so no signed POST or client secret reaches
// loopback, private or metadata addresses; redirects are never followed. The loopback receiver
// (scripts/receiver.mjs) records every request it gets: it is the "internal service" here.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { AppError } from "../../src/platform/errors";
import type { Resolver } from "../../src/platform/destination";
import { assertSafeOutboundConfiguration } from "../../src/integrations/outbound-configuration";
import { attemptDelivery, endpointContext, endpointIdOf } from "../../src/outbound/service";
import { OutboundConfiguration } from "../../src/outbound/schema";
import { api, expectError } from "../helpers";
import { post, setup } from "../inbound-helpers";

const RECEIVER = env.RECEIVER_URL;
const PORT = new URL(RECEIVER).port;
let keys = 0;
const newKey = () => `ssrf${Date.now().toString(36)}${keys++}`;

async function script(key: string, responses: unknown[]) {
  await fetch(`${RECEIVER}/_script/${key}`, { method: "POST", body: JSON.stringify({ responses }) });
}
async function received(key: string): Promise<{ headers: Record<string, string>; body: string; status: number }[]> {
  return (await fetch(`${RECEIVER}/_requests/${key}`)).json();
}

const webhookUseCase = (slug: string, url: string, delivery: Record<string, unknown> = {}) => ({
  name: slug,
  slug,
  type: "outbound",
  configuration: {
    event_catalog_event: "contact.created",
    mappings: [{ id: "main", name: "to ERP", jsonata_expression: '{ "customer": entity.unique_ids.external_id }', delivery: { type: "webhook", url, max_attempts: 1, ...delivery } }],
  },
});
const oauth = (tokenUrl: string) => ({ auth: { type: "oauth2_client_credentials", token_url: tokenUrl, client_id: "erp-edge", client_secret: "client-secret-never-sent" } });

/** Destinations that reach this machine, its network or a metadata service; the receiver's own port among them. */
const UNSAFE_URLS = [
  `http://[::ffff:7f00:1]:${PORT}/hook/x`,
  `http://[::ffff:127.0.0.1]:${PORT}/hook/x`,
  `http://[0:0:0:0:0:ffff:127.0.0.1]:${PORT}/hook/x`,
  `http://[::127.0.0.1]:${PORT}/hook/x`,
  `http://[64:ff9b::7f00:1]:${PORT}/hook/x`,
  `http://[64:ff9b:1::a00:1]:${PORT}/hook/x`,
  `http://[2002:7f00:1::]:${PORT}/hook/x`,
  `http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:${PORT}/hook/x`, // Teredo, client 127.0.0.1
  `http://localhost:${PORT}/hook/x`,
  `http://localhost.:${PORT}/hook/x`,
  `http://127.0.0.1/hook/x`,
  "http://2130706433/hook/x",
  "http://0x7f.1/hook",
  "http://0177.0.0.1/hook",
  "http://127.1/hook",
  "http://[::1]/hook",
  "http://0.0.0.0/hook",
  "http://10.0.0.1/hook",
  "http://172.16.5.4/hook",
  "http://192.168.0.1/hook",
  "http://100.64.0.1/hook",
  "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
  "http://[::ffff:169.254.169.254]/latest/meta-data/",
  "http://[fd00::1]/hook",
  "http://[fe80::1]/hook",
  "http://224.0.0.1/hook",
  "http://255.255.255.255/hook",
  "http://metadata.google.internal/computeMetadata/v1/",
  "http://metadata/computeMetadata/v1/",
  "http://api.localhost/hook",
  "http://printer.local/hook",
  "http://nas.home.arpa/hook",
  "http://erp/hook",
  "ftp://erp.example.com/hook",
  "file:///etc/passwd",
  "https://user:pass@erp.example.com/hook",
];

const countUseCases = async (integrationId: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM use_cases WHERE integration_id = ?").bind(integrationId).first<{ n: number }>())!.n;

/** The VALIDATION_FAILED paths of a response, or its status when it is anything else. */
function refusedPaths(res: { status: number; body: any }): string[] | number {
  if (res.status !== 400 || res.body?.error?.code !== "VALIDATION_FAILED") return res.status;
  return (res.body.error.details as { path: string }[]).map((d) => d.path);
}

describe("save time", () => {
  it("refuses every unsafe webhook URL form with 400 at its path, and stores nothing", async () => {
    const { token, integrationId, useCases } = await setup([webhookUseCase("push", "https://erp.example.com/hook")]);
    const push = useCases.find((u) => u.slug === "push")!;
    const before = await countUseCases(integrationId);
    const base = `/v1/integrations/${integrationId}`;
    const wrong: unknown[] = [];
    for (const [i, url] of UNSAFE_URLS.entries()) {
      const created = await api("POST", `${base}/use-cases`, { token, json: webhookUseCase(`bad-${i}`, url) });
      const updated = await api("PUT", `${base}/use-cases/${push.id}`, { token, json: webhookUseCase("push", url) });
      const integration = await api("POST", "/v2/integrations", { token, json: { name: "bad", use_cases: [webhookUseCase("bad", url)] } });
      const outcome = [refusedPaths(created), refusedPaths(updated), refusedPaths(integration)];
      const expected = [["configuration.mappings.0.delivery.url"], ["configuration.mappings.0.delivery.url"], ["use_cases.0.configuration.mappings.0.delivery.url"]];
      if (JSON.stringify(outcome) !== JSON.stringify(expected)) wrong.push({ url, outcome });
    }
    expect(wrong).toEqual([]);
    expect(await countUseCases(integrationId)).toBe(before);
    const stored = (await api("GET", `${base}/use-cases/${push.id}`, { token })).body;
    expect(stored.configuration.mappings[0].delivery.url).toBe("https://erp.example.com/hook");
    expect((await api("GET", "/v2/integrations", { token })).body.integrations).toHaveLength(1);
  });

  it("refuses a declarative PUT that adds an unsafe destination, naming the use case", async () => {
    const { token, integrationId } = await setup();
    const current = (await api("GET", `/v2/integrations/${integrationId}`, { token })).body;
    const res = await api("PUT", `/v2/integrations/${integrationId}`, {
      token,
      json: { name: current.name, use_cases: [...current.use_cases, webhookUseCase("push", "http://[::ffff:a9fe:a9fe]/latest/meta-data/")] },
    });
    expect(refusedPaths(res)).toEqual([`use_cases.${current.use_cases.length}.configuration.mappings.0.delivery.url`]);
    expect(await countUseCases(integrationId)).toBe(current.use_cases.length);
  });

  it("refuses an OAuth token_url to an internal address before any secret could be sent", async () => {
    const { token, integrationId } = await setup();
    const key = newKey();
    for (const tokenUrl of [`http://[::ffff:127.0.0.1]:${PORT}/hook/${key}`, "http://169.254.169.254/token", "http://localhost./token", "http://[64:ff9b::a00:1]/token", "https://user:pw@auth.example.com/token", "file:///etc/passwd"]) {
      const res = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: webhookUseCase("oauth", "https://erp.example.com/hook", oauth(tokenUrl)) });
      expect(refusedPaths(res), tokenUrl).toEqual(["configuration.mappings.0.delivery.auth.token_url"]);
    }
    expect(await received(key)).toEqual([]);
  });

  it("accepts public and allow-listed destinations", async () => {
    const { token, integrationId } = await setup();
    for (const [i, url] of ["https://erp.example.com/hook", "https://[2606:4700:4700::1111]/hook", `${RECEIVER}/hook/${newKey()}`].entries()) {
      const res = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: webhookUseCase(`ok-${i}`, url, oauth("https://auth.example.com/token")) });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
  });

  it("with OUTBOUND_DNS_CHECK on, refuses names that resolve to internal addresses, and names it cannot resolve", async () => {
    const resolve: Resolver = async (name) => {
      if (name === "rebind.example.com") return ["93.184.216.34", "::ffff:127.0.0.1"];
      if (name === "auth.example.com") return ["10.0.0.5"];
      if (name === "erp.example.com") return ["93.184.216.34"];
      throw new Error("SERVFAIL");
    };
    const dnsEnv = { OUTBOUND_ALLOWED_PRIVATE_HOSTS: "", OUTBOUND_DNS_CHECK: "true" };
    const config = (url: string, tokenUrl: string) => OutboundConfiguration.parse(webhookUseCase("x", url, oauth(tokenUrl)).configuration);
    const refusal = async (c: OutboundConfiguration) => {
      const err = await assertSafeOutboundConfiguration(c, dnsEnv, ["configuration"], resolve).then(() => null, (e: unknown) => e);
      if (!(err instanceof AppError)) return err;
      return { code: err.code, details: err.details };
    };
    expect(await refusal(config("https://rebind.example.com/hook", "https://auth.example.com/token"))).toMatchObject({
      code: "VALIDATION_FAILED",
      details: [
        { path: "configuration.mappings.0.delivery.url", message: expect.stringContaining("resolves to 127.0.0.1 is loopback"), code: "unsafe_destination" },
        { path: "configuration.mappings.0.delivery.auth.token_url", message: expect.stringContaining("10.0.0.5 is private") },
      ],
    });
    expect(await refusal(config("https://down.example.com/hook", "https://erp.example.com/token"))).toMatchObject({ details: [{ message: expect.stringContaining("could not resolve") }] });
    expect(await refusal(config("https://erp.example.com/hook", "https://erp.example.com/token"))).toBeNull();
  });
});

describe("send time", () => {
  it("does not deliver to, or send the OAuth client secret to, a stored destination that is no longer safe", async () => {
    const [hookA, tokenA, hookB, tokenB, hookC] = [newKey(), newKey(), newKey(), newKey(), newKey()];
    // Saved while safe (the allow-listed receiver), then changed underneath, as by an older version or a direct write.
    const { token, integrationId, useCases } = await setup([
      webhookUseCase("swapped-url", `${RECEIVER}/hook/${hookA}`, oauth(`${RECEIVER}/hook/${tokenA}`)),
      webhookUseCase("swapped-token", `${RECEIVER}/hook/${hookB}`, oauth(`${RECEIVER}/hook/${tokenB}`)),
      webhookUseCase("swapped-plain", `${RECEIVER}/hook/${hookC}`),
    ]);
    const swap = async (slug: string, url: string, tokenUrl?: string) => {
      const uc = useCases.find((u) => u.slug === slug)!;
      const config = webhookUseCase(slug, url, tokenUrl ? oauth(tokenUrl) : {}).configuration;
      await env.DB.prepare("UPDATE use_cases SET configuration = ? WHERE id = ?").bind(JSON.stringify(config), uc.id).run();
    };
    await swap("swapped-url", `http://[::ffff:7f00:1]:${PORT}/hook/${hookA}`, `http://[0:0:0:0:0:ffff:127.0.0.1]:${PORT}/hook/${tokenA}`);
    await swap("swapped-token", `${RECEIVER}/hook/${hookB}`, `http://[::ffff:127.0.0.1]:${PORT}/hook/${tokenB}`);
    await swap("swapped-plain", `http://[::ffff:127.0.0.1]:${PORT}/hook/${hookC}`);

    await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "SSRF-1", name: "Mallory" } }]);
    const outbound = async (slug: string) => (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { direction: "outbound", use_case: slug } })).body.events;
    const cases = [["swapped-plain", "destination refused"], ["swapped-url", "destination refused"], ["swapped-token", "token_url refused"]] as const;
    for (const [slug, refused] of cases) {
      const [delivery] = await vi.waitFor(async () => {
        const list = await outbound(slug);
        expect(list[0]?.status).toBe("dead_lettered");
        return list;
      }, { timeout: 15_000, interval: 100 });
      expect(delivery, slug).toMatchObject({ attempts: 1, last_error: expect.stringContaining(refused) });
      expect(delivery.last_error).toContain("loopback");
    }
    for (const key of [hookA, tokenA, hookB, tokenB, hookC]) expect(await received(key), key).toEqual([]);
  }, 30_000);

  it("follows no redirect: a 3xx from the webhook or the token endpoint fails the delivery", async () => {
    const [hook, tokenHook, tokenEndpoint] = [newKey(), newKey(), newKey()];
    await script(hook, [302]);
    await script(tokenEndpoint, [307]);
    const { token, integrationId } = await setup([
      webhookUseCase("redirecting-hook", `${RECEIVER}/hook/${hook}`),
      webhookUseCase("redirecting-token", `${RECEIVER}/hook/${tokenHook}`, oauth(`${RECEIVER}/hook/${tokenEndpoint}`)),
    ]);
    await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "SSRF-2", name: "Eve" } }]);
    const outbound = async (slug: string) => (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { direction: "outbound", use_case: slug } })).body.events;
    for (const slug of ["redirecting-hook", "redirecting-token"]) {
      const [delivery] = await vi.waitFor(async () => {
        const list = await outbound(slug);
        expect(list[0]?.status).toBe("dead_lettered");
        return list;
      }, { timeout: 15_000, interval: 100 });
      expect(delivery).toMatchObject({ attempts: 1, last_error: expect.stringContaining("redirects are not followed") });
    }
    expect((await received(hook)).map((r) => r.status)).toEqual([302]);
    expect((await received(tokenEndpoint)).map((r) => r.status)).toEqual([307]);
    expect(await received(tokenHook)).toEqual([]);
  }, 30_000);

  it("with OUTBOUND_DNS_CHECK on, checks the name again before each attempt", async () => {
    const { useCases } = await setup([webhookUseCase("named", "https://rebind.example.com/hook")]);
    const uc = useCases.find((u) => u.slug === "named")!;
    const ctx = (await endpointContext(env.DB, endpointIdOf(uc.id, "main")))!;
    const dnsEnv = { ...env, OUTBOUND_DNS_CHECK: "true" };
    const delivery = { id: "01JDSSRF000000000000000001", payload: "{}" };
    // Public when saved, loopback when sent: the answer at send time decides.
    expect(await attemptDelivery(dnsEnv, ctx, delivery, async () => ["127.0.0.1"])).toEqual({ kind: "dead", error: expect.stringContaining("rebind.example.com resolves to 127.0.0.1 is loopback") });
    expect(await attemptDelivery(dnsEnv, ctx, delivery, async () => { throw new Error("SERVFAIL"); })).toEqual({ kind: "retry", error: expect.stringContaining("could not resolve") });
  });
});

describe("error envelope", () => {
  it("says why a destination is refused", async () => {
    const { token, integrationId } = await setup();
    const details = expectError(await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: webhookUseCase("meta", "http://[::ffff:169.254.169.254]/") }), 400, "VALIDATION_FAILED");
    expect(details).toEqual([{ path: "configuration.mappings.0.delivery.url", message: expect.stringContaining("169.254.169.254 is linkLocal"), code: "unsafe_destination" }]);
  });
});
