// The repository's prebuilt blueprints (blueprints/<name>/, bound by vitest.config.mts) published the
// way `npm start` publishes them, under a test publisher instead of @erp-edge (the registry is shared
// by every test file): every "@erp-edge/" in the package's files becomes "@<publisher>/".
import { env } from "cloudflare:workers";
import { packBundle } from "../apps-sdk/src/blueprint/bundle";
import { publish, signedUpload, upload, type Publisher } from "./registry-helpers";

interface RepoBlueprint {
  files: Record<string, string>;
  app?: { manifest: { name: string; version: string; [k: string]: unknown }; source: string };
}

const repo = JSON.parse(env.TEST_REPO_BLUEPRINTS) as Record<string, RepoBlueprint>;
const encoder = new TextEncoder();

/** The folder names of the repository's blueprints, e.g. ["hello-erp", "sap-s4hana", "telematics"]. */
export const repoBlueprintNames = () => Object.keys(repo);

/** A blueprint's files with the platform scope replaced by `scope` (e.g. "@acme-x1y2z3"). */
export function blueprintFiles(dir: string, scope: string): Record<string, string> {
  const bp = repo[dir];
  if (!bp) throw new Error(`no blueprints/${dir}/blueprint.json (have ${Object.keys(repo).join(", ")})`);
  return Object.fromEntries(Object.entries(bp.files).map(([p, text]) => [p, text.replaceAll("@erp-edge/", `${scope}/`)]));
}

/**
 * Publishes blueprints/<dir> (its app first, when it has one) as `publisher`. `edit` may change the
 * files before packing (a 1.1.0 fixture version, say). Returns the package names.
 */
export async function publishRepoBlueprint(dir: string, publisher: Publisher, edit?: (files: Record<string, string>) => void) {
  const bp = repo[dir]!;
  const files = blueprintFiles(dir, publisher.name);
  edit?.(files);
  let app: string | undefined;
  if (bp.app) {
    const manifest = { ...bp.app.manifest, name: bp.app.manifest.name.replace("@erp-edge/", `${publisher.name}/`) };
    app = manifest.name;
    const archive = packBundle({ "app.json": encoder.encode(JSON.stringify(manifest)), [String((bp.app.manifest as { main?: string }).main ?? "app.js")]: encoder.encode(bp.app.source) });
    const res = await upload(publisher.token, await signedUpload(archive, manifest.name, manifest.version, publisher.privateJwk));
    if (res.status !== 201 && res.status !== 409) throw new Error(`publish ${manifest.name}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const manifest = JSON.parse(files["blueprint.json"]!) as { name: string; version: string };
  const { "blueprint.json": _, ...extra } = files;
  await publish(publisher, manifest, extra);
  return { name: manifest.name, version: manifest.version, app };
}
