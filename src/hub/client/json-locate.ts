/**
 * A small JSON parser that remembers where each value is, so an error the API reports by path
 * (`event_configuration.entities.0.fields.1.jsonataExpression`) can be shown at its line.
 *
 *   const parsed = parseWithPositions(text);
 *   if (!parsed.ok) parsed.error          // { message, line, column } of the first syntax error
 *   else parsed.locate(["entities", 0, "fields", 1]) // { line, column } of that value (1-based), or of
 *                                                    // its nearest ancestor that exists; null if none
 *
 * It accepts exactly JSON (RFC 8259); JSON.parse gives the value, this only the positions.
 */

export interface Position {
  line: number;
  column: number;
}

export type Parsed =
  | { ok: true; value: unknown; locate(path: (string | number)[]): (Position & { exact: boolean }) | null }
  | { ok: false; error: Position & { message: string } };

class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** The 1-based line and column of `offset` in `text`. */
export function positionOf(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

export function parseWithPositions(text: string): Parsed {
  // Offsets of each value by its path joined with "\u0000" (keys may contain dots).
  const offsets = new Map<string, number>();
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, i);
  };
  const expect = (ch: string) => {
    if (text[i] !== ch) fail(i >= text.length ? `Unexpected end of input; expected '${ch}'` : `Expected '${ch}' but found '${text[i]}'`);
    i++;
  };
  const string = (): string => {
    const start = i;
    expect('"');
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail("Control character in a string (use \\n, \\t, …)");
      if (text[i] === "\\") {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail("Invalid \\u escape");
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? "")) fail("Invalid escape in a string");
      }
      i++;
    }
    if (i >= text.length) {
      i = start;
      fail("Unterminated string");
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string[]): void => {
    ws();
    offsets.set(path.join("\u0000"), i);
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(text[i] === "}" ? "Trailing comma before '}'" : "Expected a property name in double quotes");
        const key = string();
        ws();
        expect(":");
        value([...path, key]);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        expect("}");
        return;
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        ws();
        if (text[i] === "]") fail("Trailing comma before ']'");
        value([...path, String(n)]);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        expect("]");
        return;
      }
    }
    if (c === '"') return void string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!literal) fail(i >= text.length ? "Unexpected end of input; expected a value" : `Unexpected '${c}'; expected a value`);
    i += literal![0].length;
  };
  try {
    value([]);
    ws();
    if (i < text.length) fail(`Unexpected '${text[i]}' after the end of the value`);
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { ok: false, error: { message: err.message, ...positionOf(text, err.offset) } };
    throw err;
  }
  return {
    ok: true,
    value: JSON.parse(text),
    locate(path) {
      const parts = path.map(String);
      for (let n = parts.length; n >= 0; n--) {
        const at = offsets.get(parts.slice(0, n).join("\u0000"));
        if (at !== undefined) return { ...positionOf(text, at), exact: n === parts.length };
      }
      return null;
    },
  };
}
