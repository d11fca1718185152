// Mapping simulation endpoints: dry-run a mapping against a payload before going live.
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, jsonBody } from "../platform/openapi";
import * as service from "./service";

const Format = z.enum(["json", "xml"]).default("json");
const Payload = z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]).openapi({
  description: "The ERP payload: an object, or a string of JSON or XML",
});

/** epilot's MappingSimulationV2Request, plus erp-edge's optional integration_id. */
const SimulationV2 = z
  .object({
    event_configuration: z.unknown().openapi({ description: "An inbound use case's configuration (epilot's InboundIntegrationEventConfiguration, or legacy v1.0)" }),
    format: Format,
    payload: Payload,
    integration_id: z.string().max(64).optional().openapi({ description: "erp-edge extension: used in file_proxy_url results" }),
  })
  .openapi("MappingSimulationV2Request");

/** epilot's MappingSimulationRequest: a v1.0 or v2.0 mapping configuration and the payload's object type. */
const SimulationV1 = z
  .object({
    mapping_configuration: z.unknown().openapi({
      description: "v1.0 ({ version?: '1.0', mapping: { objects } }) or v2.0 ({ version: '2.0', mapping: { events } })",
    }),
    object_type: z.string().min(1).max(255).openapi({ description: "A key of mapping.objects (v1.0) or mapping.events (v2.0)" }),
    format: Format,
    payload: Payload,
    integration_id: z.string().max(64).optional().openapi({ description: "erp-edge extension: used in file_proxy_url results" }),
  })
  .openapi("MappingSimulationRequest");

const EntityRef = z.object({ $entity_unique_ids: z.record(z.string(), z.unknown()), _schema: z.string().optional(), _tags: z.array(z.string()).optional() });
/** epilot's MappingSimulationResponse; `mode` and the warnings' `code` and indexes are erp-edge's additions. */
const SimulationResult = z
  .object({
    entity_updates: z.array(
      z.object({
        entity_slug: z.string(),
        unique_identifiers: z.record(z.string(), z.unknown()),
        attributes: z.record(z.string(), z.unknown()),
        mode: z.enum(["upsert", "delete", "purge"]),
      }),
    ),
    meter_readings_updates: z.array(
      z.object({ meter: EntityRef, meter_counter: EntityRef.optional(), attributes: z.record(z.string(), z.unknown()), mode: z.enum(["upsert", "delete"]) }),
    ),
    warnings: z.array(
      z
        .object({
          entity_schema: z.string().openapi({ description: "The entity schema the warning is about ('meter_reading' for a reading)" }),
          field: z.string().openapi({ description: "The attribute (or unique ids) that caused it; '' when it is about the whole entity" }),
          message: z.string(),
          code: z.string(),
        })
        .loose(),
    ),
    expressions: z
      .array(z.object({ path: z.string(), compiled: z.boolean(), reason: z.string().optional() }))
      .openapi({ description: "erp-edge extension: each JSONata expression of the configuration, and whether it runs compiled to closures or (with the reason) in the JSONata interpreter" }),
  })
  .openapi("MappingSimulationResponse");

const tags = ["Mapping"];
const security = [{ tenantToken: [] }];
const read = requireScope("integrations:read");

export const mappingRoutes = createRouter();

mappingRoutes.openapi(
  createRoute({
    method: "post", path: "/v2/erp/updates/mapping_simulation", tags, security, middleware: [read] as const,
    summary: "Simulate a mapping (v2 configuration) against a payload; nothing is stored",
    request: jsonBody(SimulationV2),
    responses: { 200: json(SimulationResult, "What the mapping produces"), ...errors(400, 401, 403, 413, 415, 422) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const config = service.parseMappingConfiguration(body.event_configuration);
    const ctx = { baseUrl: new URL(c.req.url).origin, integrationId: body.integration_id };
    return c.json(await service.simulate(config, body.format, body.payload, ctx), 200);
  },
);

mappingRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/erp/updates/mapping_simulation", tags, security, middleware: [read] as const,
    summary: "Simulate a v1.0 or v2.0 mapping configuration for one object type (event name)",
    request: jsonBody(SimulationV1),
    responses: { 200: json(SimulationResult, "What the mapping produces"), ...errors(400, 401, 403, 413, 415, 422) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const config = service.parseSimulationConfiguration(body.mapping_configuration, body.object_type);
    const ctx = { baseUrl: new URL(c.req.url).origin, integrationId: body.integration_id };
    return c.json(await service.simulate(config, body.format, body.payload, ctx), 200);
  },
);
