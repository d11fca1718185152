// The three-way merge behind blueprint upgrades: base (the installed version), current (the tenant's
// state) and incoming (the new version), field by field. Objects are merged key by key; arrays and
// scalars are atomic. A field both sides changed differently is a conflict and keeps the tenant's value.

/** One field that a merge (or a plan) changes: `path` is dotted (`configuration.entities`), "" for the whole value. */
export interface FieldChange {
  path: string;
  from: unknown;
  to: unknown;
}

/** A field the tenant and the new version both changed, differently: current is kept. */
export interface FieldConflict {
  path: string;
  base: unknown;
  current: unknown;
  incoming: unknown;
}

export interface MergeResult {
  /** The merged value (`undefined` when the field is absent). */
  value: unknown;
  conflicts: FieldConflict[];
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** Own keys of the objects given, in first-seen order. */
function keysOf(...values: unknown[]): string[] {
  const keys = new Set<string>();
  for (const v of values) if (isPlainObject(v)) for (const k of Object.keys(v)) keys.add(k);
  return [...keys];
}

/** Sets an own property, even one named `__proto__` (JSON may carry it; it must stay data). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown) {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

const own = (o: Record<string, unknown>, key: string) => (Object.hasOwn(o, key) ? o[key] : undefined);

/**
 * Structural equality of JSON values: object key order does not matter, array order does, and a
 * property holding `undefined` equals an absent one.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) return keysOf(a, b).every((k) => deepEqual(own(a, k), own(b, k)));
  return false;
}

/**
 * Merges one value three ways. Where incoming equals base the tenant's value stays; where current
 * equals base the new version's value is taken; where both agree nothing changes; where all three
 * are objects the merge recurses into their keys; anything else is a conflict that keeps current.
 *
 * @example merge3({ a: 1, b: 1 }, { a: 2, b: 1 }, { a: 1, b: 3 }) // { value: { a: 2, b: 3 }, conflicts: [] }
 */
export function merge3(base: unknown, current: unknown, incoming: unknown, path = ""): MergeResult {
  if (deepEqual(incoming, base)) return { value: current, conflicts: [] };
  if (deepEqual(current, base)) return { value: incoming, conflicts: [] };
  if (deepEqual(current, incoming)) return { value: current, conflicts: [] };
  if (isPlainObject(base) && isPlainObject(current) && isPlainObject(incoming)) {
    const value: Record<string, unknown> = {};
    const conflicts: FieldConflict[] = [];
    for (const key of keysOf(current, incoming, base)) {
      const merged = merge3(own(base, key), own(current, key), own(incoming, key), join(path, key));
      if (merged.value !== undefined) setOwn(value, key, merged.value);
      conflicts.push(...merged.conflicts);
    }
    return { value, conflicts };
  }
  return { value: current, conflicts: [{ path, base: base ?? null, current: current ?? null, incoming: incoming ?? null }] };
}

/**
 * The fields that differ between `from` and `to`: objects compared key by key, arrays and scalars
 * whole; an absent side is reported as null.
 *
 * @example diffValues({ name: "A", enabled: true }, { name: "B", enabled: true }) // [{ path: "name", from: "A", to: "B" }]
 */
export function diffValues(from: unknown, to: unknown, path = ""): FieldChange[] {
  if (deepEqual(from, to)) return [];
  if (isPlainObject(from) && isPlainObject(to)) return keysOf(from, to).flatMap((key) => diffValues(own(from, key), own(to, key), join(path, key)));
  return [{ path, from: from ?? null, to: to ?? null }];
}
