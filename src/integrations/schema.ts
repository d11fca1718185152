// Integrations and their embedded use cases, compatible with epilot's /v2/integrations contract.
import { z } from "@hono/zod-openapi";
import { FileProxyConfiguration } from "./file-proxy-configuration";
import { InboundConfiguration } from "../mapping/schema";
import { ManagedCallAuth, ManagedCallConfiguration, SecureProxyConfiguration, TypeAnnotations } from "./managed-call-configuration";
import { OutboundConfiguration } from "./outbound-configuration";
import { PullConfiguration } from "./pull-configuration";
import { NextCursor } from "../platform/pagination";
import { hasPrototypeSegment } from "../platform/paths";

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;

export const EnvironmentConfigEntry = z
  .object({
    // epilot's keys are lowercase and may start with a digit; erp-edge also allows upper case and a leading '_'.
    key: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "letters, digits, '_', '.', '-', not starting with '.' or '-'"),
    label: z.string().trim().min(1).max(255),
    type: z.enum(["String", "SecretString"]),
    required: z.boolean().default(false),
    description: z.string().max(1000).optional(),
    order: z.number().int().min(0).optional().openapi({ description: "Sort order for display (epilot)" }),
  })
  .openapi("EnvironmentConfigEntry");
export type EnvironmentConfigEntry = z.infer<typeof EnvironmentConfigEntry>;

const EnvironmentConfig = z
  .array(EnvironmentConfigEntry)
  .max(100)
  .superRefine((entries, ctx) => {
    const seen = new Set<string>();
    entries.forEach((entry, i) => {
      if (seen.has(entry.key)) ctx.addIssue({ code: "custom", path: [i, "key"], message: `duplicate key '${entry.key}'` });
      seen.add(entry.key);
    });
  });

const Slug = z.string().min(1).max(255).regex(SLUG_PATTERN, "lowercase letters, digits, '_' and '-', starting with a letter or digit");

const useCaseFields = {
  name: z.string().trim().min(1).max(255),
  // Optional as in epilot: derived from the name when absent (unique within the integration).
  slug: Slug.optional(),
  enabled: z.boolean().default(true),
  change_description: z.string().max(2000).optional(),
};

/** What only a managed_call use case carries besides its configuration (epilot's ManagedCallUseCase). */
const managedCallFields = {
  type_annotations: TypeAnnotations.optional(),
  types_locked: z.boolean().optional().openapi({ description: "Whether types have been generated for this use case" }),
};

/** One variant per use-case type over the `fields` all share, each validating `configuration` with the schema its context owns. */
function useCaseVariants<S extends z.ZodRawShape>(fields: S) {
  return z.discriminatedUnion("type", [
    // epilot creates use cases without a configuration; an inbound one without it maps nothing yet ({}).
    z.object({ ...fields, type: z.literal("inbound"), configuration: z.preprocess((v) => (v === undefined ? {} : v), InboundConfiguration) }),
    z.object({ ...fields, type: z.literal("outbound"), configuration: OutboundConfiguration }),
    z.object({ ...fields, type: z.literal("file_proxy"), configuration: FileProxyConfiguration }),
    z.object({ ...fields, type: z.literal("pull"), configuration: PullConfiguration }),
    z.object({ ...fields, ...managedCallFields, type: z.literal("managed_call"), configuration: ManagedCallConfiguration }),
    z.object({ ...fields, type: z.literal("secure_proxy"), configuration: SecureProxyConfiguration }),
  ]);
}

export const UseCaseType = z.enum(["inbound", "outbound", "file_proxy", "pull", "managed_call", "secure_proxy"]);
export type UseCaseType = z.infer<typeof UseCaseType>;

export const UseCaseInput = useCaseVariants(useCaseFields).openapi("UseCaseInput");
export type UseCaseInput = z.infer<typeof UseCaseInput>;

/** Where a use case names an app action: `path` inside the use case, then the app and action named. */
export interface AppActionReference {
  path: (string | number)[];
  app: string;
  action: string;
}

/** The app actions a use case runs: an inbound pre_mapping, each outbound mapping's transform, a pull's action. */
export function appActionReferences(uc: UseCaseInput): AppActionReference[] {
  if (uc.type === "pull") return [{ path: ["configuration", "app"], app: uc.configuration.app, action: uc.configuration.action }];
  if (uc.type === "outbound") {
    return uc.configuration.mappings.flatMap((m, i) => (m.transform ? [{ path: ["configuration", "mappings", i, "transform", "app"], ...m.transform }] : []));
  }
  const pre = uc.type === "inbound" ? (uc.configuration as { pre_mapping?: { app: string; action: string } }).pre_mapping : undefined;
  return pre ? [{ path: ["configuration", "pre_mapping", "app"], app: pre.app, action: pre.action }] : [];
}

/**
 * A partial use-case update (epilot's UpdateUseCaseRequest): every field optional. The fields given
 * replace the stored ones, and the result is validated as a whole with UseCaseInput, so
 * `configuration` is checked against the use case's type.
 */
export const UseCasePatch = z
  .object({
    name: useCaseFields.name.optional(),
    slug: Slug.optional().openapi({ description: "Immutable: may only repeat the stored slug" }),
    enabled: z.boolean().optional(),
    change_description: useCaseFields.change_description,
    type: UseCaseType.optional().openapi({ description: "Changing the type needs a configuration valid for the new type" }),
    configuration: z.record(z.string(), z.unknown()).optional().openapi({ description: "Replaces the whole configuration; validated by the use case's type" }),
    type_annotations: TypeAnnotations.optional(),
  })
  .openapi("UseCasePatch");
export type UseCasePatch = z.infer<typeof UseCasePatch>;

/**
 * In a declarative PUT (and a v2 create): with the `id` of a use case of the integration it updates
 * that use case; with a new id (a UUID) or none it creates one.
 */
export const DeclaredUseCase = useCaseVariants({ ...useCaseFields, id: z.string().min(1).max(64).optional() }).openapi("DeclaredUseCase");
export type DeclaredUseCase = z.infer<typeof DeclaredUseCase>;

export const UseCase = useCaseVariants({
  ...useCaseFields,
  id: z.string(),
  integrationId: z.string().openapi({ description: "The integration the use case belongs to" }),
  slug: Slug,
  created_at: z.string(),
  updated_at: z.string(),
}).openapi("UseCase");
export type UseCase = z.infer<typeof UseCase>;

/** The settings' fields without their defaults: what a partial update (PUT /v1/integrations/{id}) may send. */
const settingsFields = {
  redact_paths: z
    .array(
      z
        .string()
        .max(500)
        .regex(/^(\$\.)?[^.\s]+(\.[^.\s]+)*$/, "a dotted path such as customer.iban or contacts.*.email")
        .refine((path) => !hasPrototypeSegment(path), "must not name __proto__, constructor or prototype"),
    )
    .max(50)
    .openapi({ description: "Payload paths replaced by [REDACTED] in the event log once an event is processed (PII)" }),
  retention_days: z.number().int().min(1).max(365).openapi({ description: "Days events, deliveries and file downloads are kept" }),
  autoRefresh: z
    .object({ enabled: z.boolean().default(false), freshnessThresholdMinutes: z.number().int().min(1).optional() })
    .openapi({ description: "epilot's auto-refresh settings, stored and returned" }),
};

export const IntegrationSettings = z
  .object({
    redact_paths: settingsFields.redact_paths.default([]),
    retention_days: settingsFields.retention_days.default(30),
    autoRefresh: settingsFields.autoRefresh.optional(),
  })
  .openapi("IntegrationSettings");
export type IntegrationSettings = z.infer<typeof IntegrationSettings>;

/**
 * epilot's editable integration fields that erp-edge stores and returns without acting on them
 * (kept together in integrations.epilot_fields).
 */
export const EpilotIntegrationFields = z.object({
  access_token_ids: z.array(z.string().max(255)).max(100).optional(),
  app_ids: z.array(z.string().max(255)).max(100).optional(),
  integration_type: z.enum(["erp", "connector"]).optional().openapi({ description: "erp (inbound/outbound use cases) or connector (proxy integrations); absent means erp" }),
  connector_config: z
    .object({
      base_url: z.string().max(2048).optional(),
      auth: ManagedCallAuth.optional(),
      types_versions: z
        .array(
          z.object({
            version: z.string().max(64),
            package_name: z.string().max(255),
            generated_at: z.string().max(64),
            generated_by: z.string().max(255),
            status: z.enum(["active", "deprecated"]),
          }),
        )
        .max(1000)
        .optional(),
      latest_types_version: z.string().max(64).optional(),
      latest_types_package_name: z.string().max(255).optional(),
    })
    .optional(),
  protected: z.boolean().optional().openapi({ description: "Shown read-only in epilot's UI; erp-edge does not enforce it" }),
  _manifest: z.array(z.string().max(255)).max(100).optional(),
});
export type EpilotIntegrationFields = z.infer<typeof EpilotIntegrationFields>;

const integrationFields = {
  name: z.string().trim().min(1).max(255),
  description: z.string().max(1000).optional(),
  environment_config: EnvironmentConfig.default([]),
  settings: IntegrationSettings.default({ redact_paths: [], retention_days: 30 }),
  ...EpilotIntegrationFields.shape,
};

/** An integration without its use cases: what /v1/integrations answers (epilot's Integration). */
export const IntegrationSummary = z
  .object({
    id: z.string(),
    orgId: z.string().openapi({ description: "The tenant id (epilot's organization)" }),
    ...integrationFields,
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("IntegrationSummary");
export type IntegrationSummary = z.infer<typeof IntegrationSummary>;

/** An integration with its use cases: what /v2/integrations answers (epilot's IntegrationWithUseCases). */
export const Integration = IntegrationSummary.extend({ use_cases: z.array(UseCase) }).openapi("Integration");
export type Integration = z.infer<typeof Integration>;

/** POST and PUT /v2/integrations (epilot's UpsertIntegrationWithUseCasesRequest). */
export const CreateIntegration = z
  .object({ ...integrationFields, use_cases: z.array(DeclaredUseCase).max(100).default([]) })
  .openapi("CreateIntegration");
export type CreateIntegration = z.infer<typeof CreateIntegration>;

export const PutIntegration = CreateIntegration.openapi("PutIntegration");
export type PutIntegration = z.infer<typeof PutIntegration>;

/** POST /v1/integrations (epilot's CreateIntegrationRequest): the integration alone. */
export const CreateIntegrationV1 = z.object(integrationFields).openapi("CreateIntegrationV1");
export type CreateIntegrationV1 = z.infer<typeof CreateIntegrationV1>;

/** PUT /v1/integrations/{id} (epilot's UpdateIntegrationRequest): only the fields given change; use cases are left alone. */
export const IntegrationPatch = z
  .object({
    name: integrationFields.name.optional(),
    description: integrationFields.description,
    environment_config: EnvironmentConfig.optional(),
    settings: z
      .object({ redact_paths: settingsFields.redact_paths.optional(), retention_days: settingsFields.retention_days.optional(), autoRefresh: settingsFields.autoRefresh.optional() })
      .optional()
      .openapi({ description: "The settings given replace the stored ones; the others are kept" }),
    ...EpilotIntegrationFields.shape,
  })
  .openapi("IntegrationPatch");
export type IntegrationPatch = z.infer<typeof IntegrationPatch>;

export const IntegrationSummaryList = z.object({ integrations: z.array(IntegrationSummary), next_cursor: NextCursor }).openapi("IntegrationSummaryList");
export const IntegrationList = z.object({ integrations: z.array(Integration), next_cursor: NextCursor }).openapi("IntegrationList");
export const UseCaseList = z.object({ use_cases: z.array(UseCase), next_cursor: NextCursor }).openapi("UseCaseList");

/**
 * One change to a use case. epilot's fields (the use case as it was then, flat: useCaseId,
 * integrationId, name, slug, type, enabled, configuration, change_description, created_at,
 * updated_at, history_created_at) sit beside erp-edge's (use_case_id, action, changed_by,
 * changed_at and the same state as `snapshot`).
 */
export const UseCaseHistoryEntry = z
  .object({
    id: z.string(),
    useCaseId: z.string(),
    integrationId: z.string(),
    name: z.string(),
    slug: z.string().optional(),
    type: UseCaseType,
    enabled: z.boolean(),
    configuration: z.unknown().optional(),
    type_annotations: TypeAnnotations.optional(),
    types_locked: z.boolean().optional(),
    change_description: z.string().optional(),
    created_at: z.string(),
    updated_at: z.string(),
    history_created_at: z.string(),
    use_case_id: z.string(),
    action: z.enum(["created", "updated", "deleted"]),
    changed_by: z.string(),
    changed_at: z.string(),
    snapshot: UseCase,
  })
  .openapi("UseCaseHistoryEntry");
export type UseCaseHistoryEntry = z.infer<typeof UseCaseHistoryEntry>;
export const UseCaseHistory = z
  .object({ history: z.array(UseCaseHistoryEntry), next_cursor: z.string().optional().openapi({ description: "Pass as `cursor` for the next page; absent on the last page (as in epilot)" }) })
  .openapi("UseCaseHistory");

/** `{ "<key>": "<value>" }`; null removes a value. Keys must be declared in environment_config. */
export const EnvironmentValues = z
  .record(z.string().max(128), z.string().max(10_000).nullable())
  .openapi("EnvironmentValues", { example: { API_URL: "https://erp.example.com", API_KEY: "s3cr3t" } });
export type EnvironmentValues = z.infer<typeof EnvironmentValues>;

export const MASK = "********";

/** What epilot's DELETEs answer (200). */
export const DeletedMessage = z.object({ message: z.string() }).openapi("DeletedMessage");

// ---- app mapping (epilot: an integration app's component points at one integration) ----------

export const SetAppMapping = z
  .object({
    app_id: z.string().uuid(),
    component_id: z.string().uuid(),
    overwrite: z.boolean().default(false).openapi({ description: "Replace an existing mapping of this app component instead of answering 409" }),
  })
  .openapi("SetIntegrationAppMappingRequest");
export type SetAppMapping = z.infer<typeof SetAppMapping>;

export const DeleteAppMapping = SetAppMapping.pick({ app_id: true, component_id: true }).openapi("DeleteIntegrationAppMappingRequest");
export type DeleteAppMapping = z.infer<typeof DeleteAppMapping>;

export const AppMapping = z
  .object({
    integration_id: z.string(),
    app_id: z.string(),
    component_id: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("IntegrationAppMapping");
export type AppMapping = z.infer<typeof AppMapping>;

// ---- optimistic concurrency (our addition to the epilot contract; bodies and statuses unchanged) --

/** The request header of a conditional PUT or DELETE (`if-match`: Hono reads header names in lower case); without it the write is unconditional. */
export const IfMatchHeader = z.object({
  "if-match": z
    .string()
    .optional()
    .openapi({
      description: "The ETag of the version this change was based on (or `*`). A stale one is refused with 412 PRECONDITION_FAILED and nothing changes; without the header the write is unconditional.",
      example: '"01JD8Q3V6Y2X9R4M7K5N0P1S2T.3"',
    }),
});

/** The response header naming the version returned (a strong validator for If-Match). */
export const ETagHeader = z.object({
  ETag: z.string().openapi({ description: "Strong validator of the representation returned: send it back as If-Match to change exactly this version", example: '"01JD8Q3V6Y2X9R4M7K5N0P1S2T.3"' }),
});
