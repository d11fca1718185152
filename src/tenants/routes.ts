// /v1/tenants: operator routes (ADMIN_TOKEN) to manage tenants and their scoped API tokens.
import { createRoute } from "@hono/zod-openapi";
import { createRouter } from "../platform/app";
import { requireAdmin } from "../platform/auth";
import { errors, json, jsonBody, pathParams } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import { CreateTenant, CreateToken, CreatedToken, Tenant, TenantList, TokenList } from "./schema";
import * as service from "./service";

const TenantParams = pathParams("id");
const TokenParams = pathParams("id", "token_id");
const security = [{ adminToken: [] }];
const tags = ["Tenants (admin)"];

export const tenantRoutes = createRouter();
tenantRoutes.use("/v1/tenants", requireAdmin);
tenantRoutes.use("/v1/tenants/*", requireAdmin);

tenantRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/tenants", tags, security, summary: "Create a tenant",
    request: jsonBody(CreateTenant),
    responses: { 201: json(Tenant, "The tenant"), ...errors(400, 401, 409, 413, 415) },
  }),
  async (c) => c.json(await service.createTenant(c.env.DB, c.req.valid("json")), 201),
);

tenantRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/tenants", tags, security, summary: "List tenants",
    request: { query: PageQuery },
    responses: { 200: json(TenantList, "A page of tenants"), ...errors(400, 401) },
  }),
  async (c) => c.json(await service.listTenants(c.env.DB, c.req.valid("query")), 200),
);

tenantRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/tenants/{id}", tags, security, summary: "Get a tenant",
    request: { params: TenantParams },
    responses: { 200: json(Tenant, "The tenant"), ...errors(401, 404) },
  }),
  async (c) => c.json(await service.getTenant(c.env.DB, c.req.valid("param").id), 200),
);

tenantRoutes.openapi(
  createRoute({
    method: "delete", path: "/v1/tenants/{id}", tags, security, summary: "Delete a tenant with its tokens and integrations",
    request: { params: TenantParams },
    responses: { 204: { description: "Deleted" }, ...errors(401, 404) },
  }),
  async (c) => {
    await service.deleteTenant(c.env.DB, c.req.valid("param").id);
    return c.body(null, 204);
  },
);

tenantRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/tenants/{id}/tokens", tags, security, summary: "Issue a scoped API token (shown once)",
    request: { params: TenantParams, ...jsonBody(CreateToken) },
    responses: { 201: json(CreatedToken, "The token with its secret"), ...errors(400, 401, 404, 413, 415) },
  }),
  async (c) => c.json(await service.createToken(c.env, c.req.valid("param").id, c.req.valid("json")), 201),
);

tenantRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/tenants/{id}/tokens", tags, security, summary: "List a tenant's tokens (never their secrets)",
    request: { params: TenantParams, query: PageQuery },
    responses: { 200: json(TokenList, "A page of tokens"), ...errors(400, 401, 404) },
  }),
  async (c) => c.json(await service.listTokens(c.env.DB, c.req.valid("param").id, c.req.valid("query")), 200),
);

tenantRoutes.openapi(
  createRoute({
    method: "delete", path: "/v1/tenants/{id}/tokens/{token_id}", tags, security, summary: "Revoke a token, effective immediately",
    request: { params: TokenParams },
    responses: { 204: { description: "Revoked" }, ...errors(401, 404) },
  }),
  async (c) => {
    const { id, token_id } = c.req.valid("param");
    await service.revokeToken(c.env.DB, id, token_id);
    return c.body(null, 204);
  },
);
