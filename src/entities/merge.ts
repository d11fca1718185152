// How an update's attributes combine with an entity's current ones (pure, used by EntityStore).
import { isRecord } from "../platform/json";
import { ownValue, setOwn } from "../platform/paths";

export interface ResolvedRelation {
  entity_id: string;
  _schema: string;
  _tags?: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A value's identity for _append: strings as themselves (cheap on long lists), others as JSON, which never starts with "s". */
const valueKey = (v: unknown) => (typeof v === "string" ? `s${v}` : JSON.stringify(v));

function appendUnique<T>(existing: T[], items: T[], key: (t: T) => string): T[] {
  const seen = new Set(existing.map(key));
  const out = [...existing];
  for (const item of items) {
    const k = key(item);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(item);
    }
  }
  return out;
}

/**
 * One attribute's next value:
 * - `{ $relation: { _set | _append | _append_all: [refs] } }` (refs already resolved to entity ids):
 *   _set replaces, _append adds refs not yet present (by entity_id), _append_all adds all;
 * - `{ _append: [...] }` adds items not yet present, `{ _append_all: [...] }` adds all;
 * - anything else replaces.
 */
export function mergeAttribute(current: unknown, next: unknown): unknown {
  if (!isRecord(next)) return next;
  const existing = Array.isArray(current) ? current : [];
  if (isRecord(next.$relation)) {
    const ops = next.$relation as Record<string, ResolvedRelation[]>;
    let refs = existing as ResolvedRelation[];
    if (ops._set) refs = ops._set;
    if (ops._append) refs = appendUnique(refs, ops._append, (r) => r.entity_id);
    if (ops._append_all) refs = [...refs, ...ops._append_all];
    return refs;
  }
  if (Array.isArray(next._append)) return appendUnique(existing, next._append, valueKey);
  if (Array.isArray(next._append_all)) return [...existing, ...next._append_all];
  return next;
}

export type AttributeChanges = Record<string, { from?: unknown; to?: unknown }>;

/**
 * Applies `update` over `current`; returns the next attributes and what changed. Attributes are read
 * and written as own properties only, so no attribute name can reach or replace a prototype.
 */
export function mergeAttributes(current: Record<string, unknown>, update: Record<string, unknown>) {
  const next = { ...current };
  const changes: AttributeChanges = {};
  for (const [attribute, value] of Object.entries(update)) {
    const before = ownValue(current, attribute);
    const merged = mergeAttribute(before, value);
    if (!same(before, merged)) {
      setOwn(changes, attribute, { from: before, to: merged });
      setOwn(next, attribute, merged);
    }
  }
  return { next, changes };
}
