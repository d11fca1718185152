// EventStream: one Durable Object per (integration, group_id) that processes that stream's events
// strictly in the order they were accepted, one at a time. Its queue is durable storage and its
// work is driven by alarms, which the runtime re-runs after a crash or restart.
import { DurableObject } from "cloudflare:workers";
import { crashPoint } from "../platform/crash-points";
import { failEvent, processEvent } from "./process";

/** Attempts per event before it is recorded as a system error (the stream then moves on). */
export const MAX_ATTEMPTS = 5;
/**
 * One alarm run (a slice) processes at most SLICE_EVENTS events and starts none after SLICE_MS, then
 * re-arms the alarm at once and returns: the runtime delivers whatever else is waiting (requests to
 * this object, other objects' work, the Worker's requests in the same isolate) before the next slice,
 * so a backlog drains without holding anything else up. See docs/STORAGE.md, "Bounded background work".
 */
export const SLICE_EVENTS = 50;
export const SLICE_MS = 250;

export class EventStream extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS queue (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT, enqueued_at TEXT NOT NULL)`);
  }

  /** Appends events in the given order (an id already queued keeps its place) and wakes the stream. */
  async enqueue(eventIds: string[]): Promise<void> {
    const at = new Date().toISOString();
    for (const id of eventIds) this.sql.exec("INSERT OR IGNORE INTO queue (event_id, enqueued_at) VALUES (?, ?)", id, at);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
  }

  /** Events still waiting, oldest first (for monitoring and tests). */
  async pending(): Promise<{ event_id: string; attempts: number; last_error: string | null }[]> {
    return this.sql.exec<{ event_id: string; attempts: number; last_error: string | null }>("SELECT event_id, attempts, last_error FROM queue ORDER BY seq").toArray();
  }

  /**
   * Works through the queue head first. The attempt is recorded before the event runs, so an attempt
   * that never returns (the isolate ran out of memory, the runtime restarted) still counts: once an
   * event has used up its attempts it is parked as a system error without running again, and no
   * stored configuration can keep a stream, or the runtime, in a crash loop.
   */
  override async alarm(): Promise<void> {
    const until = Date.now() + SLICE_MS;
    for (let handled = 1; ; handled++) {
      const head = this.sql.exec<{ seq: number; event_id: string; attempts: number; last_error: string | null }>(
        "SELECT seq, event_id, attempts, last_error FROM queue ORDER BY seq LIMIT 1",
      ).toArray()[0];
      if (!head) return;
      if (head.attempts >= MAX_ATTEMPTS) {
        const why = head.last_error ?? "the runtime stopped while processing it (crash or out of memory)";
        try {
          await failEvent(this.env, head.event_id, `gave up after ${head.attempts} attempts: ${why}`);
        } catch (err) {
          // Recording the failure needs D1: if that fails, keep the event and try again later rather
          // than let the alarm's own retries run out and stall the stream.
          console.error(JSON.stringify({ level: "error", message: "could not park event; retrying", event_id: head.event_id, error: (err as Error).message }));
          await this.ctx.storage.setAlarm(Date.now() + 30_000);
          return;
        }
        this.sql.exec("DELETE FROM queue WHERE seq = ?", head.seq);
        if (await this.endSliceIfFull(handled, until)) return;
        continue;
      }
      // Recorded (and committed: storage writes are durable before the next await's output) first.
      this.sql.exec("UPDATE queue SET attempts = attempts + 1, last_error = NULL WHERE seq = ?", head.seq);
      await this.ctx.storage.sync();
      crashPoint("stream.after-attempt-recorded", (why) => this.ctx.abort(why));
      try {
        await processEvent(this.env, head.event_id);
        crashPoint("stream.before-dequeue", (why) => this.ctx.abort(why));
        this.sql.exec("DELETE FROM queue WHERE seq = ?", head.seq);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const attempts = head.attempts + 1;
        console.error(JSON.stringify({ level: "error", event_id: head.event_id, attempts, message }));
        this.sql.exec("UPDATE queue SET last_error = ? WHERE seq = ?", message, head.seq);
        if (attempts < MAX_ATTEMPTS) {
          // The head blocks its stream (order matters), so back off before trying it again.
          await this.ctx.storage.setAlarm(Date.now() + Math.min(60_000, 500 * 2 ** attempts));
          return;
        }
      }
      if (await this.endSliceIfFull(handled, until)) return;
    }
  }

  /** Ends the slice once it is full (re-arming the alarm at once when events are left); true if it ended. */
  private async endSliceIfFull(handled: number, until: number): Promise<boolean> {
    if (handled < SLICE_EVENTS && Date.now() < until) return false;
    if (this.sql.exec("SELECT 1 FROM queue LIMIT 1").toArray().length > 0) await this.ctx.storage.setAlarm(Date.now());
    return true;
  }
}
