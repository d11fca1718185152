// Differential fuzzing of the closure compiler (src/mapping/compiled/) against JSONata's interpreter:
// random expressions over the grammar the compiler supports, random JSON inputs over the same small
// vocabulary (so paths usually find something), and the check that both paths give the same value or
// fail with the same error code. Shared by test/mapping-compiler-fuzz.test.ts (a fixed seed, in CI)
// and scripts/fuzz-mapping.mjs (long runs from the command line, bundled for Node), so this module
// imports nothing of vitest or workerd.
import fc from "fast-check";
import { compiledStatus, evaluateCompiledOnly, evaluateExpression, type EvaluateOptions } from "../../src/mapping/expression";

// ---- comparing outcomes ----------------------------------------------------------------------------

/** What one evaluation gave: a value, or an error with JSONata's (or our) code and, for a bound, its limit. */
export type Outcome = { ok: true; value: unknown } | { ok: false; code: string; limit?: string; message: string };

export async function outcomeOf(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    const e = err as { name?: string; code?: unknown; limit?: string; message?: string };
    // Duck-typed rather than instanceof: the Node script bundles its own copy of ExpressionError.
    if (e && e.name === "ExpressionError" && typeof e.code === "string") return { ok: false, code: e.code, limit: e.limit, message: String(e.message) };
    return { ok: false, code: "(not an ExpressionError)", message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
}

/**
 * Where two results differ, or null when they are the same: the same JSON (numbers by Object.is, so
 * -0 and NaN count; object keys in the same order, since the order shows in every serialised result),
 * functions counted equal to functions.
 */
export function sameValue(a: unknown, b: unknown, at = "$"): string | null {
  if (Object.is(a, b)) return null;
  const show = (v: unknown) => (typeof v === "number" && Object.is(v, -0) ? "-0" : v === undefined ? "undefined" : typeof v === "function" ? "a function" : String(JSON.stringify(v)).slice(0, 120));
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") {
    if (typeof a === "function" && typeof b === "function") return null;
    return `${at}: ${show(a)} vs ${show(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${at}: ${show(a)} vs ${show(b)}`;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    if (a.length !== other.length) return `${at}: ${a.length} items vs ${other.length}: ${show(a)} vs ${show(b)}`;
    for (let i = 0; i < a.length; i++) {
      const d = sameValue(a[i], other[i], `${at}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.join("\u0000") !== kb.join("\u0000")) {
    const sorted = (k: string[]) => [...k].sort().join("\u0000");
    return `${at}: keys ${JSON.stringify(ka)} vs ${JSON.stringify(kb)}${sorted(ka) === sorted(kb) ? " (same keys, another order)" : ""}`;
  }
  for (const k of ka) {
    const d = sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
    if (d) return d;
  }
  return null;
}

export function describeOutcome(o: Outcome): string {
  if (!o.ok) return `error ${o.code}${o.limit ? ` (${o.limit})` : ""}: ${o.message.slice(0, 160)}`;
  if (o.value === undefined) return "undefined";
  if (typeof o.value === "number" && Object.is(o.value, -0)) return "-0";
  return String(JSON.stringify(o.value)).slice(0, 200);
}

/** Null when `compiled` matches `reference` (same value, or same error code and limit), else how they differ. */
export function sameOutcome(compiled: Outcome, reference: Outcome): string | null {
  if (compiled.ok && reference.ok) {
    const d = sameValue(compiled.value, reference.value);
    return d ? `compiled ${describeOutcome(compiled)}, interpreted ${describeOutcome(reference)} (first difference at ${d})` : null;
  }
  if (!compiled.ok && !reference.ok && compiled.code === reference.code && compiled.limit === reference.limit) return null;
  // Both failed, neither at a bound: which of two failing sub-expressions fails first may differ (the
  // interpreter evaluates some siblings concurrently). Users never see the compiled code: a failed
  // compiled evaluation runs again in the interpreter (docs/mapping-compiler.md). Bounds must agree.
  if (!compiled.ok && !reference.ok && compiled.limit === undefined && reference.limit === undefined) return null;
  return `compiled ${describeOutcome(compiled)}, interpreted ${describeOutcome(reference)}`;
}

// ---- random JSON inputs ----------------------------------------------------------------------------

/** Names of both the inputs and the expressions' paths, so that most path steps match something. */
export const NAMES = ["a", "b", "name", "value", "items", "id", "tags", "type", "price"] as const;
const ALL_NAMES = [...NAMES, "first name"];

/** A path step naming `name`: backquoted when it is not a plain identifier. */
const step = (name: string) => (/^[A-Za-z_]\w*$/.test(name) ? name : `\`${name}\``);

const STRING_CHARS = ["a", "b", "c", "A", "B", " ", ",", "-", "1", "2", "é", "x"];
const shortString = fc.string({ unit: fc.constantFrom(...STRING_CHARS), maxLength: 6 });

const number = fc.oneof(
  fc.integer({ min: -20, max: 100 }),
  fc.integer({ min: -10_000, max: 10_000 }).map((n) => n / 100),
  fc.constantFrom(0, -0.5, 0.1, 0.2, 1e21, -1e-7, 2 ** 53),
);

const scalar = fc.oneof(
  { weight: 3, arbitrary: shortString },
  { weight: 2, arbitrary: fc.constantFrom(...ALL_NAMES) },
  { weight: 4, arbitrary: number },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
);

/** JSON over the vocabulary: objects keyed by NAMES, arrays, strings, numbers (negative, decimal), booleans, null. */
export const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; object: unknown; array: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("object"), tie("array")),
  object: fc.dictionary(fc.constantFrom(...ALL_NAMES), tie("value"), { maxKeys: 5 }),
  array: fc.array(tie("value"), { maxLength: 4 }),
})).value;

/** Inputs are mostly objects: that is what mappings receive, and what paths can step into. */
export const jsonInput: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(fc.constantFrom(...ALL_NAMES), jsonValue, { minKeys: 1, maxKeys: 6 }) },
  { weight: 1, arbitrary: fc.array(jsonValue, { maxLength: 4 }) },
  { weight: 1, arbitrary: jsonValue },
);

// ---- random expressions ----------------------------------------------------------------------------

const VARIABLES = ["$v", "$w"];
const name = fc.constantFrom(...ALL_NAMES).map(step);
const stringLiteral = fc.oneof(shortString, fc.constantFrom(...NAMES)).map((s) => JSON.stringify(s));
const numberLiteral = fc.oneof(fc.integer({ min: 0, max: 20 }).map(String), fc.constantFrom("1.5", "0.1", "100", "2", "3"));
const literal = fc.oneof(
  { weight: 3, arbitrary: stringLiteral },
  { weight: 3, arbitrary: numberLiteral },
  { weight: 1, arbitrary: fc.constantFrom("true", "false", "null") },
);

const comparison = fc.constantFrom("=", "!=", "<", "<=", ">", ">=");
const binaryOperator = fc.constantFrom("&", "+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "and", "or", "in");
const regex = fc.constantFrom("/a+/", "/[0-9]+/", "/b/i", "/^a/", "/c$/", "/(a|b)c/");
const separator = fc.constantFrom('","', '" "', '""', '"a"', '"-"');

/** A path: a first step (a name, `$`, `$$` or a variable) then names, `*`, each step maybe with predicates. */
function pathOf(expr: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const predicate = fc.oneof(
    fc.constantFrom("[0]", "[1]", "[-1]", "[2]"),
    fc.tuple(name, comparison, literal).map(([n, op, l]) => `[${n} ${op} ${l}]`),
    fc.tuple(name).map(([n]) => `[${n}]`),
    expr.map((e) => `[${e}]`),
  );
  const stepWithPredicates = fc.tuple(fc.oneof({ weight: 6, arbitrary: name }, { weight: 1, arbitrary: fc.constant("*") }), fc.array(predicate, { maxLength: 1 }));
  const first = fc.oneof(
    { weight: 6, arbitrary: stepWithPredicates.map(([s, p]) => s + p.join("")) },
    { weight: 1, arbitrary: fc.constantFrom("$", "$$", ...VARIABLES) },
  );
  return fc
    .tuple(first, fc.array(stepWithPredicates, { maxLength: 3 }))
    .map(([head, rest]) => [head, ...rest.map(([s, p]) => s + p.join(""))].join("."));
}

/** Calls of common built-ins with arguments of plausible types (wrong types too, now and then: both paths must refuse alike). */
function callOf(expr: fc.Arbitrary<string>, path: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const any = fc.oneof(path, expr);
  const small = fc.integer({ min: -3, max: 6 }).map(String);
  const one = (fn: string) => any.map((x) => `${fn}(${x})`);
  return fc.oneof(
    ...["$string", "$number", "$boolean", "$exists", "$lowercase", "$uppercase", "$trim", "$count", "$sum", "$max", "$min", "$keys", "$distinct", "$reverse", "$not", "$type", "$abs", "$floor"].map(one),
    fc.tuple(any, small).map(([x, n]) => `$round(${x}, ${n})`),
    fc.tuple(any, small, fc.option(small, { nil: undefined })).map(([x, a, b]) => `$substring(${x}, ${a}${b === undefined ? "" : `, ${b}`})`),
    fc.tuple(fc.constantFrom("$substringBefore", "$substringAfter"), any, stringLiteral).map(([f, x, s]) => `${f}(${x}, ${s})`),
    fc.tuple(any, fc.oneof(stringLiteral, regex)).map(([x, p]) => `$contains(${x}, ${p})`),
    fc.tuple(any, separator).map(([x, s]) => `$split(${x}, ${s})`),
    fc.tuple(any, fc.option(separator, { nil: undefined })).map(([x, s]) => `$join(${x}${s === undefined ? "" : `, ${s}`})`),
    fc.tuple(any, fc.oneof(stringLiteral, regex), stringLiteral).map(([x, p, r]) => `$replace(${x}, ${p}, ${r})`),
    fc.tuple(any, stringLiteral).map(([x, k]) => `$lookup(${x}, ${k})`),
    any.map((x) => `$merge(${x})`),
    fc.tuple(any, any).map(([x, y]) => `$merge([${x}, ${y}])`),
    fc.tuple(any, any).map(([x, y]) => `$append(${x}, ${y})`),
  );
}

/** A lambda over `params`, its body an expression that may use them. */
const lambda = (params: string[], body: fc.Arbitrary<string>) => body.map((b) => `function(${params.join(", ")}) { ${b} }`);

function higherOrderOf(expr: fc.Arbitrary<string>, path: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const seq = fc.oneof(path, expr);
  return fc.oneof(
    fc.tuple(seq, lambda(["$v"], expr)).map(([s, f]) => `$map(${s}, ${f})`),
    fc.tuple(seq, lambda(["$v", "$w"], expr)).map(([s, f]) => `$map(${s}, ${f})`),
    fc.tuple(seq, lambda(["$v"], expr)).map(([s, f]) => `$filter(${s}, ${f})`),
    fc.tuple(seq, lambda(["$w", "$v"], expr), fc.option(expr, { nil: undefined })).map(([s, f, init]) => `$reduce(${s}, ${f}${init === undefined ? "" : `, ${init}`})`),
    seq.map((s) => `$sort(${s})`),
    fc.tuple(seq, fc.constantFrom("$v > $w", "$v < $w", "$v.value > $w.value", "$string($v) > $string($w)")).map(([s, cmp]) => `$sort(${s}, function($v, $w) { ${cmp} })`),
  );
}

/** Expressions of nesting depth at most `depth` (a leaf at 0). */
export const expression: (depth?: number) => fc.Arbitrary<string> = fc.memo((depth: number): fc.Arbitrary<string> => {
  const leafPath = pathOf(fc.constantFrom("true", "0", "value > 1", "type = \"a\""));
  const leaf = fc.oneof({ weight: 4, arbitrary: leafPath }, { weight: 3, arbitrary: literal }, { weight: 1, arbitrary: fc.constantFrom("$", "$$", ...VARIABLES) });
  if (depth <= 0) return leaf;
  const sub = expression(depth - 1);
  const path = pathOf(sub);
  const small = fc.integer({ min: -2, max: 6 });
  return fc.oneof(
    { weight: 4, arbitrary: leaf },
    { weight: 3, arbitrary: path },
    { weight: 4, arbitrary: fc.tuple(sub, binaryOperator, sub).map(([l, op, r]) => `(${l} ${op} ${r})`) },
    { weight: 1, arbitrary: sub.map((e) => `-(${e})`) },
    { weight: 2, arbitrary: fc.tuple(sub, sub, fc.option(sub, { nil: undefined })).map(([c, t, e]) => (e === undefined ? `(${c} ? ${t})` : `(${c} ? ${t} : ${e})`)) },
    { weight: 1, arbitrary: fc.tuple(sub, fc.constantFrom("??", "?:"), sub).map(([l, op, r]) => `(${l} ${op} ${r})`) },
    { weight: 2, arbitrary: fc.array(fc.tuple(stringLiteral, sub), { maxLength: 3 }).map((kv) => `{${kv.map(([k, v]) => `${k}: ${v}`).join(", ")}}`) },
    { weight: 1, arbitrary: fc.tuple(path, name, sub).map(([p, k, v]) => `${p}{${k}: ${v}}`) },
    { weight: 2, arbitrary: fc.array(sub, { maxLength: 3 }).map((items) => `[${items.join(", ")}]`) },
    { weight: 1, arbitrary: fc.tuple(small, small).map(([a, b]) => `[${a}..${b}]`) },
    { weight: 1, arbitrary: fc.tuple(path, sub).map(([p, e]) => `${p}.(${e})`) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...VARIABLES), sub, sub).map(([v, x, body]) => `(${v} := ${x}; ${body})`) },
    { weight: 3, arbitrary: callOf(sub, path) },
    { weight: 2, arbitrary: higherOrderOf(sub, path) },
  );
});

export interface FuzzCase {
  expr: string;
  input: unknown;
  /** When set, evaluated as the engine does in array contexts: `$$` is this, `$` the input. */
  root?: unknown;
  bindings: Record<string, unknown>;
}

export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.record({
  expr: expression(3),
  input: jsonInput,
  root: fc.option(jsonInput, { nil: undefined, freq: 4 }),
  bindings: fc.option(jsonValue, { nil: undefined, freq: 2 }).map((v): Record<string, unknown> => (v === undefined ? {} : { v })),
});

// ---- the property ------------------------------------------------------------------------------------

export interface FuzzStats {
  cases: number;
  compiled: number;
  /** Generated expressions the compiler declined, by reason. */
  notCompiled: Record<string, number>;
  /** Examples of those, a few per reason. */
  notCompiledExamples: Record<string, string[]>;
  /** Generated expressions JSONata's parser refused (a generator bug, expected to stay 0), and a few of them. */
  unparsable: number;
  unparsableExamples: string[];
  /** Compiled cases where both paths returned a value, and where both failed (alike). */
  bothValues: number;
  bothErrors: number;
  /** Cases where the interpreter changed its own input (see checkCase), not compared. */
  interpreterMutated: number;
}

export const newStats = (): FuzzStats => ({ cases: 0, compiled: 0, notCompiled: {}, notCompiledExamples: {}, unparsable: 0, unparsableExamples: [], bothValues: 0, bothErrors: 0, interpreterMutated: 0 });

/** Small bounds keep an unlucky case quick; both paths run under the same ones. */
export const FUZZ_BOUNDS = { maxSteps: 200_000, maxArrayLength: 10_000, maxStringLength: 100_000, maxResultSize: 200_000 };

/**
 * Checks one case: the interpreter and the compiled path give the same value, or errors with the same
 * code. Returns null when they agree (or the case did not compile, which is counted), else the difference.
 */
export async function checkCase(c: FuzzCase, stats: FuzzStats): Promise<string | null> {
  stats.cases++;
  const rootBinding = c.root !== undefined;
  let status: ReturnType<typeof compiledStatus>;
  try {
    status = compiledStatus(c.expr, { rootBinding });
  } catch (err) {
    stats.unparsable++;
    if (stats.unparsableExamples.length < 5) stats.unparsableExamples.push(`${c.expr} -> ${(err as Error).message}`);
    return null;
  }
  if (!status.compiled) {
    stats.notCompiled[status.reason] = (stats.notCompiled[status.reason] ?? 0) + 1;
    const examples = (stats.notCompiledExamples[status.reason] ??= []);
    if (examples.length < 3) examples.push(c.expr);
    return null;
  }
  stats.compiled++;
  const options: EvaluateOptions = { bindings: c.bindings, bounds: FUZZ_BOUNDS, ...(rootBinding && { root: c.root }) };
  // Each path gets its own copy, compared afterwards: JSONata itself changes its input at times (an
  // object constructor over an empty array pushes an undefined into it), and the compiled path must
  // do exactly what the interpreter does, that included.
  const referenceInput = structuredClone(c.input);
  const referenceOptions = structuredClone(options);
  const reference = await outcomeOf(() => evaluateExpression(c.expr, referenceInput, { ...referenceOptions, compile: false }));
  // JSONata's object constructor pushes an undefined into an empty input array, and its interpreter
  // evaluates a constructor's values concurrently, so a sibling may see the array before or after
  // that push; compiled code evaluates them in order. Such cases are a quirk of the interpreter, not
  // a semantics to copy (docs/mapping-compiler.md): counted, not compared.
  if (sameValue(referenceInput, c.input, "input") !== null || sameValue(referenceOptions.root, options.root, "root") !== null) {
    stats.interpreterMutated++;
    return null;
  }
  const input = structuredClone(c.input);
  const compiledOptions = structuredClone(options);
  const compiled = await outcomeOf(() => evaluateCompiledOnly(c.expr, input, compiledOptions));
  if (reference.ok && compiled.ok) stats.bothValues++;
  if (!reference.ok && !compiled.ok) stats.bothErrors++;
  const difference = sameOutcome(compiled, reference);
  if (difference) return difference;
  // Only after a success: a failed evaluation fails its mapping, and whatever it left in the payload is dropped.
  if (!compiled.ok) return null;
  const mutated = sameValue(input, referenceInput, "input") ?? sameValue(compiledOptions.root, referenceOptions.root, "root") ?? sameValue(compiledOptions.bindings, referenceOptions.bindings, "bindings");
  return mutated ? `the compiled run left its input otherwise than the interpreter (compiled vs interpreted): ${mutated}` : null;
}

/** The property: every generated case that compiles evaluates alike on both paths. */
export function compiledMatchesInterpreter(stats: FuzzStats) {
  return fc.asyncProperty(fuzzCase, async (c) => {
    const difference = await checkCase(c, stats);
    if (difference) throw new Error(difference);
  });
}

/** Runs the property; `details.failed` with fast-check's report (the shrunk counterexample) on a difference. */
export async function runFuzz(options: { numRuns: number; seed: number; path?: string }): Promise<{ stats: FuzzStats; details: fc.RunDetails<[FuzzCase]>; report: string | undefined }> {
  const stats = newStats();
  const details = await fc.check(compiledMatchesInterpreter(stats), { numRuns: options.numRuns, seed: options.seed, ...(options.path && { path: options.path }) });
  // fast-check's report names the shrunk counterexample; the property's own message says how the paths differed.
  const report = details.failed ? `${fc.defaultReportMessage(details)}\nDifference: ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}` : undefined;
  return { stats, details, report };
}

/** One line of counts, and the reasons for declining, most frequent first. */
export function describeStats(stats: FuzzStats): string {
  const declined = stats.cases - stats.compiled - stats.unparsable;
  const reasons = Object.entries(stats.notCompiled)
    .sort((x, y) => y[1] - x[1])
    .map(([reason, n]) => `    ${n} x ${reason} (e.g. ${stats.notCompiledExamples[reason]!.map((e) => JSON.stringify(e.slice(0, 100))).join(", ")})`);
  return [
    `fuzz: ${stats.cases} cases, ${stats.compiled} compiled (${((100 * stats.compiled) / Math.max(1, stats.cases - stats.unparsable)).toFixed(1)} %: ${stats.bothValues} values, ${stats.bothErrors} errors on both paths, ${stats.interpreterMutated} not compared: the interpreter changed its input), ${declined} not compiled, ${stats.unparsable} unparsable`,
    ...reasons,
    ...stats.unparsableExamples.map((s) => `    unparsable: ${s}`),
  ].join("\n");
}
