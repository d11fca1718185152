// AppState: one Durable Object per (tenant, app), the app's small durable key-value store
// (`ctx.state`, e.g. a pull cursor). It is reached only through the host's per-run capability
// (sandbox.ts), never by the isolate itself, so an app can read and write only its own tenant's state.
import { DurableObject } from "cloudflare:workers";

/** Bounds of one app's state in one tenant. */
export const STATE_LIMITS = { maxKeyChars: 256, maxValueBytes: 64 * 1024, maxTotalBytes: 1024 * 1024, maxKeys: 1000 } as const;

/** One change to apply: a put (value is JSON text) or a delete (value null). */
export interface StateChange {
  key: string;
  value: string | null;
}

/** A refused write, answered (not thrown) so its message reaches the app unchanged. */
export interface StateRefusal {
  error: string;
}

/** The id name of a tenant's app's state object. */
export const appStateName = (tenantId: string, app: string) => `${tenantId}\u0000${app}`;

export class AppState extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, bytes INTEGER NOT NULL)");
  }

  /** The value's JSON text, or null. */
  async get(key: string): Promise<string | null> {
    return this.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  /** Applies the changes all or none, within the bounds; a refusal names the bound. */
  async apply(changes: StateChange[]): Promise<StateRefusal | null> {
    for (const { key, value } of changes) {
      if (typeof key !== "string" || key.length === 0 || key.length > STATE_LIMITS.maxKeyChars) return { error: `state keys are 1..${STATE_LIMITS.maxKeyChars} characters` };
      if (value !== null && new TextEncoder().encode(value).byteLength > STATE_LIMITS.maxValueBytes) {
        return { error: `the state value for '${key}' is over ${STATE_LIMITS.maxValueBytes} bytes` };
      }
    }
    let refusal: StateRefusal | null = null;
    try {
      this.ctx.storage.transactionSync(() => {
      for (const { key, value } of changes) {
        if (value === null) this.sql.exec("DELETE FROM kv WHERE key = ?", key);
        else this.sql.exec("INSERT INTO kv (key, value, bytes) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, bytes = excluded.bytes", key, value, key.length + value.length);
      }
      const { n, total } = this.sql.exec<{ n: number; total: number | null }>("SELECT count(*) AS n, sum(bytes) AS total FROM kv").one();
      if (n > STATE_LIMITS.maxKeys) refusal = { error: `an app keeps at most ${STATE_LIMITS.maxKeys} state keys per tenant` };
      else if ((total ?? 0) > STATE_LIMITS.maxTotalBytes) refusal = { error: `an app keeps at most ${STATE_LIMITS.maxTotalBytes} bytes of state per tenant` };
      // Throwing rolls the whole transaction back: nothing of a refused batch is kept.
      if (refusal) throw new Error(refusal.error);
      });
    } catch (err) {
      if (!refusal) throw err;
    }
    return refusal;
  }

  /** Every key and value (for tests and operators). */
  async entries(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = Object.create(null);
    for (const row of this.sql.exec<{ key: string; value: string }>("SELECT key, value FROM kv ORDER BY key")) out[row.key] = JSON.parse(row.value);
    return out;
  }

  /** Forgets everything (the app was uninstalled). */
  async clear(): Promise<void> {
    this.sql.exec("DELETE FROM kv");
  }
}
