// pull_trips through the SDK's harness against an in-memory telematics API (the same contract as
// scripts/fake-telematics.mjs): the cursor in state, inclusive updated_since, paging, failures.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AppRunError, runAction } from "@erp-edge/apps-sdk";
import app, { CURSOR_KEY, idPart, tripEvent } from "../src/index";

const API = "http://127.0.0.1";
const config = { api_url: API, api_key: "fleet-key" };

interface Trip {
  trip_id: string;
  status: string;
  updated_at: string;
  [key: string]: unknown;
}

/** GET /v1/trips?updated_since=&limit= over `trips` (inclusive, oldest first), recording each request. */
function fakeApi(trips: Trip[], { status = 200, body }: { status?: number; body?: unknown } = {}) {
  const requests: { updated_since: string | null; limit: number; authorization: string | null }[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    requests.push({ updated_since: url.searchParams.get("updated_since"), limit: Number(url.searchParams.get("limit")), authorization: headers.get("authorization") });
    if (status !== 200) return new Response(JSON.stringify({ error: "down" }), { status });
    if (body !== undefined) return Response.json(body);
    const from = Date.parse(url.searchParams.get("updated_since") ?? "1970-01-01T00:00:00Z");
    const limit = Number(url.searchParams.get("limit") ?? 100);
    const matching = trips.filter((t) => Date.parse(t.updated_at) >= from).sort((a, b) => Date.parse(a.updated_at) - Date.parse(b.updated_at) || (a.trip_id < b.trip_id ? -1 : 1));
    return Response.json({ trips: matching.slice(0, limit), has_more: matching.length > limit });
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

const trip = (trip_id: string, updated_at: string, extra: Record<string, unknown> = {}): Trip => ({ trip_id, status: "in_transit", updated_at, ...extra });

const pull = (input: Record<string, unknown>, state: Map<string, unknown>, api: ReturnType<typeof fakeApi>, cfg: Record<string, unknown> = config) =>
  runAction<unknown, { events: any[]; cursor: { updated_since: string; seen: string[] } }>(app, "pull_trips", input, { config: cfg, state, fetch: api.fetch });

describe("pull_trips", () => {
  test("returns every trip as a trip.status.changed event, then only what changed since", async () => {
    const trips = [
      trip("T-8990", "2025-10-29T12:00:00Z", { order_id: "SO-1", status: "completed", site_id: "CUST-12", vehicle_id: "V-1042", driver_id: "D-311", driver_name: "Omar Haddad", distance_km: 212.4, ended_at: null }),
      trip("T-8995", "2025-10-29T12:10:00Z"),
    ];
    const api = fakeApi(trips);
    const state = new Map<string, unknown>();
    const first = await pull({}, state, api);
    assert.deepEqual(first.output.events[0], {
      timestamp: "2025-10-29T12:00:00.000Z",
      deduplication_id: "trip_T-8990_1761739200000",
      payload: {
        event: "trip.status.changed", id: "backfill_T-8990_1761739200000", source: "backfill",
        data: { trip_id: "T-8990", status: "completed", ts: "2025-10-29T12:00:00.000Z", order_id: "SO-1", site_id: "CUST-12", vehicle_id: "V-1042", driver_id: "D-311", driver_name: "Omar Haddad", distance_km: 212.4 },
      },
    });
    assert.deepEqual(first.output.events.map((e) => e.payload.data.trip_id), ["T-8990", "T-8995"]);
    assert.deepEqual(state.get(CURSOR_KEY), { updated_since: "2025-10-29T12:10:00.000Z", seen: ["T-8995"] });
    assert.deepEqual(api.requests, [{ updated_since: "1970-01-01T00:00:00.000Z", limit: 100, authorization: "Bearer fleet-key" }]);

    // Nothing changed: the API is asked from the cursor and nothing is returned again.
    const second = await pull({}, state, api);
    assert.deepEqual(second.output.events, []);
    assert.equal(api.requests[1]!.updated_since, "2025-10-29T12:10:00.000Z");
    assert.match(second.logs.at(-1)!.message, /fetched 1 trips in 1 request\(s\), 0 new/);

    // A new trip and a changed one: exactly those two.
    trips.push(trip("T-9001", "2025-10-29T13:05:00Z"));
    trips[1] = trip("T-8995", "2025-10-29T13:06:00Z", { status: "arrived" });
    const third = await pull({}, state, api);
    assert.deepEqual(third.output.events.map((e) => `${e.payload.data.trip_id}:${e.payload.data.status}`), ["T-9001:in_transit", "T-8995:arrived"]);
  });

  test("trips sharing the cursor's instant are neither skipped nor returned twice", async () => {
    const at = "2025-10-29T12:00:00Z";
    const trips = [trip("T-1", at), trip("T-2", at)];
    const api = fakeApi(trips);
    const state = new Map<string, unknown>();
    assert.equal((await pull({}, state, api)).output.events.length, 2);
    trips.push(trip("T-3", at));
    const next = await pull({}, state, api);
    assert.deepEqual(next.output.events.map((e) => e.payload.data.trip_id), ["T-3"]);
    assert.deepEqual(next.output.cursor, { updated_since: "2025-10-29T12:00:00.000Z", seen: ["T-1", "T-2", "T-3"] });
  });

  test("pages while the API has more, up to max_pages; the rest comes next run", async () => {
    const trips = Array.from({ length: 7 }, (_, i) => trip(`T-${i}`, `2025-10-29T12:0${i}:00Z`));
    const api = fakeApi(trips);
    const state = new Map<string, unknown>();
    // updated_since is inclusive, so each page after the first starts with the previous page's last trip.
    const first = await pull({ page_size: 2, max_pages: 3 }, state, api);
    assert.deepEqual(first.output.events.map((e) => e.payload.data.trip_id), ["T-0", "T-1", "T-2", "T-3"]);
    assert.deepEqual(api.requests.map((r) => r.updated_since), ["1970-01-01T00:00:00.000Z", "2025-10-29T12:01:00.000Z", "2025-10-29T12:02:00.000Z"]);
    const second = await pull({ page_size: 2, max_pages: 3 }, state, api);
    assert.deepEqual(second.output.events.map((e) => e.payload.data.trip_id), ["T-4", "T-5", "T-6"]);
    assert.deepEqual((await pull({ page_size: 2, max_pages: 3 }, state, api)).output.events, []);
  });

  test("starts at `since` on the first run", async () => {
    const api = fakeApi([trip("T-old", "2025-01-01T00:00:00Z"), trip("T-new", "2025-10-29T12:00:00Z")]);
    const run = await pull({ since: "2025-10-01T00:00:00Z" }, new Map(), api);
    assert.deepEqual(run.output.events.map((e) => e.payload.data.trip_id), ["T-new"]);
  });

  test("fails without configuration, on an API error, or on an unexpected body, leaving the cursor", async () => {
    const state = new Map<string, unknown>([[CURSOR_KEY, { updated_since: "2025-10-29T12:00:00.000Z", seen: [] }]]);
    const before = structuredClone(state.get(CURSOR_KEY));
    await assert.rejects(pull({}, state, fakeApi([]), {}), /the app is not configured: set api_url and api_key/);
    await assert.rejects(pull({}, state, fakeApi([]), { api_url: "ftp://127.0.0.1", api_key: "k" }), /api_url/);
    await assert.rejects(pull({}, state, fakeApi([], { status: 503 })), /GET \/v1\/trips answered HTTP 503/);
    await assert.rejects(pull({}, state, fakeApi([], { body: { trips: [{ trip_id: "", status: "x", updated_at: "soon" }] } })), /unexpected body/);
    assert.deepEqual(state.get(CURSOR_KEY), before);
  });

  test("reaches only the hosts it declares", async () => {
    await assert.rejects(pull({}, new Map(), fakeApi([]), { api_url: "https://telematics.attacker.example", api_key: "k" }), (err: unknown) => {
      assert.ok(err instanceof AppRunError);
      assert.equal(err.code, "APP_HOST_NOT_GRANTED");
      return true;
    });
  });

  test("deduplication ids fit erp-edge's pattern and stay distinct for ids that differ only in odd characters", () => {
    const ids = ["T-9001", "T 9001", "T_9001", "T.9001", "Ü-1", "T/9001"].map((id) => tripEvent(trip(id, "2025-10-29T12:00:00Z")).deduplication_id);
    for (const id of ids) assert.match(id, /^[a-zA-Z0-9_-]{1,255}$/);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(idPart("T-9001"), "T-9001");
  });
});
