// Authentication middleware: the operator's ADMIN_TOKEN for /v1/tenants, scoped tenant JWTs elsewhere.
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app";
import { secretsEqual } from "./crypto";
import { AppError } from "./errors";
import type { Scope } from "./scopes";
import { enforceRateLimit } from "./rate-limit";
import { findActiveToken, touchToken, verifyToken } from "./tokens";

function bearer(header: string | undefined): string {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match) throw new AppError("UNAUTHORIZED", "Missing or malformed Authorization header; expected 'Bearer <token>'");
  return match[1]!;
}

/** Only the operator holding ADMIN_TOKEN passes. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearer(c.req.header("authorization"));
  if (!c.env.ADMIN_TOKEN || !(await secretsEqual(token, c.env.ADMIN_TOKEN))) {
    throw new AppError("UNAUTHORIZED", "Invalid admin token");
  }
  c.set("caller", { kind: "admin", scopes: [] });
  await next();
});

/**
 * A tenant token carrying `scope` (or any of several) passes. The token row is read on every request
 * so that a revoked token (or a deleted tenant) stops working immediately, not when the JWT expires.
 * Then the tenant's rate limit is taken.
 */
export function requireScope(scope: Scope, ...alternatives: Scope[]) {
  const accepted = [scope, ...alternatives];
  const middleware = createMiddleware<AppEnv>(async (c, next) => {
    const claims = await verifyToken(c.env.SECRETS_KEY, bearer(c.req.header("authorization")));
    const active = claims && (await findActiveToken(c.env.DB, claims.tokenId, claims.tenantId));
    if (!claims || !active) throw new AppError("UNAUTHORIZED", "Invalid, expired or revoked token");
    // The row's scopes decide: the JWT's copy is informational and could outlive a change.
    if (!accepted.some((s) => active.scopes.includes(s))) {
      const required = accepted.join("' or '");
      throw new AppError("FORBIDDEN", `This token lacks the '${required}' scope`, { required_scope: accepted.length === 1 ? scope : accepted });
    }
    await enforceRateLimit(c.env, claims.tenantId, active.rate_limit_per_second);
    c.set("caller", { kind: "tenant", tenantId: claims.tenantId, tokenId: claims.tokenId, scopes: active.scopes });
    c.executionCtx.waitUntil(touchToken(c.env.DB, claims.tokenId, active.last_used_at));
    await next();
  });
  // Read by createRouter, which lists each route's accepted scopes in the OpenAPI document.
  return Object.assign(middleware, { scopes: accepted });
}

/**
 * A tenant token with one of the scopes, or the operator's admin token (which manages the platform's
 * own `@erp-edge` registry packages). Carries `.scopes` like requireScope and `.adminToo`, so the
 * OpenAPI document lists both security alternatives.
 */
export function requireScopeOrAdmin(scope: Scope, ...alternatives: Scope[]) {
  const tenant = requireScope(scope, ...alternatives);
  const middleware = createMiddleware<AppEnv>(async (c, next) => {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1];
    if (token && c.env.ADMIN_TOKEN && (await secretsEqual(token, c.env.ADMIN_TOKEN))) {
      c.set("caller", { kind: "admin", scopes: [] });
      return next();
    }
    return tenant(c, next);
  });
  return Object.assign(middleware, { scopes: tenant.scopes, adminToo: true as const });
}
