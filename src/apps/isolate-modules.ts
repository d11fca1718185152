// The host-written modules every app isolate is built from, beside the app's instrumented module:
// meter.js (the step budget, and the per-run fetch and console) and harness.js (the entrypoint the
// host calls). They are plain JavaScript text because the Worker Loader takes modules as source.
// Both are evaluated before the app's module (app.js imports meter.js; harness.js imports app.js).

/** Steps the app's module may take while it is evaluated (top-level code), before any run. */
export const MODULE_LOAD_STEPS = 1_000_000;

/**
 * How often (in steps) the meter attributes steps to the current run: reading the run's context
 * costs ~7x a bare step, so it is read once per batch. A run may overshoot its budget by one batch.
 */
export const STEPS_PER_CHECK = 1024;

/** The name of the harness's entrypoint class (harness.js). */
export const RUNNER_ENTRYPOINT = "ActionRunner";

export const METER_MODULE = /* js */ `
import { AsyncLocalStorage } from "node:async_hooks";

// The run whose code is executing: carried through awaits, promise callbacks and timers.
export const runs = new AsyncLocalStorage();
// The app's module is evaluated after this one and shares its globals: it could replace built-ins the
// meter and harness call (AsyncLocalStorage.prototype.getStore, Map.prototype.set, JSON.stringify,
// TextEncoder) to reach a run's bookkeeping. The originals are taken here, before any app code runs;
// the host re-checks everything the harness answers anyway (sandbox.ts).
export const currentRun = AsyncLocalStorage.prototype.getStore.bind(runs);
export const runWith = AsyncLocalStorage.prototype.run.bind(runs);
export const stringify = JSON.stringify;
const encoder = new TextEncoder();
const encode = TextEncoder.prototype.encode;
export const byteLength = (text) => encode.call(encoder, text).byteLength;

const moduleLoad = { id: "module-load", steps: 0, budget: ${MODULE_LOAD_STEPS}, stopped: null, logs: [], dropped_logs: 0, limits: { max_log_lines: 0, max_log_bytes: 0 } };
let pending = 0;
// Once any run has been stopped, every step checks its run: a stopped run's code that catches the
// limit error and loops again can never take another step.
let strict = false;

const REASONS = {
  steps: (run) => "step budget of " + run.budget + " exceeded (a loop or recursion ran too long)",
  time: () => "wall-clock timeout: the run was stopped",
  ended: () => "the action has already returned; its leftover work was stopped",
};

export function limitMessage(run) {
  return "APP_LIMIT_EXCEEDED: " + (REASONS[run.stopped] ?? REASONS.ended)(run);
}

/** Called at the start of every loop body and function body of the app's module. */
/** Stands in for \`Function\` in app modules: code generation from strings is not available to apps. */
export function noFunction() {
  throw new EvalError("the Function constructor is not available to erp-edge apps (code generation from strings is not allowed)");
}

export function step() {
  if (++pending < ${STEPS_PER_CHECK} && !strict) return;
  check();
}

/** Charges \`steps\` at once (where the app handles an exception). */
export function charge(steps) {
  pending += steps;
  if (pending >= ${STEPS_PER_CHECK} || strict) check();
}

function check() {
  const run = currentRun() ?? moduleLoad;
  run.steps += pending;
  pending = 0;
  if (run.stopped === null && run.steps > run.budget) run.stopped = "steps";
  if (run.stopped !== null) {
    strict = true;
    throw new Error(limitMessage(run));
  }
}

const MAX_LINE_CHARS = 2000;
function formatArg(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.name + ": " + value.message;
  try {
    return stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Adds a log line to the current run, within its line and byte bounds. */
export function log(level, args) {
  const run = currentRun();
  if (!run || run.stopped !== null) return;
  let message = args.map(formatArg).join(" ");
  if (message.length > MAX_LINE_CHARS) message = message.slice(0, MAX_LINE_CHARS) + "…";
  if (run.logs.length >= run.limits.max_log_lines || run.log_bytes + message.length > run.limits.max_log_bytes) {
    run.dropped_logs++;
    return;
  }
  run.log_bytes += message.length;
  run.logs.push({ level, message });
}

for (const [method, level] of [["log", "info"], ["info", "info"], ["debug", "info"], ["warn", "warn"], ["error", "error"]]) {
  console[method] = (...args) => log(level, args);
}

/** fetch() through the host's gateway for the current run (the isolate itself has no network). */
export function gatedFetch(input, init) {
  const run = currentRun();
  if (!run || run.stopped !== null) return Promise.reject(new Error("APP_HOST_NOT_GRANTED: fetch is only available while an action runs"));
  return run.gateway.fetch(new Request(input, init)).then((answer) => {
    if (answer instanceof Response) return answer;
    throw new Error(answer.error);
  });
}
globalThis.fetch = gatedFetch;
`;

export const HARNESS_MODULE = /* js */ `
import { WorkerEntrypoint } from "cloudflare:workers";
import { runWith, limitMessage, log, gatedFetch, stringify, byteLength } from "./meter.js";
import * as bundle from "./app.js";

// A dictionary without a prototype: no method the app could have replaced is called on it.
const active = Object.create(null);
const MAX_MESSAGE_CHARS = 2000;

function messageOf(err) {
  let text;
  try {
    text = err instanceof Error ? err.message : String(err);
  } catch {
    text = "the app threw a value that cannot be shown";
  }
  return text.length > MAX_MESSAGE_CHARS ? text.slice(0, MAX_MESSAGE_CHARS) + "…" : text;
}

async function execute(job, run) {
  const done = (result) => ({ ...result, logs: run.logs, dropped_logs: run.dropped_logs });
  const stoppedResult = () => done({ ok: false, kind: run.stopped, message: limitMessage(run) });
  const app = bundle.default;
  const actions = app && typeof app === "object" ? app.actions : undefined;
  const action = actions && Object.hasOwn(actions, job.action) ? actions[job.action] : undefined;
  if (!action || typeof action.run !== "function") return done({ ok: false, kind: "input", message: "the app has no action '" + job.action + "'" });
  const live = () => {
    if (run.stopped !== null) throw new Error(limitMessage(run));
    if (!run.state) throw new Error("ctx.state is not available to this run");
    return run.state;
  };
  const refused = (answer) => {
    if (answer) throw new Error(answer.error);
  };
  const ctx = {
    fetch: gatedFetch,
    log: { info: (...a) => log("info", a), warn: (...a) => log("warn", a), error: (...a) => log("error", a) },
    config: job.context.config,
    tenant_id: job.context.tenant_id,
    integration_id: job.context.integration_id,
    // State values are JSON: they cross to the host as text and come back as fresh copies.
    state: Object.freeze({
      get: async (key) => {
        const text = await live().get(String(key));
        return text === null ? undefined : JSON.parse(text);
      },
      put: async (key, value) => {
        const text = stringify(value);
        if (text === undefined) throw new TypeError("ctx.state.put needs a value JSON can represent");
        refused(await live().put(String(key), text));
      },
      delete: async (key) => refused(await live().delete(String(key))),
    }),
  };
  let output;
  try {
    output = await action.run(JSON.parse(job.input), ctx);
  } catch (err) {
    if (run.stopped !== null) return stoppedResult();
    // The SDK's defineAction validates input and output itself and says which failed (AppRunError).
    const code = err && typeof err === "object" && err.name === "AppRunError" ? err.code : undefined;
    if (code === "APP_INPUT_INVALID" || code === "APP_OUTPUT_INVALID") {
      const issues = Array.isArray(err.issues) ? err.issues.slice(0, 20).map((i) => (i.path ? i.path + ": " : "") + i.message).join("; ") : "";
      return done({ ok: false, kind: code === "APP_INPUT_INVALID" ? "input" : "output", message: messageOf(err) + (issues ? " (" + issues + ")" : "") });
    }
    return done({ ok: false, kind: "failed", message: messageOf(err) });
  }
  // An app that caught the limit error and returned anyway still exceeded it.
  if (run.stopped !== null) return stoppedResult();
  let text;
  try {
    text = stringify(output);
  } catch (err) {
    if (run.stopped !== null) return stoppedResult();
    return done({ ok: false, kind: "output", message: "the output is not JSON: " + messageOf(err) });
  }
  if (text === undefined) return done({ ok: false, kind: "output", message: "the action returned nothing JSON can represent" });
  const bytes = byteLength(text);
  if (bytes > job.limits.max_output_bytes) return done({ ok: false, kind: "output_size", message: "the output is " + bytes + " bytes, over the limit of " + job.limits.max_output_bytes });
  return done({ ok: true, output: text });
}

export class ${RUNNER_ENTRYPOINT} extends WorkerEntrypoint {
  /** Runs one action; the gateway is the host's capability for this run's fetches. */
  async run(job, gateway, state) {
    const run = { id: job.run_id, steps: 0, budget: job.limits.steps, stopped: null, logs: [], log_bytes: 0, dropped_logs: 0, limits: job.limits, gateway, state };
    active[run.id] = run;
    try {
      return await runWith(run, () => execute(job, run));
    } finally {
      if (run.stopped === null) run.stopped = "ended";
      delete active[run.id];
    }
  }

  /** Stops a run the host has given up on (wall-clock timeout): its next step throws. */
  stop(runId, reason) {
    const run = active[runId];
    if (run && run.stopped === null) run.stopped = reason;
    delete active[runId];
  }
}

export default {
  fetch() {
    return new Response("erp-edge app sandbox: call the ${RUNNER_ENTRYPOINT} entrypoint", { status: 404 });
  },
};
`;
