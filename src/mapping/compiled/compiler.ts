// Compiles JSONata's parsed tree to synchronous closures: jsonata 2.2.2's evaluator (evaluate() and
// the functions it dispatches to) transliterated so that every decision on node type, operator and
// flags is taken once, at compile time. Semantics, error codes and positions are the interpreter's,
// including the guards ../expression.ts rewrites into the tree (`&`, object keys, unary minus,
// transform clauses) and JSONata's depth count, which rises by one per evaluated node.
//
// Depth: JSONata checks its `stack` bound on every node. Here `base.depth` holds the depth of the
// node a running unit (root, lambda body, tail call, transform clause) was entered from; a node at
// static depth d inside the unit sits at base.depth + d. A unit whose deepest node cannot reach the
// bound runs unchecked; otherwise a checked variant (compiled on first need) tests every node.
/* eslint-disable @typescript-eslint/no-explicit-any */
import jsonata from "jsonata";
import * as host from "../expression";
import { compiledBuiltIns } from "./functions";
import {
  append,
  apply,
  boolize,
  callBuiltIn,
  charge,
  d1011,
  d2015,
  finish,
  flatten,
  frameFromTuple,
  getFunctionArity,
  isArrayOfNumbers,
  isArrayOfStrings,
  isDeepEqual,
  isFunctionValue,
  isNumeric,
  lookup,
  makeCreateSequence,
  makeLambda,
  makeValidator,
  partialApplyNativeFunction,
  partialApplyProcedure,
  push,
  Scope,
  seq,
  seqOf,
  setOverBudgetHandler,
  setParser,
  toBoolean,
  trampoline,
  type Ev,
  type RuntimeBase,
  type TailCall,
} from "./runtime";
import type { CompileResult, Evaluator, Frame, Host } from "./types";

type Node = any;

interface Ctx {
  checked: boolean;
  /** Names the expression binds somewhere (`$x :=`, parameters, `@$x`, `#$i`): built-ins they may shadow. */
  shadow: ReadonlySet<string>;
  /** Deepest static depth compiled so far in this unit. */
  max: number;
}

const hasOwn = Object.prototype.hasOwnProperty;

class Unsupported extends Error {}

// ---------------------------------------------------------------------------------------------
// Entry points.

export function compileText(text: string): CompileResult {
  let ast: Node;
  try {
    ast = jsonata(text).ast();
  } catch (err) {
    return { ok: false, reason: `syntax error ${(err as { code?: string }).code ?? ""}`.trim() };
  }
  try {
    if (referencesEval(ast)) return { ok: false, reason: "$eval is evaluated by the interpreter" };
    if ((ast as { errors?: unknown }).errors) return { ok: false, reason: "syntax errors" };
    return { ok: true, evaluate: makeUnit(ast, 1, boundNames(ast)) };
  } catch (err) {
    if (err instanceof RangeError) return { ok: false, reason: "expression nested too deeply to compile" };
    if (err instanceof Unsupported) return { ok: false, reason: err.message };
    throw err;
  }
}

function referencesEval(root: Node): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object" || node instanceof RegExp || seen.has(node)) continue;
    seen.add(node);
    if ((node as Node).type === "variable" && (node as Node).value === "eval") return true;
    for (const key of Object.keys(node)) if (key !== "signature") stack.push((node as Record<string, unknown>)[key]);
  }
  return false;
}

/** Every name the expression can bind in a frame: a built-in of that name may be shadowed. */
function boundNames(root: Node): Set<string> {
  const names = new Set<string>();
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop() as any;
    if (node === null || typeof node !== "object" || node instanceof RegExp || seen.has(node)) continue;
    seen.add(node);
    if (node.type === "bind" && node.lhs && typeof node.lhs.value === "string") names.add(node.lhs.value);
    if (node.type === "lambda" && Array.isArray(node.arguments)) for (const a of node.arguments) if (a && typeof a.value === "string") names.add(a.value);
    if (typeof node.focus === "string") names.add(node.focus);
    if (typeof node.index === "string") names.add(node.index);
    for (const key of Object.keys(node)) if (key !== "signature") stack.push(node[key]);
  }
  return names;
}

let hostReady = false;
function prepareHost(): void {
  if (hostReady) return;
  setOverBudgetHandler((m) => host.charge(m as host.Meter, 0));
  setParser((text) => jsonata(text).ast());
  hostReady = true;
}

export function runCompiled(evaluate: Evaluator, input: unknown, bindings: Record<string, unknown>, h: Host): unknown {
  prepareHost();
  const builtIns = compiledBuiltIns() as ReadonlyMap<string, unknown>;
  const root = new RootScope(builtIns, h);
  if (bindings) {
    for (const name in bindings) {
      if (!hasOwn.call(bindings, name)) continue;
      root.bind(name, bindings[name]);
      if (builtIns.has(name)) root.shadowed = true;
    }
  }
  root.bind("$", input);
  let wrapped: any = input;
  if (Array.isArray(input) && (input as any).sequence !== true) {
    wrapped = root.createSequence(input);
    wrapped.outerWrapper = true;
  }
  return evaluate(wrapped, root);
}

const sequenceFactories = new Map<number, RuntimeBase["createSequence"]>();
const optionObjects = new Map<string, Record<string, unknown>>();

/** The root frame of one evaluation, which is also its base (JSONata's exec_env). */
class RootScope extends Scope implements RuntimeBase {
  [key: symbol]: unknown;
  declare meter: RuntimeBase["meter"];
  declare cap: number;
  declare stack: number;
  declare maxStringLength: number;
  declare createSequence: RuntimeBase["createSequence"];
  declare RegexEngine: RuntimeBase["RegexEngine"];
  declare depth: number;
  declare options: Record<string, unknown>;
  declare time: Date | undefined;
  declare shadowed: boolean;

  constructor(builtIns: ReadonlyMap<string, unknown>, h: Host) {
    super(undefined, builtIns);
    this.base = this;
    this.meter = h.meter as RuntimeBase["meter"];
    this.cap = h.arrayCap;
    this.stack = h.maxDepth;
    this.maxStringLength = h.maxStringLength;
    this.createSequence = sequenceFactory(h.arrayCap);
    this.RegexEngine = h.RegexEngine;
    this.depth = 0;
    this.options = optionsFor(h);
    this.time = undefined;
    this.shadowed = false;
    this[host.METER] = h.meter;
  }

  /** Taken on first use ($now, $millis): one instant per evaluation, without a Date per evaluation. */
  get timestamp(): Date {
    return (this.time ??= new Date());
  }
}

let lastFactory: { cap: number; factory: RuntimeBase["createSequence"] } | undefined;

function sequenceFactory(cap: number): RuntimeBase["createSequence"] {
  if (lastFactory?.cap === cap) return lastFactory.factory;
  let factory = sequenceFactories.get(cap);
  if (!factory) sequenceFactories.set(cap, (factory = makeCreateSequence(cap)));
  lastFactory = { cap, factory };
  return factory;
}

let lastOptions: { stack: number; sequence: number } | undefined;

/** JSONata's options as built-ins read them (`this.options.sequence`), shared per bound pair. */
function optionsFor(h: Host): Record<string, unknown> {
  if (lastOptions !== undefined && lastOptions.stack === h.maxDepth && lastOptions.sequence === h.arrayCap) return lastOptions;
  const key = `${h.maxDepth}/${h.arrayCap}`;
  let options = optionObjects.get(key) as { stack: number; sequence: number } | undefined;
  if (!options) optionObjects.set(key, (options = Object.freeze({ stack: h.maxDepth, sequence: h.arrayCap })));
  lastOptions = options;
  return options;
}

// ---------------------------------------------------------------------------------------------
// Units and the per-node wrapper (JSONata's evaluate(): predicates, group, sequence unwrapping).

function makeUnit(node: Node, startDepth: number, shadow: ReadonlySet<string>): Ev {
  const ctx: Ctx = { checked: false, max: 0, shadow };
  const fast = compileNode(node, startDepth, ctx);
  const max = ctx.max;
  let checked: Ev | undefined;
  return (input, env) => {
    const base = env.base as RuntimeBase;
    if (base.stack <= 0 || base.depth + max <= base.stack) return fast(input, env);
    checked ??= compileNode(node, startDepth, { checked: true, max: 0, shadow });
    return checked(input, env);
  };
}

/**
 * Node types whose own result can be a sequence, so evaluate()'s unwrapping applies. Blocks,
 * conditions and binds pass on what a sub-expression answered: already unwrapped once, but a
 * singleton sequence holding a sequence (a tail call's or a built-in's answer, kept as it is by
 * the trampoline) unwraps again at every level, as JSONata's evaluate() does.
 */
const SEQUENCE_TYPES = new Set(["path", "name", "wildcard", "descendant", "variable", "parent", "function", "apply", "block", "condition", "bind"]);

/** Closures that already unwrap their result as evaluate() does (finish(result, false)). */
const FINISHED = new WeakSet<Ev>();

function finished(ev: Ev): Ev {
  FINISHED.add(ev);
  return ev;
}

function compileNode(expr: Node, d: number, ctx: Ctx): Ev {
  if (d > ctx.max) ctx.max = d;
  // the core may unwrap its own result when nothing comes between it and the unwrapping
  const mayFinish = !hasOwn.call(expr, "predicate") && !(expr.type !== "path" && hasOwn.call(expr, "group")) && !expr.keepArray;
  let ev = compileCore(expr, d, ctx, mayFinish);
  const selfFinished = mayFinish && FINISHED.has(ev);
  let mayBeSequence = SEQUENCE_TYPES.has(expr.type) || (expr.type === "binary" && expr.value === "..");
  if (hasOwn.call(expr, "predicate")) {
    for (const p of expr.predicate) ev = filtered(ev, compileFilter(p.expr, d + 1, ctx));
    mayBeSequence = true;
  }
  if (expr.type !== "path" && hasOwn.call(expr, "group")) {
    const group = compileGroup(expr.group, d + 1, ctx);
    const inner = ev;
    ev = (input, env) => group(inner(input, env), env);
    mayBeSequence = true;
  }
  if ((mayBeSequence || expr.keepArray) && !selfFinished) {
    const inner = ev;
    const keep = expr.keepArray === true;
    ev = (input, env) => finish(inner(input, env), keep);
  }
  if (ctx.checked) {
    const inner = ev;
    ev = (input, env) => {
      const base = env.base as RuntimeBase;
      if (base.depth + d > base.stack) d1011(base);
      return inner(input, env);
    };
  }
  return ev;
}

function filtered(ev: Ev, filter: (input: any, env: Frame) => any): Ev {
  return (input, env) => filter(ev(input, env), env);
}

function compileCore(expr: Node, d: number, ctx: Ctx, mayFinish: boolean): Ev {
  switch (expr.type) {
    case "path":
      return compilePath(expr, d, ctx, mayFinish);
    case "binary":
      return compileBinary(expr, d, ctx);
    case "unary":
      return compileUnary(expr, d, ctx);
    case "name": {
      const name = expr.value;
      if (name === "__proto__" || !mayFinish) return (input, env) => lookup(input, name, (env.base as RuntimeBase).cap);
      return finished((input, env) => {
        if (input !== null && typeof input === "object" && !Array.isArray(input)) {
          // lookup() on an object: an own property, not of a function value
          if (!hasOwn.call(input, name) || input._jsonata_lambda === true || input._jsonata_function === true) return undefined;
          const value = input[name];
          return Array.isArray(value) ? finish(value, false) : value;
        }
        return finish(lookup(input, name, (env.base as RuntimeBase).cap), false);
      });
    }
    case "string":
    case "number":
    case "value": {
      const value = expr.value;
      return () => value;
    }
    case "wildcard":
      return evaluateWildcard;
    case "descendant":
      return evaluateDescendants;
    case "parent": {
      const label = expr.slot.label;
      return (_input, env) => env.lookup(label);
    }
    case "condition":
      return compileCondition(expr, d, ctx, mayFinish);
    case "block":
      return compileBlock(expr, d, ctx, mayFinish);
    case "bind": {
      const name = expr.lhs.value;
      const rhs = compileNode(expr.rhs, d + 1, ctx);
      if (!mayFinish) {
        return (input, env) => {
          const value = rhs(input, env);
          env.bind(name, value);
          return value;
        };
      }
      return finished((input, env) => {
        const value = rhs(input, env);
        env.bind(name, value);
        return unwrapAgain(value);
      });
    }
    case "regex":
      return compileRegex(expr);
    case "function":
      // a Call: called as an Ev, its context is undefined
      return compileCall(expr, d, ctx, false, mayFinish) as Ev;
    case "variable": {
      const name = expr.value;
      if (name === "") return (input) => (input && input.outerWrapper ? input[0] : input);
      if (!mayFinish) return (_input, env) => env.lookup(name);
      return finished((_input, env) => {
        const value: any = env.lookup(name);
        return Array.isArray(value) ? finish(value, false) : value;
      });
    }
    case "lambda":
      return compileLambda(expr, ctx);
    case "partial":
      return compilePartial(expr, d, ctx);
    case "apply":
      return compileApply(expr, d, ctx);
    case "transform":
      return compileTransform(expr, ctx);
    default:
      throw new Unsupported(`unsupported node type ${String(expr.type)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Paths.

interface StepPlan {
  step: Node;
  first: boolean;
  last: boolean;
  consarray: boolean;
  tuple: boolean;
  focus: string | undefined;
  run: (input: any, tupleBindings: any, env: Frame) => any;
  /** A plain step's evaluation (evaluateStep), when it is one. */
  direct?: Ev;
}

function compilePath(expr: Node, d: number, ctx: Ctx, mayFinish: boolean): Ev {
  const general = compileGeneralPath(expr, d, ctx);
  return ctx.checked || !mayFinish ? general : (plainPath(expr, d, ctx, general) ?? general);
}

/**
 * A path of plain names (optionally after a variable) over plain objects reads properties directly;
 * the first array or sequence met hands over to the general evaluation, from the start (steps are
 * pure lookups, so evaluating them again changes nothing).
 */
function plainPath(expr: Node, d: number, ctx: Ctx, general: Ev): Ev | undefined {
  if (expr.keepSingletonArray || hasOwn.call(expr, "group") || expr.tuple) return undefined;
  const steps: Node[] = expr.steps;
  const plain = (s: Node) => !s.stages && !hasOwn.call(s, "predicate") && !hasOwn.call(s, "group") && !s.tuple && s.focus === undefined && !s.index && !s.ancestor && !s.keepArray;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (!plain(s)) return undefined;
    if (s.type !== "name" && !(i === 0 && s.type === "variable" && steps.length > 1)) return undefined;
  }
  const names: string[] = steps.map((s) => s.value);
  const n = names.length;
  const head = steps[0].type === "variable" ? compileNode(steps[0], d + 1, ctx) : undefined;
  const from = head ? 1 : 0;
  // the general evaluation's result is unwrapped here, the direct one needs no unwrapping
  return finished((input, env) => {
    let cur: any;
    if (head) {
      cur = head(input, env);
      if (cur === undefined) return undefined;
      if (Array.isArray(cur)) return finish(general(input, env), false);
    } else {
      if (Array.isArray(input)) return finish(general(input, env), false);
      cur = input;
    }
    for (let i = from; i < n; i++) {
      if (cur === null || typeof cur !== "object" || cur._jsonata_lambda === true || cur._jsonata_function === true) return undefined;
      const name = names[i]!;
      if (!hasOwn.call(cur, name)) return undefined;
      cur = cur[name];
      if (cur === undefined) return undefined;
      if (Array.isArray(cur)) {
        if (i === n - 1 && (cur as any).sequence !== true) return cur;
        return finish(general(input, env), false);
      }
    }
    return cur;
  });
}

function compileGeneralPath(expr: Node, d: number, ctx: Ctx): Ev {
  const steps: Node[] = expr.steps;
  const firstIsVariable = steps[0].type === "variable";
  // once a step makes the stream a tuple stream, every later step runs as a tuple step
  const firstTuple = steps.findIndex((s) => s.tuple === true);
  const plans: StepPlan[] = steps.map((step, i) => planStep(step, i, i === steps.length - 1, firstTuple >= 0 && i >= firstTuple, d, ctx));
  const keepSingletonArray = expr.keepSingletonArray === true;
  const pathTuple = expr.tuple === true;
  const group = hasOwn.call(expr, "group") ? compileGroup(expr.group, d + 1, ctx) : undefined;
  if (firstTuple < 0 && !keepSingletonArray && !group && plans.every((p) => p.direct !== undefined)) {
    // plain steps only: each step's sequence is the next one's input (the loop below, unrolled)
    const runs = plans.map((p) => p.direct!);
    const n = runs.length;
    return (input, env) => {
      let sequence: any = Array.isArray(input) && !firstIsVariable ? input : seqOf(input);
      for (let ii = 0; ii < n; ii++) {
        sequence = runs[ii]!(sequence, env);
        if (sequence === undefined || sequence.length === 0) break;
      }
      return sequence;
    };
  }
  return (input, env) => {
    const base = env.base as RuntimeBase;
    let inputSequence: any = Array.isArray(input) && !firstIsVariable ? input : seqOf(input);
    let resultSequence: any;
    let isTupleStream = false;
    let tupleBindings: any;
    for (let ii = 0; ii < plans.length; ii++) {
      const plan = plans[ii]!;
      if (plan.tuple) isTupleStream = true;
      if (plan.first && plan.consarray) resultSequence = plan.run(inputSequence, undefined, env);
      else if (isTupleStream) tupleBindings = plan.run(inputSequence, tupleBindings, env);
      else resultSequence = plan.run(inputSequence, undefined, env);
      if (!isTupleStream && (resultSequence === undefined || resultSequence.length === 0)) break;
      if (plan.focus === undefined) inputSequence = resultSequence;
    }
    if (isTupleStream) {
      if (pathTuple) resultSequence = tupleBindings;
      else {
        resultSequence = seq();
        for (let ii = 0; ii < tupleBindings.length; ii++) push(resultSequence, tupleBindings[ii]["@"], base.cap);
      }
    }
    if (keepSingletonArray) {
      if (Array.isArray(resultSequence) && (resultSequence as any).cons && !(resultSequence as any).sequence) resultSequence = seqOf(resultSequence);
      resultSequence.keepSingleton = true;
    }
    if (group) resultSequence = group(isTupleStream ? tupleBindings : resultSequence, env);
    return resultSequence;
  };
}

function planStep(step: Node, index: number, last: boolean, tupleMode: boolean, d: number, ctx: Ctx): StepPlan {
  const consarray = index === 0 && step.consarray === true;
  const plan: StepPlan = { step, first: index === 0, last, consarray: step.consarray === true, tuple: step.tuple === true, focus: step.focus, run: undefined as never };
  if (consarray) {
    // JSONata evaluates a leading array constructor directly, even when the step is a tuple step
    const ev = compileNode(step, d + 1, ctx);
    plan.run = (input, _tb, env) => ev(input, env);
    return plan;
  }
  if (tupleMode) plan.run = compileTupleStep(step, d, ctx);
  else {
    const run = compileStep(step, last, d, ctx);
    plan.run = (input, _tb, env) => run(input, env);
    plan.direct = run;
  }
  return plan;
}

/** evaluateStep (non-tuple). */
function compileStep(step: Node, lastStep: boolean, d: number, ctx: Ctx): Ev {
  if (step.type === "sort") {
    const sort = compileSort(step, d + 1, ctx);
    const stages = step.stages ? compileStages(step.stages, d + 1, ctx) : undefined;
    return (input, env) => {
      const result = sort(input, env);
      return stages ? stages(result, env) : result;
    };
  }
  const ev = compileNode(step, d + 1, ctx);
  const filters = step.stages ? step.stages.map((s: Node) => compileFilter(s.expr, d + 1, ctx)) : [];
  const nf = filters.length;
  // JSONata collects the results (D2015 past the cap), then flattens them into a sequence (D2015
  // past the cap, after every item was evaluated). Both in one pass here: a flattening past the cap
  // stops and fails at the end, unless the step's lone result is answered as it is.
  return (input, env) => {
    const base = env.base as RuntimeBase;
    const cap = base.cap;
    charge(base, input.length);
    const resultSequence = seq();
    let count = 0;
    let first: any;
    let overflow = false;
    for (let ii = 0; ii < input.length; ii++) {
      let res = ev(input[ii], env);
      for (let ss = 0; ss < nf; ss++) res = filters[ss]!(res, env);
      if (res === undefined) continue;
      if (count >= cap) d2015(cap);
      if (count++ === 0) first = res;
      if (overflow) continue;
      if (!Array.isArray(res) || (res as any).cons) {
        if (resultSequence.length >= cap) overflow = true;
        else resultSequence.push(res);
      } else if (resultSequence.length + res.length > cap) overflow = true;
      else for (let j = 0; j < res.length; j++) resultSequence.push(res[j]);
    }
    if (lastStep && count === 1 && Array.isArray(first) && !((first as any).sequence === true)) return first;
    if (overflow) d2015(cap);
    return resultSequence;
  };
}

function compileStages(stages: Node[], d: number, ctx: Ctx): (input: any, env: Frame) => any {
  const ops = stages.map((stage) => {
    if (stage.type === "filter") {
      const f = compileFilter(stage.expr, d, ctx);
      return (result: any, env: Frame) => f(result, env);
    }
    const name = stage.value;
    return (result: any) => {
      for (let ee = 0; ee < result.length; ee++) result[ee][name] = ee;
      return result;
    };
  });
  return (input, env) => {
    let result = input;
    for (let i = 0; i < ops.length; i++) result = ops[i]!(result, env);
    return result;
  };
}

/** evaluateTupleStep. */
function compileTupleStep(step: Node, d: number, ctx: Ctx): (input: any, tupleBindings: any, env: Frame) => any {
  const stages = step.stages ? compileStages(step.stages, d + 1, ctx) : undefined;
  if (step.type === "sort") {
    const sort = compileSort(step, d + 1, ctx);
    const index = step.index;
    return (input, tupleBindings, env) => {
      let result: any;
      if (tupleBindings) result = sort(tupleBindings, env);
      else {
        const sorted = sort(input, env);
        result = seq();
        result.tupleStream = true;
        const cap = (env.base as RuntimeBase).cap;
        for (let ss = 0; ss < sorted.length; ss++) {
          const tuple: any = { "@": sorted[ss] };
          tuple[index] = ss;
          push(result, tuple, cap);
        }
      }
      if (stages) result = stages(result, env);
      return result;
    };
  }
  const ev = compileNode(step, d + 1, ctx);
  const focus: string | undefined = step.focus;
  const index: string | undefined = step.index;
  const ancestor: string | undefined = step.ancestor ? step.ancestor.label : undefined;
  return (input, tupleBindings, env) => {
    const base = env.base as RuntimeBase;
    const cap = base.cap;
    let result: any = seq();
    result.tupleStream = true;
    if (tupleBindings === undefined) tupleBindings = input.map((item: unknown) => ({ "@": item }));
    charge(base, tupleBindings.length);
    for (let ee = 0; ee < tupleBindings.length; ee++) {
      const binding = tupleBindings[ee];
      const stepEnv = frameFromTuple(env, binding);
      let res = ev(binding["@"], stepEnv);
      if (res !== undefined) {
        if (!Array.isArray(res)) res = [res];
        for (let bb = 0; bb < res.length; bb++) {
          const tuple = Object.create(null);
          Object.assign(tuple, binding);
          if ((res as any).tupleStream) Object.assign(tuple, res[bb]);
          else {
            if (focus) {
              tuple[focus] = res[bb];
              tuple["@"] = binding["@"];
            } else tuple["@"] = res[bb];
            if (index) tuple[index] = bb;
            if (ancestor !== undefined) tuple[ancestor] = binding["@"];
          }
          push(result, tuple, cap);
        }
      }
    }
    if (stages) result = stages(result, env);
    return result;
  };
}

/** evaluateFilter: a predicate (or index) applied to a value. */
function compileFilter(predicate: Node, d: number, ctx: Ctx): (input: any, env: Frame) => any {
  if (predicate.type === "number") {
    const value = Math.floor(predicate.value);
    return (input) => {
      let results: any = seq();
      if (input && input.tupleStream) results.tupleStream = true;
      if (!Array.isArray(input)) input = seqOf(input);
      let index = value;
      if (index < 0) index = input.length + index;
      const item = input[index];
      if (item !== undefined) {
        if (Array.isArray(item)) results = item;
        else results.push(item);
      }
      return results;
    };
  }
  const pred = compileNode(predicate, d, ctx);
  return (input, env) => {
    const base = env.base as RuntimeBase;
    const cap = base.cap;
    const results: any = seq();
    const tupleStream = input && input.tupleStream;
    if (tupleStream) results.tupleStream = true;
    if (!Array.isArray(input)) input = seqOf(input);
    charge(base, input.length);
    for (let index = 0; index < input.length; index++) {
      const item = input[index];
      let context = item;
      let e = env;
      if (input.tupleStream) {
        context = item["@"];
        e = frameFromTuple(env, item);
      }
      let res = pred(context, e);
      if (isNumeric(res)) res = [res];
      if (isArrayOfNumbers(res)) {
        for (let k = 0; k < res.length; k++) {
          let ii = Math.floor(res[k]);
          if (ii < 0) ii = input.length + ii;
          if (ii === index) push(results, item, cap);
        }
      } else if (toBoolean(res)) push(results, item, cap);
    }
    return results;
  };
}

// ---------------------------------------------------------------------------------------------
// Sorting (the order-by step): JSONata's merge sort, comparing in the same order.

function compileSort(expr: Node, dTerms: number, ctx: Ctx): (input: any, env: Frame) => any {
  const terms = expr.terms.map((term: Node) => ({ descending: term.descending === true, ev: compileNode(term.expression, dTerms, ctx) }));
  const position = expr.position;
  return (input, env) => {
    const isTupleSort = input.tupleStream ? true : false;
    const comparator = (a: any, b: any): boolean => {
      let comp = 0;
      for (let index = 0; comp === 0 && index < terms.length; index++) {
        const term = terms[index]!;
        const aa = isTupleSort ? term.ev(a["@"], frameFromTuple(env, a)) : term.ev(a, env);
        const bb = isTupleSort ? term.ev(b["@"], frameFromTuple(env, b)) : term.ev(b, env);
        const atype = typeof aa;
        const btype = typeof bb;
        if (atype === "undefined") {
          comp = btype === "undefined" ? 0 : 1;
          continue;
        }
        if (btype === "undefined") {
          comp = -1;
          continue;
        }
        if (!(atype === "string" || atype === "number") || !(btype === "string" || btype === "number")) {
          throw { code: "T2008", stack: new Error().stack, position, value: !(atype === "string" || atype === "number") ? aa : bb };
        }
        if (atype !== btype) throw { code: "T2007", stack: new Error().stack, position, value: aa, value2: bb };
        if (aa === bb) continue;
        comp = aa < bb ? -1 : 1;
        if (term.descending) comp = -comp;
      }
      return comp === 1;
    };
    if (input === undefined) return undefined;
    if (input.length <= 1) return input;
    charge(env.base as RuntimeBase, input.length * Math.ceil(Math.log2(input.length)));
    return mergeSort(input, comparator);
  };
}

function mergeSort(array: any[], swap: (a: any, b: any) => boolean): any[] {
  if (!Array.isArray(array) || array.length <= 1) return array;
  const middle = Math.floor(array.length / 2);
  const left = mergeSort(array.slice(0, middle), swap);
  const right = mergeSort(array.slice(middle), swap);
  const merged: any[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) merged.push(swap(left[i], right[j]) ? right[j++] : left[i++]);
  while (i < left.length) merged.push(left[i++]);
  while (j < right.length) merged.push(right[j++]);
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Wildcards and descendants.

function evaluateWildcard(input: any, env: Frame): any {
  const cap = (env.base as RuntimeBase).cap;
  let results: any = seq();
  if (Array.isArray(input) && (input as any).outerWrapper && input.length > 0) input = input[0];
  if (input !== null && typeof input === "object" && !isFunctionValue(input)) {
    const keys = Object.keys(input);
    charge(env.base as RuntimeBase, keys.length);
    for (const key of keys) {
      let value = input[key];
      if (Array.isArray(value)) {
        value = flatten(value);
        results = append(results, value, cap);
      } else if (results.sequence === true) push(results, value, cap);
      else results.push(value);
    }
  }
  return results;
}

function evaluateDescendants(input: any, env: Frame): any {
  const base = env.base as RuntimeBase;
  const resultSequence = seq();
  if (input === undefined) return undefined;
  recurseDescendants(input, resultSequence, base.cap);
  charge(base, resultSequence.length);
  return resultSequence.length === 1 ? resultSequence[0] : resultSequence;
}

function recurseDescendants(input: any, results: any[], cap: number): void {
  if (!Array.isArray(input)) push(results, input, cap);
  if (Array.isArray(input)) for (let i = 0; i < input.length; i++) recurseDescendants(input[i], results, cap);
  else if (input !== null && typeof input === "object" && !isFunctionValue(input)) {
    for (const key of Object.keys(input)) recurseDescendants(input[key], results, cap);
  }
}

// ---------------------------------------------------------------------------------------------
// Operators.

function annotate(err: any, position: number, token: string): void {
  if (err !== null && typeof err === "object") {
    err.position = position;
    err.token = token;
  }
}

function compileBinary(expr: Node, d: number, ctx: Ctx): Ev {
  const op: string = expr.value;
  const lhs = compileNode(expr.lhs, d + 1, ctx);
  const rhs = compileNode(expr.rhs, d + 1, ctx);
  const position = expr.position;
  switch (op) {
    case "and":
      return (input, env) => {
        const l = lhs(input, env);
        try {
          return boolize(l) && boolize(rhs(input, env));
        } catch (err) {
          annotate(err, position, op);
          throw err;
        }
      };
    case "or":
      return (input, env) => {
        const l = lhs(input, env);
        try {
          return boolize(l) || boolize(rhs(input, env));
        } catch (err) {
          annotate(err, position, op);
          throw err;
        }
      };
    case "&":
      return (input, env) => concat(lhs(input, env), rhs(input, env), env, position);
    case "..":
      return operator((l, r, env) => range(l, r, env), lhs, rhs, position, op);
    case "+":
    case "-":
    case "*":
    case "/":
    case "%":
      return operator(numeric(op), lhs, rhs, position, op);
    case "=":
      return operator((l, r) => (l === undefined || r === undefined ? false : isDeepEqual(l, r)), lhs, rhs, position, op);
    case "!=":
      return operator((l, r) => (l === undefined || r === undefined ? false : !isDeepEqual(l, r)), lhs, rhs, position, op);
    case "<":
      return operator(comparison((a, b) => a < b), lhs, rhs, position, op);
    case "<=":
      return operator(comparison((a, b) => a <= b), lhs, rhs, position, op);
    case ">":
      return operator(comparison((a, b) => a > b), lhs, rhs, position, op);
    case ">=":
      return operator(comparison((a, b) => a >= b), lhs, rhs, position, op);
    case "in":
      return operator(includes, lhs, rhs, position, op);
    default:
      throw new Unsupported(`unsupported operator ${op}`);
  }
}

function operator(f: (l: any, r: any, env: Frame) => any, lhs: Ev, rhs: Ev, position: number, token: string): Ev {
  return (input, env) => {
    const l = lhs(input, env);
    const r = rhs(input, env);
    try {
      return f(l, r, env);
    } catch (err) {
      annotate(err, position, token);
      throw err;
    }
  };
}

function numeric(op: string): (l: any, r: any) => any {
  const check = (l: any, r: any) => {
    if (l !== undefined && !isNumeric(l)) throw { code: "T2001", stack: new Error().stack, value: l };
    if (r !== undefined && !isNumeric(r)) throw { code: "T2002", stack: new Error().stack, value: r };
    return l !== undefined && r !== undefined;
  };
  switch (op) {
    case "+":
      return (l, r) => (check(l, r) ? l + r : undefined);
    case "-":
      return (l, r) => (check(l, r) ? l - r : undefined);
    case "*":
      return (l, r) => (check(l, r) ? l * r : undefined);
    case "/":
      return (l, r) => (check(l, r) ? l / r : undefined);
    default:
      return (l, r) => (check(l, r) ? l % r : undefined);
  }
}

function comparison(compare: (a: any, b: any) => boolean): (l: any, r: any) => any {
  return (lhs, rhs) => {
    const ltype = typeof lhs;
    const rtype = typeof rhs;
    const lcomparable = ltype === "undefined" || ltype === "string" || ltype === "number";
    const rcomparable = rtype === "undefined" || rtype === "string" || rtype === "number";
    if (!lcomparable || !rcomparable) throw { code: "T2010", stack: new Error().stack, value: !(ltype === "string" || ltype === "number") ? lhs : rhs };
    if (ltype === "undefined" || rtype === "undefined") return undefined;
    if (ltype !== rtype) throw { code: "T2009", stack: new Error().stack, value: lhs, value2: rhs };
    return compare(lhs, rhs);
  };
}

function includes(lhs: any, rhs: any): boolean {
  if (lhs === undefined || rhs === undefined) return false;
  if (!Array.isArray(rhs)) rhs = [rhs];
  for (let i = 0; i < rhs.length; i++) if (rhs[i] === lhs) return true;
  return false;
}

function range(lhs: any, rhs: any, env: Frame): any {
  if (lhs !== undefined && !Number.isInteger(lhs)) throw { code: "T2003", stack: new Error().stack, value: lhs };
  if (rhs !== undefined && !Number.isInteger(rhs)) throw { code: "T2004", stack: new Error().stack, value: rhs };
  if (lhs === undefined || rhs === undefined) return undefined;
  if (lhs > rhs) return undefined;
  const size = rhs - lhs + 1;
  if (size > 1e7) throw { code: "D2014", stack: new Error().stack, value: size };
  const base = env.base as RuntimeBase;
  if (base.cap && size > base.cap) throw { code: "D2015", stack: new Error().stack, value: size };
  // ../expression.ts's range guard: a range is charged by its length (a step per 8 items built)
  charge(base, host.items(size));
  const result: any = new Array(size);
  for (let item = lhs, index = 0; item <= rhs; item++, index++) result[index] = item;
  result.sequence = true;
  return result;
}

/** `&` as ../expression.ts's concat guard runs it: structured operands are measured first. */
function concat(lhs: any, rhs: any, env: Frame, position: number): string {
  const base = env.base as RuntimeBase;
  try {
    const max = base.maxStringLength;
    const left = typeof lhs === "string" ? lhs : text(lhs, base);
    const right = typeof rhs === "string" ? rhs : text(rhs, base);
    if (left.length + right.length > max) throw host.refuse("max_string_length", max, `& would build a string of ${left.length + right.length} characters`);
    return left + right;
  } catch (err: any) {
    if (err !== null && typeof err === "object") {
      err.position = position;
      if (!err.token) err.token = "&";
    }
    throw err;
  }
}

function text(v: any, base: RuntimeBase): string {
  if (v === undefined) return "";
  if (v !== null && typeof v === "object") host.measure(v, base.maxStringLength, "max_string_length", base.stack, base.meter as host.Meter);
  return host.stringify.call(undefined as never, v) as string;
}

// ---------------------------------------------------------------------------------------------
// Constructors.

function compileUnary(expr: Node, d: number, ctx: Ctx): Ev {
  switch (expr.value) {
    case "-": {
      // ../expression.ts wraps the operand in a guard call: one more level of depth
      if (d + 1 > ctx.max) ctx.max = d + 1;
      const operand = compileNode(expr.expression, d + 2, ctx);
      const position = expr.position;
      return (input, env) => {
        const result = operand(input, env);
        if (result === undefined) return undefined;
        if (isNumeric(result)) return -result;
        throw { code: "D1002", stack: new Error().stack, position, value: host.preview(result) };
      };
    }
    case "[":
      return compileArray(expr, d, ctx);
    case "{":
      return compileObject(expr, d, ctx);
    default:
      throw new Unsupported(`unsupported unary ${String(expr.value)}`);
  }
}

function compileArray(expr: Node, d: number, ctx: Ctx): Ev {
  const items = expr.expressions.map((item: Node) => ({ ev: compileNode(item, d + 1, ctx), nested: item.value === "[" }));
  const cons = expr.consarray === true;
  const n = items.length;
  return (input, env) => {
    const base = env.base as RuntimeBase;
    const cap = base.cap;
    let result: any[] = [];
    for (let i = 0; i < n; i++) {
      const item = items[i]!;
      const value = item.ev(input, env);
      if (value === undefined) continue;
      if (item.nested) result.push(value);
      else if (Array.isArray(value)) {
        const size = result.length + value.length;
        if (cap && size > cap) d2015(size);
        result = result.concat(value);
      } else {
        if (cap && result.length + 1 > cap) d2015(result.length + 1);
        result.push(value);
      }
    }
    charge(base, n);
    if (cons) Object.defineProperty(result, "cons", { enumerable: false, configurable: false, value: true });
    return result;
  };
}

interface GroupPair {
  key: Ev | undefined;
  literal: string | undefined;
  value: Ev;
}

function compilePairs(pairs: [Node, Node][], d: number, ctx: Ctx): GroupPair[] {
  return pairs.map(([k, v]) => {
    let key: Ev | undefined;
    let literal: string | undefined;
    if (k.type === "string" && !hasOwn.call(k, "predicate") && !hasOwn.call(k, "group") && !ctx.checked) {
      if (d > ctx.max) ctx.max = d;
      literal = k.value;
    } else if (k.type === "string") key = compileNode(k, d, ctx);
    else {
      // ../expression.ts wraps a computed key in a guard call (one more level): T1003 unless a string
      if (d > ctx.max) ctx.max = d;
      const inner = compileNode(k, d + 1, ctx);
      const position = k.position;
      key = (input, env) => {
        const value = inner(input, env);
        if (value === undefined || typeof value === "string") return value;
        const err: any = { code: "T1003", value: host.preview(value), stack: new Error().stack };
        if (position !== undefined) err.position = position;
        throw err;
      };
    }
    return { key, literal, value: compileNode(v, d, ctx) };
  });
}

function compileObject(expr: Node, d: number, ctx: Ctx): Ev {
  const general = compileGroup(expr, d + 1, ctx);
  const literalObject = literalConstructor(expr, d, ctx);
  if (!literalObject) return general;
  return (input, env) => (Array.isArray(input) ? general(input, env) : literalObject(input, env));
}

/**
 * `{ "k": v, ... }` with distinct literal keys over a single (non-array) input: each value once, in
 * the order JSONata evaluates them (its groups object's key order: integer-like keys first).
 */
function literalConstructor(expr: Node, d: number, ctx: Ctx): Ev | undefined {
  if (ctx.checked) return undefined;
  const pairs: [Node, Node][] = expr.lhs;
  const keys: string[] = [];
  for (const [k] of pairs) {
    if (k.type !== "string" || hasOwn.call(k, "predicate") || hasOwn.call(k, "group") || k.keepArray) return undefined;
    if (k.value === "_jsonata_lambda" || k.value === "_jsonata_function" || k.value === "__proto__" || keys.includes(k.value)) return undefined;
    keys.push(k.value);
  }
  const order: Record<string, number> = Object.create(null);
  keys.forEach((k, i) => (order[k] = i));
  const sorted = Object.keys(order).map((k) => ({ key: k, value: compileNode(pairs[order[k]!]![1], d + 1, ctx) }));
  const n = sorted.length;
  return (input, env) => {
    charge(env.base as RuntimeBase, n);
    const result: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const pair = sorted[i]!;
      const value = pair.value(input, env);
      if (value !== undefined) result[pair.key] = value;
    }
    return result;
  };
}

/** evaluateGroupExpression: object constructors and grouping. `d` is the depth of its keys and values. */
function compileGroup(expr: Node, d: number, ctx: Ctx): (input: any, env: Frame) => any {
  const pairs = compilePairs(expr.lhs, d, ctx);
  const position = expr.position;
  return (input, env) => {
    const base = env.base as RuntimeBase;
    const cap = base.cap;
    const result = Object.create(null);
    const groups = Object.create(null);
    const reduce = input && input.tupleStream ? true : false;
    if (!Array.isArray(input)) input = seqOf(input);
    if (input.length === 0 && !reduce) input.push(undefined);
    charge(base, input.length * pairs.length);
    for (let itemIndex = 0; itemIndex < input.length; itemIndex++) {
      const item = input[itemIndex];
      const e = reduce ? frameFromTuple(env, item) : env;
      for (let pairIndex = 0; pairIndex < pairs.length; pairIndex++) {
        const pair = pairs[pairIndex]!;
        const key = pair.key ? pair.key(reduce ? item["@"] : item, e) : pair.literal;
        if (typeof key !== "string" && key !== undefined) throw { code: "T1003", stack: new Error().stack, position, value: key };
        if (key === undefined) continue;
        if (key === "_jsonata_lambda" || key === "_jsonata_function") throw { code: "D1013", stack: new Error().stack, position, value: key };
        if (hasOwn.call(groups, key)) {
          if (groups[key].exprIndex !== pairIndex) throw { code: "D1009", stack: new Error().stack, position, value: key };
          groups[key].data = append(groups[key].data, item, cap);
        } else groups[key] = { data: item, exprIndex: pairIndex };
      }
    }
    for (const key of Object.keys(groups)) {
      const entry = groups[key];
      let context = entry.data;
      let e = env;
      if (reduce) {
        const tuple = reduceTupleStream(entry.data, cap);
        context = tuple["@"];
        delete tuple["@"];
        e = frameFromTuple(env, tuple);
      }
      const value = pairs[entry.exprIndex]!.value(context, e);
      if (value !== undefined) result[key] = value;
    }
    return result;
  };
}

function reduceTupleStream(tupleStream: any, cap: number): any {
  if (!Array.isArray(tupleStream)) return tupleStream;
  const result = Object.create(null);
  Object.assign(result, tupleStream[0]);
  for (let ii = 1; ii < tupleStream.length; ii++) {
    for (const prop of Object.keys(tupleStream[ii])) result[prop] = append(result[prop], tupleStream[ii][prop], cap);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Control flow, blocks, regexes.

/**
 * evaluate()'s unwrapping for a node passing on a sub-expression's (already unwrapped) value: only
 * a sequence left after the first unwrapping changes (see SEQUENCE_TYPES).
 */
function unwrapAgain(value: any): any {
  return value !== null && typeof value === "object" && value.sequence === true ? finish(value, false) : value;
}

function compileCondition(expr: Node, d: number, ctx: Ctx, mayFinish: boolean): Ev {
  const condition = compileNode(expr.condition, d + 1, ctx);
  const then = compileNode(expr.then, d + 1, ctx);
  const otherwise = expr.else !== undefined ? compileNode(expr.else, d + 1, ctx) : undefined;
  if (mayFinish) {
    if (otherwise) return finished((input, env) => unwrapAgain(toBoolean(condition(input, env)) ? then(input, env) : otherwise(input, env)));
    return finished((input, env) => (toBoolean(condition(input, env)) ? unwrapAgain(then(input, env)) : undefined));
  }
  if (otherwise) return (input, env) => (toBoolean(condition(input, env)) ? then(input, env) : otherwise(input, env));
  return (input, env) => (toBoolean(condition(input, env)) ? then(input, env) : undefined);
}

function compileBlock(expr: Node, d: number, ctx: Ctx, mayFinish: boolean): Ev {
  const expressions: Ev[] = expr.expressions.map((e: Node) => compileNode(e, d + 1, ctx));
  const n = expressions.length;
  // A block's frame only ever holds what its own binds (outside nested blocks and lambdas) assign.
  const needsFrame = expr.expressions.some(bindsInScope);
  if (n === 1 && !needsFrame) {
    const only = expressions[0]!;
    return mayFinish ? finished((input, env) => unwrapAgain(only(input, env))) : only;
  }
  if (mayFinish) {
    return finished((input, env) => {
      const frame = needsFrame ? new Scope(env) : env;
      let result: unknown;
      for (let i = 0; i < n; i++) result = expressions[i]!(input, frame);
      return unwrapAgain(result);
    });
  }
  return (input, env) => {
    const frame = needsFrame ? new Scope(env) : env;
    let result: unknown;
    for (let i = 0; i < n; i++) result = expressions[i]!(input, frame);
    return result;
  };
}

function bindsInScope(node: Node): boolean {
  if (node === null || typeof node !== "object") return false;
  if (Array.isArray(node)) return node.some(bindsInScope);
  if (node.type === "bind") return true;
  if (node.type === "block" || node.type === "lambda") return false;
  for (const key of Object.keys(node)) {
    if (key === "signature" || key === "slot" || key === "ancestor" || key === "seekingParent") continue;
    const child = node[key];
    if (child !== null && typeof child === "object" && !(child instanceof RegExp) && bindsInScope(child)) return true;
  }
  return false;
}

function compileRegex(expr: Node): Ev {
  const pattern: RegExp = expr.value;
  const position = expr.position;
  return (_input, env) => {
    let re: any;
    try {
      re = new env.base.RegexEngine(pattern);
    } catch (err) {
      if (err instanceof host.Refusal) err.position = position;
      throw err;
    }
    const closure = (str: string, fromIndex?: number): any => {
      re.lastIndex = fromIndex || 0;
      const match = re.exec(str);
      if (match === null) return undefined;
      const result: any = { match: match[0], start: match.index, end: match.index + match[0].length, groups: [] };
      for (let i = 1; i < match.length; i++) result.groups.push(match[i]);
      result.next = () => {
        if (re.lastIndex >= str.length) return undefined;
        const next = closure(str, re.lastIndex);
        if (next && next.match === "") throw { code: "D1004", stack: new Error().stack, position, value: pattern.source };
        return next;
      };
      return result;
    };
    return closure;
  };
}

// ---------------------------------------------------------------------------------------------
// Functions: calls, lambdas, partial application, ~>, transforms.

type Call = (input: any, env: Frame, context: any) => any;

/**
 * evaluateFunction. `d` is the depth the call is made from (the function node's, or the `~>`
 * node's when JSONata calls evaluateFunction directly); procedure and arguments sit one below.
 */
function compileCall(expr: Node, d: number, ctx: Ctx, applyto: boolean, mayFinish = false): Call {
  const builtIn = ctx.checked ? undefined : knownBuiltIn(expr.procedure, ctx.shadow);
  if (!builtIn) return compileGeneralCall(expr, d, ctx, applyto);
  // compiled on first need only: compiling the arguments twice would double at every nesting
  let generalCall: Call | undefined;
  const shadow = ctx.shadow;
  const general: Call = (input, env, context) => (generalCall ??= compileGeneralCall(expr, d, { checked: false, max: 0, shadow }, applyto))(input, env, context);
  // The procedure is a built-in nothing in the expression rebinds (a run-time binding of the
  // name, `base.shadowed`, goes the general way): call it directly, as apply() would.
  if (d + 1 > ctx.max) ctx.max = d + 1;
  const args: Ev[] = expr.arguments.map((a: Node) => compileNode(a, d + 1, ctx));
  const procName: string = expr.procedure.value;
  const position = expr.position;
  const validate = makeValidator(builtIn.signature);
  // called for a function node (not for `~>`, whose own node unwraps): the result unwrapped here
  const unwrap = !applyto && mayFinish;
  const evaluateArgs = argumentEvaluator(args, applyto);
  const call: Call = (input, env, context) => {
    const base = env.base as RuntimeBase;
    if (base.shadowed) return general(input, env, context);
    const evaluatedArgs = evaluateArgs(input, env, context);
    const depth = base.depth;
    builtIn.token = procName;
    builtIn.position = position;
    base.depth = depth + d;
    let result: any;
    try {
      result = callBuiltIn(builtIn, validate, evaluatedArgs, input, env);
    } catch (err: any) {
      base.depth = depth;
      // applyInner's annotation, then evaluateFunction's
      if (err !== null && typeof err === "object") {
        if (typeof err.token == "undefined") err.token = procName;
        err.position = position || err.position;
        if (!err.position) err.position = position;
        if (!err.token) err.token = procName;
      }
      throw err;
    }
    if (result && result._jsonata_lambda === true && result.thunk === true) {
      try {
        result = trampoline(result, input, env);
      } catch (err: any) {
        base.depth = depth;
        if (err !== null && typeof err === "object") {
          if (!err.position) err.position = position;
          if (!err.token) err.token = procName;
        }
        throw err;
      }
    }
    base.depth = depth;
    if (unwrap && result !== null && typeof result === "object" && result.sequence === true) return finish(result, false);
    return result;
  };
  if (unwrap) FINISHED.add(call as Ev);
  return call;
}

/** A call's argument, function values wrapped as JSONata wraps them. */
function argument(ev: Ev, input: any, env: Frame): unknown {
  const arg = ev(input, env);
  return arg !== null && (typeof arg === "object" || typeof arg === "function") && isFunctionValue(arg) ? wrapFunction(arg, env) : arg;
}

/** The evaluated arguments of a call (after `~>`'s context), in order, in an array of their size. */
function argumentEvaluator(args: Ev[], applyto: boolean): (input: any, env: Frame, context: any) => unknown[] {
  const n = args.length;
  if (!applyto) {
    if (n === 0) return () => [];
    const a0 = args[0]!;
    if (n === 1) return (input, env) => [argument(a0, input, env)];
    const a1 = args[1]!;
    if (n === 2) return (input, env) => [argument(a0, input, env), argument(a1, input, env)];
    const a2 = args[2]!;
    if (n === 3) return (input, env) => [argument(a0, input, env), argument(a1, input, env), argument(a2, input, env)];
  } else {
    if (n === 0) return (_input, _env, context) => [context];
    const a0 = args[0]!;
    if (n === 1) return (input, env, context) => [context, argument(a0, input, env)];
    const a1 = args[1]!;
    if (n === 2) return (input, env, context) => [context, argument(a0, input, env), argument(a1, input, env)];
  }
  return (input, env, context) => {
    const evaluatedArgs: unknown[] = applyto ? [context] : [];
    for (let jj = 0; jj < n; jj++) evaluatedArgs.push(argument(args[jj]!, input, env));
    return evaluatedArgs;
  };
}

/** The built-in a procedure node names, when it is a plain variable nothing in the expression can rebind. */
function knownBuiltIn(procedure: Node, shadow: ReadonlySet<string>): any {
  if (procedure.type !== "variable" || hasOwn.call(procedure, "predicate") || hasOwn.call(procedure, "group") || procedure.keepArray) return undefined;
  const name = procedure.value;
  if (typeof name !== "string" || name === "" || shadow.has(name)) return undefined;
  return compiledBuiltIns().get(name);
}

function compileGeneralCall(expr: Node, d: number, ctx: Ctx, applyto: boolean): Call {
  const procedure = compileNode(expr.procedure, d + 1, ctx);
  const args: Ev[] = expr.arguments.map((a: Node) => compileNode(a, d + 1, ctx));
  const n = args.length;
  const isPath = expr.procedure.type === "path";
  const procName = isPath ? expr.procedure.steps[0].value : expr.procedure.value;
  const position = expr.position;
  return (input, env, context) => {
    const proc = procedure(input, env);
    if (proc === undefined && isPath && env.lookup(procName)) throw { code: "T1005", stack: new Error().stack, position, token: procName };
    const evaluatedArgs: unknown[] = applyto ? [context] : [];
    for (let jj = 0; jj < n; jj++) {
      const arg = args[jj]!(input, env);
      if (isFunctionValue(arg)) evaluatedArgs.push(wrapFunction(arg, env));
      else evaluatedArgs.push(arg);
    }
    const base = env.base as RuntimeBase;
    const depth = base.depth;
    try {
      if (typeof proc === "object") {
        proc.token = procName;
        proc.position = position;
      }
      base.depth = depth + d;
      const result = apply(proc, evaluatedArgs, input, env);
      base.depth = depth;
      return result;
    } catch (err: any) {
      base.depth = depth;
      if (err !== null && typeof err === "object") {
        if (!err.position) err.position = position;
        if (!err.token) err.token = procName;
      }
      throw err;
    }
  };
}

/** A function passed as an argument is wrapped in a closure, as JSONata does. */
function wrapFunction(arg: unknown, env: Frame): unknown {
  const closure: any = function (...params: unknown[]) {
    return apply(arg, params, null, env);
  };
  closure.arity = getFunctionArity(arg);
  return closure;
}

function compileLambda(expr: Node, ctx: Ctx): Ev {
  const params = expr.arguments;
  const signature = expr.signature;
  const shadow = ctx.shadow;
  if (expr.thunk === true) {
    const call = expr.body;
    const tail: TailCall = {
      procedure: makeUnit(call.procedure, 1, shadow),
      arguments: call.arguments.map((a: Node) => makeUnit(a, 1, shadow)),
      token: call.procedure.type === "variable" ? call.procedure.value : undefined,
      position: call.procedure.position,
    };
    const builtIn = knownBuiltIn(call.procedure, shadow);
    if (builtIn) {
      tail.builtIn = builtIn;
      tail.validate = makeValidator(builtIn.signature);
    }
    return (input, env) => makeLambda(input, env, params, signature, tail, true);
  }
  const body = makeUnit(expr.body, 1, shadow);
  return (input, env) => makeLambda(input, env, params, signature, body, false);
}

function compilePartial(expr: Node, d: number, ctx: Ctx): Ev {
  const args = expr.arguments.map((arg: Node) => (arg.type === "operator" && arg.value === "?" ? { placeholder: arg } : { ev: compileNode(arg, d + 1, ctx) }));
  const procedure = compileNode(expr.procedure, d + 1, ctx);
  const isPath = expr.procedure.type === "path";
  const procName = isPath ? expr.procedure.steps[0].value : expr.procedure.value;
  const position = expr.position;
  return (input, env) => {
    const evaluatedArgs = args.map((a: any) => (a.placeholder ? a.placeholder : a.ev(input, env)));
    const proc = procedure(input, env);
    if (proc === undefined && isPath && env.lookup(procName)) throw { code: "T1007", stack: new Error().stack, position, token: procName };
    if (proc && proc._jsonata_lambda === true) return partialApplyProcedure(proc, evaluatedArgs, env);
    if (proc && proc._jsonata_function === true) return partialApplyNativeFunction(proc.implementation, evaluatedArgs, env);
    if (typeof proc === "function") return partialApplyNativeFunction(proc, evaluatedArgs, env);
    throw { code: "T1008", stack: new Error().stack, position, token: procName };
  };
}

let chainUnit: Ev | undefined;

function compileApply(expr: Node, d: number, ctx: Ctx): Ev {
  const lhs = compileNode(expr.lhs, d + 1, ctx);
  const position = expr.position;
  if (expr.rhs.type === "function") {
    const call = compileCall(expr.rhs, d, ctx, true);
    return (input, env) => call(input, env, lhs(input, env));
  }
  const rhs = compileNode(expr.rhs, d + 1, ctx);
  return (input, env) => {
    const l = lhs(input, env);
    const func = rhs(input, env);
    if (!isFunctionValue(func)) throw { code: "T2006", stack: new Error().stack, position, value: func };
    const base = env.base as RuntimeBase;
    const depth = base.depth;
    base.depth = depth + d;
    let result: unknown;
    if (isFunctionValue(l)) {
      chainUnit ??= makeUnit(jsonata("function($f, $g) { function($x){ $g($f($x)) } }").ast(), 1, new Set(["f", "g", "x"]));
      const chain = chainUnit(null, env);
      result = apply(chain, [l, func], null, env);
    } else result = apply(func, [l], null, env);
    base.depth = depth;
    return result;
  };
}

let transformSignature: unknown;

function compileTransform(expr: Node, ctx: Ctx): Ev {
  const pattern = makeUnit(expr.pattern, 1, ctx.shadow);
  // ../expression.ts wraps the update and delete clauses in guard calls: one more level each
  const update = makeUnit(expr.update, 2, ctx.shadow);
  const deletion = expr.delete !== undefined ? makeUnit(expr.delete, 2, ctx.shadow) : undefined;
  const position = expr.position;
  const updatePosition = expr.update.position;
  const deletePosition = expr.delete?.position;
  transformSignature ??= (jsonata("function($o)<(oa):o>{$o}").ast() as Node).signature;
  return (_input, environment) => {
    const transformer = function (obj: unknown) {
      if (obj === undefined) return undefined;
      const cloneFunction = environment.lookup("clone");
      if (!isFunctionValue(cloneFunction)) throw { code: "T2013", stack: new Error().stack, position };
      const result: any = apply(cloneFunction, [obj], null, environment);
      let matches: any = pattern(result, environment);
      if (matches !== undefined) {
        if (!Array.isArray(matches)) matches = [matches];
        for (let ii = 0; ii < matches.length; ii++) {
          const match = matches[ii];
          const upd = update(match, environment);
          if (upd !== undefined) {
            if (upd === null || typeof upd !== "object" || Array.isArray(upd)) {
              throw { code: "T2011", stack: new Error().stack, position: updatePosition, value: host.preview(upd) };
            }
            for (const prop of Object.keys(upd)) match[prop] = upd[prop];
          }
          if (deletion) {
            let deletions: any = deletion(match, environment);
            if (deletions !== undefined) {
              const val = deletions;
              if (!Array.isArray(deletions)) deletions = [deletions];
              if (!isArrayOfStrings(deletions)) throw { code: "T2012", stack: new Error().stack, position: deletePosition, value: host.preview(val) };
              for (let jj = 0; jj < deletions.length; jj++) {
                if (typeof match === "object" && match !== null) delete match[deletions[jj]];
              }
            }
          }
        }
      }
      return result;
    };
    return { _jsonata_function: true, implementation: transformer, signature: transformSignature };
  };
}
