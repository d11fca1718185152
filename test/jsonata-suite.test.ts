// The official JSONata conformance suite (../shared/compat/jsonata-test-suite, MIT) run through our
// evaluation wrapper, with its cache and bounds: once through JSONata's interpreter, once through the
// closure compiler (src/mapping/compiled/), which must give the suite's answer and the interpreter's.
import { describe, expect, it } from "vitest";
import {
  compiledStatus,
  DEFAULT_BOUNDS,
  evaluateCompiledOnly,
  evaluateExpression,
  ExpressionError,
  type EvaluateOptions,
  type EvaluationBounds,
} from "../src/mapping/expression";
import { outcomeOf, sameOutcome, sameValue, type Outcome } from "./fuzz/jsonata-arbitraries";

interface SuiteCase {
  expr?: string;
  "expr-file"?: string;
  data?: unknown;
  dataset?: string | null;
  bindings?: Record<string, unknown>;
  result?: unknown;
  undefinedResult?: boolean;
  code?: string;
  error?: { code: string };
  timelimit?: number;
  depth?: number;
}

// Raw text, parsed here: a few case files hold escapes that Vite's strict JSON loader refuses.
const groupFiles = import.meta.glob<string>("../../shared/compat/jsonata-test-suite/groups/**/*.json", {
  eager: true,
  query: "?raw",
  import: "default",
});
const datasetFiles = import.meta.glob<string>("../../shared/compat/jsonata-test-suite/datasets/*.json", {
  eager: true,
  query: "?raw",
  import: "default",
});
const exprFiles = import.meta.glob<string>("../../shared/compat/jsonata-test-suite/groups/**/*.jsonata", {
  eager: true,
  query: "?raw",
  import: "default",
});
const datasets = Object.fromEntries(
  Object.entries(datasetFiles).map(([path, text]) => [path.replace(/^.*\/(.*)\.json$/, "$1"), JSON.parse(text)]),
);

/** Groups not run, with the reason; every other case must pass. */
export const SKIPPED_GROUPS: Record<string, string> = {};

/**
 * Cases that exceed a deliberate default limit (docs/mapping-limits.md), with the reason. Each must
 * be refused under DEFAULT_BOUNDS with that limit, and pass under the raised bounds given here.
 */
export const LIMITED_CASES: Record<string, { limit: string; reason: string; bounds: Partial<EvaluationBounds> }> = {
  "range-operator/case021": { limit: "max_array_length", reason: "counts a range of 1e7 numbers", bounds: { maxArrayLength: 10_000_000, maxSteps: 5_000_000 } },
  "range-operator/case024": { limit: "max_array_length", reason: "counts a range of 1e7 numbers", bounds: { maxArrayLength: 10_000_000, maxSteps: 5_000_000 } },
  "flattening/large[0]": { limit: "max_array_length", reason: "flattens 2e5 strings", bounds: { maxArrayLength: 200_000 } },
  "flattening/large[1]": { limit: "max_array_length", reason: "flattens 2e5 strings", bounds: { maxArrayLength: 200_000 } },
};

/** The suite's own runner maps its time and depth guards to U1001; ours are JSONata's D1011/D1012. */
const BOUND_CODES = new Set(["U1001", "D1011", "D1012"]);

const cases = Object.entries(groupFiles).flatMap(([path, text]) => {
  const [, group, file] = path.match(/groups\/([^/]+)\/(.*)\.json$/)!;
  const content = JSON.parse(text) as SuiteCase | SuiteCase[];
  return (Array.isArray(content) ? content : [content]).map((c, i) => {
    const dir = path.slice(0, path.lastIndexOf("/"));
    const expr = c.expr ?? (c["expr-file"] ? exprFiles[`${dir}/${c["expr-file"]}`] : undefined);
    return { group: group!, name: Array.isArray(content) ? `${file}[${i}]` : file!, c: { ...c, expr, code: c.code ?? c.error?.code } };
  });
});

/** Reports stay ASCII: some cases hold lone surrogates that break the test runner's transport. */
const ascii = (s: string) => s.replace(/[^\x20-\x7e]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);

type Evaluate = (text: string, input: unknown, options: EvaluateOptions) => Promise<unknown>;

/** The interpreter alone, whatever the compilation switch says: the reference the compiled path is held to. */
const interpreted: Evaluate = (text, input, options) => evaluateExpression(text, input, { ...options, compile: false });

const inputOf = (c: SuiteCase) => (c.data !== undefined ? c.data : c.dataset ? datasets[c.dataset] : undefined);

/** A case's bounds: a case's own depth limit replaces ours, as the suite's runner does. */
const boundsOf = (c: SuiteCase, raised: Partial<EvaluationBounds> = {}) => ({ ...DEFAULT_BOUNDS, ...(c.depth && { maxDepth: c.depth }), ...raised });

async function runCase(c: SuiteCase, raised: Partial<EvaluationBounds> = {}, evaluate: Evaluate = interpreted, input = inputOf(c)): Promise<string | null> {
  if (c.expr === undefined) return "no expr";
  let result: unknown;
  try {
    result = await evaluate(c.expr, input, { bindings: c.bindings ?? {}, bounds: boundsOf(c, raised) });
  } catch (err) {
    if (!(err instanceof ExpressionError)) return `threw non-ExpressionError ${String(err)}`;
    if (c.code && (err.code === c.code || (BOUND_CODES.has(c.code) && BOUND_CODES.has(err.code)))) return null;
    return `threw ${err.code}: ${err.message}`;
  }
  if (c.code) return `expected error ${c.code}, got ${JSON.stringify(result)}`;
  if (c.undefinedResult) return result === undefined ? null : `expected undefined, got ${JSON.stringify(result)}`;
  try {
    expect(result).toEqual(c.result);
    return null;
  } catch {
    return `expected ${JSON.stringify(c.result)}, got ${JSON.stringify(result)}`;
  }
}

describe("JSONata conformance suite", () => {
  it("passes every case outside the skipped groups", { timeout: 120_000 }, async () => {
    expect(cases.length).toBeGreaterThan(1000);
    const failures: string[] = [];
    let passed = 0;
    let skipped = 0;
    let limited = 0;
    for (const { group, name, c } of cases) {
      if (SKIPPED_GROUPS[group]) {
        skipped++;
        continue;
      }
      const known = LIMITED_CASES[`${group}/${name}`];
      if (known) {
        limited++;
        const refused = await interpreted(c.expr!, c.data ?? null, {}).then(
          () => "not refused",
          (err: unknown) => (err instanceof ExpressionError && err.limit === known.limit ? null : `refused otherwise: ${String(err)}`),
        );
        if (refused) failures.push(`${group}/${name}: under the default bounds expected ${known.limit}, ${refused}`);
      }
      const failure = await runCase(c, known?.bounds);
      if (failure) failures.push(ascii(`${group}/${name}: ${c.expr?.slice(0, 60)} -> ${failure.slice(0, 160)}`));
      else passed++;
    }
    console.log(`JSONata suite: ${passed} passed (${passed - limited} under the default bounds), ${failures.length} failed, ${skipped} skipped of ${cases.length} cases`);
    for (const [group, reason] of Object.entries(SKIPPED_GROUPS)) console.log(`  skipped group ${group}: ${reason}`);
    for (const [name, { limit, reason }] of Object.entries(LIMITED_CASES)) console.log(`  ${name} exceeds ${limit} (${reason}): passes with raised bounds`);
    expect(failures).toEqual([]);
  });
});

/** The conformance gate of the closure compiler: at least this share of the suite's cases must run compiled. */
const COMPILED_SHARE = 0.9;

describe("JSONata conformance suite, compiled to closures", () => {
  it("runs at least 90 % of the cases compiled, each giving the suite's answer and exactly the interpreter's", { timeout: 240_000 }, async () => {
    const failures: string[] = [];
    const byReason = new Map<string, number>();
    const byGroup = new Map<string, number>();
    let compiled = 0;
    let total = 0;
    for (const { group, name, c } of cases) {
      if (SKIPPED_GROUPS[group]) continue;
      total++;
      const id = `${group}/${name}`;
      let status: ReturnType<typeof compiledStatus>;
      if (c.expr === undefined) status = { compiled: false, reason: "no expression" };
      else {
        try {
          status = compiledStatus(c.expr);
        } catch (err) {
          if (!(err instanceof ExpressionError)) throw err;
          // The parser refuses it before either path could run: nothing was compiled.
          status = { compiled: false, reason: `syntax error (${err.code.slice(0, 2)}xx)` };
        }
      }
      if (!status.compiled) {
        byReason.set(status.reason, (byReason.get(status.reason) ?? 0) + 1);
        byGroup.set(group, (byGroup.get(group) ?? 0) + 1);
        continue;
      }
      compiled++;
      const expr = c.expr!;
      const known = LIMITED_CASES[id];
      if (known) {
        const refused = await evaluateCompiledOnly(expr, c.data ?? null).then(
          () => "not refused",
          (err: unknown) => (err instanceof ExpressionError && err.limit === known.limit ? null : `refused otherwise: ${String(err)}`),
        );
        if (refused) failures.push(`${id}: compiled, under the default bounds expected ${known.limit}, ${refused}`);
      }
      // Each run gets its own copy of the suite's data (JSONata itself changes its input at times: an
      // object constructor over an empty array pushes an undefined into it), and the compiled run must
      // leave its copy as the interpreter leaves its own.
      const options = { bindings: c.bindings ?? {}, bounds: boundsOf(c, known?.bounds) };
      const referenceInput = structuredClone(inputOf(c));
      const reference: Outcome = await outcomeOf(() => interpreted(expr, referenceInput, options));
      // The suite's own answer (its error codes, its bound codes as the interpreter's test accepts them).
      const failure = await runCase(c, known?.bounds, evaluateCompiledOnly, structuredClone(inputOf(c)));
      if (failure) failures.push(ascii(`${id}: compiled: ${expr.slice(0, 60)} -> ${failure.slice(0, 200)}`));
      // And exactly the interpreter's: the same value (key order, -0 included) or the same error code and limit.
      const input = structuredClone(inputOf(c));
      const result = await outcomeOf(() => evaluateCompiledOnly(expr, input, options));
      const difference = sameOutcome(result, reference);
      if (difference) failures.push(ascii(`${id}: compiled differs from the interpreter: ${expr.slice(0, 60)} -> ${difference.slice(0, 300)}`));
      else if (result.ok && sameValue(input, referenceInput)) failures.push(ascii(`${id}: the compiled run left its input otherwise than the interpreter: ${sameValue(input, referenceInput)}`));
    }
    const reasons = [...byReason].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${n} ${reason}`);
    const groups = [...byGroup].sort((a, b) => b[1] - a[1]).map(([group, n]) => `${group} ${n}`);
    const notCompiled = total - compiled;
    console.log(
      `JSONata suite compiled: ${compiled} of ${total} cases run compiled (${((100 * compiled) / total).toFixed(1)} %), ` +
        `${failures.length ? `${failures.length} failed` : "all equal"} (${notCompiled} not compiled: ${reasons.join("; ") || "none"}${groups.length ? ` | by group: ${groups.join(", ")}` : ""})`,
    );
    for (const f of failures.slice(0, 60)) console.log(`  ${f}`);
    if (failures.length > 60) console.log(`  ... and ${failures.length - 60} more`);
    expect.soft(failures).toEqual([]);
    expect(compiled, `cases run compiled, of ${total}`).toBeGreaterThanOrEqual(Math.ceil(total * COMPILED_SHARE));
  });
});
