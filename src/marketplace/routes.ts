// /v1/blueprints/*: trust, plan-first installs, upgrades, rollbacks and removals of registry blueprints.
import { createRoute } from "@hono/zod-openapi";
import { callerLabel, callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import {
  InstallationDetail,
  InstallationList,
  InstalledParams,
  InstallRequest,
  PlanResult,
  RollbackRequest,
  TrustList,
  UninstallQuery,
  UpgradeRequest,
} from "./schema";
import * as service from "./service";

const security = [{ tenantToken: [] }];
const install = requireScope("blueprints:install");
const tags = ["Blueprints"];
const nameOf = (p: { scope: string; name: string }) => `${p.scope}/${p.name}`;

export const marketplaceRoutes = createRouter();

marketplaceRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/blueprints/trust", tags, security, middleware: [install] as const, summary: "Publishers this tenant installs blueprints from",
    responses: { 200: json(TrustList, "Trusted publishers; @erp-edge always included"), ...errors(401, 403) },
  }),
  async (c) => c.json(await service.getTrust(c.env.DB, callerTenant(c.get("caller"))), 200),
);

marketplaceRoutes.openapi(
  createRoute({
    method: "put", path: "/v1/blueprints/trust", tags, security, middleware: [install] as const, summary: "Replace the trusted publishers (@erp-edge stays trusted)",
    request: jsonBody(TrustList),
    responses: { 200: json(TrustList, "Trusted publishers"), ...errors(400, 401, 403, 413, 415) },
  }),
  async (c) => {
    const caller = c.get("caller");
    return c.json(await service.putTrust(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("json")), 200);
  },
);

marketplaceRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/blueprints/install", tags, security, middleware: [install] as const,
    summary: "Install a blueprint: resolve, verify, plan, and (unless dry_run) apply all or nothing",
    description:
      "Resolves the version (never a yanked one unless pinned exactly), downloads the bundle and verifies its digest and signature in the host, checks engines, requires, " +
      "every use-case configuration, outbound destinations and environment values, and answers with the plan. With dry_run nothing is written (200); otherwise the plan is applied in one transaction (201).",
    request: jsonBody(InstallRequest),
    responses: {
      200: json(PlanResult, "Dry run: the plan; nothing was written"),
      201: json(PlanResult, "Installed: the plan applied and the installation"),
      ...errors(400, 401, 403, 404, 409, 413, 415, 422),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const caller = c.get("caller");
    const result = await service.install(c.env, caller, callerTenant(caller), body);
    return body.dry_run ? c.json(result, 200) : c.json(result, 201);
  },
);

marketplaceRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/blueprints/installed", tags, security, middleware: [install] as const, summary: "Installed blueprints",
    request: { query: PageQuery },
    responses: { 200: json(InstallationList, "A page of installations"), ...errors(400, 401, 403) },
  }),
  async (c) => c.json(await service.listInstalled(c.env.DB, callerTenant(c.get("caller")), c.req.valid("query")), 200),
);

marketplaceRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/blueprints/installed/{scope}/{name}", tags, security, middleware: [install] as const, summary: "An installed blueprint with its rollback steps",
    request: { params: InstalledParams },
    responses: { 200: json(InstallationDetail, "The installation"), ...errors(400, 401, 403, 404) },
  }),
  async (c) => c.json(await service.getInstalled(c.env.DB, callerTenant(c.get("caller")), nameOf(c.req.valid("param"))), 200),
);

marketplaceRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/blueprints/installed/{scope}/{name}/upgrade", tags, security, middleware: [install] as const,
    summary: "Upgrade by a three-way merge; the tenant's changes are kept and reported as conflicts",
    description:
      "Plans the change from the installed version to the new one field by field against the tenant's current configuration. A field the tenant changed is kept; " +
      "where the new version changed it too, the entry is a conflict with base, current and incoming values. Crossing a major version needs accept_breaking (409 with the notes otherwise). 200 for a dry run and when applied.",
    request: { params: InstalledParams, ...jsonBody(UpgradeRequest) },
    responses: { 200: json(PlanResult, "The plan (applied unless dry_run)"), ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
  }),
  async (c) => {
    const caller = c.get("caller");
    return c.json(await service.upgrade(c.env, caller, callerTenant(caller), nameOf(c.req.valid("param")), c.req.valid("json")), 200);
  },
);

marketplaceRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/blueprints/installed/{scope}/{name}/rollback", tags, security, middleware: [install] as const,
    summary: "Undo the last install or upgrade exactly; each call goes one step further back",
    request: { params: InstalledParams, ...jsonBody(RollbackRequest) },
    responses: { 200: json(PlanResult, "The plan (applied unless dry_run); installation is null once an install is rolled back"), ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
  }),
  async (c) => {
    const caller = c.get("caller");
    return c.json(await service.rollback(c.env, caller, callerTenant(caller), nameOf(c.req.valid("param")), c.req.valid("json")), 200);
  },
);

marketplaceRoutes.openapi(
  createRoute({
    method: "delete", path: "/v1/blueprints/installed/{scope}/{name}", tags, security, middleware: [install] as const,
    summary: "Uninstall: remove the integrations and use cases the blueprint owns (entities stay)",
    request: { params: InstalledParams, query: UninstallQuery },
    responses: { 200: json(PlanResult, "The plan (applied unless dry_run)"), ...errors(400, 401, 403, 404, 409, 422) },
  }),
  async (c) => {
    const caller = c.get("caller");
    return c.json(await service.uninstall(c.env, caller, callerTenant(caller), nameOf(c.req.valid("param")), c.req.valid("query")), 200);
  },
);
