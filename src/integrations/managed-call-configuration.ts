// The configuration of epilot's managed_call and secure_proxy use cases, stored with the integrations
// that own them (src/managed-calls runs them). Shapes follow epilot's ManagedCallOperationConfig and
// SecureProxyUseCaseConfiguration.
import { z } from "@hono/zod-openapi";

const Templates = z.record(z.string().max(256), z.string().max(4096));

export const ManagedCallConfiguration = z
  .object({
    operation: z.object({
      method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]),
      path: z.string().min(1).max(2048).openapi({ description: "URL path template with {{variable}} interpolation" }),
      headers: Templates.optional(),
      query_params: Templates.optional(),
    }),
    request_mapping: z.string().max(50_000).optional().openapi({ description: "JSONata expression for the outbound body" }),
    response_mapping: z.string().max(50_000).optional().openapi({ description: "JSONata expression for the response" }),
    inbound_use_case_slug: z.string().max(255).optional().openapi({ description: "An inbound use case that processes the response" }),
  })
  .openapi("ManagedCallConfiguration");
export type ManagedCallConfiguration = z.infer<typeof ManagedCallConfiguration>;

export const SecureProxyConfiguration = z
  .object({
    vpc_mode: z.enum(["static_ip", "secure_link"]),
    allowed_domains: z.array(z.string().max(255)).max(100).optional(),
    allowed_ips: z.array(z.string().max(64)).max(100).optional(),
  })
  .openapi("SecureProxyConfiguration");
export type SecureProxyConfiguration = z.infer<typeof SecureProxyConfiguration>;

/** How managed calls authenticate with the partner API (epilot's ManagedCallAuth); values may be `{{env.KEY}}`. */
export const ManagedCallAuth = z
  .object({
    type: z.enum(["oauth2_client_credentials", "api_key", "bearer"]).optional(),
    token_url: z.string().max(2048).optional(),
    client_id: z.string().max(1000).optional(),
    client_secret: z.string().max(1000).optional(),
    scope: z.string().max(1000).optional(),
    audience: z.string().max(1000).optional(),
    resource: z.string().max(1000).optional(),
    body_params: Templates.optional(),
    headers: Templates.optional(),
    query_params: Templates.optional(),
    api_key_header: z.string().max(256).optional(),
    api_key: z.string().max(1000).optional(),
    token: z.string().max(1000).optional(),
  })
  .openapi("ManagedCallAuth");
export type ManagedCallAuth = z.infer<typeof ManagedCallAuth>;

/** Developer-provided types of a managed call's request and response fields, by dot-path. */
export const TypeAnnotations = z
  .object({
    request: z.record(z.string().max(512), z.string().max(1000)).optional(),
    response: z.record(z.string().max(512), z.string().max(1000)).optional(),
  })
  .openapi("TypeAnnotations");
export type TypeAnnotations = z.infer<typeof TypeAnnotations>;
