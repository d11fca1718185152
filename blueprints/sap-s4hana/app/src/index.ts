// @erp-edge/sap-s4hana-app: the SAP S/4HANA blueprint's own app. `normalise_business_partner` makes an
// A_BusinessPartner of API_BUSINESS_PARTNER (OData v2) plain before the business-partners mapping reads
// it; `pull_business_partners` fetches the partners changed since its cursor, for SAP systems that
// cannot push, and hands them to the same use case.
import { defineAction, defineApp, z } from "@erp-edge/apps-sdk";

/**
 * The hosts `pull_business_partners` may reach: SAP's S/4HANA Cloud API domains (each tenant grants its
 * own system, e.g. my300123-api.s4hana.ondemand.com) and loopback for the local fake service
 * (scripts/fake-sap.mjs). An on-premise system on another domain needs its host added here and the
 * app published under your own scope.
 */
export const SAP_HOSTS = ["*.s4hana.ondemand.com", "*.s4hana.cloud.sap", "127.0.0.1", "localhost"];

/** Where the partners come from, set per tenant with PATCH /v1/apps/installed/@erp-edge/sap-s4hana-app. */
export const Config = z.object({
  /** The service root of API_BUSINESS_PARTNER, e.g. https://my300123-api.s4hana.ondemand.com/sap/opu/odata/sap/API_BUSINESS_PARTNER. */
  service_url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  /** The communication user's name and password (Basic authentication), when the service needs them. */
  username: z.string().min(1).max(256).optional(),
  password: z.string().min(1).max(256).optional(),
  /** Partners fetched per run, at most; the rest come with the next run. */
  page_size: z.number().int().min(1).max(1000).default(200),
  /** The first run fetches partners changed on or after this date (YYYY-MM-DD); without it, all of them. */
  initial_since: z.iso.date().optional(),
});
export type Config = z.output<typeof Config>;

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === "object" && !Array.isArray(v);

// ---- normalise_business_partner ------------------------------------------------------------------

/** OData v2's JSON date, `/Date(ms)/`, with an optional offset (dropped: the milliseconds are UTC). */
const ODATA_DATE = /^\/Date\((-?\d{1,15})(?:[+-]\d{4})?\)\/$/;
/** OData v2's Edm.Time, an ISO 8601 duration since midnight: `PT14H32M10S`. */
const ODATA_TIME = /^PT(\d{1,2})H(\d{1,2})M(\d{1,2})(?:\.\d+)?S$/;
/** BusinessPartnerCategory: 1 person, 2 organisation, 3 group. */
const CATEGORIES: Record<string, string> = { "1": "person", "2": "organisation", "3": "group" };
/** Keys SAP pads with zeros internally (ALPHA conversion); the API gives them as displayed. */
const ALPHA_KEYS = new Set(["BusinessPartner", "Customer", "Supplier"]);
const MAX_DEPTH = 16;

/** How many values one run converted (logged with the run). */
export interface Conversions {
  dates: number;
  times: number;
  unwrapped: number;
  dropped: number;
}

const DAY_MS = 86_400_000;
const pad = (n: string) => n.padStart(2, "0");

/** Sets an own property, also for a key named `__proto__` (JSON.parse makes those own properties too). */
function setOwn(target: JsonObject, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function plainString(value: string, key: string | null, n: Conversions): Json | undefined {
  if (value === "") return undefined;
  const date = ODATA_DATE.exec(value);
  if (date) {
    const ms = Number(date[1]);
    const iso = new Date(ms).toISOString();
    n.dates++;
    // Edm.DateTime fields that are dates (BirthDate, LastChangeDate) are midnight UTC: keep the date.
    return ms % DAY_MS === 0 ? iso.slice(0, 10) : iso;
  }
  const time = ODATA_TIME.exec(value);
  if (time) {
    n.times++;
    return `${pad(time[1]!)}:${pad(time[2]!)}:${pad(time[3]!)}`;
  }
  if (key === "BusinessPartnerCategory" && Object.hasOwn(CATEGORIES, value)) return CATEGORIES[value]!;
  if (key !== null && ALPHA_KEYS.has(key) && /^\d+$/.test(value)) return value.replace(/^0+(?=\d)/, "");
  return value;
}

/** The plain form of one value; undefined drops it (empty strings, nulls, navigation properties not expanded). */
function plain(value: Json, key: string | null, depth: number, n: Conversions): Json | undefined {
  if (depth > MAX_DEPTH) throw new Error(`nested deeper than ${MAX_DEPTH} levels: not an A_BusinessPartner`);
  if (value === null) return undefined;
  if (typeof value === "string") return plainString(value, key, n);
  if (Array.isArray(value)) return value.map((item) => plain(item, key, depth + 1, n)).filter((item): item is Json => item !== undefined);
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "__deferred") {
    n.dropped++;
    return undefined;
  }
  if (keys.length === 1 && keys[0] === "results" && Array.isArray(value.results)) {
    n.unwrapped++;
    return plain(value.results, key, depth + 1, n);
  }
  const out: JsonObject = {};
  for (const k of keys) {
    if (k === "__metadata") continue;
    const converted = plain(value[k]!, k, depth + 1, n);
    if (converted !== undefined) setOwn(out, k, converted);
  }
  return out;
}

/**
 * An A_BusinessPartner (or a collection of them) in any of OData v2's envelopes, made plain: the
 * `{ d: … }` and `{ results: [ … ] }` wrappers and `__metadata` gone, `/Date(ms)/` a date
 * (`2026-11-02`) or an ISO 8601 instant, `PT08H15M00S` a time (`08:15:00`), `BusinessPartnerCategory`
 * a word (`person`, `organisation`, `group`), ALPHA-padded keys without their zeros, empty strings,
 * nulls and navigation properties that were not expanded left out. SAP's field names stay. A plain
 * record comes back unchanged, so normalising twice is normalising once.
 *
 * @example normaliseBusinessPartner({ d: { BusinessPartner: "0001000234", BusinessPartnerCategory: "1", LastChangeDate: "/Date(1793577600000)/" } })
 * // -> { partners: { BusinessPartner: "1000234", BusinessPartnerCategory: "person", LastChangeDate: "2026-11-02" }, conversions: { … } }
 */
export function normaliseBusinessPartner(payload: Json): { partners: JsonObject | JsonObject[]; conversions: Conversions } {
  const conversions: Conversions = { dates: 0, times: 0, unwrapped: 0, dropped: 0 };
  let root = payload;
  if (isObject(root) && Object.keys(root).length === 1 && Object.hasOwn(root, "d")) {
    root = root.d!;
    conversions.unwrapped++;
  }
  const result = plain(root, null, 0, conversions);
  const records = Array.isArray(result) ? result : [result];
  records.forEach((record, i) => {
    const at = Array.isArray(result) ? `item ${i}: ` : "";
    if (!isObject(record) || typeof record.BusinessPartner !== "string") throw new Error(`${at}not an A_BusinessPartner: it has no BusinessPartner`);
    if (!Object.values(CATEGORIES).includes(record.BusinessPartnerCategory as string)) {
      throw new Error(`${at}business partner ${record.BusinessPartner}: BusinessPartnerCategory ${JSON.stringify(record.BusinessPartnerCategory ?? null)} is not 1, 2 or 3`);
    }
  });
  return { partners: result as JsonObject | JsonObject[], conversions };
}

const PlainPartner = z.object({ BusinessPartner: z.string(), BusinessPartnerCategory: z.enum(["person", "organisation", "group"]) }).loose();

const normaliseAction = defineAction({
  name: "normalise_business_partner",
  description:
    "Makes an A_BusinessPartner of API_BUSINESS_PARTNER plain for mapping: the OData v2 envelope, results wrappers and __metadata removed, /Date(ms)/ as a date or ISO 8601 instant (UTC), Edm.Time as HH:MM:SS, BusinessPartnerCategory as person/organisation/group, ALPHA keys without leading zeros, empty values left out. SAP's field names stay; a plain record passes unchanged.",
  input: z.union([z.record(z.string(), z.json()), z.array(z.json()).max(1000)]),
  output: z.union([PlainPartner, z.array(PlainPartner)]),
  run(payload, ctx) {
    const { partners, conversions } = normaliseBusinessPartner(payload as Json);
    const list = Array.isArray(partners) ? partners : [partners];
    const { dates, times, unwrapped, dropped } = conversions;
    ctx.log.info(`normalised ${list.length} business partner(s) (${list.map((p) => `${p.BusinessPartner} ${p.BusinessPartnerCategory}`).join(", ")}): dates=${dates} times=${times} unwrapped=${unwrapped} deferred=${dropped}`);
    return partners;
  },
});

// ---- pull_business_partners ------------------------------------------------------------------------

/** Where the last run stopped: the last partner it handed on, in the order the query sorts by. */
export interface Cursor {
  date: string;
  time: string;
  partner: string;
}
export const CURSOR_KEY = "business_partners.cursor";

const EXPAND = [
  "to_BusinessPartnerAddress/to_EmailAddress",
  "to_BusinessPartnerAddress/to_PhoneNumber",
  "to_BusinessPartnerAddress/to_MobilePhoneNumber",
  "to_BusinessPartnerTax",
].join(",");

const odataTime = (hms: string) => {
  const [h, m, s] = hms.split(":");
  return `PT${h}H${m}M${s}S`;
};

/**
 * The $filter after `cursor`: partners changed later than the last one handed on, in the order
 * LastChangeDate, LastChangeTime, BusinessPartner, so partners changed in the same second are
 * neither skipped nor fetched twice. Without a cursor, those changed since `since` (or all).
 *
 * @example deltaFilter({ date: "2026-11-02", time: "08:15:00", partner: "1000234" })
 * // -> "LastChangeDate gt datetime'2026-11-02T00:00:00' or (LastChangeDate eq datetime'2026-11-02T00:00:00' and (LastChangeTime gt time'PT08H15M00S' or (LastChangeTime eq time'PT08H15M00S' and BusinessPartner gt '1000234')))"
 */
export function deltaFilter(cursor: Cursor | undefined, since?: string): string | undefined {
  if (!cursor) return since ? `LastChangeDate ge datetime'${since}T00:00:00'` : undefined;
  const date = `datetime'${cursor.date}T00:00:00'`;
  const time = `time'${odataTime(cursor.time)}'`;
  return `LastChangeDate gt ${date} or (LastChangeDate eq ${date} and (LastChangeTime gt ${time} or (LastChangeTime eq ${time} and BusinessPartner gt '${cursor.partner.replaceAll("'", "''")}')))`;
}

const PullInput = z
  .object({
    /** Overrides the configuration's service_url for this pull use case. */
    service_url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    page_size: z.number().int().min(1).max(1000).optional(),
  })
  .strict();

const PulledEvent = z.object({
  timestamp: z.string(),
  deduplication_id: z.string(),
  payload: z.record(z.string(), z.json()),
});

const CursorSchema = z.object({ date: z.iso.date(), time: z.string().regex(/^\d{2}:\d{2}:\d{2}$/), partner: z.string().min(1).max(10) });

const pullAction = defineAction({
  name: "pull_business_partners",
  description:
    "Fetches the business partners changed since the last run from API_BUSINESS_PARTNER ($filter on LastChangeDate, LastChangeTime and BusinessPartner, addresses and tax numbers expanded) and returns them as events for the business-partners use case, each the partner's OData entity as SAP would push it. The cursor lives in the app's state and moves only once the events are stored.",
  input: PullInput,
  output: z.object({ events: z.array(PulledEvent).max(1000) }),
  permissions: { hosts: SAP_HOSTS },
  async run(input, ctx) {
    const config = Config.parse(ctx.config ?? {});
    const serviceUrl = input.service_url ?? config.service_url;
    if (!serviceUrl) throw new Error("No service_url: set it in the app's configuration (PATCH /v1/apps/installed/…/sap-s4hana-app { config: { service_url } }) or in the pull use case's input");
    const pageSize = input.page_size ?? config.page_size;
    const stored = await ctx.state.get(CURSOR_KEY);
    const cursor = stored === undefined ? undefined : CursorSchema.parse(stored);

    const query = [`$orderby=${encodeURIComponent("LastChangeDate,LastChangeTime,BusinessPartner")}`, `$top=${pageSize}`, `$expand=${encodeURIComponent(EXPAND)}`, "$format=json"];
    const filter = deltaFilter(cursor, config.initial_since);
    if (filter) query.unshift(`$filter=${encodeURIComponent(filter)}`);
    const url = `${serviceUrl.replace(/\/+$/, "")}/A_BusinessPartner?${query.join("&")}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (config.username !== undefined) headers.authorization = `Basic ${btoa(`${config.username}:${config.password ?? ""}`)}`;

    const res = await ctx.fetch(url, { headers });
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 200);
      try {
        message = (JSON.parse(text) as { error?: { message?: { value?: string } } }).error?.message?.value ?? message;
      } catch {
        // not JSON: the text as it came
      }
      throw new Error(`API_BUSINESS_PARTNER answered ${res.status}: ${message}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error("API_BUSINESS_PARTNER answered something that is not JSON");
    }
    const results = isObject(body) && isObject(body.d) && Array.isArray(body.d.results) ? (body.d.results as Json[]) : undefined;
    if (!results) throw new Error("API_BUSINESS_PARTNER answered without d.results");

    const events = results.map((entity) => {
      const { partners } = normaliseBusinessPartner(entity);
      const p = partners as JsonObject;
      // S/4HANA leaves LastChangeDate empty until a partner's first change: such a partner is sent
      // with its creation time, and does not move the cursor (which follows LastChangeDate).
      const changed = typeof p.LastChangeDate === "string" && p.LastChangeDate !== "";
      const date = (changed ? (p.LastChangeDate as string) : typeof p.CreationDate === "string" ? p.CreationDate : "1970-01-01").slice(0, 10);
      const time = (changed ? p.LastChangeTime : p.CreationTime) as string | undefined;
      const clock = typeof time === "string" && /^\d{2}:\d{2}:\d{2}$/.test(time) ? time : "00:00:00";
      return {
        cursor: changed ? { date, time: clock, partner: p.BusinessPartner as string } : undefined,
        event: {
          timestamp: `${date}T${clock}Z`,
          // The same change pulled twice (a run repeated before its cursor moved) is one event.
          deduplication_id: `bp-${p.BusinessPartner}-${date.replaceAll("-", "")}${clock.replaceAll(":", "")}`,
          // As SAP pushes one partner: the business-partners use case normalises it like any other.
          payload: { d: entity },
        },
      };
    });
    const last = events.map((e) => e.cursor).filter((c) => c !== undefined).at(-1);
    if (last) await ctx.state.put(CURSOR_KEY, last);
    const more = events.length === pageSize ? "; more may be waiting for the next run" : "";
    const since = cursor ? `changed after ${cursor.date} ${cursor.time} (${cursor.partner})` : config.initial_since ? `changed since ${config.initial_since}` : "(first run: all of them)";
    ctx.log.info(`fetched ${events.length} business partner(s) ${since}${more}`);
    return { events: events.map((e) => e.event) };
  },
});

export default defineApp({
  name: "@erp-edge/sap-s4hana-app",
  version: "1.0.0",
  description:
    "The SAP S/4HANA blueprint's app: makes API_BUSINESS_PARTNER's OData v2 business partners plain before mapping, and pulls the partners changed since its cursor for SAP systems that cannot push.",
  config: Config,
  actions: [normaliseAction, pullAction],
});
