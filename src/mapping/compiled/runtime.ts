// Runtime support for compiled JSONata: frames, sequences, function application and the value
// helpers JSONata's evaluator uses (boolean, deep equality, lookup, append), transliterated from
// jsonata 2.2.2 so that compiled code keeps the interpreter's semantics, shapes and error codes.
// Values are untyped JSON or JSONata values, hence `any` throughout.
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Base, Frame } from "./types";

export type Ev = (input: any, env: Frame) => any;

/** The fields compiled code keeps on the evaluation's base, next to JSONata's. */
export interface RuntimeBase extends Base {
  /** The step meter (also at `[METER]`), read without a symbol lookup. */
  meter: { steps: number; limit: number };
  /** Longest sequence (D2015). */
  cap: number;
  /** Deepest evaluation nesting (D1011), 0 for none: JSONata's `options.stack`. */
  stack: number;
  /** A run-time binding shadows a built-in: calls compiled to the built-in look the name up again. */
  shadowed: boolean;
  maxStringLength: number;
}

// ---------------------------------------------------------------------------------------------
// Frames: JSONata's scope chain. Most frames hold a binding or two, so names and values live in
// two small arrays; the root frame reads the built-ins from their map.

export class Scope implements Frame {
  declare base: RuntimeBase;
  declare parent: Frame | undefined;
  /** Names and values, alternating: one allocation for the few bindings a frame holds. */
  declare slots: unknown[] | undefined;
  declare fallback: ReadonlyMap<string, unknown> | undefined;

  constructor(parent: Frame | undefined, fallback?: ReadonlyMap<string, unknown>) {
    this.parent = parent;
    this.base = parent?.base as RuntimeBase;
    this.slots = undefined;
    this.fallback = fallback;
  }

  bind(name: string, value: unknown): void {
    const slots = this.slots;
    if (slots === undefined) {
      this.slots = [name, value];
      return;
    }
    for (let i = 0; i < slots.length; i += 2) {
      if (slots[i] === name) {
        slots[i + 1] = value;
        return;
      }
    }
    slots.push(name, value);
  }

  lookup(name: string): unknown {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    let frame: Frame | undefined = this;
    while (frame instanceof Scope) {
      const slots = frame.slots;
      if (slots !== undefined) {
        for (let i = 0; i < slots.length; i += 2) if (slots[i] === name) return slots[i + 1];
      }
      if (frame.fallback !== undefined && frame.fallback.has(name)) return frame.fallback.get(name);
      frame = frame.parent;
    }
    return frame === undefined ? undefined : frame.lookup(name);
  }
}

export function createFrame(parent?: Frame): Frame {
  return new Scope(parent);
}

/** JSONata's createFrameFromTuple: one binding per tuple field. */
export function frameFromTuple(env: Frame, tuple: any): Frame {
  const frame = new Scope(env);
  for (const prop of Object.keys(tuple)) frame.bind(prop, tuple[prop]);
  return frame;
}

// ---------------------------------------------------------------------------------------------
// Errors and bounds.

export function d2015(value: number): never {
  throw { code: "D2015", stack: new Error().stack, value };
}

export function d1011(base: RuntimeBase): never {
  throw { code: "D1011", value: base.stack, stack: new Error().stack };
}

export function charge(base: RuntimeBase, units: number): void {
  const m = base.meter;
  m.steps += units;
  if (m.steps > m.limit) overBudget(m);
}

let overBudgetHandler: ((m: unknown) => void) | undefined;
/** The integration's charge() refuses with the right limit; installed by the compiler (import cycle). */
export function setOverBudgetHandler(h: (m: unknown) => void): void {
  overBudgetHandler = h;
}
export function overBudget(m: unknown): void {
  if (overBudgetHandler) overBudgetHandler(m);
  else throw { code: "D1012", value: (m as { limit: number }).limit };
}

// ---------------------------------------------------------------------------------------------
// Sequences: arrays flagged `sequence`. Compiled code pushes with an explicit cap check; the
// `createSequence` handed to built-ins overrides push as JSONata's does.

export function seq(): any[] {
  const s: any = [];
  s.sequence = true;
  return s;
}

export function seqOf(v: unknown): any[] {
  const s: any = [v];
  s.sequence = true;
  return s;
}

export function push(s: any[], v: unknown, cap: number): void {
  if (s.length >= cap) d2015(cap);
  s.push(v);
}

export function makeCreateSequence(cap: number): (...items: unknown[]) => any {
  return function createSequence(this: unknown) {
    const sequence: any = [];
    if (cap) {
      sequence.push = function (...items: unknown[]) {
        if (sequence.length + items.length > cap) d2015(cap);
        return Array.prototype.push.apply(sequence, items);
      };
    }
    sequence.sequence = true;
    if (arguments.length === 1) sequence.push(arguments[0]);
    return sequence;
  };
}

export function isSequence(v: any): boolean {
  return v !== null && typeof v === "object" && v.sequence === true && Array.isArray(v);
}

/** The tail of JSONata's evaluate(): singleton and empty sequences unwrap, unless kept. */
export function finish(result: any, keepArray: boolean): any {
  if (result && result.sequence === true && Array.isArray(result) && !(result as any).tupleStream) {
    if (keepArray) (result as any).keepSingleton = true;
    if (result.length === 0) return undefined;
    if (result.length === 1) return (result as any).keepSingleton ? result : result[0];
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Value helpers (jsonata utils and functions the evaluator calls).

export function isNumeric(n: unknown): boolean {
  if (typeof n !== "number") return false;
  if (n !== n) return false;
  if (!isFinite(n)) throw { code: "D1001", value: n, stack: new Error().stack };
  return true;
}

export function isArrayOfNumbers(arg: any): boolean {
  if (!Array.isArray(arg)) return false;
  let ok = true;
  // every item is tested (isNumeric throws on infinities), as JSONata's filter does
  for (let i = 0; i < arg.length; i++) if (!isNumeric(arg[i])) ok = false;
  return ok;
}

export function isArrayOfStrings(arg: any): boolean {
  if (!Array.isArray(arg)) return false;
  for (let i = 0; i < arg.length; i++) if (typeof arg[i] !== "string") return false;
  return true;
}

export function isLambda(v: unknown): boolean {
  return !!v && (v as any)._jsonata_lambda === true;
}

export function isFunctionValue(v: unknown): boolean {
  return (!!v && ((v as any)._jsonata_function === true || (v as any)._jsonata_lambda === true)) || typeof v === "function";
}

export function getFunctionArity(fn: unknown): number {
  const f = fn as any;
  return typeof f.arity === "number" ? f.arity : typeof f.implementation === "function" ? f.implementation.length : typeof f.length === "number" ? f.length : f.arguments.length;
}

/** JSONata's $boolean (undefined stays undefined). */
export function toBoolean(arg: any): boolean | undefined {
  if (arg === undefined) return undefined;
  if (Array.isArray(arg)) {
    if (arg.length === 1) return toBoolean(arg[0]);
    if (arg.length > 1) {
      let trues = 0;
      for (let i = 0; i < arg.length; i++) if (toBoolean(arg[i])) trues++;
      return trues > 0;
    }
    return false;
  }
  if (typeof arg === "string") return arg.length > 0;
  if (isNumeric(arg)) return arg !== 0;
  if (arg !== null && typeof arg === "object" && !isFunctionValue(arg)) return Object.keys(arg).length > 0;
  return arg === true;
}

export function boolize(v: any): boolean {
  const b = toBoolean(v);
  return b === undefined ? false : b;
}

export function isDeepEqual(lhs: any, rhs: any): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs === "object" && typeof rhs === "object" && lhs !== null && rhs !== null) {
    if (Array.isArray(lhs) && Array.isArray(rhs)) {
      if (lhs.length !== rhs.length) return false;
      for (let i = 0; i < lhs.length; i++) if (!isDeepEqual(lhs[i], rhs[i])) return false;
      return true;
    }
    let lkeys = Object.getOwnPropertyNames(lhs);
    let rkeys = Object.getOwnPropertyNames(rhs);
    if (lkeys.length !== rkeys.length) return false;
    lkeys = lkeys.sort();
    rkeys = rkeys.sort();
    for (let i = 0; i < lkeys.length; i++) if (lkeys[i] !== rkeys[i]) return false;
    for (let i = 0; i < lkeys.length; i++) if (!isDeepEqual(lhs[lkeys[i]!], rhs[lkeys[i]!])) return false;
    return true;
  }
  return false;
}

const hasOwn = Object.prototype.hasOwnProperty;

/** JSONata's fn.lookup: own properties only, arrays mapped and flattened one level. */
export function lookup(input: any, key: string, cap: number): any {
  if (Array.isArray(input)) {
    const result = seq();
    for (let i = 0; i < input.length; i++) {
      const res = lookup(input[i], key, cap);
      if (res !== undefined) {
        if (Array.isArray(res)) for (let j = 0; j < res.length; j++) push(result, res[j], cap);
        else push(result, res, cap);
      }
    }
    return result;
  }
  if (input !== null && typeof input === "object" && hasOwn.call(input, key) && input._jsonata_lambda !== true && input._jsonata_function !== true) return input[key];
  return undefined;
}

/** JSONata's fn.append (as the evaluator calls it, with `options.sequence` as the bound). */
export function append(arg1: any, arg2: any, cap: number): any {
  if (arg1 === undefined) return arg2;
  if (arg2 === undefined) return arg1;
  if (!Array.isArray(arg1)) arg1 = seqOf(arg1);
  if (!Array.isArray(arg2)) arg2 = [arg2];
  const size = arg1.length + arg2.length;
  if (cap && size > cap) d2015(size);
  return arg1.concat(arg2);
}

export function flatten(arg: any, flattened: any[] = []): any[] {
  if (Array.isArray(arg)) for (let i = 0; i < arg.length; i++) flatten(arg[i], flattened);
  else flattened.push(arg);
  return flattened;
}

// ---------------------------------------------------------------------------------------------
// Lambdas and function application.

/** A compiled tail call: what JSONata's trampoline evaluates from a thunk's body. */
export interface TailCall {
  procedure: Ev;
  arguments: Ev[];
  /** Set when the procedure is a variable: the thunk's `next.token`. */
  token: string | undefined;
  position: number | undefined;
  /** The built-in the procedure names, when nothing in the expression can rebind it. */
  builtIn?: any;
  validate?: Validator;
}

export interface CompiledLambda {
  _jsonata_lambda: true;
  input: unknown;
  environment: Frame;
  arguments: { value: string }[];
  signature: any;
  /** The compiled body, a TailCall for a thunk, or a native implementation (partial application). */
  body: Ev | TailCall | ((...args: any[]) => unknown);
  native?: boolean;
  thunk?: boolean;
  apply?: (self: any, args: unknown[]) => unknown;
  token?: unknown;
  position?: unknown;
}

export function makeLambda(input: unknown, environment: Frame, args: { value: string }[], signature: any, body: CompiledLambda["body"], thunk: boolean): CompiledLambda {
  const procedure: CompiledLambda = { _jsonata_lambda: true, input, environment, arguments: args, signature, body };
  if (thunk) {
    // a thunk never leaves apply()'s trampoline, so nothing calls its `apply`
    procedure.thunk = true;
    return procedure;
  }
  procedure.apply = function (self: any, a: unknown[]) {
    return apply(procedure, a, input, self ? self.environment : environment);
  };
  return procedure;
}

/** JSONata's apply(): applyInner, then the trampoline for tail-call thunks. */
export function apply(proc: unknown, args: unknown[], input: unknown, environment: Frame): unknown {
  const result: any = applyInner(proc, args, input, environment);
  if (result && result._jsonata_lambda === true && result.thunk === true) return trampoline(result, input, environment);
  return result;
}

/** The rest of apply(): tail calls, as long as a thunk comes back. */
export function trampoline(result: any, input: unknown, environment: Frame): unknown {
  while (result && result._jsonata_lambda === true && result.thunk === true) {
    const tail = result.body as TailCall;
    const base = environment.base as RuntimeBase;
    // (at the bound, the procedure's own evaluation fails with D1011: the general way)
    if (tail.builtIn !== undefined && !base.shadowed && (base.stack <= 0 || base.depth + 1 <= base.stack)) {
      // a built-in nothing rebinds: the procedure's value is known
      const next = tail.builtIn;
      next.token = tail.token;
      next.position = tail.position;
      const evaluatedArgs: unknown[] = [];
      for (let i = 0; i < tail.arguments.length; i++) evaluatedArgs.push(tail.arguments[i]!(result.input, result.environment));
      try {
        result = callBuiltIn(next, tail.validate!, evaluatedArgs, input, environment);
      } catch (err: any) {
        if (err !== null && typeof err === "object") {
          if (typeof err.token == "undefined") err.token = next.token;
          err.position = next.position || err.position;
        }
        throw err;
      }
      continue;
    }
    const next: any = tail.procedure(result.input, result.environment);
    if (tail.token !== undefined) next.token = tail.token;
    next.position = tail.position;
    const evaluatedArgs: unknown[] = [];
    for (let i = 0; i < tail.arguments.length; i++) evaluatedArgs.push(tail.arguments[i]!(result.input, result.environment));
    result = applyInner(next, evaluatedArgs, input, environment);
  }
  return result;
}

/**
 * applyInner for a built-in known at compile time: charged 1 step, arguments validated (through the
 * signature's precomputed fast path), the implementation called with JSONata's focus. Errors are
 * annotated by the caller, as applyInner's catch does.
 */
export function callBuiltIn(builtIn: any, validate: Validator, args: unknown[], input: unknown, environment: Frame): unknown {
  const base = environment.base as RuntimeBase;
  const m = base.meter;
  if (++m.steps > m.limit) overBudget(m);
  const validated = validate(args, input);
  let result: any = builtIn.implementation.apply(new BuiltInFocus(environment, input, base), validated);
  if (result !== null && typeof result === "object") {
    if (typeof result.next === "function" && Symbol.iterator in result) result = result.next().value;
    if (result !== null && typeof result === "object" && typeof result.then === "function") throw new Error("compiled JSONata: a built-in returned a promise");
  }
  return result;
}

/** JSONata's focus object (`this` in a built-in), one shape for every call. */
class BuiltInFocus {
  environment: Frame;
  input: unknown;
  options: Record<string, unknown>;
  createSequence: RuntimeBase["createSequence"];
  constructor(environment: Frame, input: unknown, base: RuntimeBase) {
    this.environment = environment;
    this.input = input;
    this.options = base.options;
    this.createSequence = base.createSequence;
  }
}

export type Validator = (args: unknown[], input: unknown) => unknown[];

/**
 * A signature's validation, decided once: the fast path of validateArguments (simple parameter
 * types, arguments of the right types: padded in place with undefined) or JSONata's validate().
 * `args` must be the caller's own array.
 */
export function makeValidator(signature: any): Validator {
  if (signature === undefined) return (args) => args;
  const fast = parseFastSignature(signature.definition);
  if (fast === null) return (args, input) => signature.validate(args, input);
  const max = fast.accepts.length;
  const required = fast.required;
  const hasArrays = fast.arrays.some((a) => a !== undefined);
  return (args, input) => {
    const n = args.length;
    if (n <= max && n >= required) {
      // array parameters may be wrapped in place before a later argument fails: keep the original
      const own = hasArrays ? args.slice() : args;
      if (fastValidate(fast, own)) return own;
    }
    return signature.validate(args, input);
  };
}

function applyInner(proc: any, args: unknown[], input: unknown, environment: Frame): unknown {
  try {
    const base = environment.base as RuntimeBase;
    charge(base, 1);
    let validatedArgs = args;
    if (proc && proc.signature !== undefined) validatedArgs = validateArguments(proc.signature, args, input);
    if (proc && proc._jsonata_lambda === true) return applyProcedure(proc, validatedArgs);
    if (proc && proc._jsonata_function === true) {
      const focus = { environment, input, options: base.options, createSequence: base.createSequence };
      let result = proc.implementation.apply(focus, validatedArgs);
      if (result !== null && typeof result === "object" && typeof result.next === "function" && Symbol.iterator in result) result = result.next().value;
      if (result !== null && typeof result === "object" && typeof result.then === "function") throw new Error("compiled JSONata: a built-in returned a promise");
      return result;
    }
    if (typeof proc === "function") return proc.apply(input, validatedArgs);
    throw { code: "T1006", stack: new Error().stack };
  } catch (err: any) {
    if (proc) {
      if (typeof err.token == "undefined" && typeof proc.token !== "undefined") err.token = proc.token;
      err.position = proc.position || err.position;
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Signature validation. JSONata builds a type string and matches it with a regex on every call;
// for the common signatures (simple parameter types, every argument supplied or only trailing
// optional ones left out) the outcome is known from the argument types alone: the arguments
// unchanged. Anything else goes to the signature's own validate().

interface FastSignature {
  /** Accepted symbols per parameter (JSONata's getSymbol letters, m for undefined). */
  accepts: string[];
  /** Per parameter: undefined, or for an array parameter (`a`) its item type ("" when none). */
  arrays: (string | undefined)[];
  /** How many leading parameters must be supplied for the fast path (the rest are `?`). */
  required: number;
}

const fastSignatures = new WeakMap<object, FastSignature | null>();

function validateArguments(signature: any, args: unknown[], input: unknown): unknown[] {
  let fast = fastSignatures.get(signature);
  if (fast === undefined) {
    fast = parseFastSignature(signature.definition);
    fastSignatures.set(signature, fast);
  }
  if (fast !== null && args.length <= fast.accepts.length && args.length >= fast.required) {
    const validated = args.slice();
    if (fastValidate(fast, validated)) return validated;
  }
  return signature.validate(args, input);
}

/**
 * The fast path: true when every argument is of an accepted type, `args` then being what
 * validate() answers (array parameters wrapped, padded with undefined); false (`args` untouched
 * or only partly wrapped: the caller passes the original to validate()) otherwise.
 */
function fastValidate(fast: FastSignature, args: unknown[]): boolean {
  const n = args.length;
  const accepts = fast.accepts;
  const arrays = fast.arrays;
  for (let i = 0; i < n; i++) {
    const arg: any = args[i];
    const symbol = symbolOf(arg);
    if (accepts[i]!.indexOf(symbol) < 0) return false;
    const subtype = arrays[i];
    if (subtype === undefined || symbol === "m") continue;
    if (symbol === "a") {
      if (subtype !== "" && arg.length > 0) {
        // JSONata: every item of the first item's type, which must be the subtype
        if (symbolOf(arg[0]) !== subtype) return false;
        for (let k = 1; k < arg.length; k++) if (symbolOf(arg[k]) !== subtype) return false;
      }
    } else if (subtype !== "" && symbol !== subtype) return false;
  }
  // all checked: now wrap (JSONata treats any other value as a singleton array)
  for (let i = 0; i < n; i++) {
    if (arrays[i] === undefined) continue;
    const arg = args[i];
    if (arg !== undefined && !Array.isArray(arg)) args[i] = [arg];
  }
  for (let i = n; i < accepts.length; i++) args.push(undefined);
  return true;
}

function symbolOf(value: unknown): string {
  switch (typeof value) {
    case "string":
      return "s";
    case "number":
      return "n";
    case "boolean":
      return "b";
    case "function":
      return "f";
    case "object":
      return value === null ? "l" : isFunctionValue(value) ? "f" : Array.isArray(value) ? "a" : "o";
    default:
      return "m";
  }
}

function parseFastSignature(definition: unknown): FastSignature | null {
  if (typeof definition !== "string") return null;
  if (definition[0] !== "<" || definition[definition.length - 1] !== ">") return null;
  // the parameters: up to the `:` of the return type, outside any subtype
  let params = definition.slice(1, -1);
  let depth = 0;
  for (let i = 0; i < params.length; i++) {
    const c = params[i];
    if (c === "<") depth++;
    else if (c === ">") depth--;
    else if (c === ":" && depth === 0) {
      params = params.slice(0, i);
      break;
    }
  }
  const accepts: string[] = [];
  const arrays: (string | undefined)[] = [];
  const optional: boolean[] = [];
  for (let i = 0; i < params.length; i++) {
    const c = params[i]!;
    let set: string;
    if (c === "(") {
      const end = params.indexOf(")", i);
      const choice = params.slice(i + 1, end);
      if (end < 0 || /[^snblof]/.test(choice)) return null;
      set = choice + "m";
      i = end;
    } else if ("snblo".includes(c)) set = c + "m";
    else if (c === "x") set = "asnblfom";
    else if (c === "j") set = "asnblom";
    else if (c === "f") set = "f";
    else if (c === "a") set = "asnblfom";
    else return null;
    let array: string | undefined = c === "a" ? "" : undefined;
    let next = params[i + 1];
    if (next === "<") {
      // a subtype: checked item by item for arrays (one letter here), ignored for functions
      const end = findClosing(params, i + 1);
      if (end < 0) return null;
      if (c === "a") {
        const subtype = params.slice(i + 2, end);
        if (!/^[snblo]$/.test(subtype)) return null;
        array = subtype;
      } else if (c !== "f") return null;
      i = end;
      next = params[i + 1];
    }
    let isOptional = false;
    // a context parameter (`-`) is on the fast path only when its argument is supplied
    if (next === "-") {
      i++;
      next = params[i + 1];
      if (next === "?" || next === "+") return null;
    }
    if (next === "?") {
      isOptional = true;
      i++;
    } else if (next === "+") return null;
    accepts.push(set);
    arrays.push(array);
    optional.push(isOptional);
  }
  let required = accepts.length;
  while (required > 0 && optional[required - 1]) required--;
  // an optional parameter before a required one could take an argument the regex would give later
  for (let i = 0; i < required; i++) if (optional[i]) return null;
  return { accepts, arrays, required };
}

/** The `>` closing the `<` at `open`, nested ones skipped; -1 if none. */
function findClosing(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "<") depth++;
    else if (text[i] === ">" && --depth === 0) return i;
  }
  return -1;
}

function applyProcedure(proc: CompiledLambda, args: unknown[]): unknown {
  const env = new Scope(proc.environment);
  const params = proc.arguments;
  // one parameter (the common callback): its slot directly, as bind() would lay it out
  if (params.length === 1) env.slots = [params[0]!.value, args[0]];
  else for (let i = 0; i < params.length; i++) env.bind(params[i]!.value, args[i]);
  if (proc.native === true) return applyNativeFunction(proc.body as (...a: any[]) => unknown, env);
  return (proc.body as Ev)(proc.input, env);
}

/** Parameter names of a native function, read from its source as JSONata does. */
export function nativeArguments(func: (...a: any[]) => unknown): string[] {
  const signature = func.toString();
  const sigParens = /\(([^)]*)\)/.exec(signature)![1]!;
  return sigParens.split(",");
}

function applyNativeFunction(proc: (...a: any[]) => unknown, env: Frame): unknown {
  const args = nativeArguments(proc).map((sigArg) => env.lookup(sigArg.trim()));
  const focus = { environment: env, createSequence: env.base.createSequence };
  const result: any = proc.apply(focus, args);
  if (result !== null && typeof result === "object" && typeof result.then === "function") throw new Error("compiled JSONata: a built-in returned a promise");
  return result;
}

/** JSONata's partialApplyProcedure: binds the supplied arguments, keeps the `?` ones open. */
export function partialApplyProcedure(proc: { environment?: Frame; input?: unknown; arguments: { value: string }[]; body: any; native?: boolean }, args: any[], environment: Frame): CompiledLambda {
  const env = new Scope(proc.environment || environment);
  const unboundArgs: { value: string }[] = [];
  proc.arguments.forEach((param, index) => {
    const arg = args[index];
    if (arg && arg.type === "operator" && arg.value === "?") unboundArgs.push(param);
    else env.bind(param.value, arg);
  });
  const procedure: CompiledLambda = { _jsonata_lambda: true, input: proc.input, environment: env, arguments: unboundArgs, signature: undefined, body: proc.body };
  delete (procedure as any).signature;
  if (proc.native) procedure.native = true;
  return procedure;
}

/** A native's parameter list as JSONata's parser reads it, or the error it raises; per function. */
const nativeParameters = new WeakMap<object, { value: string }[] | { error: any }>();

/**
 * JSONata's partialApplyNativeFunction: the parameter names read from the native's source are
 * parsed as `function($a, $b){ _ }` by JSONata's parser, which fails (S0208...) on a list it
 * cannot read, such as a default value (`$prettify = false`); so does this, with the same error.
 */
export function partialApplyNativeFunction(native: (...a: any[]) => unknown, args: any[], environment: Frame): CompiledLambda {
  let params = nativeParameters.get(native);
  if (params === undefined) {
    const body = "function(" + nativeArguments(native).map((a) => "$" + a.trim()).join(", ") + "){ _ }";
    try {
      params = (parseJsonata(body) as any).arguments as { value: string }[];
    } catch (err: any) {
      params = { error: err };
    }
    nativeParameters.set(native, params);
  }
  if (!Array.isArray(params)) {
    const e = params.error;
    throw e !== null && typeof e === "object" ? { ...e, stack: new Error().stack } : e;
  }
  return partialApplyProcedure({ arguments: params, body: native, native: true }, args, environment);
}

let parseJsonata: (text: string) => unknown = () => {
  throw new Error("compiled JSONata: no parser installed");
};
/** The parser partial application uses (installed by the compiler, which imports jsonata). */
export function setParser(parse: (text: string) => unknown): void {
  parseJsonata = parse;
}
