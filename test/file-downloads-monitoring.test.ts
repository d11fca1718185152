// File-proxy downloads in monitoring: recorded with recordDownloadStatement, then read through the
// real API with the other directions (events pages, filters, stats), kept per retention_days, and
// visible only to their own tenant.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { recordDownloadStatement, type DownloadRecord } from "../src/file-proxy/downloads-log";
import type { EventLog } from "../src/inbound/log-do";
import { applyRetention, RETENTION } from "../src/monitoring/service";
import { api, expectError, tenantWithToken } from "./helpers";
import { logOf } from "./inbound-helpers";

const ulid = (prefix: string, i: number) => `${prefix}${String(i).padStart(26 - prefix.length, "0")}`;
const iso = (msFromNow: number) => new Date(Date.now() + msFromNow).toISOString();

async function setup(settings?: Record<string, unknown>) {
  const { tenant, token } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", { token, json: { name: "Archive", ...(settings && { settings }) } });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return { tenantId: tenant.id, token, integrationId: res.body.id as string };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** A download as the proxy records it, received `msAgo` ago and lasting `durationMs`. */
function download(s: Setup, id: string, extra: Partial<DownloadRecord> & { msAgo?: number } = {}): DownloadRecord {
  const { msAgo = 60_000, ...rest } = extra;
  const durationMs = rest.durationMs ?? 25;
  return {
    id,
    tenantId: s.tenantId,
    integrationId: s.integrationId,
    useCaseSlug: "invoices",
    params: { invoice_id: "INV-1", api_key: "********" },
    status: "success",
    archiveStatus: 200,
    httpStatus: 200,
    bytes: 1024,
    range: null,
    auth: "signature",
    receivedAt: iso(-msAgo),
    completedAt: iso(-msAgo + durationMs),
    durationMs,
    ...rest,
  };
}

const record = (rows: DownloadRecord[]) => env.DB.batch(rows.map((r) => recordDownloadStatement(env.DB, r)));

type InboundEvent = { id: string; status?: string; error_category?: string; correlation_id?: string; received_at?: string; duration?: number };

/** Inbound events written straight into the integration's log (the shard of events without a group; monitoring reads every shard). */
async function inboundEvents(s: Setup, rows: InboundEvent[]) {
  await runInDurableObject(logOf(s.integrationId), (_instance: EventLog, state) => {
    for (const e of rows) {
      state.storage.sql.exec(
        `INSERT INTO events (id, tenant_id, integration_id, use_case_slug, event_name, status, error_category, correlation_id, received_at, processing_duration_ms)
         VALUES (?, ?, ?, 'contacts', 'contact.updated', ?, ?, ?, ?, ?)`,
        e.id, s.tenantId, s.integrationId, e.status ?? "done", e.error_category ?? null, e.correlation_id ?? null, e.received_at ?? iso(-60_000), e.duration ?? null,
      );
    }
  });
}

const events = async (s: Setup, q: Record<string, unknown>, token = s.token) => api("POST", `/v1/integrations/${s.integrationId}/events`, { token, json: q });
const idsOf = (body: { events: { event_id: string }[] }) => body.events.map((e) => e.event_id.slice(-2));

describe("file downloads in the events view", () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup();
    // Interleaved ids: inbound 01, 03, 05, 07; downloads 02, 04, 06, 08.
    await inboundEvents(s, [
      { id: ulid("01JDFDWN", 1), correlation_id: "order-1" },
      { id: ulid("01JDFDWN", 3) },
      { id: ulid("01JDFDWN", 5), status: "error", error_category: "downstream" },
      { id: ulid("01JDFDWN", 7) },
    ]);
    await record([
      download(s, ulid("01JDFDWN", 2), { msAgo: 50_000, range: "bytes=0-99", bytes: 100, httpStatus: 206, archiveStatus: 206, auth: "token" }),
      download(s, ulid("01JDFDWN", 4), {
        msAgo: 40_000, status: "error", httpStatus: 502, archiveStatus: 503, bytes: 0,
        errorCode: "ARCHIVE_ERROR", errorMessage: "The archive answered 503", errorCategory: "downstream",
      }),
      download(s, ulid("01JDFDWN", 6), { msAgo: 30_000, useCaseSlug: "contracts", params: { contract: "C-9" } }),
      download(s, ulid("01JDFDWN", 8), {
        msAgo: 20_000, status: "error", httpStatus: 400, archiveStatus: null, bytes: 0,
        errorCode: "VALIDATION_FAILED", errorMessage: "Missing parameter invoice_id", errorCategory: "validation", params: {},
      }),
    ]);
  });

  it("pages inbound events and downloads together, newest first by id, across pages", async () => {
    const p1 = (await events(s, { limit: 3 })).body;
    expect(idsOf(p1)).toEqual(["08", "07", "06"]);
    const p2 = (await events(s, { limit: 3, cursor: p1.next_cursor })).body;
    expect(idsOf(p2)).toEqual(["05", "04", "03"]);
    const p3 = (await events(s, { limit: 3, cursor: p2.next_cursor })).body;
    expect(idsOf(p3)).toEqual(["02", "01"]);
    expect(p3.next_cursor).toBeNull();
    expect([...p1.events, ...p2.events, ...p3.events].map((e: { direction: string }) => e.direction)).toEqual([
      "file", "inbound", "file", "inbound", "file", "inbound", "file", "inbound",
    ]);
  });

  it("answers a download as a monitored event with its file details, and null details on other rows", async () => {
    const body = (await events(s, { direction: "file" })).body;
    expect(idsOf(body)).toEqual(["08", "06", "04", "02"]);
    const failed = body.events.find((e: { event_id: string }) => e.event_id === ulid("01JDFDWN", 4));
    expect(failed).toEqual({
      event_id: ulid("01JDFDWN", 4),
      direction: "file",
      event_name: "file.download",
      use_case_slug: "invoices",
      status: "error",
      error_category: "downstream",
      correlation_id: null,
      received_at: expect.any(String),
      completed_at: expect.any(String),
      processing_duration_ms: 25,
      attempts: 1,
      last_error: "The archive answered 503",
      ack_status: null,
      replay_of: null,
      file: { params: { invoice_id: "INV-1", api_key: "********" }, bytes: 0, archive_status: 503, http_status: 502, range: null },
    });
    const ranged = body.events.find((e: { event_id: string }) => e.event_id === ulid("01JDFDWN", 2));
    expect(ranged.file).toEqual({ params: { invoice_id: "INV-1", api_key: "********" }, bytes: 100, archive_status: 206, http_status: 206, range: "bytes=0-99" });
    expect(ranged).toMatchObject({ status: "success", last_error: null });
    expect(body.events.find((e: { event_id: string }) => e.event_id === ulid("01JDFDWN", 8)).file).toEqual({
      params: {}, bytes: 0, archive_status: null, http_status: 400, range: null,
    });

    const inbound = (await events(s, { direction: "inbound" })).body;
    expect(idsOf(inbound)).toEqual(["07", "05", "03", "01"]);
    expect(inbound.events.every((e: { file: unknown }) => e.file === null)).toBe(true);
    expect(idsOf((await events(s, { direction: "outbound" })).body)).toEqual([]);
  });

  it("applies every filter to the file arm", async () => {
    expect(idsOf((await events(s, { direction: "file", status: "error" })).body)).toEqual(["08", "04"]);
    expect(idsOf((await events(s, { status: "error" })).body)).toEqual(["08", "05", "04"]);
    expect(idsOf((await events(s, { use_case: "contracts" })).body)).toEqual(["06"]);
    expect(idsOf((await events(s, { error_category: "downstream" })).body)).toEqual(["05", "04"]);
    expect(idsOf((await events(s, { error_category: "validation" })).body)).toEqual(["08"]);
    expect(idsOf((await events(s, { event_name: "file.download" })).body)).toEqual(["08", "06", "04", "02"]);
    expect(idsOf((await events(s, { event_name: "contact.updated" })).body)).toEqual(["07", "05", "03", "01"]);
    expect(idsOf((await events(s, { event_id: ulid("01JDFDWN", 6) })).body)).toEqual(["06"]);
    // Downloads carry no correlation id: a correlation filter or a trace never shows them.
    expect(idsOf((await events(s, { correlation_id: "order-1" })).body)).toEqual(["01"]);
    const trace = (await api("GET", `/v1/integrations/${s.integrationId}/monitoring/traces/order-1`, { token: s.token })).body;
    expect(trace.events.map((e: { direction: string; file: unknown }) => [e.direction, e.file])).toEqual([["inbound", null]]);
    // received_at 50 s, 40 s, 30 s, 20 s ago.
    expect(idsOf((await events(s, { direction: "file", from: iso(-45_000), to: iso(-25_000) })).body)).toEqual(["06", "04"]);

    expectError(await events(s, { direction: "files" }), 400, "VALIDATION_FAILED");
  });

  it("answers not_found to a replay of a download", async () => {
    const res = await api("POST", `/v1/integrations/${s.integrationId}/events/replay`, { token: s.token, json: { event_ids: [ulid("01JDFDWN", 4)] } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      replayed: 0,
      results: [{ event_id: ulid("01JDFDWN", 4), status: "not_found", replay_event_id: null, message: expect.any(String) }],
      event_ids: [ulid("01JDFDWN", 4)],
    });
  });

  it("keeps downloads from other tenants and integrations", async () => {
    const other = await setup();
    expectError(await events(s, {}, other.token), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/integrations/${s.integrationId}/monitoring/stats`, { token: other.token }), 404, "NOT_FOUND");
    // The other tenant's own integration shows only its own downloads.
    await record([download(other, ulid("01JDXTHR", 1))]);
    const own = (await events(other, {})).body;
    expect(own.events.map((e: { event_id: string }) => e.event_id)).toEqual([ulid("01JDXTHR", 1)]);
    // Nor can a download id of one tenant be looked up through another's integration.
    expect((await events(other, { event_id: ulid("01JDFDWN", 4) })).body.events).toEqual([]);
  });
});

describe("file downloads in the statistics", () => {
  it("counts downloads per use case and status, with nearest-rank percentiles of their own", async () => {
    const s = await setup();
    await inboundEvents(s, [{ id: ulid("01JDSTAT", 1), duration: 7 }]);
    await record([
      ...[10, 20, 30, 40].map((d, i) => download(s, ulid("01JDSTAF", i), { durationMs: d })),
      download(s, ulid("01JDSTAF", 9), { durationMs: 500, status: "error", errorCode: "ARCHIVE_TIMEOUT", errorCategory: "timeout", httpStatus: 504 }),
      // Outside the 1 h window: not counted.
      download(s, ulid("01JDSTAE", 1), { durationMs: 9999, msAgo: 2 * 3600_000 }),
    ]);
    const stats = (await api("GET", `/v1/integrations/${s.integrationId}/monitoring/stats?window=1h`, { token: s.token })).body;
    expect(stats.counts).toEqual([
      { direction: "file", use_case: "invoices", status: "error", count: 1 },
      { direction: "file", use_case: "invoices", status: "success", count: 4 },
      { direction: "inbound", use_case: "contacts", status: "done", count: 1 },
    ]);
    // 10, 20, 30, 40, 500: ranks ceil(2.5) = 3, ceil(4.75) = 5, ceil(4.95) = 5.
    expect(stats.processing_ms.file).toEqual({ count: 5, p50: 30, p95: 500, p99: 500 });
    expect(stats.processing_ms.inbound).toEqual({ count: 1, p50: 7, p95: 7, p99: 7 });
    expect(stats.processing_ms.outbound).toEqual({ count: 0, p50: null, p95: null, p99: null });
    expect(stats.acks).toEqual({ pending: 0, timeout: 0, processed: 0, failed: 0 });
  });
});

describe("file downloads and retention", () => {
  it("deletes downloads older than the integration's retention_days in bounded batches, keeping recent ones", async () => {
    await env.DB.prepare("DELETE FROM maintenance_cursors").run();
    // Whatever earlier tests left is within 30 days: only these two integrations have expired rows.
    const busy = await setup({ retention_days: 2 });
    const quiet = await setup({ retention_days: 2 });
    const extra = 7;
    const day = 86_400_000;
    await record(Array.from({ length: RETENTION.rowsPerIntegration + extra }, (_, i) => download(busy, ulid("01JDEXPB", i), { msAgo: 3 * day })));
    await record([
      ...[1, 2].map((i) => download(quiet, ulid("01JDEXPQ", i), { msAgo: 3 * day })),
      download(quiet, ulid("01JDNEWQ", 1), { msAgo: 1 * day }),
      download(busy, ulid("01JDNEWB", 1), { msAgo: 1 * day }),
    ]);
    const left = async (s: Setup) =>
      (await env.DB.prepare("SELECT id FROM file_downloads WHERE integration_id = ? ORDER BY id").bind(s.integrationId).all<{ id: string }>()).results.map((r) => r.id);

    const first = await applyRetention(env);
    expect(first).toMatchObject({ events: 0, deliveries: 0, file_downloads: RETENTION.rowsPerIntegration + 2 });
    expect(await left(quiet)).toEqual([ulid("01JDNEWQ", 1)]);
    expect((await left(busy)).length).toBe(extra + 1);
    // Only its downloads were left over, and that alone keeps the cursor just before it.
    const ids = (await env.DB.prepare("SELECT id FROM integrations ORDER BY id").all<{ id: string }>()).results.map((r) => r.id);
    const cursor = await env.DB.prepare("SELECT position FROM maintenance_cursors WHERE job = 'retention'").first<{ position: string }>();
    expect(cursor!.position).toBe(ids[ids.indexOf(busy.integrationId) - 1] ?? "");

    // The busy integration had more: the next run starts with it again and finishes it.
    expect(await applyRetention(env)).toMatchObject({ file_downloads: extra });
    expect(await left(busy)).toEqual([ulid("01JDNEWB", 1)]);
    expect(await applyRetention(env)).toMatchObject({ file_downloads: 0 });

    const shown = (await events(busy, { direction: "file" })).body;
    expect(shown.events.map((e: { event_id: string }) => e.event_id)).toEqual([ulid("01JDNEWB", 1)]);
  });

  it("deletes an integration's downloads with the integration", async () => {
    const s = await setup();
    await record([download(s, ulid("01JDG0NE", 1))]);
    expect((await api("DELETE", `/v2/integrations/${s.integrationId}`, { token: s.token })).status).toBe(200);
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM file_downloads WHERE integration_id = ?").bind(s.integrationId).first<{ n: number }>();
    expect(n!.n).toBe(0);
  });
});
