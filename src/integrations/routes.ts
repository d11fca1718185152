// epilot's integrations API: /v1/integrations (without use cases), /v2/integrations (with them),
// /v1/integrations/{id}/use-cases|app-mapping, and erp-edge's /environment.
import { createRoute } from "@hono/zod-openapi";
import { assertSafeOutboundConfiguration, assertSafeOutboundUseCases } from "./outbound-configuration";
import { assertMayUseConnectorSecrets, assertMayUseSecrets } from "./secrets-policy";
import { callerLabel, callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { ErrorEnvelope, errors, json, jsonBody, pathParams } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import {
  AppMapping,
  CreateIntegration,
  CreateIntegrationV1,
  DeleteAppMapping,
  DeletedMessage,
  ETagHeader,
  EnvironmentValues,
  IfMatchHeader,
  Integration,
  IntegrationList,
  IntegrationPatch,
  IntegrationSummary,
  IntegrationSummaryList,
  PutIntegration,
  SetAppMapping,
  UseCase,
  UseCaseHistory,
  UseCaseInput,
  UseCaseList,
  UseCasePatch,
} from "./schema";
import * as service from "./service";

const security = [{ tenantToken: [] }];
const read = requireScope("integrations:read");
const write = requireScope("integrations:write");
// epilot's document names these integrationId and useCaseId; the URLs are the same. Ids are UUIDs
// (ULIDs for rows created before 0014); an unknown id of either form is a 404.
const IntegrationParams = pathParams("id");
const UseCaseParams = pathParams("id", "use_case_id");

/** A JSON response that also names its version in an ETag header. */
const versioned = <T extends Parameters<typeof json>[0]>(schema: T, description: string) => ({ ...json(schema, description), headers: ETagHeader });
const preconditionFailed = {
  412: { description: "If-Match names a version that is no longer current; nothing was changed", content: { "application/json": { schema: ErrorEnvelope } } },
};

const deleted = { 200: json(DeletedMessage, "Deleted") };

export const integrationRoutes = createRouter();

// ---- /v1/integrations (epilot's Integration: without its use cases) --------------------------
{
  const tags = ["Integrations"];

  integrationRoutes.openapi(
    createRoute({
      method: "post", path: "/v1/integrations", tags, security, middleware: [write] as const, summary: "Create an integration (use cases are added separately)",
      request: jsonBody(CreateIntegrationV1),
      responses: { 201: versioned(IntegrationSummary, "The integration"), ...errors(400, 401, 403, 409, 413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      assertMayUseConnectorSecrets(caller, c.req.valid("json").connector_config);
      const { integration, etag } = await service.createIntegration(c.env.DB, callerLabel(caller), callerTenant(caller), { ...c.req.valid("json"), use_cases: [] });
      return c.json(service.summaryOf(integration), 201, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v1/integrations", tags, security, middleware: [read] as const, summary: "List integrations (without their use cases)",
      request: { query: PageQuery },
      responses: { 200: json(IntegrationSummaryList, "A page of integrations"), ...errors(400, 401, 403) },
    }),
    async (c) => c.json(await service.listIntegrationSummaries(c.env.DB, callerTenant(c.get("caller")), c.req.valid("query")), 200),
  );

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v1/integrations/{id}", tags, security, middleware: [read] as const, summary: "Get an integration (without its use cases)",
      request: { params: IntegrationParams },
      responses: { 200: versioned(IntegrationSummary, "The integration"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { integration, etag } = await service.getVersionedIntegration(c.env.DB, callerTenant(c.get("caller")), c.req.valid("param").id);
      return c.json(service.summaryOf(integration), 200, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "put", path: "/v1/integrations/{id}", tags, security, middleware: [write] as const,
      summary: "Update an integration's own fields: those given replace the stored ones; use cases are not touched",
      request: { params: IntegrationParams, headers: IfMatchHeader, ...jsonBody(IntegrationPatch) },
      responses: { 200: versioned(IntegrationSummary, "The integration"), ...errors(400, 401, 403, 404, 409), ...preconditionFailed, ...errors(413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      assertMayUseConnectorSecrets(caller, c.req.valid("json").connector_config);
      const ifMatch = c.req.valid("header")["if-match"];
      const { integration, etag } = await service.patchIntegration(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("json"), ifMatch);
      return c.json(service.summaryOf(integration), 200, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "delete", path: "/v1/integrations/{id}", tags, security, middleware: [write] as const, summary: "Delete an integration with its use cases",
      request: { params: IntegrationParams, headers: IfMatchHeader },
      responses: { ...deleted, ...errors(401, 403, 404, 409), ...preconditionFailed },
    }),
    async (c) => {
      const caller = c.get("caller");
      await service.deleteIntegration(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("header")["if-match"]);
      return c.json({ message: "Integration deleted" }, 200);
    },
  );
}

// ---- /v2/integrations -------------------------------------------------------------------------
{
  const tags = ["Integrations"];

  integrationRoutes.openapi(
    createRoute({
      method: "post", path: "/v2/integrations", tags, security, middleware: [write] as const, summary: "Create an integration with its use cases",
      request: jsonBody(CreateIntegration),
      responses: { 201: versioned(Integration, "The integration"), ...errors(400, 401, 403, 409, 413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      assertMayUseSecrets(caller, c.req.valid("json").use_cases);
      assertMayUseConnectorSecrets(caller, c.req.valid("json").connector_config);
      await assertSafeOutboundUseCases(c.req.valid("json").use_cases, c.env);
      const { integration, etag } = await service.createIntegration(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("json"));
      return c.json(integration, 201, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v2/integrations", tags, security, middleware: [read] as const, summary: "List integrations",
      request: { query: PageQuery },
      responses: { 200: json(IntegrationList, "A page of integrations"), ...errors(400, 401, 403) },
    }),
    async (c) => c.json(await service.listIntegrations(c.env.DB, callerTenant(c.get("caller")), c.req.valid("query")), 200),
  );

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v2/integrations/{id}", tags, security, middleware: [read] as const, summary: "Get an integration",
      request: { params: IntegrationParams },
      responses: { 200: versioned(Integration, "The integration"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { integration, etag } = await service.getVersionedIntegration(c.env.DB, callerTenant(c.get("caller")), c.req.valid("param").id);
      return c.json(integration, 200, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "put", path: "/v2/integrations/{id}", tags, security, middleware: [write] as const,
      summary: "Replace (or, for a new UUID without If-Match, create) an integration; use cases are declarative (known id: update, new UUID or none: create, missing: delete)",
      request: { params: IntegrationParams, headers: IfMatchHeader, ...jsonBody(PutIntegration) },
      responses: { 200: versioned(Integration, "The integration"), ...errors(400, 401, 403, 404, 409), ...preconditionFailed, ...errors(413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      assertMayUseSecrets(caller, c.req.valid("json").use_cases);
      assertMayUseConnectorSecrets(caller, c.req.valid("json").connector_config);
      await assertSafeOutboundUseCases(c.req.valid("json").use_cases, c.env);
      const ifMatch = c.req.valid("header")["if-match"];
      const { integration, etag } = await service.replaceIntegration(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("json"), ifMatch);
      return c.json(integration, 200, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "delete", path: "/v2/integrations/{id}", tags, security, middleware: [write] as const, summary: "Delete an integration",
      request: { params: IntegrationParams, headers: IfMatchHeader },
      responses: { ...deleted, ...errors(401, 403, 404, 409), ...preconditionFailed },
    }),
    async (c) => {
      const caller = c.get("caller");
      await service.deleteIntegration(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("header")["if-match"]);
      return c.json({ message: "Integration deleted" }, 200);
    },
  );
}

// ---- /v1/integrations/{id}/use-cases ----------------------------------------------------------
{
  const tags = ["Use cases"];

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v1/integrations/{id}/use-cases", tags, security, middleware: [read] as const, summary: "List use cases",
      request: { params: IntegrationParams, query: PageQuery },
      responses: { 200: json(UseCaseList, "A page of use cases"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => c.json(await service.listUseCases(c.env.DB, callerTenant(c.get("caller")), c.req.valid("param").id, c.req.valid("query")), 200),
  );

  integrationRoutes.openapi(
    createRoute({
      method: "post", path: "/v1/integrations/{id}/use-cases", tags, security, middleware: [write] as const, summary: "Create a use case",
      request: { params: IntegrationParams, ...jsonBody(UseCaseInput) },
      responses: { 201: versioned(UseCase, "The use case"), ...errors(400, 401, 403, 404, 409, 413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      const body = c.req.valid("json");
      assertMayUseSecrets(caller, [body]);
      if (body.type === "outbound") await assertSafeOutboundConfiguration(body.configuration, c.env, ["configuration"]);
      const { useCase, etag } = await service.createUseCase(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("json"));
      return c.json(useCase, 201, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v1/integrations/{id}/use-cases/{use_case_id}", tags, security, middleware: [read] as const, summary: "Get a use case",
      request: { params: UseCaseParams },
      responses: { 200: versioned(UseCase, "The use case"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { id, use_case_id } = c.req.valid("param");
      const { useCase, etag } = await service.getVersionedUseCase(c.env.DB, callerTenant(c.get("caller")), id, use_case_id);
      return c.json(useCase, 200, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "put", path: "/v1/integrations/{id}/use-cases/{use_case_id}", tags, security, middleware: [write] as const,
      summary: "Update a use case with the fields given (its slug is immutable)",
      request: { params: UseCaseParams, headers: IfMatchHeader, ...jsonBody(UseCasePatch) },
      responses: { 200: versioned(UseCase, "The use case"), ...errors(400, 401, 403, 404, 409), ...preconditionFailed, ...errors(413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      const { id, use_case_id } = c.req.valid("param");
      const ifMatch = c.req.valid("header")["if-match"];
      // Checked on the use case as it will be stored (the patch merged into it), before anything is written.
      const check = async (uc: UseCaseInput) => {
        assertMayUseSecrets(caller, [uc]);
        if (uc.type === "outbound") await assertSafeOutboundConfiguration(uc.configuration, c.env, ["configuration"]);
      };
      const { useCase, etag } = await service.updateUseCase(c.env.DB, callerLabel(caller), callerTenant(caller), id, use_case_id, c.req.valid("json"), ifMatch, check);
      return c.json(useCase, 200, { ETag: etag });
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "delete", path: "/v1/integrations/{id}/use-cases/{use_case_id}", tags, security, middleware: [write] as const, summary: "Delete a use case",
      request: { params: UseCaseParams, headers: IfMatchHeader },
      responses: { ...deleted, ...errors(401, 403, 404, 409), ...preconditionFailed },
    }),
    async (c) => {
      const caller = c.get("caller");
      const { id, use_case_id } = c.req.valid("param");
      await service.deleteUseCase(c.env.DB, callerLabel(caller), callerTenant(caller), id, use_case_id, c.req.valid("header")["if-match"]);
      return c.json({ message: "Use case deleted" }, 200);
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v1/integrations/{id}/use-cases/{use_case_id}/history", tags, security, middleware: [read] as const,
      summary: "Every change to a use case, newest first",
      request: { params: UseCaseParams, query: PageQuery },
      responses: { 200: json(UseCaseHistory, "A page of changes"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const { id, use_case_id } = c.req.valid("param");
      return c.json(await service.useCaseHistory(c.env.DB, callerTenant(c.get("caller")), id, use_case_id, c.req.valid("query")), 200);
    },
  );
}

// ---- /v1/integrations/{id}/app-mapping --------------------------------------------
{
  const tags = ["Integrations"];

  integrationRoutes.openapi(
    createRoute({
      method: "put", path: "/v1/integrations/{id}/app-mapping", tags, security, middleware: [write] as const,
      summary: "Map an integration app's component to this integration (409 if it is mapped and overwrite is not set)",
      request: { params: IntegrationParams, ...jsonBody(SetAppMapping) },
      responses: { 200: json(AppMapping, "The mapping"), ...errors(400, 401, 403, 404, 409, 413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      return c.json(await service.setAppMapping(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("json")), 200);
    },
  );

  integrationRoutes.openapi(
    createRoute({
      method: "delete", path: "/v1/integrations/{id}/app-mapping", tags, security, middleware: [write] as const,
      summary: "Remove an app component's mapping to this integration",
      request: { params: IntegrationParams, ...jsonBody(DeleteAppMapping) },
      responses: { ...deleted, ...errors(400, 401, 403, 404, 413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      await service.deleteAppMapping(c.env.DB, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("json"));
      return c.json({ message: "App mapping deleted" }, 200);
    },
  );
}

// ---- /v1/integrations/{id}/environment --------------------------------------------------------
{
  const tags = ["Environment"];

  integrationRoutes.openapi(
    createRoute({
      method: "get", path: "/v1/integrations/{id}/environment", tags, security, middleware: [read] as const,
      summary: "Environment values, SecretString values masked",
      request: { params: IntegrationParams },
      responses: { 200: json(EnvironmentValues, "Values by key"), ...errors(401, 403, 404) },
    }),
    async (c) => c.json(await service.getEnvironment(c.env, callerTenant(c.get("caller")), c.req.valid("param").id), 200),
  );

  integrationRoutes.openapi(
    createRoute({
      method: "put", path: "/v1/integrations/{id}/environment", tags, security, middleware: [write] as const,
      summary: "Set environment values (null removes one); keys must be declared in environment_config",
      request: { params: IntegrationParams, ...jsonBody(EnvironmentValues) },
      responses: { 200: json(EnvironmentValues, "Values by key, secrets masked"), ...errors(400, 401, 403, 404, 413, 415) },
    }),
    async (c) => {
      const caller = c.get("caller");
      return c.json(await service.putEnvironment(c.env, callerLabel(caller), callerTenant(caller), c.req.valid("param").id, c.req.valid("json")), 200);
    },
  );
}
