// The bad-input corpus: for every operation in /openapi.json, the malformed bodies, queries and path
// ids a broken or hostile client sends, generated from the operation's own schema. Every answer must
// be a 4xx error envelope (or a 2xx where the input is in fact acceptable), and never a 5xx.
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN } from "../helpers";
import {
  captureWorkerErrors,
  createFixture,
  envelopeProblem,
  fillPath,
  firstPathValues,
  inPool,
  isRequired,
  jsonTypeOf,
  loadDocument,
  mustRefuse,
  operationsOf,
  queryValueRefused,
  refusesEmptyObject,
  send,
  validBody,
  type OpenApiDocument,
  type Operation,
  type TenantFixture,
} from "./openapi-routes";

/** What a probe's answer may be: a refusal, exactly 413, or either a refusal or success. */
type Expectation = "4xx" | "413" | "either";

interface Probe {
  op: Operation;
  /** The kind of input, for the per-kind table: "deep nesting 10,000", "invalid UTF-8", ... */
  family: string;
  kind: string;
  path: string;
  body?: BodyInit;
  headers?: Record<string, string>;
  expect: Expectation;
}

type Suite = "body" | "query" | "path";
const counts = { requests: 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, other: 0 };
const serverErrors: Record<Suite, string[]> = { body: [], query: [], path: [] };
const failures: Record<Suite, string[]> = { body: [], query: [], path: [] };
const controls: string[] = [];
/** family -> status -> count */
const byFamily = new Map<string, Map<number, number>>();

let doc: OpenApiDocument;
let operations: Operation[];
let A: TenantFixture;
let log: ReturnType<typeof captureWorkerErrors>;
let sequence = 0;

const MIB = 1024 * 1024;
const POLLUTION_KEY = "polluted_by_corpus";

const tokenFor = (op: Operation) => (op.guard === "admin" ? ADMIN : op.guard === "tenant" ? A.token : undefined);

async function fire(suite: Suite, p: Probe): Promise<void> {
  let res;
  try {
    res = await send(p.op.method, p.path, { token: tokenFor(p.op), body: p.body, headers: p.headers, requestId: `corpus-${++sequence}` });
  } catch (err) {
    failures[suite].push(`${p.op.key} [${p.kind}] the request itself threw: ${(err as Error).message}`);
    return;
  }
  counts.requests++;
  const statuses = byFamily.get(p.family) ?? new Map<number, number>();
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  byFamily.set(p.family, statuses);
  const cls = res.status >= 200 && res.status < 600 ? (`${Math.floor(res.status / 100)}xx` as "2xx" | "3xx" | "4xx" | "5xx") : "other";
  counts[cls]++;
  const where = `${p.op.key} [${p.kind}]`;
  if (Object.prototype.hasOwnProperty.call(Object.prototype, POLLUTION_KEY)) {
    failures[suite].push(`${where} polluted Object.prototype`);
    delete (Object.prototype as Record<string, unknown>)[POLLUTION_KEY];
  }
  if (cls === "5xx") {
    serverErrors[suite].push(`${where} ${res.status}: ${log.errorsOf(res.requestId) || res.text.slice(0, 160)}`);
  } else if (cls === "4xx") {
    const problem = envelopeProblem(res);
    if (problem) failures[suite].push(`${where} ${res.status} ${problem}`);
    if (p.expect === "413" && res.status !== 413) failures[suite].push(`${where} expected 413, got ${res.status} ${res.text.slice(0, 120)}`);
  } else if (cls === "2xx") {
    if (p.expect !== "either") failures[suite].push(`${where} accepted (${res.status}) an input it must refuse`);
  } else {
    failures[suite].push(`${where} unexpected status ${res.status}`);
  }
  if (p.kind === "control: valid body" && cls !== "2xx") controls.push(`${p.op.key} ${res.status} ${res.text.slice(0, 160)}`);
}

const runAll = (suite: Suite, probes: Probe[]) => inPool(probes.map((p) => () => fire(suite, p)), 4);

// ---- building bodies ---------------------------------------------------------------------------

type Path = (string | number)[];
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const SPLICE = "@@corpus-splice@@";

function setAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let cursor = copy;
  for (const step of path.slice(0, -1)) cursor = cursor[step] as Record<string | number, unknown>;
  cursor[path.at(-1)!] = value;
  return copy;
}

function deleteAt(root: unknown, path: Path, key: string): unknown {
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let cursor = copy;
  for (const step of path) cursor = cursor[step] as Record<string | number, unknown>;
  delete cursor[key];
  return copy;
}

/** The base body as JSON text with raw text `raw` (possibly not JSON at all) at `path`. */
function spliced(base: unknown, path: Path, raw: string): string {
  return JSON.stringify(setAt(base, path, SPLICE)).replace(JSON.stringify(SPLICE), () => raw);
}

/** Every value in the body, breadth first (so a cap keeps the top-level fields), arrays by their first item. */
function pathsOf(base: unknown, cap = 24): { path: Path; value: unknown }[] {
  const out: { path: Path; value: unknown }[] = [];
  const queue: { path: Path; value: unknown }[] = [{ path: [], value: base }];
  while (queue.length && out.length < cap) {
    const next = queue.shift()!;
    out.push(next);
    if (next.path.length >= 4) continue;
    if (Array.isArray(next.value) && next.value.length) queue.push({ path: [...next.path, 0], value: next.value[0] });
    if (isPlainObject(next.value)) for (const [k, v] of Object.entries(next.value)) queue.push({ path: [...next.path, k], value: v });
  }
  return out;
}

const show = (path: Path) => (path.length ? path.join(".") : "(body)");
const deepObject = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
const deepArray = (levels: number) => "[".repeat(levels) + "1" + "]".repeat(levels);

const WRONG_TYPES: Record<string, unknown> = { string: "wrong", number: 12.5, boolean: true, object: { k: "v" }, array: ["v"], null: null };

const INVALID_JSON: Record<string, string> = {
  truncated: '{"a":',
  "single quotes": "{'a':1}",
  "bare keys": "{a:1}",
  "trailing comma": '{"a":1,}',
  "trailing garbage": '{"a":1} x',
  NaN: "NaN",
  "lone NUL": "\u0000",
};

/** Invalid UTF-8 byte sequences put inside a JSON string. */
const INVALID_UTF8: Record<string, number[]> = {
  "byte 0xff": [0xff],
  "lone surrogate ED A0 80": [0xed, 0xa0, 0x80],
  "overlong C0 AF": [0xc0, 0xaf],
};

const SPLICE_BYTES = "@@corpus-bytes@@";

/** Bytes of `base` with `bad` inside the string at `path`, or right after the opening brace when `path` is null. */
function withBadBytes(base: unknown, path: Path | null, bad: number[]): Uint8Array {
  const encoder = new TextEncoder();
  const json = JSON.stringify(base);
  const text = path ? spliced(base, path, `"a${SPLICE_BYTES}b"`) : `${json.slice(0, 1)}${SPLICE_BYTES}${json.slice(1)}`;
  const [before, after] = text.split(SPLICE_BYTES) as [string, string];
  const parts = [encoder.encode(before), new Uint8Array(bad), encoder.encode(after)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A body streamed in chunks with no content-length, so only counting the bytes read can stop it. */
function streamed(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + 64 * 1024));
      offset += 64 * 1024;
    },
  });
}

/** Every kind of bad body for one operation, built from its schema and a valid body. */
function bodyProbes(op: Operation): Probe[] {
  const schema = op.body!.schema;
  const params = firstPathValues(op, A);
  const path = fillPath(op.path, params);
  const base = validBody(doc, op, A, params);
  const text = JSON.stringify(base);
  const json = { "content-type": "application/json" };
  const probes: Probe[] = [];
  const add = (family: string, kind: string, body: BodyInit | undefined, expect: Expectation, headers: Record<string, string> | undefined = json) =>
    probes.push({ op, family, kind, path, body, headers, expect });
  const refusedAt = (at: Path, value: unknown): Expectation => (mustRefuse(doc, schema, at, value) ? "4xx" : "either");

  add("valid body (control)", "control: valid body", text, "either");
  const all = pathsOf(base);
  const fields = all.filter((p) => p.path.length > 0);
  const strings = fields.filter((p) => typeof p.value === "string");
  const containers = all.filter((p) => typeof p.value === "object" && p.value !== null);

  for (const { path: at, value } of containers.filter((c) => isPlainObject(c.value))) {
    for (const key of Object.keys(value as object)) {
      if (isRequired(doc, schema, at, key)) add("missing required field", `missing required ${show([...at, key])}`, JSON.stringify(deleteAt(base, at, key)), "4xx");
    }
  }
  for (const { path: at, value } of fields) {
    for (const [type, wrong] of Object.entries(WRONG_TYPES)) {
      // 12.5 is still sent to integer fields: "integer" and "number" count as different types here.
      if (jsonTypeOf(wrong) === jsonTypeOf(value)) continue;
      add("wrong field type", `wrong type ${show(at)}: ${type}`, JSON.stringify(setAt(base, at, wrong)), refusedAt(at, wrong));
    }
  }
  for (const { path: at } of fields.filter((f) => typeof f.value === "number")) {
    for (const n of [1e308, -1e308, -1, 0.5, 2 ** 53 + 2]) add("out-of-range number", `number ${show(at)}: ${n}`, JSON.stringify(setAt(base, at, n)), refusedAt(at, n));
  }
  for (const { path: at } of strings.slice(0, 3)) {
    const odd = "a\u0000b\u001f\u202e\ufeff😀\ud800";
    add("control characters and lone surrogate escapes", `odd characters in ${show(at)}`, JSON.stringify(setAt(base, at, odd)), refusedAt(at, odd));
  }
  // Under the size limit but wide: each item or key may cost a validation issue.
  for (const { path: at } of containers.filter((c) => Array.isArray(c.value)).slice(0, 2)) {
    add("wide array", `200,000 items in ${show(at)}`, spliced(base, at, `[${"1,".repeat(199_999)}1]`), "either");
  }
  for (const { path: at } of containers.filter((c) => isPlainObject(c.value)).slice(0, 2)) {
    const keys = Array.from({ length: 60_000 }, (_, i) => `"k${i}":1`).join(",");
    add("wide object", `60,000 keys in ${show(at)}`, spliced(base, at, `{${keys}}`), "either");
  }
  for (const [type, wrong] of Object.entries({ ...WRONG_TYPES, "array of objects": [{}] })) {
    if (jsonTypeOf(wrong) !== jsonTypeOf(base)) add("wrong body type", `body is ${type}`, JSON.stringify(wrong), refusedAt([], wrong));
  }
  if (isPlainObject(base)) add("extra unknown key", "extra unknown key", JSON.stringify({ ...base, zz_unknown_key: "x" }), "either");

  // Size: over the 1 MiB limit (sized and streamed) must be 413; 100 KB in each string is under it.
  const padAt: Path = strings[0]?.path ?? ["pad"];
  const oversized = spliced(base, padAt, JSON.stringify("x".repeat(MIB + 64)));
  add("over 1 MiB", `huge string ${show(padAt)}: 1 MiB + 64`, oversized, "413");
  add("over 1 MiB, streamed", `huge string ${show(padAt)}: 1 MiB + 64, streamed without content-length`, streamed(oversized), "413");
  for (const { path: at } of strings.slice(0, 4)) {
    const big = "y".repeat(100_000);
    add("100 KB string", `huge string ${show(at)}: 100 KB`, JSON.stringify(setAt(base, at, big)), refusedAt(at, big));
  }

  // Depth: 10,000 levels must be refused (a parser depth limit); 100 levels may be fine.
  for (const { path: at } of containers.slice(0, 5)) {
    add("deep nesting 10,000", `deep nesting ${show(at)}: 10,000 objects`, spliced(base, at, deepObject(10_000)), "4xx");
    add("deep nesting 10,000", `deep nesting ${show(at)}: 10,000 arrays`, spliced(base, at, deepArray(10_000)), "4xx");
    add("deep nesting 100", `deep nesting ${show(at)}: 100 objects`, spliced(base, at, deepObject(100)), refusedAt(at, {}));
    add("deep nesting 100", `deep nesting ${show(at)}: 100 arrays`, spliced(base, at, deepArray(100)), refusedAt(at, []));
  }

  // Media types: only JSON is read.
  add("wrong content type", "content type text/plain", text, "4xx", { "content-type": "text/plain" });
  add("wrong content type", "content type application/xml", "<a>1</a>", "4xx", { "content-type": "application/xml" });
  add("wrong content type", "content type application/x-www-form-urlencoded", "a=1&b=2", "4xx", { "content-type": "application/x-www-form-urlencoded" });
  const form = new FormData();
  form.set("json", text);
  add("wrong content type", "content type multipart/form-data", form, "4xx", {});
  add("wrong content type", "no content type, JSON bytes", new TextEncoder().encode(text), "4xx", {});

  for (const [name, raw] of Object.entries(INVALID_JSON)) add("invalid JSON", `invalid JSON: ${name}`, raw, "4xx");
  for (const [name, bytes] of Object.entries(INVALID_UTF8)) {
    for (const { path: at } of strings.slice(0, 3)) add("invalid UTF-8", `invalid UTF-8 in ${show(at)}: ${name}`, withBadBytes(base, at, bytes), "4xx");
    add("invalid UTF-8", `invalid UTF-8 between tokens: ${name}`, withBadBytes(base, null, bytes), "4xx");
  }

  // Prototype keys, at the top and in every nested object (configurations, payloads, settings).
  for (const { path: at, value } of containers.filter((c) => isPlainObject(c.value)).slice(0, 5)) {
    const inner = JSON.stringify(value).slice(1);
    const rest = inner === "}" ? "}" : `,${inner}`;
    add("prototype keys", `prototype keys in ${show(at)}: __proto__`, spliced(base, at, `{"__proto__":{"${POLLUTION_KEY}":"yes"}${rest}`), "either");
    add("prototype keys", `prototype keys in ${show(at)}: constructor.prototype`, spliced(base, at, `{"constructor":{"prototype":{"${POLLUTION_KEY}":"yes"}},"prototype":{"${POLLUTION_KEY}":"yes"}${rest}`), "either");
  }

  // An empty JSON text is not JSON; no body at all is read as {} (so it fails only where {} does).
  add("empty body", "empty body with JSON content type", "", op.body!.required ? "4xx" : "either");
  add("no body", "no body at all", undefined, op.body!.required && refusesEmptyObject(doc, schema) ? "4xx" : "either", {});
  return probes;
}

// ---- queries and path ids ----------------------------------------------------------------------

/** Query values, as they appear in the URL (already percent-encoded where needed). */
const QUERY_VALUES: Record<string, string> = {
  text: "abc",
  negative: "-1",
  fraction: "1.5",
  boolean: "true",
  empty: "",
  "array syntax": "%5B%5D",
  "object syntax": "%7B%7D",
  overflow: "1e400",
  "huge integer": "99999999999999999999999",
  "10 KB": "9".repeat(10_240),
  NUL: "%00",
  "bad percent escape": "%ZZ",
  "invalid UTF-8": "%FF%FE",
  unicode: encodeURIComponent("ü😀‮"),
  "SQL-ish": encodeURIComponent("' OR 1=1;--"),
};

function queryProbes(op: Operation): Probe[] {
  const params = firstPathValues(op, A);
  const path = fillPath(op.path, params);
  const headers = op.body?.required ? { "content-type": "application/json" } : undefined;
  const body = op.body?.required ? JSON.stringify(validBody(doc, op, A, params)) : undefined;
  const probes: Probe[] = [];
  for (const param of op.queryParams) {
    for (const [name, raw] of Object.entries(QUERY_VALUES)) {
      let decoded: string | null;
      try {
        decoded = decodeURIComponent(raw);
      } catch {
        decoded = null;
      }
      const expect: Expectation = decoded !== null && queryValueRefused(param, decoded) ? "4xx" : "either";
      probes.push({ op, family: `query ${name}`, kind: `query ${param.name}: ${name}`, path: `${path}?${param.name}=${raw}`, body, headers, expect });
    }
    probes.push({ op, family: "query repeated", kind: `query ${param.name}: repeated`, path: `${path}?${param.name}=1&${param.name}=2`, body, headers, expect: "either" });
  }
  probes.push({ op, family: "query unknown 10 KB key", kind: "query: unknown 10 KB key", path: `${path}?${"k".repeat(10_240)}=1`, body, headers, expect: "either" });
  return probes;
}

/** Path ids, raw in the URL. */
const PATH_VALUES: Record<string, string> = {
  "10 KB": "x".repeat(10_240),
  NUL: "%00",
  "NUL inside": "a%00b",
  "..": "..",
  "encoded ..": "%2e%2e",
  "encoded ../..": "..%2F..%2Fv1%2Ftenants",
  "encoded slash": "a%2Fb",
  unicode: encodeURIComponent("ünïcødé-😀-‮"),
  "invalid UTF-8": "%FF%FE",
  "bad percent escape": "%",
  space: "%20",
  quotes: encodeURIComponent(`'"<>`),
};

function pathProbes(op: Operation): Probe[] {
  const real = firstPathValues(op, A);
  const probes: Probe[] = [];
  for (const param of op.pathParams) {
    for (const [name, raw] of Object.entries(PATH_VALUES)) {
      const path = fillPath(op.path, { ...real, [param.name]: raw }, [param.name]);
      const body = op.body?.required ? JSON.stringify(validBody(doc, op, A, real)) : undefined;
      const headers = op.body?.required ? { "content-type": "application/json" } : op.guard === "public" ? { "content-type": "application/json" } : undefined;
      let decoded: string | null;
      try {
        decoded = decodeURIComponent(raw);
      } catch {
        decoded = null;
      }
      // ".." may resolve to another route; anything else longer than the documented maximum must be refused.
      const expect: Expectation = !name.includes("..") && decoded !== null && queryValueRefused(param, decoded) ? "4xx" : "either";
      probes.push({ op, family: `path ${name}`, kind: `path ${param.name}: ${name}`, path, body: body ?? (op.guard === "public" ? "{}" : undefined), headers, expect });
    }
  }
  return probes;
}

// ---- the suites --------------------------------------------------------------------------------

function verdict(suite: Suite) {
  const problems = [...serverErrors[suite].map((e) => `5xx ${e}`), ...failures[suite]];
  expect(problems.length, problems.slice(0, 60).join("\n")).toBe(0);
}

describe("bad-input corpus generated from each route's schema", () => {
  beforeAll(async () => {
    log = captureWorkerErrors();
    doc = await loadDocument();
    operations = operationsOf(doc);
    A = await createFixture("corpus", env.RECEIVER_URL);
  }, 60_000);

  afterAll(() => log.restore());

  it("answers malformed JSON bodies with 4xx envelopes, never a 5xx", async () => {
    const withBody = operations.filter((op) => op.body);
    expect(withBody.length).toBeGreaterThan(0);
    for (const op of withBody) await runAll("body", bodyProbes(op));
    if (controls.length) console.log(`valid-body controls not accepted (mutations of these test less):\n  ${controls.join("\n  ")}`);
    verdict("body");
  }, 120_000);

  it("answers malformed query parameters with 4xx envelopes, never a 5xx", async () => {
    for (const op of operations.filter((o) => o.queryParams.length)) await runAll("query", queryProbes(op));
    verdict("query");
  }, 120_000);

  it("answers hostile path ids with 4xx envelopes, never a 5xx", async () => {
    for (const op of operations.filter((o) => o.pathParams.length)) await runAll("path", pathProbes(op));
    verdict("path");
  }, 120_000);

  it("sent a bounded corpus and found no 5xx", () => {
    const all = [...serverErrors.body, ...serverErrors.query, ...serverErrors.path];
    console.log(
      `bad-input corpus: ${counts.requests} requests over ${operations.length} routes ` +
        `(${operations.filter((o) => o.body).length} with JSON bodies, ${operations.filter((o) => o.queryParams.length).length} with query parameters, ` +
        `${operations.filter((o) => o.pathParams.length).length} with path ids): ` +
        `${counts["2xx"]} 2xx, ${counts["3xx"]} 3xx, ${counts["4xx"]} 4xx, ${counts["5xx"]} 5xx, ${counts.other} other`,
    );
    const table = [...byFamily].map(([family, statuses]) => `${family}: ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(" ")}`);
    console.log(`answers by input kind:\n  ${table.join("\n  ")}`);
    if (all.length) console.log(`5xx answers (${all.length}):\n  ${all.join("\n  ")}`);
    const other = [...failures.body, ...failures.query, ...failures.path];
    if (other.length) console.log(`other failures (${other.length}):\n  ${other.join("\n  ")}`);
    // Bounded per route (the corpus is generated per operation, so its size follows the document's).
    expect(counts.requests).toBeLessThan(60 * operations.length);
    expect(all.length, all.slice(0, 60).join("\n")).toBe(0);
  });
});
