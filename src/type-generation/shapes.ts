// Type descriptors (epilot's TypeDescriptor) of what an integration's use cases read and produce,
// inferred from their JSONata and field mappings without running them: the paths a mapping reads
// become the request shape, the literal structure an expression builds becomes the response shape.
// Whatever cannot be known statically is `unknown`, with the JSONata source that produced it.
import { CORE_SCHEMAS, type AttributeType } from "../mapping/entity-schemas";
import { compileExpression, ExpressionError } from "../mapping/expression";
import { isPrototypeKey } from "../platform/paths";
import { templateNames } from "../platform/template";

export interface TypeDescriptor {
  kind: "object" | "array" | "string" | "number" | "boolean" | "null" | "unknown" | "union";
  properties?: Record<string, TypeDescriptor>;
  items?: TypeDescriptor;
  source?: string;
  variants?: TypeDescriptor[];
}

/** A JSONata AST node, as far as these functions read it. */
interface Node {
  type: string;
  value?: unknown;
  steps?: Node[];
  stages?: { type: string; expr?: Node }[];
  predicate?: { type: string; expr?: Node }[];
  lhs?: Node | [Node, Node][];
  rhs?: Node;
  expressions?: Node[];
  arguments?: Node[];
  procedure?: Node;
  condition?: Node;
  then?: Node;
  else?: Node;
  expr?: Node;
}

const unknown = (source?: string): TypeDescriptor => ({ kind: "unknown", ...(source && { source }) });

/** A properties map that cannot gain a prototype, whatever the keys. */
function props(): Record<string, TypeDescriptor> {
  return Object.create(null) as Record<string, TypeDescriptor>;
}

export const objectOf = (entries: [string, TypeDescriptor][]): TypeDescriptor => {
  const properties = props();
  for (const [k, v] of entries) properties[k] = v;
  return { kind: "object", properties };
};

function ast(expression: string): Node | null {
  try {
    return compileExpression(expression).expression.ast() as unknown as Node;
  } catch (err) {
    if (err instanceof ExpressionError) return null;
    throw err;
  }
}

const STRING_FUNCTIONS = new Set(["string", "substring", "substringBefore", "substringAfter", "lowercase", "uppercase", "trim", "pad", "join", "replace", "base64encode", "base64decode", "encodeUrl", "encodeUrlComponent", "decodeUrl", "decodeUrlComponent", "now", "fromMillis", "formatNumber", "formatBase", "formatInteger", "type"]);
const NUMBER_FUNCTIONS = new Set(["number", "count", "sum", "max", "min", "average", "length", "round", "floor", "ceil", "abs", "power", "sqrt", "random", "toMillis", "parseInteger", "millis"]);
const BOOLEAN_FUNCTIONS = new Set(["boolean", "not", "exists", "contains"]);
const ARRAY_FUNCTIONS = new Set(["keys", "split", "map", "filter", "sort", "reverse", "append", "distinct", "zip", "shuffle"]);

/** Dotted text of a path's leading name steps, e.g. "customer.address.city". */
function leadingNames(node: Node): string[] {
  const names: string[] = [];
  for (const step of node.steps ?? []) {
    if (step.type !== "name" || typeof step.value !== "string") break;
    names.push(step.value);
  }
  return names;
}

function union(variants: TypeDescriptor[]): TypeDescriptor {
  const seen = new Map<string, TypeDescriptor>();
  for (const v of variants.flatMap((d) => (d.kind === "union" ? d.variants ?? [] : [d]))) {
    const key = JSON.stringify(v);
    if (!seen.has(key)) seen.set(key, v);
  }
  const list = [...seen.values()];
  return list.length === 1 ? list[0]! : { kind: "union", variants: list };
}

/** What an expression produces, as far as its literal structure tells. */
export function outputShape(expression: string | undefined): TypeDescriptor {
  if (expression === undefined) return unknown();
  const root = ast(expression);
  return root ? shapeOf(root, 0) : unknown(expression.slice(0, 200));
}

function shapeOf(node: Node, depth: number): TypeDescriptor {
  if (depth > 50) return unknown();
  const next = (n: Node | undefined) => (n ? shapeOf(n, depth + 1) : unknown());
  switch (node.type) {
    case "string":
      return { kind: "string" };
    case "number":
      return { kind: "number" };
    case "value":
      return node.value === null ? { kind: "null" } : typeof node.value === "boolean" ? { kind: "boolean" } : unknown();
    case "unary":
      if (node.value === "{") {
        const entries: [string, TypeDescriptor][] = [];
        for (const [key, value] of (node.lhs as [Node, Node][] | undefined) ?? []) {
          if (key.type === "string" && typeof key.value === "string" && !isPrototypeKey(key.value)) entries.push([key.value, next(value)]);
        }
        return objectOf(entries);
      }
      if (node.value === "[") return { kind: "array", items: node.expressions?.length ? union(node.expressions.map(next)) : unknown() };
      if (node.value === "-") return { kind: "number" };
      return unknown();
    case "binary": {
      const op = String(node.value);
      if (["+", "-", "*", "/", "%"].includes(op)) return { kind: "number" };
      if (["=", "!=", "<", "<=", ">", ">=", "and", "or", "in"].includes(op)) return { kind: "boolean" };
      if (op === "&") return { kind: "string" };
      if (op === "..") return { kind: "array", items: { kind: "number" } };
      return unknown();
    }
    case "condition":
      return node.else ? union([next(node.then), next(node.else)]) : next(node.then);
    case "block":
      return node.expressions?.length ? next(node.expressions[node.expressions.length - 1]) : unknown();
    case "bind":
      return next(node.rhs);
    case "function":
    case "partial": {
      const name = node.procedure?.type === "variable" ? String(node.procedure.value) : "";
      if (STRING_FUNCTIONS.has(name)) return { kind: "string" };
      if (NUMBER_FUNCTIONS.has(name)) return { kind: "number" };
      if (BOOLEAN_FUNCTIONS.has(name)) return { kind: "boolean" };
      if (ARRAY_FUNCTIONS.has(name)) return { kind: "array", items: unknown() };
      return unknown(`$${name}(…)`);
    }
    case "path": {
      const last = node.steps?.[node.steps.length - 1];
      // `items.{ … }` maps each item: an array of what the constructor builds (`$.{ … }` builds one).
      if (last && last.type === "unary") return node.steps!.some((s) => s.type === "name") ? { kind: "array", items: next(last) } : next(last);
      const names = leadingNames(node);
      return unknown(names.length ? names.join(".") : undefined);
    }
    case "name":
      return unknown(typeof node.value === "string" ? node.value : undefined);
    case "variable":
      return unknown(`$${String(node.value)}`);
    default:
      return unknown();
  }
}

/** A tree of the payload paths something reads, leaves `unknown` with their path. */
export class InputShape {
  private readonly root: TypeDescriptor = { kind: "object", properties: props() };

  /** Records that `path` (segments; "[]" marks an array element) is read. */
  add(path: string[]): void {
    let node = this.root;
    const at: string[] = [];
    for (const [i, segment] of path.entries()) {
      if (isPrototypeKey(segment)) return;
      const last = i === path.length - 1;
      if (segment === "[]") {
        if (node.kind !== "array") return;
        if (last) return;
        node.items = node.items?.kind === "object" ? node.items : { kind: "object", properties: props() };
        node = node.items;
        at.push("[]");
        continue;
      }
      at.push(segment);
      if (node.kind !== "object") return;
      const props_ = (node.properties ??= props());
      const arrayNext = path[i + 1] === "[]";
      const existing = props_[segment];
      if (last) {
        if (!existing) props_[segment] = unknown(at.join("."));
        return;
      }
      if (arrayNext) {
        if (existing?.kind !== "array") props_[segment] = { kind: "array", items: unknown(`${at.join(".")}[]`) };
      } else if (existing?.kind !== "object") props_[segment] = { kind: "object", properties: props() };
      node = props_[segment]!;
    }
  }

  /** Records every payload path a JSONata expression reads from its input. */
  addExpression(expression: string | undefined, prefix: string[] = []): void {
    if (expression === undefined) return;
    const root = ast(expression);
    if (root) this.walk(root, prefix, 0);
  }

  /** Records a mapping's `field` (a key, or a dotted path after `$.`). */
  addField(field: string | undefined): void {
    if (field === undefined) return;
    this.add(field.startsWith("$.") ? field.slice(2).split(".") : [field]);
  }

  /** Records the top-level names a template reads (env.* excluded: it is the integration's, not the caller's). */
  addTemplate(template: string | undefined): void {
    if (template === undefined) return;
    let names: string[] = [];
    try {
      names = templateNames(template);
    } catch {
      return;
    }
    for (const name of names) if (name !== "." && !name.startsWith("env.") && name !== "env") this.add(name.split("."));
  }

  private walk(node: Node, prefix: string[], depth: number): void {
    if (depth > 50 || !node || typeof node !== "object") return;
    const walk = (n: Node | undefined, p = prefix) => n && this.walk(n, p, depth + 1);
    if (node.type === "path" || node.type === "name") {
      const steps = node.type === "name" ? [node] : node.steps ?? [];
      const path = [...prefix];
      let i = 0;
      for (; i < steps.length && steps[i]!.type === "name"; i++) {
        const step = steps[i]!;
        path.push(String(step.value));
        const filters = [...(step.stages ?? []), ...(step.predicate ?? [])];
        if (filters.length) {
          path.push("[]");
          for (const f of filters) walk(f.expr, path.slice());
        }
      }
      if (i > 0) this.add(path[path.length - 1] === "[]" ? path.slice(0, -1) : path);
      for (const step of steps.slice(i)) walk(step, i > 0 ? path : prefix);
      return;
    }
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) for (const v of value.flat()) walk(v as Node);
      else if (value && typeof value === "object") walk(value as Node);
    }
  }

  get shape(): TypeDescriptor {
    return this.root;
  }
}

/** The descriptor of a core entity attribute type. */
export function attributeShape(type: AttributeType): TypeDescriptor {
  switch (type) {
    case "string":
    case "date":
      return { kind: "string" };
    case "number":
      return { kind: "number" };
    case "boolean":
      return { kind: "boolean" };
    case "email":
      return { kind: "array", items: objectOf([["email", { kind: "string" }]]) };
    case "phone":
      return { kind: "array", items: objectOf([["phone", { kind: "string" }]]) };
    case "relation":
      return objectOf([["$relation", { kind: "array", items: objectOf([["entity_id", { kind: "string" }]]) }]]);
    case "array":
      return { kind: "array", items: unknown() };
    case "object":
    case "address":
      return { kind: "object" };
  }
}

/** What a mapped attribute holds: the core schema's type when it has one, else what its source tells. */
export function mappedAttributeShape(schema: string, attribute: string, source: { constant?: unknown; jsonataExpression?: string; field?: string; relations?: unknown }): TypeDescriptor {
  const known = Object.hasOwn(CORE_SCHEMAS, schema) && Object.hasOwn(CORE_SCHEMAS[schema]!.attributes, attribute) ? CORE_SCHEMAS[schema]!.attributes[attribute] : undefined;
  if (known) return attributeShape(known);
  if (source.relations !== undefined) return attributeShape("relation");
  if (source.constant !== undefined) return literalShape(source.constant);
  if (source.jsonataExpression !== undefined) return outputShape(source.jsonataExpression);
  return unknown(source.field);
}

function literalShape(value: unknown): TypeDescriptor {
  if (value === null) return { kind: "null" };
  if (typeof value === "string") return { kind: "string" };
  if (typeof value === "number") return { kind: "number" };
  if (typeof value === "boolean") return { kind: "boolean" };
  if (Array.isArray(value)) return { kind: "array", items: value.length ? union(value.map(literalShape)) : unknown() };
  if (typeof value === "object") return objectOf(Object.entries(value).filter(([k]) => !isPrototypeKey(k)).map(([k, v]) => [k, literalShape(v)]));
  return unknown();
}

/** Every leaf of a descriptor by dot-path ("vendors[].id"), with its kind: what change detection compares. */
export function leaves(d: TypeDescriptor, at = "", out = new Map<string, string>()): Map<string, string> {
  if (d.kind === "object" && d.properties && Object.keys(d.properties).length) {
    for (const [k, v] of Object.entries(d.properties)) leaves(v, at ? `${at}.${k}` : k, out);
  } else if (d.kind === "array" && d.items) leaves(d.items, `${at}[]`, out);
  else out.set(at, d.kind === "union" ? (d.variants ?? []).map((v) => v.kind).sort().join("|") : d.kind);
  return out;
}
