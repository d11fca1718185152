// Secure proxies and managed calls (epilot ERP Integration API): listSecureProxies, secureProxy and
// managedCallExecute. Configuration lives in the integrations' use cases; src/managed-calls/service.ts runs it.
import { createRoute } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { AppError, zodIssues } from "../platform/errors";
import { errors, json, jsonBody } from "../platform/openapi";
import { ManagedCallExecuteRequest, ManagedCallExecuteResponse, SecureProxyList, SecureProxyRequest, SecureProxyResponse, SlugParam } from "./schema";
import * as service from "./service";

const security = [{ tenantToken: [] }];
// A managed call or proxied request reaches a partner with the integration's credentials: it needs
// the scope that runs configured actions, not merely one that reads configuration.
const execute = requireScope("apps:invoke");

export const managedCallRoutes = createRouter();

managedCallRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/integrations/secure-proxies", tags: ["integrations"], security, middleware: [requireScope("integrations:read")] as const,
    operationId: "listSecureProxies",
    summary: "List all secure_proxy use cases across the tenant's integrations",
    responses: { 200: json(SecureProxyList, "The secure proxy use cases"), ...errors(401, 403, 429) },
  }),
  async (c) => c.json({ secure_proxies: await service.listSecureProxies(c.env.DB, callerTenant(c.get("caller"))) }, 200),
);

managedCallRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/secure-proxy", tags: ["proxy"], security, middleware: [execute] as const,
    operationId: "secureProxy",
    summary: "Forward a request to a host the secure_proxy use case allows, with the connector's credentials on its own host",
    request: jsonBody(SecureProxyRequest),
    responses: { 200: json(SecureProxyResponse, "The upstream answer"), ...errors(400, 401, 403, 404, 415, 429, 502, 504) },
  }),
  async (c) => c.json(await service.secureProxy(c.env, callerTenant(c.get("caller")), c.req.valid("json")), 200),
);

managedCallRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/managed-call/{slug}/execute", tags: ["managed-call"], security, middleware: [execute] as const,
    operationId: "managedCallExecute",
    summary: "Execute a managed call: the use case's operation against connector_config.base_url, mapped both ways",
    request: { params: SlugParam, ...jsonBody(ManagedCallExecuteRequest) },
    responses: { 200: json(ManagedCallExecuteResponse, "The response_mapping's result, or the partner's answer"), ...errors(400, 401, 403, 404, 415, 429, 502, 504) },
  }),
  async (c) => {
    const { body, correlationId } = await service.executeManagedCall(c.env, callerTenant(c.get("caller")), c.req.valid("param").slug, c.req.valid("json"));
    return c.json(body ?? null, 200, { "x-correlation-id": correlationId });
  },
  // epilot's ManagedCallErrorResponse has `details` as an object, so the failing paths go under `issues`.
  (result) => {
    if (!result.success) throw new AppError("VALIDATION_FAILED", result.target === "json" ? "Invalid request body" : `Invalid ${result.target} parameters`, { issues: zodIssues(result.error) });
  },
);
