// Type descriptors written as TypeScript declarations. Nothing taken from a configuration is ever
// written as code: property names are identifiers or JSON string literals, interface names are
// built from letters and digits only, and annotation types come from a closed grammar (schema.ts).
import type { TypeDescriptor } from "./shapes";

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A property name as TypeScript reads it: bare when an identifier, else a quoted string literal. */
export function propertyName(name: string): string {
  // JSON.stringify escapes quotes, backslashes and control characters; U+2028/2029 are escaped too
  // so no editor or older parser sees a line break inside the literal.
  return IDENTIFIER.test(name) ? name : JSON.stringify(name).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** "get-vendors" -> "GetVendors": letters and digits only, never starting with a digit. */
export function pascalName(text: string, fallback: string): string {
  const words = text.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const name = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
  if (!name) return fallback;
  return /^[0-9]/.test(name) ? `${fallback}${name}` : name;
}

/**
 * A descriptor as a TypeScript type, `indent` deep. `annotations` (dot-paths such as "vendors[].id")
 * replace the inferred type at their path; each one used is added to `used`.
 */
export function typeText(d: TypeDescriptor, indent: string, annotations: Record<string, string> = {}, used = new Set<string>(), at = ""): string {
  if (at && Object.hasOwn(annotations, at)) {
    used.add(at);
    return annotations[at]!;
  }
  switch (d.kind) {
    case "object": {
      const entries = Object.entries(d.properties ?? {});
      if (entries.length === 0) return "Record<string, unknown>";
      const inner = `${indent}  `;
      const lines = entries.map(([k, v]) => `${inner}${propertyName(k)}?: ${typeText(v, inner, annotations, used, at ? `${at}.${k}` : k)};`);
      return `{\n${lines.join("\n")}\n${indent}}`;
    }
    case "array": {
      const item = typeText(d.items ?? { kind: "unknown" }, indent, annotations, used, `${at}[]`);
      return /^[A-Za-z]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
    }
    case "union": {
      const variants = (d.variants ?? []).map((v) => typeText(v, indent, annotations, used, at));
      return variants.length ? [...new Set(variants)].join(" | ") : "unknown";
    }
    case "string":
    case "number":
    case "boolean":
    case "null":
    case "unknown":
      return d.kind;
  }
}

/** `export interface Name { … }` for an object descriptor, else `export type Name = …;`. */
export function declaration(name: string, d: TypeDescriptor, annotations: Record<string, string> = {}, used = new Set<string>()): string {
  const text = typeText(d, "", annotations, used);
  return text.startsWith("{\n") ? `export interface ${name} ${text}\n` : `export type ${name} = ${text};\n`;
}
