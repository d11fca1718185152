// Unit tests of the mapping engine, one option at a time, happy and unhappy.
import { describe, expect, it } from "vitest";
import { runMapping, MappingError } from "./engine";
import { evaluateExpression, ExpressionError } from "./expression";
import { parseXml } from "./payload";
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
    expect(result.entity_updates[0]!.attributes.custom_download_url).toBe("https://edge.example/v1/files/INT1/invoices?doc=D+1&kind=pdf");
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
    await expect(evaluateExpression(loop, {}, { bounds: { maxDepth: 500, maxSteps: 10_000 } })).rejects.toMatchObject({ code: "D1012" });
  });

  it("stops deep recursion at the depth bound", async () => {
    const deep = "( $f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000) )";
    await expect(evaluateExpression(deep, {})).rejects.toBeInstanceOf(ExpressionError);
    await expect(evaluateExpression(deep, {})).rejects.toMatchObject({ code: "D1011" });
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
