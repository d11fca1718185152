// Configuration of inbound use cases: epilot's mapping configuration v2 (and the legacy v1.0 form,
// converted to v2). Every JSONata expression is compiled when the configuration is validated, so a
// broken mapping is refused when it is saved, not when the first event arrives.
import { z } from "@hono/zod-openapi";
import { AppActionRef } from "../platform/app-ref";
import { assertParses, ExpressionError } from "./expression";
import { hasPrototypeSegment, isPrototypeKey } from "../platform/paths";

const Expression = z.string().min(1).max(50_000).openapi({ description: "A JSONata expression" });
/** `true`/`false`, or a JSONata predicate; absent means enabled. */
const Predicate = z.union([z.boolean(), Expression]);
// Attribute names become object keys: the prototype keys are refused so no mapping can set one.
const Attribute = z.string().min(1).max(255).refine((name) => !isPrototypeKey(name), "must not be __proto__, constructor or prototype");
const SchemaSlug = z.string().regex(/^[a-z][a-z0-9_]*$/, "lowercase letters, digits and '_'").max(64);
const UseCaseSlug = z.string().max(128).regex(/^[a-z0-9][a-z0-9_-]*$/);

/** Where a value comes from, by priority: `constant` > `jsonataExpression` > `field`. */
const valueSource = {
  constant: z.unknown().optional(),
  jsonataExpression: Expression.optional(),
  field: z
    .string()
    .min(1)
    .max(1000)
    .refine((path) => !hasPrototypeSegment(path), "must not name __proto__, constructor or prototype")
    .optional()
    .openapi({ description: "A key of the payload, or a path when it starts with `$.`" }),
};
export type ValueSource = { constant?: unknown; jsonataExpression?: string; field?: string };

export const hasValueSource = (s: ValueSource) => s.constant !== undefined || s.jsonataExpression !== undefined || s.field !== undefined;
const needsSource = { message: "needs one of constant, jsonataExpression or field" };

export const UniqueIdSource = z
  .object({ attribute: Attribute, ...valueSource })
  .refine(hasValueSource, needsSource)
  .openapi("UniqueIdSource");
export type UniqueIdSource = z.infer<typeof UniqueIdSource>;

export const RelationOperation = z.enum(["_set", "_append", "_append_all"]);

export const RelationItem = z
  .object({
    entity_schema: SchemaSlug,
    _tags: z.array(z.string().max(255)).max(50).optional(),
    unique_ids: z.array(UniqueIdSource).min(1).max(20),
  })
  .openapi("RelationItem");

export const Relations = z
  .union([
    z.object({ operation: RelationOperation, items: z.array(RelationItem).min(1).max(100) }),
    z.object({
      operation: RelationOperation,
      jsonataExpression: Expression.openapi({
        description: "Yields [{ entity_schema, unique_ids: { <attribute>: <value> }, _tags? }]",
      }),
    }),
  ])
  .openapi("Relations");
export type Relations = z.infer<typeof Relations>;

/** Query names a file-proxy download URL uses itself; no parameter of a use case may take one. */
export const RESERVED_FILE_PARAMS: ReadonlySet<string> = new Set(["integration_id", "use_case_slug", "exp", "sig"]);

export const FileProxyUrl = z
  .object({
    use_case_slug: UseCaseSlug,
    params: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/)
          .refine((n) => !RESERVED_FILE_PARAMS.has(n) && !isPrototypeKey(n), "integration_id, use_case_slug, exp and sig are the URL's own"),
        z.object(valueSource).refine(hasValueSource, needsSource),
      )
      .default({}),
  })
  .openapi("FileProxyUrl");
export type FileProxyUrl = z.infer<typeof FileProxyUrl>;

export const FieldMapping = z
  .object({
    attribute: Attribute,
    ...valueSource,
    _type: z.enum(["email", "phone"]).optional().openapi({ description: "Wraps a scalar as [{ email }] / [{ phone }]" }),
    enabled: Predicate.optional(),
    relations: Relations.optional(),
    file_proxy_url: FileProxyUrl.optional(),
  })
  .refine((f) => hasValueSource(f) || f.relations !== undefined || f.file_proxy_url !== undefined, {
    message: "needs one of constant, jsonataExpression, field, relations or file_proxy_url",
  })
  .openapi("FieldMapping");
export type FieldMapping = z.infer<typeof FieldMapping>;

export const EntityMapping = z
  .object({
    entity_schema: SchemaSlug,
    unique_ids: z.array(Attribute).min(1).max(20).openapi({ description: "Attributes matched together to find the entity" }),
    jsonataExpression: Expression.optional().openapi({ description: "Pre-processes the payload; an array yields one entity per element" }),
    enabled: Predicate.optional(),
    condition: Predicate.optional().openapi({ description: "Alias of enabled (published mappings use it); both must hold" }),
    mode: z.enum(["upsert", "delete", "purge"]).default("upsert"),
    fields: z.array(FieldMapping).max(500).default([]),
  })
  .openapi("EntityMapping");
export type EntityMapping = z.infer<typeof EntityMapping>;

const EntityReference = z.object({
  unique_ids: z
    .array(z.union([Attribute, UniqueIdSource]))
    .min(1)
    .openapi({ description: "Sources of the referenced entity's unique ids; a plain string reads the payload key of that name" }),
});

export const MeterReadingMapping = z
  .object({
    jsonataExpression: Expression.optional(),
    meter: EntityReference,
    meter_counter: EntityReference.optional(),
    fields: z.array(FieldMapping).min(1).max(500),
    mode: z.enum(["upsert", "delete"]).default("upsert"),
  })
  .openapi("MeterReadingMapping");
export type MeterReadingMapping = z.infer<typeof MeterReadingMapping>;

/** How a signed webhook reaches this use case (POST /v1/webhooks/{integration_id}/{use_case_slug}). */
export const WebhookConfig = z
  .object({
    secret_env: z.string().min(1).max(128).openapi({ description: "Key of a SecretString environment value holding the signing secret" }),
    event_name: Expression.default("event").openapi({ description: "JSONata over the body giving the event name (default: the `event` field)" }),
    scheme: z.enum(["x-signature", "standard-webhooks"]).optional().openapi({ description: "Accepted signature scheme; default: either" }),
  })
  .openapi("WebhookConfig");
export type WebhookConfig = z.infer<typeof WebhookConfig>;

const MappingV2 = z
  .object({
    entities: z.array(EntityMapping).max(100).default([]),
    meter_readings: z.array(MeterReadingMapping).max(100).default([]),
    event_names: z
      .array(z.string().min(1).max(255))
      .max(100)
      .optional()
      .openapi({ description: "Events posted with one of these event_name values (and no use_case_slug) are routed here" }),
    webhook: WebhookConfig.optional(),
    pre_mapping: AppActionRef.optional().openapi({
      description: "An app action that receives the parsed payload and returns what the mapping reads; if it throws, the event fails with its message",
    }),
  })
  // Keys owned by later work live beside the mapping.
  .loose();

// ---- legacy v1.0 ------------------------------------------------------------------------------

const LegacyField = z
  .object({ entity: SchemaSlug, attribute: Attribute, field: z.string().min(1).optional(), jsonataExpression: Expression.optional() })
  .refine((f) => f.field !== undefined || f.jsonataExpression !== undefined, { message: "needs field or jsonataExpression" });

const LegacyUniqueIds = z.array(Attribute).min(1).max(20);
/** epilot's map form of an entity's unique ids: payload key (remote) to entity attribute (local). */
const LegacyUniqueIdMap = z
  .record(z.string().min(1).max(1000).refine((key) => !hasPrototypeSegment(key), "must not name __proto__, constructor or prototype"), Attribute)
  .refine((map) => Object.keys(map).length > 0, "needs at least one unique id");

const LegacyObject = z.object({
  unique_ids: z.union([LegacyUniqueIds, z.record(SchemaSlug, z.union([LegacyUniqueIds, LegacyUniqueIdMap]))]),
  fields: z.array(LegacyField).min(1).max(500),
});

export const LegacyMappingV1 = z
  .object({
    // epilot's IntegrationConfigurationV1 defaults the version to "1.0"; erp-edge's use cases name it.
    version: z.literal("1.0"),
    mapping: z.object({ objects: z.record(z.string().min(1), LegacyObject) }),
  })
  .openapi("LegacyMappingV1");
export type LegacyMappingV1 = z.infer<typeof LegacyMappingV1>;

/**
 * v1.0 to v2: each object type's fields are grouped by `entity` into one v2 entity, whose unique ids
 * are the object's list (or its entry for that entity). With `objectType`, only that object.
 */
export function convertLegacyMapping(legacy: LegacyMappingV1, objectType?: string): z.input<typeof MappingV2> {
  const objects = Object.entries(legacy.mapping.objects).filter(([name]) => objectType === undefined || name === objectType);
  const entities = objects.flatMap(([, object]) => {
    const bySchema = new Map<string, z.input<typeof FieldMapping>[]>();
    for (const { entity, attribute, field, jsonataExpression } of object.fields) {
      const list = bySchema.get(entity) ?? [];
      list.push(jsonataExpression !== undefined ? { attribute, jsonataExpression } : { attribute, field });
      bySchema.set(entity, list);
    }
    // An entity named only in the map form of unique_ids still gets its unique-id fields.
    if (!Array.isArray(object.unique_ids)) for (const schema of Object.keys(object.unique_ids)) if (!bySchema.has(schema)) bySchema.set(schema, []);
    return [...bySchema].map(([schema, fields]) => {
      const ids = Array.isArray(object.unique_ids) ? object.unique_ids : (object.unique_ids[schema] ?? []);
      if (Array.isArray(ids)) return { entity_schema: schema, unique_ids: ids, fields };
      // Map form: each remote key is read from the payload into its local attribute, unless a field sets it.
      const idFields = Object.entries(ids)
        .filter(([, local]) => !fields.some((f) => f.attribute === local))
        .map(([remote, local]) => ({ attribute: local, field: remote }));
      return { entity_schema: schema, unique_ids: Object.values(ids), fields: [...idFields, ...fields] };
    });
  });
  return { entities };
}

/**
 * epilot's v2.0 mapping configuration for the v1 simulation: one inbound configuration per event
 * name, under `mapping.events`. Each is validated as an InboundConfiguration when it is simulated.
 */
export const MappingConfigurationV2Events = z
  .object({
    version: z.literal("2.0"),
    mapping: z.object({ events: z.record(z.string().min(1).max(255), z.unknown()) }),
  })
  .openapi("IntegrationConfigurationV2");

// ---- expression checks ------------------------------------------------------------------------

type Path = (string | number)[];

/** Every JSONata text in a v2 configuration with its path, for compile checks. */
export function expressionsOf(config: z.infer<typeof MappingV2>): { path: Path; text: string }[] {
  const out: { path: Path; text: string }[] = [];
  const add = (path: Path, text: unknown) => {
    if (typeof text === "string") out.push({ path, text });
  };
  const fields = (base: Path, list: FieldMapping[]) =>
    list.forEach((f, i) => {
      const p = [...base, "fields", i];
      add([...p, "jsonataExpression"], f.jsonataExpression);
      add([...p, "enabled"], f.enabled);
      if (f.relations && "jsonataExpression" in f.relations) add([...p, "relations", "jsonataExpression"], f.relations.jsonataExpression);
      if (f.relations && "items" in f.relations) {
        f.relations.items.forEach((item, j) =>
          item.unique_ids.forEach((u, k) => add([...p, "relations", "items", j, "unique_ids", k, "jsonataExpression"], u.jsonataExpression)),
        );
      }
      for (const [name, src] of Object.entries(f.file_proxy_url?.params ?? {})) add([...p, "file_proxy_url", "params", name, "jsonataExpression"], src.jsonataExpression);
    });
  config.entities.forEach((e, i) => {
    const p: Path = ["entities", i];
    add([...p, "jsonataExpression"], e.jsonataExpression);
    add([...p, "enabled"], e.enabled);
    add([...p, "condition"], e.condition);
    fields(p, e.fields);
  });
  add(["webhook", "event_name"], config.webhook?.event_name);
  config.meter_readings.forEach((m, i) => {
    const p: Path = ["meter_readings", i];
    add([...p, "jsonataExpression"], m.jsonataExpression);
    for (const ref of ["meter", "meter_counter"] as const) {
      m[ref]?.unique_ids.forEach((u, k) => typeof u === "object" && add([...p, ref, "unique_ids", k, "jsonataExpression"], u.jsonataExpression));
    }
    fields(p, m.fields);
  });
  return out;
}

function checkExpressions(config: z.infer<typeof MappingV2>, ctx: z.RefinementCtx) {
  for (const { path, text } of expressionsOf(config)) {
    try {
      assertParses(text);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      ctx.addIssue({
        code: "custom",
        path,
        message: `JSONata ${err.code} at position ${err.position ?? 0}: ${err.message}`,
        params: { jsonata_code: err.code, position: err.position ?? 0 },
      });
    }
  }
}

/** An inbound use case's configuration: v2, or legacy v1.0 converted to v2. */
export const InboundConfiguration = z
  .preprocess(
    (input) => {
      if (input && typeof input === "object" && (input as { version?: unknown }).version === "1.0") {
        const legacy = LegacyMappingV1.safeParse(input);
        // An invalid legacy config falls through unconverted and fails below with v1 paths.
        return legacy.success ? convertLegacyMapping(legacy.data) : input;
      }
      return input;
    },
    MappingV2.superRefine((config, ctx) => {
      if ((config as { version?: unknown }).version === "1.0") {
        const legacy = LegacyMappingV1.safeParse(config);
        if (!legacy.success) for (const issue of legacy.error.issues) ctx.addIssue({ ...issue, code: "custom", message: issue.message });
        return;
      }
      checkExpressions(config, ctx);
    }),
  )
  .openapi("InboundConfiguration", {
    description: "Mapping configuration v2 ({ entities, meter_readings }) or legacy v1.0 ({ version: '1.0', mapping: { objects } })",
  });
export type InboundConfiguration = z.infer<typeof MappingV2>;
export const MappingConfigurationV2 = MappingV2;
