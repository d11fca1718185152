// pull_business_partners against the fake SAP OData service (scripts/fake-sap.mjs) through the SDK's
// harness: the delta query, the cursor in state, repeated runs, and the failures a pull must report.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { runAction } from "@erp-edge/apps-sdk";
import app, { CURSOR_KEY, deltaFilter } from "../src/index";
import { PASSWORD, SERVICE_PATH, USER, startFakeSap } from "../../../../scripts/fake-sap.mjs";

// A fresh service with its four partners for every test.
let sap: Awaited<ReturnType<typeof startFakeSap>>;
beforeEach(async () => {
  sap = await startFakeSap();
});
afterEach(() => {
  // fetch keeps connections alive; close them, or the server (and the test) never ends.
  sap.server.closeAllConnections();
  sap.server.close();
});

// The harness checks a request's host with its port against the declared hosts ("127.0.0.1"), where
// erp-edge's grants match a host on any port; so the action is given http://127.0.0.1/… and this
// network forwards it to the fake's port.
const network: typeof fetch = (input, init) => fetch(String(input).replace("http://127.0.0.1/", `http://127.0.0.1:${sap.port}/`), init);
const config = { service_url: `http://127.0.0.1${SERVICE_PATH}`, username: USER, password: PASSWORD };

interface PulledEvent {
  timestamp: string;
  deduplication_id: string;
  payload: { d: { BusinessPartner: string } };
}
async function pull(state: Map<string, unknown>, overrides: Record<string, unknown> = {}, input: Record<string, unknown> = {}) {
  return runAction<Record<string, unknown>, { events: PulledEvent[] }>(app, "pull_business_partners", input, { config: { ...config, ...overrides }, state, fetch: network });
}
const partners = (events: PulledEvent[]) => events.map((e) => e.payload.d.BusinessPartner);
async function change(body: Record<string, unknown>) {
  const res = await fetch(`http://127.0.0.1:${sap.port}/_partners`, { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
}
const lastQuery = async () => ((await (await fetch(`http://127.0.0.1:${sap.port}/_requests`)).json()) as { filter: string | null; returned: string[] }[]).at(-1)!;

describe("the delta filter", () => {
  test("reads on from the last partner handed on, in LastChangeDate, LastChangeTime, BusinessPartner order", () => {
    assert.equal(deltaFilter(undefined), undefined);
    assert.equal(deltaFilter(undefined, "2026-11-01"), "LastChangeDate ge datetime'2026-11-01T00:00:00'");
    assert.equal(
      deltaFilter({ date: "2026-11-02", time: "08:15:00", partner: "1000234" }),
      "LastChangeDate gt datetime'2026-11-02T00:00:00' or (LastChangeDate eq datetime'2026-11-02T00:00:00' and (LastChangeTime gt time'PT08H15M00S' or (LastChangeTime eq time'PT08H15M00S' and BusinessPartner gt '1000234')))",
    );
  });
});

describe("pulling business partners", () => {
  test("the first run fetches every partner, the next ones only what changed since, each change once", async () => {
    const state = new Map<string, unknown>();
    const first = await pull(state);
    assert.deepEqual(partners(first.output.events), ["1000234", "1000235", "1000236", "1000237"]);
    assert.deepEqual(first.output.events[0], {
      timestamp: "2026-11-02T08:15:00Z",
      deduplication_id: "bp-1000234-20261102081500",
      payload: first.output.events[0]!.payload,
    });
    // As SAP pushes it: the OData entity with its addresses, mail and phone numbers expanded.
    const pushed = first.output.events[0]!.payload.d as unknown as { to_BusinessPartnerAddress: { results: { to_EmailAddress: { results: unknown[] } }[] } };
    assert.equal(pushed.to_BusinessPartnerAddress.results[0]!.to_EmailAddress.results.length, 1);
    assert.deepEqual(state.get(CURSOR_KEY), { date: "2026-11-25", time: "09:00:00", partner: "1000237" });
    assert.match(first.logs[0]!.message, /^fetched 4 business partner\(s\) \(first run: all of them\)$/);

    const second = await pull(state);
    assert.deepEqual(second.output.events, []);
    assert.deepEqual((await lastQuery()).returned, []);

    // A partner changed and a new one, in the same second: both come, in key order, once.
    await change({ BusinessPartner: "1000236", address: { EmailAddress: "juergen.weiss@example.net" }, changed_at: "2026-12-01T10:00:00Z" });
    await change({ BusinessPartner: "1000238", FirstName: "Lena", LastName: "Vogel", FormOfAddress: "0001", address: { StreetName: "Marktplatz", HouseNumber: "1", PostalCode: "69117", CityName: "Heidelberg" }, changed_at: "2026-12-01T10:00:00Z" });
    const third = await pull(state);
    assert.deepEqual(partners(third.output.events), ["1000236", "1000238"]);
    assert.deepEqual((await lastQuery()).returned, ["1000236", "1000238"]);
    assert.match((await lastQuery()).filter!, /^LastChangeDate gt datetime'2026-11-25T00:00:00' or/);
    assert.deepEqual(state.get(CURSOR_KEY), { date: "2026-12-01", time: "10:00:00", partner: "1000238" });
    assert.deepEqual(partners((await pull(state)).output.events), []);
  });

  test("a page at a time: page_size partners per run, the cursor after the last one", async () => {
    const state = new Map<string, unknown>();
    const first = await pull(state, { page_size: 3 });
    assert.deepEqual(partners(first.output.events), ["1000234", "1000235", "1000236"]);
    assert.match(first.logs[0]!.message, /more may be waiting for the next run$/);
    const rest = await pull(state, { page_size: 3 });
    assert.deepEqual(partners(rest.output.events), ["1000237"]);
    assert.deepEqual(partners((await pull(state, { page_size: 3 })).output.events), []);
  });

  test("initial_since limits the first run", async () => {
    const state = new Map<string, unknown>();
    assert.deepEqual(partners((await pull(state, { initial_since: "2026-11-18" })).output.events), ["1000236", "1000237"]);
    assert.equal((await lastQuery()).filter, "LastChangeDate ge datetime'2026-11-18T00:00:00'");
  });
});

describe("what a pull reports", () => {
  test("no service_url, wrong credentials, a host the app does not declare, a cursor it cannot read", async () => {
    const state = new Map<string, unknown>();
    await assert.rejects(runAction(app, "pull_business_partners", {}, { config: {}, state, fetch: network }), /No service_url: set it in the app's configuration/);
    await assert.rejects(pull(state, { password: "wrong" }), /API_BUSINESS_PARTNER answered 401: Logon failed/);
    await assert.rejects(pull(state, {}, { service_url: "https://my300123-api.s4hana.example.com/sap/opu/odata/sap/API_BUSINESS_PARTNER" }), /Host 'my300123-api.s4hana.example.com' is not among the hosts/);
    await assert.rejects(pull(state, {}, { service_url: "http://169.254.169.254/latest" }), /Host '169.254.169.254' is not among the hosts/);
    await assert.rejects(pull(state, {}, { service_url: "file:///etc/passwd" }), /Invalid input/);
    assert.equal(state.has(CURSOR_KEY), false);
    state.set(CURSOR_KEY, { date: "yesterday" });
    await assert.rejects(pull(state));
  });

  test("an OData error names SAP's message", async () => {
    await assert.rejects(pull(new Map(), { service_url: `http://127.0.0.1/sap/opu/odata/sap/API_NOPE` }), /API_BUSINESS_PARTNER answered 404: Resource not found for segment/);
  });
});
