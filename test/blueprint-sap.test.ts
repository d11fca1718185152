// The @erp-edge/sap-s4hana blueprint (blueprints/sap-s4hana, issue #14) end to end through the public
// API: installed in fresh tenants with its environment, every fixture event posted and compared with
// the entity store, replayed without effect, its webhooks and ACKs, its archive download, its pull
// against the fake SAP OData service (scripts/fake-sap.mjs) and an upgrade that keeps a tenant's change.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { blueprintFiles, publishRepoBlueprint } from "./blueprint-helpers";
import { trust } from "./app-helpers";
import { open } from "./file-proxy-helpers";
import { api, createTenant, createToken, eventually, expectError } from "./helpers";
import { findOne, post, waitFor } from "./inbound-helpers";
import { newPublisher, unique, type Publisher } from "./registry-helpers";
import type { Scope } from "../src/platform/scopes";

const RECEIVER = env.RECEIVER_URL;
const SAP = env.SAP_ODATA_URL;
const SERVICE = `${SAP}/sap/opu/odata/sap/API_BUSINESS_PARTNER`;
const INSTALLER: Scope[] = ["blueprints:install", "integrations:read", "integrations:write", "events:write", "secrets:use", "files:read", "monitoring:read"];

let publisher: Publisher;
let blueprint: string;
let app: string;

/** The blueprint's environment for a tenant: the fake archive (vitest's), its own OAuth client id. */
const environment = () => ({
  SAP_ARCHIVE_URL: env.ARCHIVE_URL,
  SAP_ARCHIVE_CLIENT_ID: `edge-sap-${unique()}`,
  SAP_ARCHIVE_CLIENT_SECRET: "s3cret",
  SAP_CPI_USER: "ERPEDGE_CPI",
  SAP_CPI_PASSWORD: "cpi-s3cret",
});

interface Installed {
  token: string;
  integrationId: string;
  environment: ReturnType<typeof environment>;
}

/** A fresh tenant that trusts the test publisher and has the blueprint installed with its environment. */
async function install(): Promise<Installed> {
  const tenant = await createTenant("Stadtwerke Musterstadt");
  const { token } = await createToken(tenant.id, INSTALLER);
  await trust(token, publisher.name);
  const values = environment();
  const res = await api("POST", "/v1/blueprints/install", { token, json: { name: blueprint, version: "^1", environment: values } });
  if (res.status !== 201) throw new Error(`install: ${res.status} ${JSON.stringify(res.body)}`);
  return { token, integrationId: res.body.installation.resources.integrations[0].id, environment: values };
}

// ---- the blueprint's fixtures, read from the package as published ------------------------------

interface Fixture {
  file: string;
  use_case: string;
  format?: "json" | "xml";
  payload: unknown;
  expected: { entity_updates: EntityUpdate[]; meter_readings_updates?: MeterReading[] };
}
interface EntityUpdate {
  entity_slug: string;
  unique_identifiers: Record<string, string>;
  attributes: Record<string, unknown>;
  mode?: "upsert" | "delete";
}
interface MeterReading {
  meter: { $entity_unique_ids: Record<string, string> };
  meter_counter?: { $entity_unique_ids: Record<string, string> };
  attributes: Record<string, unknown>;
}
type Relation = { $relation: { _set: { $entity_unique_ids: Record<string, string>; _schema: string }[] } };

let files: Record<string, string>;
let fixtures: Fixture[];

/** A fixture's payload as SAP sends it: inline, or the JSON or XML file its `$file` names. */
function sapPayload(f: Fixture): unknown {
  const ref = (f.payload as { $file?: string }).$file;
  if (!ref) return f.payload;
  const text = files[ref];
  if (text === undefined) throw new Error(`${f.file}: no ${ref} in the package`);
  return f.format === "xml" ? text : JSON.parse(text);
}

/** The events of every fixture, in order, as SAP's middleware posts them (a deduplication id each, as an IDoc number would be). */
const fixtureEvents = () =>
  fixtures.map((f, i) => ({
    use_case_slug: f.use_case,
    format: f.format ?? "json",
    payload: sapPayload(f),
    timestamp: new Date(Date.parse("2026-11-20T08:00:00Z") + i * 60_000).toISOString(),
    deduplication_id: `sap-fixture-${i + 1}`,
  }));

const query = (ids: Record<string, string>) => new URLSearchParams(ids).toString();

/** What the store must hold after the fixtures: their updates folded in order (attributes merge; delete marks). */
function expectedStore() {
  const store = new Map<string, { schema: string; ids: Record<string, string>; attributes: Record<string, unknown>; deleted: boolean }>();
  for (const f of fixtures) {
    for (const u of f.expected.entity_updates) {
      const key = `${u.entity_slug} ${query(u.unique_identifiers)}`;
      const entry = store.get(key) ?? { schema: u.entity_slug, ids: u.unique_identifiers, attributes: {}, deleted: false };
      if (u.mode === "delete") entry.deleted = true;
      else {
        Object.assign(entry.attributes, u.attributes);
        entry.deleted = false;
      }
      store.set(key, entry);
    }
  }
  return [...store.values()];
}

/** An entity's stored attributes compared with the mapped ones: relations resolved to entity ids, download links signed. */
async function expectStored(token: string, integrationId: string, schema: string, ids: Record<string, string>, attributes: Record<string, unknown>) {
  const entity = await findOne(token, schema, query(ids));
  expect(entity, `${schema} ${query(ids)}`).toBeTruthy();
  expect(Object.keys(entity.attributes).sort(), `${schema} ${query(ids)} attributes`).toEqual(Object.keys(attributes).sort());
  for (const [name, value] of Object.entries(attributes)) {
    const stored = entity.attributes[name];
    if (value && typeof value === "object" && "$relation" in value) {
      const targets = await Promise.all(
        (value as Relation).$relation._set.map(async (ref) => ({ entity_id: (await findOne(token, ref._schema, query(ref.$entity_unique_ids)))!.id, _schema: ref._schema })),
      );
      expect((stored as { entity_id: string; _schema: string }[]).map(({ entity_id, _schema }) => ({ entity_id, _schema })), `${schema}.${name}`).toEqual(targets);
    } else if (name === "custom_download_url") {
      // Mapped without an integration (the fixture) it is unsigned; in the pipeline it is signed for this integration.
      const want = new URL(value as string, "http://x");
      const got = new URL(stored as string);
      expect(got.pathname).toBe(want.pathname);
      for (const [param, v] of want.searchParams) expect(got.searchParams.get(param), param).toBe(param === "integration_id" ? integrationId : v);
      expect(got.searchParams.get("sig")).toBeTruthy();
    } else expect(stored, `${schema}.${name}`).toEqual(value);
  }
  return entity;
}

/** Every expected entity's stored state and every meter's readings: what "nothing changed" compares. */
async function snapshot(token: string) {
  const entities = [];
  for (const e of expectedStore()) {
    const { id, version, attributes, deleted_at } = await findOne(token, e.schema, query(e.ids));
    entities.push({ id, version, attributes, deleted_at });
  }
  const meter = await findOne(token, "meter", "external_id=10012345");
  // A reading upserted again keeps its id and values; only the event that last wrote it and when move on.
  const readings = (await api("GET", `/v1/entities/meter/${meter.id}/readings`, { token })).body.meter_readings.map(({ event_id: _, updated_at: __, ...r }: Record<string, unknown>) => r);
  return { entities, readings };
}


async function useCase(s: Installed, slug: string) {
  const list = (await api("GET", `/v1/integrations/${s.integrationId}/use-cases`, { token: s.token })).body;
  const found = (list.use_cases ?? list).find((u: { slug: string }) => u.slug === slug);
  if (!found) throw new Error(`no use case ${slug}`);
  return found as { id: string; slug: string; name: string; type: string; enabled: boolean; configuration: Record<string, any> };
}

/** Changes a use case as a tenant does (PUT with its whole declaration). */
async function changeUseCase(s: Installed, slug: string, change: (uc: { name: string; enabled: boolean; configuration: Record<string, any> }) => void) {
  const uc = await useCase(s, slug);
  const body = { slug: uc.slug, name: uc.name, type: uc.type, enabled: uc.enabled, configuration: structuredClone(uc.configuration) };
  change(body);
  const res = await api("PUT", `/v1/integrations/${s.integrationId}/use-cases/${uc.id}`, { token: s.token, json: body });
  if (res.status !== 200) throw new Error(`PUT ${slug}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

beforeAll(async () => {
  publisher = await newPublisher("sap");
  const published = await publishRepoBlueprint("sap-s4hana", publisher);
  blueprint = published.name;
  app = published.app!;
  files = blueprintFiles("sap-s4hana", publisher.name);
  fixtures = Object.keys(files)
    .filter((p) => /^fixtures\/[^/]+\.json$/.test(p))
    .sort()
    .map((file) => ({ file, ...JSON.parse(files[file]!) }));
});

describe("the SAP S/4HANA blueprint in a fresh tenant", () => {
  let s: Installed;
  let eventIds: string[];

  it("shows its plan, refuses a missing environment value and a token that may not send secrets, then installs", async () => {
    const tenant = await createTenant("Stadtwerke Musterstadt");
    const { token } = await createToken(tenant.id, INSTALLER);
    await trust(token, publisher.name);
    const values = environment();
    const dry = await api("POST", "/v1/blueprints/install", { token, json: { name: blueprint, version: "^1", environment: values, dry_run: true } });
    expect(dry.status).toBe(200);
    const plan = dry.body.plan as { resource: string; key: string; action: string; diff?: { changes: { to: unknown }[] } }[];
    expect(plan.map((p) => `${p.resource} ${p.key} ${p.action}`).sort()).toEqual(
      [
        "integration sap-s4hana create",
        ...[
          "business-partners", "customers-idoc", "contract-accounts", "utility-contracts", "devices", "meter-readings", "billing-documents",
          "billing-document-pdf", "customer-details-updated", "meter-reading-added", "business-partner-delta",
        ].map((slug) => `use_case sap-s4hana/${slug} create`),
        ...Object.keys(values).map((key) => `environment ${key} create`),
        `app ${app} create`,
      ].sort(),
    );
    const secret = plan.find((p) => p.key === "SAP_ARCHIVE_CLIENT_SECRET")!;
    expect(secret.diff!.changes[0]!.to).toBe("********");
    expect(JSON.stringify(dry.body)).not.toContain("cpi-s3cret");
    expect((await api("GET", "/v2/integrations", { token })).body.integrations).toEqual([]);

    const { SAP_ARCHIVE_URL: _, ...missing } = values;
    const details = expectError(await api("POST", "/v1/blueprints/install", { token, json: { name: blueprint, version: "^1", environment: missing } }), 422, "UNPROCESSABLE");
    expect(JSON.stringify(details)).toContain("environment.SAP_ARCHIVE_URL");
    const { token: noSecrets } = await createToken(tenant.id, INSTALLER.filter((x) => x !== "secrets:use"));
    expect((await api("POST", "/v1/blueprints/install", { token: noSecrets, json: { name: blueprint, version: "^1", environment: values } })).status).toBe(403);

    const res = await api("POST", "/v1/blueprints/install", { token, json: { name: blueprint, version: "^1", environment: values } });
    expect(res.status).toBe(201);
    s = { token, integrationId: res.body.installation.resources.integrations[0].id, environment: values };
    const integration = (await api("GET", `/v2/integrations/${s.integrationId}`, { token })).body;
    const enabled = Object.fromEntries(integration.use_cases.map((u: { slug: string; enabled: boolean }) => [u.slug, u.enabled]));
    // What calls out to the tenant's own systems waits until it is pointed at them.
    expect(enabled).toMatchObject({ "business-partners": true, "billing-document-pdf": true, "customer-details-updated": false, "meter-reading-added": false, "business-partner-delta": false });
    const installedApp = await api("GET", `/v1/apps/installed/${app}`, { token });
    expect(installedApp.body).toMatchObject({ name: app, version: "1.0.0", grants: { hosts: ["127.0.0.1", "localhost"] } });
  });

  it("maps every fixture event posted through the public API into exactly the entities the fixtures expect", async () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(11);
    const results = await post(s.token, s.integrationId, fixtureEvents());
    expect(results.map((r) => r.status)).toEqual(fixtures.map(() => "success"));
    eventIds = results.map((r) => r.event_id);
    const statuses = [];
    for (const [i, id] of eventIds.entries()) {
      const status = await waitFor(s.token, id);
      expect({ fixture: fixtures[i]!.file, status: status.status, errors: status.errors }).toEqual({ fixture: fixtures[i]!.file, status: "done", errors: [] });
      statuses.push(status);
    }
    // The IDoc of the customer the OData message created changes nothing: both paths give the same contact.
    const idoc = fixtures.findIndex((f) => f.use_case === "customers-idoc" && f.expected.entity_updates[0]?.unique_identifiers.customer_number === "1000234");
    expect(statuses[idoc].entities).toEqual([expect.objectContaining({ slug: "contact", operation: "unchanged", unique_ids: { customer_number: "1000234" } })]);

    for (const e of expectedStore()) {
      const entity = await expectStored(s.token, s.integrationId, e.schema, e.ids, e.attributes);
      expect(entity.deleted_at === null, `${e.schema} ${query(e.ids)} deleted`).toBe(!e.deleted);
    }
    const meter = await findOne(s.token, "meter", "external_id=10012345");
    const readings = (await api("GET", `/v1/entities/meter/${meter.id}/readings`, { token: s.token })).body.meter_readings;
    const expectedReadings = fixtures.flatMap((f) => f.expected.meter_readings_updates ?? []);
    expect(readings).toHaveLength(expectedReadings.length);
    for (const r of expectedReadings) {
      const stored = readings.find((x: { external_id: string }) => x.external_id === r.attributes.external_id);
      const counter = await findOne(s.token, "meter_counter", query(r.meter_counter!.$entity_unique_ids));
      expect(stored).toMatchObject({ counter_id: counter.id, value: r.attributes.value, source: r.attributes.source, reason: r.attributes.reason });
      expect(Date.parse(stored.timestamp)).toBe(Date.parse(r.attributes.timestamp as string));
    }
  });

  it("changes nothing when the same events come again: repeats are skipped, replays leave every entity as it was", async () => {
    const before = await snapshot(s.token);
    const again = await post(s.token, s.integrationId, fixtureEvents());
    expect(again.map((r) => r.status)).toEqual(fixtures.map(() => "skipped"));
    expect(again.map((r) => r.event_id)).toEqual(eventIds);

    const replay = await api("POST", `/v1/integrations/${s.integrationId}/events/replay`, { token: s.token, json: { event_ids: eventIds } });
    expect(replay.status).toBe(200);
    expect(replay.body.replayed).toBe(eventIds.length);
    for (const r of replay.body.results as { replay_event_id: string }[]) {
      const status = await waitFor(s.token, r.replay_event_id);
      expect(status.status).toBe("done");
      for (const e of status.entities.filter((x: { slug: string }) => x.slug !== "meter_reading")) expect(["unchanged", "skipped_stale"]).toContain(e.operation);
    }
    expect(await snapshot(s.token)).toEqual(before);
  });

  it("sends CustomerDetailsUpdated and MeterReadingAdded to the middleware as signed webhooks and tracks their ACKs", async () => {
    const keys = { customer: `sap-customer-${unique()}`, reading: `sap-reading-${unique()}` };
    for (const [slug, key] of [["customer-details-updated", keys.customer], ["meter-reading-added", keys.reading]] as const) {
      await changeUseCase(s, slug, (uc) => {
        uc.enabled = true;
        uc.configuration.mappings[0].delivery.url = `${RECEIVER}/hook/${key}`;
      });
    }
    const customer = await api("POST", "/v1/events", {
      token: s.token,
      json: {
        event_name: "CustomerDetailsUpdated",
        payload: { customer_number: "1000234", email: "anna.schmidt@example.net", phone: "030 7654321", address: { street: "Kastanienallee", street_number: "7", postal_code: "10435", city: "Berlin", country: "DE" } },
      },
    });
    const reading = await api("POST", "/v1/events", {
      token: s.token,
      json: { event_name: "MeterReadingAdded", payload: { meter_id: "10012345", meter_number: "1ESY1161234567", counter: "001", reading: { value: 14480.2, date: "2026-12-01", source: "ECP" } } },
    });
    expect([customer.status, reading.status]).toEqual([202, 202]);

    const received = (key: string) => eventually(async () => (await fetch(`${RECEIVER}/_requests/${key}`)).json() as Promise<{ headers: Record<string, string>; body: string }[]>, (r) => r.length === 1, key);
    const [toCustomer] = await received(keys.customer);
    expect(JSON.parse(toCustomer!.body)).toEqual({
      ack_id: customer.body.ack_id,
      event_id: customer.body.event_id,
      changed_at: expect.any(String),
      BusinessPartner: "1000234",
      EmailAddress: "anna.schmidt@example.net",
      PhoneNumber: "030 7654321",
      Address: { StreetName: "Kastanienallee", HouseNumber: "7", PostalCode: "10435", CityName: "Berlin", Country: "DE" },
    });
    // Basic authentication from the environment the blueprint was installed with; signed per Standard Webhooks.
    expect(toCustomer!.headers.authorization).toBe(`Basic ${btoa("ERPEDGE_CPI:cpi-s3cret")}`);
    expect(toCustomer!.headers["webhook-signature"]).toMatch(/^v1,/);
    const [toReading] = await received(keys.reading);
    expect(JSON.parse(toReading!.body)).toEqual({
      ack_id: reading.body.ack_id, event_id: reading.body.event_id, EQUNR: "000000000010012345", ZWNUMMER: "001", ADAT: "20261201", ZWSTAND: "14480.2", ISTABLART: "02", ABLESGR: "09",
    });

    const deliveries = async () => (await api("POST", `/v1/integrations/${s.integrationId}/events`, { token: s.token, json: { direction: "outbound" } })).body.events as { event_name: string; status: string; ack_status: string }[];
    const delivered = await eventually(deliveries, (d) => d.filter((x) => x.status === "delivered").length === 2, "two deliveries");
    expect(delivered.map((d) => d.ack_status)).toEqual(["pending", "pending"]);
    for (const ack of [customer.body.ack_id, reading.body.ack_id]) {
      const res = await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { ack_id: ack, status: "processed", message: "updated in SAP" } });
      expect(res.body).toMatchObject({ direction: "outbound", status: "processed" });
    }
    expect((await deliveries()).map((d) => `${d.event_name} ${d.ack_status}`).sort()).toEqual(["CustomerDetailsUpdated processed", "MeterReadingAdded processed"]);
    expectError(await api("POST", "/v1/erp/tracking/acknowledgement", { token: s.token, json: { ack_id: "01JNOTANACKID0000000000000" } }), 404, "NOT_FOUND");
  });

  it("opens a billing document's download link: OAuth2, the ArchiveLink lookup, the PDF from the fake archive", async () => {
    const file = await findOne(s.token, "file", "external_id=sap-print-document-412345");
    const link = new URL(file.attributes.custom_download_url);
    const res = await open(`${link.pathname}${link.search}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/pdf");
    expect(res.headers.get("content-disposition")).toBe(`inline; filename="Rechnung 412345.pdf"; filename*=UTF-8''Rechnung%20412345.pdf`);
    const proxied = new Uint8Array(await res.arrayBuffer());

    // The same document straight from the archive, with a token of the tenant's own client.
    const form = new URLSearchParams({ grant_type: "client_credentials", client_id: s.environment.SAP_ARCHIVE_CLIENT_ID, client_secret: "s3cret" });
    const { access_token } = (await (await fetch(`${env.ARCHIVE_URL}/oauth/token`, { method: "POST", body: form })).json()) as { access_token: string };
    const auth = { authorization: `Bearer ${access_token}` };
    const lookup = (await (await fetch(`${env.ARCHIVE_URL}/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV/GetAllOriginals?BusinessObjectTypeName='ISU_PRDOCH'&LinkedSAPObjectKey='000000412345'&$format=json`, { headers: auth })).json()) as {
      d: { results: { __metadata: { media_src: string } }[] };
    };
    const direct = new Uint8Array(await (await fetch(lookup.d.results[0]!.__metadata.media_src, { headers: auth })).arrayBuffer());
    expect(proxied).toEqual(direct);
    expect(new TextDecoder().decode(proxied.subarray(0, 8))).toBe("%PDF-1.4");
    expect(new TextDecoder().decode(proxied)).toContain("(Rechnung 412345)");

    const ranged = await open(`${link.pathname}${link.search}`, { range: "bytes=0-7" });
    expect(ranged.status).toBe(206);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(direct.subarray(0, 8));
    // Another print document under the same signature is refused; one the archive does not have is a 404.
    const tampered = `${link.pathname}${link.search.replace("000000412345", "000000412346")}`;
    expect((await open(tampered)).status).toBe(403);
    const signed = await api("POST", "/v1/files/sign", { token: s.token, json: { integration_id: s.integrationId, use_case_slug: "billing-document-pdf", params: { print_document: "missing-000001" } } });
    const missing = new URL(signed.body.url);
    expect((await open(`${missing.pathname}${missing.search}`)).status).toBe(404);
  });

  it("pulls business partners from the OData service: the first run fetches all, the next only what changed", async () => {
    const run = () => api("POST", `/v1/integrations/${s.integrationId}/use-cases/business-partner-delta/run`, { token: s.token });
    // Not configured yet: the app says what is missing, and nothing moves.
    const unconfigured = await run();
    expectError(unconfigured, 502, "APP_FAILED");
    expect(unconfigured.body.error.message).toMatch(/No service_url/);

    const patched = await api("PATCH", `/v1/apps/installed/${app}`, { token: s.token, json: { config: { service_url: SERVICE, username: "ERPEDGE_COMM", password: "s3cret" } } });
    expect(patched.status).toBe(200);
    expect(patched.body.config).toMatchObject({ service_url: SERVICE, username: "ERPEDGE_COMM", password: "*****" });
    await changeUseCase(s, "business-partner-delta", (uc) => (uc.enabled = true));

    const settle = async (results: { event_id: string; status: string }[]) => {
      for (const r of results.filter((x) => x.status === "success")) expect((await waitFor(s.token, r.event_id)).status).toBe("done");
    };
    const first = await run();
    expect(first.status).toBe(200);
    const partnersBefore = first.body.events.received as number;
    expect(partnersBefore).toBeGreaterThanOrEqual(4);
    expect(first.body).toMatchObject({ target_use_case: "business-partners", events: { accepted: partnersBefore, refused: 0 } });
    await settle(first.body.results);
    const weiss = await findOne(s.token, "contact", "customer_number=1000236");
    expect(weiss.attributes).toMatchObject({ salutation: "Mr.", title: "Dr.", first_name: "Jürgen", last_name: "Weiß", birthdate: "1961-08-23", phone: [{ phone: "+49 171 2345678", _tags: ["mobile"] }] });

    const second = await run();
    expect(second.body.events).toEqual({ received: 0, accepted: 0, refused: 0 });

    // In SAP: one partner changes, one is created. The next run fetches those two and nothing else.
    const newPartner = String(1000300 + Math.floor(Math.random() * 600000));
    for (const body of [
      { BusinessPartner: "1000237", address: { EmailAddress: "oezlem.yilmaz@example.net" } },
      { BusinessPartner: newPartner, FirstName: "Lena", LastName: "Vogel", FormOfAddress: "0001", address: { StreetName: "Marktplatz", HouseNumber: "1", PostalCode: "69117", CityName: "Heidelberg", PhoneNumber: "06221 583910" } },
    ]) {
      expect((await fetch(`${SAP}/_partners`, { method: "POST", body: JSON.stringify(body) })).status).toBe(200);
    }
    const third = await run();
    expect(third.body.events).toEqual({ received: 2, accepted: 2, refused: 0 });
    const requests = (await (await fetch(`${SAP}/_requests`)).json()) as { filter: string; returned: string[] }[];
    expect(requests.at(-1)!.returned).toEqual(["1000237", newPartner]);
    expect(requests.at(-1)!.filter).toMatch(/^LastChangeDate gt datetime'/);
    await settle(third.body.results);
    expect((await findOne(s.token, "contact", "customer_number=1000237")).attributes.email).toEqual([{ email: "oezlem.yilmaz@example.net", _tags: ["primary"] }]);
    expect((await findOne(s.token, "contact", `customer_number=${newPartner}`)).attributes).toMatchObject({ full_name: "Lena Vogel", address: [expect.objectContaining({ city: "Heidelberg" })] });
    expect((await run()).body.events.received).toBe(0);

    // A pull pointed elsewhere reaches only hosts granted to the app: the metadata address is refused, the cursor stays.
    await changeUseCase(s, "business-partner-delta", (uc) => (uc.configuration.input = { service_url: "http://169.254.169.254/latest/meta-data" }));
    expectError(await run(), 502, "APP_HOST_NOT_GRANTED");
    await changeUseCase(s, "business-partner-delta", (uc) => (uc.configuration.input = {}));
    expect((await run()).body.events.received).toBe(0);
    const runs = (await api("GET", `/v1/apps/runs?app=${encodeURIComponent(app)}&trigger=pull`, { token: s.token })).body.runs as { outcome: string }[];
    expect(runs.map((r) => r.outcome)).toContain("APP_HOST_NOT_GRANTED");
  });

  it("upgrades from 1.0.0 to 1.1.0 keeping the tenant's changed mapping as a reported conflict", async () => {
    // The tenant writes salutations in German; 1.1.0 puts the academic title into full_name.
    await changeUseCase(s, "business-partners", (uc) => {
      const field = uc.configuration.entities[0].fields.find((f: { attribute: string }) => f.attribute === "salutation");
      field.jsonataExpression = "$lookup({ '0001': 'Frau', '0002': 'Herr' }, FormOfAddress)";
    });
    // The tenant granted the app its own S/4HANA Cloud system (a host the app declares under *.s4hana.ondemand.com).
    const own = "my300123-api.s4hana.ondemand.com";
    const patched = await api("PATCH", `/v1/apps/installed/${app}`, { token: s.token, json: { grants: { hosts: ["127.0.0.1", "localhost", own] } } });
    expect(patched.status).toBe(200);
    await publishRepoBlueprint("sap-s4hana", publisher, (f) => {
      const manifest = JSON.parse(f["blueprint.json"]!);
      manifest.version = "1.1.0";
      manifest.integrations[0].name = "SAP S/4HANA Utilities (IS-U)";
      // 1.1.0 grants the app one host fewer: the blueprint's grants change, the tenant's own survive.
      manifest.apps[0].grants.hosts = ["127.0.0.1"];
      f["blueprint.json"] = JSON.stringify(manifest);
      const mapping = JSON.parse(f["mappings/business-partners.json"]!);
      mapping.entities[0].fields.find((x: { attribute: string }) => x.attribute === "full_name").jsonataExpression =
        "$join([$lookup({ '0001': 'Dr.', '0002': 'Prof.', '0003': 'Prof. Dr.' }, AcademicTitle), FirstName, LastName], ' ')";
      f["mappings/business-partners.json"] = JSON.stringify(mapping);
    });
    const path = `/v1/blueprints/installed/${blueprint}/upgrade`;
    const dry = await api("POST", path, { token: s.token, json: { version: "^1.1", dry_run: true } });
    expect(dry.status).toBe(200);
    const entry = (key: string) => (dry.body.plan as { key: string; action: string; diff?: any }[]).find((p) => p.key === key)!;
    expect(entry("sap-s4hana")).toMatchObject({ action: "update", diff: { changes: [{ path: "name", from: "SAP S/4HANA Utilities", to: "SAP S/4HANA Utilities (IS-U)" }] } });
    const conflict = entry("sap-s4hana/business-partners");
    expect(conflict.action).toBe("conflict");
    expect(conflict.diff.conflicts).toHaveLength(1);
    expect(conflict.diff.conflicts[0].path).toBe("configuration.entities");
    expect(JSON.stringify(conflict.diff.conflicts[0].current)).toContain("'Frau'");
    expect(JSON.stringify(conflict.diff.conflicts[0].incoming)).toContain("AcademicTitle), FirstName, LastName");
    // The tenant's webhook URLs and enabled pull are its own changes to use cases 1.1.0 leaves alone.
    for (const key of ["customer-details-updated", "meter-reading-added", "business-partner-delta"]) expect(entry(`sap-s4hana/${key}`).action).toBe("no-op");

    const applied = await api("POST", path, { token: s.token, json: { version: "^1.1" } });
    expect(applied.status).toBe(200);
    expect(applied.body.installation.version).toBe("1.1.0");
    const kept = await useCase(s, "business-partners");
    expect(JSON.stringify(kept.configuration)).toContain("'Frau'");
    expect(JSON.stringify(kept.configuration)).not.toContain("AcademicTitle), FirstName");
    expect((await api("GET", `/v2/integrations/${s.integrationId}`, { token: s.token })).body.name).toBe("SAP S/4HANA Utilities (IS-U)");
    expect((await useCase(s, "customer-details-updated")).configuration.mappings[0].delivery.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/hook\//);
    const after = await api("GET", `/v1/apps/installed/${app}`, { token: s.token });
    expect(after.body.grants.hosts).toContain(own);
    expect(after.body.grants.hosts).toContain("127.0.0.1");
  });
});

describe("the two customer paths", () => {
  it("give equal contacts: an OData business partner (through the app) and the same customer as a DEBMAS07 IDoc", async () => {
    const byOdata = await install();
    const byIdoc = await install();
    const odata = fixtures.find((f) => f.use_case === "business-partners" && f.expected.entity_updates[0]!.entity_slug === "contact")!;
    const idoc = fixtures.find((f) => f.use_case === "customers-idoc" && f.expected.entity_updates[0]!.unique_identifiers.customer_number === "1000234")!;
    const [a] = await post(byOdata.token, byOdata.integrationId, [{ use_case_slug: "business-partners", payload: sapPayload(odata) }]);
    const [b] = await post(byIdoc.token, byIdoc.integrationId, [{ use_case_slug: "customers-idoc", format: "xml", payload: sapPayload(idoc) }]);
    expect((await waitFor(byOdata.token, a!.event_id)).status).toBe("done");
    expect((await waitFor(byIdoc.token, b!.event_id)).status).toBe("done");
    const fromOdata = await findOne(byOdata.token, "contact", "customer_number=1000234");
    const fromIdoc = await findOne(byIdoc.token, "contact", "customer_number=1000234");
    expect(fromIdoc.attributes).toEqual(fromOdata.attributes);
    expect(fromOdata.attributes).toMatchObject({ full_name: "Anna Schmidt", address: [expect.objectContaining({ street: "Torstraße", street_number: "12" })] });
  });

  it("refuses what is not a business partner, naming the app's error, and leaves the store alone", async () => {
    const t = await install();
    const [r] = await post(t.token, t.integrationId, [{ use_case_slug: "business-partners", payload: { d: { Customer: "1000234", FirstName: "Anna" } } }]);
    const status = await waitFor(t.token, r!.event_id);
    expect(status).toMatchObject({ status: "error", error_category: "validation" });
    expect(status.errors[0]).toMatchObject({ code: "APP_FAILED", action: "normalise_business_partner", message: expect.stringContaining("not an A_BusinessPartner") });
    expect((await api("GET", "/v1/entities/contact", { token: t.token })).body.entities).toEqual([]);
  });
});
