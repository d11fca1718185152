// Monitoring: one view over inbound events and outbound deliveries, replay, statistics, traces, the
// audit log, payload redaction and retention.
import { replayInboundEvent } from "../inbound/service";
import { getIntegration } from "../integrations/service";
import { AppError } from "../platform/errors";
import { newId, nowIso } from "../platform/ids";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { enqueueWebhookDeliveries, groupByEndpoint } from "../outbound/service";
import type { EventQuery } from "./schema";

export interface MonitoredEvent {
  id: string;
  event_id: string;
  direction: "inbound" | "outbound";
  event_name: string | null;
  use_case_slug: string | null;
  status: string;
  error_category: string | null;
  correlation_id: string | null;
  received_at: string;
  completed_at: string | null;
  processing_duration_ms: number | null;
  attempts: number;
  last_error: string | null;
  ack_status: string | null;
  replay_of: string | null;
}

// Both directions as one row shape; a UNION ALL the filters and the cursor apply to.
const UNIFIED = `
  SELECT id, id AS event_id, 'inbound' AS direction, event_name, use_case_slug, status, error_category, correlation_id,
         received_at, completed_at, processing_duration_ms, attempts,
         CASE WHEN errors = '[]' THEN NULL ELSE json_extract(errors, '$[0].message') END AS last_error, ack_status, replay_of, integration_id
    FROM events
  UNION ALL
  SELECT id, id AS event_id, 'outbound', event_name, use_case_slug, status, CASE WHEN status IN ('failed', 'dead_lettered') THEN 'downstream' END,
         correlation_id, created_at, completed_at, processing_duration_ms, attempts, last_error, ack_status, replay_of, integration_id
    FROM deliveries`;

export async function queryEvents(db: D1Database, tenantId: string, integrationId: string, q: EventQuery & PageQuery) {
  await getIntegration(db, tenantId, integrationId);
  const where: string[] = ["integration_id = ?"];
  const params: unknown[] = [integrationId];
  const eq = (column: string, value: unknown) => {
    if (value !== undefined) {
      where.push(`${column} = ?`);
      params.push(value);
    }
  };
  eq("event_id", q.event_id);
  eq("correlation_id", q.correlation_id);
  eq("event_name", q.event_name);
  eq("use_case_slug", q.use_case);
  eq("direction", q.direction);
  eq("status", q.status);
  eq("error_category", q.error_category);
  if (q.from) (where.push("received_at >= ?"), params.push(new Date(q.from).toISOString()));
  if (q.to) (where.push("received_at < ?"), params.push(new Date(q.to).toISOString()));
  const before = decodeCursor(q.cursor);
  if (before) (where.push("id < ?"), params.push(before));
  const { results } = await db
    .prepare(`SELECT * FROM (${UNIFIED}) WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ?`)
    .bind(...params, q.limit + 1)
    .all<MonitoredEvent & { integration_id: string }>();
  const { items, next_cursor } = toPage(results, q.limit, ({ integration_id: _, id: __, ...row }) => row);
  return { events: items, next_cursor };
}

/** Replays inbound events (through today's configuration) and outbound deliveries (sent again). */
export async function replay(env: Pick<Env, "DB" | "EVENT_STREAM" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, eventIds: string[]) {
  await getIntegration(env.DB, tenantId, integrationId);
  const results = [];
  const webhook: { id: string; use_case_id: string; mapping_id: string }[] = [];
  for (const eventId of eventIds) {
    const inbound = await replayInboundEvent(env, tenantId, integrationId, eventId);
    if (inbound) {
      const ok = inbound.status === "success";
      results.push({ event_id: eventId, status: ok ? "replayed" : inbound.status, replay_event_id: inbound.event_id, message: inbound.message });
      continue;
    }
    const id = newId();
    const copied = await env.DB
      .prepare(
        `INSERT INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, correlation_id, payload,
           status, ack_id, max_attempts, visible_at, created_at, replay_of)
         SELECT ?, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id || ':replay:' || ?, event_name, correlation_id, payload,
           'pending', ack_id, max_attempts, ?, ?, id
         FROM deliveries WHERE id = ? AND tenant_id = ? AND integration_id = ? RETURNING type, use_case_id, mapping_id`,
      )
      .bind(id, id, nowIso(), nowIso(), eventId, tenantId, integrationId)
      .first<{ type: string; use_case_id: string; mapping_id: string }>();
    if (!copied) {
      results.push({ event_id: eventId, status: "not_found", replay_event_id: null, message: "No such event in this integration" });
      continue;
    }
    if (copied.type === "webhook") webhook.push({ id, use_case_id: copied.use_case_id, mapping_id: copied.mapping_id });
    results.push({ event_id: eventId, status: "replayed", replay_event_id: id, message: "Delivery queued again" });
  }
  await enqueueWebhookDeliveries(env, groupByEndpoint(webhook));
  return { replayed: results.filter((r) => r.status === "replayed").length, results };
}

export const WINDOWS = { "1h": 3600_000, "24h": 86_400_000, "7d": 7 * 86_400_000 } as const;

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  // Nearest-rank: the smallest value with at least p% of values at or below it.
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function stats(db: D1Database, tenantId: string, integrationId: string, window: keyof typeof WINDOWS) {
  await getIntegration(db, tenantId, integrationId);
  const since = new Date(Date.now() - WINDOWS[window]).toISOString();
  const { results: counts } = await db
    .prepare(`SELECT direction, use_case_slug, status, COUNT(*) AS n FROM (${UNIFIED}) WHERE integration_id = ? AND received_at >= ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
    .bind(integrationId, since)
    .all<{ direction: string; use_case_slug: string | null; status: string; n: number }>();
  const durations = async (direction: string) =>
    (
      await db
        .prepare(`SELECT processing_duration_ms AS d FROM (${UNIFIED}) WHERE integration_id = ? AND received_at >= ? AND direction = ? AND processing_duration_ms IS NOT NULL ORDER BY 1`)
        .bind(integrationId, since, direction)
        .all<{ d: number }>()
    ).results.map((r) => r.d);
  const summary = (values: number[]) => ({ count: values.length, p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99) });
  const acks = await db
    .prepare(`SELECT ack_status, COUNT(*) AS n FROM (${UNIFIED}) WHERE integration_id = ? AND received_at >= ? AND ack_status IS NOT NULL GROUP BY 1`)
    .bind(integrationId, since)
    .all<{ ack_status: string; n: number }>();
  const ack = Object.fromEntries(acks.results.map((r) => [r.ack_status, r.n]));
  return {
    window,
    since,
    counts: counts.map((c) => ({ direction: c.direction, use_case: c.use_case_slug, status: c.status, count: c.n })),
    processing_ms: { inbound: summary(await durations("inbound")), outbound: summary(await durations("outbound")) },
    acks: { pending: ack.pending ?? 0, timeout: ack.timeout ?? 0, processed: ack.processed ?? 0, failed: ack.failed ?? 0 },
  };
}

/** Everything that happened for one correlation id, both directions, in time order. */
export async function trace(db: D1Database, tenantId: string, integrationId: string, correlationId: string) {
  await getIntegration(db, tenantId, integrationId);
  const { results } = await db
    .prepare(`SELECT * FROM (${UNIFIED}) WHERE integration_id = ? AND correlation_id = ? ORDER BY received_at, id LIMIT 1000`)
    .bind(integrationId, correlationId)
    .all<MonitoredEvent & { integration_id: string }>();
  if (results.length === 0) throw new AppError("NOT_FOUND", `Nothing recorded for correlation id '${correlationId}'`);
  return { correlation_id: correlationId, events: results.map(({ integration_id: _, id: __, ...row }) => row) };
}

export async function auditLog(db: D1Database, tenantId: string, page: PageQuery) {
  const before = decodeCursor(page.cursor);
  const { results } = await db
    .prepare("SELECT * FROM audit_log WHERE tenant_id = ? AND (? = '' OR id < ?) ORDER BY id DESC LIMIT ?")
    .bind(tenantId, before, before, page.limit + 1)
    .all<{ id: string; actor: string; action: string; target: string | null; details: string; at: string }>();
  const { items, next_cursor } = toPage(results, page.limit, (r) => ({ id: r.id, actor: r.actor, action: r.action, target: r.target, details: JSON.parse(r.details), at: r.at }));
  return { entries: items, next_cursor };
}

// ---- retention ------------------------------------------------------------------

/** Deletes events, deliveries and audit entries older than each integration's retention_days. */
export async function applyRetention(db: D1Database): Promise<void> {
  const cutoff = (table: string, column: string) =>
    db.prepare(
      `DELETE FROM ${table} WHERE ${column} < strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
         '-' || COALESCE((SELECT json_extract(settings, '$.retention_days') FROM integrations i WHERE i.id = ${table}.integration_id), 30) || ' days')`,
    );
  await db.batch([cutoff("events", "received_at"), cutoff("deliveries", "created_at")]);
}
