// Redaction of personal data in logged payloads, at paths an integration's settings name.
import { hasPrototypeSegment, ownValue, setOwn } from "./paths";

export const REDACTED = "[REDACTED]";

/**
 * Replaces the values at dotted paths (`a.b`, `list.*.email`, optional leading `$.`) with [REDACTED].
 * Only own properties are followed and a path naming `__proto__`, `constructor` or `prototype` is
 * ignored (the settings schema refuses such paths; this guards configurations stored before that).
 */
export function redact(value: unknown, paths: string[]): unknown {
  const copy = structuredClone(value);
  for (const path of paths) {
    if (hasPrototypeSegment(path)) continue;
    const parts = path.replace(/^\$\./, "").split(".");
    const walk = (node: unknown, i: number): void => {
      if (node === null || typeof node !== "object") return;
      const key = parts[i]!;
      const children = key === "*" ? Object.keys(node) : [key];
      for (const k of children) {
        if (!Object.hasOwn(node, k)) continue;
        if (i === parts.length - 1) setOwn(node, k, REDACTED);
        else walk(ownValue(node, k), i + 1);
      }
    };
    walk(copy, 0);
  }
  return copy;
}

/**
 * A JSON payload as it may be logged, with the paths redacted. When paths are set but the text is
 * not valid JSON, nothing of it is kept, since its PII cannot be found. XML payloads are kept as
 * they are: redaction paths address JSON (documented in docs/security.md).
 */
export function redactPayloadText(text: string | null, format: "json" | "xml", paths: string[]): string | null {
  if (text === null || paths.length === 0) return text;
  if (format !== "json") return text;
  try {
    return JSON.stringify(redact(JSON.parse(text), paths));
  } catch {
    return null;
  }
}
