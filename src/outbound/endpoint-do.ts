// OutboundEndpoint: one Durable Object per outbound mapping (key "<use_case_id>/<mapping_id>") that
// owns its deliveries: the rows fan-out creates, their attempts, poll leases, ACK tracking, dead
// letters and retention, in the object's own SQLite, so no delivery writes the shared D1 database.
// A webhook endpoint delivers its queue: signed POSTs, retries with backoff and jitter, Retry-After,
// a per-endpoint rate limit, one-at-a-time order when `ordered`, 410 disabling, a circuit breaker.
import { configureMapping } from "../mapping/expression";
import { DurableObject } from "cloudflare:workers";
import { emptyStorage } from "../platform/object-storage";
import { auditStatementIf } from "../platform/audit";
import { nowIso } from "../platform/ids";
import { envelope } from "../platform/core-events";
import { crashPoint } from "../platform/crash-points";
import type { MonitoredEventFilter } from "../platform/monitored-events";
import {
  ACK_TIMEOUT_SQL,
  ACKNOWLEDGE_SQL,
  DEAD_LETTERS_SQL,
  DELIVERIES_SCHEMA,
  DUE_SQL,
  EXPIRED_DELIVERIES_SQL,
  insertDeliveries,
  monitoredDeliveries,
  NEXT_ACK_DEADLINE_SQL,
  ORPHANED_SQL,
  OUTBOUND_STATS_SQL,
  OUTCOME_SQL,
  POLL_ACK_SQL,
  POLL_SQL,
  REDRIVE_SQL,
  REPLAY_SQL,
  WEBHOOK_EVENTS_SQL,
  type DeliveryRow,
  type WebhookEventQuery,
  type EndpointMeta,
  type FinalStatus,
  type NewDelivery,
} from "./deliveries-log";
import { attemptDelivery, backoffMs, endpointContext, type AttemptOutcome } from "./service";

/**
 * One alarm run sends at most SLICE_ROUNDS rounds (of up to CONCURRENCY deliveries) or works SLICE_MS,
 * then re-arms at once: other requests and objects are served between slices.
 */
const SLICE_MS = 1_000;
const SLICE_ROUNDS = 5;
/** Deliveries in flight at once for an unordered endpoint without a rate limit. */
const CONCURRENCY = 100;
/** Most ACKs one alarm times out; more are left for the next alarm. */
const ACK_TIMEOUTS_PER_ALARM = 1000;

type Row = Record<string, SqlStorageValue>;

export class OutboundEndpoint extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private lastSentAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    configureMapping(env);
    this.sql = ctx.storage.sql;
    this.sql.exec(DELIVERIES_SCHEMA);
  }

  private meta(): EndpointMeta | null {
    const value = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'endpoint'").toArray()[0]?.value;
    return value ? (JSON.parse(value) as EndpointMeta) : null;
  }

  private ackTimeoutMs() {
    return Number(this.env.ACK_TIMEOUT_SECONDS ?? 3600) * 1000;
  }

  /** Wakes the endpoint at `at` unless it is already due to wake earlier. */
  private async wakeBy(at: number) {
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * Stores the deliveries fan-out made for this mapping (one transaction; an event it already has a
   * delivery for is ignored) and wakes a webhook endpoint to send them.
   */
  async add(meta: EndpointMeta, rows: NewDelivery[]): Promise<void> {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('endpoint', ?)", JSON.stringify(meta));
      insertDeliveries(this.sql, meta, rows, now);
    });
    if (meta.type === "webhook" && rows.some((r) => r.status === "pending")) await this.wakeBy(now);
  }

  /** Wakes the endpoint (after it was re-enabled). */
  async wake(): Promise<void> {
    await this.wakeBy(Date.now());
  }

  /** Every delivery of the endpoint (for tests and support), oldest first. */
  async rows(): Promise<DeliveryRow[]> {
    return this.sql.exec("SELECT * FROM deliveries ORDER BY id").toArray() as unknown as DeliveryRow[];
  }

  // ---- poll -------------------------------------------------------------------------------------

  /** One poll's share of this mapping: dead-letters exhausted messages, leases up to `limit`, says whether more wait. */
  async poll(integrationId: string, policies: string, limit: number, now: string, visibleUntil: string, deadLetterBatch: number) {
    return this.ctx.storage.transactionSync(() => {
      this.sql.exec(POLL_SQL.deadLetter, now, policies, integrationId, deadLetterBatch);
      const leased = limit > 0 ? this.sql.exec(POLL_SQL.lease, now, policies, integrationId, limit, visibleUntil).toArray() : [];
      const more = Boolean(this.sql.exec<{ more: number }>(POLL_SQL.more, now, policies, integrationId, 1).one().more);
      return { leased: leased as { id: string; lease_token: string; use_case_id: string; event_name: string; event_id: string; payload: string; created_at: string }[], more };
    });
  }

  /** ACKs of leased poll messages, in order: "acked" or "stale_lease" for an id this endpoint holds, else null. */
  async ackPolled(acks: { id: string; lease_token: string }[], now: string): Promise<("acked" | "stale_lease" | null)[]> {
    const results = acks.map((ack) => {
      if (this.sql.exec("SELECT 1 FROM deliveries WHERE id = ? AND type = 'poll'", ack.id).toArray().length === 0) return null;
      return this.sql.exec(POLL_ACK_SQL, now, ack.id, ack.lease_token).toArray().length > 0 ? ("acked" as const) : ("stale_lease" as const);
    });
    await this.armAckTimeout();
    return results;
  }

  // ---- ACK tracking -----------------------------------------------------------------------------

  /** The ERP's ACK of an ack_id: null when this endpoint holds none of its rows. */
  async acknowledge(tenantId: string, ack: { ack_id: string; status: string; message?: string }, overwritable: readonly string[], at: string) {
    const updated = this.sql.exec(ACKNOWLEDGE_SQL.update, ack.status, ack.message ?? null, at, ack.ack_id, tenantId, JSON.stringify(overwritable)).toArray();
    const now = this.sql.exec<{ ack_status: string | null }>(ACKNOWLEDGE_SQL.now, ack.ack_id, tenantId).toArray();
    return now.length === 0 ? null : { acknowledged: updated.length, statuses: now.map((r) => r.ack_status) };
  }

  /** Deliveries delivered before `before` (ms) still waiting for their ACK become ACK_TIMEOUT; answers how many. */
  async expireAcks(before: number, limit = ACK_TIMEOUTS_PER_ALARM): Promise<number> {
    return this.sql.exec(`${ACK_TIMEOUT_SQL} RETURNING id`, new Date(before).toISOString(), limit).toArray().length;
  }

  /** Makes sure the endpoint wakes when its oldest ACK_PENDING delivery times out. */
  private async armAckTimeout() {
    const oldest = this.sql.exec<{ completed_at: string }>(NEXT_ACK_DEADLINE_SQL).toArray()[0];
    if (oldest) await this.wakeBy(Date.parse(oldest.completed_at) + this.ackTimeoutMs() + 1);
  }

  // ---- dead letters, replay, monitoring, retention ---------------------------------------------

  async deadLetters(integrationId: string, after: string, limit: number): Promise<DeliveryRow[]> {
    return this.sql.exec(DEAD_LETTERS_SQL, integrationId, after, limit).toArray() as unknown as DeliveryRow[];
  }

  /** Puts the given dead letters back with fresh attempts; answers the ids it redrove. */
  async redrive(integrationId: string, ids: string[]): Promise<string[]> {
    const now = Date.now();
    const rows = this.sql.exec<{ id: string; type: string }>(REDRIVE_SQL, new Date(now).toISOString(), now, JSON.stringify(ids), integrationId).toArray();
    if (rows.some((r) => r.type === "webhook")) await this.wakeBy(now);
    return rows.map((r) => r.id);
  }

  /** A new pending copy of a delivery (id `copyId`), sent again; null when this endpoint does not hold it. */
  async replay(tenantId: string, integrationId: string, deliveryId: string, copyId: string): Promise<{ type: string } | null> {
    const now = Date.now();
    const copied = this.sql.exec<{ type: string }>(REPLAY_SQL, copyId, new Date(now).toISOString(), now, tenantId, deliveryId, integrationId).toArray()[0];
    if (copied?.type === "webhook") await this.wakeBy(now);
    return copied ?? null;
  }

  /** One delivery by id, or null. */
  async delivery(id: string): Promise<DeliveryRow | null> {
    return (this.sql.exec("SELECT * FROM deliveries WHERE id = ?", id).toArray()[0] as unknown as DeliveryRow | undefined) ?? null;
  }

  /**
   * Deliveries as a webhook configuration's events, newest first: of the given statuses, created in
   * [from, to], ids below `before` (the keyset cursor), at most `limit`.
   */
  async webhookEvents(q: WebhookEventQuery): Promise<DeliveryRow[]> {
    return this.sql.exec(WEBHOOK_EVENTS_SQL, JSON.stringify(q.statuses ?? null), q.before ?? null, q.from ?? null, q.to ?? null, q.eventId ?? null, q.limit).toArray() as unknown as DeliveryRow[];
  }

  /**
   * A delivery already attempted once (a synchronous trigger): stored with that attempt's outcome in
   * one transaction, so the alarm never sends it again.
   */
  async recordAttempt(meta: EndpointMeta, row: NewDelivery, outcome: { statusCode: number | null; error: string | null; final: FinalStatus; at: string }): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('endpoint', ?)", JSON.stringify(meta));
      insertDeliveries(this.sql, meta, [row], Date.now());
      this.sql.exec(OUTCOME_SQL, outcome.statusCode, outcome.error, outcome.final, outcome.at, null, row.id);
    });
  }

  async monitored(integrationId: string, q: { filter: MonitoredEventFilter; order: "page" | "trace"; limit: number }): Promise<Row[]> {
    const arm = monitoredDeliveries(integrationId, q.filter);
    if (!arm) return [];
    const order = q.order === "page" ? "ORDER BY id DESC" : "ORDER BY received_at, id";
    return this.sql.exec(`${arm.sql} ${order} LIMIT ?`, ...arm.params, q.limit).toArray();
  }

  /** This endpoint's part of a window's statistics: counts, ACK counts and the newest `sample` durations. */
  async stats(integrationId: string, since: string, sample: number) {
    return {
      counts: this.sql.exec<{ direction: string; use_case_slug: string | null; status: string; n: number; timed: number }>(OUTBOUND_STATS_SQL.counts, integrationId, since).toArray(),
      acks: this.sql.exec<{ ack_status: string; n: number }>(OUTBOUND_STATS_SQL.acks, integrationId, since).toArray(),
      durations: this.sql.exec<{ at: string; d: number }>(OUTBOUND_STATS_SQL.durations, integrationId, since, sample).toArray(),
    };
  }

  /** Retention: deletes at most `limit` of the oldest deliveries created before `before`; answers how many. */
  async expire(integrationId: string, before: string, limit: number): Promise<number> {
    return this.sql.exec(`${EXPIRED_DELIVERIES_SQL} RETURNING id`, integrationId, before, limit).toArray().length;
  }

  /** The integration or tenant is gone: its deliveries go too. */
  async purge(): Promise<void> {
    await emptyStorage(this.ctx, DELIVERIES_SCHEMA);
  }

  // ---- sending ----------------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    const meta = this.meta();
    if (!meta) return;
    await this.expireAcks(Date.now() - this.ackTimeoutMs());
    if (meta.type === "webhook") await this.deliver(meta);
    await this.armAckTimeout();
  }

  /** Due webhook deliveries: the head only when ordered, else up to `limit` by due time. */
  private due(ordered: boolean, now: number, limit: number) {
    const rows = this.sql.exec<{ id: string; due_at: number }>(ordered ? DUE_SQL.ordered : DUE_SQL.unordered, ...(ordered ? [] : [limit])).toArray();
    const ready = rows.filter((r) => r.due_at <= now).map((r) => r.id);
    const wakeAt = ready.length === 0 && rows.length > 0 ? Math.min(...rows.map((r) => r.due_at)) : undefined;
    return { ready, wakeAt };
  }

  private async deliver(meta: EndpointMeta): Promise<void> {
    const endpointId = meta.endpoint_id;
    const until = Date.now() + SLICE_MS;
    const ctx = await endpointContext(this.env.DB, endpointId, { secretsKey: this.env.SECRETS_KEY, tenantId: meta.tenant_id });
    if (!ctx) {
      // The use case or mapping was removed: its queued deliveries can never go out.
      this.sql.exec(ORPHANED_SQL, nowIso(), "outbound use case or mapping no longer exists");
      return;
    }
    if (ctx.unavailable) {
      // The webhook configuration it sends through is gone, disabled or has no url: say so on each
      // delivery (a redrive after fixing the configuration sends them), never send blindly.
      this.sql.exec(ORPHANED_SQL, nowIso(), ctx.unavailable);
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
      const deliveries = this.sql
        .exec<{ id: string; payload: string; attempts: number; max_attempts: number }>(
          "SELECT id, payload, attempts, max_attempts FROM deliveries WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'",
          JSON.stringify(ready),
        )
        .toArray();
      const attempts = await Promise.all(deliveries.map(async (delivery) => ({ delivery, outcome: await attemptDelivery(this.env, ctx, delivery) })));
      let gone = false;
      const outcomes: { id: string; outcome: AttemptOutcome; final: FinalStatus | null; dueAt: number | null }[] = [];
      for (const { delivery, outcome } of attempts) {
        if (outcome.kind === "delivered") {
          crashPoint("endpoint.after-post", (why) => this.ctx.abort(why));
          failures = 0;
          outcomes.push({ id: delivery.id, outcome, final: "delivered", dueAt: null });
        } else if (outcome.kind === "gone") {
          outcomes.push({ id: delivery.id, outcome, final: "failed", dueAt: null });
          gone = true;
        } else if (outcome.kind === "dead" || delivery.attempts + 1 >= delivery.max_attempts) {
          outcomes.push({ id: delivery.id, outcome, final: "dead_lettered", dueAt: null });
          if (outcome.kind === "retry") failures++;
        } else {
          failures++;
          outcomes.push({ id: delivery.id, outcome, final: null, dueAt: Date.now() + backoffMs(this.env, delivery.attempts + 1, outcome.retryAfterMs) });
        }
      }
      // One transaction for the round's outcomes. A crash before it sends the round again (same
      // webhook-id, so receivers deduplicate), never loses a delivery.
      const at = nowIso();
      this.ctx.storage.transactionSync(() => {
        for (const { id, outcome, final, dueAt } of outcomes) {
          const error = outcome.kind === "delivered" ? null : outcome.kind === "gone" ? "HTTP 410: endpoint gone (disabled)" : outcome.error;
          this.sql.exec(OUTCOME_SQL, "statusCode" in outcome ? (outcome.statusCode ?? null) : null, error, final, at, dueAt, id);
        }
      });
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
    // Written only when it changed: a healthy endpoint costs D1 nothing per alarm here. A webhook
    // configuration's own trigger endpoint has no directory row to write.
    const inDirectory = ctx.integrationId !== null;
    if (inDirectory && (failures !== endpoint.consecutive_failures || endpoint.state !== "active" || endpoint.paused_until !== null)) {
      await this.env.DB.prepare("UPDATE outbound_endpoints SET consecutive_failures = ?, state = 'active', paused_until = NULL WHERE id = ? AND state != 'disabled'").bind(failures, endpointId).run();
    }
    if ((await this.ctx.storage.getAlarm()) === null && this.sql.exec("SELECT 1 FROM deliveries WHERE status = 'pending' AND type = 'webhook' LIMIT 1").toArray().length > 0) {
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
