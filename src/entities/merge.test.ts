// Merging an update into an entity's attributes: own properties only, whatever the attribute names.
import { describe, expect, it } from "vitest";
import { mergeAttributes } from "./merge";

describe("mergeAttributes", () => {
  it("treats prototype-named attributes as plain data and never reads inherited values", () => {
    const update = JSON.parse('{"__proto__":{"polluted":true},"constructor":"x","toString":"y","name":"Jane"}');
    const { next, changes } = mergeAttributes({}, update);
    expect(Object.getPrototypeOf(next)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(next)).toBe('{"__proto__":{"polluted":true},"constructor":"x","toString":"y","name":"Jane"}');
    // "toString" was not there before: its previous value is absent, not Object.prototype.toString.
    expect(changes.toString).toEqual({ from: undefined, to: "y" });
  });

  it("appends to existing lists and reports only real changes", () => {
    const { next, changes } = mergeAttributes({ tags: ["a"], name: "Jane" }, { tags: { _append: ["a", "b"] }, name: "Jane" });
    expect(next).toEqual({ tags: ["a", "b"], name: "Jane" });
    expect(Object.keys(changes)).toEqual(["tags"]);
  });
});
