// JSONata through one door: compiled once per text, every evaluation bounded in depth, cost and size.
import jsonata from "jsonata";
import { RE2JS } from "re2js";
import { compileText, runCompiled } from "./compiled/compiler";
import type { CompileResult, Evaluator, Host } from "./compiled/types";

/**
 * What one evaluation may do; docs/mapping-limits.md says why each exists. workerd's clock does not
 * advance during pure computation, so a wall-clock timeout would never fire inside the Worker: work
 * is counted instead, deterministically, in cost units ("steps") of about one AST node each.
 */
export interface EvaluationBounds {
  /** Deepest nesting of evaluation (JSONata's `stack` guardrail) and of a result value, error D1011. */
  maxDepth: number;
  /** Cost units per evaluation: one per AST node visited, plus built-ins' work by input size, error D1012. */
  maxSteps: number;
  /** Longest array or sequence any step may produce (JSONata's `sequence` option), error D2015. */
  maxArrayLength: number;
  /** Longest string any step may produce, or stringify to, in UTF-16 units, error L1001. */
  maxStringLength: number;
  /** Most keys of an object `$merge` builds (constructors are bounded by arrays and steps), error L1002. */
  maxObjectKeys: number;
  /** Longest sequence in an expression that uses the order-by operator `^( )`, error L1003. */
  maxOrderByLength: number;
  /** Largest result, in characters of its JSON form, error L1004. */
  maxResultSize: number;
}

export const DEFAULT_BOUNDS: EvaluationBounds = Object.freeze({
  maxDepth: 500,
  maxSteps: 1_000_000,
  maxArrayLength: 100_000,
  maxStringLength: 1_000_000,
  maxObjectKeys: 100_000,
  maxOrderByLength: 2_000,
  maxResultSize: 1_000_000,
});

export type LimitName =
  | "max_depth"
  | "max_steps"
  | "max_total_steps"
  | "max_array_length"
  | "max_string_length"
  | "max_object_keys"
  | "max_order_by_length"
  | "max_result_size";

/** JSONata's own guardrail codes where it has one (D1011, D1012, D2015), ours (L1xxx) otherwise. */
export const LIMIT_CODES: Record<LimitName, string> = {
  max_depth: "D1011",
  max_steps: "D1012",
  max_total_steps: "D1012",
  max_array_length: "D2015",
  max_string_length: "L1001",
  max_object_keys: "L1002",
  max_order_by_length: "L1003",
  max_result_size: "L1004",
};

/** A regular expression the linear-time engine cannot run (lookahead, backreferences). */
export const UNSUPPORTED_REGEX = "R0001";

/**
 * A JSONata failure: `code` is JSONata's (S0201, T2001, ...) or ours (L1xxx, R0001), `position` its
 * character offset. A failure because a bound was reached also names it: `limit` and its `value`.
 */
export class ExpressionError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly position?: number,
    readonly token?: string,
    readonly limit?: LimitName,
    readonly value?: number,
  ) {
    super(message);
    this.name = "ExpressionError";
  }
}

/** Shared across the evaluations of one mapping run, so a run's total work is bounded too. */
export interface StepBudget {
  used: number;
  limit: number;
}

/**
 * Thrown through JSONata's evaluator, which adds position and token, and rewrites `message` for
 * codes it knows (D1011, D1012, D2015): ours is kept in `text`. Becomes an ExpressionError.
 */
export class Refusal {
  position?: number;
  token?: string;
  message: string;
  constructor(
    readonly code: string,
    readonly text: string,
    readonly limit?: LimitName,
    readonly value?: number,
  ) {
    this.message = text;
  }
}

export function refuse(limit: LimitName, value: number, what: string): Refusal {
  return new Refusal(LIMIT_CODES[limit], `${what} (limit ${limit} = ${value})`, limit, value);
}

// ---------------------------------------------------------------------------------------------
// The meter: one per evaluation, reached from JSONata's environment (`environment.base[METER]`).

/** Characters of linear string work per cost unit; an AST node costs about as much as 16 chars. */
const CHARS_PER_STEP = 16;
/** Array elements of native (non-callback) work per cost unit. */
const ITEMS_PER_STEP = 8;

export interface Meter {
  steps: number;
  limit: number;
  limitName: "max_steps" | "max_total_steps";
  limitValue: number;
  c: CompiledState;
}

export const METER = Symbol("erp-edge.meter");
/** The binding that hands the meter to the evaluation; its value shows as `{}` to expressions. */
const METER_BINDING = "__erp_edge_meter";
const METER_HANDLE = Symbol("erp-edge.meter-handle");

interface Frame {
  base: Base;
  lookup(name: string): unknown;
}
interface Base extends Frame {
  [METER]?: Meter;
  RegexEngine?: unknown;
}

export function charge(m: Meter, units: number): void {
  m.steps += units;
  if (m.steps > m.limit) {
    const what = m.limitName === "max_steps" ? "Expression exceeded its evaluation budget (runaway or too costly expression?)" : "Mapping exceeded its total evaluation budget";
    throw refuse(m.limitName, m.limitValue, what);
  }
}

export const chars = (n: number) => 1 + Math.floor(n / CHARS_PER_STEP);
export const items = (n: number) => 1 + Math.floor(n / ITEMS_PER_STEP);

function newMeter(c: CompiledState, budget?: StepBudget): Meter {
  const remaining = budget ? Math.max(0, budget.limit - budget.used) : Infinity;
  if (budget && remaining < c.bounds.maxSteps) return { steps: 0, limit: remaining, limitName: "max_total_steps", limitValue: budget.limit, c };
  return { steps: 0, limit: c.bounds.maxSteps, limitName: "max_steps", limitValue: c.bounds.maxSteps, c };
}

// ---------------------------------------------------------------------------------------------
// Sizes: what a value weighs once stringified, measured without stringifying it.

function isFunctionValue(v: object): boolean {
  const f = v as { _jsonata_lambda?: unknown; _jsonata_function?: unknown };
  return f._jsonata_lambda === true || f._jsonata_function === true;
}

/**
 * Approximate length of `JSON.stringify(value)` (escapes not counted), refusing past `cap` or past
 * `maxDepth` levels; iterative, so a deep value cannot overflow the stack. Charges the walk to `m`.
 */
export function measure(value: unknown, cap: number, limit: LimitName, maxDepth: number, m?: Meter, pretty = false): number {
  let size = 0;
  let nodes = 0;
  const stack: unknown[] = [value];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const v = stack.pop();
    const depth = depths.pop()!;
    nodes++;
    if (pretty) size += 2 * depth + 1;
    switch (typeof v) {
      case "string":
        size += v.length + 2;
        break;
      case "number":
        size += String(v).length;
        break;
      case "boolean":
        size += 5;
        break;
      case "object":
        if (v === null) {
          size += 4;
          break;
        }
        if (depth >= maxDepth) throw refuse("max_depth", maxDepth, `Value nested more than ${maxDepth} levels deep`);
        if (Array.isArray(v)) {
          size += 2 + v.length;
          for (let i = v.length - 1; i >= 0; i--) {
            stack.push(v[i]);
            depths.push(depth + 1);
          }
        } else if (isFunctionValue(v)) {
          size += 2;
        } else {
          size += 2;
          for (const key of Object.keys(v)) {
            size += key.length + 4;
            stack.push((v as Record<string, unknown>)[key]);
            depths.push(depth + 1);
          }
        }
        break;
      default:
        break;
    }
    if (size > cap) {
      if (m) charge(m, items(nodes));
      throw refuse(limit, cap, `Value would serialise to more than ${cap} characters`);
    }
  }
  if (m) charge(m, items(nodes));
  return size;
}

/** JSON size of a value as the mapping engine and the API count it (see docs/mapping-limits.md). */
export function serialisedSize(value: unknown, cap: number): number {
  // Scalars, most mapped values, and compiled results (sized as they were built) without a walk.
  if (typeof value === "string") return value.length + 2 > cap ? cap + 1 : value.length + 2;
  if (value === lastResult && value !== null && typeof value === "object") return lastResultSize > cap ? cap + 1 : lastResultSize;
  try {
    return measure(value, cap, "max_result_size", Number.MAX_SAFE_INTEGER);
  } catch (err) {
    if (err instanceof Refusal) return cap + 1;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Regular expressions: RE2 semantics (linear time), behind the RegExp interface JSONata uses.

interface LinearPattern {
  pattern: RE2JS;
  /** Relative cost per character: RE2's simulation is linear in text and in program size. */
  weight: number;
}

const REGEX_CACHE_LIMIT = 500;
const regexCache = new Map<string, LinearPattern | string>();

/** JavaScript's `\s` (RE2's is ASCII only); ERP data is full of no-break spaces. */
const JS_SPACE = "\\t\\n\\x0B\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}";
/** JavaScript's `.` excludes all four line terminators; RE2's only `\n`. */
const JS_DOT = "[^\\n\\r\\x{2028}\\x{2029}]";

/** Rewrites `\s`, `\S` and `.` in an RE2 pattern so they match what they match in JavaScript. */
function withJavaScriptClasses(source: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === "\\") {
      const next = source[i + 1] ?? "";
      i++;
      if (next === "s") out += inClass ? JS_SPACE : `[${JS_SPACE}]`;
      else if (next === "S" && !inClass) out += `[^${JS_SPACE}]`;
      else out += ch + next;
    } else if (inClass) {
      if (ch === "]") inClass = false;
      out += ch;
    } else if (ch === "[") {
      inClass = true;
      out += ch;
      if (source[i + 1] === "^") out += source[++i];
      if (source[i + 1] === "]") out += source[++i];
    } else {
      out += ch === "." ? JS_DOT : ch;
    }
  }
  return out;
}

function linearPattern(re: RegExp): LinearPattern | string {
  const key = `${re.flags}/${re.source}`;
  const hit = regexCache.get(key);
  if (hit !== undefined) return hit;
  let compiled: LinearPattern | string;
  try {
    const flags = /\(\?<[=!]/.test(re.source) ? RE2JS.LOOKBEHINDS : 0;
    const pattern = RE2JS.compile(withJavaScriptClasses(RE2JS.translateRegExp(re)), flags);
    compiled = { pattern, weight: Math.max(1, Math.ceil(pattern.programSize() / 64)) };
  } catch (err) {
    compiled = err instanceof Error ? err.message : String(err);
  }
  if (regexCache.size >= REGEX_CACHE_LIMIT) regexCache.delete(regexCache.keys().next().value!);
  regexCache.set(key, compiled);
  return compiled;
}

export function linearPatternOrRefuse(re: RegExp): LinearPattern {
  const compiled = linearPattern(re);
  if (typeof compiled !== "string") return compiled;
  throw new Refusal(
    UNSUPPORTED_REGEX,
    `Regular expression /${re.source}/ is not supported: mappings run regular expressions in linear time (RE2 syntax), without lookahead or backreferences (${compiled})`,
  );
}

/** The subset of RegExp JSONata's regex closures use: `exec` from `lastIndex`, as with the g flag. */
export class LinearRegExp {
  lastIndex = 0;
  private subject?: string;
  private matcher?: ReturnType<RE2JS["matcher"]>;

  constructor(
    private readonly compiled: LinearPattern,
    private readonly meter?: Meter,
  ) {}

  exec(str: string): (string | undefined)[] & { index?: number; input?: string } | null {
    const from = this.lastIndex;
    if (from > str.length) {
      this.lastIndex = 0;
      return null;
    }
    // Charged for the rest of the text: a search may scan to its end even when it matches early.
    if (this.meter) charge(this.meter, chars((str.length - from) * this.compiled.weight));
    if (this.subject !== str || !this.matcher) {
      this.matcher = this.compiled.pattern.matcher(str);
      this.subject = str;
    }
    const m = this.matcher;
    if (!m.find(from)) {
      this.lastIndex = 0;
      return null;
    }
    const match: (string | undefined)[] & { index?: number; input?: string } = [];
    for (let g = 0; g <= m.groupCount(); g++) match.push(m.group(g) ?? undefined);
    match.index = m.start();
    match.input = str;
    this.lastIndex = m.end();
    return match;
  }
}

/** The engine JSONata falls back to before an evaluation's meter is installed: still linear. */
function UnmeteredRegExp(re: RegExp) {
  return new LinearRegExp(linearPatternOrRefuse(re));
}

// ---------------------------------------------------------------------------------------------
// AST inspection: each node is inspected once, on its first evaluation (also inside $eval), before
// JSONata dispatches on its type. Where JSONata would stringify a value it computed (`&`, object keys,
// error messages quoting a value) the node is rewritten into a call of a guard that measures first:
// an exit hook could check results too, but JSONata awaits it on every node, which doubled the cost.

interface AstNode {
  type: string;
  value?: unknown;
  position?: number;
  lhs?: AstNode | [AstNode, AstNode][];
  rhs?: AstNode;
  expression?: AstNode;
  update?: AstNode;
  delete?: AstNode;
  steps?: AstNode[];
  group?: { lhs: [AstNode, AstNode][] };
  procedure?: AstNode;
  arguments?: AstNode[];
  [INSPECTED]?: true;
}

const INSPECTED = Symbol("erp-edge.inspected");

/** Guards are bound under symbols: no expression can name, shadow or call them. */
const GUARD = {
  concat: Symbol("erp-edge.concat"),
  key: Symbol("erp-edge.key"),
  number: Symbol("erp-edge.number"),
  update: Symbol("erp-edge.update"),
  deletion: Symbol("erp-edge.delete"),
  range: Symbol("erp-edge.range"),
} as const;

/** A call of `guard` with `args`, shaped as JSONata's parser shapes `$f(a, b)`. */
function guardCall(guard: symbol, args: AstNode[], position?: number): AstNode {
  return { type: "function", value: "(", position, procedure: { type: "variable", value: guard, position }, arguments: args };
}

function containsOrderBy(root: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object" || node instanceof RegExp || seen.has(node)) continue;
    seen.add(node);
    if ((node as AstNode).type === "sort") return true;
    for (const child of Object.values(node)) stack.push(child);
  }
  return false;
}

function guardKeys(pairs: [AstNode, AstNode][]): void {
  for (const pair of pairs) if (pair[0].type !== "string") pair[0] = guardCall(GUARD.key, [pair[0]], pair[0].position);
}

function inspect(node: AstNode, c: CompiledState): void {
  switch (node.type) {
    case "regex": {
      try {
        linearPatternOrRefuse(node.value as RegExp);
      } catch (err) {
        if (err instanceof Refusal) err.position = node.position;
        throw err; // not marked: refused again on every evaluation
      }
      break;
    }
    case "binary":
      if (node.value === "..") {
        // A range allocates every item it names: charged by its length, like any other loop.
        const call = guardCall(GUARD.range, [node.lhs as AstNode, node.rhs!], node.position);
        delete node.lhs;
        delete node.rhs;
        Object.assign(node, call);
      } else if (node.value === "&") {
        const call = guardCall(GUARD.concat, [node.lhs as AstNode, node.rhs!], node.position);
        delete node.lhs;
        delete node.rhs;
        Object.assign(node, call);
      }
      break;
    case "unary":
      if (node.value === "{") guardKeys(node.lhs as [AstNode, AstNode][]);
      else if (node.value === "-") node.expression = guardCall(GUARD.number, [node.expression!], node.position);
      break;
    case "transform":
      node.update = guardCall(GUARD.update, [node.update!], node.update!.position);
      if (node.delete) node.delete = guardCall(GUARD.deletion, [node.delete], node.delete.position);
      break;
    case "path":
      // Only $eval can bring an order-by into an expression compiled without one.
      if (!c.orderBy && node.steps!.some((s) => s.type === "sort")) {
        throw refuse("max_order_by_length", c.bounds.maxOrderByLength, "The order-by operator ^( ) is not available inside $eval; use $sort()");
      }
      break;
  }
  if (node.group) guardKeys(node.group.lhs);
  node[INSPECTED] = true;
}

// ---------------------------------------------------------------------------------------------
// Built-ins whose cost grows with their input: shadowed per expression by metered versions.

export interface Focus {
  environment: Frame;
  input: unknown;
  createSequence: () => unknown[];
}
export type Implementation = (this: Focus, ...args: any[]) => unknown;
export interface BuiltIn {
  _jsonata_function: true;
  implementation: Implementation;
  signature: unknown;
}

export function meterOf(focus: Focus): Meter {
  const m = focus.environment.base[METER];
  if (!m) throw new Error("JSONata built-in called outside a metered evaluation");
  return m;
}

export const lengthOf = (v: unknown) => (Array.isArray(v) ? v.length : v === undefined ? 0 : 1);
export const strLength = (v: unknown) => (typeof v === "string" ? v.length : 0);
export const keyCount = (v: unknown) => (v !== null && typeof v === "object" ? Object.keys(v).length : 0);
export const keyCountAll = (v: unknown) => (Array.isArray(v) ? v.reduce((n: number, x) => n + keyCount(x), 0) : keyCount(v));

/** Charges `cost(args)` before delegating to JSONata's own implementation. */
const chargeFirst =
  (cost: (args: any[]) => number) =>
  (original: Implementation): Implementation =>
    function (this: Focus, ...args: any[]) {
      charge(meterOf(this), cost(args));
      return original.apply(this, args);
    };

const stringArgs = (...indexes: number[]) => chargeFirst((args) => chars(indexes.reduce((n, i) => n + strLength(args[i]), 0)));

function codePointPrefix(s: string, count: number): string {
  let units = 0;
  let seen = 0;
  for (const ch of s) {
    if (seen++ === count) break;
    units += ch.length;
  }
  return s.slice(0, units);
}

/** `$pad` without JSONata's `new Array(width).join(char)`, which allocates width × char.length first. */
function pad(this: Focus, str: string | undefined, width: number, char?: string): string | undefined {
  if (str === undefined) return undefined;
  const m = meterOf(this);
  charge(m, chars(str.length));
  if (char === undefined || char.length === 0) char = " ";
  const padLength = Math.abs(Math.trunc(width)) - [...str].length;
  if (!(padLength > 0)) return str;
  const max = m.c.bounds.maxStringLength;
  if (str.length + padLength > max) throw refuse("max_string_length", max, `$pad would build a string of ${str.length + padLength} characters`);
  charge(m, chars(padLength));
  const unit = [...char].length;
  const padding = codePointPrefix(char.repeat(Math.ceil(padLength / unit)), padLength);
  return width > 0 ? str + padding : padding + str;
}

export function isNumericValue(v: unknown): boolean {
  if (typeof v !== "number" || Number.isNaN(v)) return false;
  if (!Number.isFinite(v)) throw { code: "D1001", value: v, stack: new Error().stack };
  return true;
}

/**
 * `$sort` with JSONata's semantics (a stable merge sort; `comparator(a, b)` true puts b first) in
 * O(n log n) time and O(n) memory: JSONata's own merge copies the rest of the array per comparison.
 */
async function sort(this: Focus, arr: unknown[] | undefined, comparator?: (a: unknown, b: unknown) => unknown): Promise<unknown> {
  if (arr === undefined) return undefined;
  if (arr.length <= 1) return arr;
  charge(meterOf(this), arr.length * Math.ceil(Math.log2(arr.length)));
  if (comparator === undefined) {
    if (!arr.every(isNumericValue) && !arr.every((v) => typeof v === "string")) throw { code: "D3070", index: 1, stack: new Error().stack };
    return Array.from(arr).sort((a, b) => ((a as number) > (b as number) ? 1 : (a as number) < (b as number) ? -1 : 0));
  }
  const mergeSort = async (lo: number, hi: number): Promise<unknown[]> => {
    if (hi - lo <= 1) return arr.slice(lo, hi);
    const mid = lo + Math.floor((hi - lo) / 2);
    const left = await mergeSort(lo, mid);
    const right = await mergeSort(mid, hi);
    const merged: unknown[] = [];
    let i = 0;
    let j = 0;
    while (i < left.length && j < right.length) merged.push((await comparator(left[i], right[j])) ? right[j++] : left[i++]);
    while (i < left.length) merged.push(left[i++]);
    while (j < right.length) merged.push(right[j++]);
    return merged;
  };
  return mergeSort(0, arr.length);
}

/**
 * `$distinct` with JSONata's deep equality, in linear time: JSONata compares every value with every
 * kept one (quadratic). Structured values are keyed by a canonical form (object keys sorted).
 */
function distinct(this: Focus, arr: unknown): unknown {
  if (arr === undefined) return undefined;
  if (!Array.isArray(arr) || arr.length <= 1) return arr;
  const m = meterOf(this);
  charge(m, arr.length);
  const results = (arr as { sequence?: boolean }).sequence === true ? this.createSequence() : [];
  const seenValues = new Set<unknown>();
  const seenKeys = new Set<string>();
  const canonical = new Map<object, string>();
  const identities = new Map<object, number>();
  const keyOf = (v: unknown): string => {
    if (typeof v === "string") {
      charge(m, chars(v.length));
      return JSON.stringify(v);
    }
    if (v === null || typeof v !== "object") return typeof v === "function" ? `#f${identity(v)}` : String(v);
    const cached = canonical.get(v);
    if (cached !== undefined) return cached;
    charge(m, 1);
    let key: string;
    if (isFunctionValue(v)) key = `#f${identity(v)}`;
    else if (Array.isArray(v)) key = `[${v.map(keyOf).join(",")}]`;
    else key = `{${Object.getOwnPropertyNames(v).sort().map((k) => `${JSON.stringify(k)}:${keyOf((v as Record<string, unknown>)[k])}`).join(",")}}`;
    canonical.set(v, key);
    return key;
  };
  const identity = (v: object): number => {
    let id = identities.get(v);
    if (id === undefined) identities.set(v, (id = identities.size));
    return id;
  };
  for (const value of arr) {
    if (value === null || typeof value !== "object") {
      if (typeof value === "function" ? seenKeys.has(keyOf(value)) : seenValues.has(value)) continue;
      if (typeof value === "function") seenKeys.add(keyOf(value));
      else seenValues.add(value);
    } else {
      const key = keyOf(value);
      if (seenKeys.has(key)) continue;
      seenKeys.add(key);
    }
    results.push(value);
  }
  return results;
}

/** Percent-encoded length, for refusing `$encodeUrl` of a huge string before building it. */
function encodedLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code < 0x80) n += /[A-Za-z0-9\-_.!~*'()]/.test(s[i]!) ? 1 : 3;
    else if (code < 0x800) n += 6;
    else if (code >= 0xd800 && code <= 0xdbff) {
      n += 12;
      i++;
    } else n += 9;
  }
  return n;
}


/**
 * $split or $match with their `limit` argument set to one more than the array cap, so the built-in
 * itself stops early and a result over the cap is refused, never built whole.
 */
function cappedList(original: Implementation, name: "split" | "match", noun: string): Implementation {
  return async function (this: Focus, str: string | undefined, second: unknown, limit?: number) {
    const m = meterOf(this);
    charge(m, chars(strLength(str)));
    const cap = m.c.arrayCap;
    const result = await original.call(this, str, second, limit === undefined ? cap + 1 : Math.min(limit, cap + 1));
    if (Array.isArray(result) && result.length > cap) throw refuse(m.c.arrayLimit, cap, `$${name} would yield more than ${cap} ${noun}`);
    return result;
  };
}

export const WRAPPERS: Record<string, (original: Implementation) => Implementation> = {
  sort: () => sort,
  distinct: () => distinct,
  pad: () => pad,
  string: (original) =>
    function (this: Focus, arg: unknown, prettify?: boolean) {
      const m = meterOf(this);
      if (arg !== null && typeof arg === "object") measure(arg, m.c.bounds.maxStringLength, "max_string_length", m.c.bounds.maxDepth, m, prettify === true);
      else charge(m, chars(strLength(arg)));
      return original.call(this, arg, prettify);
    },
  clone: (original) =>
    function (this: Focus, arg: unknown) {
      const m = meterOf(this);
      measure(arg, m.c.bounds.maxStringLength, "max_string_length", m.c.bounds.maxDepth, m);
      return original.call(this, arg);
    },
  join: (original) =>
    function (this: Focus, strs: unknown, separator?: string) {
      const m = meterOf(this);
      const list = Array.isArray(strs) ? strs : [];
      const total = list.reduce((n: number, s) => n + strLength(s), 0) + Math.max(0, list.length - 1) * strLength(separator);
      charge(m, list.length + chars(total));
      if (total > m.c.bounds.maxStringLength) throw refuse("max_string_length", m.c.bounds.maxStringLength, `$join would build a string of ${total} characters`);
      return original.call(this, strs, separator);
    },
  // $split and $match take a limit: asking for one more than allowed tells whether it was exceeded.
  split: (original) => cappedList(original, "split", "parts"),
  match: (original) => cappedList(original, "match", "matches"),
  replace: (original) =>
    function (this: Focus, str: string | undefined, pattern: unknown, replacement: unknown, limit?: number) {
      const m = meterOf(this);
      charge(m, chars(strLength(str)));
      if (typeof str === "string" && typeof pattern === "string" && pattern !== "" && typeof replacement === "string" && replacement.length > pattern.length) {
        let count = 0;
        for (let at = str.indexOf(pattern); at !== -1 && (limit === undefined || count < limit); at = str.indexOf(pattern, at + pattern.length)) count++;
        const length = str.length + count * (replacement.length - pattern.length);
        if (length > m.c.bounds.maxStringLength) throw refuse("max_string_length", m.c.bounds.maxStringLength, `$replace would build a string of ${length} characters`);
      }
      return original.call(this, str, pattern, replacement, limit);
    },
  contains: stringArgs(0, 1),
  substring: stringArgs(0),
  substringBefore: stringArgs(0, 1),
  substringAfter: stringArgs(0, 1),
  uppercase: stringArgs(0),
  lowercase: stringArgs(0),
  trim: stringArgs(0),
  length: stringArgs(0),
  base64encode: stringArgs(0),
  base64decode: stringArgs(0),
  decodeUrl: stringArgs(0),
  decodeUrlComponent: stringArgs(0),
  encodeUrl: encodeWrapper,
  encodeUrlComponent: encodeWrapper,
  formatNumber: stringArgs(1),
  formatBase: stringArgs(),
  formatInteger: stringArgs(1),
  parseInteger: stringArgs(0, 1),
  fromMillis: stringArgs(1),
  toMillis: stringArgs(0, 1),
  sum: chargeFirst(([arr]) => items(lengthOf(arr))),
  max: chargeFirst(([arr]) => items(lengthOf(arr))),
  min: chargeFirst(([arr]) => items(lengthOf(arr))),
  average: chargeFirst(([arr]) => items(lengthOf(arr))),
  append: chargeFirst(([a, b]) => items(lengthOf(a) + lengthOf(b))),
  reverse: chargeFirst(([arr]) => items(lengthOf(arr))),
  shuffle: chargeFirst(([arr]) => items(lengthOf(arr))),
  zip: chargeFirst((arrays) => items(arrays.reduce((n: number, a) => n + lengthOf(a), 0))),
  // Higher-order functions: their callbacks are charged as they run; this is the iteration itself.
  map: chargeFirst(([arr]) => 1 + lengthOf(arr)),
  filter: chargeFirst(([arr]) => 1 + lengthOf(arr)),
  single: chargeFirst(([arr]) => 1 + lengthOf(arr)),
  reduce: chargeFirst(([arr]) => 1 + lengthOf(arr)),
  each: chargeFirst(([obj]) => 1 + keyCount(obj)),
  sift: chargeFirst(([obj]) => 1 + keyCount(obj)),
  keys: chargeFirst(([v]) => 1 + lengthOf(v) + keyCountAll(v)),
  lookup: chargeFirst(([v]) => 1 + lengthOf(v)),
  spread: chargeFirst(([v]) => 1 + lengthOf(v) + keyCountAll(v)),
  merge: (original) =>
    function (this: Focus, objects: unknown) {
      const m = meterOf(this);
      const list = Array.isArray(objects) ? objects : [objects];
      const keys = new Set<string>();
      for (const o of list) if (o !== null && typeof o === "object") for (const k of Object.keys(o)) keys.add(k);
      charge(m, 1 + list.length + keys.size);
      if (keys.size > m.c.bounds.maxObjectKeys) throw refuse("max_object_keys", m.c.bounds.maxObjectKeys, `$merge would build an object of ${keys.size} keys`);
      return original.call(this, objects);
    },
  eval: (original) =>
    function (this: Focus, expr: unknown, focus?: unknown) {
      const m = meterOf(this);
      charge(m, 1 + strLength(expr));
      return original.call(this, expr, focus);
    },
};

function encodeWrapper(original: Implementation): Implementation {
  return function (this: Focus, str: unknown) {
    const m = meterOf(this);
    const length = strLength(str);
    charge(m, chars(length));
    const max = m.c.bounds.maxStringLength;
    if (length * 9 > max && encodedLength(str as string) > max) throw refuse("max_string_length", max, "URL encoding would exceed the longest string allowed");
    return original.call(this, str);
  };
}

/**
 * JSONata reads a native function's parameter names from its source text (partial application
 * builds `function($str, $width){...}` from them) and its arity from `length` (higher-order
 * functions): a wrapper must look like the function it wraps.
 */
function sameShape(wrapper: Implementation, original: Implementation): Implementation {
  const source = Function.prototype.toString.call(original);
  Object.defineProperty(wrapper, "length", { value: original.length });
  Object.defineProperty(wrapper, "toString", { value: () => source });
  return wrapper;
}

/**
 * JSONata's built-ins, read once from a throwaway expression: the frame-creation hook hands over
 * the compile-time environment synchronously, before evaluate() first awaits.
 */
const jsonataBuiltIns: Frame = (() => {
  let frame: Frame | undefined;
  const probe = jsonata("0");
  probe.assign(Symbol.for("jsonata.__createFrame_push") as unknown as string, (enclosing: Frame) => {
    frame ??= enclosing;
  });
  probe.evaluate(undefined).catch(() => undefined);
  if (!frame) throw new Error("cannot reach JSONata's built-in functions");
  return frame;
})();

export function jsonataBuiltIn(name: string): BuiltIn {
  const builtIn = jsonataBuiltIns.lookup(name) as BuiltIn | undefined;
  if (!builtIn?.implementation) throw new Error(`JSONata has no built-in $${name}`);
  return builtIn;
}

/** What a built-in hands back is held to the same bounds as every other value. */
function checkedResult(focus: Focus, result: unknown): unknown {
  if (typeof result === "string") {
    const max = meterOf(focus).c.bounds.maxStringLength;
    if (result.length > max) throw refuse("max_string_length", max, `A string of ${result.length} characters`);
  } else if (Array.isArray(result)) {
    const { arrayCap, arrayLimit } = meterOf(focus).c;
    if (result.length > arrayCap) throw refuse(arrayLimit, arrayCap, `A sequence of ${result.length} items`);
  }
  return result;
}

function withResultCheck(implementation: Implementation): Implementation {
  return function (this: Focus, ...args: any[]) {
    const result = implementation.apply(this, args);
    return result instanceof Promise ? result.then((value) => checkedResult(this, value)) : checkedResult(this, result);
  };
}

export const meteredBuiltIns: [string, BuiltIn][] = Object.entries(WRAPPERS).map(([name, wrap]) => {
  const builtIn = jsonataBuiltIn(name);
  return [name, { ...builtIn, implementation: sameShape(withResultCheck(wrap(builtIn.implementation)), builtIn.implementation) }];
});

export const stringify = jsonataBuiltIn("string").implementation;

/** A value for an error message: JSONata's messages JSON-stringify the value they quote. */
export function preview(value: unknown): unknown {
  try {
    measure(value, 200, "max_string_length", 20);
    return value;
  } catch {
    return "(a value too large to show)";
  }
}

const guard = (implementation: Implementation): BuiltIn => ({ _jsonata_function: true, implementation, signature: undefined });

/** Implementations of the calls inspect() writes into the AST, with JSONata's semantics and codes. */
const guards: [symbol, BuiltIn][] = [
  [
    GUARD.range,
    // JSONata's evaluateRangeExpression, with the same codes, charging a step per 8 items built.
    guard(function (this: Focus, lhs: unknown, rhs: unknown) {
      if (lhs !== undefined && !Number.isInteger(lhs)) throw { code: "T2003", value: preview(lhs), stack: new Error().stack };
      if (rhs !== undefined && !Number.isInteger(rhs)) throw { code: "T2004", value: preview(rhs), stack: new Error().stack };
      if (lhs === undefined || rhs === undefined || (lhs as number) > (rhs as number)) return undefined;
      const size = (rhs as number) - (lhs as number) + 1;
      if (size > 1e7) throw { code: "D2014", value: size, stack: new Error().stack };
      const m = meterOf(this);
      if (size > m.c.arrayCap) throw { code: "D2015", value: size, stack: new Error().stack };
      charge(m, items(size));
      const result: unknown[] & { sequence?: boolean } = new Array(size);
      for (let i = 0; i < size; i++) result[i] = (lhs as number) + i;
      result.sequence = true;
      return result;
    }),
  ],
  [
    GUARD.concat,
    guard(function (this: Focus, lhs: unknown, rhs: unknown) {
      const m = meterOf(this);
      const max = m.c.bounds.maxStringLength;
      const text = (v: unknown): string => {
        if (v === undefined) return "";
        if (typeof v === "string") return v;
        if (v !== null && typeof v === "object") measure(v, max, "max_string_length", m.c.bounds.maxDepth, m);
        return stringify.call(this, v) as string;
      };
      const left = text(lhs);
      const right = text(rhs);
      if (left.length + right.length > max) throw refuse("max_string_length", max, `& would build a string of ${left.length + right.length} characters`);
      return left.concat(right);
    }),
  ],
  [
    GUARD.key,
    guard((key: unknown) => {
      if (key === undefined || typeof key === "string") return key;
      throw { code: "T1003", value: preview(key), stack: new Error().stack };
    }),
  ],
  [
    GUARD.number,
    guard((operand: unknown) => {
      if (operand === undefined || isNumericValue(operand)) return operand;
      throw { code: "D1002", value: preview(operand), stack: new Error().stack };
    }),
  ],
  [
    GUARD.update,
    guard((update: unknown) => {
      if (update === undefined || (update !== null && typeof update === "object" && !Array.isArray(update))) return update;
      throw { code: "T2011", value: preview(update), stack: new Error().stack };
    }),
  ],
  [
    GUARD.deletion,
    guard((deletions: unknown) => {
      if (deletions === undefined || (Array.isArray(deletions) ? deletions : [deletions]).every((d) => typeof d === "string")) return deletions;
      throw { code: "T2012", value: preview(deletions), stack: new Error().stack };
    }),
  ],
];

// ---------------------------------------------------------------------------------------------
// Compilation and evaluation.

/**
 * In array contexts `$$` must be the whole payload while `$` is the element. JSONata binds `$$` to
 * the evaluation input, so the expression is wrapped in a block that rebinds it; positions in errors
 * are shifted back so they point into the text the user wrote.
 */
const ROOT_PREFIX = "($$ := $__payload;\n";
const ROOT_SUFFIX = "\n)";

export interface CompiledState {
  bounds: EvaluationBounds;
  offset: number;
  /** The text uses order-by: every sequence is held to maxOrderByLength (JSONata's sort is quadratic). */
  orderBy: boolean;
  arrayCap: number;
  arrayLimit: "max_array_length" | "max_order_by_length";
}

interface Compiled extends CompiledState {
  /** JSONata's interpreter, hooked for metering: the reference semantics and the fallback. */
  expression: jsonata.Expression;
  /** The same text compiled to closures (src/mapping/compiled/), once first asked for. */
  closures?: CompileResult;
  /** Touched on every hit, for least-recently-used eviction without reordering the map per call. */
  lastUsed: number;
  /** The text as evaluated: with the root-binding block around it where the caller asked for one. */
  source: string;
}

const CACHE_LIMIT = 1000;
/** Entries under the default bounds, keyed by text alone (the hot path builds no key). */
const defaultCache = { P: new Map<string, Compiled>(), R: new Map<string, Compiled>() };
/** Entries under other bounds, keyed by bounds and text. */
const boundedCache = new Map<string, Compiled>();
let useClock = 0;

function cacheSize(): number {
  return defaultCache.P.size + defaultCache.R.size + boundedCache.size;
}

/** Evicts the least recently used entry of the three maps: a scan, paid only when inserting into a full cache. */
function evictOne(): void {
  let oldest: { map: Map<string, Compiled>; key: string; at: number } | undefined;
  for (const map of [defaultCache.P, defaultCache.R, boundedCache]) {
    for (const [key, entry] of map) if (!oldest || entry.lastUsed < oldest.at) oldest = { map, key, at: entry.lastUsed };
  }
  if (oldest) oldest.map.delete(oldest.key);
}

// ---------------------------------------------------------------------------------------------
// The closure compiler switch: on by default; off runs every expression in the interpreter, for
// diagnosis (results must not change; the test suite checks they do not).

let compilation = true;

/** Turns the closure compiler on or off for this isolate (the `MAPPING_COMPILER` setting). */
export function setMappingCompilation(enabled: boolean): void {
  compilation = enabled;
}

export function mappingCompilationEnabled(): boolean {
  return compilation;
}

let configuredSetting: string | undefined;

/**
 * Applies the deployment's `MAPPING_COMPILER` setting where the isolate sees its env (each request,
 * queue batch, Durable Object): only when the setting changes, so a switch set in code holds.
 */
export function configureMapping(env: { MAPPING_COMPILER?: string }): void {
  const setting = env.MAPPING_COMPILER ?? "on";
  if (setting === configuredSetting) return;
  configuredSetting = setting;
  compilation = setting !== "off";
}

function resolveBounds(bounds?: Partial<EvaluationBounds>): EvaluationBounds {
  return bounds ? { ...DEFAULT_BOUNDS, ...bounds } : DEFAULT_BOUNDS;
}

function installHooks(expression: jsonata.Expression, c: CompiledState): void {
  const startEvaluation = (base: Base): Meter => {
    const handle = base.lookup(METER_BINDING) as { [METER_HANDLE]?: Meter } | undefined;
    const meter = handle?.[METER_HANDLE] ?? newMeter(c);
    base[METER] = meter;
    base.RegexEngine = function MeteredRegExp(re: RegExp) {
      return new LinearRegExp(linearPatternOrRefuse(re), meter);
    };
    return meter;
  };
  const entry = (node: AstNode, _input: unknown, env: Frame) => {
    const base = env.base;
    const meter = base[METER] ?? startEvaluation(base);
    if (++meter.steps > meter.limit) charge(meter, 0);
    if (node[INSPECTED] !== true) inspect(node, c);
  };
  expression.assign(Symbol.for("jsonata.__evaluate_entry") as unknown as string, entry);
  for (const [name, builtIn] of meteredBuiltIns) expression.assign(name, builtIn);
  for (const [name, builtIn] of guards) expression.assign(name as unknown as string, builtIn);
}

/** Compiles (or fetches from the cache) an expression; throws ExpressionError on a syntax error. */
export function compileExpression(text: string, options: { rootBinding?: boolean; bounds?: Partial<EvaluationBounds> } = {}): Compiled {
  const map = options.bounds ? boundedCache : defaultCache[options.rootBinding ? "R" : "P"];
  const key = options.bounds ? `${options.rootBinding ? "R" : "P"}${Object.values(resolveBounds(options.bounds)).join("/")}\u0000${text}` : text;
  const hit = map.get(key);
  if (hit) {
    hit.lastUsed = ++useClock;
    return hit;
  }
  const bounds = resolveBounds(options.bounds);
  const source = options.rootBinding ? ROOT_PREFIX + text + ROOT_SUFFIX : text;
  const offset = options.rootBinding ? ROOT_PREFIX.length : 0;
  // JSONata keeps this object and reads it on every evaluation, so `sequence` can be set after parsing.
  const jsonataOptions = { stack: bounds.maxDepth, sequence: bounds.maxArrayLength, RegexEngine: UnmeteredRegExp };
  let expression: jsonata.Expression;
  try {
    expression = jsonata(source, jsonataOptions as unknown as jsonata.JsonataOptions);
  } catch (err) {
    throw toExpressionError(err, offset);
  }
  const orderBy = containsOrderBy(expression.ast());
  const arrayCap = orderBy ? Math.min(bounds.maxArrayLength, bounds.maxOrderByLength) : bounds.maxArrayLength;
  jsonataOptions.sequence = arrayCap;
  const state: CompiledState = {
    bounds,
    offset,
    orderBy,
    arrayCap,
    arrayLimit: orderBy && bounds.maxOrderByLength < bounds.maxArrayLength ? "max_order_by_length" : "max_array_length",
  };
  installHooks(expression, state);
  const compiled: Compiled = { ...state, expression, source, lastUsed: ++useClock };
  if (cacheSize() >= CACHE_LIMIT) evictOne();
  map.set(key, compiled);
  return compiled;
}

/** The closure-compiled form of an entry, compiled on first use (a refusal is remembered too). */
function closuresOf(compiled: Compiled): CompileResult {
  if (!compiled.closures) {
    try {
      compiled.closures = compileText(compiled.source);
    } catch (err) {
      compiled.closures = { ok: false, reason: `compiler error: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  return compiled.closures;
}

/** Whether `text` runs compiled to closures, or why it runs in the interpreter. Throws ExpressionError on a syntax error. */
export function compiledStatus(text: string, options: { rootBinding?: boolean } = {}): { compiled: true } | { compiled: false; reason: string } {
  const closures = closuresOf(compileExpression(text, options));
  return closures.ok ? { compiled: true } : { compiled: false, reason: closures.reason };
}

/** Throws ExpressionError when `text` does not parse. */
export function assertParses(text: string): void {
  compileExpression(text);
}

export interface EvaluateOptions {
  /** Bindings visible as `$name`. */
  bindings?: Record<string, unknown>;
  /** When set, `$$` is this value (the whole payload) while `$` is `input`. */
  root?: unknown;
  bounds?: Partial<EvaluationBounds>;
  /** Shared by several evaluations (one mapping run): the steps used are added to it. */
  budget?: StepBudget;
  /** Run compiled to closures where the compiler supports the text (default: the isolate's switch). */
  compile?: boolean;
}

/** Evaluates a JSONata expression; `undefined` means "no value" (the attribute is omitted). */
export async function evaluateExpression(text: string, input: unknown, options: EvaluateOptions = {}): Promise<unknown> {
  return evaluateNow(text, input, options);
}

/**
 * evaluateExpression, answering at once when the expression runs compiled (the mapping engine's
 * path: no microtask per expression) and with a promise when the interpreter runs it. Throws
 * ExpressionError synchronously when a compiled evaluation reaches a bound.
 */
export function evaluateNow(text: string, input: unknown, options: EvaluateOptions = {}): unknown {
  const rootBinding = options.root !== undefined;
  const compiled = compileExpression(text, rootBinding ? { rootBinding, bounds: options.bounds } : options.bounds ? { bounds: options.bounds } : NO_OPTIONS);
  if (options.compile ?? compilation) {
    const closures = closuresOf(compiled);
    if (closures.ok) {
      try {
        return runClosures(compiled, closures.evaluate, input, options);
      } catch (err) {
        // A bound stops the evaluation as it is. Any other failure is evaluated again by the
        // interpreter, which words JSONata's message exactly (and is the reference, should they differ).
        if (limitBehind(err, compiled)) throw toExpressionError(err, compiled.offset, compiled);
      }
    }
  }
  return interpret(compiled, input, options);
}

const NO_OPTIONS = Object.freeze({});

/** The compiled path only, errors as the compiled run raised them: for the conformance gate and fuzzing. */
export async function evaluateCompiledOnly(text: string, input: unknown, options: EvaluateOptions = {}): Promise<unknown> {
  const compiled = compileExpression(text, { rootBinding: options.root !== undefined, bounds: options.bounds });
  const closures = closuresOf(compiled);
  if (!closures.ok) throw new Error(`not compiled: ${closures.reason}`);
  try {
    return runClosures(compiled, closures.evaluate, input, options);
  } catch (err) {
    throw toExpressionError(err, compiled.offset, compiled);
  }
}

/**
 * The RegExp-like engine of compiled evaluations: linear time, charged to the meter of the
 * evaluation running now. A compiled evaluation is synchronous, so "now" is well defined, and no
 * engine needs to be built per evaluation.
 */
let currentMeter: Meter | undefined;
const compiledRegexEngine = function MeteredRegExp(re: RegExp) {
  return new LinearRegExp(linearPatternOrRefuse(re), currentMeter);
} as unknown as Host["RegexEngine"];

function runClosures(compiled: Compiled, evaluate: Evaluator, input: unknown, options: EvaluateOptions): unknown {
  const meter = newMeter(compiled, options.budget);
  const bindings = options.root !== undefined ? { ...options.bindings, __payload: options.root } : (options.bindings ?? NO_OPTIONS);
  const outerMeter = currentMeter;
  currentMeter = meter;
  try {
    const host: Host = {
      meter,
      arrayCap: compiled.arrayCap,
      maxDepth: compiled.bounds.maxDepth,
      maxStringLength: compiled.bounds.maxStringLength,
      RegexEngine: compiledRegexEngine,
    };
    const result = runCompiled(evaluate, input, bindings, host);
    // Most mapped values are scalars: only a long string needs measuring, and nothing needs normalising.
    if (result === null || typeof result !== "object") {
      if (typeof result === "string" && result.length + 2 > compiled.bounds.maxResultSize) measure(result, compiled.bounds.maxResultSize, "max_result_size", 1);
      return result;
    }
    return normaliseMeasured(result, compiled.bounds.maxResultSize, compiled.bounds.maxDepth);
  } finally {
    currentMeter = outerMeter;
    if (options.budget) options.budget.used += meter.steps;
  }
}

/**
 * `measure` then `normalise` in one walk, for compiled results: the same sizes counted in the same
 * order (so the same value is refused with the same limit), and the plain copy built as it goes.
 * The copy's own size (what `serialisedSize` would count) is remembered for the mapping engine,
 * which accounts every mapped value against the run's output bound and need not walk it again.
 * Module state instead of closures: the walk is synchronous and allocates only the copy.
 */
function normaliseMeasured(value: unknown, cap: number, maxDepth: number): unknown {
  walkSize = 0;
  walkCap = cap;
  walkMaxDepth = maxDepth;
  const out = walkResult(value, 0);
  lastResult = out;
  lastResultSize = walkKept;
  return out;
}

let walkSize = 0;
let walkCap = 0;
let walkMaxDepth = 0;
/** Size of the value walkResult just returned, as serialisedSize counts the copy. */
let walkKept = 0;
/** The last compiled result and its size: the engine accounts a value right after evaluating it. */
let lastResult: unknown;
let lastResultSize = 0;

function walkAdd(n: number): void {
  walkSize += n;
  if (walkSize > walkCap) throw refuse("max_result_size", walkCap, `Value would serialise to more than ${walkCap} characters`);
}

function walkResult(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case "string":
      walkAdd((walkKept = v.length + 2));
      return v;
    case "number":
      walkAdd((walkKept = String(v).length));
      return v;
    case "boolean":
      walkAdd((walkKept = 5));
      return v;
    case "object": {
      if (v === null) {
        walkAdd((walkKept = 4));
        return v;
      }
      if (depth >= walkMaxDepth) throw refuse("max_depth", walkMaxDepth, `Value nested more than ${walkMaxDepth} levels deep`);
      if (Array.isArray(v)) {
        walkAdd(2 + v.length);
        let kept = 2 + v.length;
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          out[i] = walkResult(v[i], depth + 1);
          kept += walkKept;
        }
        walkKept = kept;
        return out;
      }
      if (isFunctionValue(v)) {
        walkAdd(2);
        const out = normalise(v);
        walkKept = out === undefined ? 0 : serialisedSize(out, Number.MAX_SAFE_INTEGER);
        return out;
      }
      walkAdd(2);
      let kept = 2;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v)) {
        walkAdd(key.length + 4);
        const n = walkResult((v as Record<string, unknown>)[key], depth + 1);
        if (n === undefined) continue;
        kept += key.length + 4 + walkKept;
        // A result key named "__proto__" stays data and never becomes the prototype.
        if (key === "__proto__") Object.defineProperty(out, key, { value: n, writable: true, enumerable: true, configurable: true });
        else out[key] = n;
      }
      walkKept = kept;
      return out;
    }
    default:
      walkKept = 0;
      return v;
  }
}

async function interpret(compiled: Compiled, input: unknown, options: EvaluateOptions): Promise<unknown> {
  const meter = newMeter(compiled, options.budget);
  const bindings: Record<string, unknown> = { ...options.bindings, [METER_BINDING]: { [METER_HANDLE]: meter } };
  if (options.root !== undefined) bindings.__payload = options.root;
  try {
    const result = await compiled.expression.evaluate(input, bindings);
    measure(result, compiled.bounds.maxResultSize, "max_result_size", compiled.bounds.maxDepth);
    return normalise(result);
  } catch (err) {
    throw toExpressionError(err, compiled.offset, compiled);
  } finally {
    if (options.budget) options.budget.used += meter.steps;
  }
}

interface JsonataFailure {
  code?: unknown;
  message?: string;
  position?: number;
  token?: string;
  value?: unknown;
  error?: unknown;
}

/** The bound behind a failure, looking through $eval's D3120/D3121 wrapping. */
function limitBehind(err: unknown, c?: CompiledState): Refusal | undefined {
  for (let e = err as JsonataFailure | undefined, i = 0; e && typeof e === "object" && i < 20; e = e.error as JsonataFailure | undefined, i++) {
    if (e instanceof Refusal) return e;
    if (e instanceof RangeError) {
      const message = e.message ?? "";
      if (/call stack/i.test(message)) return refuse("max_depth", c?.bounds.maxDepth ?? DEFAULT_BOUNDS.maxDepth, "Evaluation nested too deeply");
      if (/string length/i.test(message)) return refuse("max_string_length", c?.bounds.maxStringLength ?? DEFAULT_BOUNDS.maxStringLength, "A string grew too long");
      if (/array length/i.test(message)) return refuse("max_array_length", c?.arrayCap ?? DEFAULT_BOUNDS.maxArrayLength, "An array grew too long");
      return undefined;
    }
    if (e.code === "D1011") return refuse("max_depth", c?.bounds.maxDepth ?? Number(e.value), "Evaluation nested too deeply (infinite recursion?)");
    // JSONata's own cap on ranges keeps its code; it is a bound all the same.
    if (e.code === "D2014") return Object.assign(new Refusal("D2014", e.message ?? "Range too large", "max_array_length", c?.arrayCap ?? DEFAULT_BOUNDS.maxArrayLength), { position: e.position });
    if (e.code === "D2015" && c) return refuse(c.arrayLimit, c.arrayCap, `A sequence${typeof e.value === "number" && e.value !== c.arrayCap ? ` of ${e.value} items` : ""} is too long`);
  }
  return undefined;
}

function toExpressionError(err: unknown, offset: number, c?: CompiledState): ExpressionError {
  if (err instanceof ExpressionError) return err;
  const e = err as JsonataFailure;
  const shift = (p?: number) => (typeof p === "number" ? Math.max(0, p - offset) : undefined);
  const limit = limitBehind(err, c);
  if (limit) return new ExpressionError(limit.code, limit.text, shift(limit.position ?? e?.position), limit.token ?? e?.token, limit.limit, limit.value);
  if (e && typeof e.code === "string") return new ExpressionError(e.code, e.message ?? e.code, shift(e.position), e.token);
  // Other host errors are bounded failures too: the evaluation stops, the runtime stays up.
  return new ExpressionError("D1011", err instanceof Error ? err.message : String(err));
}

/** JSONata sequences are arrays with extra flags; give callers plain JSON values. */
function normalise(value: unknown): unknown {
  if (value === undefined || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(normalise);
  if (typeof (value as { _jsonata_lambda?: boolean })._jsonata_lambda === "boolean") return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const n = normalise(v);
    // defineProperty: a result key named "__proto__" stays data and never becomes the prototype.
    if (n !== undefined) Object.defineProperty(out, k, { value: n, writable: true, enumerable: true, configurable: true });
  }
  return out;
}
