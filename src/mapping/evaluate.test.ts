// Unit tests of the mapping engine, one option at a time, happy and unhappy.
import { describe, expect, it } from "vitest";
import { runMapping, MappingError } from "./engine";
import { DEFAULT_BOUNDS, evaluateExpression, ExpressionError, type StepBudget } from "./expression";
import { parsePayload, parseXml, PayloadError } from "./payload";
import { InboundConfiguration } from "./schema";

const parse = (config: unknown) => InboundConfiguration.parse(config);
const contact = (fields: unknown[], extra: Record<string, unknown> = {}) =>
  parse({ entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, ...fields], ...extra }] });

describe("entities", () => {
  it("skips a disabled entity, by boolean, predicate or condition alias (both must hold)", async () => {
    expect((await runMapping(contact([], { enabled: false }), { id: "1" })).entity_updates).toEqual([]);
    expect((await runMapping(contact([], { enabled: "kind = 'b2b'" }), { id: "1", kind: "b2c" })).entity_updates).toEqual([]);
    expect((await runMapping(contact([], { enabled: "kind = 'b2b'" }), { id: "1", kind: "b2b" })).entity_updates).toHaveLength(1);
    expect((await runMapping(contact([], { enabled: true, condition: "kind = 'b2b'" }), { id: "1", kind: "b2c" })).entity_updates).toEqual([]);
  });

  it("pre-processes the payload: an array yields one entity per element, with $$ the whole payload", async () => {
    const config = parse({
      entities: [
        {
          entity_schema: "meter_counter",
          unique_ids: ["external_id"],
          jsonataExpression: "meter.counters",
          fields: [
            { attribute: "external_id", field: "id" },
            { attribute: "meter_label", jsonataExpression: "$$.meter.label & '/' & id" },
          ],
        },
      ],
    });
    const result = await runMapping(config, { meter: { label: "M1", counters: [{ id: "a" }, { id: "b" }] } });
    expect(result.entity_updates.map((u) => u.attributes)).toEqual([
      { external_id: "a", meter_label: "M1/a" },
      { external_id: "b", meter_label: "M1/b" },
    ]);
    expect((await runMapping(config, { meter: {} })).entity_updates).toEqual([]);
  });

  it("warns and skips an entity whose unique id has no value", async () => {
    const result = await runMapping(contact([]), { name: "no id" });
    expect(result.entity_updates).toEqual([]);
    expect(result.warnings).toEqual([expect.objectContaining({ code: "MISSING_UNIQUE_ID", entity_schema: "contact", entity_index: 0 })]);
  });

  it("warns about unknown schemas, unindexed unique ids and wrong types instead of dropping", async () => {
    const config = parse({
      entities: [
        { entity_schema: "spaceship", unique_ids: ["id"], fields: [{ attribute: "id", field: "id" }] },
        { entity_schema: "contact", unique_ids: ["nickname"], fields: [{ attribute: "nickname", field: "id" }, { attribute: "email", field: "id" }, { attribute: "birthdate", constant: "yesterday" }] },
      ],
    });
    const result = await runMapping(config, { id: "x" });
    expect(result.entity_updates).toHaveLength(2);
    expect(result.warnings.map((w) => [w.code, w.attribute])).toEqual([
      ["UNKNOWN_SCHEMA", undefined],
      ["UNIQUE_ID_NOT_INDEXED", "nickname"],
      ["WRONG_TYPE", "email"],
      ["WRONG_TYPE", "birthdate"],
    ]);
  });

  it("carries delete and purge modes", async () => {
    expect((await runMapping(contact([], { mode: "delete" }), { id: "1" })).entity_updates[0]!.mode).toBe("delete");
    expect((await runMapping(contact([], { mode: "purge" }), { id: "1" })).entity_updates[0]!.mode).toBe("purge");
    expect(() => contact([], { mode: "explode" })).toThrow();
  });
});

describe("fields", () => {
  it("takes constant over jsonataExpression over field", async () => {
    const config = contact([
      { attribute: "a", constant: "C", jsonataExpression: "'J'", field: "f" },
      { attribute: "b", jsonataExpression: "'J'", field: "f" },
      { attribute: "c", field: "f" },
      { attribute: "d", field: "$.nested.list[1].v" },
      { attribute: "e", constant: 0 },
      { attribute: "f", constant: false },
    ]);
    const { attributes } = (await runMapping(config, { id: "1", f: "F", nested: { list: [{ v: 1 }, { v: 2 }] } })).entity_updates[0]!;
    expect(attributes).toEqual({ external_id: "1", a: "C", b: "J", c: "F", d: 2, e: 0, f: false });
  });

  it("omits an attribute whose expression yields undefined, and a disabled field", async () => {
    const config = contact([
      { attribute: "missing", jsonataExpression: "nothing.here" },
      { attribute: "off", constant: "x", enabled: false },
      { attribute: "cond", constant: "x", enabled: "flag = true" },
    ]);
    expect((await runMapping(config, { id: "1", flag: false })).entity_updates[0]!.attributes).toEqual({ external_id: "1" });
    expect((await runMapping(config, { id: "1", flag: true })).entity_updates[0]!.attributes).toEqual({ external_id: "1", cond: "x" });
  });

  it("wraps scalars with _type email/phone", async () => {
    const config = contact([
      { attribute: "email", field: "mail", _type: "email" },
      { attribute: "phone", jsonataExpression: "phones", _type: "phone" },
    ]);
    const { attributes } = (await runMapping(config, { id: "1", mail: "a@b.de", phones: ["1", 2] })).entity_updates[0]!;
    expect(attributes.email).toEqual([{ email: "a@b.de" }]);
    expect(attributes.phone).toEqual([{ phone: "1" }, { phone: "2" }]);
  });

  it("keeps _append results as merge operations and merges two of them on one attribute", async () => {
    const config = contact([
      { attribute: "_tags", jsonataExpression: "{ '_append': ['erp'] }" },
      { attribute: "_tags", jsonataExpression: "{ '_append': [source] }" },
      { attribute: "notes", jsonataExpression: "{ '_append_all': [note] }" },
    ]);
    const { attributes } = (await runMapping(config, { id: "1", source: "sap", note: "n" })).entity_updates[0]!;
    expect(attributes._tags).toEqual({ _append: ["erp", "sap"] });
    expect(attributes.notes).toEqual({ _append_all: ["n"] });
  });

  it("builds relations from items and from an expression, skipping unresolved ones with a warning", async () => {
    const config = contact([
      {
        attribute: "account",
        relations: { operation: "_append", items: [{ entity_schema: "account", _tags: ["payer"], unique_ids: [{ attribute: "customer_number", field: "acct" }] }] },
      },
      {
        attribute: "contracts",
        relations: { operation: "_set", jsonataExpression: "contracts.{ 'entity_schema': 'contract', 'unique_ids': { 'external_id': $ } }" },
      },
      { attribute: "ghost", relations: { operation: "_set", items: [{ entity_schema: "account", unique_ids: [{ attribute: "customer_number", field: "nope" }] }] } },
    ]);
    const result = await runMapping(config, { id: "1", acct: "A1", contracts: ["K1", "K2"] });
    const { attributes } = result.entity_updates[0]!;
    expect(attributes.account).toEqual({ $relation: { _append: [{ $entity_unique_ids: { customer_number: "A1" }, _schema: "account", _tags: ["payer"] }] } });
    expect(attributes.contracts).toEqual({
      $relation: {
        _set: [
          { $entity_unique_ids: { external_id: "K1" }, _schema: "contract" },
          { $entity_unique_ids: { external_id: "K2" }, _schema: "contract" },
        ],
      },
    });
    expect(attributes).not.toHaveProperty("ghost");
    expect(result.warnings).toEqual([expect.objectContaining({ code: "RELATION_UNRESOLVED", attribute: "ghost" })]);
  });

  it("produces file proxy URLs from params", async () => {
    const config = parse({
      entities: [
        {
          entity_schema: "file",
          unique_ids: ["external_id"],
          fields: [
            { attribute: "external_id", field: "docId" },
            { attribute: "custom_download_url", file_proxy_url: { use_case_slug: "invoices", params: { doc: { field: "docId" }, kind: { constant: "pdf" } } } },
          ],
        },
      ],
    });
    const result = await runMapping(config, { docId: "D 1" }, { baseUrl: "https://edge.example", integrationId: "INT1" });
    expect(result.entity_updates[0]!.attributes.custom_download_url).toBe("https://edge.example/v1/files/download?integration_id=INT1&use_case_slug=invoices&doc=D+1&kind=pdf");
    // In the pipeline a signer turns the same params into a signed URL.
    const signed = await runMapping(config, { docId: "D 1" }, { fileUrl: async (slug, params) => `signed:${slug}:${JSON.stringify(params)}` });
    expect(signed.entity_updates[0]!.attributes.custom_download_url).toBe('signed:invoices:{"doc":"D 1","kind":"pdf"}');
  });
});

describe("meter readings", () => {
  const readings = parse({
    meter_readings: [
      {
        jsonataExpression: "readings",
        meter: { unique_ids: [{ attribute: "external_id", field: "meter" }] },
        meter_counter: { unique_ids: ["counter"] },
        fields: [
          { attribute: "external_id", field: "id" },
          { attribute: "timestamp", field: "at" },
          { attribute: "source", constant: "ERP" },
          { attribute: "value", jsonataExpression: "$string(v)" },
          { attribute: "reason", field: "why" },
        ],
      },
    ],
  });

  it("maps readings with bare dates as midnight UTC and numeric strings as numbers", async () => {
    const result = await runMapping(readings, { readings: [{ id: "R1", meter: "M1", counter: "C1", at: "2024-03-01", v: 12.5, why: "regular" }] });
    expect(result.meter_readings_updates).toEqual([
      {
        meter: { $entity_unique_ids: { external_id: "M1" } },
        meter_counter: { $entity_unique_ids: { counter: "C1" } },
        attributes: { external_id: "R1", timestamp: "2024-03-01T00:00:00.000Z", source: "ERP", value: 12.5, reason: "regular" },
        mode: "upsert",
      },
    ]);
  });

  it("skips invalid readings with a warning that says why", async () => {
    const result = await runMapping(readings, {
      readings: [
        { id: "R1", meter: "M1", counter: "C1", at: "01.03.2024", v: 1 },
        { id: "R2", meter: "M1", counter: "C1", at: "2024-03-01T10:00:00+01:00", v: "abc" },
        { id: "R3", counter: "C1", at: "2024-03-01", v: 1 },
        { id: "R4", meter: "M1", counter: "C1", at: "2024-03-01T10:00:00+01:00", v: 3 },
      ],
    });
    expect(result.meter_readings_updates.map((r) => [r.attributes.external_id, r.attributes.timestamp])).toEqual([["R4", "2024-03-01T09:00:00.000Z"]]);
    expect(result.warnings.map((w) => w.message)).toEqual([
      expect.stringContaining("timestamp"),
      expect.stringContaining("value"),
      expect.stringContaining("meter's unique ids"),
    ]);
  });
});

describe("evaluation bounds and errors", () => {
  it("stops a runaway expression at the step bound instead of stalling", async () => {
    const loop = "( $f := function($n) { $n > 0 ? $f($n - 1) + 1 : 0 }; [1..100000].$f(3) )";
    await expect(evaluateExpression(loop, {}, { bounds: { maxDepth: 500, maxSteps: 10_000 } })).rejects.toMatchObject({ code: "D1012", limit: "max_steps", value: 10_000 });
  });

  it("stops deep recursion at the depth bound", async () => {
    const deep = "( $f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000) )";
    await expect(evaluateExpression(deep, {})).rejects.toBeInstanceOf(ExpressionError);
    await expect(evaluateExpression(deep, {})).rejects.toMatchObject({ code: "D1011", limit: "max_depth", value: 500 });
  });

  it("fails the event with entity, field and position when an expression fails at run time", async () => {
    const config = contact([{ attribute: "total", jsonataExpression: "amount * 2" }]);
    const err = await runMapping(config, { id: "1", amount: "ten" }).catch((e) => e);
    expect(err).toBeInstanceOf(MappingError);
    expect(err.details).toMatchObject({ path: "entities.0.fields.1.jsonataExpression", entity_schema: "contact", attribute: "total", jsonata_code: "T2001", position: 8 });
  });

  it("reports positions in the user's text in array contexts too (JSONata's convention: just past the token)", async () => {
    const field = { attribute: "external_id", jsonataExpression: "id * 2" };
    const plain = parse({ entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [field] }] });
    const inArray = parse({ entities: [{ entity_schema: "contact", unique_ids: ["external_id"], jsonataExpression: "items", fields: [field] }] });
    const plainErr = await runMapping(plain, { id: "x" }).catch((e) => e);
    const arrayErr = await runMapping(inArray, { items: [{ id: "x" }] }).catch((e) => e);
    expect(plainErr.details).toMatchObject({ position: 4 });
    expect(arrayErr.details).toMatchObject({ position: 4, item_index: 0 });
  });

  it("refuses configurations whose expressions do not parse, naming the path and position", () => {
    const result = InboundConfiguration.safeParse({ entities: [{ entity_schema: "contact", unique_ids: ["x"], condition: "a = ", fields: [] }] });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]).toMatchObject({ path: ["entities", 0, "condition"], params: { position: expect.any(Number) } });
  });
});

describe("XML payloads", () => {
  it("follows the documented rules: attributes as @name, text as #text, repeats as arrays, strings kept", () => {
    expect(parseXml('<?xml version="1.0"?><r a="1"><n>007</n><i>1</i><i>2</i><t lang="de">Hallo</t></r>')).toEqual({
      r: { "@a": "1", n: "007", i: ["1", "2"], t: { "@lang": "de", "#text": "Hallo" } },
    });
  });
});

/** Evaluates and returns the failure, or fails the test if there was none. */
async function refusal(expression: string, options: Parameters<typeof evaluateExpression>[2] = {}): Promise<ExpressionError> {
  const err = await evaluateExpression(expression, {}, options).then(
    (value) => new Error(`expected a refusal, got ${JSON.stringify(value)?.slice(0, 80)}`),
    (e: unknown) => e,
  );
  if (!(err instanceof ExpressionError)) throw err;
  return err;
}

describe("cost and size bounds (docs/mapping-limits.md)", () => {
  // Each of these crashed or stalled the runtime before the bounds covered cost, not just AST nodes.
  it.each([
    ["a 10M range (out of memory)", "[1..10000000]", "max_array_length", "D2015"],
    ["sorting a 10M range", "$count($sort([1..10000000]))", "max_array_length", "D2015"],
    ["quadratic $distinct", "$count($distinct([1..200000]))", "max_array_length", "D2015"],
    ["a 100 MB $pad", "$pad('', 100000000, 'x')", "max_string_length", "L1001"],
    ["& doubling", "( $s := $pad('', 600000, 'x'); $s & $s )", "max_string_length", "L1001"],
    ["$join growth", "$join($map([1..100], function() { $pad('', 20000, 'x') }))", "max_string_length", "L1001"],
    ["$string of one string referenced 100k times", "( $s := $pad('', 999999, 'x'); $string([1..100000].$s) )", "max_string_length", "L1001"],
    ["& of a huge value", "( $s := $pad('', 999999, 'x'); ([1..100000].$s) & '' )", "max_string_length", "L1001"],
    ["$clone (transform) of a huge value", "( $s := $pad('', 999999, 'x'); { 'a': [1..100000].$s } ~> | $ | { 'b': 1 } | )", "max_string_length", "L1001"],
    ["$split into a million parts", "$split($pad('', 999999, 'x'), '')", "max_array_length", "D2015"],
    ["$replace growth", "$replace($pad('', 999999, 'x'), 'x', 'yy')", "max_string_length", "L1001"],
    ["$match over a huge string", "$count($match($pad('', 999999, 'x'), /x/))", "max_steps", "D1012"],
    ["nested $map", "$map([1..100000], function($v) { $map([1..100000], function($w) { $w }) })", "max_steps", "D1012"],
    ["$sort with a lambda comparator", "$sort([1..100000], function($a, $b) { $a < $b })", "max_steps", "D1012"],
    ["$reduce building a huge string", "$reduce([1..100000], function($acc, $v) { $acc & $pad('', 100, 'x') }, '')", "max_string_length", "L1001"],
    ["order-by on 5,000 items (quadratic memory in JSONata)", "[1..5000]^($)", "max_order_by_length", "L1003"],
    ["a result of 1.7M characters", "[1..60000].($string($) & 'abcdefghijklmnopqrstuvwxyz')", "max_result_size", "L1004"],
    ["a result nested 1,000 levels deep", "$reduce([1..1000], function($acc, $v) { { 'x': $acc } }, 0)", "max_depth", "D1011"],
    ["$eval of a 10M range", "$eval('[1..10000000]')", "max_array_length", "D2015"],
    ["$eval of a $pad bomb", "$eval(\"$pad('', 100000000, 'x')\")", "max_string_length", "L1001"],
    ["$eval of a runaway loop", "$eval('( $f := function($n) { $n > 0 ? $f($n - 1) + 1 : 0 }; [1..100000].$f(50) )')", "max_steps", "D1012"],
    ["order-by inside $eval", "$eval('[3, 1, 2]^($)')", "max_order_by_length", "L1003"],
  ])("refuses %s", { timeout: 30_000 }, async (_name, expression, limit, code) => {
    const err = await refusal(expression);
    expect(err).toMatchObject({ limit, code });
    expect(err.value).toBeTypeOf("number");
  });

  it("quotes a huge value in an error message by a placeholder instead of stringifying it", async () => {
    const err = await refusal("( $s := $pad('', 999999, 'x'); { [1..100000].$s: 1 } )");
    expect(err).toMatchObject({ code: "T1003", limit: undefined });
    expect(err.message).toContain("too large to show");
    expect(await refusal("-[1, 2]")).toMatchObject({ code: "D1002" });
    expect(await refusal("{ 'a': 1 } ~> | $ | [1] |")).toMatchObject({ code: "T2011" });
    expect(await evaluateExpression("{ 'a': 1, 'b': 2 } ~> | $ | { 'c': 3 }, 'a' |", {})).toEqual({ b: 2, c: 3 });
    expect(await evaluateExpression("[{ 'k': 'x', 'v': 1 }, { 'k': 'y', 'v': 2 }]{ k: v }", {})).toEqual({ x: 1, y: 2 });
    expect(await evaluateExpression("'a' & 1 & true & null & [1, { 'b': 2 }] & nothing", {})).toBe('a1truenull[1,{"b":2}]');
  });

  it("counts the keys $merge would build", async () => {
    const bounds = { maxObjectKeys: 100 };
    expect(await refusal("$merge([1..300].{ $string($): $ })", { bounds })).toMatchObject({ limit: "max_object_keys", code: "L1002", value: 100 });
    expect(await evaluateExpression("$count($keys($merge([1..500].{ $string($ % 10): $ })))", {}, { bounds })).toBe(10);
  });

  it("charges a whole mapping run to one budget", async () => {
    const budget: StepBudget = { used: 0, limit: 2_000 };
    await evaluateExpression("$sum([1..200].($ * 2))", {}, { budget });
    // Compiled, a path step costs a step per item (200); the interpreter counts every node it visits (more).
    expect(budget.used).toBeGreaterThan(200);
    const err = await refusal("$sum([1..2000].($ * 2))", { budget });
    expect(err).toMatchObject({ code: "D1012", limit: "max_total_steps", value: 2_000 });
  });

  it("keeps JSONata's semantics where built-ins were reimplemented ($sort, $distinct, $pad)", async () => {
    expect(await evaluateExpression("$sort([3, 1, 2, 1])", {})).toEqual([1, 1, 2, 3]);
    expect(await evaluateExpression("$sort(['b', 'a', 'B'])", {})).toEqual(["B", "a", "b"]);
    const people = [{ n: "a", age: 30 }, { n: "b", age: 20 }, { n: "c", age: 30 }, { n: "d", age: 20 }];
    expect(await evaluateExpression("$sort($, function($l, $r) { $l.age > $r.age }).n", people)).toEqual(["b", "d", "a", "c"]);
    await expect(evaluateExpression("$sort([1, 'a'])", {})).rejects.toMatchObject({ code: "D3070" });
    expect(await evaluateExpression("$distinct([1, 2, 1, '1', { 'a': [1, 2], 'b': 0 }, { 'b': 0, 'a': [1, 2] }, [1], [1]])", {})).toEqual([
      1,
      2,
      "1",
      { a: [1, 2], b: 0 },
      [1],
    ]);
    expect(await evaluateExpression("$count($distinct([1..100000].($ % 7)))", {})).toBe(7);
    expect(await evaluateExpression("[$pad('ab', 5, '-+'), $pad('ab', -5), $pad('x', 3, '😀')]", {})).toEqual(["ab-+-", "   ab", "x😀😀"]);
    expect(await evaluateExpression("( $p := $pad(?, 4, '0'); $p('7') )", {})).toBe("7000");
    // JSONata's own $pad would first build 999,999 copies of the 999,999-character padding.
    expect(await evaluateExpression("$length($pad('', 999999, $pad('', 999999, 'ab')))", {})).toBe(999_999);
    expect(await evaluateExpression("$map([1, 2], $string)", {})).toEqual(["1", "2"]);
    expect(await evaluateExpression("[1..1000]^(>$)[0]", {})).toBe(1000);
  });
});

describe("regular expressions (RE2 semantics, linear time)", () => {
  it("runs a catastrophic-backtracking pattern in linear time", async () => {
    expect(await evaluateExpression("$contains($pad('', 29, 'a') & '!', /(a+)+$/)", {})).toBe(false);
    expect(await evaluateExpression("$contains($pad('', 100000, 'a') & '!', /(a+)+$/)", {})).toBe(false);
  });

  it("matches like JavaScript for the common cases: groups, index, flags, \\s with no-break spaces, . and line ends", async () => {
    expect(await evaluateExpression("$match('a1b22', /(\\d)(\\d)?/)", {})).toEqual([
      { match: "1", index: 1, groups: ["1", undefined] },
      { match: "22", index: 3, groups: ["2", "2"] },
    ]);
    expect(await evaluateExpression("$replace('Hello World', /(o)/i, '[$1]')", {})).toBe("Hell[o] W[o]rld");
    expect(await evaluateExpression("$split('a, b,c', /,\\s*/)", {})).toEqual(["a", "b", "c"]);
    expect(await evaluateExpression("$replace('Max\u00a0Mustermann', /\\s+/, ' ')", {})).toBe("Max Mustermann");
    expect(await evaluateExpression("$contains('a\\rb', /a.b/)", {})).toBe(false);
    expect(await evaluateExpression("$match('x\\nab', /^ab$/m).index", {})).toBe(2);
    expect(await evaluateExpression("$contains('price: 10EUR', /(?<=: )\\d+/)", {})).toBe(true);
  });

  it("refuses lookahead and backreferences with a clear error instead of falling back to backtracking", async () => {
    for (const expression of ["$contains('abc', /a(?=b)/)", "$replace('aa', /(a)\\1/, 'x')"]) {
      const err = await refusal(expression);
      expect(err).toMatchObject({ code: "R0001", limit: undefined });
      expect(err.message).toMatch(/linear time/);
      expect(err.position).toBeTypeOf("number");
    }
  });
});

describe("mapping run limits", () => {
  const items = (jsonataExpression: string, field = "$string($)") =>
    parse({ entities: [{ entity_schema: "contact", unique_ids: ["external_id"], jsonataExpression, fields: [{ attribute: "external_id", jsonataExpression: field }] }] });

  it("refuses a pre-processing expression that yields more than 1,000 items", async () => {
    const err = await runMapping(items("[1..5000]"), {}).catch((e) => e);
    expect(err).toBeInstanceOf(MappingError);
    expect(err.limit).toBe("max_mapping_items");
    expect(err.details).toMatchObject({ path: "entities.0.jsonataExpression", limit: "max_mapping_items", value: 1000, jsonata_code: "L1006" });
    expect((await runMapping(items("[1..1000]"), {})).entity_updates).toHaveLength(1000);
  });

  it("refuses a run whose output would exceed 1 MB of JSON, field by field", async () => {
    const err = await runMapping(items("[1..100]", "$pad($string($), 20000, 'x')"), {}).catch((e) => e);
    expect(err.details).toMatchObject({ limit: "max_output_bytes", value: 1_000_000, jsonata_code: "L1005", entity_schema: "contact", attribute: "external_id" });
  });

  it("charges all expressions of a run to one budget", async () => {
    const err = await runMapping(items("[1..1000]", "$string($sum([1..100].($ * 2)))"), {}, { limits: { maxTotalSteps: 20_000 } }).catch((e) => e);
    expect(err.details).toMatchObject({ limit: "max_total_steps", value: 20_000, jsonata_code: "D1012" });
  });

  it("carries an expression's limit into the MappingError", async () => {
    const err = await runMapping(contact([{ attribute: "x", jsonataExpression: "$pad('', 100000000, 'x')" }]), { id: "1" }).catch((e) => e);
    expect(err.details).toMatchObject({ path: "entities.0.fields.1.jsonataExpression", limit: "max_string_length", value: DEFAULT_BOUNDS.maxStringLength, jsonata_code: "L1001" });
  });
});

describe("hostile payloads", () => {
  const xmlError = (text: string) => {
    try {
      parseXml(text);
    } catch (err) {
      if (err instanceof PayloadError) return err;
      throw err;
    }
    throw new Error("expected a PayloadError");
  };

  it("refuses a DOCTYPE: no entity expansion, no external entities", () => {
    const billion = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>';
    const external = '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/x.dtd"><r>1</r>';
    for (const text of [billion, external]) expect(xmlError(text).message).toMatch(/DOCTYPE/);
    expect(parseXml("<r>&lt;&amp;&gt;</r>")).toEqual({ r: "<&>" });
  });

  it("refuses XML and JSON nested more than 100 levels before parsing (10,000 levels overflowed the parser)", () => {
    const deepXml = "<a>".repeat(10_000) + "x" + "</a>".repeat(10_000);
    expect(xmlError(deepXml).details).toMatchObject({ format: "xml", limit: "max_payload_depth", value: 100 });
    expect(() => parseXml("<a>".repeat(100) + "</a>".repeat(100))).not.toThrow();
    expect(() => parsePayload("json", "[".repeat(10_000) + "]".repeat(10_000))).toThrow(PayloadError);
    expect(parsePayload("json", '{"a":"[[[[[[","b":[[1]]}')).toEqual({ a: "[[[[[[", b: [[1]] });
    let value: unknown = 1;
    for (let i = 0; i < 10_000; i++) value = [value];
    expect(() => parsePayload("json", value)).toThrow(PayloadError);
  });

  it("reads markup boundaries correctly: comments, CDATA and '>' inside attribute values", () => {
    expect(parseXml('<?xml version="1.0"?><!-- <x> --><r a="1 > 2"><![CDATA[<b>]]><e/></r>')).toEqual({ r: { "@a": "1 > 2", "#text": "<b>", e: "" } });
  });
});
