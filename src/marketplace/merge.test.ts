import { describe, expect, it } from "vitest";
import { deepEqual, diffValues, merge3 } from "./merge";

describe("deepEqual", () => {
  it("ignores key order and undefined properties, not array order", () => {
    expect(deepEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(deepEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual({ a: [] }, { a: {} })).toBe(false);
    expect(deepEqual(null, undefined)).toBe(false);
  });
});

describe("merge3", () => {
  it("keeps the tenant's change where the new version left the field alone", () => {
    expect(merge3({ name: "A" }, { name: "Mine" }, { name: "A" })).toEqual({ value: { name: "Mine" }, conflicts: [] });
  });

  it("takes the new version's change where the tenant left the field alone", () => {
    expect(merge3({ name: "A" }, { name: "A" }, { name: "B" })).toEqual({ value: { name: "B" }, conflicts: [] });
  });

  it("merges disjoint changes inside nested objects", () => {
    const base = { configuration: { filter: "x", options: { retries: 1, timeout: 5 } } };
    const current = { configuration: { filter: "mine", options: { retries: 1, timeout: 5 } } };
    const incoming = { configuration: { filter: "x", options: { retries: 3, timeout: 5 }, added: true } };
    expect(merge3(base, current, incoming)).toEqual({ value: { configuration: { filter: "mine", options: { retries: 3, timeout: 5 }, added: true } }, conflicts: [] });
  });

  it("reports both sides' values for a field both changed, and keeps current", () => {
    const { value, conflicts } = merge3({ a: { b: 1 }, c: 1 }, { a: { b: 2 }, c: 1 }, { a: { b: 3 }, c: 2 });
    expect(value).toEqual({ a: { b: 2 }, c: 2 });
    expect(conflicts).toEqual([{ path: "a.b", base: 1, current: 2, incoming: 3 }]);
  });

  it("treats arrays as atomic values", () => {
    const { value, conflicts } = merge3({ list: [1, 2] }, { list: [1, 2, 3] }, { list: [0, 1, 2] });
    expect(value).toEqual({ list: [1, 2, 3] });
    expect(conflicts).toEqual([{ path: "list", base: [1, 2], current: [1, 2, 3], incoming: [0, 1, 2] }]);
    expect(merge3([1], [1], [2]).value).toEqual([2]);
  });

  it("agrees silently when both sides made the same change", () => {
    expect(merge3({ a: 1 }, { a: 2 }, { a: 2 })).toEqual({ value: { a: 2 }, conflicts: [] });
  });

  it("handles fields added and removed on either side", () => {
    // The new version removes `old`, the tenant did not touch it: it goes.
    expect(merge3({ old: 1, keep: 1 }, { old: 1, keep: 1 }, { keep: 1 }).value).toEqual({ keep: 1 });
    // The tenant removed `old`, the new version changed it: conflict, stays removed.
    const removed = merge3({ old: 1 }, {}, { old: 2 });
    expect(removed.value).toEqual({});
    expect(removed.conflicts).toEqual([{ path: "old", base: 1, current: null, incoming: 2 }]);
    // Both added the same key with different values: conflict (no base value).
    expect(merge3({}, { x: "a" }, { x: "b" }).conflicts).toEqual([{ path: "x", base: null, current: "a", incoming: "b" }]);
  });

  it("keeps a type change of the tenant against a changed object as one conflict", () => {
    expect(merge3({ a: { b: 1 } }, { a: "text" }, { a: { b: 2 } }).conflicts).toEqual([{ path: "a", base: { b: 1 }, current: "text", incoming: { b: 2 } }]);
  });

  it("keeps keys such as __proto__ as data", () => {
    const base = JSON.parse('{"__proto__": {"x": 1}}');
    const incoming = JSON.parse('{"__proto__": {"x": 2}}');
    const { value } = merge3(base, base, incoming);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(JSON.stringify(value)).toBe('{"__proto__":{"x":2}}');
    const merged = merge3({ a: 1 }, { a: 2 }, JSON.parse('{"a": 1, "__proto__": {"polluted": true}}'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(merged.value as object, "__proto__")).toBe(true);
  });
});

describe("diffValues", () => {
  it("lists changed leaves by dotted path, arrays whole", () => {
    expect(diffValues({ a: 1, b: { c: [1], d: "x" } }, { a: 1, b: { c: [2], e: true } })).toEqual([
      { path: "b.c", from: [1], to: [2] },
      { path: "b.d", from: "x", to: null },
      { path: "b.e", from: null, to: true },
    ]);
    expect(diffValues(null, { a: 1 })).toEqual([{ path: "", from: null, to: { a: 1 } }]);
    expect(diffValues({ a: 1 }, { a: 1 })).toEqual([]);
  });
});
