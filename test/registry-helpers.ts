// Publishing through the real API, as the CLI does: a key pair, a publisher, a signed archive.
import type { JWK } from "jose";
import { packBundle, type PackageFiles } from "../apps-sdk/src/blueprint/bundle";
import type { BlueprintManifestInput } from "../apps-sdk/src/blueprint/manifest";
import { digestOf, generatePublisherKey, signPackage, type PublicKeyJwk } from "../apps-sdk/src/blueprint/signing";
import { api, createToken, createTenant, type ApiResponse } from "./helpers";

export interface Publisher {
  name: string;
  /** The publishing tenant's token (scopes registry:publish and blueprints:install). */
  token: string;
  tenantId: string;
  privateJwk: JWK;
  publicJwk: PublicKeyJwk;
  kid: string;
}

/** A short random suffix: the registry's storage is shared by every test file, so names must not collide. */
export const unique = () => Math.random().toString(36).slice(2, 8);

/** A new tenant that registers publisher `@<prefix>-<random>` with a fresh key. */
export async function newPublisher(prefix = "acme"): Promise<Publisher> {
  const tenant = await createTenant(`Publisher ${prefix}`);
  const { token } = await createToken(tenant.id, ["registry:publish", "blueprints:install", "integrations:read", "integrations:write", "events:write"]);
  const key = await generatePublisherKey();
  const name = `@${prefix}-${unique()}`;
  const res = await api("POST", "/v1/registry/publishers", { token, json: { name, public_key: key.publicJwk } });
  if (res.status !== 201) throw new Error(`publisher: ${res.status} ${JSON.stringify(res.body)}`);
  return { name, token, tenantId: tenant.id, ...key };
}

const encoder = new TextEncoder();

/** The files of a package: blueprint.json from `manifest`, plus `extra` (text or JSON values). */
export function packageFiles(manifest: BlueprintManifestInput | Record<string, unknown>, extra: Record<string, unknown> = {}): PackageFiles {
  const files: PackageFiles = { "blueprint.json": encoder.encode(JSON.stringify(manifest, null, 2)) };
  for (const [name, value] of Object.entries(extra)) files[name] = encoder.encode(typeof value === "string" ? value : JSON.stringify(value));
  return files;
}

/** A signed upload: the archive, and a signature over `{ name, version, digest }` (by `signWith`, default the publisher's key). */
export async function signedUpload(archive: Uint8Array, name: string, version: string, signWith: JWK): Promise<FormData> {
  const signature = await signPackage({ name, version, digest: await digestOf(archive) }, signWith);
  const form = new FormData();
  form.set("bundle", new File([archive as Uint8Array<ArrayBuffer>], "package.zip", { type: "application/zip" }));
  form.set("signature", signature);
  return form;
}

/** POST /v1/registry/packages with a multipart body. */
export function upload(token: string, form: FormData): Promise<ApiResponse> {
  return api("POST", "/v1/registry/packages", { token, body: form });
}

/** Packs, signs with the publisher's key and publishes; throws unless 201. */
export async function publish(publisher: Publisher, manifest: BlueprintManifestInput | Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const m = manifest as { name: string; version: string };
  const archive = packBundle(packageFiles(manifest, extra));
  const res = await upload(publisher.token, await signedUpload(archive, m.name, m.version, publisher.privateJwk));
  if (res.status !== 201) throw new Error(`publish ${m.name}@${m.version}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { name: string; version: string; digest: string };
}

/** A minimal valid blueprint manifest for `name`@`version`, one inbound use case mapping contacts. */
export function sampleManifest(name: string, version: string, overrides: Record<string, unknown> = {}) {
  return {
    name,
    version,
    title: "Sample customers",
    description: { summary: "Customers from a sample ERP" },
    keywords: ["sample", "customers"],
    engines: { "erp-edge": ">=0.1.0" },
    environment: [{ key: "ERP_URL", label: "ERP base URL", type: "String", required: true }],
    integrations: [
      {
        slug: "sample-erp",
        name: "Sample ERP",
        use_cases: [
          {
            slug: "customers",
            name: "Customers",
            type: "inbound",
            configuration: {
              entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "id" }, { attribute: "first_name", field: "name" }] }],
            },
          },
        ],
      },
    ],
    ...overrides,
  };
}
