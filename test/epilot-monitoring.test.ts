// epilot's monitoring operations (v1 and v2), events query and replay, checked through the real
// Worker against the response schemas of epilot's own OpenAPI document: real inbound events beside
// arranged rows of every status (inbound log shard, outbound endpoint), filters, pages, stats that
// agree with the time series, associated events, outbound status, access logs, and the hostile paths.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { EventLog } from "../src/inbound/log-do";
import { newEventId, shardCount, shardOf } from "../src/inbound/shards";
import { MAX_KEPT_DAYS, type AccessLog } from "../src/monitoring/access-log-do";
import { encodeCursor } from "../src/platform/pagination";
import { operationsOf, responseSchemaOf, SchemaBook, describeErrors, type OpenApiDocument } from "./contract/openapi";
import { api, createToken, eventually, expectError, tenantWithToken } from "./helpers";
import { contactMapping, logOf, post, waitFor } from "./inbound-helpers";
import { endpointQuery } from "./outbound-helpers";

const raw = import.meta.glob<string>("../../shared/compat/epilot-openapi/erp-integration.json", { eager: true, query: "?raw", import: "default" });
const doc = JSON.parse(Object.values(raw)[0]!) as OpenApiDocument;
const book = new SchemaBook(doc, "response");
const operations = new Map(operationsOf(doc).map((op) => [op.operationId, op]));

/** Fails with the validator's words unless `body` is what epilot's document says `operationId` answers with `status`. */
function expectEpilotShape(operationId: string, status: number, body: unknown) {
  const op = operations.get(operationId);
  if (!op) throw new Error(`no operation ${operationId}`);
  const schema = responseSchemaOf(doc, op, status);
  if (!schema) throw new Error(`${operationId} documents no JSON for ${status}`);
  const errors = book.validate(schema, body);
  if (errors.length) throw new Error(`${operationId} ${status}: ${describeErrors(errors)}\n${JSON.stringify(body).slice(0, 800)}`);
}

const iso = (msFromNow: number) => new Date(Date.now() + msFromNow).toISOString();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface World {
  tenantId: string;
  token: string;
  integrationId: string;
  contactsId: string;
  outboundId: string;
  endpointId: string;
  real: string[];
  arranged: Record<"error" | "ignored" | "partial" | "processing", string>;
  deliveries: Record<"delivered" | "failed" | "dead_lettered" | "pending", string>;
}

const url = (w: World, version: "v1" | "v2", rest: string) => `/${version}/integrations/${w.integrationId}${rest}`;
const call = (w: World, method: string, path: string, json?: unknown, token = w.token) => api(method, path, { token, ...(json !== undefined && { json }) });

async function world(): Promise<World> {
  const { tenant, token } = await tenantWithToken();
  const created = await api("POST", "/v2/integrations", {
    token,
    json: {
      name: "Monitored ERP",
      use_cases: [
        { name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping },
        {
          name: "Contracts to ERP",
          slug: "contracts-out",
          type: "outbound",
          configuration: { event_catalog_event: "contract.created", mappings: [{ id: "erp", name: "ERP webhook", jsonata_expression: "$", delivery: { type: "webhook", url: env.RECEIVER_URL } }] },
        },
      ],
    },
  });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  const integrationId = created.body.id as string;
  const byType = (type: string) => (created.body.use_cases as { id: string; type: string }[]).find((u) => u.type === type)!.id;
  const contactsId = byType("inbound");
  const outboundId = byType("outbound");

  // Two real events, processed to the end, sharing a correlation id with an outbound delivery below.
  const results = await post(token, integrationId, [
    { event_name: "ContactChanged", payload: { id: "C-1", name: "Ada" } },
    { event_name: "ContactChanged", payload: { id: "C-2", name: "Grace" } },
  ], { correlation_id: "order-7" });
  const real = results.map((r) => r.event_id);
  for (const id of real) expect((await waitFor(token, id)).status).toBe("done");

  // Rows of the other statuses, written into the shard of group-less events as processing leaves them.
  const shard = shardOf(null, shardCount(env));
  const arranged = { error: newEventId(integrationId, shard), ignored: newEventId(integrationId, shard), partial: newEventId(integrationId, shard), processing: newEventId(integrationId, shard) };
  await runInDurableObject(logOf(integrationId), (_i: EventLog, state) => {
    const insert = (id: string, status: string, category: string | null, errors: string) =>
      state.storage.sql.exec(
        `INSERT INTO events (id, tenant_id, integration_id, use_case_id, use_case_slug, event_name, status, error_category, errors, payload, received_at, completed_at, processing_duration_ms)
         VALUES (?, ?, ?, ?, 'contacts', 'ContactChanged', ?, ?, ?, '{"id":"C-9"}', ?, ?, 12)`,
        id, tenant.id, integrationId, contactsId, status, category, errors, iso(-1000), status === "processing" ? null : iso(-900),
      );
    insert(arranged.error, "error", "validation", JSON.stringify([{ code: "MAPPING_FAILED", message: "name is required" }]));
    insert(arranged.ignored, "ignored", null, "[]");
    insert(arranged.partial, "partial", null, "[]");
    insert(arranged.processing, "processing", null, "[]");
  });

  // The outbound endpoint as fan-out registers it, with one delivery of each status (no alarm: none is sent).
  const endpointId = `${outboundId}/erp`;
  await env.DB.prepare("INSERT INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at) VALUES (?, ?, ?, ?, 'erp', ?)")
    .bind(endpointId, tenant.id, integrationId, outboundId, iso(0))
    .run();
  const deliveries = { delivered: newEventId(integrationId, 0), failed: newEventId(integrationId, 0), dead_lettered: newEventId(integrationId, 0), pending: newEventId(integrationId, 0) };
  for (const [status, id] of Object.entries(deliveries)) {
    await endpointQuery(
      endpointId,
      `INSERT INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, correlation_id, payload, status, max_attempts, attempts, last_error, created_at, completed_at, processing_duration_ms)
       VALUES (?, ?, ?, ?, 'contracts-out', 'erp', 'webhook', ?, 'contract.created', ?, '{"contract":"K-1"}', ?, 8, 1, ?, ?, ?, ?)`,
      id, tenant.id, integrationId, outboundId, `core-${id}`, status === "delivered" ? "order-7" : null, status,
      status === "failed" || status === "dead_lettered" ? "HTTP 502" : null, iso(-500), status === "pending" ? null : iso(-400), status === "pending" ? null : 100,
    );
  }
  return { tenantId: tenant.id, token, integrationId, contactsId, outboundId, endpointId, real, arranged, deliveries };
}

describe("epilot's monitoring operations", () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });

  it("queryEvents answers epilot's data[] with payloads, has_more and an object cursor, beside erp-edge's events[]", async () => {
    const first = await call(w, "POST", url(w, "v1", "/events"), { event_type: "UPDATE", limit: 5, direction: "inbound" });
    expect(first.status).toBe(200);
    expectEpilotShape("queryEvents", 200, first.body);
    expect(first.body.has_more).toBe(true);
    expect(first.body.events).toHaveLength(5);
    expect(first.body.next_cursor).toEqual({ event_time: expect.any(String), event_id: first.body.events[4].event_id });
    const second = await call(w, "POST", url(w, "v1", "/events"), { limit: 5, direction: "inbound", cursor: first.body.next_cursor });
    expectEpilotShape("queryEvents", 200, second.body);
    expect(second.body.has_more).toBe(false);
    expect(second.body.next_cursor).toBeNull();
    const all = [...first.body.data, ...second.body.data];
    expect(all.map((e: { event_id: string }) => e.event_id).sort()).toEqual([...w.real, ...Object.values(w.arranged)].sort());
    const ada = all.find((e: { event_id: string }) => e.event_id === w.real[0]);
    expect(ada).toMatchObject({ event_type: "UPDATE", object_type: "ContactChanged", format: "json", payload: { id: "C-1", name: "Ada" }, direction: "inbound", status: "done", correlation_id: "order-7" });

    // epilot's object_type is erp-edge's event_name; a type erp-edge's events never have finds no data.
    const named = (await call(w, "POST", url(w, "v1", "/events"), { object_type: "ContactChanged", direction: "inbound" })).body;
    expect(named.data).toHaveLength(6);
    const created = (await call(w, "POST", url(w, "v1", "/events"), { event_type: "CREATE" })).body;
    expect(created.data).toEqual([]);
    expect(created.events.length).toBeGreaterThan(0);

    // erp-edge's own string cursor still pages.
    const legacy = await call(w, "POST", url(w, "v1", "/events"), { direction: "inbound", cursor: encodeCursor(w.arranged.processing) });
    expect(legacy.status).toBe(200);
    expect(legacy.body.events.every((e: { event_id: string }) => e.event_id < w.arranged.processing)).toBe(true);
  });

  it("replayEvents answers replayed, results and event_ids", async () => {
    const res = await call(w, "POST", url(w, "v1", "/events/replay"), { event_ids: [w.real[1], "01JDNOTANEVENT000000000000"] });
    expect(res.status).toBe(200);
    expectEpilotShape("replayEvents", 200, res.body);
    expect(res.body.event_ids).toEqual([w.real[1], "01JDNOTANEVENT000000000000"]);
    expect(res.body.replayed).toBe(1);
    expect(res.body.results[1]).toMatchObject({ status: "not_found", replay_event_id: null });
    const replayId = res.body.results[0].replay_event_id as string;
    await waitFor(w.token, replayId);
    // The replay keeps the correlation id: it is among the original's associated events.
    const associated = (await call(w, "GET", url(w, "v2", `/monitoring/events/${w.real[1]}/associated`))).body;
    expect(associated.monitoring_events.map((e: { event_id: string }) => e.event_id)).toContain(replayId);
  });

  it("queryInboundMonitoringEvents answers finished events with epilot's statuses, filters and pages", async () => {
    const res = await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { limit: 100 });
    expect(res.status).toBe(200);
    expectEpilotShape("queryInboundMonitoringEvents", 200, res.body);
    const byId = new Map(res.body.data.map((e: { event_id: string }) => [e.event_id, e]));
    expect(byId.has(w.arranged.processing)).toBe(false);
    expect(byId.get(w.arranged.error)).toMatchObject({
      org_id: w.tenantId, integration_id: w.integrationId, use_case_id: w.contactsId, status: "error", error_category: "validation",
      error_message: "name is required", object_type: "ContactChanged", event_type: "UPDATE", sync_type: "entity", processing_duration_ms: 12,
    });
    expect(byId.get(w.arranged.ignored)).toMatchObject({ status: "skipped" });
    expect(byId.get(w.arranged.partial)).toMatchObject({ status: "warning" });
    expect(byId.get(w.real[0])).toMatchObject({ status: "success", correlation_id: "order-7" });

    const errors = (await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { status: "error" })).body;
    expect(errors.data.map((e: { event_id: string }) => e.event_id)).toEqual([w.arranged.error]);
    const byUseCase = (await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { use_case_id: w.contactsId, event_id: w.real[0] })).body;
    expect(byUseCase.data).toHaveLength(1);
    expect((await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { use_case_id: "0190a5d2-0000-7000-8000-000000000000" })).body).toEqual({ data: [], has_more: false, next_cursor: null });
    expect((await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { sync_type: "meter_reading" })).body.data).toEqual([]);

    const p1 = (await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { limit: 2 })).body;
    expect(p1.has_more).toBe(true);
    expect(p1.next_cursor).toEqual({ completed_at: expect.any(String), event_id: expect.any(String) });
    const p2 = (await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { limit: 2, cursor: p1.next_cursor })).body;
    expectEpilotShape("queryInboundMonitoringEvents", 200, p2);
    expect(p2.data.every((e: { event_id: string }) => e.event_id < p1.next_cursor.event_id)).toBe(true);
  });

  it("queryOutboundMonitoringEvents answers deliveries as succeeded, failed or pending", async () => {
    const res = await call(w, "POST", url(w, "v1", "/monitoring/outbound-events"), {});
    expect(res.status).toBe(200);
    expectEpilotShape("queryOutboundMonitoringEvents", 200, res.body);
    const status = Object.fromEntries(res.body.data.map((e: { event_id: string; status: string }) => [e.event_id, e.status]));
    expect(status).toEqual({ [w.deliveries.delivered]: "succeeded", [w.deliveries.failed]: "failed", [w.deliveries.dead_lettered]: "failed", [w.deliveries.pending]: "pending" });
    expect(res.body.data[0]).toMatchObject({ org_id: w.tenantId, event_name: "contract.created", url: env.RECEIVER_URL, http_method: "POST", webhook_config_id: w.endpointId });

    const failed = (await call(w, "POST", url(w, "v1", "/monitoring/outbound-events"), { status: "failed" })).body;
    expect(failed.data.map((e: { event_id: string }) => e.event_id).sort()).toEqual([w.deliveries.failed, w.deliveries.dead_lettered].sort());
    expect((await call(w, "POST", url(w, "v1", "/monitoring/outbound-events"), { webhook_config_id: "elsewhere" })).body.data).toEqual([]);
    expect((await call(w, "POST", url(w, "v1", "/monitoring/outbound-events"), { webhook_config_id: w.endpointId })).body.data).toHaveLength(4);
  });

  it("getMonitoringStats and getMonitoringTimeSeries count the same rows", async () => {
    const range = { from_date: iso(-3_600_000), to_date: iso(60_000) };
    const stats = await call(w, "POST", url(w, "v1", "/monitoring/stats"), { ...range, inbound_group_by: ["status"], outbound_group_by: ["status"] });
    expect(stats.status).toBe(200);
    expectEpilotShape("getMonitoringStats", 200, stats.body);
    expect(stats.body.inbound).toMatchObject({ success_count: expect.any(Number), error_count: 1, skipped_count: 1, warning_count: 1, total_correlations: 1 });
    expect(stats.body.outbound).toMatchObject({ total_events: 4, success_count: 1, error_count: 2, pending_count: 1, success_rate: 25 });
    expect(stats.body.outbound.breakdown).toEqual(expect.arrayContaining([{ status: "failed", total_events: 2, success_count: 0, error_count: 2, pending_count: 0 }]));

    const series = await call(w, "POST", url(w, "v1", "/monitoring/timeseries"), { ...range, interval: "5m" });
    expect(series.status).toBe(200);
    expectEpilotShape("getMonitoringTimeSeries", 200, series.body);
    const sum = (key: "inbound" | "outbound", field: string) => series.body.buckets.reduce((n: number, b: Record<string, Record<string, number>>) => n + b[key]![field]!, 0);
    expect(sum("inbound", "total_count")).toBe(stats.body.inbound.total_events);
    expect(sum("inbound", "error_count")).toBe(1);
    expect(sum("outbound", "pending_count")).toBe(1);
    const inboundOnly = (await call(w, "POST", url(w, "v1", "/monitoring/timeseries"), { ...range, interval: "1h", direction: "inbound" })).body;
    expect(inboundOnly.buckets.every((b: { outbound: unknown }) => b.outbound === null)).toBe(true);
  });

  it("the v2 operations answer every direction as monitoring events, with UUID ids, stats and a time series", async () => {
    const res = await call(w, "POST", url(w, "v2", "/monitoring/events"), { limit: 3 });
    expect(res.status).toBe(200);
    expectEpilotShape("queryMonitoringEventsV2", 200, res.body);
    expect(res.body.data.every((e: { id: string }) => UUID.test(e.id))).toBe(true);
    const next = (await call(w, "POST", url(w, "v2", "/monitoring/events"), { limit: 100, cursor: res.body.next_cursor })).body;
    const seen = [...res.body.data, ...next.data].map((e: { event_id: string }) => e.event_id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).not.toContain(w.arranged.processing);
    expect(seen).not.toContain(w.deliveries.pending);

    const outboundErrors = (await call(w, "POST", url(w, "v2", "/monitoring/events"), { use_case_type: "outbound", level: "error" })).body;
    expect(outboundErrors.data.map((e: { event_id: string }) => e.event_id).sort()).toEqual([w.deliveries.failed, w.deliveries.dead_lettered].sort());
    expect(outboundErrors.data[0]).toMatchObject({ use_case_type: "outbound", use_case_id: w.outboundId, level: "error", message: "HTTP 502", code: "DOWNSTREAM" });
    const byCode = (await call(w, "POST", url(w, "v2", "/monitoring/events"), { code: "VALIDATION" })).body;
    expect(byCode.data.map((e: { event_id: string }) => e.event_id)).toEqual([w.arranged.error]);

    const range = { from_date: iso(-3_600_000), to_date: iso(60_000) };
    const stats = await call(w, "POST", url(w, "v2", "/monitoring/stats"), { ...range, group_by: "use_case_type" });
    expectEpilotShape("getMonitoringStatsV2", 200, stats.body);
    expect(stats.body.breakdown).toEqual(expect.arrayContaining([{ use_case_type: "outbound", total_events: 3, success_count: 1, error_count: 2, warning_count: 0, skipped_count: 0 }]));
    const series = await call(w, "POST", url(w, "v2", "/monitoring/time-series"), { ...range, interval: "1h" });
    expectEpilotShape("getMonitoringTimeSeriesV2", 200, series.body);
    expect(series.body.buckets.reduce((n: number, b: { total_count: number }) => n + b.total_count, 0)).toBe(stats.body.total_events);
  });

  it("getAssociatedMonitoringEvents links an event's correlation id, deliveries and the inbound event as received", async () => {
    const res = await call(w, "GET", url(w, "v2", `/monitoring/events/${w.real[0]}/associated`));
    expect(res.status).toBe(200);
    expectEpilotShape("getAssociatedMonitoringEvents", 200, res.body);
    const ids = res.body.monitoring_events.map((e: { event_id: string }) => e.event_id);
    expect(ids).toEqual(expect.arrayContaining([w.real[0], w.real[1], w.deliveries.delivered]));
    expect(res.body.inbound_event).toMatchObject({ event_id: w.real[0], payload: { id: "C-1", name: "Ada" }, event_name: "ContactChanged" });
    // By the UUID form of its id too; an unknown event has nothing associated.
    const uuid = res.body.monitoring_events.find((e: { event_id: string }) => e.event_id === w.real[0]).id;
    expect((await call(w, "GET", url(w, "v2", `/monitoring/events/${uuid}/associated`))).body.inbound_event.event_id).toBe(w.real[0]);
    expect((await call(w, "GET", url(w, "v2", "/monitoring/events/nothing-like-it/associated"))).body).toEqual({ monitoring_events: [], inbound_event: null });
  });

  it("getOutboundStatus reports each outbound use case, and a conflict when all its webhooks are disabled", async () => {
    const ok = await call(w, "GET", url(w, "v1", "/outbound-status"));
    expect(ok.status).toBe(200);
    expectEpilotShape("getOutboundStatus", 200, ok.body);
    expect(ok.body.useCases).toEqual([
      { useCaseId: w.outboundId, name: "Contracts to ERP", useCaseEnabled: true, eventCatalogEvent: "contract.created", eventEnabled: true, webhooks: [{ webhookId: w.endpointId, webhookName: "ERP webhook", enabled: true }], status: "ok", conflicts: [] },
    ]);
    await env.DB.prepare("UPDATE outbound_endpoints SET state = 'disabled' WHERE id = ?").bind(w.endpointId).run();
    const conflict = (await call(w, "GET", url(w, "v1", "/outbound-status"))).body;
    expect(conflict.useCases[0]).toMatchObject({ status: "conflict", conflicts: [{ type: "all_webhooks_disabled", message: expect.any(String) }] });
    await env.DB.prepare("UPDATE outbound_endpoints SET state = 'active' WHERE id = ?").bind(w.endpointId).run();
  });

  it("queryAccessLogs answers epilot's page (entries once the ACCESS_LOG binding is deployed)", async () => {
    const res = await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { method: "POST" });
    expect(res.status).toBe(200);
    expectEpilotShape("queryAccessLogs", 200, res.body);
    // Without the binding (the Worker not yet wired) the log is simply empty; the rest needs it.
    if (!("ACCESS_LOG" in env)) return;
    const entries = await eventually(
      async () => (await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { path: "/monitoring/outbound-events", limit: 100 })).body.data as Record<string, unknown>[],
      (data) => data.length >= 4,
      "access log entries",
    );
    expect(entries[0]).toMatchObject({ method: "POST", status: 200, org_id: w.tenantId, service: "integrations", token_id: expect.any(String), response_latency_ms: expect.any(Number) });
    expect(entries.every((e) => String(e.path).startsWith(`/v1/integrations/${w.integrationId}/monitoring/outbound-events`))).toBe(true);

    // The body's integration_id names the integration of POST /v3/erp/updates/events.
    const ingest = await eventually(
      async () => (await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { path: "/v3/erp/updates/events" })).body.data as Record<string, unknown>[],
      (data) => data.length >= 1,
      "the ingest request in the access log",
    );
    expect(ingest[0]).toMatchObject({ method: "POST", status: 200, service: "erp" });

    // Pages by (timestamp, request_id); a token filter finds the same calls.
    const p1 = (await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { limit: 2 })).body;
    expectEpilotShape("queryAccessLogs", 200, p1);
    expect(p1.has_more).toBe(true);
    const p2 = (await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { limit: 2, cursor: p1.next_cursor })).body;
    expect(p2.data.map((e: { request_id: string }) => e.request_id)).not.toContain(p1.data[1].request_id);
    expect(p2.data[0].timestamp <= p1.data[1].timestamp).toBe(true);
    const byToken = (await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { token_id: entries[0]!.token_id, status: 200, limit: 100 })).body.data;
    expect(byToken.length).toBeGreaterThanOrEqual(entries.length);
    expect((await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { token_id: "api_nobody" })).body.data).toEqual([]);

    // A stranger naming this integration leaves nothing its owner sees, whatever it was answered.
    const stranger = await tenantWithToken("Snoop");
    expectError(await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), {}, stranger.token), 404, "NOT_FOUND");
    expectError(await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), { status: "bad" }, stranger.token), 400, "VALIDATION_FAILED");
    await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { limit: 1 }, stranger.token);
    const seen = (await call(w, "POST", url(w, "v1", "/monitoring/access-logs"), { limit: 100 })).body.data as { org_id: string; token_id: string }[];
    expect(seen.every((e) => e.org_id === w.tenantId)).toBe(true);

    // Entries older than MAX_KEPT_DAYS go by themselves (the object's daily alarm), the rest stay.
    // Typed here until worker-configuration.d.ts declares the binding.
    const ns = (env as unknown as { ACCESS_LOG: DurableObjectNamespace<AccessLog> }).ACCESS_LOG;
    const log = ns.get(ns.idFromName(w.integrationId));
    await runInDurableObject(log, (_i: AccessLog, state) => {
      state.storage.sql.exec("INSERT INTO access_log (request_id, org_id, service, method, path, status, latency_ms, at) VALUES ('old', ?, 'integrations', 'GET', '/x', 200, 1, ?)", w.tenantId, iso(-(MAX_KEPT_DAYS + 1) * 86_400_000));
    });
    expect(await runDurableObjectAlarm(log)).toBe(true);
    const after = await runInDurableObject(log, (_i: AccessLog, state) => state.storage.sql.exec<{ request_id: string }>("SELECT request_id FROM access_log").toArray().map((r) => r.request_id));
    expect(after).not.toContain("old");
    expect(after.length).toBeGreaterThan(0);
  });
});

describe("hostile and unhappy paths", () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });

  const posts = ["/events", "/monitoring/inbound-events", "/monitoring/outbound-events", "/monitoring/stats", "/monitoring/access-logs"];

  it("refuses malformed queries with the error envelope, never a 500", async () => {
    const bad: [string, unknown][] = [
      ["/events", { event_type: "MERGE" }],
      ["/events", { cursor: { event_id: 5 } }],
      ["/events", { cursor: { event_time: "yesterday" } }],
      ["/events", { colour: "red" }],
      ["/monitoring/inbound-events", { status: "done" }],
      ["/monitoring/inbound-events", { limit: 101 }],
      ["/monitoring/inbound-events", { from_date: "2025-13-40" }],
      ["/monitoring/outbound-events", { status: "delivered" }],
      ["/monitoring/stats", { inbound_group_by: ["colour"] }],
      ["/monitoring/stats", { from_date: iso(0), to_date: iso(-60_000) }],
      ["/monitoring/timeseries", { interval: "1h" }],
      ["/monitoring/timeseries", { from_date: iso(-3_600_000), interval: "2h" }],
      ["/monitoring/access-logs", { status: "ok" }],
      ["/monitoring/access-logs", { cursor: "abc" }],
      ["/events/replay", { event_ids: [] }],
    ];
    for (const [path, body] of bad) {
      const res = await call(w, "POST", url(w, "v1", path), body);
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body).toMatchObject({ code: expect.any(String), message: expect.any(String), error: { code: res.body.code } });
    }
    // Years of 5-minute buckets are not refused, but answered sparse: only buckets holding events.
    const long = await call(w, "POST", url(w, "v1", "/monitoring/timeseries"), { from_date: "2020-01-01T00:00:00Z", interval: "5m" });
    expect(long.status).toBe(200);
    expect(long.body.sparse).toBe(true);
    expect(long.body.buckets.length).toBeLessThan(5000);
    expect(long.body.buckets.every((b: { inbound: { total_count: number } | null; outbound: { total_count: number } | null }) => (b.inbound?.total_count ?? 0) + (b.outbound?.total_count ?? 0) > 0)).toBe(true);
    for (const [path, body] of [["/monitoring/events", { level: "fatal" }], ["/monitoring/stats", { group_by: "colour" }], ["/monitoring/time-series", { from_date: iso(-60_000) }], ["/monitoring/events", { cursor: [] }]] as const) {
      expect((await call(w, "POST", url(w, "v2", path), body)).status, `${path}`).toBe(400);
    }
    const notJson = await api("POST", url(w, "v1", "/monitoring/inbound-events"), { token: w.token, body: "status=error", headers: { "content-type": "text/plain" } });
    expectError(notJson, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("needs a token with monitoring:read, and shows nothing of another tenant's integration", async () => {
    for (const path of posts) expectError(await api("POST", url(w, "v1", path), { json: {} }), 401, "UNAUTHORIZED");
    const narrow = await createToken(w.tenantId, ["integrations:read"]);
    expectError(await call(w, "POST", url(w, "v1", "/monitoring/inbound-events"), {}, narrow.token), 403, "FORBIDDEN");

    const stranger = await tenantWithToken("Stranger");
    for (const path of posts) expectError(await call(w, "POST", url(w, "v1", path), {}, stranger.token), 404, "NOT_FOUND");
    for (const path of ["/monitoring/events", "/monitoring/stats"]) expectError(await call(w, "POST", url(w, "v2", path), {}, stranger.token), 404, "NOT_FOUND");
    expectError(await call(w, "GET", url(w, "v1", "/outbound-status"), undefined, stranger.token), 404, "NOT_FOUND");
    expectError(await call(w, "GET", url(w, "v2", `/monitoring/events/${w.real[0]}/associated`), undefined, stranger.token), 404, "NOT_FOUND");
    expectError(await call(w, "POST", url(w, "v1", "/monitoring/timeseries"), { from_date: iso(-60_000), interval: "1h" }, stranger.token), 404, "NOT_FOUND");
  });

  it("does not replay another integration's events", async () => {
    const other = await api("POST", "/v2/integrations", { token: w.token, json: { name: "Other" } });
    const res = await call(w, "POST", `/v1/integrations/${other.body.id}/events/replay`, { event_ids: [w.real[0]] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ replayed: 0, results: [{ event_id: w.real[0], status: "not_found" }] });
  });
});
