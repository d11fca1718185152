// JSONata through one door: compiled once per text, every evaluation bounded in depth and steps.
import jsonata from "jsonata";

export interface EvaluationBounds {
  /** Deepest nesting of evaluation (JSONata's own `stack` guardrail, error D1011). */
  maxDepth: number;
  /**
   * Most evaluation steps (AST nodes visited) per evaluation, error D1012. workerd's clock does not
   * advance during pure computation, so a wall-clock timeout would never fire inside the Worker:
   * counting steps bounds the work deterministically instead.
   */
  maxSteps: number;
}

export const DEFAULT_BOUNDS: EvaluationBounds = { maxDepth: 500, maxSteps: 1_000_000 };

/** A JSONata failure: `code` is JSONata's (S0201, T2001, D1011, ...), `position` its character offset. */
export class ExpressionError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly position?: number,
    readonly token?: string,
  ) {
    super(message);
    this.name = "ExpressionError";
  }
}

/**
 * In array contexts `$$` must be the whole payload while `$` is the element. JSONata binds `$$` to
 * the evaluation input, so the expression is wrapped in a block that rebinds it; positions in errors
 * are shifted back so they point into the text the user wrote.
 */
const ROOT_PREFIX = "($$ := $__payload;\n";
const ROOT_SUFFIX = "\n)";

interface Compiled {
  expression: jsonata.Expression;
  offset: number;
}

const CACHE_LIMIT = 1000;
const cache = new Map<string, Compiled>();

function toExpressionError(err: unknown, offset: number): ExpressionError {
  if (err instanceof ExpressionError) return err;
  const e = err as { code?: string; message?: string; position?: number; token?: string };
  if (e && typeof e.code === "string") {
    const position = typeof e.position === "number" ? Math.max(0, e.position - offset) : undefined;
    return new ExpressionError(e.code, e.message ?? e.code, position, e.token);
  }
  // Host errors (e.g. RangeError: Maximum call stack size exceeded) are bounded failures too.
  return new ExpressionError("D1011", err instanceof Error ? err.message : String(err));
}

function stepCounter(maxSteps: number) {
  return (_node: unknown, _input: unknown, environment: { base: { __steps?: number } }) => {
    const base = environment.base;
    base.__steps = (base.__steps ?? 0) + 1;
    if (base.__steps > maxSteps) {
      throw { code: "D1012", message: `Expression exceeded ${maxSteps} evaluation steps (runaway expression?)` };
    }
  };
}

/** Compiles (or fetches from the cache) an expression; throws ExpressionError on a syntax error. */
export function compileExpression(text: string, options: { rootBinding?: boolean; bounds?: EvaluationBounds } = {}): Compiled {
  const bounds = options.bounds ?? DEFAULT_BOUNDS;
  const key = `${options.rootBinding ? "R" : "P"}${bounds.maxDepth}/${bounds.maxSteps}\u0000${text}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const source = options.rootBinding ? ROOT_PREFIX + text + ROOT_SUFFIX : text;
  const offset = options.rootBinding ? ROOT_PREFIX.length : 0;
  let expression: jsonata.Expression;
  try {
    expression = jsonata(source, { stack: bounds.maxDepth });
  } catch (err) {
    throw toExpressionError(err, offset);
  }
  expression.assign(Symbol.for("jsonata.__evaluate_entry") as unknown as string, stepCounter(bounds.maxSteps));
  const compiled = { expression, offset };
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(key, compiled);
  return compiled;
}

/** Throws ExpressionError when `text` does not parse. */
export function assertParses(text: string): void {
  compileExpression(text);
}

export interface EvaluateOptions {
  /** Bindings visible as `$name`. */
  bindings?: Record<string, unknown>;
  /** When set, `$$` is this value (the whole payload) while `$` is `input`. */
  root?: unknown;
  bounds?: EvaluationBounds;
}

/** Evaluates a JSONata expression; `undefined` means "no value" (the attribute is omitted). */
export async function evaluateExpression(text: string, input: unknown, options: EvaluateOptions = {}): Promise<unknown> {
  const rootBinding = options.root !== undefined;
  const { expression, offset } = compileExpression(text, { rootBinding, bounds: options.bounds });
  const bindings = rootBinding ? { ...options.bindings, __payload: options.root } : options.bindings;
  try {
    return normalise(await expression.evaluate(input, bindings));
  } catch (err) {
    throw toExpressionError(err, offset);
  }
}

/** JSONata sequences are arrays with extra flags; give callers plain JSON values. */
function normalise(value: unknown): unknown {
  if (value === undefined || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(normalise);
  if (typeof (value as { _jsonata_lambda?: boolean })._jsonata_lambda === "boolean") return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const n = normalise(v);
    if (n !== undefined) out[k] = n;
  }
  return out;
}
