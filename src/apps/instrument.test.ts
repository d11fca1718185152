// instrumentModule: where the budget checks go, that the result is still a valid module, and what is refused.
import { parse, type Node } from "acorn";
import { full } from "acorn-walk";
import { describe, expect, it } from "vitest";
import { BundleRefused, CHARGE_FUNCTION, EXCEPTION_STEPS, instrumentModule, NO_FUNCTION, STEP_FUNCTION } from "./instrument";

const instrument = (source: string) => instrumentModule(source, { meter: "./meter.js" });

/** Parses the rewritten module (it must still be one) and counts the calls to `name`. */
function callsTo(output: string, name = STEP_FUNCTION): number {
  const ast = parse(output, { ecmaVersion: "latest", sourceType: "module" });
  let count = 0;
  full(ast, (node: Node & Record<string, any>) => {
    if (node.type === "CallExpression" && node.callee.type === "Identifier" && node.callee.name === name) count++;
  });
  return count;
}

describe("instrumentModule", () => {
  it("imports the meter and leaves straight-line code alone", () => {
    const output = instrument(`export const x = 1 + 2;`);
    expect(output).toBe(`import { step as ${STEP_FUNCTION}, charge as ${CHARGE_FUNCTION}, noFunction as ${NO_FUNCTION} } from "./meter.js";\nexport const x = 1 + 2;`);
  });

  it.each([
    ["for with a block", `for (let i = 0; i < 3; i++) { f(i); }`, 1],
    ["for with one statement", `for (let i = 0; i < 3; i++) f(i);`, 1],
    ["for with an empty body", `for (;;);`, 1],
    ["while", `while (x) x--;`, 1],
    ["do-while", `do x--; while (x);`, 1],
    ["for-in", `for (const k in o) delete o[k];`, 1],
    ["for-of", `for (const v of a) if (v) break;`, 1],
    ["for await", `async function g() { for await (const v of a) {} }`, 2],
    ["nested single-statement loops", `for (;;) for (;;) while (1);`, 3],
    ["a loop body without a semicolon before a newline", `for (;;) f = () => x\nnext()`, 2],
    ["labelled loops with continue", `outer: for (;;) { inner: for (;;) continue outer; }`, 2],
  ])("puts a check in every loop body: %s", (_, source, checks) => {
    expect(callsTo(instrument(source))).toBe(checks);
  });

  it.each([
    ["a function declaration", `function f() { return 1; }`, 1],
    ["a function expression", `const f = function () {};`, 1],
    ["an expression-bodied arrow", `const f = (a) => a * 2;`, 1],
    ["an arrow returning an object", `const f = () => ({ a: 1 });`, 1],
    ["an arrow returning a sequence", `const f = () => (a(), b());`, 1],
    ["curried arrows", `const f = (a) => (b) => (c) => a + b + c;`, 3],
    ["a generator", `function* g() { yield 1; }`, 1],
    ["an async arrow", `const f = async (x) => await x;`, 1],
    ["class methods, getters, setters, static and private methods", `class A { m() {} get g() { return 1; } set s(v) {} static t() {} #p() {} }`, 5],
    ["object methods and accessors", `const o = { m() {}, get g() { return 1; }, async *ag() {} };`, 3],
    ["a class field initialiser arrow", `class A { f = () => 1; static { let i = 0; } }`, 1],
  ])("puts a check in every function body: %s", (_, source, checks) => {
    expect(callsTo(instrument(source))).toBe(checks);
  });

  it("keeps a directive prologue a prologue", () => {
    const output = instrument(`function f() { "use strict"; return 1; }`);
    expect(output).toContain(`"use strict"; ${STEP_FUNCTION}();`);
  });

  it("charges exceptions caught by catch blocks and unwound through finally blocks", () => {
    const output = instrument(`function f() { try { f(); } catch { f(); } finally { g(); } try { h(); } finally { k(); } }`);
    // One catch block, plus one rethrowing catch per finally.
    expect(callsTo(output, CHARGE_FUNCTION)).toBe(3);
    expect(output).toContain(`${CHARGE_FUNCTION}(${EXCEPTION_STEPS})`);
  });

  it("keeps a hashbang on the first line", () => {
    expect(instrument(`#!/usr/bin/env node\nwhile (1);`).split("\n")[0]).toBe("#!/usr/bin/env node");
  });

  it.each([
    ["eval", `eval("1")`],
    ["indirect eval", `(0, eval)("1")`],
    ["eval through globalThis", `globalThis["eval"]("1")`],
    ["a shorthand { Function }", `const o = { Function };`],
    ["constructor.constructor", `(() => {}).constructor.constructor("return 1")`],
    ["constructor.constructor with brackets", `f["constructor"]["constructor"]("return 1")`],
    ["with", `function f(o) { with (o) { x; } }`],
    ["dynamic import", `const m = import("./harness.js");`],
    ["a relative import", `import x from "./meter.js";`],
    ["a bare import", `import z from "zod";`],
    ["a cloudflare: import", `import { connect } from "cloudflare:sockets";`],
    ["a re-export", `export * from "./harness.js";`],
    ["WebAssembly", `WebAssembly.instantiate(bytes)`],
    ["the sandbox's reserved names", `${STEP_FUNCTION} = () => {};`],
    ["a syntax error", `function (`],
    ["a script-only construct", `delete x;`],
  ])("refuses %s", (_, source) => {
    expect(() => instrument(source)).toThrow(BundleRefused);
  });

  it("points every reference to Function at the stand-in that throws (libraries probe it: zod does)", () => {
    const output = instrument(`const F = Function; try { new F(""); } catch {} Function("return 1"); const o = { Function: 1 }; o.Function;`);
    expect(output).toContain(`const F = ${NO_FUNCTION};`);
    expect(output).toContain(`${NO_FUNCTION}("return 1")`);
    expect(output).toContain("{ Function: 1 }");
    expect(output).toContain("o.Function");
    expect(output).not.toMatch(/[^.\w]Function\(/);
  });

  it("accepts node: built-ins and property names that only look dangerous", () => {
    const output = instrument(`import { Buffer } from "node:buffer";\nconst o = { eval: 1, Function: 2 }; o.constructor; class C { constructor() {} }`);
    expect(callsTo(output)).toBe(1);
  });

  it("refuses a bundle over the size limit before parsing it", () => {
    expect(() => instrument(`// ${"x".repeat(2_000_001)}`)).toThrow(/larger than/);
  });
});
