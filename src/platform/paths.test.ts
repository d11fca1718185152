// Path walking over own properties only: the prototype keys are never followed.
import { describe, expect, it } from "vitest";
import { hasPrototypeSegment, ownValue, setOwn } from "./paths";

describe("user paths", () => {
  it("flags prototype keys anywhere in a path", () => {
    expect(hasPrototypeSegment("__proto__.toString")).toBe(true);
    expect(hasPrototypeSegment("$.a.constructor.prototype")).toBe(true);
    expect(hasPrototypeSegment("list[0].prototype")).toBe(true);
    expect(hasPrototypeSegment("customer.iban")).toBe(false);
    expect(hasPrototypeSegment("contacts.*.email")).toBe(false);
  });

  it("reads own properties only", () => {
    const parsed = JSON.parse('{"a":1,"__proto__":{"x":1}}');
    expect(ownValue(parsed, "a")).toBe(1);
    expect(ownValue(parsed, "__proto__")).toBeUndefined();
    expect(ownValue({}, "toString")).toBeUndefined();
    expect(ownValue({}, "constructor")).toBeUndefined();
    expect(ownValue([1, 2], "1")).toBe(2);
    expect(ownValue("text", "length")).toBeUndefined();
  });

  it("sets __proto__ as data, never as the prototype", () => {
    const o: Record<string, unknown> = {};
    setOwn(o, "__proto__", { polluted: true });
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(o)).toBe('{"__proto__":{"polluted":true}}');
  });
});
