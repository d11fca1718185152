// Configuration read on the per-event path (integrations with their use cases, a tenant's
// integration ids), cached in the isolate. D1 runs one query at a time for the whole platform, so the
// event path must not read it per event. A configuration write in this isolate clears the cache at
// once (every mutating configuration request ends with configChanged()); other isolates see a change
// within CONFIG_TTL_MS. Token checks are not cached here: a revoked token is refused at once.

/** How long another isolate may keep serving a configuration this isolate did not change. */
export const CONFIG_TTL_MS = 5_000;
/** Entries kept per isolate; the oldest go first. */
const MAX_ENTRIES = 1_000;

let epoch = 0;
const entries = new Map<string, { epoch: number; at: number; value: Promise<unknown> }>();

/** Forget every cached configuration (called after any configuration write in this isolate). */
export function configChanged(): void {
  epoch++;
  entries.clear();
}

/**
 * The cached value for `key`, or what `load` gives (shared by concurrent callers). A failed load is
 * not kept, so the next caller tries again.
 */
export function cachedConfig<T>(key: string, load: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const hit = entries.get(key);
  if (hit && hit.epoch === epoch && now - hit.at < CONFIG_TTL_MS) {
    // Least recently used goes first: a hit moves to the end.
    entries.delete(key);
    entries.set(key, hit);
    return hit.value as Promise<T>;
  }
  entries.delete(key);
  const value = load();
  const entry = { epoch, at: now, value };
  if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
  entries.set(key, entry);
  value.catch(() => {
    if (entries.get(key) === entry) entries.delete(key);
  });
  return value;
}
