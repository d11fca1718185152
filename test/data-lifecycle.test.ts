// Per-event data lives in Durable Objects, not in D1 rows that cascade: deleting an integration
// deletes its event log and its endpoints' deliveries, deleting a tenant also its entity stores.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { entityStore } from "../src/entities/service";
import { ADMIN, api } from "./helpers";
import { logQuery, post, setup, waitFor } from "./inbound-helpers";
import { deliveryRows, endpointOf } from "./outbound-helpers";
import { endpointsOfIntegrations } from "../src/outbound/service";

const eventually = { timeout: 10_000, interval: 50 };

describe("deleting what owns per-event data", () => {
  it("purges an integration's event log with the integration, and a tenant's entities with the tenant", async () => {
    const { tenant, token, integrationId } = await setup();
    const events = await post(token, integrationId, [
      { use_case_slug: "contacts", payload: { id: "L-1", name: "One" }, group_id: "a" },
      { use_case_slug: "contacts", payload: { id: "L-2", name: "Two" }, group_id: "b" },
    ]);
    for (const e of events) expect((await waitFor(token, e.event_id)).status).toBe("done");
    expect(await logQuery(integrationId, "SELECT id FROM events")).toHaveLength(2);
    expect(await entityStore(env, tenant.id, "contact").find({}, "", 10)).toHaveLength(2);

    // Another tenant's data is untouched by both deletions.
    const other = await setup();
    const [kept] = await post(other.token, other.integrationId, [{ use_case_slug: "contacts", payload: { id: "K-1", name: "Kept" } }]);
    expect((await waitFor(other.token, kept!.event_id)).status).toBe("done");

    expect((await api("DELETE", `/v2/integrations/${integrationId}`, { token })).status).toBe(200);
    await vi.waitFor(async () => expect(await logQuery(integrationId, "SELECT id FROM events")).toEqual([]), eventually);
    expect((await api("GET", `/v3/erp/updates/events/${events[0]!.event_id}`, { token })).status).toBe(404);
    // Entities belong to the tenant, not the integration: they stay until the tenant goes.
    expect(await entityStore(env, tenant.id, "contact").find({}, "", 10)).toHaveLength(2);

    expect((await api("DELETE", `/v1/tenants/${tenant.id}`, { token: ADMIN })).status).toBe(204);
    await vi.waitFor(async () => expect(await entityStore(env, tenant.id, "contact").find({}, "", 10)).toEqual([]), eventually);

    expect(await logQuery(other.integrationId, "SELECT id FROM events")).toHaveLength(1);
    expect(await entityStore(env, other.tenant.id, "contact").find({}, "", 10)).toHaveLength(1);
  });

  it("purges nothing when the deletion is refused", async () => {
    const { token, integrationId } = await setup();
    const [e] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "R-1", name: "R" } }]);
    expect((await waitFor(token, e!.event_id)).status).toBe("done");
    const stranger = await setup();
    expect((await api("DELETE", `/v2/integrations/${integrationId}`, { token: stranger.token })).status).toBe(404);
    expect((await api("DELETE", `/v1/tenants/does-not-exist`, { token: ADMIN })).status).toBe(404);
    expect(await logQuery(integrationId, "SELECT id FROM events")).toHaveLength(1);
  });

  it("purges the deliveries of an integration's endpoints with the integration, and a tenant's with the tenant", async () => {
    const poll = (name: string) => ({
      name, slug: name, type: "outbound",
      configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name, jsonata_expression: "entity.unique_ids", delivery: { type: "poll", max_delivery_attempts: 3 } }] },
    });
    const first = await setup([poll("poll-a")]);
    const second = await setup([poll("poll-b")]);
    const [a] = await post(first.token, first.integrationId, [{ use_case_slug: "contacts", payload: { id: "D-1", name: "One" } }]);
    const [b] = await post(second.token, second.integrationId, [{ use_case_slug: "contacts", payload: { id: "D-2", name: "Two" } }]);
    for (const [token, e] of [[first.token, a], [second.token, b]] as const) expect((await waitFor(token, e!.event_id)).status).toBe("done");
    await vi.waitFor(async () => {
      expect(await deliveryRows(first.integrationId)).toHaveLength(1);
      expect(await deliveryRows(second.integrationId)).toHaveLength(1);
    }, eventually);
    const [endpointA] = await endpointsOfIntegrations(env.DB, [first.integrationId]);
    const [endpointB] = await endpointsOfIntegrations(env.DB, [second.integrationId]);

    expect((await api("DELETE", `/v2/integrations/${first.integrationId}`, { token: first.token })).status).toBe(200);
    await vi.waitFor(async () => expect(await endpointOf(endpointA!.id).rows()).toEqual([]), eventually);
    expect(await endpointOf(endpointB!.id).rows()).toHaveLength(1);

    expect((await api("DELETE", `/v1/tenants/${second.tenant.id}`, { token: ADMIN })).status).toBe(204);
    await vi.waitFor(async () => expect(await endpointOf(endpointB!.id).rows()).toEqual([]), eventually);
  });
});
