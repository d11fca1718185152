// @erp-edge/telematics-app: the app of the @erp-edge/telematics blueprint. `geofence_dwell` pairs each
// vehicle's geofence enter and exit events (the open visits kept in ctx.state) and adds the dwell time
// to the exit; `pull_trips` is the periodic backfill the telematics seed recommends beside webhooks:
// the trips changed since a cursor, fetched from the telematics API and returned as trip events.
import { defineAction, defineApp, z } from "@erp-edge/apps-sdk";

/**
 * The hosts `pull_trips` may be granted: the local fake telematics API (scripts/fake-telematics.mjs,
 * any port). A grant is always a subset of what the app declares, so a platform's own API host is
 * added here and the app published as a new version; the tenant then grants it with
 * `PATCH /v1/apps/installed/@erp-edge/telematics-app { "grants": { "hosts": ["<host>"] } }`.
 */
export const API_HOSTS = ["127.0.0.1"];

/** The tenant's configuration, set after install (a blueprint installs its apps with `{}`). */
export const Config = z.object({
  api_url: z.url({ protocol: /^https?$/ }).max(500).describe("Base URL of the telematics API, e.g. http://127.0.0.1:9300; its host must be granted to the app"),
  api_key: z.string().min(1).max(500).describe("Bearer token of the telematics API"),
});
export type Config = z.output<typeof Config>;

// ---- geofence_dwell ------------------------------------------------------------------------------

const Id = z.string().min(1).max(200);

/** An `alert.geofence.event` webhook body; other fields pass through untouched. */
const GeofenceEvent = z.looseObject({
  event: z.string().max(100).optional(),
  id: z.string().max(200).optional(),
  data: z.looseObject({
    vehicle_id: Id,
    geofence_id: Id,
    transition: z.string().min(1).max(20),
    ts: z.string().max(64),
    dwell_seconds: z.number().int().nonnegative().optional(),
    entered_at: z.string().max(64).optional(),
  }),
});
type GeofenceEvent = z.output<typeof GeofenceEvent>;

/** A vehicle inside a geofence: when it entered, and by which event (so a repeated enter is recognised). */
const OpenVisit = z.object({ geofence_id: Id, entered_at: z.string(), event_id: z.string().nullable() });
type OpenVisit = z.output<typeof OpenVisit>;
const Visits = z.object({ open: z.array(OpenVisit) });

/** Open visits kept per vehicle; the oldest is dropped past this (its exit never came). */
export const MAX_OPEN_VISITS = 20;
/** One state key per vehicle inside at least one geofence; deleted when its last visit ends. */
export const visitsKey = (vehicleId: string) => `visits:${vehicleId}`;

const instant = (text: string) => {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
};

/**
 * Pairs an exit with the open visit of the same vehicle and geofence and returns the event with
 * `data.dwell_seconds` and `data.entered_at`; an enter opens a visit. Anything it cannot pair (an exit
 * without its enter, a time that does not parse, an exit before its enter) is logged and the event
 * passes unchanged: a missing dwell time never fails the geofence event itself.
 */
const geofenceDwell = defineAction({
  name: "geofence_dwell",
  description:
    "Pre-mapping for alert.geofence.event: keeps each vehicle's open geofence visits in state and adds data.dwell_seconds (and data.entered_at) to the matching exit event. Other events pass unchanged.",
  input: GeofenceEvent,
  output: GeofenceEvent,
  async run(event, ctx): Promise<GeofenceEvent> {
    const { vehicle_id, geofence_id, ts } = event.data;
    const transition = event.data.transition.toLowerCase();
    const at = instant(ts);
    const where = `vehicle ${vehicle_id}, geofence ${geofence_id}`;
    if (transition !== "enter" && transition !== "exit") {
      ctx.log.warn(`${where}: transition '${event.data.transition}' is neither enter nor exit; passed unchanged`);
      return event;
    }
    if (at === null) {
      ctx.log.warn(`${where}: ts '${ts}' is not a date; passed unchanged`);
      return event;
    }
    const key = visitsKey(vehicle_id);
    const stored = Visits.safeParse(await ctx.state.get(key));
    const open = stored.success ? stored.data.open : [];
    const current = open.find((v) => v.geofence_id === geofence_id);
    const others = open.filter((v) => v !== current);
    const save = async (visits: OpenVisit[]) => {
      try {
        if (visits.length === 0) await ctx.state.delete(key);
        else await ctx.state.put(key, { open: visits });
      } catch (err) {
        // State is bounded per tenant and app (1,000 keys, 1 MB): the event still maps, without pairing.
        ctx.log.error(`${where}: open visits not saved: ${(err as Error).message}`);
      }
    };

    if (transition === "enter") {
      if (current && event.id !== undefined && current.event_id === event.id) return event;
      if (current) ctx.log.warn(`${where}: entered again without an exit since ${current.entered_at}; the earlier visit is dropped`);
      const visits = [...others, { geofence_id, entered_at: new Date(at).toISOString(), event_id: event.id ?? null }];
      if (visits.length > MAX_OPEN_VISITS) ctx.log.warn(`${where}: more than ${MAX_OPEN_VISITS} open visits; the oldest (${visits[0]!.geofence_id}) is dropped`);
      await save(visits.slice(-MAX_OPEN_VISITS));
      ctx.log.info(`${where}: entered at ${new Date(at).toISOString()}`);
      return event;
    }

    if (!current) {
      ctx.log.warn(`${where}: exit without an open visit (its enter never came, or the visit was already closed); no dwell time`);
      return event;
    }
    const entered = Date.parse(current.entered_at);
    if (at < entered) {
      ctx.log.warn(`${where}: exit at ${ts} is before the enter at ${current.entered_at}; no dwell time, the visit stays open`);
      return event;
    }
    await save(others);
    const dwell_seconds = Math.round((at - entered) / 1000);
    ctx.log.info(`${where}: dwell ${dwell_seconds} s`);
    return { ...event, data: { ...event.data, dwell_seconds, entered_at: current.entered_at } };
  },
});

// ---- pull_trips ----------------------------------------------------------------------------------

const Timestamp = z.iso.datetime({ offset: true });
const Text = (max: number) => z.string().max(max).nullish();

/** A trip as the telematics API lists it (`GET /v1/trips`); unknown fields are ignored. */
const ApiTrip = z.looseObject({
  trip_id: z.string().min(1).max(60),
  status: z.string().min(1).max(40),
  updated_at: Timestamp,
  order_id: Text(60),
  site_id: Text(60),
  vehicle_id: Text(200),
  driver_id: Text(200),
  driver_name: Text(200),
  started_at: Timestamp.nullish(),
  ended_at: Timestamp.nullish(),
  distance_km: z.number().nonnegative().nullish(),
});
type ApiTrip = z.output<typeof ApiTrip>;

const TripsPage = z.object({ trips: z.array(ApiTrip).max(1000), has_more: z.boolean().default(false) });

/**
 * Where the backfill stands: trips updated at `updated_since` or later are still to come, except those
 * in `seen` (already returned with exactly that `updated_at`). The API's `updated_since` is inclusive,
 * so trips sharing the cursor's instant are never skipped, and never returned twice.
 */
const Cursor = z.object({ updated_since: Timestamp, seen: z.array(z.string()).max(1000) });
type Cursor = z.output<typeof Cursor>;
export const CURSOR_KEY = "trips_cursor";
const MAX_SEEN = 500;

const PullInput = z.object({
  page_size: z.number().int().min(1).max(500).default(100).describe("Trips per API request"),
  max_pages: z.number().int().min(1).max(8).default(5).describe("Requests per run (the sandbox allows 10 subrequests)"),
  since: Timestamp.optional().describe("Where the first run starts; default: every trip the API has"),
});

const PulledEvent = z.object({
  timestamp: Timestamp,
  deduplication_id: z.string().regex(/^[a-zA-Z0-9_-]{1,255}$/),
  payload: z.looseObject({ event: z.literal("trip.status.changed"), id: z.string(), source: z.literal("backfill"), data: z.record(z.string(), z.unknown()) }),
});

/** `T-9001` stays `T-9001`; any other character becomes `_` and four hex digits, so distinct ids stay distinct. */
export const idPart = (id: string) => id.replace(/[^a-zA-Z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** A trip as the event the blueprint's trip webhook sends, so one mapping serves both. */
export function tripEvent(trip: ApiTrip): z.output<typeof PulledEvent> {
  const updatedAt = new Date(trip.updated_at).toISOString();
  const data: Record<string, unknown> = { trip_id: trip.trip_id, status: trip.status, ts: updatedAt };
  for (const key of ["order_id", "site_id", "vehicle_id", "driver_id", "driver_name", "started_at", "ended_at", "distance_km"] as const) {
    if (trip[key] !== undefined && trip[key] !== null) data[key] = trip[key];
  }
  const id = `${idPart(trip.trip_id)}_${Date.parse(updatedAt)}`;
  return { timestamp: updatedAt, deduplication_id: `trip_${id}`, payload: { event: "trip.status.changed", id: `backfill_${id}`, source: "backfill", data } };
}

/**
 * The backfill: `GET <api_url>/v1/trips?updated_since=<cursor>&limit=<page_size>` page after page
 * (while `has_more`, at most `max_pages`), returning every trip not returned before as an event for
 * the pull's target use case. The new cursor is written to state, which the host commits only once
 * the events are stored: a failed run starts again from the old cursor.
 */
const pullTrips = defineAction({
  name: "pull_trips",
  description:
    "Backfill for a pull use case: fetches trips changed since the cursor in state from the telematics API (GET /v1/trips?updated_since=…) and returns them as trip.status.changed events.",
  input: PullInput,
  output: z.object({ events: z.array(PulledEvent).max(1000), cursor: Cursor }),
  permissions: { hosts: API_HOSTS },
  async run(input, ctx) {
    const config = Config.safeParse(ctx.config);
    if (!config.success) {
      throw new Error(
        `the app is not configured: set api_url and api_key with PATCH /v1/apps/installed/<scope>/telematics-app { "config": { … }, "grants": { "hosts": [ … ] } } (${config.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ")})`,
      );
    }
    const { api_url, api_key } = config.data;
    const stored = Cursor.safeParse(await ctx.state.get(CURSOR_KEY));
    let cursor: Cursor = stored.success ? stored.data : { updated_since: input.since ?? new Date(0).toISOString(), seen: [] };
    const events: z.output<typeof PulledEvent>[] = [];
    let fetched = 0;
    let pages = 0;
    for (let more = true; more && pages < input.max_pages; pages++) {
      const url = `${api_url.replace(/\/+$/, "")}/v1/trips?updated_since=${encodeURIComponent(cursor.updated_since)}&limit=${input.page_size}`;
      const res = await ctx.fetch(url, { headers: { authorization: `Bearer ${api_key}`, accept: "application/json" } });
      if (!res.ok) throw new Error(`GET /v1/trips answered HTTP ${res.status}`);
      const page = TripsPage.safeParse(await res.json());
      if (!page.success) throw new Error(`GET /v1/trips answered an unexpected body: ${page.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      fetched += page.data.trips.length;
      const since = Date.parse(cursor.updated_since);
      const fresh = page.data.trips
        .map((trip) => ({ trip, at: Date.parse(trip.updated_at) }))
        .filter(({ trip, at }) => at > since || (at === since && !cursor.seen.includes(trip.trip_id)))
        .sort((a, b) => a.at - b.at || (a.trip.trip_id < b.trip.trip_id ? -1 : 1));
      for (const { trip } of fresh) events.push(tripEvent(trip));
      const latest = fresh.at(-1);
      if (latest) {
        const atLatest = fresh.filter((f) => f.at === latest.at).map((f) => f.trip.trip_id);
        cursor = latest.at > since
          ? { updated_since: new Date(latest.at).toISOString(), seen: atLatest.slice(-MAX_SEEN) }
          : { updated_since: cursor.updated_since, seen: [...cursor.seen, ...atLatest].slice(-MAX_SEEN) };
      }
      more = page.data.has_more;
      if (more && fresh.length === 0) {
        ctx.log.warn(`a full page of trips updated at ${cursor.updated_since} were all returned before; raise page_size to get past them`);
        break;
      }
    }
    await ctx.state.put(CURSOR_KEY, cursor);
    ctx.log.info(`fetched ${fetched} trips in ${pages} request(s), ${events.length} new; cursor ${cursor.updated_since}`);
    return { events, cursor };
  },
});

export default defineApp({
  name: "@erp-edge/telematics-app",
  version: "1.0.0",
  description: "The telematics blueprint's app: geofence dwell times from enter/exit pairs (pre-mapping), and the periodic trip backfill from the telematics API (pull).",
  config: Config,
  actions: [geofenceDwell, pullTrips],
});
