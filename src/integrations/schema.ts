// Integrations and their embedded use cases, compatible with epilot's /v2/integrations contract.
import { z } from "@hono/zod-openapi";
import { FileProxyConfiguration } from "./file-proxy-configuration";
import { InboundConfiguration } from "../mapping/schema";
import { OutboundConfiguration } from "./outbound-configuration";
import { PullConfiguration } from "./pull-configuration";
import { NextCursor } from "../platform/pagination";
import { hasPrototypeSegment } from "../platform/paths";

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;

export const EnvironmentConfigEntry = z
  .object({
    key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, "letters, digits, '_', '.', '-', starting with a letter or '_'"),
    label: z.string().trim().min(1).max(255),
    type: z.enum(["String", "SecretString"]),
    required: z.boolean().default(false),
    description: z.string().max(1000).optional(),
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

const useCaseFields = {
  name: z.string().trim().min(1).max(255),
  slug: z.string().max(128).regex(SLUG_PATTERN, "lowercase letters, digits, '_' and '-', starting with a letter or digit"),
  enabled: z.boolean().default(true),
  change_description: z.string().max(1000).optional(),
};

/** One variant per use-case type, each validating `configuration` with the schema its context owns. */
function useCaseVariants<S extends z.ZodRawShape>(extra: S) {
  return z.discriminatedUnion("type", [
    z.object({ ...useCaseFields, ...extra, type: z.literal("inbound"), configuration: InboundConfiguration }),
    z.object({ ...useCaseFields, ...extra, type: z.literal("outbound"), configuration: OutboundConfiguration }),
    z.object({ ...useCaseFields, ...extra, type: z.literal("file_proxy"), configuration: FileProxyConfiguration }),
    z.object({ ...useCaseFields, ...extra, type: z.literal("pull"), configuration: PullConfiguration }),
  ]);
}

export const UseCaseType = z.enum(["inbound", "outbound", "file_proxy", "pull"]);
export type UseCaseType = z.infer<typeof UseCaseType>;

export const UseCaseInput = useCaseVariants({}).openapi("UseCaseInput");
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

/** In a declarative PUT: with `id` it updates that use case, without it creates one. */
export const DeclaredUseCase = useCaseVariants({ id: z.string().min(1).max(64).optional() }).openapi("DeclaredUseCase");
export type DeclaredUseCase = z.infer<typeof DeclaredUseCase>;

export const UseCase = useCaseVariants({ id: z.string(), created_at: z.string(), updated_at: z.string() }).openapi("UseCase");
export type UseCase = z.infer<typeof UseCase>;

export const IntegrationSettings = z
  .object({
    redact_paths: z
      .array(
        z
          .string()
          .max(500)
          .regex(/^(\$\.)?[^.\s]+(\.[^.\s]+)*$/, "a dotted path such as customer.iban or contacts.*.email")
          .refine((path) => !hasPrototypeSegment(path), "must not name __proto__, constructor or prototype"),
      )
      .max(50)
      .default([])
      .openapi({ description: "Payload paths replaced by [REDACTED] in the event log once an event is processed (PII)" }),
    retention_days: z.number().int().min(1).max(365).default(30).openapi({ description: "Days events, deliveries and file downloads are kept" }),
  })
  .openapi("IntegrationSettings");
export type IntegrationSettings = z.infer<typeof IntegrationSettings>;

const integrationFields = {
  name: z.string().trim().min(1).max(255),
  description: z.string().max(1000).optional(),
  environment_config: EnvironmentConfig.default([]),
  settings: IntegrationSettings.default({ redact_paths: [], retention_days: 30 }),
};

export const Integration = z
  .object({
    id: z.string(),
    ...integrationFields,
    use_cases: z.array(UseCase),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Integration");
export type Integration = z.infer<typeof Integration>;

export const CreateIntegration = z
  .object({ ...integrationFields, use_cases: z.array(UseCaseInput).max(100).default([]) })
  .openapi("CreateIntegration");
export type CreateIntegration = z.infer<typeof CreateIntegration>;

export const PutIntegration = z
  .object({ ...integrationFields, use_cases: z.array(DeclaredUseCase).max(100).default([]) })
  .openapi("PutIntegration");
export type PutIntegration = z.infer<typeof PutIntegration>;

export const IntegrationList = z.object({ integrations: z.array(Integration), next_cursor: NextCursor }).openapi("IntegrationList");
export const UseCaseList = z.object({ use_cases: z.array(UseCase), next_cursor: NextCursor }).openapi("UseCaseList");

export const UseCaseHistoryEntry = z
  .object({
    id: z.string(),
    use_case_id: z.string(),
    action: z.enum(["created", "updated", "deleted"]),
    change_description: z.string().nullable(),
    changed_by: z.string(),
    changed_at: z.string(),
    snapshot: UseCase,
  })
  .openapi("UseCaseHistoryEntry");
export type UseCaseHistoryEntry = z.infer<typeof UseCaseHistoryEntry>;
export const UseCaseHistory = z.object({ history: z.array(UseCaseHistoryEntry), next_cursor: NextCursor }).openapi("UseCaseHistory");

/** `{ "<key>": "<value>" }`; null removes a value. Keys must be declared in environment_config. */
export const EnvironmentValues = z
  .record(z.string().max(128), z.string().max(10_000).nullable())
  .openapi("EnvironmentValues", { example: { API_URL: "https://erp.example.com", API_KEY: "s3cr3t" } });
export type EnvironmentValues = z.infer<typeof EnvironmentValues>;

export const MASK = "********";

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
