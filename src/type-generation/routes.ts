// Type generation (epilot ERP Integration API): generateTypesPreview, generateTypes, commitTypes.
import { createRoute, z } from "@hono/zod-openapi";
import { callerLabel, callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody } from "../platform/openapi";
import { CommitTypesRequest, CommitTypesResponse, GenerateTypesPreviewResponse, GenerateTypesRequest, GenerateTypesResponse } from "./schema";
import * as service from "./service";

const security = [{ tenantToken: [] }];
const tags = ["integrations"];
const IntegrationParam = z.object({ integrationId: z.string().min(1).max(64).openapi({ param: { name: "integrationId", in: "path" }, format: "uuid" }) });

export const typeGenerationRoutes = createRouter();

typeGenerationRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{integrationId}/generate-types-preview", tags, security, middleware: [requireScope("integrations:read")] as const,
    operationId: "generateTypesPreview",
    summary: "Scaffolded type descriptors of the integration's managed-call, inbound and outbound use cases, with changes since the last commit",
    request: { params: IntegrationParam },
    responses: { 200: json(GenerateTypesPreviewResponse, "Scaffolded type preview"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.previewTypes(c.env.DB, callerTenant(c.get("caller")), c.req.valid("param").integrationId), 200),
);

typeGenerationRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{integrationId}/generate-types", tags, security, middleware: [requireScope("integrations:read")] as const,
    operationId: "generateTypes",
    summary: "Generate a TypeScript package (package.json, index.d.ts) for the integration's use cases; stores nothing",
    request: { params: IntegrationParam, ...jsonBody(GenerateTypesRequest) },
    responses: { 200: json(GenerateTypesResponse, "Generated package"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.generateTypes(c.env.DB, callerTenant(c.get("caller")), c.req.valid("param").integrationId, c.req.valid("json")), 200),
);

typeGenerationRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/integrations/{integrationId}/commit-types", tags, security, middleware: [requireScope("integrations:write")] as const,
    operationId: "commitTypes",
    summary: "Record a reviewed types package (name, version, annotations and the descriptors it was generated from)",
    request: { params: IntegrationParam, ...jsonBody(CommitTypesRequest) },
    responses: { 200: json(CommitTypesResponse, "Types committed"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => {
    const caller = c.get("caller");
    return c.json(await service.commitTypes(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").integrationId, c.req.valid("json")), 200);
  },
);
