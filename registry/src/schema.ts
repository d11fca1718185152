// What the registry accepts and answers: callers, request bodies, path and query parameters, and the
// response shapes (the same contract as the host's src/registry/client.ts, checked by its tests).
import { z } from "zod";
import { ExactVersion, PACKAGE_NAME_PATTERN, PublisherName } from "../../apps-sdk/src/blueprint/manifest";
import { PublicKeyJwk } from "../../apps-sdk/src/blueprint/signing";

/** The bindings of the registry Worker (registry/wrangler.toml). */
export interface RegistryEnv {
  REGISTRY_DB: D1Database;
  BUNDLES: R2Bucket;
}

/** Who is calling, as the host states it in `x-erp-edge-caller` (the registry has no public route). */
export const Caller = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("tenant"),
    tenant_id: z.string().min(1).max(64),
    token_id: z.string().min(1).max(64),
    scopes: z.array(z.string().max(64)).max(64),
  }),
  z.object({ kind: z.literal("admin") }),
  z.object({ kind: z.literal("host") }),
]);
export type Caller = z.infer<typeof Caller>;

export interface RegistryVars {
  Bindings: RegistryEnv;
  Variables: { caller: Caller };
}

/** The second half of a package name, `hello-erp` in `@acme/hello-erp`. */
export const PackageBaseName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "lower-case letters, digits, '.', '_' and '-'");

export const PublisherParams = z.object({ scope: PublisherName });

/** `/packages/{scope}/{name}`: joined into `@scope/name`, checked as a whole package name. */
export const PackageParams = z
  .object({ scope: PublisherName, name: PackageBaseName })
  .transform(({ scope, name }) => `${scope}/${name}`)
  .refine((name) => PACKAGE_NAME_PATTERN.test(name), "not a package name");

export const VersionParams = z.object({ scope: PublisherName, name: PackageBaseName, version: ExactVersion });

export const CreatePublisher = z.object({ name: PublisherName, public_key: PublicKeyJwk }).strict();
export const AddPublisherKey = z.object({ public_key: PublicKeyJwk }).strict();
export const Deprecate = z.object({ message: z.string().trim().min(1).max(1000) }).strict();
export const Yank = z.object({ reason: z.string().trim().min(1).max(1000) }).strict();

export const PackageKind = z.enum(["blueprint", "app"]);
export type PackageKind = z.infer<typeof PackageKind>;

export const SearchQuery = z.object({
  q: z.string().trim().max(100).optional(),
  kind: PackageKind.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});
export type SearchQuery = z.infer<typeof SearchQuery>;

/** The signature form field: a compact JWS (three base64url parts), bounded. */
export const SignatureField = z.string().max(4096).regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, "a compact JWS");

// ---- answers ------------------------------------------------------------------------------------

export interface PublisherKey {
  kid: string;
  public_key: PublicKeyJwk;
  created_at: string;
}

export interface Publisher {
  name: string;
  /** The owning tenant's id (shown to that tenant and the operator only, null to others), or 'platform'. */
  owner: string | null;
  keys: PublisherKey[];
  created_at: string;
}

export interface VersionSummary {
  version: string;
  published_at: string;
  digest: string;
  yanked: boolean;
  yank_reason: string | null;
  deprecated: boolean;
  deprecation_message: string | null;
}

export interface PackageDocument {
  name: string;
  kind: PackageKind;
  title: string;
  summary: string;
  keywords: string[];
  publisher: string;
  dist_tags: { latest?: string };
  versions: VersionSummary[];
  /** README.md of the latest version (of the highest, when none is latest); null when it has none. */
  readme: string | null;
  created_at: string;
  updated_at: string;
}

export interface VersionDocument extends VersionSummary {
  name: string;
  kind: PackageKind;
  manifest: unknown;
  signature: string;
  publisher: string;
  key_id: string;
  public_key: PublicKeyJwk;
  /** This version's README.md (markdown), or null. */
  readme: string | null;
}

export interface SearchHit {
  name: string;
  kind: PackageKind;
  title: string;
  summary: string;
  keywords: string[];
  publisher: string;
  latest: string | null;
  updated_at: string;
}

export interface SearchPage {
  packages: SearchHit[];
  next_cursor: string | null;
}

export interface Published {
  name: string;
  version: string;
  digest: string;
}
