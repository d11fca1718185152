// Every list, sweep and retention statement reads through an index: EXPLAIN QUERY PLAN of the very
// statements the services run (they export their SQL), in D1 and, for the inbound event log and the
// outbound deliveries, in a log shard's or an OutboundEndpoint's own SQLite; and the bounded
// behaviour built on them.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EXPIRED_EVENTS_SQL, INBOUND_STATS_SQL, KEY_SEEN_SQL, monitoredInboundEvents, SAME_ID } from "../../src/inbound/events-log";
import type { EventLog } from "../../src/inbound/log-do";
import { eventLog, shardCount, shardOf } from "../../src/inbound/shards";
import { ENABLED_OUTBOUND_USE_CASES_SQL } from "../../src/integrations/service";
import { newId } from "../../src/platform/ids";
import type { MonitoredEventFilter } from "../../src/platform/monitored-events";
import { applyRetention, eventsQuery, RETENTION, RETENTION_SQL, STATS_SAMPLE_SIZE, STATS_SQL } from "../../src/monitoring/service";
import type { EventQuery } from "../../src/monitoring/schema";
import {
  ACK_TIMEOUT_SQL,
  ACKNOWLEDGE_SQL,
  DEAD_LETTERS_SQL,
  DUE_SQL,
  EXPIRED_DELIVERIES_SQL,
  monitoredDeliveries,
  NEXT_ACK_DEADLINE_SQL,
  OUTBOUND_STATS_SQL,
  OUTCOME_SQL,
  POLL_ACK_SQL,
  POLL_SQL,
  REDRIVE_SQL,
  REPLAY_SQL,
} from "../../src/outbound/deliveries-log";
import { ENDPOINTS_OF_INTEGRATION_SQL, REDRIVE_PAGE_SIZE } from "../../src/outbound/service";
import { AUDIT_LOG_SQL } from "../../src/platform/audit";
import { api, expectError, tenantWithToken } from "../helpers";
import { logOf, logQuery } from "../inbound-helpers";
import { deliveryRows, endpointQuery } from "../outbound-helpers";

/**
 * What a statement may SCAN: a constant row, a subquery or CTE it built (`walk`, `ranked`), json_each.
 * Never a table (events, deliveries, use_cases, audit_log, entity_identifiers, or any other), whether
 * read row by row or through a whole index.
 */
const HARMLESS_SCAN = /^SCAN (CONSTANT ROW|\(subquery-\d+\)|\w+ VIRTUAL TABLE|walk|ranked)(\s|$)/;

async function plan(sql: string, params: unknown[]): Promise<string[]> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params).all<{ detail: string }>();
  return results.map((r) => r.detail);
}

/** The plan of a statement in an event log shard's own SQLite (its schema created by the EventLog constructor). */
async function shardPlan(sql: string, params: unknown[]): Promise<string[]> {
  return runInDurableObject(logOf("query-plans"), (_instance: EventLog, state) =>
    state.storage.sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, ...(params as SqlStorageValue[])).toArray().map((r) => r.detail),
  );
}

/** The plan of a statement in an outbound endpoint's own SQLite (its schema created by the OutboundEndpoint constructor). */
async function endpointPlan(sql: string, params: unknown[]): Promise<string[]> {
  return (await endpointQuery<{ detail: string }>("query-plans/main", `EXPLAIN QUERY PLAN ${sql}`, ...params)).map((r) => r.detail);
}

/** Asserts the plan scans nothing but harmless sources, and searches by index. */
function expectIndexed(name: string, lines: string[]) {
  const context = `${name}:\n  ${lines.join("\n  ")}`;
  for (const line of lines.filter((l) => l.startsWith("SCAN "))) expect(line, context).toMatch(HARMLESS_SCAN);
  expect(lines.filter((l) => /^SEARCH \w+ USING (COVERING )?INDEX /.test(l)).length, context).toBeGreaterThan(0);
}

const page = (q: Partial<EventQuery> & { cursor?: string }) => eventsQuery("i", { limit: 50, ...q } as EventQuery & { limit: number })!;
const AFTER = btoa(JSON.stringify({ after: "01JD0000000000000000000000" }));

/** D1's statements: configuration, file downloads, the audit log, retention of what D1 still keeps. */
const STATEMENTS: Record<string, [string, unknown[]]> = {
  "fan-out: a tenant's outbound use cases": [ENABLED_OUTBOUND_USE_CASES_SQL, ["t"]],
  "retention: next integrations": [RETENTION_SQL.integrations, [20]],
  "retention: file_downloads": [RETENTION_SQL.fileDownloads, ["i", "2026-01-01", 500]],
  "retention: audit_log": [RETENTION_SQL.auditLog, ["2026-01-01", 500]],
  "retention: core_event_dead_letters": [RETENTION_SQL.coreEventDeadLetters, ["01JD0000000000000000000000", 500]],
  "events page": [page({}).sql, page({}).params],
  "events page after a cursor": [page({ cursor: AFTER }).sql, page({ cursor: AFTER }).params],
  "events by id": [page({ event_id: "01JD0000000000000000000000" }).sql, page({ event_id: "01JD0000000000000000000000" }).params],
  "events in a time range, failed downstream": [page({ from: "2026-01-01T00:00:00Z", error_category: "downstream" }).sql, page({ from: "2026-01-01T00:00:00Z", error_category: "downstream" }).params],
  "file downloads page": [page({ direction: "file" }).sql, page({ direction: "file" }).params],
  "file downloads by status and use case, after a cursor": [
    page({ direction: "file", status: "error", use_case: "invoices", cursor: AFTER }).sql,
    page({ direction: "file", status: "error", use_case: "invoices", cursor: AFTER }).params,
  ],
  "file downloads in a time range": [page({ direction: "file", from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" }).sql, page({ direction: "file", from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" }).params],
  "stats: counts": [STATS_SQL.counts, ["i", "2026-01-01"]],
  "stats: file percentiles": [STATS_SQL.filePercentiles, ["i", "2026-01-01", STATS_SAMPLE_SIZE]],
  "audit log": [AUDIT_LOG_SQL.first, ["t", 51]],
  "audit log after a cursor": [AUDIT_LOG_SQL.after, ["t", "01JD0000000000000000000000", 51]],
  "outbound endpoints of an integration": [ENDPOINTS_OF_INTEGRATION_SQL, ["i"]],
};

// ---- the deliveries' statements, in an outbound endpoint's own SQLite ------------------------------

/** Copied from src/outbound/endpoint-do.ts (OutboundEndpoint.monitored, not exported): how an endpoint orders and bounds the monitored arm. */
const ENDPOINT_MONITORED_ORDER = { page: "ORDER BY id DESC", trace: "ORDER BY received_at, id" } as const;

const deliveriesArm = (filter: MonitoredEventFilter, order: keyof typeof ENDPOINT_MONITORED_ORDER = "page"): [string, unknown[]] => {
  const arm = monitoredDeliveries("i", filter)!;
  return [`${arm.sql} ${ENDPOINT_MONITORED_ORDER[order]} LIMIT ?`, [...arm.params, 51]];
};

const ENDPOINT_STATEMENTS: Record<string, [string, unknown[]]> = {
  "ACK-timeout sweep": [ACK_TIMEOUT_SQL, ["2026-01-01", 1000]],
  "ACK: the rows of an ack_id": [ACKNOWLEDGE_SQL.update, ["processed", null, "2026-01-01", "a", "t", '["pending"]']],
  "ACK: the statuses of an ack_id": [ACKNOWLEDGE_SQL.now, ["a", "t"]],
  "attempt outcome": [OUTCOME_SQL, [200, null, "delivered", "2026-01-01", null, "01JD0000000000000000000000"]],
  "retention: expired deliveries": [`${EXPIRED_DELIVERIES_SQL} RETURNING id`, ["i", "2026-01-01", 500]],
  "events page": deliveriesArm({}),
  "events page after a cursor": deliveriesArm({ before: "01JD0000000000000000000000" }),
  "events by correlation id": deliveriesArm({ correlation_id: "c" }),
  "events by id": deliveriesArm({ event_id: "01JD0000000000000000000000" }),
  "events in a time range, failed downstream": deliveriesArm({ from: "2026-01-01T00:00:00Z", error_category: "downstream" }),
  trace: deliveriesArm({ correlation_id: "c" }, "trace"),
  "stats: counts": [OUTBOUND_STATS_SQL.counts, ["i", "2026-01-01"]],
  "stats: acks": [OUTBOUND_STATS_SQL.acks, ["i", "2026-01-01"]],
  "stats: durations": [OUTBOUND_STATS_SQL.durations, ["i", "2026-01-01", STATS_SAMPLE_SIZE]],
  "dead letters": [DEAD_LETTERS_SQL, ["i", "", 51]],
  "redrive by ids": [REDRIVE_SQL, ["2026-01-01", Date.now(), '["a","b"]', "i"]],
  replay: [REPLAY_SQL, ["01JD0000000000000000000001", "2026-01-01", Date.now(), "t", "01JD0000000000000000000000", "i"]],
  "poll: dead-letter exhausted": [POLL_SQL.deadLetter, ["2026-01-01", "{}", "i", 100]],
  "poll: lease": [POLL_SQL.lease, ["2026-01-01", "{}", "i", 10, "2026-01-02"]],
  "poll: more?": [POLL_SQL.more, ["2026-01-01", "{}", "i", 1]],
  "poll: ack of a leased message": [POLL_ACK_SQL, ["2026-01-01", "01JD0000000000000000000000", "lease"]],
};

// ---- the event log's statements, in a shard's own SQLite -------------------------------------------

/** Copied from src/inbound/log-do.ts (EventLog.monitored, not exported): how a shard orders and bounds the monitored arm. */
const MONITORED_ORDER = { page: "ORDER BY id DESC", trace: "ORDER BY received_at, id" } as const;
/** Copied from src/inbound/log-do.ts (EventLog.nextRound, not exported): the queue's next round. */
const NEXT_ROUND_SQL = `SELECT seq, event_id, group_key, attempts, last_error FROM queue
          WHERE group_key NOT IN (SELECT group_key FROM queue WHERE next_at > 0 AND next_at > ?) ORDER BY seq LIMIT ?`;
/** Copied from src/inbound/log-do.ts (EventLog.scheduleNext, not exported): whether events are ready, and the earliest backoff. */
const READY_SQL = "SELECT 1 FROM queue WHERE group_key NOT IN (SELECT group_key FROM queue WHERE next_at > 0 AND next_at > ?) LIMIT 1";
const WAKE_SQL = "SELECT MIN(next_at) AS wake FROM queue WHERE next_at > 0 AND next_at > ?";

const monitoredArm = (filter: MonitoredEventFilter, order: keyof typeof MONITORED_ORDER = "page"): [string, unknown[]] => {
  const arm = monitoredInboundEvents("i", filter);
  return [`${arm.sql} ${MONITORED_ORDER[order]} LIMIT ?`, [...arm.params, 51]];
};

const SHARD_STATEMENTS: Record<string, [string, unknown[]]> = {
  "dedup: same deduplication id in the window": [SAME_ID, ["d", "2026-01-01", "g"]],
  "dedup: an X-Signature webhook's Idempotency-Key seen": [KEY_SEEN_SQL, ["k", "uc", "2026-01-01"]],
  "events page after a cursor": monitoredArm({ before: "01JD0000000000000000000000" }),
  "events by correlation id": monitoredArm({ correlation_id: "c" }),
  "events by correlation id, failed, after a cursor": monitoredArm({ correlation_id: "c", error_category: "downstream", before: "01JD0000000000000000000000" }),
  "events by id": monitoredArm({ event_id: "01JD0000000000000000000000" }),
  trace: monitoredArm({ correlation_id: "c" }, "trace"),
  "stats: counts": [INBOUND_STATS_SQL.counts, ["i", "2026-01-01"]],
  "stats: acks": [INBOUND_STATS_SQL.acks, ["i", "2026-01-01"]],
  "stats: durations": [INBOUND_STATS_SQL.durations, ["i", "2026-01-01", STATS_SAMPLE_SIZE]],
  "retention: expired events": [`${EXPIRED_EVENTS_SQL} RETURNING id`, ["2026-01-01", 500]],
  "queue: the earliest backoff": [WAKE_SQL, [Date.now()]],
};

describe("query plans", () => {
  for (const [name, [sql, params]] of Object.entries(STATEMENTS)) {
    it(`${name}: no table scan, searched by index`, async () => expectIndexed(name, await plan(sql, params)));
  }

  it("a page of events reads file downloads' (integration_id, id) index in D1 and deliveries' in each endpoint, sorting nothing", async () => {
    for (const filter of [{}, { before: "01JD0000000000000000000000" }, { status: "error" }] as MonitoredEventFilter[]) {
      const q = page({ ...(filter.before && { cursor: AFTER }), ...(filter.status && { status: filter.status }) });
      const d1 = await plan(q.sql, q.params);
      expect(d1.filter((l) => l.includes("TEMP B-TREE")), d1.join("\n")).toEqual([]);
      expect(d1.some((l) => /USING (COVERING )?INDEX file_downloads_integration /.test(l)), d1.join("\n")).toBe(true);
      const endpoint = await endpointPlan(...deliveriesArm(filter));
      expect(endpoint.filter((l) => l.includes("TEMP B-TREE")), endpoint.join("\n")).toEqual([]);
      expect(endpoint.some((l) => /^SEARCH deliveries USING (COVERING )?INDEX deliveries_integration /.test(l)), endpoint.join("\n")).toBe(true);
    }
  });

  it("a correlation id is not looked for in D1: downloads carry none (the log's shards and the endpoints answer)", () => {
    expect(eventsQuery("i", { limit: 50, correlation_id: "c" } as EventQuery & { limit: number })).toBeNull();
  });

  it("a page of file downloads alone walks their (integration_id, id) index, sorting nothing", async () => {
    const q = page({ direction: "file", use_case: "invoices" });
    const lines = await plan(q.sql, q.params);
    expect(lines.filter((l) => l.includes("TEMP B-TREE")), lines.join("\n")).toEqual([]);
    expect(lines.some((l) => l.startsWith("SEARCH file_downloads USING INDEX file_downloads_integration ")), lines.join("\n")).toBe(true);
  });

  it("statements bounded by LIMIT delete or update through an indexed, limited subquery", async () => {
    for (const sql of [EXPIRED_EVENTS_SQL, EXPIRED_DELIVERIES_SQL, RETENTION_SQL.fileDownloads, RETENTION_SQL.auditLog, ACK_TIMEOUT_SQL, POLL_SQL.lease, POLL_SQL.deadLetter]) {
      expect(sql).toMatch(/WHERE id IN \(\s*SELECT [\s\S]+ LIMIT \?\d?\)/);
    }
  });
});

describe("query plans in an outbound endpoint", () => {
  for (const [name, [sql, params]] of Object.entries(ENDPOINT_STATEMENTS)) {
    it(`${name}: no table scan, searched by index`, async () => expectIndexed(name, await endpointPlan(sql, params)));
  }

  it("each statement reads the index made for it", async () => {
    const expected: [string, RegExp][] = [
      ["ACK-timeout sweep", /SEARCH deliveries USING (COVERING )?INDEX deliveries_ack_pending \(completed_at<\?\)/],
      ["ACK: the rows of an ack_id", /SEARCH deliveries USING (COVERING )?INDEX deliveries_ack \(ack_id=\?\)/],
      ["ACK: the statuses of an ack_id", /SEARCH deliveries USING (COVERING )?INDEX deliveries_ack \(ack_id=\?\)/],
      ["retention: expired deliveries", /SEARCH deliveries USING (COVERING )?INDEX deliveries_integration_created \(integration_id=\? AND created_at<\?\)/],
      ["events by correlation id", /SEARCH deliveries USING (COVERING )?INDEX deliveries_correlation \(integration_id=\? AND correlation_id=\?\)/],
      ["trace", /SEARCH deliveries USING (COVERING )?INDEX deliveries_correlation \(integration_id=\? AND correlation_id=\?\)/],
      ["stats: counts", /SEARCH deliveries USING (COVERING )?INDEX deliveries_integration_created \(integration_id=\? AND created_at>\?\)/],
      ["stats: acks", /SEARCH deliveries USING (COVERING )?INDEX deliveries_integration_created \(integration_id=\? AND created_at>\?\)/],
      ["stats: durations", /SEARCH deliveries USING (COVERING )?INDEX deliveries_integration_created \(integration_id=\? AND created_at>\?\)/],
      ["dead letters", /SEARCH deliveries USING (COVERING )?INDEX deliveries_dead_lettered \(integration_id=\? AND id>\?\)/],
      ["redrive by ids", /SEARCH deliveries USING (COVERING )?INDEX deliveries_dead_lettered \(integration_id=\? AND id=\?\)/],
      ["poll: dead-letter exhausted", /SEARCH message USING (COVERING )?INDEX deliveries_poll \(integration_id=\? AND type=\? AND status=\? AND visible_at<\?\)/],
      ["poll: lease", /SEARCH message USING (COVERING )?INDEX deliveries_poll \(integration_id=\? AND type=\? AND status=\? AND visible_at<\?\)/],
      ["poll: more?", /SEARCH message USING (COVERING )?INDEX deliveries_poll \(integration_id=\? AND type=\? AND status=\? AND visible_at<\?\)/],
    ];
    for (const [name, pattern] of expected) {
      const [sql, params] = ENDPOINT_STATEMENTS[name]!;
      expect((await endpointPlan(sql, params)).join("\n"), name).toMatch(pattern);
    }
    // Under poison_policy block, a message's older pending siblings are found through deliveries_pending_order.
    for (const name of ["poll: lease", "poll: more?"]) {
      const [sql, params] = ENDPOINT_STATEMENTS[name]!;
      expect((await endpointPlan(sql, params)).join("\n"), name).toMatch(/SEARCH older USING (COVERING )?INDEX deliveries_pending_order \(use_case_id=\? AND mapping_id=\? AND id<\?\)/);
    }
  });

  it("a page of deliveries walks the (integration_id, id) index newest first, sorting nothing", async () => {
    for (const [sql, params] of [deliveriesArm({}), deliveriesArm({ status: "error" }), deliveriesArm({ before: "01JD0000000000000000000000" }), deliveriesArm({ use_case: "poll", event_name: "e" })]) {
      const lines = await endpointPlan(sql, params);
      const context = lines.join("\n");
      expect(lines.filter((l) => l.includes("TEMP B-TREE")), context).toEqual([]);
      expect(lines.some((l) => /^SEARCH deliveries USING (COVERING )?INDEX deliveries_integration \(integration_id=\?( AND id<\?)?\)/.test(l)), context).toBe(true);
    }
  });

  it("the due webhooks (ordered and unordered endpoints) and the next ACK deadline walk their partial indexes in order, sorting nothing", async () => {
    // Scans of a partial index in its own order, ended by the LIMIT: only the rows the index holds
    // (pending webhooks; deliveries waiting for their ACK), never the table.
    for (const [sql, params, index] of [
      [DUE_SQL.ordered, [], "deliveries_webhook_order"],
      [DUE_SQL.unordered, [25], "deliveries_due"],
      [NEXT_ACK_DEADLINE_SQL, [], "deliveries_ack_pending"],
    ] as [string, unknown[], string][]) {
      expect(sql).toMatch(/ORDER BY [\s\S]+ LIMIT (\?|1)$/);
      const lines = await endpointPlan(sql, params);
      const context = lines.join("\n");
      expect(lines.filter((l) => l.includes("TEMP B-TREE")), context).toEqual([]);
      expect(lines.filter((l) => l.startsWith("SCAN ") || l.startsWith("SEARCH ")), context).toEqual([expect.stringMatching(new RegExp(`^(SCAN|SEARCH) deliveries USING (COVERING )?INDEX ${index}(\\s|$)`))]);
    }
  });
});

describe("query plans in an event log shard", () => {
  for (const [name, [sql, params]] of Object.entries(SHARD_STATEMENTS)) {
    it(`${name}: no table scan, searched by index`, async () => expectIndexed(name, await shardPlan(sql, params)));
  }

  it("the dedup statements read their own indexes (events_dedup, events_correlation)", async () => {
    expect((await shardPlan(SAME_ID, ["d", "2026-01-01", "g"])).join("\n")).toMatch(/SEARCH events USING INDEX events_dedup \(deduplication_id=\? AND received_at>\?\)/);
    expect((await shardPlan(KEY_SEEN_SQL, ["k", "uc", "2026-01-01"])).join("\n")).toMatch(/SEARCH events USING INDEX events_correlation \(correlation_id=\?\)/);
  });

  it("a page of inbound events walks the shard's id index newest first, sorting nothing, and stops at the page size", async () => {
    // A shard holds one integration's events only, so no integration index is needed: the page walks
    // the primary key backwards and the LIMIT ends the walk.
    for (const [sql, params] of [monitoredArm({}), monitoredArm({ status: "error" }), monitoredArm({ before: "01JD0000000000000000000000" })]) {
      const lines = await shardPlan(sql, params);
      const context = lines.join("\n");
      expect(lines.filter((l) => l.includes("TEMP B-TREE")), context).toEqual([]);
      expect(lines.filter((l) => /^SCAN events(\s|$)/.test(l) && !/USING (COVERING )?INDEX sqlite_autoindex_events_1/.test(l)), context).toEqual([]);
      expect(lines.some((l) => /^(SCAN|SEARCH) events USING (COVERING )?INDEX sqlite_autoindex_events_1/.test(l)), context).toBe(true);
    }
  });

  it("a page by correlation id reads events_correlation", async () => {
    for (const [sql, params] of [monitoredArm({ correlation_id: "c" }), monitoredArm({ correlation_id: "c" }, "trace")]) {
      expect((await shardPlan(sql, params)).join("\n")).toMatch(/SEARCH events USING INDEX events_correlation \(correlation_id=\?\)/);
    }
  });

  it("the stats window and retention read events_received", async () => {
    for (const [sql, params] of [
      [INBOUND_STATS_SQL.counts, ["i", "2026-01-01"]],
      [INBOUND_STATS_SQL.acks, ["i", "2026-01-01"]],
      [INBOUND_STATS_SQL.durations, ["i", "2026-01-01", STATS_SAMPLE_SIZE]],
      [EXPIRED_EVENTS_SQL, ["2026-01-01", 500]],
    ] as [string, unknown[]][]) {
      expect((await shardPlan(sql, params)).join("\n"), sql).toMatch(/SEARCH events USING (COVERING )?INDEX events_received \(received_at[<>]=?\?\)/);
    }
  });

  it("a round takes the queue in order, leaving out backed-off groups through queue_waiting, sorting nothing", async () => {
    // The queue's order is its rowid (seq): the round walks it in order and the LIMIT ends the walk;
    // the groups to leave out are found through the partial index of waiting rows.
    for (const sql of [NEXT_ROUND_SQL, READY_SQL]) {
      const lines = await shardPlan(sql, sql === NEXT_ROUND_SQL ? [Date.now(), 200] : [Date.now()]);
      const context = lines.join("\n");
      expect(lines.filter((l) => l.includes("TEMP B-TREE")), context).toEqual([]);
      expect(lines.some((l) => /^SEARCH queue USING (COVERING )?INDEX queue_waiting \(next_at>\?\)/.test(l)), context).toBe(true);
    }
  });
});

// ---- behaviour on top of the plans ----------------------------------------------------------------

const pollUseCases = [
  { name: "Poll", slug: "poll", type: "outbound", configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name: "poll", jsonata_expression: "$", delivery: { type: "poll", max_delivery_attempts: 3 } }] } },
  { name: "Strict", slug: "strict", type: "outbound", configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name: "poll", jsonata_expression: "$", delivery: { type: "poll", max_delivery_attempts: 2, poison_policy: "block" } }] } },
];

async function pollSetup(settings?: Record<string, unknown>) {
  const { tenant, token } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", { token, json: { name: "Poller", ...(settings && { settings }), use_cases: pollUseCases } });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  const useCase = Object.fromEntries(res.body.use_cases.map((u: { slug: string; id: string }) => [u.slug, u.id])) as Record<string, string>;
  return { tenantId: tenant.id, token, integrationId: res.body.id as string, useCase };
}

const iso = (msFromNow: number) => new Date(Date.now() + msFromNow).toISOString();

/** The endpoint object of a use case's mapping "main" ("<use_case_id>/main"), where its deliveries live. */
const endpointOfUseCase = (useCaseId: string) => `${useCaseId}/main`;

const DELIVERY_COLUMNS = [
  "id", "tenant_id", "integration_id", "use_case_id", "use_case_slug", "mapping_id", "type", "event_id", "event_name", "payload", "status",
  "attempts", "max_attempts", "lease_token", "visible_at", "created_at", "completed_at", "processing_duration_ms", "ack_id", "ack_status",
];

/**
 * Deliveries as fan-out (and earlier polls) leave them, in their endpoints' objects, each endpoint
 * listed in D1's directory (outbound_endpoints) as fan-out registers it; `id` sorts as given.
 */
async function insertDeliveries(
  s: { tenantId: string; integrationId: string },
  rows: { id: string; useCase: string; slug: string; type?: "poll" | "webhook"; status?: string; visibleAt?: string; attempts?: number; createdAt?: string; duration?: number; ackStatus?: string }[],
) {
  const byEndpoint = new Map<string, unknown[][]>();
  for (const r of rows) {
    const values = [
      r.id, s.tenantId, s.integrationId, r.useCase, r.slug, "main", r.type ?? "poll", `ev-${r.id}`, "contact.created", JSON.stringify({ n: r.id }), r.status ?? "pending",
      r.attempts ?? 0, 3, r.visibleAt && r.visibleAt > iso(0) ? "lease" : null, r.visibleAt ?? iso(-60_000), r.createdAt ?? iso(-60_000),
      r.duration === undefined ? null : (r.createdAt ?? iso(-60_000)), r.duration ?? null, r.ackStatus ? `ack-${r.id}` : null, r.ackStatus ?? null,
    ];
    byEndpoint.set(endpointOfUseCase(r.useCase), [...(byEndpoint.get(endpointOfUseCase(r.useCase)) ?? []), values]);
  }
  for (const [endpointId, values] of byEndpoint) {
    await env.DB.prepare(
      "INSERT OR IGNORE INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at) VALUES (?, ?, ?, ?, 'main', ?)",
    ).bind(endpointId, s.tenantId, s.integrationId, endpointId.split("/")[0]!, iso(0)).run();
    await endpointQuery(
      endpointId,
      `INSERT INTO deliveries (${DELIVERY_COLUMNS.join(", ")}) SELECT ${DELIVERY_COLUMNS.map((_, i) => `value ->> '$[${i}]'`).join(", ")} FROM json_each(?)`,
      JSON.stringify(values),
    );
  }
}

/** Runs `sql` in the endpoint of a use case's mapping "main". */
const inEndpoint = <T extends Record<string, SqlStorageValue>>(useCaseId: string, sql: string, ...params: unknown[]) => endpointQuery<T>(endpointOfUseCase(useCaseId), sql, ...params);

const ulid = (prefix: string, i: number) => `${prefix}${String(i).padStart(26 - prefix.length, "0")}`;

describe("poll", () => {
  it("finds the available messages behind many leased ones, in one statement, and leases each once", async () => {
    const s = await pollSetup();
    const leased = Array.from({ length: 60 }, (_, i) => ({ id: ulid("01JDA", i), useCase: s.useCase.poll!, slug: "poll", visibleAt: iso(600_000), attempts: 1 }));
    const free = Array.from({ length: 3 }, (_, i) => ({ id: ulid("01JDB", i), useCase: s.useCase.poll!, slug: "poll" }));
    await insertDeliveries(s, [...leased, ...free]);
    const base = `/v1/integrations/${s.integrationId}/outbound/messages`;

    const first = await api("POST", `${base}/poll`, { token: s.token, json: { limit: 2 } });
    expect(first.body.messages.map((m: { id: string }) => m.id)).toEqual(free.slice(0, 2).map((f) => f.id));
    expect(first.body.has_more).toBe(true);
    const second = await api("POST", `${base}/poll`, { token: s.token, json: { limit: 10 } });
    expect(second.body.messages.map((m: { id: string }) => m.id)).toEqual([free[2]!.id]);
    expect(second.body).toMatchObject({ has_more: false });
    expect((await api("POST", `${base}/poll`, { token: s.token, json: {} })).body.messages).toEqual([]);

    const tokens = new Set([...first.body.messages, ...second.body.messages].map((m: { lease_token: string }) => m.lease_token));
    expect(tokens.size).toBe(3);
    const acked = await api("POST", `${base}/ack`, { token: s.token, json: { acks: [{ id: free[0]!.id, lease_token: first.body.messages[0].lease_token }, { id: free[1]!.id, lease_token: "forged" }] } });
    expect(acked.body.results.map((r: { status: string }) => r.status)).toEqual(["acked", "stale_lease"]);
  });

  it("dead-letters exhausted messages, and under poison_policy block leases only each mapping's head", async () => {
    const s = await pollSetup();
    await insertDeliveries(s, [
      { id: ulid("01JDC", 1), useCase: s.useCase.strict!, slug: "strict", visibleAt: iso(600_000), attempts: 1 }, // leased head
      { id: ulid("01JDC", 2), useCase: s.useCase.strict!, slug: "strict" },
      { id: ulid("01JDC", 3), useCase: s.useCase.strict!, slug: "strict" },
      { id: ulid("01JDC", 4), useCase: s.useCase.poll!, slug: "poll", attempts: 3 }, // exhausted (max 3)
      { id: ulid("01JDC", 5), useCase: s.useCase.poll!, slug: "poll" },
    ]);
    const poll = async () => (await api("POST", `/v1/integrations/${s.integrationId}/outbound/messages/poll`, { token: s.token, json: { limit: 10 } })).body;
    expect((await poll()).messages.map((m: { id: string }) => m.id)).toEqual([ulid("01JDC", 5)]);
    const dead = (await deliveryRows(s.integrationId)).filter((r) => r.status === "dead_lettered").map((r) => ({ id: r.id, last_error: r.last_error }));
    expect(dead).toEqual([{ id: ulid("01JDC", 4), last_error: "max_delivery_attempts reached without ack" }]);

    // The head's lease runs out: it alone comes back; its followers wait for its ack.
    expect(await inEndpoint(s.useCase.strict!, "UPDATE deliveries SET visible_at = ? WHERE id = ? RETURNING id", iso(-1000), ulid("01JDC", 1))).toHaveLength(1);
    const again = await poll();
    expect(again.messages.map((m: { id: string }) => m.id)).toEqual([ulid("01JDC", 1)]);
    expect(again.has_more).toBe(false);
    // An exhausted head blocks its mapping instead of being dead-lettered.
    expect(await inEndpoint(s.useCase.strict!, "UPDATE deliveries SET visible_at = ?, attempts = 2 WHERE id = ? RETURNING id", iso(-1000), ulid("01JDC", 1))).toHaveLength(1);
    expect((await poll()).messages).toEqual([]);
    expect(await inEndpoint(s.useCase.strict!, "SELECT status FROM deliveries WHERE id = ?", ulid("01JDC", 1))).toEqual([{ status: "pending" }]);
  });
});

describe("redrive-all", () => {
  it("redrives a page of REDRIVE_PAGE_SIZE per call, continued with next_cursor until has_more is false", async () => {
    const s = await pollSetup();
    const total = REDRIVE_PAGE_SIZE + 5;
    await insertDeliveries(s, Array.from({ length: total }, (_, i) => ({ id: ulid("01JDD", i), useCase: s.useCase.poll!, slug: "poll", status: "dead_lettered", attempts: 3 })));
    const url = `/v1/integrations/${s.integrationId}/outbound/dlq/redrive`;

    const first = await api("POST", url, { token: s.token, json: {} });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ redriven: REDRIVE_PAGE_SIZE, has_more: true });
    expect(first.body.ids).toEqual(Array.from({ length: REDRIVE_PAGE_SIZE }, (_, i) => ulid("01JDD", i)));
    // A page redriven and dead-lettered again before the next call is not taken twice in one pass.
    expect(await inEndpoint(s.useCase.poll!, "UPDATE deliveries SET status = 'dead_lettered' WHERE id = ? RETURNING id", ulid("01JDD", 0))).toHaveLength(1);
    const second = await api("POST", url, { token: s.token, json: { cursor: first.body.next_cursor } });
    expect(second.body).toEqual({ redriven: 5, ids: Array.from({ length: 5 }, (_, i) => ulid("01JDD", REDRIVE_PAGE_SIZE + i)), has_more: false, next_cursor: null });
    const rows = await deliveryRows(s.integrationId);
    expect(rows.filter((r) => r.status === "dead_lettered").map((r) => r.id)).toEqual([ulid("01JDD", 0)]);
    const pending = rows.filter((r) => r.status === "pending");
    expect(pending).toHaveLength(total - 1);
    expect([...new Set(pending.map((r) => JSON.stringify({ attempts: r.attempts, last_error: r.last_error })))]).toEqual([JSON.stringify({ attempts: 0, last_error: null })]);

    expectError(await api("POST", url, { token: s.token, json: { ids: [ulid("01JDD", 0)], cursor: first.body.next_cursor } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", url, { token: s.token, json: { cursor: "not-ours" } }), 400, "INVALID_CURSOR");
  });
});

/** Runs `sql` in one shard of an integration's event log (its events table, as accept() writes it). */
async function inShard(integrationId: string, shard: number, sql: string, ...params: SqlStorageValue[]) {
  await runInDurableObject(eventLog(env, integrationId, shard), (_instance: EventLog, state) => void state.storage.sql.exec(sql, ...params));
}

/** `n` events `01JD<prefix><i>` in one shard, all received `daysAgo` days ago. */
const expiredEvents = (s: { tenantId: string; integrationId: string }, shard: number, prefix: string, n: number, daysAgo: number) =>
  inShard(
    s.integrationId,
    shard,
    `INSERT INTO events (id, tenant_id, integration_id, status, received_at)
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     SELECT printf('${prefix}%018d', i), ?, ?, 'done', ? FROM n`,
    n, s.tenantId, s.integrationId, iso(-daysAgo * 86_400_000),
  );

describe("retention", () => {
  it("deletes expired events (per log shard) and deliveries in bounded batches per run, and trims the audit log", async () => {
    const s = await pollSetup({ retention_days: 2 });
    await env.DB.prepare("DELETE FROM maintenance_cursors").run();
    const extra = 30;
    // One shard has more expired events than a run deletes there, and newer ones; another shard a few expired ones.
    const shards = shardCount(env);
    const busy = shardOf(null, shards);
    const other = (busy + 1) % shards;
    await expiredEvents(s, busy, "01JDOLD0", RETENTION.rowsPerIntegration + extra, 3);
    await expiredEvents(s, busy, "01JDNEW0", 10, 1);
    await expiredEvents(s, other, "01JDOLDB", 5, 3);
    await insertDeliveries(s, Array.from({ length: RETENTION.rowsPerIntegration + 5 }, (_, i) => ({ id: ulid("01JDE", i), useCase: s.useCase.poll!, slug: "poll", status: "delivered", createdAt: iso(-3 * 86_400_000) })));
    const audit = (id: string, daysAgo: number) =>
      env.DB.prepare("INSERT INTO audit_log (id, tenant_id, actor, action, at) VALUES (?, ?, 'admin', 'integration.updated', ?)").bind(id, s.tenantId, iso(-daysAgo * 86_400_000));
    await env.DB.batch([audit(ulid("01JDAUD", 1), RETENTION.auditDays + 30), audit(ulid("01JDAUD", 2), RETENTION.auditDays + 1), audit(ulid("01JDAUD", 3), 10)]);

    const eventsLeft = async () => (await logQuery<{ id: string }>(s.integrationId, "SELECT id FROM events")).map((r) => r.id).sort();
    const deliveriesLeft = async () => (await deliveryRows(s.integrationId)).length;

    const first = await applyRetention(env);
    expect(first).toMatchObject({ events: RETENTION.rowsPerIntegration + 5, deliveries: RETENTION.rowsPerIntegration, audit_log: 2 });
    expect(await eventsLeft()).toHaveLength(extra + 10);
    expect(await deliveriesLeft()).toBe(5);
    const kept = await env.DB.prepare("SELECT id FROM audit_log WHERE id LIKE '01JDAUD%'").all<{ id: string }>();
    expect(kept.results.map((r) => r.id)).toEqual([ulid("01JDAUD", 3)]);

    // The integration had more: the next run starts with it again and finishes it, oldest first.
    const second = await applyRetention(env);
    expect(second).toMatchObject({ events: extra, deliveries: 5, audit_log: 0 });
    const newest = await eventsLeft();
    expect(newest[0]).toBe("01JDNEW0000000000000000001");
    expect(newest).toHaveLength(10);
    expect(await applyRetention(env)).toMatchObject({ events: 0, deliveries: 0, audit_log: 0 });

    // Recorded core-event dead letters (bodies unredacted) are kept RETENTION.deadLetterDays.
    const dead = (id: string) =>
      env.DB.prepare("INSERT INTO core_event_dead_letters (id, queue, message_id, attempts, body, recorded_at) VALUES (?, 'dlq', ?, 1, '{}', '2020-01-01T00:00:00Z')").bind(id, id);
    const old = "01E0000000000000000000000A"; // 2020
    const recent = newId();
    await env.DB.batch([dead(old), dead(recent)]);
    expect(await applyRetention(env)).toMatchObject({ core_event_dead_letters: 1 });
    const left = await env.DB.prepare("SELECT id FROM core_event_dead_letters").all<{ id: string }>();
    expect(left.results.map((r) => r.id)).toEqual([recent]);
  });
});

describe("stats", () => {
  it("equals a hand-computed answer: exact counts, nearest-rank percentiles of the newest STATS_SAMPLE_SIZE timed rows of all shards", async () => {
    const s = await pollSetup();
    const base = Date.now() - 30 * 60_000;
    const shards = shardCount(env);
    // 200 slow events first, then STATS_SAMPLE_SIZE newer ones timed 1..N ms, spread over every shard
    // of the log (monitoring merges the shards' samples); one untimed, still accepted.
    for (let shard = 0; shard < shards; shard++) {
      await inShard(
        s.integrationId,
        shard,
        `INSERT INTO events (id, tenant_id, integration_id, use_case_slug, status, received_at, completed_at, processing_duration_ms, ack_status)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?4)
         SELECT printf('01JDSTAT%018d', i), ?1, ?2, 'contacts', 'done', strftime('%Y-%m-%dT%H:%M:%fZ', (?3 + i) / 1000.0, 'unixepoch'), NULL,
                CASE WHEN i <= 200 THEN 1000000 ELSE i - 200 END, CASE WHEN i % 1000 = 0 THEN 'processed' END
           FROM n WHERE i % ?5 = ?6`,
        s.tenantId, s.integrationId, base, STATS_SAMPLE_SIZE + 200, shards, shard,
      );
    }
    await inShard(s.integrationId, 0, "INSERT INTO events (id, tenant_id, integration_id, use_case_slug, status, received_at) VALUES ('01JDSTATZ00000000000000001', ?, ?, 'contacts', 'accepted', ?)", s.tenantId, s.integrationId, iso(-60_000));
    // Outside the window: not counted.
    await inShard(s.integrationId, shards - 1, "INSERT INTO events (id, tenant_id, integration_id, use_case_slug, status, received_at, processing_duration_ms) VALUES ('01JDSTATY00000000000000001', ?, ?, 'contacts', 'done', ?, 5)", s.tenantId, s.integrationId, iso(-2 * 3600_000));
    await insertDeliveries(s, [
      { id: ulid("01JDF", 1), useCase: s.useCase.poll!, slug: "poll", status: "delivered", duration: 40, ackStatus: "pending" },
      { id: ulid("01JDF", 2), useCase: s.useCase.poll!, slug: "poll", status: "delivered", duration: 10, ackStatus: "timeout" },
      { id: ulid("01JDF", 3), useCase: s.useCase.poll!, slug: "poll", status: "delivered", duration: 30 },
      { id: ulid("01JDF", 4), useCase: s.useCase.poll!, slug: "poll", status: "dead_lettered", duration: 20 },
      { id: ulid("01JDF", 5), useCase: s.useCase.poll!, slug: "poll", status: "pending" },
    ]);

    const stats = (await api("GET", `/v1/integrations/${s.integrationId}/monitoring/stats?window=1h`, { token: s.token })).body;
    // Nearest rank over the newest 10,000 (1..10000 ms): ceil(0.50 × 10000) = 5000th, 9500th, 9900th.
    expect(stats.processing_ms.inbound).toEqual({ count: STATS_SAMPLE_SIZE + 200, p50: 5000, p95: 9500, p99: 9900 });
    // 10, 20, 30, 40: ranks ceil(2) = 2, ceil(3.8) = 4, ceil(3.96) = 4.
    expect(stats.processing_ms.outbound).toEqual({ count: 4, p50: 20, p95: 40, p99: 40 });
    expect(stats.counts).toEqual([
      { direction: "inbound", use_case: "contacts", status: "accepted", count: 1 },
      { direction: "inbound", use_case: "contacts", status: "done", count: STATS_SAMPLE_SIZE + 200 },
      { direction: "outbound", use_case: "poll", status: "dead_lettered", count: 1 },
      { direction: "outbound", use_case: "poll", status: "delivered", count: 3 },
      { direction: "outbound", use_case: "poll", status: "pending", count: 1 },
    ]);
    expect(stats.acks).toEqual({ pending: 1, timeout: 1, processed: Math.floor((STATS_SAMPLE_SIZE + 200) / 1000), failed: 0 });
  });
});

describe("events query", () => {
  it("pages both directions newest first across the log's shards and the endpoints, with every filter applied to each", async () => {
    const s = await pollSetup();
    const at = (i: number) => new Date(Date.parse("2026-03-01T10:00:00Z") + i).toISOString();
    // Interleaved ids: inbound 1, 3, 5, 7 (in two different shards); outbound 2, 4, 6 (6 failed).
    const shards = shardCount(env);
    for (const i of [1, 3, 5, 7]) {
      await inShard(
        s.integrationId,
        i % 4 === 1 ? 0 : 1 % shards,
        "INSERT INTO events (id, tenant_id, integration_id, use_case_slug, status, error_category, correlation_id, received_at) VALUES (?, ?, ?, 'contacts', ?, ?, ?, ?)",
        ulid("01JDG", i), s.tenantId, s.integrationId, i === 5 ? "error" : "done", i === 5 ? "downstream" : null, i < 4 ? "order-1" : null, at(i),
      );
    }
    await insertDeliveries(s, [2, 4, 6].map((i) => ({ id: ulid("01JDG", i), useCase: s.useCase.poll!, slug: "poll", status: i === 6 ? "dead_lettered" : "delivered" })));
    expect(await inEndpoint(s.useCase.poll!, "UPDATE deliveries SET correlation_id = 'order-1' WHERE id = ? RETURNING id", ulid("01JDG", 2))).toHaveLength(1);
    const query = async (q: Record<string, unknown>) => (await api("POST", `/v1/integrations/${s.integrationId}/events`, { token: s.token, json: q })).body;
    const idsOf = (body: { events: { event_id: string }[] }) => body.events.map((e) => e.event_id.slice(-1));

    const p1 = await query({ limit: 3 });
    expect(idsOf(p1)).toEqual(["7", "6", "5"]);
    const p2 = await query({ limit: 3, cursor: p1.next_cursor });
    expect(idsOf(p2)).toEqual(["4", "3", "2"]);
    const p3 = await query({ limit: 3, cursor: p2.next_cursor });
    expect(idsOf(p3)).toEqual(["1"]);
    expect(p3.next_cursor).toBeNull();
    expect(p1.events[1]).toMatchObject({ direction: "outbound", status: "dead_lettered", error_category: "downstream", use_case_slug: "poll" });

    expect(idsOf(await query({ error_category: "downstream" }))).toEqual(["6", "5"]);
    expect(idsOf(await query({ error_category: "validation" }))).toEqual([]);
    expect(idsOf(await query({ correlation_id: "order-1" }))).toEqual(["3", "2", "1"]);
    expect(idsOf(await query({ direction: "outbound", status: "delivered" }))).toEqual(["4", "2"]);
    expect(idsOf(await query({ direction: "inbound", from: at(4) }))).toEqual(["7", "5"]);
    expect(idsOf(await query({ event_id: ulid("01JDG", 4) }))).toEqual(["4"]);
    const trace = (await api("GET", `/v1/integrations/${s.integrationId}/monitoring/traces/order-1`, { token: s.token })).body;
    expect(trace.events.map((e: { event_id: string }) => e.event_id.slice(-1))).toEqual(["1", "3", "2"]);
  });
});
