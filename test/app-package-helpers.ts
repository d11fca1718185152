// App packages as `erp-edge app publish` makes them: app.json (written by the SDK's appManifest from a
// real defineApp) and its bundled module, packed and signed with the registry helpers' publishers.
import { z } from "zod";
import { defineAction, defineApp } from "../apps-sdk/src/app/define";
import { appManifest } from "../apps-sdk/src/app/manifest";
import { packBundle, type PackageFiles } from "../apps-sdk/src/blueprint/bundle";
import type { ApiResponse } from "./helpers";
import { signedUpload, upload, type Publisher } from "./registry-helpers";

const encoder = new TextEncoder();

/** A module the registry stores but never runs: it reads app.json and checks the module is there. */
export const SAMPLE_APP_MODULE = `export default { kind: "erp-edge.app", actions: {} };\n`;

/** The app.json of a small real app, `name`@`version`, with one action; `overrides` replace top-level fields. */
export function sampleAppManifest(name: string, version: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const app = defineApp({
    name,
    version,
    description: "Converts SAP OData dates to ISO 8601",
    actions: [
      defineAction({
        name: "to-iso",
        description: "OData /Date(ms)/ to ISO",
        input: z.object({ value: z.string() }),
        output: z.string(),
        permissions: { hosts: ["erp.example.com"] },
        run: ({ value }) => new Date(Number(/\((-?\d+)\)/.exec(value)?.[1])).toISOString(),
      }),
    ],
  });
  return { ...appManifest(app), ...overrides };
}

/** The files of an app package: app.json from `manifest` (a value, or raw text) and the module as `main`, plus `extra`. */
export function appFiles(manifest: unknown, options: { main?: string | null; module?: string; extra?: Record<string, string> } = {}): PackageFiles {
  const files: PackageFiles = { "app.json": encoder.encode(typeof manifest === "string" ? manifest : JSON.stringify(manifest, null, 2)) };
  const main = options.main === undefined ? "app.js" : options.main;
  if (main !== null) files[main] = encoder.encode(options.module ?? SAMPLE_APP_MODULE);
  for (const [file, text] of Object.entries(options.extra ?? {})) files[file] = encoder.encode(text);
  return files;
}

/** Packs `files`, signs `{ name, version, digest }` with `signWith` (default the publisher's key) and uploads them. */
export async function uploadApp(p: Publisher, files: PackageFiles, name: string, version: string, options: { signWith?: Publisher["privateJwk"]; token?: string } = {}): Promise<ApiResponse> {
  const archive = packBundle(files);
  return upload(options.token ?? p.token, await signedUpload(archive, name, version, options.signWith ?? p.privateJwk));
}

/** Publishes the sample app `name`@`version`; throws unless 201. */
export async function publishApp(p: Publisher, name: string, version: string, overrides: Record<string, unknown> = {}) {
  const res = await uploadApp(p, appFiles(sampleAppManifest(name, version, overrides)), name, version);
  if (res.status !== 201) throw new Error(`publish app ${name}@${version}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { name: string; version: string; digest: string };
}
