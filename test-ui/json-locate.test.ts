// The mapping editor's position-keeping JSON parser (src/hub/client/json-locate.ts), in Node.
import { describe, expect, it } from "vitest";
import { parseWithPositions } from "../src/hub/client/json-locate";

const config = `{
  "entities": [
    {
      "entity_schema": "contact",
      "fields": [
        { "attribute": "a", "field": "x" },
        { "attribute": "b", "jsonataExpression": "$$.(" }
      ]
    }
  ],
  "a.b": { "c": 1 }
}`;

describe("parseWithPositions", () => {
  it("locates values by path, falling back to the nearest ancestor", () => {
    const parsed = parseWithPositions(config);
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.value).toEqual(JSON.parse(config));
    expect(parsed.locate(["entities", 0, "fields", 1, "jsonataExpression"])).toEqual({ line: 7, column: 50, exact: true });
    expect(parsed.locate(["entities", "0", "entity_schema"])).toMatchObject({ line: 4, exact: true });
    // A missing property (a required key the API says is absent) points at its object.
    expect(parsed.locate(["entities", 0, "unique_ids"])).toEqual({ line: 3, column: 5, exact: false });
    // Keys with dots are not split.
    expect(parsed.locate(["a.b", "c"])).toMatchObject({ line: 11, exact: true });
    expect(parsed.locate([])).toEqual({ line: 1, column: 1, exact: true });
  });

  it("reports the line and column of the first syntax error", () => {
    const broken = config.replace('"field": "x" }', '"field": "x", }');
    const parsed = parseWithPositions(broken);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatchObject({ line: 6, message: "Trailing comma before '}'" });
    for (const text of ["", "{", '{"a": 1,}', "[1,]", '{"a": tru}', '"\n"', "{} x", "01"]) {
      const p = parseWithPositions(text);
      expect(p.ok, text).toBe(false);
      expect(() => JSON.parse(text), text).toThrow();
    }
    for (const text of ["0", "-1.5e3", '"\\u00e9"', "[]", "{}", ' {"a":[null,true,false]} ']) {
      const p = parseWithPositions(text);
      expect(p.ok, text).toBe(true);
    }
  });
});
