// Webhook configurations (epilot's Webhooks API): the webhooks outbound mappings reference by webhook_id.
// The operations on the deliveries made through a configuration (events, replay, trigger, test-oauth,
// delete) are outbound's routes (src/outbound/routes.ts), since outbound owns deliveries and reads
// configurations, never the other way round. Layout of /v1/webhooks/...: docs/webhook-configs.md.
import { createRoute, z } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody, pathParams } from "../platform/openapi";
import { EventConfigEntry, ExampleRequest, ExampleResponse, PublicKeyResponse, WebhookConfig, WebhookConfigInput } from "./schema";
import * as service from "./service";
import { webhookSigningKey } from "./signing-key";

const security = [{ tenantToken: [] }];
const tags = ["Webhook configurations"];
const read = requireScope("integrations:read");
const write = requireScope("integrations:write");
const ConfigParams = pathParams("configId");

export const webhookConfigRoutes = createRouter();

webhookConfigRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/webhooks/.well-known/public-key", tags, security: [],
    summary: "The platform's Ed25519 public key verifying v1a webhook signatures (unauthenticated)",
    // epilot requires orgId; erp-edge has one platform key for every tenant, so it may be left out.
    request: { query: z.object({ orgId: z.string().min(1).max(255).optional() }) },
    responses: { 200: json(PublicKeyResponse, "The public key"), ...errors(400) },
  }),
  async (c) => {
    const key = await webhookSigningKey(c.env.SECRETS_KEY);
    return c.json({ public_key: key.publicKeyPem, algorithm: "ed25519", issuer: "erp-edge" }, 200, { "cache-control": "public, max-age=3600" });
  },
);

webhookConfigRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/webhooks/configured-events", tags, security, middleware: [read] as const,
    summary: "Events that can trigger webhooks",
    responses: { 200: json(z.array(EventConfigEntry), "Event names and labels"), ...errors(401, 403, 429) },
  }),
  async (c) => c.json(await service.configuredEvents(c.env.DB, callerTenant(c.get("caller"))), 200),
);

webhookConfigRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/webhooks/configs", tags, security, middleware: [read] as const,
    summary: "The tenant's webhook configurations, optionally of one event name",
    request: { query: z.object({ eventName: z.string().min(1).max(255).optional() }) },
    responses: { 200: json(z.array(WebhookConfig), "Configurations (secrets masked)"), ...errors(400, 401, 403, 429) },
  }),
  async (c) => c.json(await service.listConfigs(c.env, callerTenant(c.get("caller")), c.req.valid("query").eventName), 200),
);

webhookConfigRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/webhooks/configs", tags, security, middleware: [write] as const,
    summary: "Create a webhook configuration; its whsec_ signingSecret is answered only here",
    request: jsonBody(WebhookConfigInput),
    responses: { 201: json(WebhookConfig, "Created"), ...errors(400, 401, 403, 415, 429) },
  }),
  async (c) => {
    const caller = c.get("caller");
    return c.json(await service.createConfig(c.env, callerTenant(caller), c.req.valid("json"), { maySendSecrets: caller.scopes.includes(service.SECRETS_SCOPE) }), 201);
  },
);

webhookConfigRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/webhooks/configs/{configId}", tags, security, middleware: [read] as const,
    summary: "A webhook configuration (secrets masked)",
    request: { params: ConfigParams },
    responses: { 200: json(WebhookConfig, "The configuration"), ...errors(401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.getConfig(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId), 200),
);

webhookConfigRoutes.openapi(
  createRoute({
    method: "put", path: "/v1/webhooks/configs/{configId}", tags, security, middleware: [write] as const,
    summary: "Replace a webhook configuration; omitted secrets and retryPolicy keep their stored values",
    request: { params: ConfigParams, ...jsonBody(WebhookConfigInput) },
    responses: { 200: json(WebhookConfig, "Updated"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => {
    const caller = c.get("caller");
    const opts = { maySendSecrets: caller.scopes.includes(service.SECRETS_SCOPE) };
    return c.json(await service.updateConfig(c.env, callerTenant(caller), c.req.valid("param").configId, c.req.valid("json"), opts), 200);
  },
);

webhookConfigRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/webhooks/configs/{configId}/example", tags, security, middleware: [read] as const,
    summary: "An example of what a trigger of this configuration sends",
    request: { params: ConfigParams, ...jsonBody(ExampleRequest) },
    responses: { 200: json(ExampleResponse, "Example payload"), ...errors(400, 401, 403, 404, 415, 429) },
  }),
  async (c) => c.json(await service.exampleOf(c.env, callerTenant(c.get("caller")), c.req.valid("param").configId, c.req.valid("json").automation_id), 200),
);
