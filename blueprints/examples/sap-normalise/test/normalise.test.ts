// Each conversion of sap-normalise, through the SDK's harness as erp-edge runs the action
// (`npx erp-edge app test blueprints/examples/sap-normalise`), on payloads shaped like SAP's.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runAction } from "@erp-edge/apps-sdk";
import app, { normalise } from "../src/index";

/** Runs the `normalise` action with `config` as the tenant's configuration. */
async function run(input: unknown, config: Record<string, unknown> = {}) {
  return runAction(app, "normalise", input, { config });
}

describe("OData dates", () => {
  test("/Date(ms)/ and /Date(ms+offset)/ become ISO 8601 in UTC, anywhere in the payload", async () => {
    const { output } = await run({
      ERDAT: "/Date(1700000000000)/",
      AEDAT: "/Date(1700000000000+0100)/",
      BEFORE_1970: "/Date(-86400000)/",
      nested: { items: [{ DUE: "/Date(0-0500)/" }] },
    });
    assert.deepEqual(output, {
      ERDAT: "2023-11-14T22:13:20.000Z",
      AEDAT: "2023-11-14T22:13:20.000Z",
      BEFORE_1970: "1969-12-31T00:00:00.000Z",
      nested: { items: [{ DUE: "1970-01-01T00:00:00.000Z" }] },
    });
  });

  test("leaves strings that only look like dates alone", async () => {
    const input = { a: "Date(1700000000000)", b: "/Date(abc)/", c: "/Date(1700000000000)/ ", d: "/Date(99999999999999999)/" };
    assert.deepEqual((await run(input)).output, input);
  });
});

describe("ABAP flags", () => {
  test("'X' becomes true and ' ' or '' false in boolean_fields only", async () => {
    const { output } = await run({ LOEVM: "X", XBLCK: " ", SPERR: "", OTHER: "X", KEEP: "Y" }, { boolean_fields: ["LOEVM", "XBLCK", "SPERR", "KEEP"] });
    assert.deepEqual(output, { LOEVM: true, XBLCK: false, SPERR: false, OTHER: "X", KEEP: "Y" });
  });
});

describe("SAP numbers", () => {
  test("padded and trailing-minus strings become numbers in number_fields only", async () => {
    const { output } = await run(
      { NETWR: "000123.50", DMBTR: "12.50-", WRBTR: "-7", MENGE: " 42 ", ZERO: "0.00-", TEXT: "12 pcs", BOTH: "-1-", OTHER: "000123.50" },
      { number_fields: ["NETWR", "DMBTR", "WRBTR", "MENGE", "ZERO", "TEXT", "BOTH"] },
    );
    assert.deepEqual(output, { NETWR: 123.5, DMBTR: -12.5, WRBTR: -7, MENGE: 42, ZERO: 0, TEXT: "12 pcs", BOTH: "-1-", OTHER: "000123.50" });
  });

  test("applies to every item of an array under the field", async () => {
    const { output } = await run({ AMOUNTS: ["1.00", "2.00-"] }, { number_fields: ["AMOUNTS"] });
    assert.deepEqual(output, { AMOUNTS: [1, -2] });
  });
});

describe("ALPHA keys", () => {
  test("strip_leading_zeros removes the padding of digit-only keys, keeping them strings", async () => {
    const { output } = await run({ KUNNR: "0000012345", MATNR: "000000000000000042", VBELN: "0000000000", LIFNR: "A000123", OTHER: "000077" }, { strip_leading_zeros: ["KUNNR", "MATNR", "VBELN", "LIFNR"] });
    assert.deepEqual(output, { KUNNR: "12345", MATNR: "42", VBELN: "0", LIFNR: "A000123", OTHER: "000077" });
  });
});

describe("the OData v2 envelope", () => {
  const collection = {
    d: {
      __count: "2",
      results: [
        { __metadata: { type: "API_BUSINESS_PARTNER.A_CustomerType" }, Customer: "0000012345", CreationDate: "/Date(1700000000000)/", to_Items: { results: [{ Amount: "5.00-" }] } },
        { __metadata: { type: "API_BUSINESS_PARTNER.A_CustomerType" }, Customer: "0000012346", CreationDate: "/Date(1700086400000)/", to_Items: { results: [] } },
      ],
    },
  };

  test("a collection becomes its records, expanded navigation properties their arrays", async () => {
    const { output, logs } = await run(collection, { strip_leading_zeros: ["Customer"], number_fields: ["Amount"] });
    assert.deepEqual(output, [
      { __metadata: { type: "API_BUSINESS_PARTNER.A_CustomerType" }, Customer: "12345", CreationDate: "2023-11-14T22:13:20.000Z", to_Items: [{ Amount: -5 }] },
      { __metadata: { type: "API_BUSINESS_PARTNER.A_CustomerType" }, Customer: "12346", CreationDate: "2023-11-15T22:13:20.000Z", to_Items: [] },
    ]);
    assert.deepEqual(logs, [{ level: "info", message: "converted dates=2 booleans=0 numbers=1 keys=2 unwrapped=3" }]);
  });

  test("a single entity becomes the entity", async () => {
    const { output } = await run({ d: { Customer: "0000012345", Blocked: "X" } }, { boolean_fields: ["Blocked"] });
    assert.deepEqual(output, { Customer: "0000012345", Blocked: true });
  });

  test("unwrap_odata: false keeps the envelope, and still converts inside it", async () => {
    const { output } = await run(collection, { unwrap_odata: false });
    const d = (output as { d: { __count: string; results: { CreationDate: string; to_Items: unknown }[] } }).d;
    assert.equal(d.__count, "2");
    assert.equal(d.results[0]!.CreationDate, "2023-11-14T22:13:20.000Z");
    assert.deepEqual(d.results[0]!.to_Items, { results: [{ Amount: "5.00-" }] });
  });

  test("an object with other keys beside d is not an envelope", async () => {
    const input = { d: { a: 1 }, error: null };
    assert.deepEqual((await run(input)).output, input);
  });
});

describe("any JSON", () => {
  test("keeps the payload's shape, does not change the input, and walks deep payloads without recursion", () => {
    const input = { a: [1, true, null, 2.5, { b: "/Date(0)/" }] };
    const before = JSON.stringify(input);
    const { payload } = normalise(input);
    assert.equal(JSON.stringify(input), before);
    assert.deepEqual(payload, { a: [1, true, null, 2.5, { b: "1970-01-01T00:00:00.000Z" }] });

    let deep: unknown = "/Date(0)/";
    for (let i = 0; i < 20_000; i++) deep = [deep];
    let out = normalise(deep as never).payload;
    for (let i = 0; i < 20_000; i++) out = (out as unknown[])[0] as never;
    assert.equal(out, "1970-01-01T00:00:00.000Z");
  });

  test("a JSON key named __proto__ stays an ordinary key", () => {
    const parsed = JSON.parse('{"__proto__": {"KUNNR": "0001"}, "KUNNR": "0002"}');
    const { payload } = normalise(parsed, { strip_leading_zeros: ["KUNNR"] });
    assert.equal(Object.getPrototypeOf(payload), Object.prototype);
    assert.deepEqual(Object.keys(payload as object), ["__proto__", "KUNNR"]);
    assert.equal(JSON.stringify(payload), '{"__proto__":{"KUNNR":"1"},"KUNNR":"2"}');
  });

  test("refuses input that is not JSON, and a configuration of the wrong shape", async () => {
    await assert.rejects(run({ when: new Date(0) }), { code: "APP_INPUT_INVALID" });
    await assert.rejects(run({}, { boolean_fields: "LOEVM" }), /boolean_fields/);
  });
});
