// The contract between the closure compiler (compiler.ts, runtime.ts) and its synchronous built-ins
// (functions.ts). Values, frames, lambdas and errors keep JSONata's own shapes, so the metered
// built-ins of ../expression.ts and JSONata's signature objects work on them unchanged.

/** A JSONata error as the interpreter throws it: `code` (T2001, D3020, ...) plus what its message quotes. */
export interface JsonataError {
  code: string;
  position?: number;
  token?: string;
  value?: unknown;
  value2?: unknown;
  index?: number;
  stack?: string;
}

/**
 * Per-evaluation state, shared by every frame of one evaluation (JSONata's `environment.base`).
 * `[METER]` (the symbol exported by ../expression.ts) holds the step meter the metered built-ins charge.
 */
export interface Base extends Frame {
  /** JSONata's `createSequence`: an array flagged `sequence = true`, capped at the evaluation's array bound (D2015). */
  createSequence(...items: unknown[]): Sequence;
  /** Captured once per evaluation: `$now()` and `$millis()` return it. */
  timestamp: Date;
  /** The RegExp-like engine (linear time, metered) regex literals are built with: `new base.RegexEngine(re)`. */
  RegexEngine: new (re: RegExp) => { lastIndex: number; exec(s: string): RegExpExecArray | null };
  /** Current depth of nested function applications; over the bound: D1011 (max_depth). */
  depth: number;
  /** JSONata options ({ stack, sequence, ... }): built-ins read `this.options`. */
  options: Record<string, unknown>;
  [key: symbol]: unknown;
}

/** A scope: JSONata's frame shape (`bind`, `lookup`, `base`). */
export interface Frame {
  bind(name: string, value: unknown): void;
  lookup(name: string): unknown;
  base: Base;
}

/** What `this` is inside a built-in's implementation (JSONata's `focus`). */
export interface Focus {
  environment: Frame;
  input: unknown;
  options?: unknown;
  createSequence: Base["createSequence"];
}

/** A JSONata sequence: an array with flags. */
export type Sequence = unknown[] & { sequence?: true; keepSingleton?: boolean; outerWrapper?: boolean; tupleStream?: boolean; cons?: boolean };

/** A built-in, as JSONata binds it: `signature.validate(args, input)` checks and fills arguments (sync). */
export interface BuiltIn {
  _jsonata_function: true;
  implementation: (this: Focus, ...args: any[]) => unknown;
  signature?: { validate(args: unknown[], context: unknown): unknown[]; definition: string };
}

/**
 * A lambda value. It keeps JSONata's field names (`_jsonata_lambda`, `arguments`, `signature`) because
 * $string, $type, the result normaliser and size measures recognise functions by them; `body` is a
 * compiled closure here, never an AST.
 */
export interface Lambda {
  _jsonata_lambda: true;
  arguments: { value: string }[];
  signature?: BuiltIn["signature"];
  /** Runs the body synchronously in a new frame whose parent is the closure's frame. */
  invoke(args: unknown[], environment: Frame): unknown;
  thunk?: boolean;
  [key: string]: unknown;
}

/** A compiled expression: synchronous, evaluated against an input in a root frame. */
export type Evaluator = (input: unknown, environment: Frame) => unknown;

/** What the compiler answers for one expression. */
export type CompileResult = { ok: true; evaluate: Evaluator } | { ok: false; reason: string };

/**
 * What the integration layer (../expression.ts) hands `runCompiled` for one evaluation. `meter` goes on
 * `base[METER]`; the bounds are the evaluation's own (see EvaluationBounds in ../expression.ts).
 */
export interface Host {
  meter: unknown;
  /** Longest sequence a step may build: past it, `{ code: "D2015", value: arrayCap }`. */
  arrayCap: number;
  /** Deepest nesting of function applications: past it, `{ code: "D1011", value: maxDepth }`. */
  maxDepth: number;
  maxStringLength: number;
  RegexEngine: Base["RegexEngine"];
}
