// The registry's API as the host documents and checks it before forwarding: path and query
// parameters, request bodies, and the answers (the shapes of client.ts, for the OpenAPI document).
import { z } from "@hono/zod-openapi";
import { ExactVersion, PUBLISHER_PATTERN } from "../../apps-sdk/src/blueprint/manifest";
import { PublicKeyJwk as PublicKeyJwkSchema } from "../../apps-sdk/src/blueprint/signing";
import { NextCursor } from "../platform/pagination";
import { isVersionSpec } from "./resolution";

/** What an install may ask for: blueprints (POST /v1/blueprints/install) and apps (POST /v1/apps/install) alike. */
export const VersionSpec = z
  .string()
  .min(1)
  .max(128)
  .refine(isVersionSpec, "'latest', an exact version such as 1.2.0, or a range such as ^1.2.0")
  .openapi({ description: "'latest' (the dist tag), an exact version (installs even a yanked one, with a warning) or a semver range (never picks a yanked version)", example: "^1" });

export const PublicKeyJwk = PublicKeyJwkSchema.openapi("PublicKeyJwk", { description: "An Ed25519 public key as a JWK (no private part `d`)" });

const Scope = z
  .string()
  .max(40)
  .regex(PUBLISHER_PATTERN, "a scope such as @acme (lower case)")
  .openapi({ description: "The publisher, `@acme` (`%40acme` works too)", example: "@acme" });
const BaseName = z
  .string()
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' and '-'")
  .openapi({ description: "The package's name within its scope, `hello-erp` in `@acme/hello-erp`", example: "hello-erp" });
const Version = ExactVersion.openapi({ description: "An exact version, `1.2.0`", example: "1.2.0" });

export const PublisherParams = z.object({ scope: Scope });
export const PackageParams = z.object({ scope: Scope, name: BaseName });
export const VersionParams = PackageParams.extend({ version: Version });

export const CreatePublisher = z
  .object({
    name: Scope.openapi({ description: "The scope to register; names starting with `@erp-edge` are reserved for the platform" }),
    public_key: PublicKeyJwk,
  })
  .strict()
  .openapi("CreatePublisher");

export const AddPublisherKey = z.object({ public_key: PublicKeyJwk }).strict().openapi("AddPublisherKey");
export const DeprecateVersion = z.object({ message: z.string().trim().min(1).max(1000) }).strict().openapi("DeprecateVersion");
export const YankVersion = z.object({ reason: z.string().trim().min(1).max(1000) }).strict().openapi("YankVersion");

export const PackageKind = z.enum(["blueprint", "app"]).openapi("PackageKind");

export const PackageSearchQuery = z.object({
  q: z.string().trim().max(100).optional().openapi({ description: "Case-insensitive text in the name, title, summary or keywords" }),
  kind: PackageKind.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ description: "Page size, 1..100" }),
  cursor: z.string().max(200).optional().openapi({ description: "`next_cursor` of the previous page" }),
});

/** The multipart upload, for the document only: the registry reads and checks the fields. */
export const PackageUploadSchema = {
  type: "object" as const,
  required: ["bundle", "signature"],
  properties: {
    bundle: { type: "string" as const, format: "binary", description: "The packed archive (zip, at most 10 MB), as `erp-edge blueprint pack` writes it" },
    signature: { type: "string" as const, description: 'A compact JWS (EdDSA) over `{ "name", "version", "digest": "sha256-<base64>" }` by a key of the name\'s publisher' },
  },
};

export const PublisherKey = z.object({ kid: z.string(), public_key: PublicKeyJwk, created_at: z.string() }).openapi("PublisherKey");

export const Publisher = z
  .object({
    name: z.string(),
    owner: z.string().nullable().openapi({ description: "The owning tenant's id (shown to that tenant only), or `platform`" }),
    keys: z.array(PublisherKey),
    created_at: z.string(),
  })
  .openapi("Publisher");

export const VersionSummary = z
  .object({
    version: z.string(),
    published_at: z.string(),
    digest: z.string().openapi({ description: "`sha256-<base64>` of the archive" }),
    yanked: z.boolean(),
    yank_reason: z.string().nullable(),
    deprecated: z.boolean(),
    deprecation_message: z.string().nullable(),
  })
  .openapi("RegistryVersionSummary");

export const RegistryPackage = z
  .object({
    name: z.string(),
    kind: PackageKind,
    title: z.string(),
    summary: z.string(),
    keywords: z.array(z.string()),
    publisher: z.string(),
    dist_tags: z.object({ latest: z.string().optional() }).openapi({ description: "`latest`: the highest version neither yanked nor a prerelease" }),
    versions: z.array(VersionSummary),
    readme: z.string().nullable().openapi({ description: "README.md (markdown, at most 256 KB) of the `latest` version (of the highest version when none is latest); null when it has none" }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("RegistryPackage");

export const RegistryVersion = VersionSummary.extend({
  name: z.string(),
  kind: PackageKind,
  manifest: z.unknown().openapi({ description: "blueprint.json as published (configurations may be `{ \"$file\" }` references)" }),
  signature: z.string(),
  publisher: z.string(),
  key_id: z.string().openapi({ description: "The RFC 7638 thumbprint of the key that signed this version" }),
  public_key: PublicKeyJwk,
  readme: z.string().nullable().openapi({ description: "This version's README.md (markdown, at most 256 KB), or null" }),
}).openapi("RegistryVersion");

export const PackageSearchPage = z
  .object({
    packages: z.array(
      z.object({
        name: z.string(),
        kind: PackageKind,
        title: z.string(),
        summary: z.string(),
        keywords: z.array(z.string()),
        publisher: z.string(),
        latest: z.string().nullable(),
        updated_at: z.string(),
      }),
    ),
    next_cursor: NextCursor,
  })
  .openapi("PackageSearchPage");

export const Published = z.object({ name: z.string(), version: z.string(), digest: z.string() }).openapi("PublishedPackage");

export const BlueprintJsonSchema = z.record(z.string(), z.unknown()).openapi("BlueprintJsonSchema", { description: "A JSON Schema (draft 2020-12) of blueprint.json" });
