// Builds a deterministic request value from an OpenAPI schema, for operations without an example.
import { deref, type Node, type OpenApiDocument } from "./openapi";

/** What the generator writes for a string of a given format (no randomness: every run sends the same). */
const FORMATS: Record<string, string> = {
  uuid: "3fa85f64-5717-4562-b3fc-2c963f66afa6",
  "date-time": "2025-01-01T00:00:00.000Z",
  date: "2025-01-01",
  email: "contract-test@example.com",
  uri: "https://example.com/contract-test",
  url: "https://example.com/contract-test",
  hostname: "example.com",
};

/** Candidates tried, in order, for a string with a pattern and no example. */
const PATTERN_CANDIDATES = ["contract-test", "contract_test", "contracttest", "CONTRACT_TEST", "ContractTest", "a1", "1.0", "1"];

/**
 * The smallest value the schema accepts, built the same way every time: a schema's own `example`
 * first, then `const`, its first `enum` value, or a value of its type (formats uuid/date-time/email/uri,
 * `minimum`, `minItems`, `minLength`, a pattern-matching candidate). Objects get their required
 * properties only (readOnly ones skipped: this is a request); allOf branches are merged; oneOf/anyOf
 * take their first branch, with the discriminator property set to that branch's mapping key.
 *
 * @example generateValue(doc, { $ref: "#/components/schemas/ReplayEventsRequest" }) // { event_ids: ["contract-test"] }
 */
export function generateValue(doc: OpenApiDocument, schema: Node, depth = 0): unknown {
  if (depth > 24) throw new Error("schema nests too deep to generate a value");
  const s = flatten(doc, schema);
  if (s.example !== undefined) return structuredClone(s.example);
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : (s.type ?? (s.properties || s.required ? "object" : undefined));
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const name of s.required ?? []) {
        const property = s.properties?.[name] ? deref(doc, s.properties[name]) : {};
        if (property.readOnly === true) continue;
        out[name] = generateValue(doc, property, depth + 1);
      }
      for (let i = Object.keys(out).length; i < (s.minProperties ?? 0); i++) {
        out[`key${i}`] = s.additionalProperties && typeof s.additionalProperties === "object" ? generateValue(doc, s.additionalProperties, depth + 1) : "value";
      }
      return out;
    }
    case "array":
      return Array.from({ length: s.minItems ?? 0 }, () => generateValue(doc, s.items ?? {}, depth + 1));
    case "integer":
    case "number":
      return typeof s.minimum === "number" ? (s.exclusiveMinimum === true ? s.minimum + 1 : s.minimum) : Math.min(1, s.maximum ?? 1);
    case "boolean":
      return true;
    case "string":
      return stringFor(s);
    default:
      // No type at all (e.g. "any JSON value"): a plain string is as good a value as any.
      return "contract-test";
  }
}

function stringFor(s: Node): string {
  if (s.format && FORMATS[s.format]) return FORMATS[s.format]!;
  const fits = (v: string) =>
    v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? Infinity) && (!s.pattern || new RegExp(s.pattern, "u").test(v));
  const padded = "contract-test".padEnd(s.minLength ?? 0, "x");
  return [padded, ...PATTERN_CANDIDATES].find(fits) ?? padded;
}

/**
 * One schema object with its $ref resolved, its allOf branches merged in (properties and required
 * united), and the first branch of a oneOf/anyOf merged the same way. Where the oneOf carries a
 * discriminator, its property is pinned to the chosen branch's mapping key.
 */
function flatten(doc: OpenApiDocument, schema: Node): Node {
  const s = deref(doc, schema);
  const { allOf, oneOf, anyOf, discriminator, ...own } = s;
  let merged: Node = { ...own, properties: { ...own.properties }, required: [...(own.required ?? [])] };
  const mergeIn = (branch: Node) => {
    const b = flatten(doc, branch);
    merged = {
      ...b,
      ...merged,
      type: merged.type ?? b.type,
      properties: { ...b.properties, ...merged.properties },
      required: [...new Set([...merged.required, ...(b.required ?? [])])],
    };
  };
  for (const branch of allOf ?? []) mergeIn(branch);
  const choice = (oneOf ?? anyOf)?.[0];
  if (choice) {
    mergeIn(choice);
    const key = discriminator?.propertyName;
    const mapped = key && Object.entries<string>(discriminator.mapping ?? {}).find(([, ref]) => ref === choice.$ref)?.[0];
    if (key && mapped) {
      merged.properties[key] = { type: "string", enum: [mapped] };
      if (!merged.required.includes(key)) merged.required.push(key);
    }
  }
  if (!Object.keys(merged.properties).length) delete merged.properties;
  if (!merged.required.length) delete merged.required;
  return merged;
}
