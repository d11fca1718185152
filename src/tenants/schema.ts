// Tenants and their API tokens.
import { z } from "@hono/zod-openapi";
import { NextCursor } from "../platform/pagination";
import { Scope, SCOPES } from "../platform/scopes";

export const Tenant = z
  .object({
    id: z.string().openapi({ example: "01JD6Q3W9X8Y7Z6A5B4C3D2E1F" }),
    slug: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and '-', starting with a letter or digit, at most 63"),
    name: z.string().trim().min(1).max(255),
    rate_limit_per_second: z.number().int().min(1).max(100_000).nullable().openapi({
      description: "Requests per second for this tenant's tokens and webhooks (bursts up to twice this); null = the default",
    }),
    created_at: z.string(),
  })
  .openapi("Tenant");
export type Tenant = z.infer<typeof Tenant>;

export const CreateTenant = Tenant.pick({ name: true, slug: true, rate_limit_per_second: true })
  .partial({ slug: true, rate_limit_per_second: true })
  .strict()
  .openapi("CreateTenant");
export type CreateTenant = z.infer<typeof CreateTenant>;

export const TenantList = z.object({ tenants: z.array(Tenant), next_cursor: NextCursor }).openapi("TenantList");

export const ApiToken = z
  .object({
    id: z.string(),
    name: z.string().trim().min(1).max(255),
    scopes: z.array(Scope).min(1).max(SCOPES.length).refine((s) => new Set(s).size === s.length, "scopes must not repeat"),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
  })
  .openapi("ApiToken");
export type ApiToken = z.infer<typeof ApiToken>;

export const CreateToken = ApiToken.pick({ name: true, scopes: true })
  .extend({
    expires_in_seconds: z
      .number()
      .int()
      .min(60)
      .max(5 * 365 * 24 * 3600)
      .optional()
      .openapi({ description: "Lifetime in seconds; defaults to DEFAULT_TOKEN_TTL_SECONDS (90 days)" }),
  })
  .strict()
  .openapi("CreateToken");
export type CreateToken = z.infer<typeof CreateToken>;

export const CreatedToken = ApiToken.extend({
  token: z.string().openapi({ description: "The bearer token (a JWT). Shown only in this response." }),
}).openapi("CreatedToken");

export const TokenList = z.object({ tokens: z.array(ApiToken), next_cursor: NextCursor }).openapi("TokenList");
