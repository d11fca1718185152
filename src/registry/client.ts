// The host's side of the registry Worker (registry/), reached through the REGISTRY service binding:
// the caller header it trusts, and the reads that installs make. Nothing read here is trusted for
// integrity: installs verify digest and signature themselves (src/marketplace).
import type { PublicKeyJwk } from "../../apps-sdk/src/blueprint/signing";
import type { Caller } from "../platform/app";
import { AppError } from "../platform/errors";

/**
 * Who the registry is serving, set by the host only: the registry has no public route, so this
 * header cannot come from anyone else (the host drops any copy a client sends).
 */
export const CALLER_HEADER = "x-erp-edge-caller";

/** The registry's view of a caller: a tenant (with its token's scopes), the operator, or the host itself. */
export type RegistryCaller =
  | { kind: "tenant"; tenant_id: string; token_id: string; scopes: string[] }
  | { kind: "admin" }
  | { kind: "host" };

export function registryCaller(caller: Caller): RegistryCaller {
  return caller.kind === "admin"
    ? { kind: "admin" }
    : { kind: "tenant", tenant_id: caller.tenantId!, token_id: caller.tokenId!, scopes: caller.scopes };
}

export interface RegistryVersionSummary {
  version: string;
  published_at: string;
  digest: string;
  yanked: boolean;
  yank_reason: string | null;
  deprecated: boolean;
  deprecation_message: string | null;
}

export interface RegistryPackage {
  name: string;
  kind: "blueprint" | "app";
  title: string;
  summary: string;
  keywords: string[];
  publisher: string;
  dist_tags: { latest?: string };
  versions: RegistryVersionSummary[];
  /** README.md of the latest version, for people; the host never reads it. */
  readme: string | null;
  created_at: string;
  updated_at: string;
}

export interface RegistryVersion extends RegistryVersionSummary {
  name: string;
  kind: "blueprint" | "app";
  /** The manifest as published (configurations may still be `{ "$file" }` references). */
  manifest: unknown;
  signature: string;
  publisher: string;
  key_id: string;
  public_key: PublicKeyJwk;
  /** This version's README.md, for people; the host never reads it. */
  readme: string | null;
}

async function registryGet(env: Pick<Env, "REGISTRY">, path: string): Promise<Response | null> {
  let res: Response;
  try {
    res = await env.REGISTRY.fetch(new Request(`https://registry.internal${path}`, { headers: { [CALLER_HEADER]: JSON.stringify({ kind: "host" } satisfies RegistryCaller) } }));
  } catch (err) {
    console.error(JSON.stringify({ level: "error", message: "registry unreachable", path, error: String((err as Error)?.message ?? err) }));
    throw new AppError("INTERNAL", "The registry is unreachable; retry later");
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) {
    const text = await res.text();
    console.error(JSON.stringify({ level: "error", message: "registry error", path, status: res.status, body: text.slice(0, 500) }));
    throw new AppError("INTERNAL", `The registry answered ${res.status}; retry later`);
  }
  return res;
}

/** `@acme/name` as a path: the scope's `@` and the `/` stay literal, each part is encoded. */
export const packagePath = (name: string) => name.split("/").map(encodeURIComponent).join("/").replace(/^%40/, "@");

/** A package with every version, or null when the registry has none of that name. */
export async function fetchPackage(env: Pick<Env, "REGISTRY">, name: string): Promise<RegistryPackage | null> {
  const res = await registryGet(env, `/v1/registry/packages/${packagePath(name)}`);
  return res ? ((await res.json()) as RegistryPackage) : null;
}

/** One version's metadata (manifest, digest, signature, the publisher key it names). */
export async function fetchVersion(env: Pick<Env, "REGISTRY">, name: string, version: string): Promise<RegistryVersion | null> {
  const res = await registryGet(env, `/v1/registry/packages/${packagePath(name)}/${encodeURIComponent(version)}`);
  return res ? ((await res.json()) as RegistryVersion) : null;
}

/** The archive bytes of one version. */
export async function fetchBundle(env: Pick<Env, "REGISTRY">, name: string, version: string): Promise<Uint8Array | null> {
  const res = await registryGet(env, `/v1/registry/packages/${packagePath(name)}/${encodeURIComponent(version)}/bundle`);
  return res ? new Uint8Array(await res.arrayBuffer()) : null;
}
