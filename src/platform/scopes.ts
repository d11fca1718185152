// The scopes a tenant token can carry; every tenant route names the one it needs.
import { z } from "@hono/zod-openapi";

export const SCOPES = [
  "integrations:read",
  "integrations:write",
  "events:write",
  "monitoring:read",
  "files:read",
  "blueprints:install",
  // Registering publishers and keys, publishing, deprecating and yanking registry packages.
  "registry:publish",
  "apps:invoke",
  // Saving outbound deliveries that send {{env.*}} values (see src/integrations/secrets-policy.ts).
  "secrets:use",
] as const;

export const Scope = z.enum(SCOPES).openapi("Scope");
export type Scope = z.infer<typeof Scope>;
