// Named crash points at the step boundaries of inbound processing and outbound delivery.
//
// They exist for the crash test (test/reliability/crash.test.ts), which stops the runtime between
// each pair of steps and checks that recovery loses nothing and applies nothing twice. Tests run in
// the Worker's own isolate, beside its Durable Objects, so arming one is a write to this module's
// map. Production never arms one: nothing outside the tests calls armCrash, so every point is a map
// lookup that finds nothing and returns.

/** Every crash point, in the order an event meets them (see docs/STORAGE.md, "Crash safety"). */
export const CRASH_POINTS = [
  "stream.after-attempt-recorded",
  "process.after-entity-update",
  "stream.before-dequeue",
  "entity.before-flush",
  "outbox.after-send",
  "queue.after-fan-out",
  "endpoint.after-post",
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

/** Crashes left to inject, per point. */
const armed = new Map<CrashPointName, number>();

/**
 * Crashes here if the point is armed (and counts the crash off). Inside a Durable Object pass
 * `abort`, which resets the object as a real crash would (`(why) => this.ctx.abort(why)`); without
 * it, or should abort return, the step throws.
 * @example crashPoint("stream.before-dequeue", (why) => this.ctx.abort(why));
 */
export function crashPoint(name: CrashPointName, abort?: (reason: string) => void): void {
  const left = armed.get(name);
  if (!left) return;
  if (left > 1) armed.set(name, left - 1);
  else armed.delete(name);
  const reason = `injected crash at ${name}`;
  abort?.(reason);
  throw new Error(reason);
}

/** Arms a point to crash the next `times` times it is reached. */
export function armCrash(name: CrashPointName, times = 1): void {
  armed.set(name, (armed.get(name) ?? 0) + times);
}

/** Crashes still to come at a point (0 once every armed crash has happened). */
export function crashesLeft(name: CrashPointName): number {
  return armed.get(name) ?? 0;
}

/** Disarms every point. */
export function disarmAll(): void {
  armed.clear();
}
