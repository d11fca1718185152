// Requests and answers of /v1/blueprints/*: trust, install, upgrade, rollback, removal and their plans.
import { z } from "@hono/zod-openapi";
import { PACKAGE_NAME_PATTERN, PUBLISHER_PATTERN } from "../../apps-sdk/src/blueprint/manifest";
import { NextCursor } from "../platform/pagination";
import { LATEST } from "../registry/resolution";
import { VersionSpec } from "../registry/schema";
import { booleanQuery } from "../platform/openapi";

import { PLATFORM_PUBLISHER } from "../registry/trust";

export { PLATFORM_PUBLISHER };

export const Publisher = z.string().max(40).regex(PUBLISHER_PATTERN, "a publisher scope such as @acme (lower case)").openapi({ example: "@acme" });
export const BlueprintName = z.string().max(104).regex(PACKAGE_NAME_PATTERN, "a scoped name such as @acme/sap-customers (lower case)").openapi({ example: "@acme/sap-customers" });

const EnvironmentInput = z
  .record(z.string().min(1).max(128), z.string().max(10_000))
  .openapi({ description: "Values of the blueprint's environment keys; SecretString values are encrypted and never shown again", example: { ERP_URL: "https://erp.example.com" } });

export const TrustList = z
  .object({ publishers: z.array(Publisher).max(100).openapi({ description: `Publishers whose blueprints may be installed; ${PLATFORM_PUBLISHER} is always included` }) })
  .strict()
  .openapi("BlueprintTrust");
export type TrustList = z.infer<typeof TrustList>;

export const InstallRequest = z
  .object({
    name: BlueprintName,
    version: VersionSpec.default(LATEST),
    environment: EnvironmentInput.default({}),
    dry_run: z.boolean().default(false).openapi({ description: "Answer the plan only; nothing is written" }),
  })
  .strict()
  .openapi("BlueprintInstallRequest");
export type InstallRequest = z.infer<typeof InstallRequest>;

export const UpgradeRequest = z
  .object({
    version: VersionSpec.default(LATEST),
    environment: EnvironmentInput.default({}).openapi({ description: "Values to set or replace; keys not given keep their values" }),
    dry_run: z.boolean().default(false),
    accept_breaking: z.boolean().default(false).openapi({ description: "Required to cross a major version; without it the breaking-change notes come back with 409" }),
  })
  .strict()
  .openapi("BlueprintUpgradeRequest");
export type UpgradeRequest = z.infer<typeof UpgradeRequest>;

export const RollbackRequest = z
  .object({
    dry_run: z.boolean().default(false),
    force: z.boolean().default(false).openapi({ description: "Also remove use cases the tenant added since the step being undone (refused with 409 otherwise)" }),
  })
  .strict()
  .openapi("BlueprintRollbackRequest");

export const UninstallQuery = z.object({
  force: booleanQuery.openapi({ description: "Also remove use cases the tenant added to the blueprint's integrations (refused with 409 otherwise)" }),
  dry_run: booleanQuery.openapi({ description: "Answer the plan only; nothing is removed" }),
});

/** `/v1/blueprints/installed/{scope}/{name}`: the package name's two halves. */
export const InstalledParams = z.object({
  scope: Publisher.openapi({ param: { name: "scope", in: "path" }, example: "@acme" }),
  name: z
    .string()
    .max(64)
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "the package name after the scope, e.g. sap-customers")
    .openapi({ param: { name: "name", in: "path" }, example: "sap-customers" }),
});

const FieldChange = z.object({ path: z.string(), from: z.unknown(), to: z.unknown() }).openapi("BlueprintFieldChange");
const FieldConflict = z
  .object({ path: z.string(), base: z.unknown(), current: z.unknown(), incoming: z.unknown() })
  .openapi("BlueprintFieldConflict", { description: "Both the tenant and the new version changed this field, differently: the tenant's value (current) is kept" });

export const PlanEntry = z
  .object({
    resource: z.enum(["integration", "use_case", "environment", "app"]),
    key: z.string().openapi({ description: "integration: its blueprint slug; use_case: `<integration slug>/<use case slug>`; environment: the key; app: the package name" }),
    action: z.enum(["create", "update", "no-op", "delete", "conflict"]),
    diff: z.object({ changes: z.array(FieldChange).optional(), conflicts: z.array(FieldConflict).optional() }).optional(),
  })
  .openapi("BlueprintPlanEntry");

const ResourceRefs = z.object({
  integrations: z.array(z.object({ slug: z.string(), id: z.string() })),
  use_cases: z.array(z.object({ key: z.string(), id: z.string() })),
});

export const Installation = z
  .object({
    name: z.string(),
    version: z.string(),
    digest: z.string(),
    installed_at: z.string(),
    installed_by: z.string().openapi({ description: "'token:<id>' of the token that installed it, or 'admin'" }),
    updated_at: z.string(),
    updated_by: z.string(),
    resources: ResourceRefs.openapi({ description: "What the install owns (created, and removes on uninstall)" }),
  })
  .openapi("BlueprintInstallation");
export type Installation = z.infer<typeof Installation>;

export const InstallationStep = z.object({
  action: z.enum(["installed", "upgraded"]),
  version: z.string(),
  digest: z.string(),
  from_version: z.string().nullable(),
  changed_at: z.string(),
  changed_by: z.string(),
});

export const InstallationDetail = Installation.extend({
  history: z.array(InstallationStep).openapi({ description: "The steps a rollback can undo, newest first (the last 20 are kept)" }),
}).openapi("BlueprintInstallationDetail");

export const InstallationList = z.object({ installed: z.array(Installation), next_cursor: NextCursor }).openapi("BlueprintInstallationList");

const VersionRef = z.object({ version: z.string(), digest: z.string() });

export const PlanResult = z
  .object({
    name: z.string(),
    version: z.string().nullable().openapi({ description: "The version installed after this change (null once removed)" }),
    digest: z.string().nullable(),
    from: VersionRef.nullable().openapi({ description: "The version installed before (null for a first install)" }),
    dry_run: z.boolean(),
    plan: z.array(PlanEntry),
    warnings: z.array(z.string()),
    installation: Installation.nullable().openapi({ description: "The installation after the change; null for a dry run and once removed" }),
  })
  .openapi("BlueprintPlanResult");
export type PlanResult = z.infer<typeof PlanResult>;
