// The @erp-edge/telematics blueprint (issue #14) through the public HTTP API, from a fresh tenant:
// install with its environment (plan first), the five signed webhooks of its fixtures becoming the
// fixtures' entities (geofence dwell from its app), replays changing nothing, the ERP webhooks with
// their ACKs, the trip backfill against scripts/fake-telematics.mjs, and an upgrade with a conflict.
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { beforeAll, describe, expect, it } from "vitest";
import { KEY_SEEN_SQL } from "../src/inbound/events-log";
import { trust } from "./app-helpers";
import { blueprintFiles, publishRepoBlueprint } from "./blueprint-helpers";
import { api, createTenant, createToken, eventually, expectError } from "./helpers";
import { logQuery, waitFor } from "./inbound-helpers";
import { newPublisher, unique, type Publisher } from "./registry-helpers";

const RECEIVER = env.RECEIVER_URL;
const TELEMATICS_API = env.TELEMATICS_API_URL;
const SECRET = "telematics-webhook-secret-0f3a";
const ERP_API_KEY = "erp-key-7c21";
const ENVIRONMENT = { TELEMATICS_WEBHOOK_SECRET: SECRET, ERP_API_KEY };
/** Where the published test copy sends the ERP webhooks until a test points them elsewhere (never the internet). */
const SINK = `${RECEIVER}/hook/telematics-sink`;

interface Fixture {
  file: string;
  description: string;
  use_case: string;
  payload: { event: string; id: string; data: Record<string, unknown> };
  expected: { entity_updates: { entity_slug: string; unique_identifiers: Record<string, string>; attributes: Record<string, unknown> }[] };
}

/** The blueprint's fixtures, in file order (the order the walkthrough sends them in). */
const fixtures: Fixture[] = Object.entries(blueprintFiles("telematics", "@erp-edge"))
  .filter(([path]) => /^fixtures\/[^/]+\.json$/.test(path))
  .sort(([a], [b]) => (a < b ? -1 : 1))
  .map(([file, text]) => ({ file, ...JSON.parse(text) }));
const fixture = (name: string) => fixtures.find((f) => f.file.includes(name))!;

let publisher: Publisher;
let blueprint: string;
let app: string;

beforeAll(async () => {
  publisher = await newPublisher("telematics");
  const published = await publishRepoBlueprint("telematics", publisher, (files) => {
    for (const name of ["mappings/order-arrival.json", "mappings/work-order-create.json"]) {
      files[name] = files[name]!.replace(/https:\/\/erp\.example\.com\/api\/telematics\/[a-z-]+/, SINK);
    }
  });
  blueprint = published.name;
  app = published.app!;
});

// ---- helpers -------------------------------------------------------------------------------------

/** A fresh tenant trusting the test publisher, with a token that may install and send {{env.*}} values. */
async function freshTenant() {
  const tenant = await createTenant(`Fleet ${unique()}`);
  const { token } = await createToken(tenant.id, ["blueprints:install", "integrations:read", "integrations:write", "secrets:use", "events:write", "monitoring:read"]);
  await trust(token, publisher.name);
  return { tenantId: tenant.id, token };
}

/** Installs the blueprint (1.0.0 unless said) and returns the integration's id and its use cases by slug. */
async function install(token: string, version = "1.0.0") {
  const res = await api("POST", "/v1/blueprints/install", { token, json: { name: blueprint, version, environment: ENVIRONMENT } });
  if (res.status !== 201) throw new Error(`install: ${res.status} ${JSON.stringify(res.body)}`);
  const integrationId = res.body.installation.resources.integrations[0].id as string;
  const integration = await api("GET", `/v2/integrations/${integrationId}`, { token });
  const useCases = Object.fromEntries(integration.body.use_cases.map((u: { slug: string }) => [u.slug, u])) as Record<string, { id: string; slug: string; name: string; type: string; configuration: any }>;
  return { integrationId, useCases };
}

async function hmacHex(message: string, secret = SECRET) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return [...new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The seed's headers: X-Signature over "<t>.<raw body>" and an Idempotency-Key (none when null). */
async function signed(raw: string, opts: { t?: number; key?: string | null; secret?: string } = {}) {
  const t = opts.t ?? Math.floor(Date.now() / 1000);
  return {
    "content-type": "application/json",
    "x-signature": `t=${t},s=sha256=${await hmacHex(`${t}.${raw}`, opts.secret)}`,
    ...(opts.key !== null && { "idempotency-key": opts.key ?? `key-${JSON.parse(raw).id}` }),
  };
}

/** POST /v1/webhooks/{integration}/{use case} with `headers` (made by `signed`). */
async function deliver(integrationId: string, useCase: string, raw: string, headers: Record<string, string>) {
  return api("POST", `/v1/webhooks/${integrationId}/${useCase}`, { body: raw, headers });
}

/** Sends fixtures as the telematics platform does; each is answered 202. Returns the event ids. */
async function sendFixtures(integrationId: string, list: Fixture[]) {
  const ids: string[] = [];
  for (const f of list) {
    const raw = JSON.stringify(f.payload);
    const res = await deliver(integrationId, f.use_case, raw, await signed(raw));
    expect(res.status, f.file).toBe(202);
    expect(res.body.status, f.file).toBe("success");
    ids.push(res.body.event_id);
  }
  return ids;
}

async function entity(token: string, schema: string, ids: Record<string, string>) {
  const res = await api("GET", `/v1/entities/${schema}?${new URLSearchParams(ids)}`, { token });
  expect(res.status).toBe(200);
  return res.body.entities as { id: string; attributes: Record<string, any>; unique_ids: Record<string, string>; version: number; stub: boolean }[];
}


/**
 * What the fixtures must leave in the entity store: each entity's updates merged in order (the ids it
 * was matched on accumulate, later attributes replace earlier ones), keyed by schema and first id.
 */
function expectedStore(list: Fixture[]) {
  const out = new Map<string, { schema: string; ids: Record<string, string>; attributes: Record<string, unknown> }>();
  for (const f of list) {
    for (const u of f.expected.entity_updates) {
      const [first, value] = Object.entries(u.unique_identifiers)[0]!;
      const key = `${u.entity_slug}:${first}=${value}`;
      const was = out.get(key) ?? { schema: u.entity_slug, ids: {}, attributes: {} };
      out.set(key, { schema: u.entity_slug, ids: { ...was.ids, ...u.unique_identifiers }, attributes: { ...was.attributes, ...u.attributes } });
    }
  }
  return [...out.values()];
}

/** A mapped relation as the store keeps it: the related entity's id (found by its unique ids), schema and tags. */
async function resolved(token: string, value: unknown): Promise<unknown> {
  const rel = (value as { $relation?: { _set: { $entity_unique_ids: Record<string, string>; _schema: string; _tags?: string[] }[] } })?.$relation;
  if (!rel) return value;
  return Promise.all(
    rel._set.map(async (r) => {
      const [target] = await entity(token, r._schema, r.$entity_unique_ids);
      expect(target, `${r._schema} ${JSON.stringify(r.$entity_unique_ids)}`).toBeDefined();
      return { entity_id: target!.id, _schema: r._schema, ...(r._tags && { _tags: r._tags }) };
    }),
  );
}

// ---- tests ---------------------------------------------------------------------------------------

describe("@erp-edge/telematics", () => {
  it("installs into a fresh tenant with its environment: the plan first, then one integration, eight use cases and its app", async () => {
    const { token } = await freshTenant();
    const missing = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name: blueprint, version: "^1", dry_run: true } }), 422, "UNPROCESSABLE");
    expect(JSON.stringify(missing)).toContain("environment.TELEMATICS_WEBHOOK_SECRET");
    expect(JSON.stringify(missing)).toContain("environment.ERP_API_KEY");

    const plan = await api("POST", "/v1/blueprints/install", { token, json: { name: blueprint, version: "^1", environment: ENVIRONMENT, dry_run: true } });
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({ name: blueprint, version: "1.0.0", dry_run: true, warnings: [] });
    const slugs = ["fuel-transactions", "geofence-events", "order-arrival", "service-due", "trip-backfill", "trips", "vehicle-locations", "work-order-create"];
    const entries = plan.body.plan.map((p: { resource: string; key: string; action: string }) => `${p.resource} ${p.key} ${p.action}`);
    expect([...entries].sort()).toEqual(
      [`app ${app} create`, "environment ERP_API_KEY create", "environment TELEMATICS_WEBHOOK_SECRET create", "integration telematics create", ...slugs.map((s) => `use_case telematics/${s} create`)].sort(),
    );
    // Integrations and use cases first, then environment, then apps.
    expect(plan.body.plan.map((p: { resource: string }) => p.resource)).toEqual(["integration", ...slugs.map(() => "use_case"), "environment", "environment", "app"]);
    // Secrets never appear in a plan; nothing is written by a dry run.
    expect(JSON.stringify(plan.body)).not.toContain(SECRET);
    expect((await api("GET", "/v2/integrations", { token })).body.integrations).toHaveLength(0);

    // Sending {{env.ERP_API_KEY}} and checking webhooks with a secret need secrets:use.
    const other = await createTenant("No secrets");
    const { token: weak } = await createToken(other.id, ["blueprints:install", "integrations:read", "integrations:write"]);
    await trust(weak, publisher.name);
    expectError(await api("POST", "/v1/blueprints/install", { token: weak, json: { name: blueprint, version: "^1", environment: ENVIRONMENT } }), 403, "FORBIDDEN");

    const { integrationId, useCases } = await install(token, "^1");
    expect(Object.values(useCases).map((u) => `${u.slug}:${u.type}`).sort()).toEqual([
      "fuel-transactions:inbound", "geofence-events:inbound", "order-arrival:outbound", "service-due:inbound",
      "trip-backfill:pull", "trips:inbound", "vehicle-locations:inbound", "work-order-create:outbound",
    ]);
    expect(useCases["geofence-events"]!.configuration.pre_mapping).toEqual({ app, action: "geofence_dwell" });
    expect((await api("GET", `/v1/integrations/${integrationId}/environment`, { token })).body).toEqual({ TELEMATICS_WEBHOOK_SECRET: "********", ERP_API_KEY: "********" });
    const installedApp = await api("GET", `/v1/apps/installed/${app}`, { token });
    expect(installedApp.body).toMatchObject({ name: app, version: "1.0.0", requested_hosts: ["127.0.0.1"], grants: { hosts: [] } });
    expect(installedApp.body.actions.map((a: { name: string }) => a.name).sort()).toEqual(["geofence_dwell", "pull_trips"]);
  });

  it("turns every fixture, sent as a signed webhook, into the fixture's entities with both systems' ids; replays change nothing", async () => {
    const { token } = await freshTenant();
    const { integrationId } = await install(token);
    const eventIds = await sendFixtures(integrationId, fixtures);
    for (const [i, id] of eventIds.entries()) {
      const status = await waitFor(token, id);
      expect(status, fixtures[i]!.file).toMatchObject({ status: "done", errors: [], warnings: [], use_case_slug: fixtures[i]!.use_case, event_name: fixtures[i]!.payload.event });
      expect(status.entities.map((e: { slug: string; unique_ids: unknown }) => ({ slug: e.slug, unique_ids: e.unique_ids })), fixtures[i]!.file).toEqual(
        fixtures[i]!.expected.entity_updates.map((u) => ({ slug: u.entity_slug, unique_ids: u.unique_identifiers })),
      );
    }

    // The store holds what the fixtures say, found by all the ids each entity was matched on at once.
    const expected = expectedStore(fixtures);
    expect(expected.map((e) => `${e.schema}:${Object.values(e.ids).join("/")}`)).toEqual([
      "vehicle:V-1042/1FTBW3XM6KKA52384", "trip:T-9001/SO-2025-10422", "driver:D-305", "geofence_event:evt_7f3a9c03", "geofence_event:evt_7f3a9c05",
      "fuel_transaction:FT-55012", "work_order:WO-7731",
    ]);
    for (const e of expected) {
      const found = await entity(token, e.schema, e.ids);
      expect(found, `${e.schema} ${JSON.stringify(e.ids)}`).toHaveLength(1);
      const attributes: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(e.attributes)) attributes[k] = await resolved(token, v);
      // The exit gets its dwell time from the app (the pre_mapping), which the CLI's fixture run leaves out.
      if (e.ids.event_id === "evt_7f3a9c05") Object.assign(attributes, { dwell_seconds: 2850, entered_at: "2025-10-29T13:58:40.000Z" });
      expect(found[0]!.attributes, `${e.schema} ${JSON.stringify(e.ids)}`).toEqual(attributes);
      expect(found[0]!.unique_ids).toEqual(e.ids);
      expect(found[0]!.stub).toBe(false);
    }
    // The ID-mapping table: the trip by the ERP's order id alone, the vehicle by its VIN alone.
    const [trip] = await entity(token, "trip", { trip_id: "T-9001" });
    expect((await entity(token, "trip", { order_id: "SO-2025-10422" }))[0]!.id).toBe(trip!.id);
    expect(trip!.attributes.status).toBe("arrived");
    const [vehicle] = await entity(token, "vehicle", { vin: "1FTBW3XM6KKA52384" });
    expect((await entity(token, "vehicle", { vehicle_id: "V-1042" }))[0]!.id).toBe(vehicle!.id);
    // The customer's site is a stub until the ERP's own customers arrive.
    expect(await entity(token, "account", { customer_number: "CUST-77" })).toMatchObject([{ stub: true, attributes: { customer_number: "CUST-77" } }]);
    // The app paired the visit: two pre_mapping runs, both ok.
    const runs = await api("GET", `/v1/apps/runs?app=${encodeURIComponent(app)}&action=geofence_dwell`, { token });
    expect(runs.body.runs.map((r: { trigger: string; outcome: string }) => `${r.trigger}:${r.outcome}`)).toEqual(["pre_mapping:ok", "pre_mapping:ok"]);
    expect(runs.body.runs[0].logs).toEqual([{ level: "info", message: "vehicle V-1042, geofence GF-CUST-77: dwell 2850 s" }]);

    // Replays: the identical requests, and the platform's retries signed again later with the same
    // Idempotency-Keys, are duplicates of the originals; nothing is stored or changed.
    const snapshot = async () =>
      Promise.all(expected.map(async (e) => (await entity(token, e.schema, e.ids)).map((x) => ({ id: x.id, version: x.version, attributes: x.attributes }))));
    const before = await snapshot();
    const logged = async () => (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { direction: "inbound", limit: 100 } })).body.events.length;
    const count = await logged();
    const t = Math.floor(Date.now() / 1000);
    for (const [i, f] of fixtures.entries()) {
      const raw = JSON.stringify(f.payload);
      for (const headers of [await signed(raw, { t }), await signed(raw, { t: t + 7 })]) {
        const again = await deliver(integrationId, f.use_case, raw, headers);
        expect(again.status, f.file).toBe(202);
        expect(again.body, f.file).toMatchObject({ status: "skipped", event_id: eventIds[i] });
      }
    }
    expect(await logged()).toBe(count);
    expect(await snapshot()).toEqual(before);
  });

  it("tells the ERP when a trip arrives and when service is due, with signed webhooks whose ACKs are tracked", async () => {
    const { token } = await freshTenant();
    const { integrationId, useCases } = await install(token);
    // After install the tenant points the two ERP webhooks at its ERP (here: the local receiver).
    const key = `telematics-${unique()}`;
    for (const [slug, path] of [["order-arrival", "arrivals"], ["work-order-create", "work-orders"]] as const) {
      const uc = useCases[slug]!;
      const configuration = structuredClone(uc.configuration);
      configuration.mappings[0].delivery.url = `${RECEIVER}/hook/${key}-${path}`;
      const put = await api("PUT", `/v1/integrations/${integrationId}/use-cases/${uc.id}`, { token, json: { name: uc.name, slug, type: "outbound", configuration } });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
    }
    const secret = async (slug: string) => (await api("POST", `/v1/integrations/${integrationId}/outbound/endpoints/${useCases[slug]!.id}/erp/secret`, { token })).body.secret as string;
    const arrivalSecret = await secret("order-arrival");
    const workOrderSecret = await secret("work-order-create");

    // In transit (no webhook: the filter wants an arrival), arrived (one), service due (one).
    const ids = await sendFixtures(integrationId, [fixture("trip-in-transit"), fixture("trip-arrived"), fixture("service-due")]);
    for (const id of ids) expect((await waitFor(token, id)).status).toBe("done");
    const received = async (path: string) => (await (await fetch(`${RECEIVER}/_requests/${key}-${path}`)).json()) as { headers: Record<string, string>; body: string }[];
    const [arrival] = await eventually(() => received("arrivals"), (r) => r.length >= 1, "the order-arrival webhook");
    const [workOrder] = await eventually(() => received("work-orders"), (r) => r.length >= 1, "the work-order webhook");

    const arrivalBody = new Webhook(arrivalSecret).verify(arrival!.body, arrival!.headers) as Record<string, unknown>;
    expect(arrivalBody).toEqual({
      action: "order.advance", order_id: "SO-2025-10422", stage: "arrived", trip_id: "T-9001", site_id: "CUST-77", arrived_at: "2025-10-29T14:01:00Z",
      event_id: expect.any(String), ack_id: expect.any(String),
    });
    expect(arrival!.headers["x-api-key"]).toBe(ERP_API_KEY);
    const workOrderBody = new Webhook(workOrderSecret).verify(workOrder!.body, workOrder!.headers) as Record<string, unknown>;
    expect(workOrderBody).toEqual({
      action: "work_order.create", work_order_id: "WO-7731", vehicle_id: "V-1042", vin: "1FTBW3XM6KKA52384", task: "120,000 km service: engine oil, filters, brake inspection",
      due_date: "2025-11-05", meter: { type: "odometer", value: 120000, unit: "km" }, event_id: expect.any(String), ack_id: expect.any(String),
    });

    const deliveries = async () => (await api("POST", `/v1/integrations/${integrationId}/events`, { token, json: { direction: "outbound", limit: 100 } })).body.events as {
      use_case_slug: string; status: string; ack_status: string;
    }[];
    const pending = await eventually(deliveries, (d) => d.length === 2 && d.every((x) => x.status === "delivered"), "two delivered webhooks");
    expect(pending.map((d) => `${d.use_case_slug}:${d.ack_status}`).sort()).toEqual(["order-arrival:pending", "work-order-create:pending"]);

    // The ERP acknowledges: the order was advanced; the work order was refused.
    expect((await api("POST", "/v1/erp/tracking/acknowledgement", { token, json: { ack_id: arrivalBody.ack_id, status: "processed" } })).status).toBe(200);
    expect((await api("POST", "/v1/erp/tracking/acknowledgement", { token, json: { ack_id: workOrderBody.ack_id, status: "failed", message: "vehicle V-1042 unknown in plant 1000" } })).status).toBe(200);
    expect((await deliveries()).map((d) => `${d.use_case_slug}:${d.ack_status}`).sort()).toEqual(["order-arrival:processed", "work-order-create:failed"]);
    expectError(await api("POST", "/v1/erp/tracking/acknowledgement", { token, json: { ack_id: "01JUNKNOWNACK000000000000", status: "processed" } }), 404, "NOT_FOUND");

    // The same arrival again (a retry of the platform's, re-signed): no second order advance.
    const again = await deliver(integrationId, "trips", JSON.stringify(fixture("trip-arrived").payload), await signed(JSON.stringify(fixture("trip-arrived").payload), { t: Math.floor(Date.now() / 1000) + 3 }));
    expect(again.body.status).toBe("skipped");
    expect(await received("arrivals")).toHaveLength(1);
  });

  it("backfills trips from the telematics API: a second run fetches only what changed since the first", async () => {
    const { token } = await freshTenant();
    const { integrationId } = await install(token);
    const run = () => api("POST", `/v1/integrations/${integrationId}/use-cases/trip-backfill/run`, { token });
    const fleetKey = `fleet-${unique()}`;
    const apiHost = new URL(TELEMATICS_API).host;

    // Installed by the blueprint with an empty configuration: the run says what to set.
    const unconfigured = await run();
    expectError(unconfigured, 502, "APP_FAILED");
    expect(unconfigured.body.error.message).toContain("the app is not configured: set api_url and api_key");
    // Configured, but the API's host not granted: refused by the sandbox's gateway.
    const configure = (json: unknown) => api("PATCH", `/v1/apps/installed/${app}`, { token, json });
    expect((await configure({ config: { api_url: TELEMATICS_API, api_key: fleetKey } })).status).toBe(200);
    expectError(await run(), 502, "APP_HOST_NOT_GRANTED");
    // A host the app does not declare cannot be granted.
    expectError(await configure({ grants: { hosts: ["api.samsara.com"] } }), 422, "UNPROCESSABLE");
    const granted = await configure({ grants: { hosts: [apiHost] } });
    expect(granted.status).toBe(200);
    expect(granted.body.config).toEqual({ api_url: TELEMATICS_API, api_key: "*****" });

    const first = await run();
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ use_case_slug: "trip-backfill", target_use_case: "trips", events: { received: 3, accepted: 3, refused: 0 } });
    for (const r of first.body.results) expect((await waitFor(token, r.event_id)).status).toBe("done");
    const [completed] = await entity(token, "trip", { trip_id: "T-8990" });
    expect(completed!.attributes).toMatchObject({ trip_id: "T-8990", order_id: "SO-2025-10405", status: "completed", distance_km: 212.4 });
    expect((await entity(token, "trip", { order_id: "SO-2025-10411" }))[0]!.attributes.trip_id).toBe("T-8995");
    expect((await entity(token, "driver", { driver_id: "D-318" }))[0]!.attributes.full_name).toBe("Priya Nair");

    const second = await run();
    expect(second.body.events).toEqual({ received: 0, accepted: 0, refused: 0 });

    // The platform changes one trip and starts another: the next run fetches exactly those two.
    const added = await fetch(`${TELEMATICS_API}/_trips`, {
      method: "POST",
      headers: { authorization: `Bearer ${fleetKey}`, "content-type": "application/json" },
      body: JSON.stringify([
        { trip_id: "T-8995", status: "arrived" },
        { trip_id: "T-9100", order_id: "SO-2025-10430", status: "dispatched", site_id: "CUST-77", vehicle_id: "V-1042", driver_id: "D-305", driver_name: "Yusuf Rahman" },
      ]),
    });
    expect(added.status).toBe(201);
    const third = await run();
    expect(third.body.events).toEqual({ received: 2, accepted: 2, refused: 0 });
    for (const r of third.body.results) expect((await waitFor(token, r.event_id)).status).toBe("done");
    expect((await entity(token, "trip", { trip_id: "T-8995" }))[0]!.attributes.status).toBe("arrived");
    expect((await entity(token, "trip", { order_id: "SO-2025-10430" }))[0]!.attributes).toMatchObject({ trip_id: "T-9100", status: "dispatched" });

    // What the API saw: the first run from the beginning, each later one from the cursor.
    const requests = (await (await fetch(`${TELEMATICS_API}/_requests`, { headers: { authorization: `Bearer ${fleetKey}` } })).json()) as {
      requests: { updated_since: string; returned: string[] }[];
    };
    expect(requests.requests.map((r) => r.returned)).toEqual([["T-8990", "T-8995", "T-8997"], ["T-8997"], ["T-8997", "T-8995", "T-9100"]]);
    expect(requests.requests[0]!.updated_since).toBe("1970-01-01T00:00:00.000Z");
    expect(requests.requests[1]!.updated_since).toBe(requests.requests[2]!.updated_since);
    const runs = await api("GET", `/v1/apps/runs?app=${encodeURIComponent(app)}&trigger=pull`, { token });
    expect(runs.body.runs.map((r: { outcome: string }) => r.outcome)).toEqual(["ok", "ok", "ok", "APP_HOST_NOT_GRANTED", "APP_FAILED"]);
  });

  it("honours the seed's Idempotency-Key: a retry signed again is a duplicate, a replay stays one whatever its key", async () => {
    const { token } = await freshTenant();
    const { integrationId } = await install(token);
    const raw = JSON.stringify(fixture("fuel-transaction").payload);
    const t = Math.floor(Date.now() / 1000);
    const first = await deliver(integrationId, "fuel-transactions", raw, await signed(raw, { t, key: "2c1f3b76-0001" }));
    expect(first.body.status).toBe("success");
    const status = await waitFor(token, first.body.event_id);
    expect(status).toMatchObject({ status: "done", correlation_id: "2c1f3b76-0001" });

    // The platform's retry: same body and key, signed again at another time.
    const retry = await deliver(integrationId, "fuel-transactions", raw, await signed(raw, { t: t + 30, key: "2c1f3b76-0001" }));
    expect(retry.body).toMatchObject({ status: "skipped", event_id: first.body.event_id, message: expect.stringContaining("Idempotency-Key '2c1f3b76-0001'") });
    // A captured request replayed with a fresh key is still the same signed request.
    expect((await deliver(integrationId, "fuel-transactions", raw, await signed(raw, { t, key: "fresh-key" }))).body.status).toBe("skipped");
    // ...and that replay registered no key: a new delivery with it is processed.
    const other = JSON.stringify({ ...fixture("fuel-transaction").payload, id: "evt_other", data: { ...fixture("fuel-transaction").payload.data, fuel_txn_id: "FT-55013" } });
    expect((await deliver(integrationId, "fuel-transactions", other, await signed(other, { t, key: "fresh-key" }))).body.status).toBe("success");
    // Keys live in their use case: the same key at another use case is another delivery.
    const location = JSON.stringify(fixture("vehicle-location").payload);
    expect((await deliver(integrationId, "vehicle-locations", location, await signed(location, { key: "2c1f3b76-0001" }))).body.status).toBe("success");
    // Without a key, a re-signed delivery is a new event (the entity write itself stays idempotent).
    const unkeyed = await deliver(integrationId, "fuel-transactions", raw, await signed(raw, { t: t + 60, key: null }));
    expect(unkeyed.body.status).toBe("success");
    expect((await waitFor(token, unkeyed.body.event_id)).entities).toMatchObject([{ slug: "fuel_transaction", operation: "unchanged" }]);
    // A key that is not 1..255 visible ASCII characters is ignored, with a warning, never refused.
    const odd = JSON.stringify({ ...fixture("fuel-transaction").payload, id: "evt_odd", data: { ...fixture("fuel-transaction").payload.data, fuel_txn_id: "FT-55014" } });
    const ignored = await deliver(integrationId, "fuel-transactions", odd, await signed(odd, { key: "x".repeat(300) }));
    expect(ignored.body.status).toBe("success");
    expect((await waitFor(token, ignored.body.event_id)).warnings).toMatchObject([{ code: "IDEMPOTENCY_KEY_IGNORED" }]);
    // The key is looked up through the log shard's correlation_id index, not a day of events.
    const plan = await logQuery<{ detail: string }>(integrationId, `EXPLAIN QUERY PLAN ${KEY_SEEN_SQL}`, "k", "u", "2026-01-01");
    expect(plan[0]!.detail).toMatch(/^SEARCH events USING INDEX events_correlation \(correlation_id=\?\)/);
    // An event posted through the API cannot pass for a webhook to plant a key (a hostile review's finding).
    const planted = await api("POST", "/v3/erp/updates/events", {
      token,
      json: { integration_id: integrationId, events: [{ use_case_slug: "fuel-transactions", timestamp: new Date().toISOString(), deduplication_id: "xsig-planted", correlation_id: "planted-key", payload: { x: 1 } }] },
    });
    expect(planted.status).toBe(200);
    expect(planted.body.results[0]).toMatchObject({ status: "error", message: expect.stringContaining("reserved for signed webhooks") });
    // The signature still decides first: a forged retry with a known key is a 401 and stores nothing.
    expectError(await deliver(integrationId, "fuel-transactions", raw, await signed(raw, { key: "2c1f3b76-0001", secret: "not-the-secret" })), 401, "UNAUTHORIZED");
  });

  it("upgrades 1.0.0 to 1.1.0 keeping the tenant's changed mapping field, reported as a conflict", async () => {
    const { token } = await freshTenant();
    const { integrationId, useCases } = await install(token);
    // The tenant maps trip statuses its own way.
    const trips = useCases.trips!;
    const mine = structuredClone(trips.configuration);
    mine.entities[0].fields.find((f: { attribute: string }) => f.attribute === "status").jsonataExpression = "$uppercase(data.status)";
    expect((await api("PUT", `/v1/integrations/${integrationId}/use-cases/${trips.id}`, { token, json: { name: trips.name, slug: "trips", type: "inbound", configuration: mine } })).status).toBe(200);

    // The publisher's 1.1.0 maps them differently too, and adds a field to the service-due mapping.
    await publishRepoBlueprint("telematics", publisher, (files) => {
      const manifest = JSON.parse(files["blueprint.json"]!);
      files["blueprint.json"] = JSON.stringify({ ...manifest, version: "1.1.0" });
      files["mappings/trips.json"] = files["mappings/trips.json"]!.replaceAll('"$lowercase(data.status)"', '"$lowercase($replace(data.status, \' \', \'_\'))"');
      const workOrders = JSON.parse(files["mappings/work-orders.json"]!);
      workOrders.entities[0].fields.push({ attribute: "priority", field: "$.data.priority" });
      files["mappings/work-orders.json"] = JSON.stringify(workOrders);
      for (const name of ["mappings/order-arrival.json", "mappings/work-order-create.json"]) files[name] = files[name]!.replace(/https:\/\/erp\.example\.com\/api\/telematics\/[a-z-]+/, SINK);
    });

    const upgrade = (dry_run: boolean) => api("POST", `/v1/blueprints/installed/${blueprint}/upgrade`, { token, json: { version: "^1.1", dry_run } });
    const plan = await upgrade(true);
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    const entry = (key: string) => plan.body.plan.find((p: { resource: string; key: string }) => p.resource === "use_case" && p.key === key);
    expect(entry("telematics/trips")).toMatchObject({ action: "conflict", diff: { conflicts: [{ path: "configuration.entities" }] } });
    const conflict = entry("telematics/trips").diff.conflicts[0];
    const statusOf = (entities: { fields: { attribute: string; jsonataExpression?: string }[] }[]) => entities[0]!.fields.find((f) => f.attribute === "status")!.jsonataExpression;
    expect([statusOf(conflict.base), statusOf(conflict.current), statusOf(conflict.incoming)]).toEqual([
      "$lowercase(data.status)", "$uppercase(data.status)", "$lowercase($replace(data.status, ' ', '_'))",
    ]);
    expect(entry("telematics/service-due")).toMatchObject({ action: "update" });
    expect(entry("telematics/vehicle-locations")).toMatchObject({ action: "no-op" });

    const applied = await upgrade(false);
    expect(applied.status).toBe(200);
    expect(applied.body).toMatchObject({ version: "1.1.0", from: { version: "1.0.0" } });
    const after = (await api("GET", `/v2/integrations/${integrationId}`, { token })).body.use_cases as { slug: string; configuration: any }[];
    expect(statusOf(after.find((u) => u.slug === "trips")!.configuration.entities)).toBe("$uppercase(data.status)");
    expect(after.find((u) => u.slug === "service-due")!.configuration.entities[0].fields.at(-1)).toEqual({ attribute: "priority", field: "$.data.priority" });
    const audit = await api("GET", "/v1/audit-log", { token });
    expect(JSON.stringify(audit.body)).toContain("telematics/trips");
  });
});
