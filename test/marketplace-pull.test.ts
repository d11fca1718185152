// Blueprints with `pull` use cases (issue #14): a scheduled app action whose events enter through an
// inbound use case of the same integration. Installed with the app it runs, its schedule registered in
// the same batch; upgrades reschedule it, rollbacks restore it, uninstalls remove it.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { runDuePulls } from "../src/inbound/pull";
import { api, expectError, tenantWithToken } from "./helpers";
import { publishApp, trust } from "./app-helpers";
import { findOne, waitFor } from "./inbound-helpers";
import { newPublisher, publish, sampleManifest, unique, type Publisher } from "./registry-helpers";

let publisher: Publisher;
let app: string;

beforeAll(async () => {
  publisher = await newPublisher("pull");
  app = `${publisher.name}/erp-delta-${unique()}`;
  await publishApp(publisher, app, "1.0.0", {
    // A delta sync that always finds one changed customer (the cursor is not what is tested here).
    delta: { body: `return { events: [{ timestamp: "2026-03-01T00:00:00Z", payload: { id: "C1", name: "Ada" } }] };` },
  });
});

const customers = {
  slug: "customers",
  name: "Customers",
  type: "inbound",
  configuration: { entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "id" }, { attribute: "first_name", field: "name" }] }] },
};
const delta = (schedule = "*/5 * * * *", extra: Record<string, unknown> = {}) => ({
  slug: "delta",
  name: "Customer delta",
  type: "pull",
  configuration: { app, action: "delta", schedule, target_use_case: "customers", ...extra },
});

/** A blueprint whose integration pulls customers with `app`, listing the app unless `apps` says otherwise (null: no `apps` at all). */
function pullBlueprint(name: string, version: string, useCases: unknown[] = [customers, delta()], apps: unknown[] | null = [{ name: app, version: "^1" }]) {
  return sampleManifest(name, version, { integrations: [{ slug: "sample-erp", name: "Sample ERP", use_cases: useCases }], ...(apps && { apps }) });
}

async function installer() {
  const t = await tenantWithToken("Pull installer");
  await trust(t.token, publisher.name);
  return t;
}

const schedules = async (tenantId: string) =>
  (await env.DB.prepare("SELECT use_case_id, next_run_at FROM pull_schedules WHERE tenant_id = ? ORDER BY use_case_id").bind(tenantId).all<{ use_case_id: string; next_run_at: string }>()).results;

const install = (token: string, name: string, dryRun = false) => api("POST", "/v1/blueprints/install", { token, json: { name, environment: { ERP_URL: "https://erp.example.com" }, dry_run: dryRun } });
const installed = (name: string) => `/v1/blueprints/installed/${name}`;

describe("pull use cases in blueprints", () => {
  it("installs the pull with its app and registers its schedule in the same change; upgrades, rollbacks and removal keep them consistent", async () => {
    const t = await installer();
    const name = `${publisher.name}/pull-${unique()}`;
    await publish(publisher, pullBlueprint(name, "1.0.0"));

    const dry = await install(t.token, name, true);
    expect(dry.status).toBe(200);
    expect(dry.body.plan).toContainEqual({
      resource: "use_case",
      key: "sample-erp/delta",
      action: "create",
      diff: { changes: [{ path: "", from: null, to: { name: "Customer delta", type: "pull", enabled: true, configuration: { app, action: "delta", schedule: "*/5 * * * *", target_use_case: "customers", input: {} } } }] },
    });
    expect(dry.body.plan).toContainEqual(expect.objectContaining({ resource: "app", key: app, action: "create" }));
    expect(await schedules(t.tenant.id)).toEqual([]);

    const before = Date.now();
    const res = await install(t.token, name);
    expect(res.status).toBe(201);
    const integrationId = res.body.installation.resources.integrations[0].id as string;
    const deltaId = res.body.installation.resources.use_cases.find((u: { key: string }) => u.key === "sample-erp/delta").id as string;
    const [schedule] = await schedules(t.tenant.id);
    expect(schedule!.use_case_id).toBe(deltaId);
    const due = new Date(schedule!.next_run_at);
    expect(due.getTime()).toBeGreaterThan(before);
    expect(due.getTime() - before).toBeLessThanOrEqual(5 * 60_000);
    expect(due.getUTCMinutes() % 5).toBe(0);
    expect((await api("GET", `/v1/apps/installed/${app}`, { token: t.token })).body).toMatchObject({ installed_via: name });

    // The cron tick at the due time runs it: the pulled customer becomes a contact through "customers".
    expect(await runDuePulls(env, new Date(due.getTime() + 1000))).toBeGreaterThanOrEqual(1);
    const row = await env.DB.prepare("SELECT last_outcome FROM pull_schedules WHERE use_case_id = ?").bind(deltaId).first<{ last_outcome: string }>();
    expect(row!.last_outcome).toBe("ok");
    const run = await api("POST", `/v1/integrations/${integrationId}/use-cases/delta/run`, { token: t.token });
    expect(run.body.events).toEqual({ received: 1, accepted: 1, refused: 0 });
    await waitFor(t.token, run.body.results[0].event_id);
    expect((await findOne(t.token, "contact", "customer_number=C1")).attributes.first_name).toBe("Ada");

    // 1.1.0 pulls nightly: the use case is updated and its next due time follows the new schedule.
    await publish(publisher, pullBlueprint(name, "1.1.0", [customers, delta("0 3 * * *")]));
    const up = await api("POST", `${installed(name)}/upgrade`, { token: t.token, json: { version: "1.1.0" } });
    expect(up.status).toBe(200);
    expect(up.body.plan).toContainEqual({
      resource: "use_case",
      key: "sample-erp/delta",
      action: "update",
      diff: { changes: [{ path: "configuration.schedule", from: "*/5 * * * *", to: "0 3 * * *" }] },
    });
    const nightly = new Date((await schedules(t.tenant.id))[0]!.next_run_at);
    expect([nightly.getUTCHours(), nightly.getUTCMinutes()]).toEqual([3, 0]);

    // Rolled back: every five minutes again.
    expect((await api("POST", `${installed(name)}/rollback`, { token: t.token, json: {} })).status).toBe(200);
    const restored = await schedules(t.tenant.id);
    expect(restored.map((s) => s.use_case_id)).toEqual([deltaId]);
    expect(new Date(restored[0]!.next_run_at).getUTCMinutes() % 5).toBe(0);
    expect(new Date(restored[0]!.next_run_at).getTime() - Date.now()).toBeLessThanOrEqual(5 * 60_000);

    // 2.0.0 drops the pull and its app: both go. Its rollback brings back the use case (same id), its schedule and its app.
    await publish(publisher, pullBlueprint(name, "2.0.0", [customers], []));
    const dropped = await api("POST", `${installed(name)}/upgrade`, { token: t.token, json: { version: "2.0.0", accept_breaking: true } });
    expect(dropped.status).toBe(200);
    expect(dropped.body.plan).toContainEqual(expect.objectContaining({ resource: "use_case", key: "sample-erp/delta", action: "delete" }));
    expect(dropped.body.plan).toContainEqual(expect.objectContaining({ resource: "app", key: app, action: "delete" }));
    expect(await schedules(t.tenant.id)).toEqual([]);
    expectError(await api("GET", `/v1/apps/installed/${app}`, { token: t.token }), 404, "APP_NOT_INSTALLED");
    const back = await api("POST", `${installed(name)}/rollback`, { token: t.token, json: {} });
    expect(back.status).toBe(200);
    expect(back.body.plan).toContainEqual(expect.objectContaining({ resource: "use_case", key: "sample-erp/delta", action: "create" }));
    expect(back.body.plan).toContainEqual(expect.objectContaining({ resource: "app", key: app, action: "create" }));
    expect((await schedules(t.tenant.id)).map((s) => s.use_case_id)).toEqual([deltaId]);
    expect((await api("GET", `/v1/apps/installed/${app}`, { token: t.token })).body).toMatchObject({ installed_via: name });

    // Removed: the integration, its pull's schedule and the app it brought.
    const removed = await api("DELETE", installed(name), { token: t.token });
    expect(removed.status).toBe(200);
    expect(removed.body.plan).toContainEqual(expect.objectContaining({ resource: "use_case", key: "sample-erp/delta", action: "delete" }));
    expect(await schedules(t.tenant.id)).toEqual([]);
    expectError(await api("GET", `/v1/apps/installed/${app}`, { token: t.token }), 404, "APP_NOT_INSTALLED");
  });

  it("rolls the install itself back: the pull, its schedule and the app go, nothing is left behind", async () => {
    const t = await installer();
    const name = `${publisher.name}/pull-undo-${unique()}`;
    await publish(publisher, pullBlueprint(name, "1.0.0"));
    expect((await install(t.token, name)).status).toBe(201);
    expect(await schedules(t.tenant.id)).toHaveLength(1);
    const undone = await api("POST", `${installed(name)}/rollback`, { token: t.token, json: {} });
    expect(undone.status).toBe(200);
    expect(undone.body.plan).toContainEqual(expect.objectContaining({ resource: "app", key: app, action: "delete" }));
    expect(await schedules(t.tenant.id)).toEqual([]);
    expect((await api("GET", "/v1/apps/installed", { token: t.token })).body.installed).toEqual([]);
    expect((await api("GET", "/v1/blueprints/installed", { token: t.token })).body.installed).toEqual([]);
  });

  it("refuses a pull whose app the blueprint neither lists nor finds installed, and one whose target is not an inbound use case", async () => {
    const t = await installer();
    const unlisted = `${publisher.name}/pull-unlisted-${unique()}`;
    await publish(publisher, pullBlueprint(unlisted, "1.0.0", [customers, delta()], null));
    const refused = expectError(await install(t.token, unlisted, true), 422, "UNPROCESSABLE");
    expect(refused).toEqual([{ path: "integrations.0.use_cases.1.configuration.app", app, message: `${app} is not listed in the blueprint's apps, nor installed in this tenant (directly, not by another blueprint)` }]);
    expect(await schedules(t.tenant.id)).toEqual([]);
    // An app another blueprint installed does not count: it would leave with that blueprint (a hostile review's finding).
    const lender = await installer();
    const lends = `${publisher.name}/pull-lends-${unique()}`;
    await publish(publisher, pullBlueprint(lends, "1.0.0"));
    expect((await install(lender.token, lends)).status).toBe(201);
    expectError(await install(lender.token, unlisted, true), 422, "UNPROCESSABLE");
    // An app the tenant installed itself will do.
    expect((await api("POST", "/v1/apps/install", { token: t.token, json: { name: app } })).status).toBe(201);
    expect((await install(t.token, unlisted)).status).toBe(201);
    expect(await schedules(t.tenant.id)).toHaveLength(1);

    // An upgrade that stops listing the app this blueprint installed, while its pull still runs it, would leave the pull without it.
    const other = await installer();
    const dropsApp = `${publisher.name}/pull-drops-${unique()}`;
    await publish(publisher, pullBlueprint(dropsApp, "1.0.0"));
    expect((await install(other.token, dropsApp)).status).toBe(201);
    await publish(publisher, pullBlueprint(dropsApp, "1.0.1", [customers, delta()], []));
    const kept = expectError(await api("POST", `${installed(dropsApp)}/upgrade`, { token: other.token, json: { version: "1.0.1" } }), 422, "UNPROCESSABLE");
    expect(kept).toEqual([expect.objectContaining({ path: "integrations.0.use_cases.1.configuration.app", app })]);

    for (const [target, message] of [
      ["nope", "no use case 'nope' in this integration"],
      ["push", "'push' is a outbound use case"],
    ] as const) {
      const bad = `${publisher.name}/pull-target-${unique()}`;
      const push = {
        slug: "push",
        name: "Push",
        type: "outbound",
        configuration: { event_catalog_event: "contact.updated", mappings: [{ id: "m1", name: "push", jsonata_expression: "$", delivery: { type: "webhook", url: "https://erp.example.com/hook" } }] },
      };
      await publish(publisher, pullBlueprint(bad, "1.0.0", [customers, push, { ...delta(), configuration: { ...delta().configuration, target_use_case: target } }]));
      const details = expectError(await install(t.token, bad, true), 422, "UNPROCESSABLE");
      expect(details).toEqual([{ path: "integrations.0.use_cases.2.configuration.target_use_case", message: expect.stringContaining(message) }]);
    }
  });

  it("also checks the apps a pre_mapping or an outbound transform runs", async () => {
    const t = await installer();
    const name = `${publisher.name}/pre-${unique()}`;
    const pre = { ...customers, configuration: { ...customers.configuration, pre_mapping: { app, action: "delta" } } };
    await publish(publisher, pullBlueprint(name, "1.0.0", [pre], null));
    const details = expectError(await install(t.token, name, true), 422, "UNPROCESSABLE");
    expect(details).toEqual([expect.objectContaining({ path: "integrations.0.use_cases.0.configuration.pre_mapping.app", app })]);
  });
});

describe("pull schedules written with their use cases through the API", () => {
  it("registers a pull when it is created, reschedules it when its schedule changes, and drops it with the use case", async () => {
    const t = await tenantWithToken("Pull API");
    const created = await api("POST", "/v2/integrations", { token: t.token, json: { name: "ERP", use_cases: [customers, delta("*/10 * * * *")] } });
    expect(created.status).toBe(201);
    const integrationId = created.body.id as string;
    const pull = created.body.use_cases.find((u: { slug: string }) => u.slug === "delta");
    expect((await schedules(t.tenant.id)).map((s) => s.use_case_id)).toEqual([pull.id]);
    expect(new Date((await schedules(t.tenant.id))[0]!.next_run_at).getUTCMinutes() % 10).toBe(0);

    const changed = await api("PUT", `/v1/integrations/${integrationId}/use-cases/${pull.id}`, { token: t.token, json: { ...delta("0 4 * * *"), slug: "delta" } });
    expect(changed.status).toBe(200);
    expect(new Date((await schedules(t.tenant.id))[0]!.next_run_at).getUTCHours()).toBe(4);

    const second = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token: t.token, json: { ...delta(), slug: "delta-2" } });
    expect(second.status).toBe(201);
    expect(await schedules(t.tenant.id)).toHaveLength(2);
    expect((await api("DELETE", `/v1/integrations/${integrationId}/use-cases/${second.body.id}`, { token: t.token })).status).toBe(200);
    expect((await schedules(t.tenant.id)).map((s) => s.use_case_id)).toEqual([pull.id]);
    expect((await api("DELETE", `/v2/integrations/${integrationId}`, { token: t.token })).status).toBe(200);
    expect(await schedules(t.tenant.id)).toEqual([]);
  });
});
