// The Hono app type every bounded context builds its sub-app from.
import { OpenAPIHono } from "@hono/zod-openapi";
import { validationError } from "./errors";
import type { Scope } from "./scopes";

/** Who is calling: set by the auth middleware. */
export interface Caller {
  kind: "admin" | "tenant";
  tenantId?: string;
  tokenId?: string;
  scopes: Scope[];
}

export interface AppEnv {
  Bindings: Env;
  Variables: { requestId: string; caller: Caller };
}

/**
 * A sub-app whose zod validation failures become 400 VALIDATION_FAILED envelopes, and whose routes'
 * OpenAPI security requirements name the scopes their `requireScope` middleware accepts
 * (`[{ tenantToken: ["integrations:read"] }]`, plus `{ adminToken: [] }` for `requireScopeOrAdmin`),
 * so the document cannot disagree with the code.
 */
export function createRouter() {
  const router = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target === "json" ? "request body" : `${result.target} parameters`);
    },
  });
  const register = router.openapi;
  router.openapi = ((route: { middleware?: unknown; security?: unknown }, ...rest: unknown[]) => {
    const guard = ([route.middleware].flat() as ({ scopes?: string[]; adminToo?: boolean } | undefined)[]).find((m) => m?.scopes);
    const security = guard && [{ tenantToken: guard.scopes! }, ...(guard.adminToo ? [{ adminToken: [] }] : [])];
    return (register as (...args: unknown[]) => unknown)(security ? { ...route, security } : route, ...rest);
  }) as typeof router.openapi;
  return router;
}

/** The tenant id of a tenant caller; routes behind `requireScope` always have one. */
export function callerTenant(caller: Caller): string {
  if (!caller.tenantId) throw new Error("tenant route reached without a tenant caller");
  return caller.tenantId;
}

/** How a change is attributed in histories and audit logs. */
export function callerLabel(caller: Caller): string {
  return caller.kind === "admin" ? "admin" : `token:${caller.tokenId}`;
}
