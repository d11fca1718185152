// Following paths that users give (redaction paths, field paths, templates) through JSON values:
// own properties only, and the keys that reach an object's prototype are refused outright, so no
// configuration can read or write Object.prototype (one tenant's path must not break every tenant).

/** Keys that lead from a plain value to shared prototypes. */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

export const isPrototypeKey = (key: string) => PROTOTYPE_KEYS.has(key);

/** True when a dotted path (`a.b.*.c`, optional leading `$.`) names a prototype key anywhere. */
export function hasPrototypeSegment(path: string): boolean {
  return path.replace(/^\$\./, "").split(/[.[\]]/).some(isPrototypeKey);
}

/** The value of `node`'s own property `key`, or undefined (inherited properties are never read). */
export function ownValue(node: unknown, key: string): unknown {
  if (node === null || typeof node !== "object" || isPrototypeKey(key)) return undefined;
  return Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
}

/** Sets an own, enumerable property, even for a key like `__proto__` that plain assignment treats specially. */
export function setOwn(node: object, key: string, value: unknown): void {
  // Only `__proto__` is an accessor on Object.prototype; every other key assigns an own data property.
  if (key === "__proto__") Object.defineProperty(node, key, { value, writable: true, enumerable: true, configurable: true });
  else (node as Record<string, unknown>)[key] = value;
}
