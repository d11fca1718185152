// EventLog: one shard of an integration's inbound event log (inbound/shards.ts names it). It stores
// the events of the groups hashed to it, deduplicates them, and processes them: each group strictly
// in the order accepted, the groups side by side. Storing and queueing an event is one write to this
// object's own storage, so an accepted event cannot be stored without being queued, and nothing on
// this path touches D1. Work is driven by alarms, which the runtime re-runs after a crash or restart.
import { configureMapping } from "../mapping/expression";
import { DurableObject } from "cloudflare:workers";
import { emptyStorage } from "../platform/object-storage";
import { crashPoint } from "../platform/crash-points";
import { nowIso } from "../platform/ids";
import type { MonitoredEventFilter } from "../platform/monitored-events";
import {
  acknowledgeEvent,
  completeEvents,
  duplicateHolder,
  EVENT_LOG_SCHEMA,
  EXPIRED_EVENTS_SQL,
  INBOUND_STATS_SQL,
  insertEvents,
  loadEvent,
  monitoredInboundEvents,
  type EventOutcome,
  type EventRow,
  type NewEvent,
} from "./events-log";
import { GroupStopped, RoundWriter } from "../entities/service";
import { failedOutcome, processEvent, type ProcessEnv } from "./process";

/** Attempts per event before it is recorded as a system error (its group then moves on). */
export const MAX_ATTEMPTS = 5;
/**
 * One alarm run (a slice) starts at most SLICE_EVENTS events and none after SLICE_MS, then re-arms
 * the alarm at once and returns: the runtime delivers whatever else is waiting (accepts and reads of
 * this object, other objects' work, the Worker's requests in the same isolate) before the next slice,
 * so a backlog drains without holding anything else up. See docs/STORAGE.md, "Bounded background work".
 */
export const SLICE_EVENTS = 200;
export const SLICE_MS = 250;

/** Most events of one group in one round (they run one after another; the groups side by side). */
export const GROUP_SHARE = 20;

const UNFINISHED: readonly string[] = ["accepted", "processing"];

/** An event a round ran to its end: its outcome (null when it was already finished), to record. */
interface Finished {
  seq: number;
  id: string;
  done: { startedAt: string; outcome: EventOutcome; payload: string | null | undefined } | null;
}

interface QueueRow {
  seq: number;
  event_id: string;
  group_key: string;
  attempts: number;
  last_error: string | null;
  [key: string]: SqlStorageValue;
}

export interface MonitoredRowsQuery {
  filter: MonitoredEventFilter;
  /** `page`: newest first from `filter.before`; `trace`: oldest first. */
  order: "page" | "trace";
  limit: number;
}

export class EventLog extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The bindings processing uses (each round adds its own entity writer). */
  private readonly processing: Omit<ProcessEnv, "entities">;
  /** The group the last round served last: the next round starts after it (round-robin). */
  private lastGroup: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    configureMapping(env);
    this.sql = ctx.storage.sql;
    this.sql.exec(EVENT_LOG_SCHEMA);
    this.processing = env;
    // Defence in depth: a queue with events must always have an alarm.
    void ctx.blockConcurrencyWhile(async () => {
      if (this.sql.exec("SELECT 1 FROM queue LIMIT 1").toArray().length > 0 && (await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now());
    });
  }

  /**
   * Stores events in one transaction and queues those to process. An event to process whose
   * deduplication id (or Idempotency-Key) an event of this log already holds in the window is not
   * stored: its answer is the holder's id. Durable before this call returns.
   */
  async accept(items: { event: NewEvent; process: boolean }[]): Promise<(string | null)[]> {
    const at = nowIso();
    const holders = this.ctx.storage.transactionSync(() => {
      // Events with a deduplication id are checked and inserted one by one, in request order, so a
      // later one of the same request sees an earlier one; the rest go in one statement.
      const answers = items.map(({ event, process }) => {
        if (!process || !event.deduplication_id) return null;
        const holder = duplicateHolder(this.sql, event);
        if (!holder) insertEvents(this.sql, [event]);
        return holder;
      });
      insertEvents(this.sql, items.filter(({ event, process }) => !process || !event.deduplication_id).map((i) => i.event));
      const queued = items.filter(({ process }, i) => process && answers[i] === null).map(({ event }) => [event.id, event.group_id ?? ""]);
      if (queued.length > 0) {
        this.sql.exec("INSERT INTO queue (event_id, group_key, enqueued_at) SELECT value ->> '$[0]', value ->> '$[1]', ? FROM json_each(?)", at, JSON.stringify(queued));
      }
      return answers;
    });
    // Not awaited before: set in the same atomic write as the rows, so no queued event is ever left
    // without an alarm (an earlier alarm simply moves to now).
    if (items.some(({ process }, i) => process && holders[i] === null)) await this.ctx.storage.setAlarm(Date.now());
    return holders;
  }

  /** Queues stored events again (an id already queued keeps its place); a finished one is dropped when its turn comes. */
  async enqueue(eventIds: string[]): Promise<void> {
    const at = nowIso();
    for (const id of eventIds) {
      this.sql.exec("INSERT OR IGNORE INTO queue (event_id, group_key, enqueued_at) SELECT id, COALESCE(group_id, ''), ? FROM events WHERE id = ?", at, id);
    }
    await this.ctx.storage.setAlarm(Date.now());
  }

  async event(eventId: string): Promise<EventRow | null> {
    return loadEvent(this.sql, eventId);
  }

  /** Events still waiting, oldest first (for monitoring and tests). */
  async pending(): Promise<{ event_id: string; attempts: number; last_error: string | null }[]> {
    return this.sql.exec<{ event_id: string; attempts: number; last_error: string | null }>("SELECT event_id, attempts, last_error FROM queue ORDER BY seq").toArray();
  }

  /** Monitored-event rows of this shard for monitoring's events view and traces. */
  async monitored(integrationId: string, q: MonitoredRowsQuery): Promise<Record<string, SqlStorageValue>[]> {
    const arm = monitoredInboundEvents(integrationId, q.filter);
    const order = q.order === "page" ? "ORDER BY id DESC" : "ORDER BY received_at, id";
    return this.sql.exec(`${arm.sql} ${order} LIMIT ?`, ...arm.params, q.limit).toArray();
  }

  /** This shard's part of a window's statistics: counts, ACK counts and the newest `sample` durations. */
  async stats(integrationId: string, since: string, sample: number) {
    return {
      counts: this.sql.exec<{ direction: string; use_case_slug: string | null; status: string; n: number; timed: number }>(INBOUND_STATS_SQL.counts, integrationId, since).toArray(),
      acks: this.sql.exec<{ ack_status: string; n: number }>(INBOUND_STATS_SQL.acks, integrationId, since).toArray(),
      durations: this.sql.exec<{ at: string; d: number }>(INBOUND_STATS_SQL.durations, integrationId, since, sample).toArray(),
    };
  }

  async acknowledge(tenantId: string, ack: { ack_id: string; status: string; message?: string }, overwritable: readonly string[], at: string) {
    return acknowledgeEvent(this.sql, tenantId, ack, overwritable, at);
  }

  /** Retention: deletes at most `limit` of the oldest events received before `before`; answers how many. */
  async expire(before: string, limit: number): Promise<number> {
    return this.sql.exec(`${EXPIRED_EVENTS_SQL} RETURNING id`, before, limit).toArray().length;
  }

  /** The integration is gone: its events go too. */
  async purge(): Promise<void> {
    await emptyStorage(this.ctx, EVENT_LOG_SCHEMA);
  }

  /**
   * Works through the queue. Each round takes up to SLICE_EVENTS queued events (see nextRound), records an attempt on each before any runs, then runs the
   * events side by side, their entity writes in each group's order (runRound). An event's attempts count even if
   * its run never returns (the isolate ran out of memory, the runtime restarted): once it has used
   * them up it is parked as a system error without running again. After a crash, events that were
   * already tried run alone, one per round, so a poison event cannot take others down with it.
   */
  override async alarm(): Promise<void> {
    const until = Date.now() + SLICE_MS;
    let started = 0;
    while (started < SLICE_EVENTS && Date.now() < until) {
      const rows = this.nextRound(SLICE_EVENTS - started);
      if (rows.length === 0) break;
      started += rows.length;
      const parked = rows.filter((r) => r.attempts >= MAX_ATTEMPTS);
      for (const row of parked) await this.park(row);
      const run = rows.filter((r) => r.attempts < MAX_ATTEMPTS);
      if (run.length === 0) continue;
      // Recorded (and made durable) before anything runs.
      // Two statements for the whole round: every statement has a fixed cost, rows are cheap.
      const seqs = JSON.stringify(run.map((r) => r.seq));
      const ids = JSON.stringify(run.map((r) => r.event_id));
      this.sql.exec("UPDATE queue SET attempts = attempts + 1, last_error = NULL WHERE seq IN (SELECT value FROM json_each(?))", seqs);
      this.sql.exec(
        "UPDATE events SET status = 'processing', started_at = ?, attempts = attempts + 1 WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('accepted', 'processing')",
        nowIso(),
        ids,
      );
      await this.ctx.storage.sync();
      crashPoint("stream.after-attempt-recorded", (why) => this.ctx.abort(why));
      const events = new Map(
        this.sql.exec<EventRow & Record<string, SqlStorageValue>>("SELECT * FROM events WHERE id IN (SELECT value FROM json_each(?))", ids).toArray().map((e) => [e.id, e as EventRow]),
      );
      this.finish(await this.runRound(run, events));
    }
    await this.scheduleNext();
  }

  /**
   * The events of the next round: the groups in turn from where the last round stopped (each an index
   * seek), up to GROUP_SHARE of each group's oldest events, skipping groups whose head waits out a
   * backoff, so one group's backlog cannot hold up the others. When an event tried before (it
   * crashed, or is due again after a failure) is among them, it runs alone.
   */
  private nextRound(limit: number): QueueRow[] {
    const blocked = new Set(
      this.sql.exec<{ group_key: string }>("SELECT DISTINCT group_key FROM queue WHERE next_at > 0 AND next_at > ?", Date.now()).toArray().map((r) => r.group_key),
    );
    const groupAfter = (key: string | null) =>
      (key === null
        ? this.sql.exec<{ group_key: string }>("SELECT group_key FROM queue ORDER BY group_key LIMIT 1")
        : this.sql.exec<{ group_key: string }>("SELECT group_key FROM queue WHERE group_key > ? ORDER BY group_key LIMIT 1", key)
      ).toArray()[0]?.group_key ?? null;
    const start = this.lastGroup;
    const rows: QueueRow[] = [];
    const visited = new Set<string>();
    for (let key = groupAfter(this.lastGroup) ?? groupAfter(null); key !== null && !visited.has(key) && rows.length < limit; key = groupAfter(key) ?? groupAfter(null)) {
      visited.add(key);
      if (blocked.has(key)) continue;
      rows.push(
        ...this.sql
          .exec<QueueRow>("SELECT seq, event_id, group_key, attempts, last_error FROM queue WHERE group_key = ? ORDER BY seq LIMIT ?", key, Math.min(GROUP_SHARE, limit - rows.length))
          .toArray(),
      );
      this.lastGroup = key;
    }
    const tried = rows.find((r) => r.attempts > 0);
    if (!tried) return rows;
    // It runs alone; the groups this walk passed keep their turn for the next round.
    this.lastGroup = start;
    return [tried];
  }

  /**
   * Runs a round's events side by side, those of one group too: their entity writes go through one
   * RoundWriter, which keeps each group's order and sends one call per store. Then, group by group in
   * order, collects what finished; a failure stops its group there and backs it off, and the group's
   * later events get their attempt back (any of their writes that already went out are idempotent per
   * update id, so running them again changes nothing).
   */
  private async runRound(rows: QueueRow[], events: Map<string, EventRow>): Promise<Finished[]> {
    const writer = new RoundWriter(this.env, rows.map((r) => r.group_key));
    const results = await Promise.all(
      rows.map(async (row, pos) => {
        const event = events.get(row.event_id);
        try {
          const done = event && UNFINISHED.includes(event.status) ? await processEvent({ ...this.processing, entities: writer.forEvent(pos) }, event, event.started_at ?? nowIso()) : null;
          writer.finished(pos, true);
          return { done };
        } catch (err) {
          writer.finished(pos, false);
          return { err };
        }
      }),
    );
    const groups = new Map<string, { row: QueueRow; result: (typeof results)[number] }[]>();
    for (const [pos, row] of rows.entries()) groups.set(row.group_key, [...(groups.get(row.group_key) ?? []), { row, result: results[pos]! }]);
    const finished: Finished[] = [];
    for (const group of groups.values()) {
      for (const [i, { row, result }] of group.entries()) {
        if ("done" in result) {
          crashPoint("stream.before-dequeue", (why) => this.ctx.abort(why));
          finished.push({ seq: row.seq, id: row.event_id, done: result.done ?? null });
          continue;
        }
        const message = result.err instanceof Error ? result.err.message : String(result.err);
        const attempts = row.attempts + 1;
        if (!(result.err instanceof GroupStopped)) console.error(JSON.stringify({ level: "error", event_id: row.event_id, attempts, message }));
        // The head blocks its group (order matters): back off before trying it again. Its later events
        // this round were counted an attempt they did not use: give it back.
        this.sql.exec("UPDATE queue SET last_error = ?, next_at = ? WHERE seq = ?", message, Date.now() + Math.min(60_000, 500 * 2 ** attempts), row.seq);
        this.giveBack(group.slice(i + 1).map((g) => g.row));
        break;
      }
    }
    return finished;
  }

  /** Events of a round that did not start: the attempt recorded for them is taken back. */
  private giveBack(rows: QueueRow[]): void {
    if (rows.length === 0) return;
    this.sql.exec("UPDATE queue SET attempts = attempts - 1 WHERE seq IN (SELECT value FROM json_each(?))", JSON.stringify(rows.map((r) => r.seq)));
    this.sql.exec("UPDATE events SET attempts = attempts - 1 WHERE id IN (SELECT value FROM json_each(?)) AND status = 'processing'", JSON.stringify(rows.map((r) => r.event_id)));
  }

  /**
   * Records the round's outcomes and takes their events off the queue: one transaction, two
   * statements. Until it commits, a crash only means the events run again (every entity write is
   * idempotent per update id), never that one is finished twice or lost.
   */
  private finish(finished: Finished[]): void {
    if (finished.length === 0) return;
    const completedAt = nowIso();
    const outcomes = finished.flatMap(({ id, done }) =>
      done
        ? [{
            id, status: done.outcome.status, error_category: done.outcome.error_category, errors: JSON.stringify(done.outcome.errors),
            entities: JSON.stringify(done.outcome.entities), warnings: JSON.stringify(done.outcome.warnings), started_at: done.startedAt,
            duration: Date.parse(completedAt) - Date.parse(done.startedAt), redact: done.payload !== undefined ? 1 : 0, payload: done.payload ?? null,
          }]
        : [],
    );
    try {
      this.ctx.storage.transactionSync(() => {
        completeEvents(this.sql, outcomes, completedAt);
        this.sql.exec("DELETE FROM queue WHERE seq IN (SELECT value FROM json_each(?))", JSON.stringify(finished.map((f) => f.seq)));
      });
    } catch (err) {
      // Nothing of it was written: the events stay queued and unfinished (their PII unredacted, but
      // never marked done so), and run again after a backoff like any failure.
      const message = err instanceof Error ? err.message : String(err);
      console.error(JSON.stringify({ level: "error", message: "could not record a round's outcomes; its events run again", events: finished.length, error: message }));
      for (const f of finished) this.sql.exec("UPDATE queue SET last_error = ?, next_at = ? WHERE seq = ?", message, Date.now() + 1_000, f.seq);
    }
  }

  /** Gives up on an event that used up its attempts; its payload is redacted like any other, in the same write. */
  private async park(row: QueueRow): Promise<void> {
    const event = loadEvent(this.sql, row.event_id);
    const why = row.last_error ?? "the runtime stopped while processing it (crash or out of memory)";
    let failed;
    try {
      failed = event && UNFINISHED.includes(event.status) ? await failedOutcome(this.env, event, `gave up after ${row.attempts} attempts: ${why}`) : null;
    } catch (err) {
      // Redacting needs the integration's settings: if they cannot be read, keep the event and try
      // again later rather than finish it with its PII still stored.
      console.error(JSON.stringify({ level: "error", message: "could not park event; retrying", event_id: row.event_id, error: (err as Error).message }));
      this.sql.exec("UPDATE queue SET next_at = ? WHERE seq = ?", Date.now() + 30_000, row.seq);
      return;
    }
    this.finish([{ seq: row.seq, id: row.event_id, done: event && failed ? { startedAt: event.started_at ?? event.received_at, ...failed } : null }]);
  }

  /** The alarm follows the queue: at once while events are ready, at the earliest backoff otherwise, none when empty. */
  private async scheduleNext(): Promise<void> {
    const now = Date.now();
    const ready = this.sql.exec(`SELECT 1 FROM queue WHERE group_key NOT IN (SELECT group_key FROM queue WHERE next_at > 0 AND next_at > ?) LIMIT 1`, now).toArray().length > 0;
    const { wake } = this.sql.exec<{ wake: number | null }>("SELECT MIN(next_at) AS wake FROM queue WHERE next_at > 0 AND next_at > ?", now).one();
    if (ready) await this.ctx.storage.setAlarm(now);
    else if (wake !== null) await this.ctx.storage.setAlarm(wake);
    else await this.ctx.storage.deleteAlarm();
  }
}
