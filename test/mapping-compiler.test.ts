// The closure compiler (src/mapping/compiled/) on real mappings and at its edges: every expression of
// the published epilot examples, of our blueprints and of the bench's fixtures compiles, and mapping
// with compilation on and off gives the same results; bounds stop runaway expressions compiled with
// the interpreter's codes; prototype keys stay data; the simulation says per expression whether it
// runs compiled; and the switch that turns compilation off changes no result.
import { afterEach, describe, expect, it } from "vitest";
import { MappingError, runMapping, type MappingResult } from "../src/mapping/engine";
import {
  compiledStatus,
  evaluateCompiledOnly,
  evaluateExpression,
  mappingCompilationEnabled,
  setMappingCompilation,
  type EvaluateOptions,
  type EvaluationBounds,
  type StepBudget,
} from "../src/mapping/expression";
import { parsePayload, type PayloadFormat } from "../src/mapping/payload";
import { expressionsOf, InboundConfiguration } from "../src/mapping/schema";
import { outcomeOf, sameOutcome, sameValue, type Outcome } from "./fuzz/jsonata-arbitraries";
import { api, tenantWithToken } from "./helpers";

const exampleFiles = import.meta.glob<string>("../../shared/compat/epilot-mapping-examples/*.json", { eager: true, query: "?raw", import: "default" });
const blueprintManifests = import.meta.glob<string>("../blueprints/*/blueprint.json", { eager: true, query: "?raw", import: "default" });
const blueprintMappings = import.meta.glob<string>("../blueprints/*/mappings/*.json", { eager: true, query: "?raw", import: "default" });
const blueprintFixtures = import.meta.glob<string>(["../blueprints/*/fixtures/**/*.json", "../blueprints/*/fixtures/**/*.xml"], { eager: true, query: "?raw", import: "default" });
const benchFiles = import.meta.glob<string>("../bench/fixtures/*.json", { eager: true, query: "?raw", import: "default" });

const SIM = "/v2/erp/updates/mapping_simulation";

// ---- the mappings and their payloads ---------------------------------------------------------------

interface Mapping {
  /** Where it comes from, for messages: "epilot mapping.CustomerChanged", "blueprint sap-s4hana/mappings/devices.json". */
  name: string;
  config: InboundConfiguration;
  /** Payloads it maps: its own (examples, the fixtures of its use case) and the other ones of its source, already parsed. */
  payloads: { name: string; payload: unknown; own: boolean }[];
}

/** An expression of a configuration and how the engine evaluates it. */
interface ConfiguredExpression {
  source: string;
  /** Dotted, as the simulation reports it: "entities.0.fields.3.jsonataExpression". */
  path: string;
  text: string;
  /** Evaluated with `root` (so `$$` is the payload): inside an entity or meter reading with a pre-processing expression. */
  rootBinding: boolean;
}

const fileName = (path: string) => path.slice(path.lastIndexOf("/") + 1).replace(/\.json$/, "");

/**
 * Every expression of an inbound configuration. The engine evaluates an entity's (or meter reading's)
 * fields, relations and file-proxy params per element of its pre-processing `jsonataExpression`, with
 * the payload as `root`; that expression itself and the entity's `enabled` and `condition` see the payload.
 */
function inboundExpressions(source: string, config: InboundConfiguration): ConfiguredExpression[] {
  return expressionsOf(config).map(({ path, text }) => {
    const [list, index, key] = path as [string, number, string];
    const owner = list === "entities" ? config.entities[index] : list === "meter_readings" ? config.meter_readings[index] : undefined;
    const rootBinding = owner?.jsonataExpression !== undefined && !["jsonataExpression", "enabled", "condition"].includes(key);
    return { source, path: path.join("."), text, rootBinding };
  });
}

/** JSONata texts anywhere in a JSON tree (an outbound or file-proxy configuration): `jsonataExpression` and `jsonata_expression`. */
function treeExpressions(source: string, tree: unknown, at: string[] = []): ConfiguredExpression[] {
  if (!tree || typeof tree !== "object") return [];
  return Object.entries(tree).flatMap(([key, value]) =>
    (key === "jsonataExpression" || key === "jsonata_expression") && typeof value === "string"
      ? [{ source, path: [...at, key].join("."), text: value, rootBinding: false }]
      : treeExpressions(source, value, [...at, key]),
  );
}

/** The published epilot examples: each mapping over each example payload (its own, and the others as unexpected input). */
function exampleMappings(): Mapping[] {
  const payloads = Object.entries(exampleFiles)
    .filter(([path]) => fileName(path).startsWith("payload."))
    .map(([path, text]) => ({ name: fileName(path), payload: JSON.parse(text) as unknown }));
  return Object.entries(exampleFiles)
    .filter(([path]) => fileName(path).startsWith("mapping."))
    .map(([path, text]) => {
      const name = fileName(path);
      // mapping.CustomerChanged pairs with payload.customer.
      const own = `payload.${name.replace(/^mapping\./, "").replace(/Changed$/, "").toLowerCase()}`;
      return { name: `epilot ${name}`, config: InboundConfiguration.parse(JSON.parse(text)), payloads: payloads.map((p) => ({ ...p, own: p.name === own })) };
    });
}

interface BlueprintUseCase {
  slug: string;
  type: string;
  configuration: { $file?: string } & Record<string, unknown>;
}
interface BlueprintFixture {
  use_case: string;
  format?: PayloadFormat;
  payload: unknown;
}

/** Our blueprints: each inbound use case's mapping over every fixture payload of its blueprint; the other configurations' expressions. */
function blueprints(): { mappings: Mapping[]; expressions: ConfiguredExpression[] } {
  const mappings: Mapping[] = [];
  const expressions: ConfiguredExpression[] = [];
  for (const [manifestPath, manifestText] of Object.entries(blueprintManifests)) {
    const dir = manifestPath.slice(0, -"blueprint.json".length);
    const blueprint = dir.split("/").at(-2)!;
    const file = (rel: string) => blueprintMappings[dir + rel] ?? blueprintFixtures[dir + rel];
    const fixtures = Object.entries(blueprintFixtures)
      .filter(([path]) => path.startsWith(`${dir}fixtures/`) && /^fixtures\/[^/]+\.json$/.test(path.slice(dir.length)))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([path, text]) => {
        const f = JSON.parse(text) as BlueprintFixture;
        const ref = (f.payload as { $file?: string }).$file;
        const body = ref === undefined ? f.payload : file(ref);
        if (body === undefined) throw new Error(`${path}: no ${ref}`);
        const format = f.format ?? "json";
        return { name: `${blueprint}/${path.slice(dir.length)}`, use_case: f.use_case, payload: parsePayload(format, ref !== undefined && format === "json" ? JSON.parse(body as string) : body) };
      });
    const manifest = JSON.parse(manifestText) as { integrations?: { use_cases?: BlueprintUseCase[] }[] };
    for (const useCase of (manifest.integrations ?? []).flatMap((i) => i.use_cases ?? [])) {
      const ref = useCase.configuration.$file;
      const text = ref === undefined ? undefined : file(ref);
      if (ref !== undefined && text === undefined) throw new Error(`blueprints/${blueprint}: no ${ref}`);
      const config: unknown = text === undefined ? useCase.configuration : JSON.parse(text);
      const source = `blueprint ${blueprint}/${ref ?? `use case ${useCase.slug}`}`;
      if (useCase.type === "inbound") {
        const parsed = InboundConfiguration.parse(config);
        mappings.push({ name: source, config: parsed, payloads: fixtures.map((f) => ({ name: f.name, payload: f.payload, own: f.use_case === useCase.slug })) });
      } else expressions.push(...treeExpressions(source, config));
    }
  }
  return { mappings, expressions };
}

/** The bench's fixtures (bench/fixtures/mapping.*.json, payload.*.json): each mapping over each payload there. */
function benchMappings(): Mapping[] {
  const payloads = Object.entries(benchFiles)
    .filter(([path]) => fileName(path).startsWith("payload."))
    .map(([path, text]) => ({ name: `bench ${fileName(path)}`, payload: JSON.parse(text) as unknown, own: true }));
  return Object.entries(benchFiles)
    .filter(([path]) => fileName(path).startsWith("mapping."))
    .map(([path, text]) => ({ name: `bench ${fileName(path)}`, config: InboundConfiguration.parse(JSON.parse(text)), payloads }));
}

const examples = exampleMappings();
const repo = blueprints();
const bench = benchMappings();
const allMappings = [...examples, ...repo.mappings, ...bench];
const allExpressions = [...allMappings.flatMap((m) => inboundExpressions(m.name, m.config)), ...repo.expressions];

// ---- running mappings --------------------------------------------------------------------------------

/** A mapping run's result, or its failure as the simulation would report it (code and limit). */
async function mappingOutcome(run: () => Promise<MappingResult>): Promise<Outcome> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    if (err instanceof MappingError) return { ok: false, code: err.details.jsonata_code, limit: err.details.limit, message: `${err.details.path}: ${err.message}` };
    return { ok: false, code: "(not a MappingError)", message: String(err) };
  }
}

/** Every payload through every mapping, once with compilation on and once off: the differences, and the own payloads that failed. */
async function compareOnOff(run: (config: InboundConfiguration, payload: unknown, compile: boolean) => Promise<MappingResult>) {
  const differences: string[] = [];
  const failedOwn: string[] = [];
  let pairs = 0;
  for (const m of allMappings) {
    for (const p of m.payloads) {
      pairs++;
      const off = await mappingOutcome(() => run(m.config, structuredClone(p.payload), false));
      const on = await mappingOutcome(() => run(m.config, structuredClone(p.payload), true));
      const difference = sameOutcome(on, off);
      if (difference) differences.push(`${m.name} over ${p.name}: ${difference}`);
      if (p.own && !on.ok) failedOwn.push(`${m.name} over ${p.name}: ${on.code} ${on.message}`);
    }
  }
  return { differences, failedOwn, pairs };
}

/**
 * The evaluations the engine makes of a mapping's expressions over one payload: an expression inside a
 * pre-processed entity or meter reading once per element (a few at most), with the payload as root;
 * any other once over the payload.
 */
async function evaluationsOf(m: Mapping, payload: unknown) {
  const elements = new Map<string, unknown[]>();
  const out: { e: ConfiguredExpression; input: unknown; root?: unknown }[] = [];
  for (const e of inboundExpressions(m.name, m.config)) {
    if (!e.rootBinding) {
      out.push({ e, input: payload });
      continue;
    }
    const [list, index] = e.path.split(".") as ["entities" | "meter_readings", string];
    const owner = `${list}.${index}`;
    if (!elements.has(owner)) {
      const pre = m.config[list][Number(index)]!.jsonataExpression!;
      const value = await evaluateExpression(pre, payload, { compile: false }).catch(() => undefined);
      elements.set(owner, value === undefined || value === null ? [] : Array.isArray(value) ? value.slice(0, 5) : [value]);
    }
    for (const input of elements.get(owner)!) out.push({ e, input, root: payload });
  }
  return out;
}

// ---- (a) real mappings --------------------------------------------------------------------------------

describe("real mappings compile and map alike compiled and interpreted", () => {
  it("finds the example, blueprint and bench mappings and their payloads", () => {
    expect(examples.map((m) => m.name).sort()).toEqual(["epilot mapping.ContractChanged", "epilot mapping.CustomerChanged", "epilot mapping.OrderChanged"]);
    expect(examples.every((m) => m.payloads.filter((p) => p.own).length === 1)).toBe(true);
    // hello-erp 2, sap-s4hana 7, telematics 5 inbound use cases; every one with at least one fixture of its own.
    expect(repo.mappings.length).toBeGreaterThanOrEqual(14);
    expect(repo.mappings.filter((m) => !m.payloads.some((p) => p.own)).map((m) => m.name)).toEqual([]);
    expect(repo.expressions.filter((e) => e.path.endsWith("jsonata_expression")).length).toBeGreaterThanOrEqual(4);
    console.log(
      `mapping compiler: ${allMappings.length} mappings (${examples.length} examples, ${repo.mappings.length} blueprint, ${bench.length} bench: ${bench.map((m) => m.name).join(", ") || "none yet"}), ` +
        `${allExpressions.length} expressions, ${allMappings.reduce((n, m) => n + m.payloads.length, 0)} mapping-payload pairs`,
    );
  });

  it("compiles every expression of them, as the engine evaluates it (with the root binding inside pre-processed entities)", () => {
    const declined = allExpressions.flatMap((e) => {
      const status = compiledStatus(e.text, { rootBinding: e.rootBinding });
      return status.compiled ? [] : [`${e.source} ${e.path}${e.rootBinding ? " (root binding)" : ""}: ${status.reason} -- ${e.text.replace(/\s+/g, " ").slice(0, 100)}`];
    });
    console.log(`mapping compiler: ${allExpressions.length - declined.length} of ${allExpressions.length} real expressions compile`);
    expect(declined).toEqual([]);
  });

  it("evaluates each of their expressions compiled exactly as interpreted, over the inputs the engine gives it", { timeout: 60_000 }, async () => {
    // The compiled path alone (no interpreter fallback), so a compiled failure the engine would hide shows here.
    const differences: string[] = [];
    let evaluations = 0;
    for (const m of allMappings) {
      for (const p of m.payloads) {
        for (const { e, input, root } of await evaluationsOf(m, p.payload)) {
          evaluations++;
          const options: EvaluateOptions = root === undefined ? {} : { root };
          const interpreted = await outcomeOf(() => evaluateExpression(e.text, structuredClone(input), { ...structuredClone(options), compile: false }));
          const compiled = await outcomeOf(() => evaluateCompiledOnly(e.text, structuredClone(input), structuredClone(options)));
          const difference = sameOutcome(compiled, interpreted);
          if (difference) differences.push(`${e.source} ${e.path} over ${p.name}: ${difference} -- ${e.text.replace(/\s+/g, " ").slice(0, 80)}`);
        }
      }
    }
    console.log(`mapping compiler: ${evaluations - differences.length} of ${evaluations} evaluations of real expressions alike compiled and interpreted`);
    expect(differences.slice(0, 40)).toEqual([]);
  });

  it("maps every payload alike with compilation on and off (runMapping's compile option)", { timeout: 60_000 }, async () => {
    const { differences, failedOwn, pairs } = await compareOnOff((config, payload, compile) => runMapping(config, payload, { compile }));
    console.log(`mapping compiler: ${pairs - differences.length} of ${pairs} mapping-payload pairs alike on and off`);
    expect(differences).toEqual([]);
    expect(failedOwn).toEqual([]);
  });
});

// ---- (b) bounds and prototype keys -------------------------------------------------------------------

/** Compiled alone, interpreted alone, and through the default path (compiled with its fallback): their outcomes. */
async function threeWays(text: string, input: unknown, options: EvaluateOptions = {}) {
  return {
    status: compiledStatus(text, { rootBinding: options.root !== undefined }),
    compiled: await outcomeOf(() => evaluateCompiledOnly(text, structuredClone(input), options)),
    interpreted: await outcomeOf(() => evaluateExpression(text, structuredClone(input), { ...options, compile: false })),
    defaulted: await outcomeOf(() => evaluateExpression(text, structuredClone(input), options)),
  };
}

const RUNAWAY: { what: string; text: string; bounds?: Partial<EvaluationBounds>; code: string; limit: string }[] = [
  { what: "unbounded recursion", text: "($f := function($x) { $f($x) + 1 }; $f(1))", code: "D1011", limit: "max_depth" },
  { what: "a map over a long range", text: "$sum([1..100000].($ * 2))", bounds: { maxSteps: 1000 }, code: "D1012", limit: "max_steps" },
  { what: "a reduce over a long range", text: "$reduce([1..100000], function($a, $b) { $a + $b })", bounds: { maxSteps: 1000 }, code: "D1012", limit: "max_steps" },
  { what: "a filter lambda over a long range", text: "$count($filter([1..100000], function($v) { $v % 2 = 0 }))", bounds: { maxSteps: 1000 }, code: "D1012", limit: "max_steps" },
  { what: "a range past the array bound", text: "[1..1000000]", code: "D2015", limit: "max_array_length" },
  // Each range is within the array bound and each iteration is cheap in calls: only charging a
  // range by its length stops 2,000 iterations from allocating 200 million numbers.
  { what: "a loop allocating a long range per iteration", text: "$sum($map([1..2000], function($x) { $count([1..99999]) }))", code: "D1012", limit: "max_steps" },
  {
    what: "a string concatenation past the string bound",
    text: '$join([1..2000].("abcdefghij")) & $join([1..2000].("abcdefghij"))',
    bounds: { maxStringLength: 30_000 },
    code: "L1001",
    limit: "max_string_length",
  },
  {
    what: "a string doubled in a loop",
    text: '$reduce([1..30], function($s, $i) { $s & $s }, "abcdefghij")',
    bounds: { maxStringLength: 100_000 },
    code: "L1001",
    limit: "max_string_length",
  },
  { what: "a $merge of many keys", text: "$merge([1..50].{ $string($): $ })", bounds: { maxObjectKeys: 10 }, code: "L1002", limit: "max_object_keys" },
];

describe("bounds hold compiled, with the interpreter's codes", () => {
  for (const { what, text, bounds, code, limit } of RUNAWAY) {
    it(`${what}: ${code} (${limit})`, async () => {
      const r = await threeWays(text, { a: 1 }, { bounds });
      expect(r.status).toEqual({ compiled: true });
      expect(r.interpreted).toMatchObject({ ok: false, code, limit });
      expect(r.compiled).toMatchObject({ ok: false, code, limit });
      expect(r.defaulted).toMatchObject({ ok: false, code, limit });
    });
  }

  it("a regular expression with a lookahead: R0001, compiled as interpreted", async () => {
    for (const text of ['$replace("abc", /a(?=b)/, "x")', '$contains("abc", /(a)\\1/)', '$match("abc", /b(?!c)/)']) {
      const r = await threeWays(text, {});
      expect(r.compiled, text).toMatchObject({ ok: false, code: "R0001" });
      expect(r.interpreted, text).toMatchObject({ ok: false, code: "R0001" });
      expect(r.defaulted, text).toMatchObject({ ok: false, code: "R0001" });
    }
  });

  it("a step budget shared by several evaluations stops a mapping run compiled too (D1012, max_total_steps)", async () => {
    const text = "$sum([1..5000].($ * 2))";
    const run = async (compile: boolean) => {
      const budget: StepBudget = { used: 0, limit: 1000 };
      return outcomeOf(async () => {
        for (let i = 0; i < 100; i++) await evaluateExpression(text, {}, { budget, compile });
      });
    };
    const [interpreted, compiled] = [await run(false), await run(true)];
    expect(interpreted).toMatchObject({ ok: false, code: "D1012" });
    expect(sameOutcome(compiled, interpreted)).toBeNull();
  });
});

describe("prototype keys are data, compiled as interpreted", () => {
  const hostile = JSON.parse(
    '{"__proto__": {"polluted": "yes"}, "constructor": "c", "items": [{"name": "__proto__", "value": {"polluted": 1}}, {"name": "constructor", "value": 2}, {"name": "toString", "value": 3}]}',
  );
  const EXPRESSIONS = [
    "__proto__",
    "__proto__.polluted",
    "constructor",
    "toString",
    "$.toString",
    "hasOwnProperty",
    "$.__proto__.__proto__",
    "items.name",
    "items[name = '__proto__'].value",
    '{"__proto__": {"polluted": true}}',
    '{"__proto__": {"polluted": true}}.polluted',
    '{"constructor": 1, "toString": 2, "valueOf": 3}',
    '{"constructor": 1}.constructor',
    "items{name: value}",
    "items{name: value}.__proto__",
    '$merge([{"__proto__": {"polluted": true}}, {"a": 1}])',
    "$merge(items.{name: value})",
    "$map(items, function($i) { {$i.name: $i.value} })",
    '$lookup($, "__proto__")',
    '$lookup({}, "constructor")',
    "$keys($)",
    "$spread($)",
    "$sift($, function($v, $k) { true })",
    "$each($, function($v, $k) { $k })",
    '$string({"__proto__": 1})',
    '($o := {"__proto__": {"polluted": true}}; $o.polluted)',
  ];

  afterEach(() => {
    // Nothing an expression did may reach every object of the isolate.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted")).toBe(false);
  });

  for (const input of [hostile, {}]) {
    it(`reads and builds them safely over ${input === hostile ? "an input with prototype keys" : "an empty object"}`, async () => {
      const differences: string[] = [];
      for (const text of EXPRESSIONS) {
        const r = await threeWays(text, input);
        expect(r.status, text).toEqual({ compiled: true });
        const difference = sameOutcome(r.compiled, r.interpreted) ?? sameOutcome(r.defaulted, r.interpreted);
        if (difference) differences.push(`${text}: ${difference}`);
        // Results are plain data: an object built with a "__proto__" key keeps it as its own key.
        if (r.compiled.ok && r.compiled.value && typeof r.compiled.value === "object" && !Array.isArray(r.compiled.value)) {
          expect(Object.getPrototypeOf(r.compiled.value), text).toBe(Object.prototype);
        }
      }
      expect(differences).toEqual([]);
      // What the interpreter answers, spelled out for the cases that matter most.
      const compiled = (text: string) => evaluateCompiledOnly(text, structuredClone(input));
      expect(await compiled("toString")).toBeUndefined();
      expect(await compiled('{"__proto__": {"polluted": true}}.polluted')).toBeUndefined();
      const built = (await compiled('{"__proto__": {"polluted": true}}')) as object;
      expect(Object.getOwnPropertyDescriptor(built, "__proto__")?.value).toEqual({ polluted: true });
    });
  }
});

// ---- (c) the simulation reports how each expression runs ---------------------------------------------

async function simulate(token: string, event_configuration: unknown, payload: unknown) {
  const res = await api("POST", SIM, { token, json: { event_configuration, payload } });
  if (res.status !== 200) throw new Error(`simulation: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as MappingResult & { expressions: { path: string; compiled: boolean; reason?: string }[] };
}

/** Uses $eval (JSONata evaluating a string at run time), which the compiler leaves to the interpreter. */
const WITH_EVAL = {
  entities: [
    {
      entity_schema: "contact",
      unique_ids: ["external_id"],
      fields: [
        { attribute: "external_id", field: "id" },
        { attribute: "first_name", jsonataExpression: "$uppercase(first)" },
        { attribute: "last_name", jsonataExpression: "$eval('last')" },
      ],
    },
    {
      entity_schema: "contact",
      unique_ids: ["external_id"],
      jsonataExpression: "people",
      condition: "$count(people) > 0",
      fields: [
        { attribute: "external_id", jsonataExpression: "$string(id)" },
        { attribute: "email", jsonataExpression: "$$.domain ? name & '@' & $$.domain" },
      ],
    },
  ],
};
const WITH_EVAL_PAYLOAD = { id: "C-1", first: "ada", last: "lovelace", domain: "example.com", people: [{ id: 1, name: "grace" }, { id: 2, name: "alan" }] };

describe("the mapping simulation reports per expression whether it runs compiled", () => {
  it("lists every expression of the configuration: $eval runs interpreted with a reason, the rest compiled", async () => {
    const { token } = await tenantWithToken();
    const result = await simulate(token, WITH_EVAL, WITH_EVAL_PAYLOAD);
    expect(result.entity_updates.map((u) => u.attributes)).toEqual([
      { external_id: "C-1", first_name: "ADA", last_name: "lovelace" },
      { external_id: "1", email: "grace@example.com" },
      { external_id: "2", email: "alan@example.com" },
    ]);
    const config = InboundConfiguration.parse(WITH_EVAL);
    const expected = inboundExpressions("WITH_EVAL", config).map(({ path, text, rootBinding }) => {
      const status = compiledStatus(text, { rootBinding });
      return { path, compiled: status.compiled };
    });
    const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);
    expect(expected.map((e) => e.path)).toEqual([
      "entities.0.fields.1.jsonataExpression",
      "entities.0.fields.2.jsonataExpression",
      "entities.1.jsonataExpression",
      "entities.1.condition",
      "entities.1.fields.0.jsonataExpression",
      "entities.1.fields.1.jsonataExpression",
    ]);
    // In any order, each once: the paths the configuration has, compiled as compiledStatus says for the way the engine evaluates it.
    expect(result.expressions.map(({ path, compiled }) => ({ path, compiled })).sort(byPath)).toEqual([...expected].sort(byPath));
    const evaluated = result.expressions.find((e) => e.path === "entities.0.fields.2.jsonataExpression")!;
    expect(evaluated).toEqual({ path: "entities.0.fields.2.jsonataExpression", compiled: false, reason: expect.stringMatching(/\S/) });
    expect(result.expressions.filter((e) => e !== evaluated).every((e) => e.compiled === true && e.reason === undefined)).toBe(true);
  });

  it("reports every expression of the epilot examples compiled", async () => {
    const { token } = await tenantWithToken();
    for (const m of examples) {
      const own = m.payloads.find((p) => p.own)!;
      const result = await simulate(token, JSON.parse(JSON.stringify(m.config)), own.payload);
      expect(result.expressions.length, m.name).toBe(expressionsOf(m.config).length);
      expect(result.expressions.filter((e) => !e.compiled), m.name).toEqual([]);
    }
  });
});

// ---- (d) the switch --------------------------------------------------------------------------------

describe("turning compilation off", () => {
  afterEach(() => setMappingCompilation(true));

  it("is on by default and off runs everything in the interpreter, with the same results", async () => {
    expect(mappingCompilationEnabled()).toBe(true);
    // Which path ran shows in the steps charged: the interpreter counts every node, the compiled
    // code only loops and calls, so a loop-free expression of many nodes costs them differently.
    const text = "(a + b) * (a - b) & ' ' & $uppercase(name) & ' ' & (a > b ? 'more' : 'less')";
    const input = { a: 7, b: 3, name: "x" };
    const steps = async (run: (budget: StepBudget) => Promise<unknown>) => {
      const budget: StepBudget = { used: 0, limit: 1_000_000 };
      const value = await run(budget);
      return { value, used: budget.used };
    };
    const interpreted = await steps((budget) => evaluateExpression(text, input, { budget, compile: false }));
    const compiled = await steps((budget) => evaluateCompiledOnly(text, input, { budget }));
    expect(compiled.value).toBe("40 X more");
    expect(interpreted.value).toBe("40 X more");
    expect(compiled.used, "the two paths charge the same steps: this test cannot tell them apart").not.toBe(interpreted.used);

    expect(await steps((budget) => evaluateExpression(text, input, { budget }))).toEqual(compiled);
    setMappingCompilation(false);
    expect(mappingCompilationEnabled()).toBe(false);
    expect(await steps((budget) => evaluateExpression(text, input, { budget }))).toEqual(interpreted);
    setMappingCompilation(true);
    expect(await steps((budget) => evaluateExpression(text, input, { budget }))).toEqual(compiled);
  });

  it("maps every example, blueprint and bench payload alike with the switch on and off", { timeout: 60_000 }, async () => {
    const { differences, failedOwn } = await compareOnOff(async (config, payload, compile) => {
      setMappingCompilation(compile);
      try {
        return await runMapping(config, payload);
      } finally {
        setMappingCompilation(true);
      }
    });
    expect(differences).toEqual([]);
    expect(failedOwn).toEqual([]);
  });

  it("the simulation answers alike with it off, and says each expression runs interpreted", async () => {
    const { token } = await tenantWithToken();
    const on = await simulate(token, WITH_EVAL, WITH_EVAL_PAYLOAD);
    setMappingCompilation(false);
    const off = await simulate(token, WITH_EVAL, WITH_EVAL_PAYLOAD);
    setMappingCompilation(true);
    const { expressions: reportsOn, ...resultOn } = on;
    const { expressions: reportsOff, ...resultOff } = off;
    expect(sameValue(resultOff, resultOn)).toBeNull();
    expect(reportsOff.map((e) => e.path)).toEqual(reportsOn.map((e) => e.path));
    expect(reportsOff.every((e) => e.compiled === false && typeof e.reason === "string")).toBe(true);
  });
});
