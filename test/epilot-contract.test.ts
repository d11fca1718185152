// Every operation of epilot's ERP Integration API document (../shared/compat/epilot-openapi), sent
// to the real Worker with the document's own examples (or a body generated from its schema), and each
// answer validated against the document's response schema for its status (issue #16).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { answerOf, createFixtures, EXAMPLE_APP, type Fixtures, type IntegrationRole, type UseCaseRole } from "./contract/fixtures";
import { generateValue } from "./contract/generate";
import {
  describeErrors,
  deref,
  operationsOf,
  parametersOf,
  requestBodyOf,
  responseSchemaOf,
  SchemaBook,
  statusesOf,
  type Node,
  type OpenApiDocument,
  type Operation,
} from "./contract/openapi";
import { api, type ApiResponse } from "./helpers";

const DOC = "../../shared/compat/epilot-openapi/erp-integration.json";
const raw = import.meta.glob<string>("../../shared/compat/epilot-openapi/erp-integration.json", { eager: true, query: "?raw", import: "default" });
const doc: OpenApiDocument = JSON.parse(raw[DOC]!);
const operations = operationsOf(doc);
const responseSchemas = new SchemaBook(doc, "response");
const requestSchemas = new SchemaBook(doc, "request");

interface Target {
  integration: IntegrationRole;
  useCase: UseCaseRole;
}

/**
 * Where an operation points when it is not at the main integration and its business_partner inbound
 * use case: destructive ones get fixtures of their own, so a delete never takes a later read with it.
 */
const TARGETS: Record<string, Partial<Target>> = {
  deleteIntegration: { integration: "doomedV1" },
  deleteIntegrationV2: { integration: "doomedV2" },
  // PUT /v2 is declarative: a body without use_cases may remove them all.
  updateIntegrationV2: { integration: "scratch" },
  deleteUseCase: { useCase: "doomed" },
  secureProxy: { integration: "connector", useCase: "secureProxy" },
  managedCallExecute: { integration: "connector", useCase: "managedCall" },
  generateTypesPreview: { integration: "connector", useCase: "managedCall" },
  generateTypes: { integration: "connector", useCase: "managedCall" },
  commitTypes: { integration: "connector", useCase: "managedCall" },
};

const targetOf = (op: Operation): Target => ({ integration: "main", useCase: "inbound", ...TARGETS[op.operationId] });

/** Creates first, then reads and updates, deletes last; document order within each group. */
const phase = (op: Operation) => (op.operationId.startsWith("create") ? 0 : op.method === "DELETE" ? 2 : 1);
const ordered = [...operations].sort((a, b) => phase(a) - phase(b));

/** The fixture behind each name an example or a generated body may carry. */
function fixtureValues(f: Fixtures, t: Target): Record<string, unknown> {
  const integrationId = f.integrations[t.integration];
  const useCaseId = f.useCases[t.useCase]?.id;
  return {
    integration_id: integrationId,
    integrationId,
    use_case_id: useCaseId,
    useCaseId,
    event_id: f.eventId,
    event_ids: f.eventId ? [f.eventId] : undefined,
    // erp-edge's ACK of an inbound event names it by its event id.
    ack_id: f.eventId,
    webhook_id: f.webhookId,
    org_id: f.tenantId,
  };
}

/** `value` with every property named like a fixture (at any depth) set to that fixture. */
function withFixtureIds(value: unknown, fixtures: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((v) => withFixtureIds(v, fixtures));
  if (!value || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [key, Object.hasOwn(fixtures, key) && fixtures[key] !== undefined ? fixtures[key] : withFixtureIds(v, fixtures)]),
  );
}

/**
 * What the document leaves to prose, said here for the operations concerned. Each returns the body
 * to send; none removes or loosens anything the schema asks for.
 */
const ADJUST: Record<string, (body: any, f: Fixtures, t: Target) => unknown> = {
  // SecureProxyRequest requires neither use_case_id nor use_case_slug, while its description says
  // one of them must be given; and its url must be one the Worker may reach from the test (the
  // connector's partner API, see contract/fixtures.ts), not example.com.
  secureProxy: (body, f, t) => ({ ...body, use_case_id: f.useCases[t.useCase]?.id, url: `${env.ARCHIVE_URL}/_stats` }),
};

/** Steps an operation needs right before it, so it does not depend on another operation passing. */
const PREPARE: Record<string, (body: any, f: Fixtures, t: Target) => Promise<string | null>> = {
  // Deleting an app mapping needs that mapping to exist.
  deleteIntegrationAppMapping: async (body, f, t) => {
    const res = await api("PUT", `/v1/integrations/${f.integrations[t.integration]}/app-mapping`, {
      token: f.token,
      json: { app_id: body.app_id, component_id: body.component_id, overwrite: true },
    });
    return res.status === 200 ? null : `preparing the mapping: PUT app-mapping answered ${answerOf(res)}`;
  },
  // The v1 example names its integration by app and component: the fixture maps them.
  processErpUpdatesEvents: async (body, f) =>
    f.appMapped && body.app_id === EXAMPLE_APP.app_id ? null : `the example's app mapping fixture is missing: ${f.problems.appMapping ?? "example ids changed"}`,
};

interface PreparedRequest {
  label: string;
  path: string;
  body?: unknown;
}

/** Notes on the document itself (examples that fail their own schema), printed with the summary. */
const specNotes = new Set<string>();

/** The requests for one operation: one per request example, or one generated; or why none can be built. */
function requestsFor(op: Operation, f: Fixtures): PreparedRequest[] | string {
  const t = targetOf(op);
  let path = op.path;
  for (const param of parametersOf(doc, op)) {
    if (param.in === "path") {
      const value = pathValue(param, f, t);
      if (value === undefined) return `no fixture for path parameter ${param.name}: ${fixtureProblem(f, t, param.name)}`;
      path = path.replace(`{${param.name}}`, encodeURIComponent(value));
    } else if (param.in === "query" && param.required) {
      path += `${path.includes("?") ? "&" : "?"}${encodeURIComponent(param.name)}=${encodeURIComponent(String(generateValue(doc, param.schema ?? {})))}`;
    }
  }
  const body = requestBodyOf(doc, op);
  if (!body) return [{ label: "no body", path }];
  const sources = Object.keys(body.examples).length ? Object.entries(body.examples) : [["generated", generateValue(doc, body.schema)] as const];
  return sources.map(([label, value]) => {
    const errors = requestSchemas.validate(body.schema, value);
    if (errors.length) {
      const note = `${op.operationId} ${label === "generated" ? "generated body (harness bug)" : `example "${label}"`} fails its own request schema: ${describeErrors(errors, 2)}`;
      specNotes.add(note);
    }
    const adjust = ADJUST[op.operationId];
    const withIds = withFixtureIds(value, fixtureValues(f, t));
    return { label, path, body: adjust ? adjust(withIds, f, t) : withIds };
  });
}

function pathValue(param: Node, f: Fixtures, t: Target): string | undefined {
  switch (param.name) {
    case "integrationId":
      return f.integrations[t.integration];
    case "useCaseId":
      return f.useCases[t.useCase]?.id;
    case "eventId":
      return f.eventId;
    case "slug":
      return f.useCases[t.useCase]?.slug;
    default:
      return String(generateValue(doc, param.schema ?? {}));
  }
}

function fixtureProblem(f: Fixtures, t: Target, param: string): string {
  const related = Object.entries(f.problems).filter(([key]) =>
    param === "eventId" ? key === "event" || key.startsWith("main") : key.startsWith(t.integration) || (param === "useCaseId" && key === "doomedUseCase"),
  );
  return related.map(([key, problem]) => `${key}: ${problem}`).join("; ") || "fixture not created";
}

interface Outcome {
  op: Operation;
  passed: boolean;
  reason: string;
}

/** Sends one operation's requests; passes when each answers its lowest listed 2xx with a body its schema accepts. */
async function check(op: Operation, f: Fixtures): Promise<Outcome> {
  const expected = statusesOf(op).find((s) => s >= 200 && s < 300);
  if (expected === undefined) return { op, passed: false, reason: "the document lists no 2xx status" };
  const prepared = requestsFor(op, f);
  if (typeof prepared === "string") return { op, passed: false, reason: prepared };
  for (const request of prepared) {
    const prefix = prepared.length > 1 ? `[${request.label}] ` : "";
    const prepare = PREPARE[op.operationId];
    const problem = prepare && (await prepare(request.body, f, targetOf(op)));
    if (problem) return { op, passed: false, reason: prefix + problem };
    const res = await api(op.method, request.path, { token: f.token, ...(request.body !== undefined && { json: request.body }) });
    const verdict = verdictOf(op, expected, res);
    if (verdict) return { op, passed: false, reason: prefix + verdict };
  }
  return { op, passed: true, reason: "" };
}

/** Why an answer breaks the contract for `status`, or null when it keeps it. */
function verdictOf(op: Operation, status: number, res: ApiResponse): string | null {
  if (res.status !== status) return `status ${res.status}, expected ${status}: ${answerOf(res).replace(/^\d+ /, "")}`;
  const schema = responseSchemaOf(doc, op, status);
  if (!schema) return null;
  const type = res.headers.get("content-type") ?? "none";
  if (!type.includes("json")) return `${status} body is not JSON (content-type ${type})`;
  const errors = responseSchemas.validate(schema, res.body);
  return errors.length ? `${status} body fails the schema: ${describeErrors(errors)}` : null;
}

/** Plain columns for the printed summary; the last column runs free. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (i === r.length - 1 ? 0 : r[i]!.length))));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n");
}

const isErrorResponseBase = (schema: Node | undefined) => schema?.$ref === "#/components/schemas/ErrorResponseBase";

interface ErrorCase {
  operationId: string;
  status: 400 | 404;
  why: string;
  /** The path, its parameters filled from the fixtures unless given here. */
  params?: (f: Fixtures) => Record<string, string | undefined>;
  json?: (f: Fixtures) => unknown;
  rawBody?: string;
}

const UNKNOWN_INTEGRATION = "00000000-0000-4000-8000-00000000dead";

/** A sample of the unhappy paths: their status, and a body that keeps the operation's error schema. */
const ERROR_CASES: ErrorCase[] = [
  { operationId: "getOutboundStatus", status: 404, why: "unknown integration id", params: () => ({ integrationId: UNKNOWN_INTEGRATION }) },
  { operationId: "queryEvents", status: 404, why: "unknown integration id", params: () => ({ integrationId: UNKNOWN_INTEGRATION }), json: () => ({}) },
  {
    operationId: "queryMonitoringEventsV2",
    status: 404,
    why: "unknown integration id",
    params: () => ({ integrationId: UNKNOWN_INTEGRATION }),
    json: () => ({}),
  },
  {
    operationId: "managedCallExecute",
    status: 404,
    why: "unknown managed call slug",
    params: () => ({ slug: "no-such-call" }),
    json: (f) => ({ integration_id: f.integrations.connector }),
  },
  { operationId: "createIntegrationV2", status: 400, why: "body without the required name", json: () => ({}) },
  { operationId: "processErpUpdatesEventsV3", status: 400, why: "events is not an array", json: (f) => ({ integration_id: f.integrations.main, events: "none" }) },
  { operationId: "simulateMappingV2", status: 400, why: "body is not JSON", rawBody: "{ not json" },
  { operationId: "replayEvents", status: 400, why: "event_ids below minItems", json: () => ({ event_ids: [] }) },
  { operationId: "managedCallExecute", status: 400, why: "body without integration_id", json: () => ({}) },
];

async function checkError(c: ErrorCase, f: Fixtures): Promise<{ passed: boolean; reason: string }> {
  const op = operations.find((o) => o.operationId === c.operationId);
  if (!op) return { passed: false, reason: "no such operation in the document" };
  if (!statusesOf(op).includes(c.status)) return { passed: false, reason: `the document lists no ${c.status} for it` };
  const t = targetOf(op);
  const given = c.params?.(f) ?? {};
  let path = op.path;
  for (const param of parametersOf(doc, op).filter((p) => p.in === "path")) {
    const value = param.name in given ? given[param.name] : pathValue(param, f, t);
    if (value === undefined) return { passed: false, reason: `no fixture for ${param.name}: ${fixtureProblem(f, t, param.name)}` };
    path = path.replace(`{${param.name}}`, encodeURIComponent(value));
  }
  const res = c.rawBody
    ? await api(op.method, path, { token: f.token, body: c.rawBody, headers: { "content-type": "application/json" } })
    : await api(op.method, path, { token: f.token, ...(c.json && { json: c.json(f) }) });
  if (res.status !== c.status) return { passed: false, reason: `status ${res.status}, expected ${c.status}: ${answerOf(res).replace(/^\d+ /, "")}` };
  const schema = responseSchemaOf(doc, op, c.status);
  if (!schema) return { passed: true, reason: "" };
  const type = res.headers.get("content-type") ?? "none";
  if (!type.includes("json")) return { passed: false, reason: `body is not JSON (content-type ${type})` };
  const errors = responseSchemas.validate(schema, res.body);
  if (errors.length) return { passed: false, reason: `body fails ${deref(doc, schema) === schema ? "the schema" : schema.$ref}: ${describeErrors(errors)}` };
  // ErrorResponseBase makes neither field required, but an epilot error always carries both at
  // the top: a body with only erp-edge's nested `error` would pass the schema and still not be one.
  if (isErrorResponseBase(schema) && (typeof res.body?.code !== "string" || typeof res.body?.message !== "string")) {
    return { passed: false, reason: `no top-level code and message: ${JSON.stringify(res.body).slice(0, 160)}` };
  }
  return { passed: true, reason: "" };
}

describe("epilot ERP Integration API contract (erp-integration.json)", () => {
  it("lists 43 operations", () => {
    expect(operations).toHaveLength(43);
    expect(new Set(operations.map((o) => o.operationId)).size).toBe(43);
    for (const id of [...Object.keys(TARGETS), ...Object.keys(ADJUST), ...Object.keys(PREPARE), ...ERROR_CASES.map((c) => c.operationId)]) {
      expect(operations.map((o) => o.operationId)).toContain(id);
    }
  });

  it("validates strictly: required, formats, nullable, readOnly by direction, discriminated oneOf", () => {
    const schema = (name: string) => ({ $ref: `#/components/schemas/${name}` });
    const integration = { id: "3fa85f64-5717-4562-b3fc-2c963f66afa6", orgId: "1", name: "ERP", created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z" };
    expect(responseSchemas.validate(schema("Integration"), integration)).toEqual([]);
    expect(describeErrors(responseSchemas.validate(schema("Integration"), { ...integration, id: "not-a-uuid" }))).toContain("/id");
    expect(describeErrors(responseSchemas.validate(schema("Integration"), { ...integration, created_at: "yesterday" }))).toContain("/created_at");
    expect(describeErrors(responseSchemas.validate(schema("Integration"), { name: "ERP" }))).toMatch(/required/);
    // A required name the schema does not describe stays required (the converter would drop it).
    const replay = responseSchemaOf(doc, operations.find((o) => o.operationId === "replayEvents")!, 200)!;
    expect(responseSchemas.validate(replay, { event_ids: [] })).not.toEqual([]);
    // nullable: true admits null, its absence does not.
    const events = responseSchemaOf(doc, operations.find((o) => o.operationId === "queryEvents")!, 200)!;
    expect(responseSchemas.validate(events, { data: [], next_cursor: null })).toEqual([]);
    const series = responseSchemaOf(doc, operations.find((o) => o.operationId === "getMonitoringTimeSeries")!, 200)!;
    const buckets = { from_date: "2025-01-01T00:00:00Z", to_date: "2025-01-02T00:00:00Z", interval: "1h", buckets: [] };
    expect(responseSchemas.validate(series, buckets)).toEqual([]);
    expect(responseSchemas.validate(series, { ...buckets, buckets: null })).not.toEqual([]);
    // readOnly vpc_mode is required in a response, not in a request.
    expect(responseSchemas.validate(schema("SecureProxyUseCaseConfiguration"), {})).not.toEqual([]);
    expect(requestSchemas.validate(schema("SecureProxyUseCaseConfiguration"), {})).toEqual([]);
    // A use case of type inbound is told what the inbound branch misses, not that it is not outbound.
    const useCase = { id: integration.id, integrationId: integration.id, name: "x", type: "inbound", enabled: true, created_at: integration.created_at };
    expect(describeErrors(responseSchemas.validate(schema("UseCase"), useCase))).toBe('/: Instance does not have required property "updated_at".');
    expect(requestSchemas.validate(schema("ReplayEventsRequest"), { event_ids: [] })).not.toEqual([]);
  });

  it("answers every operation as the document says", { timeout: 240_000 }, async () => {
    const f = await createFixtures();
    const outcomes: Outcome[] = [];
    for (const op of ordered) {
      try {
        outcomes.push(await check(op, f));
      } catch (err) {
        outcomes.push({ op, passed: false, reason: `harness error: ${(err as Error).message.slice(0, 200)}` });
      }
    }
    const passed = outcomes.filter((o) => o.passed).length;
    const byDocument = operations.map((op) => outcomes.find((o) => o.op === op)!);
    const problems = Object.entries(f.problems).map(([step, problem]) => `  fixture ${step}: ${problem}`);
    console.log(
      [
        "epilot contract: operations",
        table([["operationId", "method", "path", "result"], ...byDocument.map((o) => [o.op.operationId, o.op.method, o.op.path, o.passed ? "pass" : `FAIL ${o.reason}`])]),
        ...(problems.length ? ["fixture steps that failed:", ...problems] : []),
        ...(specNotes.size ? ["notes on the document itself:", ...[...specNotes].map((n) => `  ${n}`)] : []),
        `passed ${passed} / ${operations.length}`,
      ].join("\n"),
    );
    expect(passed).toBe(43);
  });

  it("answers a sample of unhappy paths with the document's error schemas", { timeout: 120_000 }, async () => {
    const f = await createFixtures();
    const results = [];
    for (const c of ERROR_CASES) {
      try {
        results.push({ c, ...(await checkError(c, f)) });
      } catch (err) {
        results.push({ c, passed: false, reason: `harness error: ${(err as Error).message.slice(0, 200)}` });
      }
    }
    const passed = results.filter((r) => r.passed).length;
    console.log(
      [
        "epilot contract: error cases",
        table([["operationId", "status", "case", "result"], ...results.map((r) => [r.c.operationId, String(r.c.status), r.c.why, r.passed ? "pass" : `FAIL ${r.reason}`])]),
        `error cases passed ${passed} / ${ERROR_CASES.length}`,
      ].join("\n"),
    );
    expect(passed).toBe(ERROR_CASES.length);
  });
});
