// The blueprint package format: `blueprint.json`, validated by one zod schema shared by the CLI, the
// registry (at publish) and the host (at install). docs/registry.md describes it for publishers.
import semver from "semver";
import { z } from "zod";

/** `@publisher/name`: npm's scoped-name shape, lower case. */
export const PACKAGE_NAME_PATTERN = /^@[a-z0-9][a-z0-9-]{0,38}\/[a-z0-9][a-z0-9._-]{0,63}$/;
export const PUBLISHER_PATTERN = /^@[a-z0-9][a-z0-9-]{0,38}$/;
/** The slug shape of integrations and use cases (as in the host's integrations schema). */
const SLUG_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
const PROTOTYPE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

export const PackageName = z.string().max(104).regex(PACKAGE_NAME_PATTERN, "a scoped name such as @acme/sap-customers (lower case)");
export const PublisherName = z.string().max(40).regex(PUBLISHER_PATTERN, "a scope such as @acme (lower case)");

/** An exact version, in canonical form (`1.2.0`, `2.0.0-beta.1`): what a package is published as. */
export const ExactVersion = z
  .string()
  .max(64)
  .refine((v) => semver.valid(v) === v, "an exact semantic version such as 1.2.0");

/** A range as npm writes them (`^1.2.0`, `~1`, `>=1 <3`, `1.2.0`, `*`). */
export const VersionRange = z
  .string()
  .min(1)
  .max(128)
  .refine((r) => semver.validRange(r) !== null, "a semantic version range such as ^1.2.0");

const Slug = z.string().min(1).max(128).regex(SLUG_PATTERN, "lowercase letters, digits, '_' and '-', starting with a letter or digit");
const Markdown = (max: number) => z.string().max(max);

/** `{ "$file": "mappings/customers.json" }`: the configuration lives in another file of the package. */
export const FileReference = z.object({ $file: z.string().min(1).max(255) }).strict();
export type FileReference = z.infer<typeof FileReference>;
export const isFileReference = (v: unknown): v is FileReference =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { $file?: unknown }).$file === "string";

const Configuration = z.union([FileReference, z.record(z.string(), z.unknown())]);

export const EnvironmentEntry = z
  .object({
    key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, "letters, digits, '_', '.', '-', starting with a letter or '_'"),
    label: z.string().trim().min(1).max(255),
    type: z.enum(["String", "SecretString"]),
    required: z.boolean().default(false),
    description: z.string().max(1000).optional(),
  })
  .strict();
export type EnvironmentEntry = z.infer<typeof EnvironmentEntry>;

export const BlueprintUseCase = z
  .object({
    slug: Slug,
    name: z.string().trim().min(1).max(255),
    type: z.enum(["inbound", "outbound", "file_proxy", "pull"]).describe("pull: an app action run on a schedule, its events entering through an inbound use case of the same integration"),
    enabled: z.boolean().optional(),
    configuration: Configuration,
  })
  .strict();
export type BlueprintUseCase = z.infer<typeof BlueprintUseCase>;

export const BlueprintIntegration = z
  .object({
    slug: Slug.describe("Ties the installed integration to this blueprint across upgrades"),
    name: z.string().trim().min(1).max(255),
    description: z.string().max(1000).optional(),
    use_cases: z.array(BlueprintUseCase).max(100),
  })
  .strict();
export type BlueprintIntegration = z.infer<typeof BlueprintIntegration>;

export const AppRequirement = z
  .object({
    name: PackageName,
    version: VersionRange,
    grants: z
      .object({ hosts: z.array(z.string().min(1).max(253)).max(20).default([]) })
      .strict()
      .optional(),
  })
  .strict();

export const BlueprintManifest = z
  .object({
    $schema: z.string().max(500).optional(),
    name: PackageName,
    version: ExactVersion,
    title: z.string().trim().min(1).max(200),
    description: z
      .object({
        summary: Markdown(1000).min(1),
        preinstall: Markdown(20_000).optional(),
        postinstall: Markdown(20_000).optional(),
      })
      .strict(),
    keywords: z.array(z.string().min(1).max(50)).max(20).optional(),
    engines: z.object({ "erp-edge": VersionRange }).strict(),
    requires: z.record(PackageName, VersionRange).optional(),
    environment: z.array(EnvironmentEntry).max(100).default([]),
    integrations: z.array(BlueprintIntegration).max(20).default([]),
    apps: z.array(AppRequirement).max(20).optional(),
    breaking_changes: z.record(z.string().regex(/^(0|[1-9][0-9]{0,5})$/, "a major version number"), Markdown(20_000)).optional(),
    fixtures: z.string().min(1).max(255).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const unique = (values: string[], path: (i: number) => (string | number)[], what: string) => {
      const seen = new Set<string>();
      values.forEach((v, i) => {
        if (seen.has(v)) ctx.addIssue({ code: "custom", path: path(i), message: `duplicate ${what} '${v}'` });
        seen.add(v);
      });
    };
    unique(m.environment.map((e) => e.key), (i) => ["environment", i, "key"], "environment key");
    unique(m.integrations.map((x) => x.slug), (i) => ["integrations", i, "slug"], "integration slug");
    m.integrations.forEach((integration, n) =>
      unique(integration.use_cases.map((u) => u.slug), (i) => ["integrations", n, "use_cases", i, "slug"], "use case slug"),
    );
    for (const key of Object.keys(m.requires ?? {})) {
      if (key === m.name) ctx.addIssue({ code: "custom", path: ["requires", key], message: "a package cannot require itself" });
    }
    for (const [i, key] of Object.keys(m.breaking_changes ?? {}).entries()) {
      if (PROTOTYPE_KEYS.has(key)) ctx.addIssue({ code: "custom", path: ["breaking_changes", i], message: "not a major version" });
    }
  });
export type BlueprintManifest = z.infer<typeof BlueprintManifest>;
export type BlueprintManifestInput = z.input<typeof BlueprintManifest>;

/** The manifest file's name at the root of a blueprint folder or archive. */
export const MANIFEST_FILE = "blueprint.json";

/** The package format as a JSON Schema (draft 2020-12), served at /v1/registry/schema/blueprint.json. */
export function blueprintJsonSchema(): Record<string, unknown> {
  return {
    ...(z.toJSONSchema(BlueprintManifest, { io: "input", unrepresentable: "any" }) as Record<string, unknown>),
    $id: "https://erp-edge.dev/schema/blueprint.json",
    title: "erp-edge blueprint manifest (blueprint.json)",
  };
}

/** One problem in a package, named by file and JSON path (`integrations.0.use_cases.1.slug`). */
export interface PackageIssue {
  file: string;
  path: string;
  message: string;
}

/** Thrown when a package's files are unusable; `code` is what the HTTP layers answer with. */
export class PackageError extends Error {
  constructor(
    readonly code: "INVALID_PACKAGE" | "PACKAGE_TOO_LARGE",
    message: string,
    readonly issues: PackageIssue[] = [],
  ) {
    super(message);
    this.name = "PackageError";
  }
}

const joinPath = (path: PropertyKey[]) => path.map(String).join(".");

/** Validates a parsed `blueprint.json`; PackageError listing every issue by path otherwise. */
export function parseManifest(value: unknown, file = MANIFEST_FILE): BlueprintManifest {
  const parsed = BlueprintManifest.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ file, path: joinPath(i.path), message: i.message }));
    throw new PackageError("INVALID_PACKAGE", `${file} is not a valid blueprint manifest`, issues);
  }
  return parsed.data;
}
