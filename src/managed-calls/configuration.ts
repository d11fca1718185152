// The configuration of `managed_call` and `secure_proxy` use cases and of a connector integration's
// `connector_config` (epilot's ManagedCallOperationConfig, SecureProxyUseCaseConfiguration and
// ConnectorConfig): what a managed call sends where, with which credentials. Like the file proxy's
// configuration it belongs with the integrations that store it; src/managed-calls/ runs it.
import { z } from "@hono/zod-openapi";
import { assertParses, ExpressionError } from "../mapping/expression";
import { parseDestination } from "../platform/destination";
import { HeaderName, templateField, templateMap, templateNames } from "../platform/template";

export const SLUG = /^[a-z0-9][a-z0-9_-]*$/;

const Template = templateField("A mustache template over the request payload and `env` (docs/managed-calls.md)");
const TemplateMap = (key: z.ZodString) => templateMap(key, Template);

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
  });

export const HttpMethod = z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]);

export const ManagedCallOperation = z
  .object({
    method: HttpMethod,
    path: Template.openapi({ description: "URL path template below connector_config.base_url; `{{x}}` is URL-encoded" }),
    headers: TemplateMap(HeaderName).optional(),
    query_params: TemplateMap(z.string().min(1).max(128)).optional(),
  });

export const ManagedCallConfiguration = z
  .object({
    operation: ManagedCallOperation,
    request_mapping: Expression.optional().openapi({ description: "JSONata over the payload giving the body sent" }),
    response_mapping: Expression.optional().openapi({ description: "JSONata over the partner's answer giving the caller's response" }),
    inbound_use_case_slug: z.string().max(128).optional().openapi({ description: "epilot's inbound routing of the answer: stored, not yet run by erp-edge" }),
    timeout_seconds: z.number().int().min(1).max(60).default(30).openapi({ description: "How long the partner may take to answer (erp-edge extension)" }),
  });
export type ManagedCallConfiguration = z.infer<typeof ManagedCallConfiguration>;

/** An allowed domain: `host`, `host:port` or `*.domain`. */
const AllowedDomain = z
  .string()
  .min(1)
  .max(260)
  .superRefine((entry, ctx) => {
    const parsed = parseDestination(`https://${entry.replace(/^\*\./, "")}`);
    if (typeof parsed === "string" || parsed.url.pathname !== "/" || parsed.url.search || parsed.url.hash) ctx.addIssue({ code: "custom", message: "a host, host:port or *.domain" });
  });

export const SecureProxyConfiguration = z
  .object({
    vpc_mode: z.enum(["static_ip", "secure_link"]),
    allowed_domains: z.array(AllowedDomain).max(50).optional(),
    allowed_ips: z.array(z.string().max(64)).max(50).optional(),
  });
export type SecureProxyConfiguration = z.infer<typeof SecureProxyConfiguration>;

/** Fields epilot requires for its auth types; every value is a template (secrets as `{{env.KEY}}`). */
const REQUIRED_AUTH_FIELDS = {
  oauth2_client_credentials: ["token_url", "client_id", "client_secret"],
  api_key: ["api_key"],
  bearer: ["token"],
} as const;

export const ManagedCallAuth = z
  .object({
    type: z.enum(["oauth2_client_credentials", "api_key", "bearer"]),
    token_url: Template.optional(),
    client_id: Template.optional(),
    client_secret: Template.optional(),
    scope: Template.optional(),
    audience: Template.optional(),
    resource: Template.optional(),
    body_params: TemplateMap(z.string().min(1).max(128)).optional(),
    headers: TemplateMap(HeaderName).optional(),
    query_params: TemplateMap(z.string().min(1).max(128)).optional(),
    api_key_header: HeaderName.optional(),
    api_key: Template.optional(),
    token: Template.optional(),
  })
  .superRefine((auth, ctx) => {
    for (const field of REQUIRED_AUTH_FIELDS[auth.type]) {
      if (auth[field] === undefined) ctx.addIssue({ code: "custom", path: [field], message: `required when type is ${auth.type}` });
    }
  });
export type ManagedCallAuth = z.infer<typeof ManagedCallAuth>;

export const ConnectorConfig = z
  .object({
    base_url: Template.optional().openapi({ description: "Base URL of the partner API; may be `{{{env.KEY}}}`" }),
    auth: ManagedCallAuth.optional(),
    types_versions: z
      .array(z.object({ version: z.string(), package_name: z.string(), generated_at: z.string(), generated_by: z.string(), status: z.enum(["active", "deprecated"]) }))
      .optional(),
    latest_types_version: z.string().optional(),
    latest_types_package_name: z.string().optional(),
  });
export type ConnectorConfig = z.infer<typeof ConnectorConfig>;

/** Every template a connector's auth and a managed call read, e.g. to find the secrets they send. */
export function managedCallTemplates(config: ManagedCallConfiguration | undefined, connector: ConnectorConfig | undefined): string[] {
  const auth = connector?.auth;
  const authTemplates = auth
    ? [auth.token_url, auth.client_id, auth.client_secret, auth.scope, auth.audience, auth.resource, auth.api_key, auth.token, ...Object.values(auth.body_params ?? {}), ...Object.values(auth.headers ?? {}), ...Object.values(auth.query_params ?? {})]
    : [];
  const op = config?.operation;
  const opTemplates = op ? [op.path, ...Object.values(op.headers ?? {}), ...Object.values(op.query_params ?? {})] : [];
  return [connector?.base_url, ...authTemplates, ...opTemplates].filter((t): t is string => t !== undefined);
}

/** The environment keys those templates read (`{{env.KEY}}`): saving them should need `secrets:use`. */
export function managedCallEnvironmentKeys(config: ManagedCallConfiguration | undefined, connector: ConnectorConfig | undefined): string[] {
  const keys = new Set<string>();
  for (const template of managedCallTemplates(config, connector)) for (const name of templateNames(template)) if (name.startsWith("env.")) keys.add(name.slice(4));
  return [...keys];
}
