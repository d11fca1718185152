// The `ctx.state` capability of one run: forwards to the (tenant, app) AppState object, which the
// isolate never holds itself. A pull run's writes are kept here and committed only after its events
// are stored (service.ts), so a crash in between re-reads the old cursor instead of losing records.
import { RpcTarget } from "cloudflare:workers";
import type { AppState, StateChange, StateRefusal } from "./state-do";
import { STATE_LIMITS } from "./state-do";

export class RunState extends RpcTarget {
  private readonly pending = new Map<string, string | null>();
  /** What the buffered writes weigh, so a run cannot pile up more than the store would ever accept. */
  private pendingBytes = 0;

  constructor(
    private readonly store: DurableObjectStub<AppState>,
    private readonly buffered = false,
  ) {
    super();
  }

  async get(key: string): Promise<string | null> {
    if (this.pending.has(key)) return this.pending.get(key)!;
    return this.store.get(key);
  }

  async put(key: string, value: string): Promise<StateRefusal | null> {
    return this.change({ key, value });
  }

  async delete(key: string): Promise<StateRefusal | null> {
    return this.change({ key, value: null });
  }

  private async change(change: StateChange): Promise<StateRefusal | null> {
    if (!this.buffered) return this.store.apply([change]);
    if (change.value !== null && change.value.length > STATE_LIMITS.maxValueBytes) return { error: `the state value for '${change.key}' is over ${STATE_LIMITS.maxValueBytes} bytes` };
    if (!this.pending.has(change.key) && this.pending.size >= STATE_LIMITS.maxKeys) return { error: `at most ${STATE_LIMITS.maxKeys} state keys per run` };
    const weight = (key: string, value: string | null | undefined) => (value == null ? 0 : key.length + value.length);
    const next = this.pendingBytes - weight(change.key, this.pending.get(change.key)) + weight(change.key, change.value);
    if (next > STATE_LIMITS.maxTotalBytes) return { error: `an app keeps at most ${STATE_LIMITS.maxTotalBytes} bytes of state per tenant` };
    this.pendingBytes = next;
    this.pending.set(change.key, change.value);
    return null;
  }

  /** Writes a buffered run's changes (all or none); a refusal is returned, not thrown. */
  async commit(): Promise<StateRefusal | null> {
    if (this.pending.size === 0) return null;
    const changes = [...this.pending].map(([key, value]) => ({ key, value }));
    this.pending.clear();
    this.pendingBytes = 0;
    return this.store.apply(changes);
  }
}
