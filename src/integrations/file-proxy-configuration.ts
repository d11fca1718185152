// The configuration of `file_proxy` use cases (epilot's FileProxyUseCaseConfiguration, plus
// `allowed_hosts`, `timeout_seconds` and `url_expires_in`): how an archived file is fetched from the
// ERP on demand, step by step. It lives with the integrations that store it; src/file-proxy/ runs it.
// Unknown keys are dropped, not refused, as epilot's schema allows them (only its secure_proxy
// attachment is closed).
import { z } from "@hono/zod-openapi";
import { assertParses, ExpressionError } from "../mapping/expression";
import { RESERVED_FILE_PARAMS } from "../mapping/schema";
import { hostEntryCovers, parseDestination } from "../platform/destination";
import { isPrototypeKey } from "../platform/paths";
import { HeaderName, templateField, templateMap, templateNames } from "../platform/template";

const Template = templateField("A mustache template over { params, steps, env, auth } (docs/file-proxy.md)");
const TemplateMap = templateMap(HeaderName, Template);
const FormMap = templateMap(z.string().min(1).max(128), Template);

const Expression = z
  .string()
  .min(1)
  .max(10_000)
  .superRefine((text, ctx) => {
    try {
      assertParses(text);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      ctx.addIssue({ code: "custom", message: `JSONata: ${err.message}`, params: { jsonata_code: err.code, position: err.position } });
    }
  })
  .openapi({ description: "A JSONata expression over { params, steps }" });

const REQUIRED_AUTH_FIELDS = {
  none: [],
  basic: ["username", "password"],
  api_key: ["header", "value"],
  oauth2_client_credentials: ["token_url", "client_id", "client_secret"],
  oauth2_password: ["token_url", "client_id", "client_secret", "username", "password"],
} as const;

export const FileProxyAuth = z
  .object({
    type: z.enum(["none", "basic", "api_key", "oauth2_client_credentials", "oauth2_password"]),
    token_url: Template.optional(),
    client_id: Template.optional(),
    client_secret: Template.optional(),
    scope: Template.optional(),
    audience: Template.optional(),
    resource: Template.optional(),
    username: Template.optional(),
    password: Template.optional(),
    /** api_key: the header carrying `value`. */
    header: HeaderName.optional(),
    value: Template.optional(),
    body_params: FormMap.optional(),
    headers: TemplateMap.optional(),
    query_params: FormMap.optional(),
  })
  .superRefine((auth, ctx) => {
    for (const field of REQUIRED_AUTH_FIELDS[auth.type]) {
      if (auth[field] === undefined) ctx.addIssue({ code: "custom", path: [field], message: `required when type is ${auth.type}` });
    }
  })
  .openapi("FileProxyAuth", { description: "How the archive is authenticated against; every string is a template" });
export type FileProxyAuth = z.infer<typeof FileProxyAuth>;

export const FileProxyParam = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, '_', '.' and '-'")
      .refine((n) => !RESERVED_FILE_PARAMS.has(n), "integration_id, use_case_slug, exp and sig are the URL's own")
      .refine((n) => !isPrototypeKey(n), "must not be __proto__, constructor or prototype"),
    required: z.boolean(),
    description: z.string().max(1000).optional(),
  })
  .openapi("FileProxyParam");

export const FileProxyStep = z
  .object({
    url: Template.openapi({ description: "Template of the request URL; `{{x}}` is URL-encoded, `{{{x}}}` is inserted as it is" }),
    method: z.enum(["GET", "POST"]),
    headers: TemplateMap.optional(),
    body: Template.optional().openapi({ description: "Template of the request body (POST only)" }),
    response_type: z.enum(["json", "binary"]),
  })
  .refine((s) => s.body === undefined || s.method === "POST", { path: ["body"], message: "only POST steps have a body" })
  .openapi("FileProxyStep");
export type FileProxyStep = z.infer<typeof FileProxyStep>;

export const FileProxyResponse = z
  .object({
    body: Expression.openapi({ description: "JSONata choosing the file: a binary step's `body` (e.g. `steps[1].body`), or a base64 string from a JSON step" }),
    encoding: z.enum(["base64", "binary"]).default("binary"),
    filename: Expression.optional(),
    content_type: Expression.optional(),
  })
  .openapi("FileProxyResponseConfig");

/** An allowed host: a name or address, optionally with a port, or `*.` and a domain for its subdomains. */
const AllowedHost = z
  .string()
  .min(1)
  .max(260)
  .superRefine((entry, ctx) => {
    const parsed = parseDestination(`https://${entry.replace(/^\*\./, "")}`);
    if (typeof parsed === "string" || parsed.url.pathname !== "/" || parsed.url.search || parsed.url.hash) ctx.addIssue({ code: "custom", message: "a host, host:port or *.domain" });
  });

/**
 * The host a URL template always reaches, when its scheme and authority are literal text (no
 * template tag before the path): lowercase, with its port when the URL names one; else null.
 */
export function literalHost(template: string): { host: string; port: string } | null {
  const tag = template.indexOf("{{");
  const literal = tag < 0 ? template : template.slice(0, tag);
  const authority = literal.match(/^https?:\/\/([^/?#]+)[/?#]/i) ?? (tag < 0 ? literal.match(/^https?:\/\/([^/?#]+)$/i) : null);
  if (!authority) return null;
  const parsed = parseDestination(literal.slice(0, authority[0].length).replace(/[/?#]$/, ""));
  return typeof parsed === "string" ? null : { host: parsed.host, port: parsed.port };
}

/** Whether `host` (canonical, lowercase) on `port` is one of `allowed` (host, host:port or *.domain). */
export function hostAllowed(allowed: readonly string[], host: string, port: string): boolean {
  return allowed.some((entry) => hostEntryCovers(entry, host, port));
}

export const FileProxyConfiguration = z
  .object({
    auth: FileProxyAuth.optional(),
    params: z.array(FileProxyParam).max(50).default([]),
    steps: z.array(FileProxyStep).min(1).max(5),
    response: FileProxyResponse,
    allowed_hosts: z.array(AllowedHost).max(20).optional().openapi({
      description:
        "Hosts the steps and the token URL may reach (erp-edge extension). Optional when every URL's host is literal text: those hosts are then the list. Redirects are followed only to these hosts.",
    }),
    timeout_seconds: z.number().int().min(1).max(60).default(30).openapi({ description: "How long each archive request may take to answer (erp-edge extension)" }),
    url_expires_in: z
      .number()
      .int()
      .min(60)
      .max(10 * 365 * 86_400)
      .optional()
      .openapi({ description: "Lifetime in seconds of the signed URLs that mappings' file_proxy_url produce (erp-edge extension); without it they do not expire" }),
    secure_proxy: z.object({ use_case_slug: z.string().max(128) }).strict().optional().openapi({ description: "epilot's VPC attachment: accepted and stored, not used by erp-edge" }),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.params.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: "custom", path: ["params", i, "name"], message: `duplicate parameter '${p.name}'` });
      names.add(p.name);
    });
    const urls: { path: (string | number)[]; template: string }[] = config.steps.map((s, i) => ({ path: ["steps", i, "url"], template: s.url }));
    if (config.auth?.token_url) urls.push({ path: ["auth", "token_url"], template: config.auth.token_url });
    for (const { path, template } of urls) {
      const literal = literalHost(template);
      if (!literal && !config.allowed_hosts) {
        ctx.addIssue({ code: "custom", path, message: "the host comes from a template: list the hosts it may take in allowed_hosts" });
      } else if (literal && config.allowed_hosts && !hostAllowed(config.allowed_hosts, literal.host, literal.port)) {
        ctx.addIssue({ code: "custom", path, message: `host '${literal.host}' is not in allowed_hosts` });
      }
    }
  })
  .openapi("FileProxyConfiguration");
export type FileProxyConfiguration = z.infer<typeof FileProxyConfiguration>;

/** Every template of a configuration, e.g. to find the environment values it sends. */
export function fileProxyTemplates(config: FileProxyConfiguration): string[] {
  const auth = config.auth;
  const authTemplates = auth
    ? [auth.token_url, auth.client_id, auth.client_secret, auth.scope, auth.audience, auth.resource, auth.username, auth.password, auth.value, ...Object.values(auth.body_params ?? {}), ...Object.values(auth.headers ?? {}), ...Object.values(auth.query_params ?? {})]
    : [];
  const stepTemplates = config.steps.flatMap((s) => [s.url, s.body, ...Object.values(s.headers ?? {})]);
  return [...authTemplates, ...stepTemplates].filter((t): t is string => t !== undefined);
}

/** The environment keys a configuration's templates read (`{{env.KEY}}`), which it sends to the archive. */
export function fileProxyEnvironmentKeys(config: FileProxyConfiguration): string[] {
  const keys = new Set<string>();
  for (const template of fileProxyTemplates(config)) {
    for (const name of templateNames(template)) if (name.startsWith("env.")) keys.add(name.slice(4));
  }
  return [...keys];
}

/** The hosts a configuration may reach: `allowed_hosts`, else the literal hosts of its URLs. */
export function effectiveAllowedHosts(config: FileProxyConfiguration): string[] {
  if (config.allowed_hosts) return config.allowed_hosts;
  const urls = [...config.steps.map((s) => s.url), ...(config.auth?.token_url ? [config.auth.token_url] : [])];
  return urls
    .map(literalHost)
    .filter((h) => h !== null)
    .map((h) => `${h.host.includes(":") ? `[${h.host}]` : h.host}:${h.port}`);
}
