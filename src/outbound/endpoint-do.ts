// OutboundEndpoint: one Durable Object per webhook endpoint (an outbound use case's webhook mapping)
// that delivers its queue: signed POSTs, retries with backoff and jitter, Retry-After, a per-endpoint
// rate limit, one-at-a-time order when `ordered`, 410 disabling, a circuit breaker, and the DLQ.
import { DurableObject } from "cloudflare:workers";
import { auditStatementIf } from "../platform/audit";
import { nowIso } from "../platform/ids";
import { envelope } from "../platform/core-events";
import { crashPoint } from "../platform/crash-points";
import { attemptDelivery, backoffMs, endpointContext, loadDeliveries, recordOutcome, recordOutcomeStatement } from "./service";

/**
 * One alarm run sends at most SLICE_ROUNDS rounds (of up to CONCURRENCY deliveries) or works SLICE_MS,
 * then re-arms at once: other requests and objects are served between slices.
 */
const SLICE_MS = 1_000;
const SLICE_ROUNDS = 5;
/** Deliveries in flight at once for an unordered endpoint without a rate limit. */
const CONCURRENCY = 25;

export class OutboundEndpoint extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private lastSentAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id TEXT NOT NULL UNIQUE, due_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
  }

  /** Queues deliveries (ids already queued keep their place) and wakes the endpoint. */
  async enqueue(endpointId: string, deliveryIds: string[]): Promise<void> {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('endpoint_id', ?)", endpointId);
    const now = Date.now();
    for (const id of deliveryIds) this.sql.exec("INSERT OR IGNORE INTO queue (delivery_id, due_at) VALUES (?, ?)", id, now);
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > now) await this.ctx.storage.setAlarm(now);
  }

  async queued(): Promise<{ delivery_id: string; due_at: number }[]> {
    return this.sql.exec<{ delivery_id: string; due_at: number }>("SELECT delivery_id, due_at FROM queue ORDER BY seq").toArray();
  }

  /** Due deliveries: the head only when ordered, else up to `limit` by due time. */
  private due(ordered: boolean, now: number, limit: number) {
    const rows = this.sql
      .exec<{ seq: number; delivery_id: string; due_at: number }>(
        ordered ? "SELECT seq, delivery_id, due_at FROM queue ORDER BY seq LIMIT 1" : "SELECT seq, delivery_id, due_at FROM queue ORDER BY due_at, seq LIMIT ?",
        ...(ordered ? [] : [limit]),
      )
      .toArray();
    const ready = rows.filter((r) => r.due_at <= now);
    const wakeAt = ready.length === 0 && rows.length > 0 ? Math.min(...rows.map((r) => r.due_at)) : undefined;
    return { ready, wakeAt };
  }

  override async alarm(): Promise<void> {
    const endpointId = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'endpoint_id'").toArray()[0]?.value;
    if (!endpointId) return;
    const until = Date.now() + SLICE_MS;
    const ctx = await endpointContext(this.env.DB, endpointId);
    if (!ctx) {
      // The use case or mapping was removed: its queued deliveries can never go out.
      for (const { delivery_id } of this.sql.exec<{ delivery_id: string }>("SELECT delivery_id FROM queue").toArray()) {
        await recordOutcome(this.env.DB, delivery_id, { kind: "dead", error: "outbound use case or mapping no longer exists" }, "dead_lettered");
      }
      this.sql.exec("DELETE FROM queue");
      return;
    }
    const { endpoint, delivery: config } = ctx;
    if (endpoint.state === "disabled") return;
    if (endpoint.paused_until && Date.parse(endpoint.paused_until) > Date.now()) {
      await this.ctx.storage.setAlarm(Date.parse(endpoint.paused_until));
      return;
    }
    let failures = endpoint.consecutive_failures;
    const interval = config.rate_limit_per_second ? 1000 / config.rate_limit_per_second : 0;

    // Unordered endpoints without a rate limit send up to CONCURRENCY deliveries at once.
    const batch = config.ordered || interval ? 1 : CONCURRENCY;
    for (let round = 0; round < SLICE_ROUNDS && Date.now() < until; round++) {
      const now = Date.now();
      const { ready, wakeAt } = this.due(config.ordered, now, batch);
      if (ready.length === 0) {
        if (wakeAt !== undefined) await this.ctx.storage.setAlarm(wakeAt);
        break;
      }
      if (interval && now < this.lastSentAt + interval) {
        await this.ctx.storage.setAlarm(this.lastSentAt + interval);
        break;
      }
      this.lastSentAt = Date.now();
      // One D1 read for the round's deliveries and one D1 batch for their outcomes.
      const deliveries = await loadDeliveries(this.env.DB, ready.map((r) => r.delivery_id));
      const attempts = await Promise.all(
        ready.map(async (row) => {
          const delivery = deliveries.get(row.delivery_id);
          if (!delivery || delivery.status !== "pending") return { row, delivery: null, outcome: null };
          return { row, delivery, outcome: await attemptDelivery(this.env, ctx, delivery) };
        }),
      );
      let gone = false;
      const outcomes: D1PreparedStatement[] = [];
      const done: number[] = [];
      const later: { seq: number; dueAt: number }[] = [];
      for (const { row, delivery, outcome } of attempts) {
        if (!delivery || !outcome) {
          done.push(row.seq);
        } else if (outcome.kind === "delivered") {
          crashPoint("endpoint.after-post", (why) => this.ctx.abort(why));
          failures = 0;
          outcomes.push(recordOutcomeStatement(this.env.DB, delivery.id, outcome, "delivered"));
          done.push(row.seq);
        } else if (outcome.kind === "gone") {
          outcomes.push(recordOutcomeStatement(this.env.DB, delivery.id, outcome, "failed"));
          done.push(row.seq);
          gone = true;
        } else if (outcome.kind === "dead" || delivery.attempts + 1 >= delivery.max_attempts) {
          outcomes.push(recordOutcomeStatement(this.env.DB, delivery.id, outcome, "dead_lettered"));
          done.push(row.seq);
          if (outcome.kind === "retry") failures++;
        } else {
          failures++;
          outcomes.push(recordOutcomeStatement(this.env.DB, delivery.id, outcome, null));
          later.push({ seq: row.seq, dueAt: Date.now() + backoffMs(this.env, delivery.attempts + 1, outcome.retryAfterMs) });
        }
      }
      // Recorded first: a crash before the queue changes sends again (same webhook-id), never loses one.
      if (outcomes.length > 0) await this.env.DB.batch(outcomes);
      this.sql.exec("DELETE FROM queue WHERE seq IN (SELECT value FROM json_each(?))", JSON.stringify(done));
      for (const { seq, dueAt } of later) this.sql.exec("UPDATE queue SET due_at = ? WHERE seq = ?", dueAt, seq);
      if (gone) {
        await this.setState(endpointId, "disabled", { disabled_reason: "receiver answered 410 Gone", failures });
        return;
      }
      if (failures >= Number(this.env.OUTBOUND_BREAKER_THRESHOLD ?? 10)) {
        const pausedUntil = Date.now() + Number(this.env.OUTBOUND_BREAKER_COOLDOWN_MS ?? 60_000);
        await this.setState(endpointId, "paused", { paused_until: new Date(pausedUntil).toISOString(), failures });
        await this.ctx.storage.setAlarm(pausedUntil);
        return;
      }
    }
    // Written only when it changed: a healthy endpoint costs D1 nothing per alarm here.
    if (failures !== endpoint.consecutive_failures || endpoint.state !== "active" || endpoint.paused_until !== null) {
      await this.env.DB.prepare("UPDATE outbound_endpoints SET consecutive_failures = ?, state = 'active', paused_until = NULL WHERE id = ? AND state != 'disabled'").bind(failures, endpointId).run();
    }
    if ((await this.ctx.storage.getAlarm()) === null && this.sql.exec("SELECT 1 FROM queue LIMIT 1").toArray().length > 0) {
      await this.ctx.storage.setAlarm(Date.now());
    }
  }

  /**
   * Pauses or disables the endpoint, and says so with an audit entry and an operational core event.
   * The state change and its audit entry are one D1 transaction: neither is written without the other.
   */
  private async setState(endpointId: string, state: "paused" | "disabled", change: { paused_until?: string; disabled_reason?: string; failures: number }) {
    const endpoint = await this.env.DB
      .prepare("SELECT tenant_id, integration_id FROM outbound_endpoints WHERE id = ?")
      .bind(endpointId)
      .first<{ tenant_id: string; integration_id: string }>();
    if (!endpoint) return;
    const name = state === "paused" ? "erp_edge.endpoint.paused" : "erp_edge.endpoint.disabled";
    const details = { endpoint_id: endpointId, integration_id: endpoint.integration_id, ...change };
    const [updated] = await this.env.DB.batch([
      this.env.DB
        .prepare("UPDATE outbound_endpoints SET state = ?, paused_until = ?, disabled_reason = ?, consecutive_failures = ?, updated_at = ? WHERE id = ?")
        .bind(state, change.paused_until ?? null, change.disabled_reason ?? null, change.failures, nowIso(), endpointId),
      // Recorded only if the endpoint still exists (its integration may have been deleted meanwhile).
      auditStatementIf(this.env.DB, { tenantId: endpoint.tenant_id, actor: "system", action: name, target: endpointId, details }, "SELECT 1 FROM outbound_endpoints WHERE id = ?", [endpointId]),
    ]);
    if (!updated!.meta.changes) return;
    await this.env.CORE_EVENTS.send(envelope(endpoint.tenant_id, name, details, { source: "erp-edge.outbound" }));
  }
}
