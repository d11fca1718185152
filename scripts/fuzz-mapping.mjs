#!/usr/bin/env node
// Differential fuzzing of the JSONata closure compiler against JSONata's interpreter, for long runs
// (`npm run fuzz:mapping -- --runs 200000`): the property of test/mapping-compiler-fuzz.test.ts (there
// with a fixed seed and few runs, in CI), here in Node with any seed. It bundles
// test/fuzz/jsonata-arbitraries.ts (with src/mapping/expression.ts and fast-check) with esbuild, as
// bench/run.mjs bundles the mapping bench. Exits 1 with fast-check's shrunk counterexample when the two
// paths differ; rerun that case with the printed seed (and `--path` from the report) to reproduce it.
//
//   node scripts/fuzz-mapping.mjs [--runs N (20000)] [--seed S (random)] [--path P]
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "20000" },
    seed: { type: "string" },
    path: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("usage: node scripts/fuzz-mapping.mjs [--runs N] [--seed S] [--path P]");
  process.exit(0);
}
const numRuns = Number(values.runs);
// A random seed unless one is given: printed first, so any run can be repeated exactly.
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isInteger(numRuns) || numRuns < 1 || !Number.isInteger(seed)) {
  console.error("--runs must be a positive integer and --seed an integer");
  process.exit(2);
}

const bundle = path.join(os.tmpdir(), `erp-edge-fuzz-mapping-${process.pid}.mjs`);
execFileSync(
  path.join(root, "node_modules/.bin/esbuild"),
  [path.join(root, "test/fuzz/jsonata-arbitraries.ts"), "--bundle", "--platform=node", "--format=esm", `--outfile=${bundle}`, "--log-level=warning"],
  { stdio: "inherit" },
);
let fuzz;
try {
  fuzz = await import(pathToFileURL(bundle).href);
} finally {
  rmSync(bundle, { force: true });
}

console.log(`fuzzing compiled against interpreted JSONata: ${numRuns} runs, seed ${seed}${values.path ? `, path ${values.path}` : ""}`);
const started = performance.now();
const { stats, details, report } = await fuzz.runFuzz({ numRuns, seed, ...(values.path && { path: values.path }) });
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(fuzz.describeStats(stats));
if (details.failed) {
  console.error(`\n${report}`);
  console.error(`\nreproduce: node scripts/fuzz-mapping.mjs --runs ${numRuns} --seed ${seed}${details.counterexamplePath ? ` --path ${details.counterexamplePath}` : ""}`);
  console.error(`FAILED after ${seconds} s`);
  process.exit(1);
}
if (stats.unparsable > 0) console.warn(`warning: ${stats.unparsable} generated expressions did not parse (a generator bug in test/fuzz/jsonata-arbitraries.ts)`);
console.log(`ok: compiled and interpreted agreed on every compiled case (${seconds} s)`);
