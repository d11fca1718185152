// Differential fuzzing, fixed seed: random expressions over the grammar the closure compiler supports
// and random JSON inputs (test/fuzz/jsonata-arbitraries.ts), each evaluated compiled and by JSONata's
// interpreter, which must agree exactly (value, or error code and limit). A longer run with any seed:
// `npm run fuzz:mapping -- --runs 200000 [--seed S]`.
import { describe, expect, it } from "vitest";
import { checkCase, describeStats, newStats, runFuzz, type FuzzCase } from "./fuzz/jsonata-arbitraries";

/** Fixed, so CI is repeatable; the seed and run count are sized to stay well under 20 s in workerd. */
const SEED = 1717;
const RUNS = 4000;

/** Shrunk counterexamples fuzzing found, kept so that each stays fixed once fixed (seeds change what a run explores). */
const FOUND: FuzzCase[] = [
  // Root binding (`$$` the payload, as in pre-processed entities): a lambda's empty-array results.
  { expr: "$map([1], function($v) { $keys([0]) })", input: {}, root: {}, bindings: {} },
  // Root binding: a singleton sequence from a nested $map over `$$`.
  { expr: '$map($$, function($v) { $map(1.5, function($v) { x{id: ""} }) })', input: {}, root: { a: 1 }, bindings: {} },
  // Two failing values in one object constructor: which error wins (seed 1717).
  { expr: '{"": [(a * "a")], "a": {"": $number("")}}', input: { a: "" }, root: undefined, bindings: {} },
];

describe("closure compiler against the interpreter, on random expressions and inputs", () => {
  it("agrees on the counterexamples fuzzing found before", async () => {
    const stats = newStats();
    const differences: string[] = [];
    for (const c of FOUND) {
      const difference = await checkCase(c, stats);
      if (difference) differences.push(`${c.expr}${c.root !== undefined ? " (root binding)" : ""}: ${difference}`);
    }
    expect(stats.compiled).toBe(FOUND.length);
    expect(differences).toEqual([]);
  });

  it(`agrees on every compiled case (seed ${SEED}, ${RUNS} runs) and compiles at least 95 % of them`, { timeout: 120_000 }, async () => {
    const { stats, details, report } = await runFuzz({ numRuns: RUNS, seed: SEED });
    console.log(describeStats(stats));
    // fast-check's report: the shrunk counterexample (expression, input, root, bindings) and how the paths differed.
    if (details.failed) throw new Error(report);
    expect(stats.unparsableExamples, "the generator made expressions JSONata does not parse").toEqual([]);
    const parsed = stats.cases - stats.unparsable;
    expect(stats.compiled, `compiled ${stats.compiled} of ${parsed} generated expressions`).toBeGreaterThanOrEqual(Math.ceil(parsed * 0.95));
  });
});
