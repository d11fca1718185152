// @erp-edge/sap-normalise: turns the quirks of SAP payloads (OData v2 above all) into plain JSON
// before a mapping reads them, so mappings say `customer_number` instead of `$number($substringBefore(…))`:
// `/Date(ms)/` becomes ISO 8601, "X"/" " flags booleans, padded and trailing-minus amounts numbers,
// ALPHA-padded keys lose their zeros, and the `{ d: { results } }` envelope is unwrapped.
import { defineAction, defineApp, z } from "@erp-edge/apps-sdk";

const FieldNames = z.array(z.string().min(1).max(200)).max(500).default([]);

/** The app's configuration per tenant; every option has a default, so `{}` is a valid configuration. */
export const Config = z.object({
  /** `{ d: { results: [...] } }` -> `[...]`, `{ d: {...} }` -> `{...}`, and `{ results: [...] }` of expanded navigation properties -> `[...]`. */
  unwrap_odata: z.boolean().default(true),
  /** Fields whose "X" means true and " " or "" false (SAP's ABAP flags). */
  boolean_fields: FieldNames,
  /** Fields whose strings are numbers: "000123.50" -> 123.5, SAP's trailing minus "12.50-" -> -12.5. */
  number_fields: FieldNames,
  /** Fields whose digits-only strings lose their ALPHA padding: KUNNR "0000012345" -> "12345" (still a string). */
  strip_leading_zeros: FieldNames,
});
export type Config = z.output<typeof Config>;

/** How many values of each kind one run converted (logged with the run). */
export interface Conversions {
  dates: number;
  booleans: number;
  numbers: number;
  keys: number;
  unwrapped: number;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * OData v2's JSON date, `/Date(1700000000000)/` or with an offset, `/Date(1700000000000+0100)/`. The
 * milliseconds count from 1970-01-01 UTC in every variant (ASP.NET, WCF and OData alike); the
 * offset only says which zone the ERP displays, and its unit differs between those producers, so the
 * instant is kept and the offset dropped: the result is always UTC (`…Z`).
 */
const ODATA_DATE = /^\/Date\((-?\d{1,16})(?:[+-]\d{4})?\)\/$/;
/** "000123.50", "12.50-", "-7", ".5": digits with at most one sign, leading or trailing (SAP), not both. */
const SAP_NUMBER = /^\s*([+-]?)(\d+(?:\.\d*)?|\.\d+)(-?)\s*$/;
const DIGITS = /^\d+$/;

function odataDate(text: string): string | undefined {
  const match = ODATA_DATE.exec(text);
  if (!match) return undefined;
  const date = new Date(Number(match[1]));
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function sapNumber(text: string): number | undefined {
  const match = SAP_NUMBER.exec(text);
  if (!match || (match[1] && match[3])) return undefined;
  const value = Number(match[2]);
  if (!Number.isFinite(value)) return undefined;
  // 0 rather than -0 for "0.00-": the same JSON, but not the same value to strict comparisons.
  return (match[1] === "-" || match[3] === "-") && value !== 0 ? -value : value;
}

function sapBoolean(text: string): boolean | undefined {
  if (text === "X" || text === "x") return true;
  if (text.trim() === "") return false;
  return undefined;
}

/** `{ results: [...] }` and nothing else: OData v2's wrapper of a collection (expanded navigation properties too). */
const resultsOf = (value: Json): Json[] | undefined => {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === "results" && Array.isArray(value.results) ? value.results : undefined;
};

/** Sets an own property, also for a key named `__proto__` (JSON.parse makes those own properties too). */
function setOwn(target: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Returns a converted copy of `payload` (the input is not changed). The walk uses its own stack, not
 * recursion, so a deeply nested payload cannot overflow the call stack. Field rules match a key at
 * any depth, and apply to the items of an array under that key too.
 *
 * @example normalise({ d: { results: [{ KUNNR: "0000012345", ERDAT: "/Date(1700000000000)/" }] } }, { strip_leading_zeros: ["KUNNR"] })
 * // -> { payload: [{ KUNNR: "12345", ERDAT: "2023-11-14T22:13:20.000Z" }], conversions: { … } }
 */
export function normalise(payload: Json, options: z.input<typeof Config> = {}): { payload: Json; conversions: Conversions } {
  const config = Config.parse(options);
  const booleans = new Set(config.boolean_fields);
  const numbers = new Set(config.number_fields);
  const keys = new Set(config.strip_leading_zeros);
  const conversions: Conversions = { dates: 0, booleans: 0, numbers: 0, keys: 0, unwrapped: 0 };

  let root = payload;
  if (config.unwrap_odata && root !== null && typeof root === "object" && !Array.isArray(root) && Object.keys(root).length === 1 && Object.hasOwn(root, "d")) {
    // `__count` and `__next` beside `results` are dropped with the envelope: a mapping reads records.
    const d = root.d!;
    root = d !== null && typeof d === "object" && !Array.isArray(d) && Array.isArray(d.results) ? d.results : d;
    conversions.unwrapped++;
  }

  const converted = (value: string, field: string | null): Json => {
    if (field !== null && booleans.has(field)) {
      const flag = sapBoolean(value);
      if (flag !== undefined) {
        conversions.booleans++;
        return flag;
      }
    }
    if (field !== null && numbers.has(field)) {
      const number = sapNumber(value);
      if (number !== undefined) {
        conversions.numbers++;
        return number;
      }
    }
    if (field !== null && keys.has(field) && DIGITS.test(value)) {
      const stripped = value.replace(/^0+(?=\d)/, "");
      if (stripped !== value) conversions.keys++;
      return stripped;
    }
    const date = odataDate(value);
    if (date !== undefined) {
      conversions.dates++;
      return date;
    }
    return value;
  };

  // Each task copies one value into its place in the result; `field` is the nearest key above it.
  const result: { value: Json } = { value: null };
  const stack: { value: Json; field: string | null; put: (v: Json) => void }[] = [{ value: root, field: null, put: (v) => (result.value = v) }];
  while (stack.length > 0) {
    const task = stack.pop()!;
    let value = task.value;
    if (config.unwrap_odata && task.field !== null) {
      const results = resultsOf(value);
      if (results) {
        value = results;
        conversions.unwrapped++;
      }
    }
    if (typeof value === "string") task.put(converted(value, task.field));
    else if (Array.isArray(value)) {
      const copy: Json[] = new Array(value.length).fill(null);
      task.put(copy);
      value.forEach((item, i) => stack.push({ value: item, field: task.field, put: (v) => (copy[i] = v) }));
    } else if (value !== null && typeof value === "object") {
      const copy: { [key: string]: Json } = {};
      task.put(copy);
      for (const key of Object.keys(value)) {
        setOwn(copy, key, null);
        stack.push({ value: value[key]!, field: key, put: (v) => setOwn(copy, key, v) });
      }
    } else task.put(value);
  }
  return { payload: result.value, conversions };
}

const normaliseAction = defineAction({
  name: "normalise",
  description:
    "Converts an SAP payload for mapping: OData /Date(ms)/ values to ISO 8601 (UTC), 'X'/' ' flags to booleans, padded and trailing-minus numbers to numbers, ALPHA-padded keys without leading zeros, the OData v2 envelope unwrapped. The output has the input's shape.",
  input: z.json(),
  output: z.json(),
  run(payload, ctx) {
    const { payload: output, conversions } = normalise(payload as Json, (ctx.config ?? {}) as z.input<typeof Config>);
    const { dates, booleans, numbers, keys, unwrapped } = conversions;
    ctx.log.info(`converted dates=${dates} booleans=${booleans} numbers=${numbers} keys=${keys} unwrapped=${unwrapped}`);
    return output;
  },
});

export default defineApp({
  name: "@erp-edge/sap-normalise",
  version: "1.0.0",
  description: "Converts SAP (OData v2) payloads before mapping: dates to ISO 8601, X/blank flags to booleans, SAP numbers to numbers, ALPHA keys without leading zeros.",
  config: Config,
  actions: [normaliseAction],
});
