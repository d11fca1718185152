// /v1/entities: read the entity store (and lift soft deletes).
import { createRoute, z } from "@hono/zod-openapi";
import { callerTenant, createRouter } from "../platform/app";
import { requireScope } from "../platform/auth";
import { errors, json, pathParams } from "../platform/openapi";
import { PageQuery } from "../platform/pagination";
import { Entity, EntityHistory, EntityList, MeterReadingList } from "./schema";
import * as service from "./service";

const tags = ["Entities"];
const security = [{ tenantToken: [] }];
const read = requireScope("integrations:read");
const MAX_FILTERS = 20;

export const entityRoutes = createRouter();

entityRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/entities/{slug}", tags, security, middleware: [read] as const,
    summary: "Entities of a schema; `?<attribute>=<value>` finds by unique ids (all must match)",
    request: {
      params: pathParams("slug"),
      // Each filter is one join over the identifier index: at most as many as an entity has unique ids.
      query: PageQuery.catchall(z.string().max(1000)).refine((q) => Object.keys(q).filter((k) => k !== "limit" && k !== "cursor").length <= MAX_FILTERS, {
        message: `at most ${MAX_FILTERS} attribute filters`,
      }),
    },
    responses: { 200: json(EntityList, "A page of entities"), ...errors(400, 401, 403, 429) },
  }),
  async (c) => {
    const { limit, cursor, ...filter } = c.req.valid("query");
    const ids = Object.fromEntries(Object.entries(filter).filter((e): e is [string, string] => typeof e[1] === "string"));
    return c.json(await service.findEntities(c.env, callerTenant(c.get("caller")), c.req.valid("param").slug, ids, { limit, cursor }), 200);
  },
);

entityRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/entities/{slug}/{id}", tags, security, middleware: [read] as const, summary: "An entity",
    request: { params: pathParams("slug", "id") },
    responses: { 200: json(Entity, "The entity"), ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    return c.json(await service.getEntity(c.env, callerTenant(c.get("caller")), slug, id), 200);
  },
);

entityRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/entities/{slug}/{id}/history", tags, security, middleware: [read] as const,
    summary: "Every applied change, newest first, with its event id and what changed",
    request: { params: pathParams("slug", "id"), query: PageQuery },
    responses: { 200: json(EntityHistory, "A page of changes"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    return c.json(await service.entityHistory(c.env, callerTenant(c.get("caller")), slug, id, c.req.valid("query")), 200);
  },
);

entityRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/entities/{slug}/{id}/restore", tags, security, middleware: [requireScope("integrations:write")] as const,
    summary: "Restore a soft-deleted entity",
    request: { params: pathParams("slug", "id") },
    responses: { 200: json(Entity, "The entity"), ...errors(401, 403, 404, 429) },
  }),
  async (c) => {
    const { slug, id } = c.req.valid("param");
    return c.json(await service.restoreEntity(c.env, callerTenant(c.get("caller")), slug, id), 200);
  },
);

entityRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/entities/meter/{id}/readings", tags, security, middleware: [read] as const,
    summary: "A meter's readings (matched by external_id)",
    request: { params: pathParams("id"), query: PageQuery },
    responses: { 200: json(MeterReadingList, "A page of readings"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => c.json(await service.listMeterReadings(c.env, callerTenant(c.get("caller")), c.req.valid("param").id, c.req.valid("query")), 200),
);
