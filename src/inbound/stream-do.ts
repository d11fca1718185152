// EventStream: one Durable Object per (integration, group_id) that processes that stream's events
// strictly in the order they were accepted, one at a time. Its queue is durable storage and its
// work is driven by alarms, which the runtime re-runs after a crash or restart.
import { DurableObject } from "cloudflare:workers";
import { failEvent, processEvent } from "./process";

/** Attempts per event before it is recorded as a system error (the stream then moves on). */
export const MAX_ATTEMPTS = 5;
/** How long one alarm run works before it hands over to the next, so no invocation runs unbounded. */
const SLICE_MS = 10_000;

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

  override async alarm(): Promise<void> {
    const until = Date.now() + SLICE_MS;
    for (;;) {
      const head = this.sql.exec<{ seq: number; event_id: string; attempts: number }>("SELECT seq, event_id, attempts FROM queue ORDER BY seq LIMIT 1").toArray()[0];
      if (!head) return;
      try {
        await processEvent(this.env, head.event_id);
        this.sql.exec("DELETE FROM queue WHERE seq = ?", head.seq);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const attempts = head.attempts + 1;
        console.error(JSON.stringify({ level: "error", event_id: head.event_id, attempts, message }));
        if (attempts >= MAX_ATTEMPTS) {
          await failEvent(this.env, head.event_id, `gave up after ${attempts} attempts: ${message}`);
          this.sql.exec("DELETE FROM queue WHERE seq = ?", head.seq);
        } else {
          // The head blocks its stream (order matters), so back off before trying it again.
          this.sql.exec("UPDATE queue SET attempts = ?, last_error = ? WHERE seq = ?", attempts, message, head.seq);
          await this.ctx.storage.setAlarm(Date.now() + Math.min(60_000, 500 * 2 ** attempts));
          return;
        }
      }
      if (Date.now() > until) {
        await this.ctx.storage.setAlarm(Date.now());
        return;
      }
    }
  }
}
