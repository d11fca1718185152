// Reads epilot's OpenAPI 3.0 document: its operations, their request examples, and strict JSON Schema
// validators for its schemas (converted with @openapi-contrib/openapi-schema-to-json-schema, checked
// with @cfworker/json-schema, which runs in workerd without eval).
import { Validator, type OutputUnit, type Schema } from "@cfworker/json-schema";
import { fromSchema } from "@openapi-contrib/openapi-schema-to-json-schema";

/** An OpenAPI schema, parameter, response or request body object: the document is plain JSON. */
export type Node = Record<string, any>;

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Node>>;
  components: { schemas: Record<string, Node>; responses?: Record<string, Node> };
}

export interface Operation {
  operationId: string;
  method: string;
  path: string;
  node: Node;
}

const METHODS = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];

/** Every path × method of the document, in document order. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const node = item[method];
      if (node) out.push({ operationId: node.operationId ?? `${method} ${path}`, method: method.toUpperCase(), path, node });
    }
  }
  return out;
}

/** Follows a local `$ref` chain ("#/components/...") to the object it names. */
export function deref(doc: OpenApiDocument, node: Node): Node {
  let at = node;
  for (let hops = 0; at && typeof at.$ref === "string"; hops++) {
    if (hops > 20 || !at.$ref.startsWith("#/")) throw new Error(`unresolvable $ref ${at.$ref}`);
    at = at.$ref
      .slice(2)
      .split("/")
      .map((part: string) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((into: any, key: string) => into?.[key], doc);
    if (at === undefined) throw new Error(`dangling $ref ${node.$ref}`);
  }
  return at;
}

/** The path and query parameters of an operation, path-level ones included (operation-level win). */
export function parametersOf(doc: OpenApiDocument, op: Operation): Node[] {
  const pathLevel = (doc.paths[op.path]?.parameters ?? []).map((p: Node) => deref(doc, p));
  const own = (op.node.parameters ?? []).map((p: Node) => deref(doc, p));
  const key = (p: Node) => `${p.in}:${p.name}`;
  return [...pathLevel.filter((p: Node) => !own.some((o: Node) => key(o) === key(p))), ...own];
}

/** The JSON request body of an operation: its schema and its examples, by name ("example" for a single one). */
export function requestBodyOf(doc: OpenApiDocument, op: Operation): { schema: Node; required: boolean; examples: Record<string, unknown> } | null {
  if (!op.node.requestBody) return null;
  const body = deref(doc, op.node.requestBody);
  const media = body.content?.["application/json"];
  if (!media) return null;
  const examples: Record<string, unknown> = {};
  if (media.example !== undefined) examples.example = media.example;
  for (const [name, ex] of Object.entries<Node>(media.examples ?? {})) {
    const resolved = deref(doc, ex);
    if (resolved.value !== undefined) examples[name] = resolved.value;
  }
  return { schema: media.schema ?? {}, required: body.required === true, examples };
}

/** The statuses an operation lists, as numbers ("2XX"-style ranges and "default" left out). */
export function statusesOf(op: Operation): number[] {
  return Object.keys(op.node.responses ?? {})
    .filter((s) => /^\d{3}$/.test(s))
    .map(Number)
    .sort((a, b) => a - b);
}

/** The JSON schema of one response status (undefined when that response has no JSON content). */
export function responseSchemaOf(doc: OpenApiDocument, op: Operation, status: number): Node | undefined {
  const response = op.node.responses?.[String(status)];
  if (!response) return undefined;
  return deref(doc, response).content?.["application/json"]?.schema;
}

/**
 * Validators for the document's schemas, in one of OpenAPI's two directions: in "response" mode a
 * `readOnly` property keeps its place in `required`; in "request" mode it is dropped from the schema
 * (OpenAPI 3.0.3: "required" on a readOnly property applies to responses only).
 */
export class SchemaBook {
  private readonly components: Record<string, unknown> = {};
  private readonly validators = new Map<Node, Validator>();

  constructor(
    doc: OpenApiDocument,
    private readonly direction: "request" | "response",
  ) {
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      const converted = this.convert(schema);
      delete converted.$schema;
      this.components[name] = converted;
    }
  }

  /** Every error of `instance` against `schema` (an OpenAPI schema that may hold local $refs). */
  validate(schema: Node, instance: unknown): OutputUnit[] {
    let validator = this.validators.get(schema);
    if (!validator) {
      // The converted components sit under the same pointer as in the document, so
      // "#/components/schemas/X" resolves inside the validator's own root.
      const root = { ...this.convert(schema), components: { schemas: this.components } } as Schema;
      validator = new Validator(root, "4", false);
      this.validators.set(schema, validator);
    }
    return validator.validate(instance).errors;
  }

  private convert(schema: Node): Node {
    // The converter drops `required` names that have no entry in `properties` (e.g. epilot's
    // ReplayEventsResponse requires "replayed" and "results" without describing them). A required
    // name must stay required, so each schema's own list is kept before and put back after.
    const kept = new WeakMap<object, string[]>();
    const dropped = (property: unknown) => this.direction === "request" && (property as Node | undefined)?.readOnly === true;
    return fromSchema(schema, {
      removeReadOnly: this.direction === "request",
      beforeTransform: (s: any) => {
        if (Array.isArray(s.required)) kept.set(s, s.required.filter((name: string) => !dropped(s.properties?.[name])));
        return s;
      },
      afterTransform: (s: any) => {
        const required = kept.get(s);
        if (required?.length) s.required = required;
        else if (required) delete s.required;
        return s;
      },
    }) as Node;
  }
}

const WRAPPERS = new Set(["$ref", "allOf", "anyOf", "oneOf", "properties", "items", "additionalProperties", "prefixItems", "not"]);

/**
 * Keeps, under each oneOf/anyOf that no branch matched, only the errors of the branch that came
 * closest (fewest errors): a use case of type "inbound" should be told what its inbound schema
 * misses, not that its type is not "outbound". Under a oneOf that matched twice or more, the
 * branches' own errors say nothing and go.
 */
function closestBranches(errors: OutputUnit[]): { kept: OutputUnit[]; ambiguous: Set<OutputUnit> } {
  let kept = errors;
  const ambiguous = new Set<OutputUnit>();
  for (const combinator of errors.filter((e) => e.keyword === "oneOf" || e.keyword === "anyOf")) {
    if (!kept.includes(combinator)) continue;
    const prefix = `${combinator.keywordLocation}/`;
    const branchOf = (e: OutputUnit) => (e.keywordLocation.startsWith(prefix) ? e.keywordLocation.slice(prefix.length).split("/")[0] : undefined);
    const manyMatches = !/any subschemas|\(0 matches\)/.test(combinator.error);
    const counts = new Map<string, number>();
    for (const e of kept) {
      const branch = branchOf(e);
      if (branch !== undefined && !WRAPPERS.has(e.keyword)) counts.set(branch, (counts.get(branch) ?? 0) + 1);
    }
    const best = [...counts].sort((a, b) => a[1] - b[1] || Number(a[0]) - Number(b[0]))[0]?.[0];
    kept = kept.filter((e) => {
      const branch = branchOf(e);
      return branch === undefined || (!manyMatches && branch === best);
    });
    if (manyMatches) ambiguous.add(combinator);
  }
  return { kept, ambiguous };
}

/** The errors that say what is wrong (not the "a subschema had errors" wrappers), as "path: message". */
export function describeErrors(errors: OutputUnit[], max = 4): string {
  const { kept: pruned, ambiguous } = closestBranches(errors);
  const leaves = pruned.filter((e) => ambiguous.has(e) || !WRAPPERS.has(e.keyword));
  const chosen = leaves.length ? leaves : pruned;
  const lines = [...new Set(chosen.map((e) => `${e.instanceLocation.replace(/^#/, "") || "/"}: ${e.error}`))];
  return lines.slice(0, max).join("; ") + (lines.length > max ? ` (+${lines.length - max} more)` : "");
}
