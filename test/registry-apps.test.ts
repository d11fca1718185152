// App packages in the registry (issue #12): app.json plus its bundled module, signed and published
// like blueprints, read back as kind "app", and every way an app upload can be wrong or hostile.
import { env, exports } from "cloudflare:workers";
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { AppManifest } from "../apps-sdk/src/app/manifest";
import { readAppPackage } from "../apps-sdk/src/app/package";
import { packBundle, unpackBundle } from "../apps-sdk/src/blueprint/bundle";
import { digestOf, verifyPackage } from "../apps-sdk/src/blueprint/signing";
import { fetchVersion } from "../src/registry/client";
import { PackageSearchPage, RegistryPackage, RegistryVersion, VersionSummary } from "../src/registry/schema";
import { appFiles, publishApp, sampleAppManifest, uploadApp } from "./app-package-helpers";
import { api, expectError, type ApiResponse } from "./helpers";
import { newPublisher, publish, sampleManifest, signedUpload, upload } from "./registry-helpers";

/** Expects an error envelope of `status` and `code` whose details name `file` (and `path`, when given). */
function expectIssue(res: ApiResponse, status: number, code: string, match: { file: string; path?: string }) {
  const details = expectError(res, status, code) as { file: string; path: string }[];
  const hit = details?.find((d) => d.file === match.file && (match.path === undefined || d.path === match.path));
  if (!hit) throw new Error(`no issue ${JSON.stringify(match)} in ${JSON.stringify(details)}`);
}

/** Any answer to a hostile upload: a 4xx with the error envelope, never a 5xx. */
function expect4xx(res: ApiResponse) {
  expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
  expect(typeof res.body?.error?.code, JSON.stringify(res.body)).toBe("string");
}

async function bundleBytes(path: string, token: string): Promise<Uint8Array> {
  const res = await exports.default.fetch(new Request(`http://erp-edge.test${path}`, { headers: { authorization: `Bearer ${token}` } }));
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

describe("publishing an app", () => {
  it("stores app.json and its module, and reads them back as kind app in the documented shapes", async () => {
    const p = await newPublisher("apps");
    const name = `${p.name}/sap-dates`;
    const manifest = sampleAppManifest(name, "1.0.0");
    const files = appFiles(manifest);
    const archive = packBundle(files);
    const created = await upload(p.token, await signedUpload(archive, name, "1.0.0", p.privateJwk));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toEqual({ name, version: "1.0.0", digest: await digestOf(archive) });

    // The package: its title is the app's name, its summary the description, no keywords.
    const pkg = await api("GET", `/v1/registry/packages/${name}`, { token: p.token });
    expect(pkg.status).toBe(200);
    expect(RegistryPackage.parse(pkg.body)).toMatchObject({ name, kind: "app", title: name, summary: "Converts SAP OData dates to ISO 8601", keywords: [], publisher: p.name, dist_tags: { latest: "1.0.0" } });

    // The version: app.json as published is its manifest.
    const version = await api("GET", `/v1/registry/packages/${name}/1.0.0`, { token: p.token });
    expect(version.status).toBe(200);
    const parsed = RegistryVersion.parse(version.body);
    expect(parsed).toMatchObject({ name, kind: "app", version: "1.0.0", digest: created.body.digest, key_id: p.kid, yanked: false });
    expect(parsed.manifest).toEqual(manifest);
    expect(AppManifest.parse(parsed.manifest).actions.map((a) => a.name)).toEqual(["to-iso"]);

    // The bytes, verified the way the host's install will: signature, digest, then the package itself.
    const bytes = await bundleBytes(`/v1/registry/packages/${name}/1.0.0/bundle`, p.token);
    expect(bytes).toEqual(archive);
    await expect(verifyPackage(parsed.signature, parsed.public_key, bytes, { name, version: "1.0.0" })).resolves.toMatchObject({ digest: created.body.digest });
    expect(readAppPackage(unpackBundle(bytes))).toMatchObject({ manifest: { name, main: "app.js" }, source: expect.stringContaining("erp-edge.app") });
    expect(await fetchVersion(env, name, "1.0.0")).toEqual(version.body);

    // Search finds it by kind and by its description; a blueprint search does not.
    const search = async (query: string) => PackageSearchPage.parse((await api("GET", `/v1/registry/packages?${query}`, { token: p.token })).body).packages.map((x) => x.name);
    expect(await search(`q=${encodeURIComponent(p.name)}&kind=app`)).toEqual([name]);
    expect(await search(`q=${encodeURIComponent(p.name)}&kind=blueprint`)).toEqual([]);
    expect(await search(`q=${encodeURIComponent(`${p.name} odata`)}`)).toEqual([]);
    const hit = (await api("GET", `/v1/registry/packages?q=${encodeURIComponent(p.name)}`, { token: p.token })).body.packages[0];
    expect(hit).toEqual({ name, kind: "app", title: name, summary: "Converts SAP OData dates to ISO 8601", keywords: [], publisher: p.name, latest: "1.0.0", updated_at: expect.any(String) });
  });

  it("clips a long description to a 1000-character summary, keeping it whole in the manifest", async () => {
    const p = await newPublisher("apps-long");
    const name = `${p.name}/verbose`;
    const description = `${"Ä".repeat(1500)}😀`;
    await publishApp(p, name, "1.0.0", { description });
    const pkg = RegistryPackage.parse((await api("GET", `/v1/registry/packages/${name}`, { token: p.token })).body);
    expect(Array.from(pkg.summary)).toHaveLength(1000);
    expect(pkg.summary.endsWith("…")).toBe(true);
    const version = RegistryVersion.parse((await api("GET", `/v1/registry/packages/${name}/1.0.0`, { token: p.token })).body);
    expect((version.manifest as { description: string }).description).toBe(description);
  });

  it("treats an app like a blueprint for versions, yanking and ownership", async () => {
    const p = await newPublisher("apps-life");
    const intruder = await newPublisher("apps-intruder");
    const name = `${p.name}/lifecycle`;
    const first = await publishApp(p, name, "1.0.0");
    // Immutable: the same bytes or others.
    expectError(await uploadApp(p, appFiles(sampleAppManifest(name, "1.0.0")), name, "1.0.0"), 409, "CONFLICT");
    expectError(await uploadApp(p, appFiles(sampleAppManifest(name, "1.0.0", { description: "changed" })), name, "1.0.0"), 409, "CONFLICT");
    expect((await api("GET", `/v1/registry/packages/${name}/1.0.0`, { token: p.token })).body.digest).toBe(first.digest);
    // Another tenant cannot publish into the scope, even with the owner's key.
    expectError(await uploadApp(intruder, appFiles(sampleAppManifest(name, "1.1.0")), name, "1.1.0"), 403, "FORBIDDEN");
    expectError(await uploadApp(intruder, appFiles(sampleAppManifest(name, "1.1.0")), name, "1.1.0", { signWith: p.privateJwk }), 403, "FORBIDDEN");
    // A newer version moves latest and the description; the owner yanks it.
    await publishApp(p, name, "1.1.0", { description: "Newer" });
    expect((await api("GET", `/v1/registry/packages/${name}`, { token: p.token })).body).toMatchObject({ summary: "Newer", dist_tags: { latest: "1.1.0" } });
    expectError(await api("POST", `/v1/registry/packages/${name}/1.1.0/yank`, { token: intruder.token, json: { reason: "mine" } }), 403, "FORBIDDEN");
    const yanked = await api("POST", `/v1/registry/packages/${name}/1.1.0/yank`, { token: p.token, json: { reason: "broken dates" } });
    expect(VersionSummary.parse(yanked.body)).toMatchObject({ version: "1.1.0", yanked: true });
    expect((await api("GET", `/v1/registry/packages/${name}`, { token: p.token })).body.dist_tags).toEqual({ latest: "1.0.0" });
  });

  it("keeps a name's kind: no app under a blueprint's name, no blueprint under an app's", async () => {
    const p = await newPublisher("apps-kind");
    const blueprint = `${p.name}/customers`;
    await publish(p, sampleManifest(blueprint, "1.0.0"));
    const asApp = await uploadApp(p, appFiles(sampleAppManifest(blueprint, "1.1.0")), blueprint, "1.1.0");
    expectError(asApp, 409, "CONFLICT");
    expect(asApp.body.error.message).toMatch(/is a package of kind blueprint, not app/);
    const app = `${p.name}/normalise`;
    await publishApp(p, app, "1.0.0");
    const asBlueprint = await upload(p.token, await signedUpload(packBundle({ "blueprint.json": new TextEncoder().encode(JSON.stringify(sampleManifest(app, "1.1.0"))) }), app, "1.1.0", p.privateJwk));
    expectError(asBlueprint, 409, "CONFLICT");
    expect((await api("GET", `/v1/registry/packages/${blueprint}`, { token: p.token })).body).toMatchObject({ kind: "blueprint", versions: [{ version: "1.0.0" }] });
    expect((await api("GET", `/v1/registry/packages/${app}`, { token: p.token })).body).toMatchObject({ kind: "app", versions: [{ version: "1.0.0" }] });
  });
});

describe("invalid and hostile app packages", () => {
  it("refuses an invalid app.json with 422 naming the file and the JSON path", async () => {
    const p = await newPublisher("apps-bad");
    const name = `${p.name}/bad`;
    const bad = sampleAppManifest(name, "1.0.0", { actions: [], main: "../escape.js", unknown: true });
    const res = await uploadApp(p, appFiles(bad, { main: "app.js" }), name, "1.0.0");
    expectIssue(res, 422, "UNPROCESSABLE", { file: "app.json", path: "actions" });
    expectIssue(res, 422, "UNPROCESSABLE", { file: "app.json", path: "main" });
    expectIssue(res, 422, "UNPROCESSABLE", { file: "app.json", path: "" });
    // An action with a bad name and no schemas.
    const actions = [{ name: "Not OK", description: "x", permissions: { hosts: [] } }];
    const broken = await uploadApp(p, appFiles(sampleAppManifest(name, "1.0.0", { actions })), name, "1.0.0");
    expectIssue(broken, 422, "UNPROCESSABLE", { file: "app.json", path: "actions.0.name" });
    expectIssue(broken, 422, "UNPROCESSABLE", { file: "app.json", path: "actions.0.input_schema" });
    // Not JSON, and not UTF-8.
    expectIssue(await uploadApp(p, appFiles("{ not json"), name, "1.0.0"), 422, "UNPROCESSABLE", { file: "app.json", path: "" });
    const latin1 = appFiles(sampleAppManifest(name, "1.0.0"));
    latin1["app.json"] = new Uint8Array([0x7b, 0xff, 0x7d]);
    expectIssue(await uploadApp(p, latin1, name, "1.0.0"), 422, "UNPROCESSABLE", { file: "app.json" });
    expectError(await api("GET", `/v1/registry/packages/${name}`, { token: p.token }), 404, "NOT_FOUND");
  });

  it("refuses a package without its main module, or with files an app package does not hold", async () => {
    const p = await newPublisher("apps-files");
    const name = `${p.name}/files`;
    const manifest = sampleAppManifest(name, "1.0.0");
    expectIssue(await uploadApp(p, appFiles(manifest, { main: null }), name, "1.0.0"), 422, "UNPROCESSABLE", { file: "app.js" });
    // main names a module the archive has under another name.
    expectIssue(await uploadApp(p, appFiles({ ...manifest, main: "bundle.js" }), name, "1.0.0"), 422, "UNPROCESSABLE", { file: "bundle.js" });
    // README.md is the one other file an app package may hold (served as its readme); the sources are not.
    const extra = await uploadApp(p, appFiles(manifest, { extra: { "README.md": "hi", "src/index.ts": "export {}", "readme.txt": "hi" } }), name, "1.0.0");
    expect(expectError(extra, 422, "UNPROCESSABLE").map((d: { file: string }) => d.file).sort()).toEqual(["readme.txt", "src/index.ts"]);
    // A key packed by mistake is refused for what it is, before anything else.
    const key = JSON.stringify({ kty: "OKP", crv: "Ed25519", x: "a".repeat(43), d: "b".repeat(43) });
    const files = appFiles(manifest);
    files["app.js"] = new TextEncoder().encode(`export const k = ${key};`);
    const archive = zipSync(files);
    expectIssue(await upload(p.token, await signedUpload(archive, name, "1.0.0", p.privateJwk)), 422, "UNPROCESSABLE", { file: "app.js" });
    // With only app.json and its module, it publishes.
    expect((await uploadApp(p, appFiles(manifest), name, "1.0.0")).status).toBe(201);
  });

  it("refuses an app.json whose name or version is not the one signed", async () => {
    const p = await newPublisher("apps-sig");
    const name = `${p.name}/signed`;
    const files = appFiles(sampleAppManifest(name, "1.0.0"));
    const other = await uploadApp(p, files, `${p.name}/other`, "1.0.0");
    expectError(other, 422, "SIGNATURE_INVALID");
    expect(other.body.error.message).toBe(`app.json names ${name}@1.0.0, but the signature is for ${p.name}/other@1.0.0`);
    expectError(await uploadApp(p, files, name, "1.0.1"), 422, "SIGNATURE_INVALID");
    // app.json naming another publisher's package, signed for our own name: still the signed name that counts.
    const stranger = await newPublisher("apps-sig-other");
    expectError(await uploadApp(p, appFiles(sampleAppManifest(`${stranger.name}/signed`, "1.0.0")), name, "1.0.0"), 422, "SIGNATURE_INVALID");
    for (const n of [name, `${p.name}/other`, `${stranger.name}/signed`]) expectError(await api("GET", `/v1/registry/packages/${n}`, { token: p.token }), 404, "NOT_FOUND");
  });

  it("answers oversized and odd app packages with 4xx envelopes, never 500", async () => {
    const p = await newPublisher("apps-hostile");
    const name = `${p.name}/hostile`;
    const manifest = sampleAppManifest(name, "1.0.0");
    // app.json is stored whole in one D1 row: over 1 MB is 413, like blueprint.json.
    const big = sampleAppManifest(name, "1.0.0", { config_schema: { description: "x".repeat(1024 * 1024) } });
    expectIssue(await uploadApp(p, appFiles(big), name, "1.0.0"), 413, "PAYLOAD_TOO_LARGE", { file: "app.json" });
    // A module over 4 MB (it compresses to almost nothing) is 413 naming it.
    expectIssue(await uploadApp(p, appFiles(manifest, { module: `// ${"a".repeat(4 * 1024 * 1024)}` }), name, "1.0.0"), 413, "PAYLOAD_TOO_LARGE", { file: "app.js" });
    // A module that is not UTF-8.
    const binary = appFiles(manifest);
    binary["app.js"] = new Uint8Array([0xc3, 0x28]);
    expectIssue(await uploadApp(p, binary, name, "1.0.0"), 422, "UNPROCESSABLE", { file: "app.js" });
    // Prototype keys in app.json are unknown keys (app.json is strict), and pollute nothing.
    const proto = `{"__proto__":{"polluted":true},${JSON.stringify(manifest).slice(1)}`;
    expectIssue(await uploadApp(p, appFiles(proto), name, "1.0.0"), 422, "UNPROCESSABLE", { file: "app.json" });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Deep nesting.
    const deep = sampleAppManifest(name, "1.0.0", { config_schema: JSON.parse(`${'{"a":'.repeat(80)}1${"}".repeat(80)}`) });
    expectIssue(await uploadApp(p, appFiles(deep), name, "1.0.0"), 422, "UNPROCESSABLE", { file: "app.json" });
    for (const main of ["app.json", "/abs.js", "dir/app.js", "app.mjs", "__proto__"]) {
      expect4xx(await uploadApp(p, appFiles({ ...manifest, main }, { main: null }), name, "1.0.0"));
    }
    // Both manifests: the package is a blueprint, and its blueprint.json is what gets checked.
    const both = appFiles(manifest);
    both["blueprint.json"] = new TextEncoder().encode(JSON.stringify({ name }));
    expectIssue(await uploadApp(p, both, name, "1.0.0"), 422, "UNPROCESSABLE", { file: "blueprint.json" });
    // Neither manifest.
    expectIssue(await upload(p.token, await signedUpload(packBundle({ "app.js": new TextEncoder().encode("export default {}") }), name, "1.0.0", p.privateJwk)), 422, "UNPROCESSABLE", { file: "blueprint.json" });
    expectError(await api("GET", `/v1/registry/packages/${name}`, { token: p.token }), 404, "NOT_FOUND");
  });
});
