// JSONata's built-in functions for compiled expressions: all synchronous. Built-ins JSONata itself
// runs synchronously are reused (metered where ../expression.ts meters them); the ones JSONata
// awaits (regex matchers, higher-order functions, $sort) are written here again, without promises,
// keeping JSONata's semantics and error codes and the metering of ../expression.ts's WRAPPERS;
// so are $string (scalars, for speed) and the clock ($now, $millis: per evaluation in JSONata).
//
// ../expression.ts imports the compiler, which imports this module: its bindings are only read
// inside functions, once both modules have finished loading.
import * as host from "../expression";
import type { Meter } from "../expression";
import { getFunctionArity } from "./runtime";
import type { BuiltIn, Focus } from "./types";

type Implementation = (this: Focus, ...args: any[]) => unknown;

/** What a regex literal (or a custom matcher) answers: JSONata's match object. */
interface MatchResult {
  match: string;
  start: number;
  end: number;
  groups: (string | undefined)[];
  next: unknown;
}

/** Built-ins implemented here rather than reused. */
const REWRITTEN: Record<string, Implementation> = {
  formatNumber,
  contains,
  match,
  replace,
  split,
  map,
  filter,
  single,
  reduce,
  each,
  sift,
  sort,
  string,
  now,
  millis,
};

let builtIns: ReadonlyMap<string, BuiltIn> | undefined;
/** ../expression.ts's metered `$string`, for structured values. */
let stringOfValue: Implementation;
/** JSONata's effective boolean value (functions are false, arrays by their items). */
let truthy: (value: unknown) => boolean | undefined;

/** Every built-in a compiled expression can call, by name without `$` (all but `$eval`). */
export function compiledBuiltIns(): ReadonlyMap<string, BuiltIn> {
  return (builtIns ??= buildBuiltIns());
}

function buildBuiltIns(): ReadonlyMap<string, BuiltIn> {
  truthy = host.jsonataBuiltIn("boolean").implementation as typeof truthy;
  const metered = new Map(host.meteredBuiltIns);
  stringOfValue = metered.get("string")!.implementation;
  const map = new Map<string, BuiltIn>();
  for (const name of JSONATA_NAMES) {
    const original = host.jsonataBuiltIn(name) as unknown as BuiltIn;
    const rewritten = REWRITTEN[name];
    if (rewritten) map.set(name, { _jsonata_function: true, implementation: sameShape(rewritten, original.implementation), signature: original.signature });
    else map.set(name, (metered.get(name) as unknown as BuiltIn | undefined) ?? original);
  }
  return map;
}

/** The names JSONata 2.2.2 binds (its static frame, plus $now and $millis per evaluation), but $eval. */
const JSONATA_NAMES = [
  "sum", "count", "max", "min", "average", "string", "substring", "substringBefore", "substringAfter",
  "lowercase", "uppercase", "length", "trim", "pad", "match", "contains", "replace", "split", "join",
  "formatNumber", "formatBase", "formatInteger", "parseInteger", "number", "floor", "ceil", "round",
  "abs", "sqrt", "power", "random", "boolean", "not", "map", "zip", "filter", "single", "reduce", "sift",
  "keys", "lookup", "append", "exists", "spread", "merge", "reverse", "each", "error", "assert", "type",
  "sort", "shuffle", "distinct", "base64encode", "base64decode", "encodeUrlComponent", "encodeUrl",
  "decodeUrlComponent", "decodeUrl", "toMillis", "fromMillis", "clone", "now", "millis",
];

/**
 * Partial application reads a native function's parameter names from its source text and
 * higher-order functions its arity from `length`: a replacement must look like JSONata's original.
 */
function sameShape(implementation: Implementation, original: Implementation): Implementation {
  const source = Function.prototype.toString.call(original);
  Object.defineProperty(implementation, "length", { value: original.length });
  Object.defineProperty(implementation, "toString", { value: () => source });
  return implementation;
}

// ---------------------------------------------------------------------------------------------
// Metering, as ../expression.ts's WRAPPERS and checkedResult do it.

function meterOf(focus: Focus): Meter {
  const m = focus.environment.base[host.METER] as Meter | undefined;
  if (!m) throw new Error("JSONata built-in called outside a metered evaluation");
  return m;
}

/** What a built-in hands back is held to the same bounds as every other value. */
function checked<T>(m: Meter, result: T): T {
  if (typeof result === "string") {
    const max = m.c.bounds.maxStringLength;
    if (result.length > max) throw host.refuse("max_string_length", max, `A string of ${result.length} characters`);
  } else if (Array.isArray(result) && result.length > m.c.arrayCap) {
    throw host.refuse(m.c.arrayLimit, m.c.arrayCap, `A sequence of ${result.length} items`);
  }
  return result;
}

const lengthOf = (v: unknown) => (Array.isArray(v) ? v.length : v === undefined ? 0 : 1);
const strLength = (v: unknown) => (typeof v === "string" ? v.length : 0);

// ---------------------------------------------------------------------------------------------
// Function arguments.

/** JSONata's hofFuncArgs: the index and the whole structure only if the function takes them. */
function callbackArgs(arity: number, value: unknown, key: unknown, whole: unknown): unknown[] {
  return arity >= 3 ? [value, key, whole] : arity >= 2 ? [value, key] : [value];
}

/** A function value as JSONata calls it, through its `apply`. */
interface Callable {
  apply(self: unknown, args: unknown[]): unknown;
}

/**
 * Calls a function argument as JSONata does. At a call site the compiler, like JSONata, wraps
 * function arguments in closures that apply() them; partial application hands them over as they
 * are, and then a lambda's own `apply` method runs it while a built-in, having none, fails with a
 * TypeError, as in JSONata.
 */
function callArg(focus: Focus, func: unknown, args: unknown[]): unknown {
  return (func as Callable).apply(focus, args);
}

/** JSONata's evaluateMatcher: a regex literal or a custom matcher, checked for a match's shape. */
function runMatcher(focus: Focus, matcher: unknown, str: unknown): MatchResult | undefined {
  return matchShaped(callArg(focus, matcher, [str]));
}

/** `matches.next`, called as JSONata calls it: its own `apply`, with no `this` and an undefined string. */
function nextMatch(matches: MatchResult): MatchResult | undefined {
  return matchShaped((matches.next as Callable).apply(undefined, [undefined]));
}

function matchShaped(result: any): MatchResult | undefined {
  // JSONata's check, `result.end === 'number'` included: any one of the fields is enough.
  if (result && !(typeof result.start === "number" || result.end === "number" || Array.isArray(result.groups) || isFunctionValue(result.next))) {
    throw { code: "T1010", stack: new Error().stack };
  }
  return result;
}

function isFunctionValue(v: any): boolean {
  return (v && (v._jsonata_function === true || v._jsonata_lambda === true)) || typeof v === "function";
}

// ---------------------------------------------------------------------------------------------
// Strings and regular expressions.

function contains(this: Focus, str: string | undefined, token: unknown): boolean | undefined {
  charge(this, host.chars(strLength(str) + strLength(token)));
  if (str === undefined || token === undefined) return undefined;
  if (typeof token === "string") return str.indexOf(token) !== -1;
  return runMatcher(this, token, str) !== undefined;
}

function charge(focus: Focus, units: number): Meter {
  const m = meterOf(focus);
  host.charge(m, units);
  return m;
}

/** The limit passed on by $split and $match: one more than the cap tells whether it was exceeded. */
function cappedLimit(m: Meter, limit: number | undefined): number {
  const cap = m.c.arrayCap;
  return limit === undefined ? cap + 1 : Math.min(limit, cap + 1);
}

function refuseLongList(m: Meter, result: unknown[], name: string, noun: string): void {
  const cap = m.c.arrayCap;
  if (result.length > cap) throw host.refuse(m.c.arrayLimit, cap, `$${name} would yield more than ${cap} ${noun}`);
}

function match(this: Focus, str: string | undefined, regex: unknown, limit?: number): unknown {
  const m = charge(this, host.chars(strLength(str)));
  if (str === undefined) return undefined;
  limit = cappedLimit(m, limit);
  if (limit < 0) throw { stack: new Error().stack, value: limit, code: "D3040", index: 3 };
  const result = this.createSequence();
  if (limit > 0) {
    let count = 0;
    for (let matches = runMatcher(this, regex, str); matches !== undefined && count < limit; count++) {
      result.push({ match: matches.match, index: matches.start, groups: matches.groups });
      matches = nextMatch(matches);
    }
  }
  refuseLongList(m, result, "match", "matches");
  return checked(m, result);
}

function split(this: Focus, str: string | undefined, separator: unknown, limit?: number): unknown {
  const m = charge(this, host.chars(strLength(str)));
  if (str === undefined) return undefined;
  limit = cappedLimit(m, limit);
  if (limit < 0) throw { code: "D3020", stack: new Error().stack, value: limit, index: 3 };
  let result: string[] = [];
  if (limit > 0) {
    if (typeof separator === "string") {
      result = str.split(separator, limit);
    } else {
      let count = 0;
      let matches = runMatcher(this, separator, str);
      if (matches === undefined) {
        result.push(str);
      } else {
        let start = 0;
        for (; matches !== undefined && count < limit; count++) {
          result.push(str.substring(start, matches.start));
          start = matches.end;
          matches = nextMatch(matches);
        }
        if (count < limit) result.push(str.substring(start));
      }
    }
  }
  refuseLongList(m, result, "split", "parts");
  return checked(m, result);
}

function replace(this: Focus, str: string | undefined, pattern: unknown, replacement: unknown, limit?: number): unknown {
  const m = charge(this, host.chars(strLength(str)));
  refuseLongReplacement(m, str, pattern, replacement, limit);
  if (str === undefined) return undefined;
  if (pattern === "") throw { code: "D3010", stack: new Error().stack, value: pattern, index: 2 };
  if ((limit as number) < 0) throw { code: "D3011", stack: new Error().stack, value: limit, index: 4 };
  if (limit !== undefined && !(limit > 0)) return checked(m, str);
  if (typeof pattern === "string") return checked(m, replaceText(str, pattern, replacement, limit));
  let matches = runMatcher(this, pattern, str);
  if (matches === undefined) return checked(m, str);
  let result = "";
  let position = 0;
  for (let count = 0; matches !== undefined && (limit === undefined || count < limit); count++) {
    result += str.substring(position, matches.start);
    const replacedWith = typeof replacement === "string" ? substitute(replacement, matches) : replaceWith(this, replacement, matches);
    if (typeof replacedWith !== "string") throw { code: "D3012", stack: new Error().stack, value: replacedWith };
    result += replacedWith;
    position = matches.start + matches.match.length;
    matches = nextMatch(matches);
  }
  return checked(m, result + str.substring(position));
}

/** A replacement function (or, through partial application, whatever JSONata would call). */
function replaceWith(focus: Focus, replacement: unknown, matches: MatchResult): unknown {
  return callArg(focus, replacement, [matches]);
}

/** The string a `$replace` of a plain substring would build, refused before it is built. */
function refuseLongReplacement(m: Meter, str: unknown, pattern: unknown, replacement: unknown, limit: number | undefined): void {
  if (typeof str !== "string" || typeof pattern !== "string" || pattern === "" || typeof replacement !== "string" || replacement.length <= pattern.length) return;
  let count = 0;
  for (let at = str.indexOf(pattern); at !== -1 && (limit === undefined || count < limit); at = str.indexOf(pattern, at + pattern.length)) count++;
  const length = str.length + count * (replacement.length - pattern.length);
  const max = m.c.bounds.maxStringLength;
  if (length > max) throw host.refuse("max_string_length", max, `$replace would build a string of ${length} characters`);
}

/** A substring pattern: the replacement is inserted as it is (no `$n`), as JSONata does. */
function replaceText(str: string, pattern: string, replacement: unknown, limit: number | undefined): string {
  let result = "";
  let position = 0;
  let count = 0;
  for (let index = str.indexOf(pattern); index !== -1 && (limit === undefined || count < limit); index = str.indexOf(pattern, position)) {
    result += str.substring(position, index);
    result += replacement;
    position = index + pattern.length;
    count++;
  }
  return result + str.substring(position);
}

/** JSONata's replacement text for a regex match: `$$` is `$`, `$0` the match, `$n` group n. */
function substitute(replacement: string, regexMatch: MatchResult): string {
  let result = "";
  let position = 0;
  let index = replacement.indexOf("$", position);
  const groups = regexMatch.groups;
  while (index !== -1 && position < replacement.length) {
    result += replacement.substring(position, index);
    position = index + 1;
    const dollarVal = replacement.charAt(position);
    if (dollarVal === "$") {
      result += "$";
      position++;
    } else if (dollarVal === "0") {
      result += regexMatch.match;
      position++;
    } else {
      const maxDigits = groups.length === 0 ? 1 : Math.floor(Math.log(groups.length) * Math.LOG10E) + 1;
      index = parseInt(replacement.substring(position, position + maxDigits), 10);
      if (maxDigits > 1 && index > groups.length) index = parseInt(replacement.substring(position, position + maxDigits - 1), 10);
      if (!isNaN(index)) {
        if (groups.length > 0) {
          const submatch = groups[index - 1];
          if (submatch !== undefined) result += submatch;
        }
        position += index.toString().length;
      } else {
        result += "$";
      }
    }
    index = replacement.indexOf("$", position);
  }
  return result + replacement.substring(position);
}

/**
 * `$string`: scalars without JSON.stringify and its replacer (about 25 times faster on numbers),
 * with the metered version's charge; structured values go to the metered version.
 */
let jsonataFormatNumber: Implementation | undefined;

/**
 * `$formatNumber`, metered as ../expression.ts's WRAPPERS do (`stringArgs(1)`, then the result
 * check). A picture of zero digits only (`'0000'`) over an integer is JSONata's result computed
 * directly: the digits of the absolute value left-padded with zeros, after a minus sign; anything
 * else is JSONata's own implementation (which analyses the picture on every call).
 */
function formatNumber(this: Focus, value: unknown, picture: unknown, options?: unknown): unknown {
  const m = meterOf(this);
  host.charge(m, host.chars(strLength(picture)));
  let result: unknown;
  if (options === undefined && typeof value === "number" && Number.isInteger(value) && Math.abs(value) < 1e21 && typeof picture === "string" && zerosOnly(picture)) {
    const digits = Math.abs(value).toFixed(0);
    result = (value < 0 ? "-" : "") + (digits === "0" ? "" : digits).padStart(picture.length, "0");
  } else {
    jsonataFormatNumber ??= host.jsonataBuiltIn("formatNumber").implementation as Implementation;
    result = jsonataFormatNumber.call(this, value, picture, options);
  }
  return checked(m, result);
}

function zerosOnly(picture: string): boolean {
  if (picture.length === 0) return false;
  for (let i = 0; i < picture.length; i++) if (picture.charCodeAt(i) !== 48) return false;
  return true;
}

function string(this: Focus, arg: unknown, prettify?: boolean): unknown {
  if (arg !== null && typeof arg === "object") return stringOfValue.call(this, arg, prettify);
  const m = charge(this, host.chars(strLength(arg)));
  switch (typeof arg) {
    case "undefined":
      return undefined;
    case "string":
      return checked(m, arg);
    case "number":
      if (!isFinite(arg)) throw { code: "D3001", value: arg, stack: new Error().stack };
      return Number.isInteger(arg) ? String(arg) : fractionText(arg);
    case "function":
      return "";
    default:
      return String(arg);
  }
}

/**
 * JSONata's `String(Number(x.toPrecision(15)))` without toPrecision when the shortest form of x
 * has at most 15 significant digits: a double's exact value is then nearer to that form than to
 * any other 15-digit decimal, so rounding it to 15 digits gives the same number back.
 */
function fractionText(x: number): string {
  const text = String(x);
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 101) break; // "e": the exponent
    if (c >= 49 ? c <= 57 : c === 48 && digits > 0) digits++;
  }
  return digits <= 15 ? text : String(Number(x.toPrecision(15)));
}

// ---------------------------------------------------------------------------------------------
// Higher-order functions: the iteration is charged here, each callback by the runtime's apply().

function map(this: Focus, arr: unknown[] | undefined, func: unknown): unknown {
  const m = charge(this, 1 + lengthOf(arr));
  if (arr === undefined) return undefined;
  const result = this.createSequence();
  const arity = getFunctionArity(func);
  for (let i = 0; i < arr.length; i++) {
    const res = callArg(this, func, callbackArgs(arity, arr[i], i, arr));
    if (res !== undefined) result.push(res);
  }
  return checked(m, result);
}

function filter(this: Focus, arr: unknown[] | undefined, func: unknown): unknown {
  const m = charge(this, 1 + lengthOf(arr));
  if (arr === undefined) return undefined;
  const result = this.createSequence();
  const arity = getFunctionArity(func);
  for (let i = 0; i < arr.length; i++) {
    const entry = arr[i];
    if (truthy(callArg(this, func, callbackArgs(arity, entry, i, arr)))) result.push(entry);
  }
  return checked(m, result);
}

function single(this: Focus, arr: unknown[] | undefined, func?: unknown): unknown {
  const m = charge(this, 1 + lengthOf(arr));
  if (arr === undefined) return undefined;
  const arity = func === undefined ? 0 : getFunctionArity(func);
  let found = false;
  let result: unknown;
  for (let i = 0; i < arr.length; i++) {
    const entry = arr[i];
    if (func !== undefined && !truthy(callArg(this, func, callbackArgs(arity, entry, i, arr)))) continue;
    if (found) throw { stack: new Error().stack, code: "D3138", index: i };
    result = entry;
    found = true;
  }
  if (!found) throw { stack: new Error().stack, code: "D3139" };
  return checked(m, result);
}

/** `$reduce` (JSONata's foldLeft). */
function reduce(this: Focus, sequence: unknown[] | undefined, func: unknown, init?: unknown): unknown {
  const m = charge(this, 1 + lengthOf(sequence));
  if (sequence === undefined) return undefined;
  const arity = getFunctionArity(func);
  if (arity < 2) throw { stack: new Error().stack, code: "D3050", index: 1 };
  let result = init;
  let index = 0;
  if (init === undefined && sequence.length > 0) {
    result = sequence[0];
    index = 1;
  }
  for (; index < sequence.length; index++) {
    const args = arity >= 4 ? [result, sequence[index], index, sequence] : arity >= 3 ? [result, sequence[index], index] : [result, sequence[index]];
    result = callArg(this, func, args);
  }
  return checked(m, result);
}

function each(this: Focus, obj: Record<string, unknown> | undefined, func: unknown): unknown {
  const keys = keysOf(obj);
  const m = charge(this, 1 + keys.length);
  const result = this.createSequence();
  if (keys.length === 0) return checked(m, result);
  const arity = getFunctionArity(func);
  for (const key of keys) {
    const val = callArg(this, func, callbackArgs(arity, obj![key], key, obj));
    if (val !== undefined) result.push(val);
  }
  return checked(m, result);
}

function sift(this: Focus, arg: Record<string, unknown> | undefined, func: unknown): unknown {
  const keys = keysOf(arg);
  const m = charge(this, 1 + keys.length);
  if (keys.length === 0) return undefined;
  const result: Record<string, unknown> = Object.create(null);
  const arity = getFunctionArity(func);
  let kept = 0;
  for (const item of keys) {
    const entry = arg![item];
    if (truthy(callArg(this, func, callbackArgs(arity, entry, item, arg)))) {
      result[item] = entry;
      kept++;
    }
  }
  return checked(m, kept === 0 ? undefined : result);
}

const EMPTY: readonly string[] = Object.freeze([]);
const keysOf = (v: unknown): readonly string[] => (v !== null && typeof v === "object" ? Object.keys(v) : EMPTY);

/**
 * `$sort`: JSONata's stable top-down merge sort, comparing in the same order (`comparator(a, b)`
 * true puts b first), in O(n log n) time through one scratch array.
 */
function sort(this: Focus, arr: unknown[] | undefined, comparator?: unknown): unknown {
  if (arr === undefined) return undefined;
  if (arr.length <= 1) return arr;
  const m = meterOf(this);
  host.charge(m, arr.length * Math.ceil(Math.log2(arr.length)));
  if (comparator === undefined) {
    if (!arr.every(host.isNumericValue) && !arr.every((v) => typeof v === "string")) throw { code: "D3070", index: 1, stack: new Error().stack };
    return checked(m, Array.from(arr).sort(ascending));
  }
  const result = Array.prototype.slice.call(arr) as unknown[];
  // Called as JSONata's sort calls it: a plain function (a closure, lambdas not being callable).
  if (typeof comparator !== "function") throw new TypeError("comparator is not a function");
  const after = comparator as (a: unknown, b: unknown) => unknown;
  mergeSort(result, new Array(result.length), 0, result.length, after);
  return checked(m, result);
}

function ascending(a: any, b: any): number {
  return a > b ? 1 : a < b ? -1 : 0;
}

function mergeSort(a: unknown[], scratch: unknown[], lo: number, hi: number, after: (a: unknown, b: unknown) => unknown): void {
  if (hi - lo <= 1) return;
  const mid = lo + Math.floor((hi - lo) / 2);
  mergeSort(a, scratch, lo, mid, after);
  mergeSort(a, scratch, mid, hi, after);
  let i = lo;
  let j = mid;
  let k = lo;
  while (i < mid && j < hi) scratch[k++] = after(a[i], a[j]) ? a[j++] : a[i++];
  while (i < mid) scratch[k++] = a[i++];
  while (j < hi) scratch[k++] = a[j++];
  for (k = lo; k < hi; k++) a[k] = scratch[k];
}

// ---------------------------------------------------------------------------------------------
// The clock: captured once per evaluation.

function now(this: Focus, picture?: string, timezone?: string): unknown {
  const timestamp = this.environment.base.timestamp.getTime();
  return compiledBuiltIns().get("fromMillis")!.implementation.call(this, timestamp, picture, timezone);
}

function millis(this: Focus): number {
  return this.environment.base.timestamp.getTime();
}
