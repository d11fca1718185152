// Request templates ({{params.document_id}}, {{steps.0.body.download_path}}, {{env.ARCHIVE_USER}}):
// mustache.js, which interprets templates (Workers refuse generated code, so Handlebars' compiler is
// out), run through a context of our own that reads own properties only and never calls anything,
// with a budget on sections, and with secrets as placeholders until the request is sent. The subset
// and its rules are documented in docs/file-proxy.md.
import { z } from "@hono/zod-openapi";
import Mustache from "mustache";
import { isPrototypeKey } from "./paths";

/** How a value is written into the text: URL-encoded (`url`, for request URLs) or as it is (`text`). */
export type TemplateMode = "url" | "text";

/** Longest template, in UTF-16 units. */
export const MAX_TEMPLATE_LENGTH = 8_192;
/** Section bodies rendered per template (each array item is one), so nested sections cannot multiply. */
const MAX_SECTION_RENDERS = 1_000;
/** Longest rendered text. */
const MAX_RENDERED_LENGTH = 65_536;

export class TemplateError extends Error {
  override name = "TemplateError";
}

/** The budget of the render in progress (rendering is synchronous, so one at a time per isolate). */
let rendering: { length: number } | null = null;

/** Adds `text` to the render's output length; throws before the output can grow past the limit. */
function counted<T extends string | undefined>(text: T): T {
  if (text !== undefined && rendering && (rendering.length += text.length) > MAX_RENDERED_LENGTH) {
    throw new TemplateError(`rendered text longer than ${MAX_RENDERED_LENGTH} characters`);
  }
  return text;
}

/**
 * mustache's Writer, with every piece of output counted as it is produced (a section repeating a
 * large value fails at the limit instead of building the whole text first), and values that are
 * objects written as JSON rather than concatenated.
 */
class CountingWriter extends Mustache.Writer {
  override rawValue(token: string[]): string {
    return counted(super.rawValue(token as never) as string);
  }

  override escapedValue(token: string[], context: Mustache.Context, config?: Mustache.RenderOptions): string {
    return counted(super.escapedValue(token as never, context, config) as string);
  }

  override unescapedValue(token: string[], context: Mustache.Context): string {
    const value = context.lookup(token[1]!);
    return counted(value === null || value === undefined ? (undefined as unknown as string) : asText(value));
  }
}

// One writer with a bounded parse cache (mustache's own cache grows with every distinct template).
const writer = new CountingWriter();
const parsed = new Map<string, unknown>();
(writer as unknown as { templateCache: unknown }).templateCache = {
  get: (key: string) => parsed.get(key),
  set: (key: string, value: unknown) => {
    if (parsed.size >= 500) parsed.delete(parsed.keys().next().value!);
    parsed.set(key, value);
  },
  clear: () => parsed.clear(),
};

type Token = [string, string, number, number, Token[]?, number?];

/** Token kinds the subset allows: text, {{name}}, {{{name}}} / {{& name}}, sections, inverted sections, comments. */
const ALLOWED_TOKENS = new Set(["text", "name", "&", "#", "^", "!"]);

/** Names that stand for a whole object of secrets: a template names one value of them (`{{env.KEY}}`). */
const WHOLE_SECRET_OBJECTS = new Set(["env", "auth"]);

/**
 * Why a template is refused, or null: it must parse, use only the subset (no partials, no changed
 * delimiters), name no prototype key, and never the whole `env` or `auth` (so every secret a
 * template reads is named, and `templateNames` lists it).
 * @example templateProblem("{{> header}}") // "partials ({{> header}}) are not supported"
 */
export function templateProblem(template: string): string | null {
  if (template.length > MAX_TEMPLATE_LENGTH) return `longer than ${MAX_TEMPLATE_LENGTH} characters`;
  let tokens: Token[];
  try {
    tokens = writer.parse(template) as Token[];
  } catch (err) {
    return (err as Error).message;
  }
  const walk = (list: Token[]): string | null => {
    for (const token of list) {
      const [kind, name] = token;
      if (kind === ">") return `partials ({{> ${name}}}) are not supported`;
      if (kind === "=") return "changing the delimiters ({{= =}}) is not supported";
      if (!ALLOWED_TOKENS.has(kind)) return `unsupported tag '${kind}'`;
      if (kind !== "text" && kind !== "!" && name !== ".") {
        const segments = name.split(".");
        if (segments.some((s) => s === "")) return `'${name}' is not a valid name`;
        const bad = segments.find(isPrototypeKey);
        if (bad) return `'${name}' names '${bad}', which templates may not read`;
        if (WHOLE_SECRET_OBJECTS.has(name)) return `'${name}' stands for every value at once; name one, e.g. {{${name}.${name === "env" ? "API_KEY" : "access_token"}}}`;
      }
      const inner = token[4];
      if (inner) {
        const problem = walk(inner);
        if (problem) return problem;
      }
    }
    return null;
  };
  return walk(tokens);
}

/** The top-level names a template reads (`env.X` gives "env.X" for `env`), e.g. to list the secrets it uses. */
export function templateNames(template: string): string[] {
  const names: string[] = [];
  const walk = (list: Token[]) => {
    for (const token of list) {
      if (token[0] !== "text" && token[0] !== "!") names.push(token[1]);
      if (token[4]) walk(token[4]);
    }
  };
  walk(writer.parse(template) as Token[]);
  return names;
}

/** mustache's Context, reading own properties only and never calling a value. */
class DataContext extends Mustache.Context {
  constructor(
    view: unknown,
    parent: DataContext | undefined,
    readonly budget: { renders: number },
  ) {
    super(view, parent);
  }

  override push(view: unknown): DataContext {
    if (++this.budget.renders > MAX_SECTION_RENDERS) throw new TemplateError(`more than ${MAX_SECTION_RENDERS} section renders`);
    return new DataContext(view, this, this.budget);
  }

  override lookup(name: string): unknown {
    // A name missing from a section's view is looked up in the enclosing ones, as mustache does.
    for (let context: DataContext | undefined = this; context; context = context.parent as DataContext | undefined) {
      if (name === ".") return callable(context.view);
      let value: unknown = context.view;
      let found = true;
      for (const segment of name.split(".")) {
        if (value === null || value === undefined || isPrototypeKey(segment) || !Object.hasOwn(Object(value), segment)) {
          found = false;
          break;
        }
        value = (value as Record<string, unknown>)[segment];
      }
      if (found) return callable(value);
    }
    return undefined;
  }
}

/** Data never holds functions, but a value that is one is treated as absent rather than called. */
const callable = (value: unknown) => (typeof value === "function" ? undefined : value);

const asText = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value) ?? "");

/**
 * Secret values for one request: each one is a placeholder while templates are rendered and while
 * anything is checked, logged or reported, and is written in only by `reveal` when the request is
 * sent. Placeholders are letters, digits and `_` (unchanged by URL-encoding), with a random nonce
 * so no value from an archive's answer can forge one.
 */
export class Secrets {
  private readonly nonce = crypto.randomUUID().replaceAll("-", "");
  private readonly values: string[] = [];
  private readonly pattern = new RegExp(`__secret_${this.nonce}_(\\d+)_(r|u)__`, "g");

  /** The placeholder standing for `value` (written as is unless the template URL-encodes it). */
  hold(value: string): string {
    this.values.push(value);
    return `__secret_${this.nonce}_${this.values.length - 1}_r__`;
  }

  /** URL-encodes `text` except its placeholders, which are marked so that `reveal` URL-encodes their values. */
  urlEncode(text: string): string {
    let out = "";
    let last = 0;
    for (const m of text.matchAll(this.pattern)) {
      out += `${encodeURIComponent(text.slice(last, m.index))}__secret_${this.nonce}_${m[1]}_u__`;
      last = m.index + m[0].length;
    }
    return out + encodeURIComponent(text.slice(last));
  }

  /** The text with every placeholder replaced by its value: only for the request itself. */
  reveal(text: string): string {
    return text.replace(this.pattern, (_, i: string, how: string) => {
      const value = this.values[Number(i)] ?? "";
      return how === "u" ? encodeURIComponent(value) : value;
    });
  }

  /** Whether `text` holds a placeholder (was rendered from a secret). */
  holds(text: string): boolean {
    return new RegExp(this.pattern.source).test(text);
  }

  /**
   * The text with every placeholder shown as `*****`, and any secret value that slipped in masked
   * too: as it is, URL-encoded and form-encoded (values of three characters or more; shorter ones
   * would mask ordinary words).
   */
  mask(text: string): string {
    let out = text.replace(this.pattern, "*****");
    for (const value of this.values) {
      if (value.length < 3) continue;
      const encoded = encodeURIComponent(value.toWellFormed());
      for (const form of new Set([value, encoded, encoded.replaceAll("%20", "+")])) out = out.split(form).join("*****");
    }
    return out;
  }
}

/**
 * Renders a template over `view` (secrets already placeholders, see Secrets.hold). In `url` mode
 * `{{x}}` is URL-encoded (encodeURIComponent) and `{{{x}}}` is written as it is; in `text` mode both
 * are written as they are. Throws TemplateError for a template outside the subset or over a budget.
 */
export function renderTemplate(template: string, view: Record<string, unknown>, mode: TemplateMode, secrets?: Secrets): string {
  const problem = templateProblem(template);
  if (problem) throw new TemplateError(problem);
  const escape = (value: unknown) => {
    const text = asText(value);
    if (mode === "text") return text;
    return secrets ? secrets.urlEncode(text) : encodeURIComponent(text);
  };
  rendering = { length: 0 };
  try {
    return writer.render(template, new DataContext(view, undefined, { renders: 0 }), undefined, { escape });
  } catch (err) {
    // A value too large to handle at all (an engine string limit) is the template's failure too.
    if (err instanceof RangeError) throw new TemplateError(`rendering failed: ${err.message}`);
    throw err;
  } finally {
    rendering = null;
  }
}

// ---- configuration schemas --------------------------------------------------------------------

/** A template field of a configuration: at most MAX_TEMPLATE_LENGTH, refused at save when templateProblem finds one. */
export const templateField = (description: string) =>
  z
    .string()
    .max(MAX_TEMPLATE_LENGTH)
    .superRefine((text, ctx) => {
      const problem = templateProblem(text);
      if (problem) ctx.addIssue({ code: "custom", message: `template: ${problem}` });
    })
    .openapi({ description });

/** An HTTP header name (an RFC 9110 token). */
export const HeaderName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, "an HTTP header name");

/** Names (headers, form fields, query parameters) to templates: at most 50, none a prototype key. */
export const templateMap = (key: z.ZodString, template: z.ZodString) =>
  z
    .record(key, template)
    .refine((m) => Object.keys(m).length <= 50, "at most 50 entries")
    .refine((m) => !Object.keys(m).some(isPrototypeKey), "must not name __proto__, constructor or prototype");
