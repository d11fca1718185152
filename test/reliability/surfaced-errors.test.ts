// Errors that used to be swallowed now show in monitoring: a failing event_filter, a stored outbound
// configuration that no longer validates, and a webhook's failing event_name expression.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { api, tenantWithToken } from "../helpers";
import { contactMapping, post, waitFor } from "../inbound-helpers";

const outbound = (slug: string, extra: Record<string, unknown> = {}) => ({
  name: slug, slug, type: "outbound",
  configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name: "M", jsonata_expression: "entity.unique_ids", delivery: { type: "poll" } }], ...extra },
});

async function setupOutbound(useCases: Record<string, unknown>[]) {
  const { token } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", { token, json: { name: "ERP", use_cases: [{ name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping }, ...useCases] } });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  const integrationId = res.body.id as string;
  const deliveries = async (slug: string) => (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { direction: "outbound", use_case: slug } })).body.events as { status: string; last_error: string | null }[];
  return { token, integrationId, deliveries, useCases: res.body.use_cases as { id: string; slug: string }[] };
}

/** Waits for the one delivery row a use case gets for the event, and returns it. */
async function onlyDelivery(s: Awaited<ReturnType<typeof setupOutbound>>, slug: string) {
  const [d] = await vi.waitFor(async () => {
    const list = await s.deliveries(slug);
    expect(list.length).toBe(1);
    return list;
  }, { timeout: 15_000, interval: 50 });
  return d!;
}

describe("surfaced errors", () => {
  it("a failing event_filter dead-letters the event's deliveries with the error instead of dropping them", async () => {
    const s = await setupOutbound([outbound("filtered", { event_filter: '$error("filter broke")' })]);
    await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "EF-1", name: "x" } }]);
    const d = await onlyDelivery(s, "filtered");
    expect(d).toMatchObject({ status: "dead_lettered" });
    expect(d.last_error).toMatch(/event_filter failed: .*filter broke/);
  });

  it("a stored outbound configuration that no longer validates records a dead letter saying so", async () => {
    const s = await setupOutbound([outbound("stale")]);
    const stale = s.useCases.find((u) => u.slug === "stale")!;
    // As saved by an older version: a mapping id the schema refuses today.
    await env.DB.prepare("UPDATE use_cases SET configuration = ? WHERE id = ?")
      .bind(JSON.stringify({ event_catalog_event: "contact.created", mappings: [{ id: "no spaces allowed", name: "M", jsonata_expression: "$", delivery: { type: "poll" } }] }), stale.id)
      .run();
    await post(s.token, s.integrationId, [{ use_case_slug: "contacts", payload: { id: "IC-1", name: "x" } }]);
    const d = await onlyDelivery(s, "stale");
    expect(d).toMatchObject({ status: "dead_lettered" });
    expect(d.last_error).toMatch(/stored configuration no longer validates/);
  });

  it("a webhook whose event_name expression fails is accepted with a warning on the event", async () => {
    const secret = "surfaced-secret";
    const { token } = await tenantWithToken();
    const res = await api("POST", "/v2/integrations", {
      token,
      json: {
        name: "Hooks", environment_config: [{ key: "S", label: "S", type: "SecretString" }],
        use_cases: [{ name: "T", slug: "trips", type: "inbound", configuration: { webhook: { secret_env: "S", event_name: '$error("no name")' }, entities: [{ entity_schema: "trip", unique_ids: ["trip_id"], fields: [{ attribute: "trip_id", field: "trip" }] }] } }],
      },
    });
    await api("PUT", `/v1/integrations/${res.body.id}/environment`, { token, json: { S: secret } });
    const raw = JSON.stringify({ trip: "W-1" });
    const t = Math.floor(Date.now() / 1000);
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = [...new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${t}.${raw}`)))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const sent = await exports.default.fetch(new Request(`http://erp-edge.test/v1/webhooks/${res.body.id}/trips`, { method: "POST", body: raw, headers: { "x-signature": `t=${t},s=sha256=${mac}` } }));
    expect(sent.status).toBe(202);
    const status = await waitFor(token, ((await sent.json()) as { event_id: string }).event_id);
    expect(status.status).toBe("done");
    expect(status.warnings).toEqual([expect.objectContaining({ code: "EVENT_NAME_FAILED" })]);
  });
});
