// Rewrites an app's bundled ES module so the sandbox can bound it: a step-budget check at the start of
// every loop iteration and every function call, and a refusal of what would run code the rewrite
// never saw. The budget itself lives in the isolate's meter module (isolate-modules.ts). See docs/apps.md.
import { parse, type Node } from "acorn";
import { full } from "acorn-walk";
import MagicString from "magic-string";

/** The name the rewritten module gives the budget check; app code may not use names with this prefix. */
export const STEP_FUNCTION = "__erpEdgeStep";
/** Charges many steps at once: used where an exception is being handled. */
export const CHARGE_FUNCTION = "__erpEdgeCharge";
/** What every reference to `Function` in an app's module becomes (see instrumentModule). */
export const NO_FUNCTION = "__erpEdgeFunction";
const CAUGHT = "__erpEdgeCaught";

/**
 * Steps charged each time a catch or finally block handles an exception. Throwing is far dearer than
 * a step (a stack overflow costs microseconds), and code that catches its own stack overflow and
 * recurses again (`function f() { try { f() } catch { f() } }`) throws on nearly every step: without
 * this weight it spent ~50 s of CPU inside a 10M-step budget.
 */
export const EXCEPTION_STEPS = 1000;
const RESERVED_PREFIX = "__erpEdge";

/** Larger bundles are refused before parsing (a 1 MB module is already far beyond a normal app). */
export const MAX_SOURCE_BYTES = 2_000_000;

export interface InstrumentOptions {
  /** The specifier the rewritten module imports `step` from, e.g. "./meter.js". */
  meter: string;
}

/** A bundle the sandbox will not load, with the construct and its position. */
export class BundleRefused extends Error {
  override name = "BundleRefused";
}

// acorn's Node is structural; these are the few fields read here.
type AnyNode = Node & Record<string, any>;

const LOOPS = new Set(["ForStatement", "ForInStatement", "ForOfStatement", "WhileStatement", "DoWhileStatement"]);
const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

/** The name a member expression reads when it is known statically (`a.b`, `a["b"]`), else null. */
function memberName(node: AnyNode): string | null {
  if (!node.computed && node.property.type === "Identifier") return node.property.name;
  if (node.computed && node.property.type === "Literal" && typeof node.property.value === "string") return node.property.value;
  return null;
}

/**
 * Why a node may not appear in an app bundle, or null. Static checks only: the runtime also refuses
 * code generation from strings (workerd disallows eval and new Function), so these make the refusal
 * early and clear rather than being the only barrier.
 */
function refusal(node: AnyNode): string | null {
  switch (node.type) {
    case "WithStatement":
      return "`with` statements are not allowed";
    case "ImportExpression":
      return "dynamic import() is not allowed; bundle the app into one module";
    case "ImportDeclaration":
    case "ExportAllDeclaration":
    case "ExportNamedDeclaration": {
      const from = node.source?.value;
      if (typeof from === "string" && !from.startsWith("node:")) return `import of '${from}' is not allowed; bundle dependencies into the app's module (only node:* built-ins may be imported)`;
      return null;
    }
    case "Identifier":
      if (node.name === "eval") return "eval is not allowed";
      if (node.name === "WebAssembly") return "WebAssembly is not allowed (its code cannot be metered)";
      if (node.name.startsWith(RESERVED_PREFIX)) return `names starting with ${RESERVED_PREFIX} are reserved for the sandbox`;
      return null;
    case "MemberExpression": {
      const name = memberName(node);
      if (name === "eval") return "eval is not allowed";
      if (name === "constructor" && node.object.type === "MemberExpression" && memberName(node.object) === "constructor")
        return "constructor.constructor (the Function constructor) is not allowed";
      return null;
    }
    default:
      return null;
  }
}

/** Where to put a check inside a block body: after its directive prologue ("use strict"), else after `{`. */
function blockInsertPoint(block: AnyNode): number {
  let at = block.start + 1;
  for (const statement of block.body as AnyNode[]) {
    if (statement.type !== "ExpressionStatement" || typeof statement.directive !== "string") break;
    at = statement.end;
  }
  return at;
}

/**
 * Parses `source` (one ES module) and returns it with `__erpEdgeStep()` called at the start of every
 * loop body and every function, method, getter, arrow, generator and async function body, and
 * EXCEPTION_STEPS charged by every catch block and by every finally block an exception runs through,
 * plus the import of those functions from `opts.meter`. Throws BundleRefused for a module it will not load:
 * not parseable, too large, or using eval, `x.constructor.constructor`, `with`, dynamic import(),
 * WebAssembly, imports other than node:* built-ins, or the reserved `__erpEdge` prefix. References
 * to `Function` are replaced by a stand-in that throws when called or constructed.
 *
 * @example instrumentModule("export default { actions: {} }", { meter: "./meter.js" })
 */
export function instrumentModule(source: string, opts: InstrumentOptions): string {
  if (new TextEncoder().encode(source).byteLength > MAX_SOURCE_BYTES) throw new BundleRefused(`the app's module is larger than ${MAX_SOURCE_BYTES} bytes`);
  let ast: AnyNode;
  try {
    ast = parse(source, { ecmaVersion: "latest", sourceType: "module", allowHashBang: true }) as AnyNode;
  } catch (err) {
    throw new BundleRefused(`the app's module does not parse: ${(err as Error).message}`);
  }
  const out = new MagicString(source);
  const call = `${STEP_FUNCTION}();`;
  // Children are visited before their parents, so at a shared position an inner node's closer is
  // appended first (appendLeft keeps call order) and an outer node's opener ends up in front of an
  // inner one (prependRight puts the latest call first): nesting stays balanced.
  full(ast, (node: AnyNode) => {
    const problem = refusal(node);
    if (problem) throw new BundleRefused(`${problem} (at offset ${node.start})`);
    // `Function` is read by common libraries (zod probes `new Function("")` to decide whether to
    // compile its parsers): refusing the name would refuse them. Every reference is pointed at a
    // stand-in that throws when called or constructed, so code generation fails with a clear error
    // (the runtime refuses it too) while the library's probe just sees "not available".
    if (node.type === "Property" && node.shorthand && node.value?.type === "Identifier" && node.value.name === "Function") {
      throw new BundleRefused(`the shorthand property { Function } is not allowed; write { Function: … } (at offset ${node.start})`);
    }
    if (node.type === "Identifier" && node.name === "Function") out.overwrite(node.start, node.end, NO_FUNCTION);
    if (FUNCTIONS.has(node.type)) {
      if (node.body.type === "BlockStatement") out.appendLeft(blockInsertPoint(node.body), ` ${call}`);
      else {
        out.prependRight(node.body.start, `(${STEP_FUNCTION}(), `);
        out.appendLeft(node.body.end, ")");
      }
    } else if (node.type === "CatchClause") {
      out.appendLeft(node.body.start + 1, ` ${CHARGE_FUNCTION}(${EXCEPTION_STEPS});`);
    } else if (node.type === "TryStatement" && node.finalizer) {
      // A finally block also runs while an exception unwinds: charge that case through a catch that
      // rethrows. With a catch clause already there, the pair is wrapped so an exception thrown by the
      // catch block itself is charged too: try { try {A} catch {B} } catch (e) {charge; throw e} finally {C}
      const rethrow = ` catch (${CAUGHT}) { ${CHARGE_FUNCTION}(${EXCEPTION_STEPS}); throw ${CAUGHT}; } `;
      if (node.handler) {
        out.prependRight(node.start, "try { ");
        out.appendLeft(node.handler.end, ` }${rethrow}`);
      } else out.appendLeft(node.block.end, rethrow);
    } else if (LOOPS.has(node.type)) {
      if (node.body.type === "BlockStatement") out.appendLeft(node.body.start + 1, ` ${call}`);
      else {
        out.prependRight(node.body.start, `{ ${call} `);
        out.appendLeft(node.body.end, " }");
      }
    }
  });
  const header = `import { step as ${STEP_FUNCTION}, charge as ${CHARGE_FUNCTION}, noFunction as ${NO_FUNCTION} } from ${JSON.stringify(opts.meter)};\n`;
  // A hashbang must stay the first line.
  const hashbang = source.startsWith("#!") ? source.indexOf("\n") + 1 || source.length : 0;
  if (hashbang > 0) out.appendLeft(hashbang, `\n${header}`);
  else out.prepend(header);
  return out.toString();
}
