// A local stand-in for a telematics platform, for the telematics blueprint's tests and README walkthrough
// (issue #14): its REST API for the periodic trip backfill, and its signed webhooks.
//   GET  /v1/trips?updated_since=<ISO>&limit=<n>  Bearer <api key> -> { trips: [...], has_more }: the trips of
//        that key's fleet updated at or after updated_since (inclusive, as the blueprint's app expects),
//        oldest first (then by trip_id), at most limit (default 100, at most 500)
//   POST /_trips                                  Bearer <api key>, a trip or an array of trips -> 201 { trips }:
//        adds or changes trips (updated_at defaults to now), so a test can show that a backfill fetches only them
//   GET  /_requests                               Bearer <api key> -> { requests: [{ at, updated_since, limit, returned }] }
// Each api key is its own fleet (tests use a fresh key each), starting with three demo trips updated in
// the half hour before the server started. Any non-empty key is accepted; none is a 401.
//
//   node scripts/fake-telematics.mjs [port]       serves on 127.0.0.1 (default 9300)
//   node scripts/fake-telematics.mjs send <url> --secret <secret> [--only <name>]
//        signs each event of blueprints/telematics/fixtures (in file order) with the seed's
//        X-Signature (t=<unix>,s=sha256=<hex HMAC of "<t>.<body>">) and an Idempotency-Key derived from
//        the event's id, and posts it to <url>/<use case> (<url> is …/v1/webhooks/<integration id>),
//        printing each answer; sending again is answered "skipped": the same keys, re-signed
import { createHash, createHmac } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../blueprints/telematics/fixtures");

/** The demo fleet every new api key starts with: trips of the fixtures' vehicles, dispatched for ERP orders. */
function demoTrips(now) {
  const minutesAgo = (m) => new Date(now - m * 60_000).toISOString();
  return [
    { trip_id: "T-8990", order_id: "SO-2025-10405", status: "completed", site_id: "CUST-12", vehicle_id: "V-1042", driver_id: "D-311", driver_name: "Omar Haddad",
      started_at: minutesAgo(240), ended_at: minutesAgo(35), distance_km: 212.4, updated_at: minutesAgo(30) },
    { trip_id: "T-8995", order_id: "SO-2025-10411", status: "in_transit", site_id: "CUST-31", vehicle_id: "V-1077", driver_id: "D-318", driver_name: "Priya Nair",
      started_at: minutesAgo(50), ended_at: null, distance_km: 18.2, updated_at: minutesAgo(20) },
    { trip_id: "T-8997", order_id: "SO-2025-10412", status: "dispatched", site_id: "CUST-77", vehicle_id: "V-1080", driver_id: "D-322", driver_name: "Lena Vogel",
      started_at: null, ended_at: null, distance_km: 0, updated_at: minutesAgo(10) },
  ];
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Starts the fake telematics API on 127.0.0.1 (`port` 0: any free port). Returns the server and its port.
 * @example const { port } = await startFakeTelematics(); // GET http://127.0.0.1:<port>/v1/trips, Bearer <any key>
 */
export async function startFakeTelematics({ port = 0, log = false } = {}) {
  const started = Date.now();
  /** api key -> { trips: Map<trip_id, trip>, requests: [] } */
  const fleets = new Map();
  const fleetOf = (key) => fleets.get(key) ?? fleets.set(key, { trips: new Map(demoTrips(started).map((t) => [t.trip_id, t])), requests: [] }).get(key);
  let lastStamp = 0;
  /** Now, strictly after the previous stamp, so trips added one after the other have distinct updated_at. */
  const stamp = () => new Date((lastStamp = Math.max(Date.now(), lastStamp + 1))).toISOString();

  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://telematics");
      const reply = (status, body) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
        if (log) console.log(`${new Date().toISOString()} ${req.method} ${url.pathname}${url.search} -> ${status}`);
      };
      const key = /^Bearer (\S{1,200})$/.exec(req.headers.authorization ?? "")?.[1];
      if (!key) return reply(401, { error: "missing Authorization: Bearer <api key>" });
      const fleet = fleetOf(key);

      if (req.method === "GET" && url.pathname === "/v1/trips") {
        const since = url.searchParams.get("updated_since") ?? "1970-01-01T00:00:00Z";
        const limit = Math.min(Number(url.searchParams.get("limit") ?? 100) || 100, 500);
        if (!ISO.test(since)) return reply(400, { error: "updated_since must be an ISO 8601 date-time with a zone" });
        const from = Date.parse(since);
        const matching = [...fleet.trips.values()]
          .filter((t) => Date.parse(t.updated_at) >= from)
          .sort((a, b) => Date.parse(a.updated_at) - Date.parse(b.updated_at) || (a.trip_id < b.trip_id ? -1 : 1));
        const trips = matching.slice(0, limit);
        fleet.requests.push({ at: new Date().toISOString(), updated_since: since, limit, returned: trips.map((t) => t.trip_id) });
        return reply(200, { trips, has_more: matching.length > limit });
      }
      if (req.method === "POST" && url.pathname === "/_trips") {
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          return reply(400, { error: "body must be JSON: a trip or an array of trips" });
        }
        const trips = (Array.isArray(body) ? body : [body]).map((t) => ({ ...(fleet.trips.get(t?.trip_id) ?? {}), ...t, updated_at: t?.updated_at ?? stamp() }));
        if (trips.some((t) => typeof t.trip_id !== "string" || typeof t.status !== "string" || !ISO.test(t.updated_at))) {
          return reply(400, { error: "each trip needs trip_id and status (strings) and, if given, an ISO updated_at" });
        }
        for (const t of trips) fleet.trips.set(t.trip_id, t);
        return reply(201, { trips });
      }
      if (req.method === "GET" && url.pathname === "/_requests") return reply(200, { requests: fleet.requests });
      return reply(404, { error: `no route ${req.method} ${url.pathname}` });
    });
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, port: server.address().port })));
}

// ---- signed webhooks ----------------------------------------------------------------------------

/** The seed's header: `t=<unix seconds>,s=sha256=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export function xSignature(secret, body, t = Math.floor(Date.now() / 1000)) {
  return `t=${t},s=sha256=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
}

/** A stable UUID-shaped Idempotency-Key per event id, so a resend carries the same key as the first send. */
export function idempotencyKey(eventId) {
  const h = createHash("sha256").update(`telematics-event:${eventId}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The blueprint's fixtures in file order: { file, use_case, payload }. */
export function fixtureEvents(folder = FIXTURES) {
  return readdirSync(folder)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const fixture = JSON.parse(readFileSync(join(folder, file), "utf8"));
      return { file, use_case: fixture.use_case, payload: fixture.payload };
    });
}

/** Signs and posts each fixture event to `<url>/<use case>`; returns [{ file, status, body }]. */
export async function sendFixtureEvents(url, secret, { only } = {}) {
  const out = [];
  for (const { file, use_case, payload } of fixtureEvents()) {
    if (only && !file.includes(only)) continue;
    const body = JSON.stringify(payload);
    const res = await fetch(`${url.replace(/\/+$/, "")}/${use_case}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-signature": xSignature(secret, body), "idempotency-key": idempotencyKey(payload.id) },
      body,
    });
    out.push({ file, status: res.status, body: await res.json().catch(() => null) });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  if (args[0] === "send") {
    const [, url] = args;
    const secret = option("--secret");
    if (!url || !secret) {
      console.error("usage: node scripts/fake-telematics.mjs send <erp-edge>/v1/webhooks/<integration id> --secret <webhook secret> [--only <name>]");
      process.exit(2);
    }
    let failed = false;
    for (const r of await sendFixtureEvents(url, secret, { only: option("--only") })) {
      console.log(`${r.file.padEnd(30)} -> ${r.status} ${JSON.stringify(r.body)}`);
      failed ||= r.status >= 300;
    }
    process.exit(failed ? 1 : 0);
  }
  const { port } = await startFakeTelematics({ port: Number(args[0] ?? 9300), log: true });
  console.log(`fake telematics API on http://127.0.0.1:${port} (GET /v1/trips?updated_since=…, POST /_trips; any Bearer key is a fleet)`);
}
