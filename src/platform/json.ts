// Narrowing helpers for untyped JSON values (payloads, mapped attributes), and the one guarded way
// untrusted JSON text enters the Worker: strict UTF-8 and a nesting limit checked before parsing.
import { AppError } from "./errors";

/** A plain JSON object: not null, not an array. */
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Deepest nesting of objects and arrays accepted in any JSON body, configuration or payload. Real
 * ERP documents (IDocs, OData) nest about ten levels; 64 leaves room for envelopes around them while
 * keeping recursive code (JSON.stringify, structuredClone, zod, mappings) far from the stack limit.
 */
export const MAX_JSON_DEPTH = 64;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Bytes as text; invalid UTF-8 is a 400, never silently replaced by U+FFFD. */
export function decodeUtf8(bytes: ArrayBuffer | Uint8Array, what = "Request body"): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new AppError("INVALID_JSON", `${what} is not valid UTF-8`);
  }
}

/**
 * The deepest nesting of `[`/`{` in JSON text, counting only outside strings; stops counting (and
 * returns a value above `limit`) as soon as the limit is passed, so a hostile body costs one scan.
 */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */ || ch === 91 /* [ */) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (ch === 125 /* } */ || ch === 93 /* ] */) depth--;
  }
  return deepest;
}

/** Refuses JSON text nested deeper than `limit` (400 NESTING_TOO_DEEP). */
export function assertJsonDepth(text: string, what = "Request body", limit = MAX_JSON_DEPTH): void {
  if (jsonDepth(text, limit) > limit) {
    throw new AppError("NESTING_TOO_DEEP", `${what} nests objects or arrays deeper than ${limit} levels`, { max_depth: limit });
  }
}

/** Untrusted JSON bytes to a value: strict UTF-8, bounded depth, 400 INVALID_JSON when malformed. */
export function parseJsonBytes(bytes: ArrayBuffer | Uint8Array, what = "Request body"): unknown {
  const text = decodeUtf8(bytes, what);
  assertJsonDepth(text, what);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AppError("INVALID_JSON", `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The depth of an already-parsed value, stopping past `limit` (for values that did not come as text). */
export function valueDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== "object") continue;
    const here = depth + 1;
    if (here > deepest) {
      deepest = here;
      if (deepest > limit) return deepest;
    }
    for (const child of Object.values(node)) if (child !== null && typeof child === "object") stack.push([child, here]);
  }
  return deepest;
}

/** Longest JSON text given to one json_each statement (SQLite in a Durable Object refuses strings over 2 MB). */
const STATEMENT_JSON_BYTES = 512 * 1024;

/**
 * JSON arrays of `rows`, each at most STATEMENT_JSON_BYTES long (a row longer than that alone): JSON
 * text escapes payloads again, so large batches go in several statements.
 */
export function jsonChunks(rows: unknown[]): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let length = 0;
  for (const row of rows) {
    const text = JSON.stringify(row);
    if (current.length > 0 && length + text.length > STATEMENT_JSON_BYTES) {
      chunks.push(`[${current.join(",")}]`);
      current = [];
      length = 0;
    }
    current.push(text);
    length += text.length + 1;
  }
  if (current.length > 0) chunks.push(`[${current.join(",")}]`);
  return chunks;
}
