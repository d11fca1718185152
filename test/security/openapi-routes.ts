// Reads the Worker's own /openapi.json into operations, and builds the tenants, ids and valid bodies
// the generated hostile suites (route-matrix, bad-input-corpus) fill those operations with.
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { packBundle } from "../../apps-sdk/src/blueprint/bundle";
import { generatePublisherKey, type PublicKeyJwk } from "../../apps-sdk/src/blueprint/signing";
import { ADMIN, ALL_SCOPES, api, createToken } from "../helpers";
import { appJson, appModule } from "../app-helpers";
import { packageFiles, sampleManifest, signedUpload, unique, upload } from "../registry-helpers";

// ---- the document ------------------------------------------------------------------------------

/** The subset of JSON Schema that zod-openapi emits and these suites read. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  pattern?: string;
  format?: string;
}

export interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema: JsonSchema;
}

interface RawOperation {
  security?: Record<string, string[]>[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
  summary?: string;
  description?: string;
  responses?: Record<string, unknown>;
}

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, RawOperation>>;
  components: { schemas: Record<string, JsonSchema> };
}

/** Who may call an operation, read from its `security` requirement. */
export type Guard = "admin" | "tenant" | "public";

export interface Operation {
  method: string;
  path: string;
  /** "GET /v2/integrations/{id}": how failures and allow-lists name an operation. */
  key: string;
  guard: Guard;
  /** A tenant operation whose document also lists the admin token (`requireScopeOrAdmin`). */
  adminToo: boolean;
  /** Scopes the document names in the security requirement, or null when it names none. */
  documentedScopes: string[] | null;
  pathParams: Parameter[];
  queryParams: Parameter[];
  /** The JSON request body, when the document declares one. */
  body: { schema: JsonSchema; required: boolean } | null;
  /** The response statuses the document lists. */
  statuses: number[];
}

const SECURITY_SCHEMES: Record<string, Guard> = { adminToken: "admin", tenantToken: "tenant" };
const METHODS = ["get", "put", "post", "patch", "delete"];

/**
 * Operations that answer without a bearer token by design. Everything else in the document must
 * declare a security requirement; a new public operation fails the matrix until it is listed here.
 */
export const PUBLIC_OPERATIONS: Record<string, string> = {
  "POST /v1/webhooks/{integration_id}/{use_case_slug}":
    "signed inbound webhooks: ERPs that cannot hold a bearer token sign the body (X-Signature or Standard Webhooks); unsigned calls are 401",
};

/**
 * Documented operations that answer anyone, credentials or not, by design: nothing in their answer
 * belongs to a tenant. They must answer 200 without a token.
 */
export const OPEN_OPERATIONS: Record<string, string> = {
  "GET /v1/registry/schema/blueprint.json": "the package format's JSON Schema, for editors and the CLI: the same document for everyone",
  "GET /v1/webhooks/.well-known/public-key": "the platform's Ed25519 key verifying v1a webhook signatures: the same for everyone",
};

/**
 * Tenant operations that also accept the operator's admin token, as their documents say (a second
 * security alternative, `{ adminToken: [] }`): the registry's, where the operator manages the
 * platform's own `@erp-edge` packages. Only these may; a new one fails the matrix until listed here.
 */
export const ADMIN_ALSO_ACCEPTED = new Set([
  "POST /v1/registry/publishers",
  "GET /v1/registry/publishers/{scope}",
  "POST /v1/registry/publishers/{scope}/keys",
  "POST /v1/registry/packages",
  "GET /v1/registry/packages",
  "GET /v1/registry/packages/{scope}/{name}",
  "GET /v1/registry/packages/{scope}/{name}/{version}",
  "GET /v1/registry/packages/{scope}/{name}/{version}/bundle",
  "POST /v1/registry/packages/{scope}/{name}/{version}/deprecate",
  "POST /v1/registry/packages/{scope}/{name}/{version}/yank",
]);

/** Public routes the document does not describe (it is itself one of them). */
export const PUBLIC_UNDOCUMENTED: Record<string, string> = {
  "GET /": "service banner: name, version and the two links below",
  "GET /openapi.json": "the API description itself",
  "GET /docs": "the interactive reference that renders /openapi.json",
  "GET /hub": "the Integration Hub's page (a web UI, not an API operation; its data comes from the documented API with the user's token)",
  "GET /hub/": "the same page",
};

/** Static files of the Integration Hub (scripts, styles), public like the page that loads them. */
export const PUBLIC_ASSET_ROUTES = new Set(["GET /hub/assets/*"]);

export async function loadDocument(): Promise<OpenApiDocument> {
  const res = await api<OpenApiDocument>("GET", "/openapi.json");
  expect(res.status).toBe(200);
  return res.body;
}

/** Every operation of the document, reads first and deletions last, so a destructive bug shows late. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const key = `${method.toUpperCase()} ${path}`;
      const requirements = op.security ?? [];
      const schemes = requirements.flatMap((r) => Object.keys(r));
      // A tenant requirement with the admin token as an alternative: a tenant operation the operator may call too.
      const adminToo = schemes.includes("tenantToken") && schemes.includes("adminToken");
      const guards = new Set(schemes.filter((s) => !(adminToo && s === "adminToken")).map((s) => SECURITY_SCHEMES[s] ?? `unknown scheme '${s}'`));
      if (guards.size > 1) throw new Error(`${key} mixes security schemes ${[...guards].join(", ")}`);
      const guard = (guards.values().next().value ?? "public") as Guard;
      if (!["admin", "tenant", "public"].includes(guard)) throw new Error(`${key}: ${guard}; teach openapi-routes.ts what it means`);
      const scopes = requirements.flatMap((r) => Object.values(r).flat());
      const json = op.requestBody?.content["application/json"];
      operations.push({
        method: method.toUpperCase(),
        path,
        key,
        guard,
        adminToo,
        documentedScopes: scopes.length ? [...new Set(scopes)].sort() : null,
        pathParams: (op.parameters ?? []).filter((p) => p.in === "path"),
        queryParams: (op.parameters ?? []).filter((p) => p.in === "query"),
        body: json ? { schema: json.schema, required: op.requestBody?.required ?? false } : null,
        statuses: Object.keys(op.responses ?? {}).map(Number).filter(Number.isInteger),
      });
    }
  }
  const rank = (op: Operation) => ["GET", "POST", "PUT", "PATCH", "DELETE"].indexOf(op.method) + (op.guard === "admin" && op.method === "DELETE" ? 10 : 0);
  return operations.sort((a, b) => rank(a) - rank(b));
}

/** Follows `$ref`s into components.schemas. */
export function resolve(doc: OpenApiDocument, schema: JsonSchema): JsonSchema {
  let s = schema;
  for (let hops = 0; s.$ref; hops++) {
    if (hops > 20) throw new Error(`$ref cycle at ${schema.$ref}`);
    const name = s.$ref.replace("#/components/schemas/", "");
    const target = doc.components.schemas[name];
    if (!target) throw new Error(`unresolved $ref ${s.$ref}`);
    s = target;
  }
  return s;
}

/** The component name of a `$ref` schema, e.g. "CreateIntegration". */
export const componentName = (schema: JsonSchema) => schema.$ref?.replace("#/components/schemas/", "");

/** The alternatives a value at this schema may take (composition flattened, refs resolved). */
function alternatives(doc: OpenApiDocument, schema: JsonSchema): JsonSchema[] {
  const s = resolve(doc, schema);
  const branches = s.oneOf ?? s.anyOf;
  if (branches) return branches.flatMap((b) => alternatives(doc, b));
  if (s.allOf) {
    const merged: JsonSchema = { type: "object", properties: {}, required: [] };
    for (const part of s.allOf.flatMap((p) => alternatives(doc, p))) {
      Object.assign(merged.properties!, part.properties);
      merged.required!.push(...(part.required ?? []));
    }
    return [merged];
  }
  return [s];
}

/** Candidate schemas for the value at `path` below `schema`; null when nothing constrains it. */
export function schemasAt(doc: OpenApiDocument, schema: JsonSchema, path: (string | number)[]): JsonSchema[] | null {
  let current = alternatives(doc, schema);
  for (const step of path) {
    const next: JsonSchema[] = [];
    for (const s of current) {
      if (typeof step === "number") {
        if (s.items) next.push(...alternatives(doc, s.items));
        else if (!s.type) return null;
      } else if (s.properties?.[step]) next.push(...alternatives(doc, s.properties[step]));
      else if (typeof s.additionalProperties === "object") next.push(...alternatives(doc, s.additionalProperties));
      else if (!s.type) return null;
    }
    if (next.length === 0) return null;
    if (next.some(isUnconstrained)) return null;
    current = next;
  }
  return current;
}

/** The schema's pattern as a RegExp, or null when this engine cannot read it (then it refuses nothing). */
function patternOf(pattern: string): RegExp | null {
  try {
    return new RegExp(pattern, "u");
  } catch {
    return null;
  }
}

const isUnconstrained = (s: JsonSchema) => !s.type && !s.enum && s.const === undefined && !s.properties && !s.items;

export function jsonTypeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/** True when `schema` certainly refuses `value` by its type, enum, const, length or range. */
function refuses(s: JsonSchema, value: unknown): boolean {
  if (isUnconstrained(s)) return false;
  if (s.const !== undefined) return s.const !== value;
  if (s.enum) return !s.enum.includes(value);
  const types = s.type === undefined ? null : ([] as string[]).concat(s.type);
  const actual = jsonTypeOf(value);
  if (types && !types.includes(actual) && !(actual === "integer" && types.includes("number"))) return true;
  if (typeof value === "string") {
    if (s.maxLength !== undefined && value.length > s.maxLength) return true;
    if (s.minLength !== undefined && value.length < s.minLength) return true;
    if (s.pattern && patternOf(s.pattern)?.test(value) === false) return true;
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return true;
    if (s.maximum !== undefined && value > s.maximum) return true;
    if (s.minimum !== undefined && value < s.minimum) return true;
  }
  return false;
}

/** True when every schema the document allows at `path` certainly refuses `value`: the API must answer 4xx. */
export function mustRefuse(doc: OpenApiDocument, root: JsonSchema, path: (string | number)[], value: unknown): boolean {
  const candidates = schemasAt(doc, root, path);
  return candidates !== null && candidates.every((s) => refuses(s, value));
}

/** True when `property` is required by every schema allowed for the object at `path`. */
export function isRequired(doc: OpenApiDocument, root: JsonSchema, path: (string | number)[], property: string): boolean {
  const candidates = schemasAt(doc, root, path);
  return candidates !== null && candidates.every((s) => s.required?.includes(property) && s.properties?.[property]?.default === undefined);
}

/** True when `{}` certainly fails the body schema: it is not an object, or requires a property. */
export function refusesEmptyObject(doc: OpenApiDocument, root: JsonSchema): boolean {
  const candidates = schemasAt(doc, root, []);
  return candidates !== null && candidates.every((s) => refuses(s, {}) || (s.required ?? []).some((name) => s.properties?.[name]?.default === undefined));
}

/** True when a query value certainly fails the parameter's schema (query values arrive as text). */
export function queryValueRefused(param: Parameter, raw: string): boolean {
  const s = param.schema;
  const types = ([] as string[]).concat(s.type ?? []);
  if (types.includes("integer") || types.includes("number")) {
    const n = Number(raw);
    if (!Number.isFinite(n)) return true;
    if (types.includes("integer") && !types.includes("number") && !Number.isInteger(n)) return true;
    return (s.maximum !== undefined && n > s.maximum) || (s.minimum !== undefined && n < s.minimum);
  }
  if (s.enum) return !s.enum.includes(raw);
  if (types.includes("string")) {
    return (s.maxLength !== undefined && raw.length > s.maxLength) || (s.minLength !== undefined && raw.length < s.minLength);
  }
  return false;
}

// ---- valid bodies ------------------------------------------------------------------------------

const STRING_CANDIDATES = ["probe", "Probe", "probe-1", "p", "1", "PROBE"];

/**
 * A small valid instance of `schema`: its required properties (and the hinted ones it declares),
 * defaults, first enum values, first composition branch. Good enough for new routes; the routes whose
 * bodies need meaning (a mapping, a use case) get a hand-written example from `validBody`.
 */
export function sampleOf(doc: OpenApiDocument, schema: JsonSchema, hints: Record<string, unknown> = {}, depth = 0): unknown {
  const s = resolve(doc, schema);
  if (depth > 8) return {};
  if (s.const !== undefined) return s.const;
  if (s.default !== undefined) return s.default;
  if (s.enum) return s.enum[0];
  const branches = s.oneOf ?? s.anyOf;
  if (branches?.[0]) return sampleOf(doc, branches[0], hints, depth + 1);
  if (s.allOf) return Object.assign({}, ...s.allOf.map((part) => sampleOf(doc, part, hints, depth + 1)));
  const type = ([] as string[]).concat(s.type ?? []).find((t) => t !== "null") ?? (s.properties ? "object" : undefined);
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [name, prop] of Object.entries(s.properties ?? {})) {
        if (name in hints) out[name] = hints[name];
        else if (s.required?.includes(name)) out[name] = sampleOf(doc, prop, hints, depth + 1);
      }
      return out;
    }
    case "array":
      return Array.from({ length: s.minItems ?? 0 }, () => sampleOf(doc, s.items ?? {}, hints, depth + 1));
    case "string": {
      if (s.format === "date-time") return new Date().toISOString();
      if (s.format === "uri" || s.format === "url") return "https://erp.example.com/probe";
      if (s.format === "email") return "probe@example.com";
      const fits = (v: string) => !refuses({ ...s, type: "string" }, v);
      return STRING_CANDIDATES.find(fits) ?? "x".repeat(Math.max(1, s.minLength ?? 1));
    }
    case "integer":
    case "number":
      return s.minimum ?? 1;
    case "boolean":
      return true;
    default:
      return {};
  }
}

/** An inbound mapping producing a contact and its meter from one ContactChanged payload. */
export const CONTACT_AND_METER_MAPPING = {
  event_names: ["ContactChanged"],
  entities: [
    { entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "full_name", field: "name" }] },
    { entity_schema: "meter", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "meter" }] },
  ],
};

const LEGACY_MAPPING = {
  version: "1.0",
  mapping: { objects: { Customer: { unique_ids: { contact: ["customer_number"] }, fields: [{ entity: "contact", attribute: "customer_number", field: "id" }] } } },
};

let typesVersion = 0;

/** Bodies with meaning, by the component name of the request schema; `params` are the path's values. */
const BODY_EXAMPLES: Record<string, (fx: TenantFixture, params: Record<string, string>) => unknown> = {
  CreateTenant: () => ({ name: "probe tenant" }),
  CreateToken: () => ({ name: "probe", scopes: ["integrations:read"] }),
  CreateIntegration: () => ({ name: "probe integration", use_cases: [] }),
  PutIntegration: (fx) => ({ name: fx.integrationName, environment_config: fx.environmentConfig, use_cases: fx.declaredUseCases }),
  // Updating keeps the use case's own slug and type (both immutable); creating adds a new one.
  CreateIntegrationV1: () => ({ name: "probe integration" }),
  IntegrationPatch: () => ({ description: "probe" }),
  UseCasePatch: () => ({ enabled: true }),
  // The fixture maps its own app component (ids of its own, so no other tenant's v1 events reach it).
  SetIntegrationAppMappingRequest: (fx) => ({ ...fx.appMapping, overwrite: true }),
  DeleteIntegrationAppMappingRequest: (fx) => ({ ...fx.appMapping }),
  UseCaseInput: (fx, params) => {
    const existing = fx.declaredUseCases.find((u) => (u as { id: string }).id === params.use_case_id);
    if (!existing) return { name: "probe", slug: "probe", type: "inbound", configuration: CONTACT_AND_METER_MAPPING };
    const { id: _, ...input } = existing as Record<string, unknown>;
    return input;
  },
  EnvironmentValues: () => ({ API_KEY: "probe-secret" }),
  // A fresh scope each time, so the control is accepted; the spare key may serve any number of them.
  CreatePublisher: (fx) => ({ name: `@probe-${unique()}`, public_key: fx.registry.spareKey }),
  AddPublisherKey: (fx) => ({ public_key: fx.registry.spareKey }),
  // Installing the shared package again is a 409 for the tenant that installed it: a dry run is the accepted control.
  BlueprintInstallRequest: (fx) => ({ name: `${fx.registry.publisher}/${fx.registry.name}`, version: "^1", environment: { ERP_URL: "https://erp.example.com" }, dry_run: true }),
  BlueprintUpgradeRequest: () => ({ version: "^1", dry_run: true }),
  BlueprintRollbackRequest: () => ({ dry_run: true }),
  BlueprintTrust: (fx) => ({ publishers: [fx.registry.publisher] }),
  // Installed already (409 again): a dry run is the accepted control.
  AppInstallRequest: (fx) => ({ name: `${fx.registry.publisher}/${fx.registry.app}`, version: "1.0.0", dry_run: true }),
  AppPatchRequest: () => ({ grants: { hosts: [] } }),
  AppInvokeRequest: () => ({ input: { probe: true } }),
  FileUrlRequest: (fx) => ({ integration_id: fx.integrationId, use_case_slug: "files", params: { document_id: "probe" } }),
  MappingSimulationV2: () => ({ event_configuration: CONTACT_AND_METER_MAPPING, payload: { id: "P1", name: "probe", meter: "PM1" } }),
  MappingSimulationV1: () => ({ mapping_configuration: LEGACY_MAPPING, object_type: "Customer", payload: { id: "P1" } }),
  // The same bodies under the component names the document now gives them.
  MappingSimulationV2Request: () => ({ event_configuration: CONTACT_AND_METER_MAPPING, payload: { id: "P1", name: "probe", meter: "PM1" } }),
  MappingSimulationRequest: () => ({ mapping_configuration: LEGACY_MAPPING, object_type: "Customer", payload: { id: "P1" } }),
  ErpUpdatesEventsV2Request: (fx) => ({
    integration_id: fx.integrationId,
    events: [{ event_type: "UPDATE", object_type: "ContactChanged", timestamp: new Date().toISOString(), format: "json", payload: JSON.stringify({ id: "P2", name: "probe", meter: "PM2" }) }],
  }),
  // epilot's v1 names the integration by its app component: the fixture's mapping.
  ErpUpdatesEventsV1Request: (fx) => ({
    ...fx.appMapping,
    meta: { correlation_id: "probe-v1" },
    events: [{ event_type: "UPDATE", object_type: "ContactChanged", timestamp: new Date().toISOString(), format: "json", payload: JSON.stringify({ id: "P3", name: "probe", meter: "PM3" }) }],
  }),
  // The connector's partner API (the fake archive on loopback, which the test Worker may reach).
  SecureProxyRequest: (fx) => ({ integration_id: fx.connector.integrationId, use_case_id: fx.connector.secureProxy.id, url: `${env.ARCHIVE_URL}/_stats`, method: "GET" }),
  ManagedCallExecuteRequest: (fx) => ({ integration_id: fx.connector.integrationId }),
  // A webhook configuration delivering to the test receiver; PUT keeps the fixture's own target.
  WebhookConfigInput: (fx) => ({ name: "probe webhook", eventName: "SecurityMatrixNeverEmitted", url: fx.webhookUrl, httpMethod: "POST", enabled: true }),
  WebhookExecutionPayload: (fx) => ({ metadata: { organization_id: fx.tenantId, correlation_id: "probe" }, probe: true }),
  WebhookBatchReplayRequest: (fx) => ({ eventIds: [fx.webhookEventId] }),
  // webhook_id names the fixture's webhook configuration (the trigger sends through it); org_id is the caller's.
  TriggerErpActionRequest: (fx) => ({
    execution_id: "probe-exec", org_id: fx.tenantId, webhook_id: fx.webhookConfigId, flow_id: "probe-flow", created_at: new Date().toISOString(),
    action_id: "probe-action", flow_action_id: "probe-flow-action", flow_name: "probe flow", activity_id: "probe-activity", entity_id: "probe-entity",
  }),
  GetMonitoringTimeSeriesRequest: () => ({ from_date: new Date(Date.now() - 3_600_000).toISOString(), interval: "5m" }),
  GetMonitoringTimeSeriesV2Request: () => ({ from_date: new Date(Date.now() - 3_600_000).toISOString(), interval: "5m" }),
  // A fresh version each time, so committing is not refused as a repeat.
  GenerateTypesRequest: () => ({ package_name: "@probe/erp-types", version: `1.0.${++typesVersion}` }),
  CommitTypesRequest: () => ({ package_name: "@probe/erp-types", version: `1.0.${++typesVersion}` }),
  InboundEventsBatch: (fx) => ({
    integration_id: fx.integrationId,
    events: [{ event_name: "ContactChanged", timestamp: new Date().toISOString(), payload: { id: "P1", name: "probe", meter: "PM1" } }],
  }),
};

/** Property values that point a generated body at the fixture's own resources. */
const PROPERTY_HINTS: Record<string, (fx: TenantFixture) => unknown> = {
  integration_id: (fx) => fx.integrationId,
  event_ids: (fx) => [fx.eventId],
  event_id: (fx) => fx.eventId,
  ack_id: (fx) => fx.eventId,
  acks: (fx) => [{ id: fx.eventId, lease_token: "probe-lease" }],
  event_name: () => "SecurityProbe",
};

/** A body the operation should accept when it is called on `fx`'s own resources at path `params`. */
export function validBody(doc: OpenApiDocument, op: Operation, fx: TenantFixture, params: Record<string, string> = {}): unknown {
  if (!op.body) return undefined;
  const example = BODY_EXAMPLES[componentName(op.body.schema) ?? ""];
  if (example) return example(fx, params);
  const hints = Object.fromEntries(Object.entries(PROPERTY_HINTS).map(([k, f]) => [k, f(fx)]));
  return sampleOf(doc, op.body.schema, hints);
}

/** Required body properties naming a resource: a foreign tenant's id there must not succeed. */
export function ownedBodyIds(doc: OpenApiDocument, op: Operation): string[] {
  if (!op.body) return [];
  return alternatives(doc, op.body.schema).flatMap((s) => (s.required ?? []).filter((name) => /_ids?$/.test(name)));
}

// ---- fixtures ----------------------------------------------------------------------------------

export interface UseCaseRef {
  id: string;
  slug: string;
  name: string;
}

/** One tenant with one of everything the routes address, and the names that identify its data. */
export interface TenantFixture {
  label: string;
  tenantId: string;
  tenantName: string;
  token: string;
  tokenId: string;
  integrationId: string;
  integrationName: string;
  environmentConfig: unknown[];
  useCases: { inbound: UseCaseRef; outbound: UseCaseRef; file_proxy: UseCaseRef; pull: UseCaseRef };
  declaredUseCases: unknown[];
  webhookMappingId: string;
  /** A webhook configuration (epilot's Webhooks API) delivering to the test receiver, its URL, and one event sent through it. */
  webhookConfigId: string;
  webhookUrl: string;
  webhookEventId: string;
  /** The app component the integration is mapped to (PUT …/app-mapping), which epilot's v1 events name. */
  appMapping: { app_id: string; component_id: string };
  /** A connector integration with a managed call and a secure proxy against the fake archive. */
  connector: { integrationId: string; integrationName: string; managedCall: UseCaseRef; secureProxy: UseCaseRef };
  eventId: string;
  correlationId: string;
  contactId: string;
  contactName: string;
  meterId: string;
  secretValue: string;
  registry: RegistryFixture;
}

/**
 * A published registry package, `<publisher>/<name>@<version>`, and a public key no publisher of
 * the fixture holds yet. Packages are readable by every tenant, so one package serves all fixtures
 * of a test file: A's and B's paths name the same package (its owner is the first fixture's tenant).
 */
export interface RegistryFixture {
  publisher: string;
  name: string;
  version: string;
  spareKey: PublicKeyJwk;
  /** An app package of the same publisher (`<publisher>/<app>`), installed in every fixture tenant. */
  app: string;
}

let sharedPackage: Promise<RegistryFixture> | undefined;

function registryFixture(token: string): Promise<RegistryFixture> {
  sharedPackage ??= (async () => {
    const key = await generatePublisherKey();
    const publisher = `@matrix-${unique()}`;
    await ok("publisher", api("POST", "/v1/registry/publishers", { token, json: { name: publisher, public_key: key.publicJwk } }));
    const name = `${publisher}/probe`;
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    await ok("package", upload(token, await signedUpload(archive, name, "1.0.0", key.privateJwk)));
    const actions = { echo: { body: "return input;" }, pull: { body: "return { events: [] };" } };
    const appArchive = packBundle({
      "app.json": new TextEncoder().encode(JSON.stringify(appJson(`${publisher}/probe-app`, "1.0.0", actions))),
      "app.js": new TextEncoder().encode(appModule(actions)),
    });
    await ok("app package", upload(token, await signedUpload(appArchive, `${publisher}/probe-app`, "1.0.0", key.privateJwk)));
    return { publisher, name: "probe", version: "1.0.0", spareKey: (await generatePublisherKey()).publicJwk, app: "probe-app" };
  })();
  return sharedPackage;
}

async function ok<T = any>(what: string, res: Promise<{ status: number; body: T }>, status = [200, 201, 202, 204]): Promise<T> {
  const r = await res;
  if (!status.includes(r.status)) throw new Error(`fixture ${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/**
 * A tenant (rate limit raised so thousands of probes are not 429s) with an integration holding an
 * inbound, an outbound (webhook + poll) and a file-proxy use case, an environment secret, and one
 * processed event that created a contact and a meter.
 */
export async function createFixture(label: string, receiverUrl: string): Promise<TenantFixture> {
  const tag = `${label}${crypto.randomUUID().slice(0, 8)}`;
  const tenantName = `${tag} tenant`;
  const tenant = await ok("tenant", api("POST", "/v1/tenants", { token: ADMIN, json: { name: tenantName, rate_limit_per_second: 100_000 } }));
  const { token, id: tokenId } = await createToken(tenant.id, ALL_SCOPES);
  const registry = await registryFixture(token);
  const appName = `${registry.publisher}/${registry.app}`;
  // The shared packages installed into this tenant, so the /v1/blueprints/installed and /v1/apps routes have real targets.
  await ok("trust", api("PUT", "/v1/blueprints/trust", { token, json: { publishers: [registry.publisher] } }));
  await ok("app install", api("POST", "/v1/apps/install", { token, json: { name: appName, version: "1.0.0" } }));
  const integrationName = `${tag} integration`;
  const environmentConfig = [{ key: "API_KEY", label: "API key", type: "SecretString" }];
  const useCaseInputs = [
    { name: `${tag} inbound`, slug: "contacts", type: "inbound", configuration: CONTACT_AND_METER_MAPPING },
    {
      name: `${tag} outbound`, slug: "push", type: "outbound",
      configuration: {
        event_catalog_event: "SecurityMatrixNeverEmitted",
        mappings: [
          { id: "hook", name: "webhook", jsonata_expression: "$", delivery: { type: "webhook", url: `${receiverUrl}/hook/${tag}` } },
          { id: "poll", name: "poll", jsonata_expression: "$", delivery: { type: "poll" } },
        ],
      },
    },
    {
      name: `${tag} files`, slug: "files", type: "file_proxy",
      configuration: {
        params: [{ name: "document_id", required: true }],
        steps: [{ url: "https://archive.example.com/documents/{{params.document_id}}", method: "GET", response_type: "binary" }],
        response: { body: "steps[0].body", encoding: "binary" },
      },
    },
    // Its app is installed above; the schedule is far off, POST …/use-cases/{slug}/run runs it. The slug
    // is the fixture's own, so another tenant naming it addresses nothing of theirs.
    { name: `${tag} pull`, slug: `pull-${crypto.randomUUID().slice(0, 8)}`, type: "pull", configuration: { app: appName, action: "pull", schedule: "0 0 1 1 *", target_use_case: "contacts" } },
  ];
  const integration = await ok("integration", api("POST", "/v2/integrations", { token, json: { name: integrationName, environment_config: environmentConfig, use_cases: useCaseInputs } }));
  const created = integration.use_cases as { id: string; slug: string; name: string; type: string }[];
  const ref = (type: string): UseCaseRef => {
    const uc = created.find((u) => u.type === type);
    if (!uc) throw new Error(`fixture: no ${type} use case in ${JSON.stringify(created)}`);
    return { id: uc.id, slug: uc.slug, name: uc.name };
  };
  const secretValue = `${tag}-secret-value`;
  await ok("environment", api("PUT", `/v1/integrations/${integration.id}/environment`, { token, json: { API_KEY: secretValue } }));

  const correlationId = `${tag}-correlation`;
  const contactName = `${tag} contact`;
  const batch = await ok("event", api("POST", "/v3/erp/updates/events", {
    token,
    json: { integration_id: integration.id, correlation_id: correlationId, events: [{ event_name: "ContactChanged", timestamp: new Date().toISOString(), payload: { id: `${tag}-C1`, name: contactName, meter: `${tag}-M1` } }] },
  }));
  const eventId = batch.results[0].event_id as string;
  const status = await ok("event status", api("GET", `/v3/erp/updates/events/${eventId}?wait=20`, { token }));
  if (status.status !== "done") throw new Error(`fixture event not done: ${JSON.stringify(status)}`);
  const entityOf = (slug: string) => {
    const e = (status.entities as { slug: string; _id: string }[]).find((x) => x.slug === slug);
    if (!e) throw new Error(`fixture event made no ${slug}: ${JSON.stringify(status.entities)}`);
    return e._id;
  };
  await ok("install", api("POST", "/v1/blueprints/install", { token, json: { name: `${registry.publisher}/${registry.name}`, version: registry.version, environment: { ERP_URL: "https://erp.example.com" } } }));

  const appMapping = { app_id: crypto.randomUUID(), component_id: crypto.randomUUID() };
  await ok("app mapping", api("PUT", `/v1/integrations/${integration.id}/app-mapping`, { token, json: { ...appMapping, overwrite: true } }));
  const webhookUrl = `${receiverUrl}/hook/${tag}-config`;
  const config = await ok("webhook config", api("POST", "/v1/webhooks/configs", { token, json: { name: `${tag} webhook`, eventName: "SecurityMatrixNeverEmitted", url: webhookUrl, httpMethod: "POST", enabled: true } }));
  const sent = await ok("webhook trigger", api("POST", `/v1/webhooks/configs/${config.id}/trigger?sync=true`, { token, json: { metadata: { organization_id: tenant.id, correlation_id: `${tag}-webhook` }, probe: true } }));
  if (typeof sent.event_id !== "string") throw new Error(`fixture webhook trigger: no event_id in ${JSON.stringify(sent)}`);

  // Slugs of the fixture's own, so another tenant naming them addresses nothing of theirs.
  const suffix = crypto.randomUUID().slice(0, 8);
  const connectorName = `${tag} connector`;
  const connector = await ok("connector", api("POST", "/v2/integrations", {
    token,
    json: {
      name: connectorName, integration_type: "connector", connector_config: { base_url: env.ARCHIVE_URL },
      use_cases: [
        { name: `${tag} managed call`, slug: `stats-${suffix}`, type: "managed_call", enabled: true, configuration: { operation: { method: "GET", path: "/_stats" }, response_mapping: "$" } },
        { name: `${tag} secure proxy`, slug: `proxy-${suffix}`, type: "secure_proxy", enabled: true, configuration: { vpc_mode: "static_ip" } },
      ],
    },
  }));
  const connectorUseCase = (type: string): UseCaseRef => {
    const uc = (connector.use_cases as { id: string; slug: string; name: string; type: string }[]).find((u) => u.type === type);
    if (!uc) throw new Error(`fixture: no ${type} use case in ${JSON.stringify(connector.use_cases)}`);
    return { id: uc.id, slug: uc.slug, name: uc.name };
  };
  return {
    webhookConfigId: config.id, webhookUrl, webhookEventId: sent.event_id, appMapping,
    connector: { integrationId: connector.id, integrationName: connectorName, managedCall: connectorUseCase("managed_call"), secureProxy: connectorUseCase("secure_proxy") },
    label, tenantId: tenant.id, tenantName, token, tokenId, integrationId: integration.id, integrationName, environmentConfig, registry,
    useCases: { inbound: ref("inbound"), outbound: ref("outbound"), file_proxy: ref("file_proxy"), pull: ref("pull") },
    declaredUseCases: created.map(({ id, name, slug, type }) => ({ id, name, slug, type, configuration: useCaseInputs.find((u) => u.slug === slug)!.configuration })),
    webhookMappingId: "hook", eventId, correlationId, contactId: entityOf("contact"), contactName, meterId: entityOf("meter"), secretValue,
  };
}

/**
 * Where each path parameter's real value comes from, keyed by "<previous segment>/{name}" so that
 * `{id}` means a tenant under /tenants, an integration under /integrations, an entity under /{slug}.
 * Several values mean "check each" (a use case of every kind).
 */
const PATH_PARAM_SOURCES: Record<string, (fx: TenantFixture) => string[]> = {
  "tenants/{id}": (fx) => [fx.tenantId],
  "tokens/{token_id}": (fx) => [fx.tokenId],
  "integrations/{id}": (fx) => [fx.integrationId],
  "use-cases/{use_case_id}": (fx) => [fx.useCases.inbound.id, fx.useCases.outbound.id, fx.useCases.file_proxy.id],
  "endpoints/{use_case_id}": (fx) => [fx.useCases.outbound.id],
  "{use_case_id}/{mapping_id}": (fx) => [fx.webhookMappingId],
  "entities/{slug}": () => ["contact"],
  "{slug}/{id}": (fx) => [fx.contactId],
  "meter/{id}": (fx) => [fx.meterId],
  "events/{event_id}": (fx) => [fx.eventId],
  "traces/{correlation_id}": (fx) => [fx.correlationId],
  "webhooks/{integration_id}": (fx) => [fx.integrationId],
  "{integration_id}/{use_case_slug}": (fx) => [fx.useCases.inbound.slug],
  "publishers/{scope}": (fx) => [fx.registry.publisher],
  "installed/{scope}": (fx) => [fx.registry.publisher],
  "packages/{scope}": (fx) => [fx.registry.publisher],
  "{scope}/{name}": (fx) => [fx.registry.name],
  "{name}/{version}": (fx) => [fx.registry.version],
  "apps/{scope}": (fx) => [fx.registry.publisher],
  "actions/{action}": () => ["echo"],
  "use-cases/{slug}": (fx) => [fx.useCases.pull.slug],
  "integrations/{integrationId}": (fx) => [fx.integrationId],
  "configs/{configId}": (fx) => [fx.webhookConfigId],
  "events/{eventId}": (fx) => [fx.webhookEventId],
  "managed-call/{slug}": (fx) => [fx.connector.managedCall.slug],
};

/** Where a parameter's value differs by route: keyed by "<route path> {name}" (the app routes name the fixture's app). */
const ROUTE_PARAM_SOURCES: Record<string, (fx: TenantFixture) => string[]> = {
  "/v1/apps/installed/{scope}/{name} {name}": (fx) => [fx.registry.app],
  "/v1/apps/{scope}/{name}/actions/{action}/invoke {name}": (fx) => [fx.registry.app],
  // A monitoring event is the inbound event's (the webhook configurations' events are their own).
  "/v2/integrations/{integrationId}/monitoring/events/{eventId}/associated {eventId}": (fx) => [fx.eventId],
};

/** The real values for each path parameter of `op` in `fx`; throws for a parameter nobody taught us. */
export function pathValues(op: Operation, fx: TenantFixture): Record<string, string[]> {
  const segments = op.path.split("/");
  const out: Record<string, string[]> = {};
  segments.forEach((segment, i) => {
    const match = /^\{(.+)\}$/.exec(segment);
    if (!match) return;
    const source = ROUTE_PARAM_SOURCES[`${op.path} ${segment}`] ?? PATH_PARAM_SOURCES[`${segments[i - 1]}/${segment}`];
    if (!source) throw new Error(`${op.key}: no fixture value for ${segments[i - 1]}/${segment}; add it to PATH_PARAM_SOURCES in test/security/openapi-routes.ts`);
    out[match[1]!] = source(fx);
  });
  return out;
}

/** The first real value of each path parameter. */
export const firstPathValues = (op: Operation, fx: TenantFixture) =>
  Object.fromEntries(Object.entries(pathValues(op, fx)).map(([k, v]) => [k, v[0]!]));

/** The path with parameters substituted; values are percent-encoded unless `raw` names them. */
export function fillPath(path: string, values: Record<string, string>, raw: string[] = []): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${path}`);
    return raw.includes(name) ? value : encodeURIComponent(value);
  });
}

/** Strings that identify `fx`'s data: none may appear in another tenant's answers. */
export function markersOf(fx: TenantFixture): string[] {
  return [
    fx.tenantId, fx.tenantName, fx.tokenId, fx.integrationId, fx.integrationName, fx.eventId, fx.correlationId, fx.contactId,
    fx.contactName, fx.meterId, fx.secretValue, ...Object.values(fx.useCases).flatMap((u) => [u.id, u.name]),
    fx.webhookConfigId, fx.webhookUrl, fx.webhookEventId, fx.connector.integrationId, fx.connector.integrationName,
    ...[fx.connector.managedCall, fx.connector.secureProxy].flatMap((u) => [u.id, u.slug, u.name]),
  ];
}

// ---- sending -----------------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  text: string;
  json: any;
  requestId: string;
}

/** One request straight to the Worker, tagged with `requestId` so its log lines can be found. */
export async function send(
  method: string,
  path: string,
  opts: { token?: string; body?: BodyInit; json?: unknown; headers?: Record<string, string>; requestId: string },
): Promise<RawResponse> {
  const headers = new Headers(opts.headers);
  headers.set("x-request-id", opts.requestId);
  if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  let body = opts.body;
  if (opts.json !== undefined) {
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    body = JSON.stringify(opts.json);
  }
  const res = await exports.default.fetch(new Request(`http://erp-edge.test${path}`, { method, headers, body }));
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: the envelope check reports it
  }
  return { status: res.status, text, json, requestId: res.headers.get("x-request-id") ?? opts.requestId };
}

/** Why a 4xx answer is not the error envelope `{ error: { code, message } }`, or null when it is. */
export function envelopeProblem(res: RawResponse): string | null {
  const error = res.json?.error;
  if (!error) return `no error envelope in ${res.text.slice(0, 120)}`;
  if (typeof error.code !== "string" || typeof error.message !== "string") return `malformed envelope ${res.text.slice(0, 120)}`;
  return null;
}

/**
 * Captures what the Worker logs with console.error (it runs in this isolate), by request id, so a 5xx
 * can be reported with the error behind it.
 */
export function captureWorkerErrors() {
  const byRequest = new Map<string, string[]>();
  const original = console.error;
  console.error = (...args: unknown[]) => {
    const line = args.map((a) => (typeof a === "string" ? a : a instanceof Error ? `${a.name}: ${a.message}` : JSON.stringify(a))).join(" ");
    const id = /"request_id":"([^"]+)"/.exec(line)?.[1] ?? "?";
    byRequest.set(id, [...(byRequest.get(id) ?? []), line]);
  };
  return {
    /** The logged error messages of one request, each with its first frame in src/. */
    errorsOf(requestId: string): string {
      return (byRequest.get(requestId) ?? [])
        .map((line) => {
          try {
            const parsed = JSON.parse(line) as { message?: string; stack?: string };
            // The first frame in the project's own code says where to look.
            const frames = parsed.stack?.split("\n").slice(1).map((f) => f.trim()) ?? [];
            const frame = frames.find((f) => f.includes("/src/") && !f.includes("node_modules")) ?? frames[0];
            return [parsed.message ?? line, frame].filter(Boolean).join(" ");
          } catch {
            return line;
          }
        })
        .join(" | ")
        .slice(0, 400);
    },
    restore() {
      console.error = original;
    },
  };
}

/** Runs `tasks` with at most `width` in flight, keeping their order in the result. */
export async function inPool<T>(tasks: (() => Promise<T>)[], width = 4): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}
