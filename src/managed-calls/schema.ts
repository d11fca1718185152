// Request and response shapes of the secure-proxy and managed-call operations (epilot's
// SecureProxyRequest/Response, SecureProxySummary, ManagedCallExecuteRequest/Response).
import { HeaderName } from "../platform/template";
import { z } from "@hono/zod-openapi";
import { HttpMethod, SLUG } from "./configuration";

/** A UUID as epilot's schema says; erp-edge ids minted before they became UUIDs (ULIDs) still name their rows. */
export const ResourceId = z
  .string()
  // No /i flag: the OpenAPI document carries the pattern's text, where a flag cannot go.
  .regex(/^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26})$/, "a UUID")
  .openapi({ format: "uuid" });
const Uuid = ResourceId;

export const SecureProxySummary = z
  .object({
    id: z.string(),
    name: z.string(),
    slug: z.string().optional(),
    enabled: z.boolean(),
    vpc_mode: z.enum(["static_ip", "secure_link"]),
    allowed_domains: z.array(z.string()).optional(),
    allowed_ips: z.array(z.string()).optional(),
    integration_id: z.string(),
    integration_name: z.string(),
  })
  .openapi("SecureProxySummary");
export type SecureProxySummary = z.infer<typeof SecureProxySummary>;

export const SecureProxyList = z.object({ secure_proxies: z.array(SecureProxySummary) }).openapi("SecureProxyList");

const HeaderMap = z
  .record(HeaderName, z.string().max(8192).regex(/^[^\r\n\0]*$/, "no line breaks"))
  .refine((m) => Object.keys(m).length <= 50, "at most 50 headers");

export const SecureProxyRequest = z
  .object({
    integration_id: Uuid,
    use_case_id: Uuid.optional(),
    use_case_slug: z.string().max(255).regex(SLUG).optional(),
    url: z.url({ protocol: /^https?$/ }).max(4096).openapi({ format: "uri" }),
    method: HttpMethod,
    headers: HeaderMap.optional(),
    body: z.unknown().optional().openapi({ description: "Request body (string or JSON)" }),
    response_type: z.enum(["json", "binary"]).default("json"),
  })
  .refine((r) => (r.use_case_id === undefined) !== (r.use_case_slug === undefined), { message: "provide either use_case_id or use_case_slug", path: ["use_case_id"] })
  .openapi("SecureProxyRequest");
export type SecureProxyRequest = z.infer<typeof SecureProxyRequest>;

export const SecureProxyResponse = z
  .object({
    status_code: z.number().int(),
    headers: z.record(z.string(), z.string()),
    body: z.unknown().openapi({ description: "The upstream body: JSON when it parses, else text; base64 for response_type binary" }),
  })
  .openapi("SecureProxyResponse");
export type SecureProxyResponse = z.infer<typeof SecureProxyResponse>;

export const ManagedCallExecuteRequest = z
  .object({
    integration_id: Uuid,
    payload: z.record(z.string(), z.unknown()).optional().openapi({ description: "Request payload for the managed call operation" }),
    correlation_id: z.string().min(1).max(255).optional(),
  })
  .openapi("ManagedCallExecuteRequest");
export type ManagedCallExecuteRequest = z.infer<typeof ManagedCallExecuteRequest>;

export const ManagedCallExecuteResponse = z.unknown().openapi("ManagedCallExecuteResponse", {
  description: "The response_mapping's result, or the partner's JSON answer as it is when there is none",
});

export const SlugParam = z.object({
  slug: z
    .string()
    .max(255)
    .regex(SLUG, "lowercase letters, digits, '_' and '-'")
    .openapi({ param: { name: "slug", in: "path" } }),
});
