// The app sandbox with the real Worker Loader in workerd: metered code, the gateway, limits, and
// classification. Each scenario builds its own isolate (a fresh id) unless it is about reuse.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { destinationPolicy } from "../src/platform/destination";
import { bundleDigest, isolateId, runAction, type RunRequest } from "../src/apps/sandbox";

const policy = destinationPolicy(env);
let counter = 0;

/** An app module whose one action `go` runs `body` (the text of an async function body, with `input` and `ctx`). */
const appWith = (body: string, extra = "") => `${extra}\nexport default { actions: { go: { async run(input, ctx) { ${body} } } } };\n`;

const run = (source: string, more: Partial<RunRequest> = {}) =>
  runAction(env.LOADER, { id: `test-${++counter}-${Date.now()}`, source, actionName: "go", input: {}, policy, ...more });

/** The Worker still serves ordinary requests: the sandbox failure stayed inside its run. */
async function workerStillServes() {
  const res = await exports.default.fetch(new Request("http://erp-edge.test/"));
  expect(res.status).toBe(200);
}

describe("app sandbox: running actions", () => {
  it("runs an action with its input and returns its output, logs and duration", async () => {
    const source = appWith(
      `console.log("normalising", input.d); ctx.log.warn("padded", { n: input.n });
       const ms = Number(/\\/Date\\((\\d+)\\)\\//.exec(input.d)[1]);
       return { date: new Date(ms).toISOString(), n: Number(input.n), items: [1, 2, 3].map((x) => x * 2) };`,
    );
    const result = await run(source, { input: { d: "/Date(1700000000000)/", n: "000042" } });
    expect(result).toMatchObject({
      ok: true,
      output: { date: "2023-11-14T22:13:20.000Z", n: 42, items: [2, 4, 6] },
      logs: [
        { level: "info", message: "normalising /Date(1700000000000)/" },
        { level: "warn", message: 'padded {"n":"000042"}' },
      ],
    });
    expect(result.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it("reports a throwing app's message as APP_FAILED, without the host's stack", async () => {
    const result = await run(appWith(`ctx.log.error("about to fail"); throw new Error("SAP field KUNNR missing");`));
    expect(result).toMatchObject({ ok: false, code: "APP_FAILED", message: "SAP field KUNNR missing", logs: [{ level: "error", message: "about to fail" }] });
  });

  it("classifies the SDK's own input and output validation failures (AppRunError) by their code", async () => {
    const failing = (code: string) => appWith(`throw Object.assign(new Error("bad"), { name: "AppRunError", code: "${code}", issues: [{ path: "value", message: "Expected string" }] });`);
    expect(await run(failing("APP_INPUT_INVALID"))).toMatchObject({ ok: false, code: "APP_INPUT_INVALID", message: "bad (value: Expected string)" });
    expect(await run(failing("APP_OUTPUT_INVALID"))).toMatchObject({ ok: false, code: "APP_OUTPUT_INVALID" });
    // Any other code an app invents is just a failure of the app.
    expect(await run(failing("APP_LIMIT_EXCEEDED"))).toMatchObject({ ok: false, code: "APP_FAILED" });
  });

  it("classifies an unknown action and input that is not JSON as APP_INPUT_INVALID", async () => {
    const source = appWith("return 1;");
    expect(await run(source, { actionName: "missing" })).toMatchObject({ ok: false, code: "APP_INPUT_INVALID" });
    expect(await run(source, { actionName: "constructor" })).toMatchObject({ ok: false, code: "APP_INPUT_INVALID" });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(await run(source, { input: cyclic })).toMatchObject({ ok: false, code: "APP_INPUT_INVALID" });
    expect(await run(source, { input: "x".repeat(3000), limits: { max_input_bytes: 2000 } })).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "input_size" });
  });

  it("refuses oversized output and output JSON cannot represent", async () => {
    const big = await run(appWith(`return "x".repeat(5000);`), { limits: { max_output_bytes: 4000 } });
    expect(big).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "output_size" });
    expect(await run(appWith(`return () => 1;`))).toMatchObject({ ok: false, code: "APP_OUTPUT_INVALID" });
    expect(await run(appWith(`const a = {}; a.a = a; return a;`))).toMatchObject({ ok: false, code: "APP_OUTPUT_INVALID" });
  });

  it("bounds the logs an app can write", async () => {
    const result = await run(appWith(`for (let i = 0; i < 500; i++) console.log("line " + i); return 1;`), { limits: { max_log_lines: 20 } });
    expect(result).toMatchObject({ ok: true, dropped_logs: 480 });
    expect(result.logs).toHaveLength(20);
  });
});

describe("app sandbox: runaway code is stopped by the step budget", () => {
  it.each([
    ["while (true) {}", `while (true) {}`],
    ["for (;;);", `for (;;);`],
    ["a loop that swallows the limit error", `for (;;) { try { for (;;) {} } catch {} }`],
    ["exponential recursion", `function f(n) { return n === 0 ? 1 : f(n - 1) + f(n - 1); } return f(60);`],
    ["recursion that catches stack overflow", `function f() { try { f(); } catch { f(); } } f(); return 1;`],
    ["a spinning arrow in Array.map", `return [1].map(() => { let i = 0; do i++; while (i >= 0); });`],
  ])("%s fails only its run", async (_, body) => {
    const started = Date.now();
    const result = await run(appWith(body));
    expect(result).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "steps" });
    expect(result.ok === false && result.message).toMatch(/^APP_LIMIT_EXCEEDED: step budget/);
    expect(Date.now() - started).toBeLessThan(20_000);
    await workerStillServes();
  });

  it("stops an app that catches the limit error and returns normally", async () => {
    const result = await run(appWith(`try { while (true) {} } catch (e) { return "escaped: " + e.message; }`));
    expect(result).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "steps" });
  });

  it("stops runaway top-level code when the isolate is built", async () => {
    const result = await run(appWith("return 1;", "while (true) {}"));
    expect(result).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "steps" });
    expect(result.ok === false && result.message).toMatch(/^APP_LIMIT_EXCEEDED: step budget of \d+ exceeded[^\n]*$/);
    await workerStillServes();
  });

  it("times out a slow action on the host's clock, and fails one that can never finish", async () => {
    const slow = await run(appWith(`await new Promise((resolve) => setTimeout(resolve, 60_000));`), { limits: { timeout_ms: 300 } });
    expect(slow).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "time" });
    expect(slow.duration_ms).toBeGreaterThanOrEqual(300);
    expect(slow.duration_ms).toBeLessThan(5_000);
    // workerd itself cancels a run whose promise nothing can settle, before any timeout.
    const hung = await run(appWith(`await new Promise(() => {});`), { limits: { timeout_ms: 300 } });
    expect(hung).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "time" });
    await workerStillServes();
  });
});

describe("app sandbox: an app written with the SDK", () => {
  it("loads a bundle carrying the SDK and zod, and validates input and output inside the isolate", async () => {
    const source = env.TEST_SDK_APP_BUNDLE;
    expect(await run(source, { input: { kunnr: "0000100042" } })).toMatchObject({ ok: true, output: { customer_number: "100042" } });
    const bad = await run(source, { input: { kunnr: "ABC" } });
    expect(bad).toMatchObject({ ok: false, code: "APP_INPUT_INVALID" });
    expect(bad.ok === false && bad.message).toMatch(/kunnr/);
    expect(await run(source, { actionName: "wrong" })).toMatchObject({ ok: false, code: "APP_OUTPUT_INVALID" });
  });
});

describe("app sandbox: refused bundles", () => {
  it.each([
    ["eval", `return eval("1 + 1");`],
    ["constructor.constructor", `return (() => 1).constructor.constructor("return 1")();`],
    ["dynamic import", `return import("./meter.js");`],
    ["WebAssembly", `return typeof WebAssembly;`],
    ["the sandbox's names", `return __erpEdgeStep;`],
  ])("refuses %s when the isolate is built", async (_, body) => {
    const result = await run(appWith(body));
    expect(result).toMatchObject({ ok: false, code: "APP_FAILED" });
    expect(result.ok === false && result.message).toMatch(/bundle was refused/);
  });

  it("loads code that reads Function, and fails only a call to it, with a clear error", async () => {
    for (const body of [`return new Function("return 1")();`, `const F = Function; return F("return 1")();`]) {
      const result = await run(appWith(body));
      expect(result).toMatchObject({ ok: false, code: "APP_FAILED" });
      expect(result.ok === false && result.message).toMatch(/Function constructor is not available/);
    }
    // A library's probe (zod's allowsEval) sees "not available" and the app runs.
    expect(await run(appWith(`let jit; try { const F = Function; new F(""); jit = true; } catch { jit = false; } return { jit };`))).toMatchObject({ ok: true, output: { jit: false } });
  });

  it("leaves code generation the static checks cannot see to the runtime, which refuses it", async () => {
    const result = await run(appWith(`const make = Reflect.get(() => 1, "const" + "ructor"); return make("return 1")();`));
    expect(result).toMatchObject({ ok: false, code: "APP_FAILED" });
    expect(result.ok === false && result.message).toMatch(/code generation|not allowed|disallowed/i);
  });

  it("refuses an import of the sandbox's own modules", async () => {
    const result = await run(appWith("return step;", `import { step } from "./meter.js";`));
    expect(result.ok === false && result.message).toMatch(/bundle was refused: import of '.\/meter.js'/);
  });
});

describe("app sandbox: the gateway", () => {
  const receiver = new URL(env.RECEIVER_URL);

  it("lets the app reach a granted host, through global fetch and ctx.fetch", async () => {
    const source = appWith(
      `const a = await fetch(input.url + "/hook/apps-granted", { method: "POST", body: JSON.stringify({ from: "global" }) });
       const b = await ctx.fetch(input.url + "/hook/apps-granted", { method: "POST", body: JSON.stringify({ from: "ctx" }) });
       return { a: a.status, b: b.status };`,
    );
    const result = await run(source, { input: { url: env.RECEIVER_URL }, grants: { hosts: [receiver.host] } });
    expect(result).toMatchObject({ ok: true, output: { a: 200, b: 200 } });
    const seen = (await (await fetch(`${env.RECEIVER_URL}/_requests/apps-granted`)).json()) as { body: string }[];
    expect(seen.map((r) => JSON.parse(r.body).from)).toEqual(["global", "ctx"]);
  });

  it("fails a fetch to an ungranted host inside the app with APP_HOST_NOT_GRANTED", async () => {
    const caught = await run(appWith(`try { await fetch("https://example.com/"); } catch (e) { return e.message; }`));
    expect(caught).toMatchObject({ ok: true, output: "APP_HOST_NOT_GRANTED: example.com is not granted to this app" });
    const thrown = await run(appWith(`await fetch("https://example.com/");`), { grants: { hosts: [receiver.host] } });
    expect(thrown).toMatchObject({ ok: false, code: "APP_HOST_NOT_GRANTED" });
    // Wrapping the refusal does not hide it.
    const wrapped = await run(appWith(`try { await fetch("https://example.com/"); } catch { throw new Error("ERP unreachable"); }`));
    expect(wrapped).toMatchObject({ ok: false, code: "APP_HOST_NOT_GRANTED", message: "ERP unreachable" });
  });

  it("refuses a granted host that is a private address not allowed for outbound requests", async () => {
    const result = await run(appWith(`await fetch("http://169.254.169.254/latest/meta-data/");`), { grants: { hosts: ["169.254.169.254"] } });
    expect(result).toMatchObject({ ok: false, code: "APP_HOST_NOT_GRANTED" });
    expect(result.ok === false && result.message).toMatch(/link-local|linkLocal/i);
  });

  it("gives the isolate no network of its own: node:http and node:net do not bypass the gateway", async () => {
    const extra = `import http from "node:http"; import net from "node:net";`;
    const body = `const viaHttp = await new Promise((resolve) => {
         try {
           const req = http.request(input.url + "/hook/apps-bypass", { method: "POST" }, (res) => resolve("reached " + res.statusCode));
           req.on("error", (e) => resolve("refused: " + e.message));
           req.end("{}");
         } catch (e) { resolve("refused: " + e.message); }
       });
       const viaNet = await new Promise((resolve) => {
         try {
           const socket = net.connect({ host: "127.0.0.1", port: Number(new URL(input.url).port) }, () => resolve("reached"));
           socket.on("error", (e) => resolve("refused: " + e.message));
         } catch (e) { resolve("refused: " + e.message); }
       });
       return { viaHttp, viaNet };`;
    const result = await run(appWith(body, extra), { input: { url: env.RECEIVER_URL }, grants: { hosts: [receiver.host] } });
    expect(result.ok).toBe(true);
    const output = result.ok ? (result.output as { viaHttp: string; viaNet: string }) : { viaHttp: "", viaNet: "" };
    // node:http is built on fetch, so it goes through the gateway; a raw socket has no way out.
    expect(output.viaNet).toMatch(/^refused/);
    const seen = (await (await fetch(`${env.RECEIVER_URL}/_requests/apps-bypass`)).json()) as unknown[];
    expect({ output, seen: seen.length }).toMatchObject({ seen: output.viaHttp.startsWith("reached") ? 1 : 0 });
  });

  it("fails a run that makes too many subrequests", async () => {
    const source = appWith(`for (let i = 0; i < 5; i++) await fetch(input.url + "/hook/apps-many"); return "done";`);
    const result = await run(source, { input: { url: env.RECEIVER_URL }, grants: { hosts: [receiver.host] }, limits: { subrequests: 3 } });
    expect(result).toMatchObject({ ok: false, code: "APP_LIMIT_EXCEEDED", limit: "subrequests" });
  });
});

describe("app sandbox: isolate reuse", () => {
  it("reuses one warm isolate per (bundle digest, tenant)", async () => {
    const source = appWith(`globalThis.calls = (globalThis.calls ?? 0) + 1; return globalThis.calls;`);
    const id = isolateId(await bundleDigest(source), `ten_${Date.now()}`);
    const timed = async () => {
      const started = performance.now();
      const result = await runAction(env.LOADER, { id, source, actionName: "go", input: {}, policy });
      return { result, ms: performance.now() - started };
    };
    const cold = await timed();
    const warm = [await timed(), await timed(), await timed()];
    expect(cold.result).toMatchObject({ ok: true, output: 1 });
    expect(warm.map((w) => w.result.ok && w.result.output)).toEqual([2, 3, 4]);
    console.log(`isolate cold ${cold.ms.toFixed(1)} ms, warm ${warm.map((w) => w.ms.toFixed(1)).join(" / ")} ms`);
    const other = await runAction(env.LOADER, { id: isolateId(await bundleDigest(source), "ten_other"), source, actionName: "go", input: {}, policy });
    expect(other).toMatchObject({ ok: true, output: 1 });
  });
});
