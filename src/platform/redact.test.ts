// Redaction of logged payloads: paths, wildcards, own properties only, and unreadable text dropped.
import { describe, expect, it } from "vitest";
import { REDACTED, redact, redactPayloadText } from "./redact";

describe("redact", () => {
  it("replaces values at dotted paths and wildcards without touching the input", () => {
    const input = { customer: { iban: "DE89", name: "Jane" }, contacts: [{ email: "a@x" }, { email: "b@x", phone: "1" }] };
    const out = redact(input, ["customer.iban", "$.contacts.*.email", "missing.path"]);
    expect(out).toEqual({ customer: { iban: REDACTED, name: "Jane" }, contacts: [{ email: REDACTED }, { email: REDACTED, phone: "1" }] });
    expect(input.customer.iban).toBe("DE89");
  });

  it("never walks into or writes a prototype, even for a payload's own __proto__ key", () => {
    const payload = JSON.parse('{"__proto__":{"toString":"x"},"a":{"constructor":{"prototype":{"p":1}}}}');
    const out = redact(payload, ["__proto__.toString", "a.constructor.prototype.p", "toString", "a.hasOwnProperty"]) as Record<string, unknown>;
    expect(typeof Object.prototype.toString).toBe("function");
    expect(JSON.stringify(out)).toBe(JSON.stringify(payload));
    expect(Object.hasOwn(out, "toString")).toBe(false);
  });

  it("redacts JSON text, drops unreadable JSON when paths are set, and leaves XML as it is", () => {
    expect(redactPayloadText('{"email":"a@x"}', "json", ["email"])).toBe('{"email":"[REDACTED]"}');
    expect(redactPayloadText("{broken", "json", ["email"])).toBeNull();
    expect(redactPayloadText("{broken", "json", [])).toBe("{broken");
    expect(redactPayloadText("<a><email>a@x</email></a>", "xml", ["email"])).toBe("<a><email>a@x</email></a>");
  });
});
