// A path diff of two JSON values: every place they differ, named by its dotted path
// (`entity_updates.0.attributes.email.0.email`), with both values.

export interface Difference {
  path: string;
  /** `changed`: both have a value; `missing`: only expected has one; `unexpected`: only actual has one. */
  kind: "changed" | "missing" | "unexpected";
  expected?: unknown;
  actual?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const join = (path: string, key: string | number) => (path ? `${path}.${key}` : String(key));

/** Every difference between two JSON values; object key order does not matter, array order does. */
export function diffValues(expected: unknown, actual: unknown, path = ""): Difference[] {
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const out: Difference[] = [];
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
      if (i >= actual.length) out.push({ path: join(path, i), kind: "missing", expected: expected[i] });
      else if (i >= expected.length) out.push({ path: join(path, i), kind: "unexpected", actual: actual[i] });
      else out.push(...diffValues(expected[i], actual[i], join(path, i)));
    }
    return out;
  }
  if (isObject(expected) && isObject(actual)) {
    const out: Difference[] = [];
    for (const key of Object.keys(expected)) {
      if (!Object.hasOwn(actual, key)) out.push({ path: join(path, key), kind: "missing", expected: expected[key] });
      else out.push(...diffValues(expected[key], actual[key], join(path, key)));
    }
    for (const key of Object.keys(actual)) {
      if (!Object.hasOwn(expected, key)) out.push({ path: join(path, key), kind: "unexpected", actual: actual[key] });
    }
    return out;
  }
  return Object.is(expected, actual) ? [] : [{ path, kind: "changed", expected, actual }];
}

const show = (value: unknown, max = 400) => {
  const text = JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
};

/** Readable lines for a list of differences, indented by `indent`. */
export function formatDifferences(differences: Difference[], indent = "  "): string[] {
  const lines: string[] = [];
  for (const d of differences) {
    if (d.kind === "changed") {
      lines.push(`${indent}${d.path || "(the whole value)"}`, `${indent}  expected: ${show(d.expected)}`, `${indent}  actual:   ${show(d.actual)}`);
    } else if (d.kind === "missing") {
      lines.push(`${indent}${d.path}: missing from the result`, `${indent}  expected: ${show(d.expected)}`);
    } else {
      lines.push(`${indent}${d.path}: not expected`, `${indent}  actual:   ${show(d.actual)}`);
    }
  }
  return lines;
}
