// The registry over HTTP through the host: publishers and keys, signed immutable publishing, search
// and reads, deprecation and yanking, and every way an upload can be wrong or hostile.
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { packBundle } from "../apps-sdk/src/blueprint/bundle";
import { digestOf, generatePublisherKey, signPackage, verifyPackage } from "../apps-sdk/src/blueprint/signing";
import { bundleKey } from "../registry/src/bundles";
import type { PackageDocument, VersionDocument, VersionSummary } from "../registry/src/schema";
import { app } from "../src/index";
import { CALLER_HEADER, fetchBundle, fetchPackage, fetchVersion, type RegistryPackage, type RegistryVersion, type RegistryVersionSummary } from "../src/registry/client";
import { ADMIN, api, createTenant, createToken, expectError, type ApiResponse } from "./helpers";
import { newPublisher, packageFiles, publish, sampleManifest, signedUpload, unique, upload, type Publisher } from "./registry-helpers";

// The registry's answers and the host's client types describe one contract: each must fit the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const contract: [Same<PackageDocument, RegistryPackage>, Same<VersionDocument, RegistryVersion>, Same<VersionSummary, RegistryVersionSummary>] = [true, true, true];
void contract;

const encoder = new TextEncoder();

/** A request straight to the host, answering the raw bytes (the bundle is not text). */
async function raw(path: string, token: string): Promise<{ status: number; headers: Headers; bytes: Uint8Array }> {
  const res = await exports.default.fetch(new Request(`http://erp-edge.test${path}`, { headers: { authorization: `Bearer ${token}` } }));
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** A signed upload of `manifest` (packed), signed by `key` (default: the publisher's) over its own name and version. */
async function uploadManifest(p: Publisher, manifest: Record<string, unknown>, opts: { extra?: Record<string, unknown>; key?: Publisher["privateJwk"]; token?: string } = {}) {
  const archive = packBundle(packageFiles(manifest, opts.extra));
  const m = manifest as { name: string; version: string };
  return upload(opts.token ?? p.token, await signedUpload(archive, m.name, m.version, opts.key ?? p.privateJwk));
}

/** A hand-made archive (the packer refuses what these tests need), signed for `name`@`version`. */
async function uploadArchive(p: Publisher, archive: Uint8Array, name: string, version: string) {
  return upload(p.token, await signedUpload(archive, name, version, p.privateJwk));
}

/** Expects an error envelope of `status` and `code` with details naming `path` (and `file`, when given). */
function expectIssue(res: ApiResponse, status: number, code: string, match: { path?: string | RegExp; file?: string }) {
  const details = expectError(res, status, code) as { path: string; file?: string }[];
  const hit = details.find((d) => (match.path === undefined || (typeof match.path === "string" ? d.path === match.path : match.path.test(d.path))) && (match.file === undefined || d.file === match.file));
  if (!hit) throw new Error(`no issue ${JSON.stringify(match)} in ${JSON.stringify(details)}`);
}

describe("publishing and reading back", () => {
  it("stores a signed version once and serves its package, version and exact bytes", async () => {
    const p = await newPublisher("reader");
    const name = `${p.name}/hello-erp`;
    const manifest = sampleManifest(name, "1.0.0");
    const archive = packBundle(packageFiles(manifest));
    const created = await upload(p.token, await signedUpload(archive, name, "1.0.0", p.privateJwk));
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ name, version: "1.0.0", digest: await digestOf(archive) });

    const pkg = await api<RegistryPackage>("GET", `/v1/registry/packages/${name}`, { token: p.token });
    expect(pkg.status).toBe(200);
    expect(pkg.body).toMatchObject({ name, kind: "blueprint", title: "Sample customers", summary: "Customers from a sample ERP", keywords: ["sample", "customers"], publisher: p.name, dist_tags: { latest: "1.0.0" } });
    expect(pkg.body.versions).toEqual([{ version: "1.0.0", published_at: expect.any(String), digest: created.body.digest, yanked: false, yank_reason: null, deprecated: false, deprecation_message: null }]);

    const version = await api<RegistryVersion>("GET", `/v1/registry/packages/${name}/1.0.0`, { token: p.token });
    expect(version.status).toBe(200);
    expect(version.body).toMatchObject({ name, kind: "blueprint", version: "1.0.0", digest: created.body.digest, publisher: p.name, key_id: p.kid, public_key: { kty: "OKP", crv: "Ed25519", x: p.publicJwk.x, kid: p.kid } });
    expect(version.body.manifest).toMatchObject({ name, version: "1.0.0", integrations: [{ slug: "sample-erp" }] });

    const bundle = await raw(`/v1/registry/packages/${name}/1.0.0/bundle`, p.token);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toBe("application/zip");
    expect(bundle.headers.get("etag")).toBe(`"${created.body.digest}"`);
    expect(bundle.headers.get("digest")).toBe(`sha-256=${created.body.digest.slice("sha256-".length)}`);
    expect(bundle.bytes).toEqual(archive);
    // What an install does: verify what the registry says against the bytes, trusting neither alone.
    await expect(verifyPackage(version.body.signature, version.body.public_key, bundle.bytes, { name, version: "1.0.0" })).resolves.toMatchObject({ digest: created.body.digest });

    // The host's own client (installs) reads the same through the service binding.
    expect(await fetchPackage(env, name)).toEqual(pkg.body);
    expect(await fetchVersion(env, name, "1.0.0")).toEqual(version.body);
    expect(await fetchBundle(env, name, "1.0.0")).toEqual(archive);
    expect(await fetchPackage(env, `${p.name}/missing`)).toBeNull();
    expect(await fetchVersion(env, name, "9.9.9")).toBeNull();
  });

  it("accepts %40 for the scope's @, and a read-only token of either scope", async () => {
    const p = await newPublisher("encoded");
    const name = `${p.name}/encoded`;
    await publish(p, sampleManifest(name, "1.0.0"));
    const tenant = await createTenant("Installer");
    const { token: installer } = await createToken(tenant.id, ["blueprints:install"]);
    const encoded = name.replace("@", "%40");
    expect((await api("GET", `/v1/registry/packages/${encoded}`, { token: installer })).body).toMatchObject({ name });
    expect((await api("GET", `/v1/registry/packages/${encoded}/1.0.0`, { token: installer })).body).toMatchObject({ name, version: "1.0.0" });
    expect((await raw(`/v1/registry/packages/${encoded}/1.0.0/bundle`, installer)).status).toBe(200);
    expect((await api("GET", `/v1/registry/publishers/${p.name.replace("@", "%40")}`, { token: installer })).body).toMatchObject({ name: p.name });
    // Installing is not publishing.
    expectError(await uploadManifest(p, sampleManifest(name, "1.0.1"), { token: installer }), 403, "FORBIDDEN");
  });

  it("answers 404 envelopes for unknown publishers, packages and versions, and 400 for malformed names", async () => {
    const p = await newPublisher("missing");
    await publish(p, sampleManifest(`${p.name}/here`, "1.0.0"));
    expectError(await api("GET", `/v1/registry/publishers/@nobody-${unique()}`, { token: p.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/registry/packages/${p.name}/absent`, { token: p.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/registry/packages/${p.name}/here/2.0.0`, { token: p.token }), 404, "NOT_FOUND");
    expectError(await api("GET", `/v1/registry/packages/${p.name}/here/2.0.0/bundle`, { token: p.token }), 404, "NOT_FOUND");
    expectIssue(await api("GET", `/v1/registry/packages/acme/here`, { token: p.token }), 400, "VALIDATION_FAILED", { path: "scope" });
    expectIssue(await api("GET", `/v1/registry/packages/${p.name}/Here`, { token: p.token }), 400, "VALIDATION_FAILED", { path: "name" });
    expectIssue(await api("GET", `/v1/registry/packages/${p.name}/here/v1.0.0`, { token: p.token }), 400, "VALIDATION_FAILED", { path: "version" });
    expectIssue(await api("GET", `/v1/registry/packages/${p.name}/here/1.0`, { token: p.token }), 400, "VALIDATION_FAILED", { path: "version" });
  });

  it("finds packages by name, title, keyword and summary, case-insensitively, filtered by kind and paged", async () => {
    const p = await newPublisher("search");
    const marker = `zq${unique()}`;
    await publish(p, sampleManifest(`${p.name}/alpha`, "1.0.0", { title: `Alpha ${marker.toUpperCase()} customers` }));
    await publish(p, sampleManifest(`${p.name}/beta`, "1.0.0", { keywords: [marker, "contracts"] }));
    await publish(p, sampleManifest(`${p.name}/gamma`, "1.0.0", { description: { summary: `Meters via ${marker}` } }));
    await publish(p, sampleManifest(`${p.name}/delta`, "1.0.0"));

    const search = (query: string) => api("GET", `/v1/registry/packages?${query}`, { token: p.token });
    const names = (res: ApiResponse) => (res.body.packages as { name: string }[]).map((x) => x.name);
    const found = await search(`q=${marker}`);
    expect(found.status).toBe(200);
    expect(names(found)).toEqual([`${p.name}/alpha`, `${p.name}/beta`, `${p.name}/gamma`]);
    expect(found.body.packages[1]).toEqual({ name: `${p.name}/beta`, kind: "blueprint", title: "Sample customers", summary: "Customers from a sample ERP", keywords: [marker, "contracts"], publisher: p.name, latest: "1.0.0", updated_at: expect.any(String) });
    expect(names(await search(`q=${p.name.toUpperCase()}/DELTA`))).toEqual([`${p.name}/delta`]);
    expect(names(await search(`q=${marker}&kind=blueprint`))).toHaveLength(3);
    expect(names(await search(`q=${marker}&kind=app`))).toEqual([]);
    // LIKE's wildcards are searched for literally.
    expect(names(await search(`q=${p.name}%25`))).toEqual([]);

    const first = await search(`q=${marker}&limit=2`);
    expect(names(first)).toEqual([`${p.name}/alpha`, `${p.name}/beta`]);
    const second = await search(`q=${marker}&limit=2&cursor=${encodeURIComponent(first.body.next_cursor)}`);
    expect(names(second)).toEqual([`${p.name}/gamma`]);
    expect(second.body.next_cursor).toBeNull();

    expectError(await search(`q=${marker}&cursor=not-a-cursor`), 400, "INVALID_CURSOR");
    expectIssue(await search("kind=plugin"), 400, "VALIDATION_FAILED", { path: "kind" });
    expectIssue(await search("limit=0"), 400, "VALIDATION_FAILED", { path: "limit" });
    expectIssue(await search(`q=${"x".repeat(101)}`), 400, "VALIDATION_FAILED", { path: "q" });
  });

  it("serves the package format's JSON Schema to anyone", async () => {
    const res = await api("GET", "/v1/registry/schema/blueprint.json");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ $id: "https://erp-edge.dev/schema/blueprint.json", type: "object", required: expect.arrayContaining(["name", "version", "engines"]) });
  });
});

describe("immutability and crash safety", () => {
  it("refuses to publish a version again, with the same bytes or others", async () => {
    const p = await newPublisher("immutable");
    const name = `${p.name}/fixed`;
    const first = await publish(p, sampleManifest(name, "1.0.0"));
    expectError(await uploadManifest(p, sampleManifest(name, "1.0.0")), 409, "CONFLICT");
    expectError(await uploadManifest(p, sampleManifest(name, "1.0.0", { title: "Changed" })), 409, "CONFLICT");
    expect((await api("GET", `/v1/registry/packages/${name}/1.0.0`, { token: p.token })).body.digest).toBe(first.digest);
  });

  it("publishes over an object a crash left behind, and serves the published bytes", async () => {
    const p = await newPublisher("crash");
    const name = `${p.name}/orphaned`;
    // A crash after the R2 write and before the D1 batch leaves an object no row names: the same
    // bytes (a retry) at the same key, or other bytes (a different upload) under their own digest.
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    const digest = await digestOf(archive);
    await env.BUNDLES.put(bundleKey(name, "1.0.0", digest), archive);
    const other = packBundle(packageFiles(sampleManifest(name, "1.0.0", { title: "Other" })));
    await env.BUNDLES.put(bundleKey(name, "1.0.0", await digestOf(other)), other);

    const res = await upload(p.token, await signedUpload(archive, name, "1.0.0", p.privateJwk));
    expect(res.status).toBe(201);
    expect((await raw(`/v1/registry/packages/${name}/1.0.0/bundle`, p.token)).bytes).toEqual(archive);
    expectError(await upload(p.token, await signedUpload(other, name, "1.0.0", p.privateJwk)), 409, "CONFLICT");
    expect((await raw(`/v1/registry/packages/${name}/1.0.0/bundle`, p.token)).bytes).toEqual(archive);
  });

  it("lets exactly one of two concurrent uploads of a version win, and serves the winner's bytes", async () => {
    const p = await newPublisher("race");
    const name = `${p.name}/contested`;
    const archives = [packBundle(packageFiles(sampleManifest(name, "1.0.0", { title: "One" }))), packBundle(packageFiles(sampleManifest(name, "1.0.0", { title: "Two" })))];
    const forms = await Promise.all(archives.map((a) => signedUpload(a, name, "1.0.0", p.privateJwk)));
    const results = await Promise.all(forms.map((f) => upload(p.token, f)));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const winner = results.find((r) => r.status === 201)!.body.digest as string;
    const bundle = await raw(`/v1/registry/packages/${name}/1.0.0/bundle`, p.token);
    expect(await digestOf(bundle.bytes)).toBe(winner);
  });
});

describe("signatures and ownership", () => {
  it("refuses a tampered archive with DIGEST_MISMATCH", async () => {
    const p = await newPublisher("tamper");
    const name = `${p.name}/tampered`;
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    const signature = await signPackage({ name, version: "1.0.0", digest: await digestOf(archive) }, p.privateJwk);
    const tampered = archive.slice();
    tampered[tampered.length - 30] = tampered[tampered.length - 30]! ^ 1;
    const form = new FormData();
    form.set("bundle", new File([tampered], "package.zip", { type: "application/zip" }));
    form.set("signature", signature);
    expectError(await upload(p.token, form), 422, "DIGEST_MISMATCH");
    // A whole other archive under the first one's signature is the same mismatch.
    const other = packBundle(packageFiles(sampleManifest(name, "1.0.0", { title: "Swapped" })));
    form.set("bundle", new File([other], "package.zip"));
    expectError(await upload(p.token, form), 422, "DIGEST_MISMATCH");
    expectError(await api("GET", `/v1/registry/packages/${name}`, { token: p.token }), 404, "NOT_FOUND");
  });

  it("refuses a signature by an unregistered key, by another publisher's key, or not a JWS", async () => {
    const p = await newPublisher("keys");
    const name = `${p.name}/signed`;
    const stranger = await generatePublisherKey();
    expectError(await uploadManifest(p, sampleManifest(name, "1.0.0"), { key: stranger.privateJwk }), 422, "SIGNATURE_INVALID");
    // The same tenant's second publisher: its key is not a key of the first.
    const second = await generatePublisherKey();
    const secondName = `@keys-two-${unique()}`;
    expect((await api("POST", "/v1/registry/publishers", { token: p.token, json: { name: secondName, public_key: second.publicJwk } })).status).toBe(201);
    expectError(await uploadManifest(p, sampleManifest(name, "1.0.0"), { key: second.privateJwk }), 422, "SIGNATURE_INVALID");
    // Another tenant's publisher key.
    const other = await newPublisher("keys-other");
    expectError(await uploadManifest(p, sampleManifest(name, "1.0.0"), { key: other.privateJwk }), 422, "SIGNATURE_INVALID");
    // A JWS whose payload is not { name, version, digest }.
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    const form = await signedUpload(archive, name, "1.0.0", p.privateJwk);
    const [header, , sig] = (form.get("signature") as string).split(".");
    form.set("signature", `${header}.${btoa(JSON.stringify({ name })).replace(/=+$/, "")}.${sig}`);
    expectError(await upload(p.token, form), 422, "SIGNATURE_INVALID");
    expectError(await api("GET", `/v1/registry/packages/${name}`, { token: p.token }), 404, "NOT_FOUND");
  });

  it("refuses a manifest whose name or version is not the one signed", async () => {
    const p = await newPublisher("mismatch");
    const name = `${p.name}/signed`;
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    expectError(await uploadArchive(p, archive, name, "1.0.1"), 422, "SIGNATURE_INVALID");
    expectError(await uploadArchive(p, archive, `${p.name}/other`, "1.0.0"), 422, "SIGNATURE_INVALID");
    expectError(await api("GET", `/v1/registry/packages/${p.name}/other`, { token: p.token }), 404, "NOT_FOUND");
  });

  it("refuses another tenant publishing into, or adding keys to, a publisher it does not own", async () => {
    const owner = await newPublisher("owned");
    const intruder = await newPublisher("intruder");
    const name = `${owner.name}/hijack`;
    // Signed with the intruder's own key, or (had it leaked) with the owner's: ownership decides first.
    expectError(await uploadManifest(intruder, sampleManifest(name, "1.0.0")), 403, "FORBIDDEN");
    expectError(await uploadManifest(intruder, sampleManifest(name, "1.0.0"), { key: owner.privateJwk }), 403, "FORBIDDEN");
    const key = await generatePublisherKey();
    expectError(await api("POST", `/v1/registry/publishers/${owner.name}/keys`, { token: intruder.token, json: { public_key: key.publicJwk } }), 403, "FORBIDDEN");
    expect((await api("GET", `/v1/registry/publishers/${owner.name}`, { token: owner.token })).body.keys).toHaveLength(1);
    // Publishing under a scope nobody registered.
    expectError(await uploadManifest(intruder, sampleManifest(`@unclaimed-${unique()}/x`, "1.0.0")), 422, "UNPROCESSABLE");
  });

  it("shows a publisher's owning tenant to that tenant only", async () => {
    const p = await newPublisher("visible");
    const other = await newPublisher("viewer");
    expect((await api("GET", `/v1/registry/publishers/${p.name}`, { token: p.token })).body).toMatchObject({ name: p.name, owner: p.tenantId, keys: [{ kid: p.kid }] });
    expect((await api("GET", `/v1/registry/publishers/${p.name}`, { token: other.token })).body).toMatchObject({ name: p.name, owner: null, keys: [{ kid: p.kid }] });
    expect((await api("GET", `/v1/registry/publishers/${p.name}`, { token: ADMIN })).body).toMatchObject({ owner: p.tenantId });
  });

  it("registers a publisher once, with a valid key, and reserves @erp-edge for the operator", async () => {
    const p = await newPublisher("register");
    const key = await generatePublisherKey();
    expectError(await api("POST", "/v1/registry/publishers", { token: p.token, json: { name: p.name, public_key: key.publicJwk } }), 409, "CONFLICT");
    expectIssue(await api("POST", "/v1/registry/publishers", { token: p.token, json: { name: "acme", public_key: key.publicJwk } }), 400, "VALIDATION_FAILED", { path: "name" });
    expectIssue(await api("POST", "/v1/registry/publishers", { token: p.token, json: { name: `@k-${unique()}`, public_key: { ...key.publicJwk, d: key.privateJwk.d } } }), 400, "VALIDATION_FAILED", { path: "public_key" });
    expectIssue(await api("POST", "/v1/registry/publishers", { token: p.token, json: { name: `@k-${unique()}`, public_key: { ...key.publicJwk, kid: "chosen-by-me" } } }), 400, "VALIDATION_FAILED", { path: "public_key.kid" });

    const reserved = `@erp-edge-${unique()}`;
    expectError(await api("POST", "/v1/registry/publishers", { token: p.token, json: { name: reserved, public_key: key.publicJwk } }), 403, "FORBIDDEN");
    // A caller header sent by the client is replaced by the host's: it cannot make a tenant the operator.
    const forged = await api("POST", "/v1/registry/publishers", { token: p.token, json: { name: reserved, public_key: key.publicJwk }, headers: { [CALLER_HEADER]: JSON.stringify({ kind: "admin" }) } });
    expectError(forged, 403, "FORBIDDEN");
    const admin = await api("POST", "/v1/registry/publishers", { token: ADMIN, json: { name: reserved, public_key: key.publicJwk } });
    expect(admin.status).toBe(201);
    expect(admin.body).toEqual({ name: reserved, owner: "platform", keys: [{ kid: key.kid, public_key: key.publicJwk, created_at: admin.body.created_at }], created_at: admin.body.created_at });
    // The operator publishes into it like any owner.
    const name = `${reserved}/platform-package`;
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    expect((await upload(ADMIN, await signedUpload(archive, name, "1.0.0", key.privateJwk))).status).toBe(201);
    expectError(await uploadManifest(p, sampleManifest(`${reserved}/tenant-package`, "1.0.0"), { key: key.privateJwk }), 403, "FORBIDDEN");
  });

  it("rotates keys: a new key publishes the next version, and the old version keeps its key", async () => {
    const p = await newPublisher("rotate");
    const name = `${p.name}/rotated`;
    await publish(p, sampleManifest(name, "1.0.0"));
    const next = await generatePublisherKey();
    const added = await api("POST", `/v1/registry/publishers/${p.name}/keys`, { token: p.token, json: { public_key: next.publicJwk } });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ kid: next.kid, public_key: next.publicJwk, created_at: expect.any(String) });
    expectError(await api("POST", `/v1/registry/publishers/${p.name}/keys`, { token: p.token, json: { public_key: next.publicJwk } }), 409, "CONFLICT");
    expect((await api("GET", `/v1/registry/publishers/${p.name}`, { token: p.token })).body.keys.map((k: { kid: string }) => k.kid)).toEqual(expect.arrayContaining([p.kid, next.kid]));

    expect((await uploadManifest(p, sampleManifest(name, "1.1.0"), { key: next.privateJwk })).status).toBe(201);
    for (const [version, kid, jwk] of [["1.0.0", p.kid, p.publicJwk], ["1.1.0", next.kid, next.publicJwk]] as const) {
      const v = await api<RegistryVersion>("GET", `/v1/registry/packages/${name}/${version}`, { token: p.token });
      expect(v.body).toMatchObject({ key_id: kid, public_key: { x: jwk.x } });
      const bytes = (await raw(`/v1/registry/packages/${name}/${version}/bundle`, p.token)).bytes;
      await expect(verifyPackage(v.body.signature, v.body.public_key, bytes, { name, version })).resolves.toBeTruthy();
    }
    // The old key still signs too: rotation adds a key, it revokes none.
    expect((await uploadManifest(p, sampleManifest(name, "1.2.0"))).status).toBe(201);
  });
});

describe("deprecation, yanking and latest", () => {
  it("lets the owner deprecate and yank, shows the flags, and keeps latest off yanked and prerelease versions", async () => {
    const p = await newPublisher("flags");
    const other = await newPublisher("flags-other");
    const name = `${p.name}/flagged`;
    for (const version of ["1.0.0", "1.1.0", "2.0.0-beta.1"]) await publish(p, sampleManifest(name, version));
    const pkg = () => api<RegistryPackage>("GET", `/v1/registry/packages/${name}`, { token: other.token });
    expect((await pkg()).body.dist_tags).toEqual({ latest: "1.1.0" });
    expect((await pkg()).body.versions.map((v) => v.version)).toEqual(["1.0.0", "1.1.0", "2.0.0-beta.1"]);

    expectError(await api("POST", `/v1/registry/packages/${name}/1.1.0/yank`, { token: other.token, json: { reason: "mine now" } }), 403, "FORBIDDEN");
    expectError(await api("POST", `/v1/registry/packages/${name}/1.0.0/deprecate`, { token: other.token, json: { message: "mine now" } }), 403, "FORBIDDEN");
    expectIssue(await api("POST", `/v1/registry/packages/${name}/1.1.0/yank`, { token: p.token, json: {} }), 400, "VALIDATION_FAILED", { path: "reason" });
    expectIssue(await api("POST", `/v1/registry/packages/${name}/1.0.0/deprecate`, { token: p.token, json: { message: " " } }), 400, "VALIDATION_FAILED", { path: "message" });
    expectError(await api("POST", `/v1/registry/packages/${name}/3.0.0/yank`, { token: p.token, json: { reason: "x" } }), 404, "NOT_FOUND");

    const yanked = await api("POST", `/v1/registry/packages/${name}/1.1.0/yank`, { token: p.token, json: { reason: "breaks contracts" } });
    expect(yanked.status).toBe(200);
    expect(yanked.body).toMatchObject({ version: "1.1.0", yanked: true, yank_reason: "breaks contracts", deprecated: false });
    const deprecated = await api("POST", `/v1/registry/packages/${name}/1.0.0/deprecate`, { token: p.token, json: { message: "use 2.x" } });
    expect(deprecated.body).toMatchObject({ version: "1.0.0", deprecated: true, deprecation_message: "use 2.x", yanked: false });

    const after = (await pkg()).body;
    expect(after.dist_tags).toEqual({ latest: "1.0.0" });
    expect(after.versions.find((v) => v.version === "1.1.0")).toMatchObject({ yanked: true, yank_reason: "breaks contracts" });
    expect(after.versions.find((v) => v.version === "1.0.0")).toMatchObject({ deprecated: true, deprecation_message: "use 2.x" });
    // A yanked version stays readable and downloadable: an exact pin can still install it.
    expect((await api("GET", `/v1/registry/packages/${name}/1.1.0`, { token: other.token })).body).toMatchObject({ yanked: true });
    expect((await raw(`/v1/registry/packages/${name}/1.1.0/bundle`, other.token)).status).toBe(200);
    const hit = (await api("GET", `/v1/registry/packages?q=${encodeURIComponent(name)}`, { token: other.token })).body.packages[0];
    expect(hit).toMatchObject({ name, latest: "1.0.0" });

    await api("POST", `/v1/registry/packages/${name}/1.0.0/yank`, { token: p.token, json: { reason: "all bad" } });
    expect((await pkg()).body.dist_tags).toEqual({});
  });

  it("accepts a backport below the latest version without changing the package's description", async () => {
    const p = await newPublisher("backport");
    const name = `${p.name}/lts`;
    await publish(p, sampleManifest(name, "2.0.0", { title: "Two" }));
    await publish(p, sampleManifest(name, "1.4.1", { title: "One (backport)" }));
    const pkg = (await api<RegistryPackage>("GET", `/v1/registry/packages/${name}`, { token: p.token })).body;
    expect(pkg).toMatchObject({ title: "Two", dist_tags: { latest: "2.0.0" } });
    expect(pkg.versions.map((v) => v.version)).toEqual(["1.4.1", "2.0.0"]);
    await publish(p, sampleManifest(name, "2.1.0", { title: "Two point one" }));
    expect((await api("GET", `/v1/registry/packages/${name}`, { token: p.token })).body).toMatchObject({ title: "Two point one", dist_tags: { latest: "2.1.0" } });
  });
});

describe("invalid and hostile uploads", () => {
  it("refuses an invalid manifest with 422 naming the file and the JSON path", async () => {
    const p = await newPublisher("invalid");
    const name = `${p.name}/broken`;
    const bad = sampleManifest(name, "1.0.0", { engines: {}, integrations: [{ slug: "Bad Slug", name: "x", use_cases: [] }] });
    const res = await uploadManifest(p, bad);
    expectIssue(res, 422, "UNPROCESSABLE", { file: "blueprint.json", path: "engines.erp-edge" });
    expectIssue(res, 422, "UNPROCESSABLE", { file: "blueprint.json", path: "integrations.0.slug" });
    // A $file that is not in the package.
    const missing = sampleManifest(name, "1.0.0");
    missing.integrations[0]!.use_cases[0]!.configuration = { $file: "mappings/customers.json" } as never;
    expectIssue(await uploadManifest(p, missing), 422, "UNPROCESSABLE", { file: "blueprint.json", path: "integrations.0.use_cases.0.configuration" });
    // ...and with the file present, it publishes.
    expect((await uploadManifest(p, missing, { extra: { "mappings/customers.json": { entities: [] } } })).status).toBe(201);
    // Not JSON at all, and no manifest.
    const archive = packBundle({ "blueprint.json": encoder.encode("{ not json") });
    expectIssue(await uploadArchive(p, archive, name, "1.0.1"), 422, "UNPROCESSABLE", { file: "blueprint.json", path: "" });
    expectError(await uploadArchive(p, packBundle({ "README.md": encoder.encode("hi") }), name, "1.0.1"), 422, "UNPROCESSABLE");
    expectError(await uploadArchive(p, packBundle({ "app.json": encoder.encode("{}") }), name, "1.0.1"), 422, "UNPROCESSABLE");
    expectError(await uploadArchive(p, encoder.encode("not a zip archive"), name, "1.0.1"), 422, "UNPROCESSABLE");
  });

  it("refuses unsafe paths, too many files, zip bombs and oversized archives", async () => {
    const p = await newPublisher("hostile");
    const name = `${p.name}/hostile`;
    const manifest = encoder.encode(JSON.stringify(sampleManifest(name, "1.0.0")));
    for (const path of ["../escape.json", "/etc/passwd", "a/../../b.json", "C:/windows.json", "back\\slash.json"]) {
      const res = await uploadArchive(p, zipSync({ "blueprint.json": manifest, [path]: encoder.encode("{}") }), name, "1.0.0");
      expectIssue(res, 422, "UNPROCESSABLE", { file: path });
    }
    const many: Record<string, Uint8Array> = { "blueprint.json": manifest };
    for (let i = 0; i < 501; i++) many[`fixtures/f${i}.json`] = encoder.encode("{}");
    expectError(await uploadArchive(p, zipSync(many), name, "1.0.0"), 413, "PAYLOAD_TOO_LARGE");
    const bomb = zipSync({ "blueprint.json": manifest, "fixtures/zeros.json": new Uint8Array(26 * 1024 * 1024) }, { level: 9 });
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    expectError(await uploadArchive(p, bomb, name, "1.0.0"), 413, "PAYLOAD_TOO_LARGE");
    // Over 10 MB of incompressible bytes: within the host's 11 MB body limit, refused by the registry.
    const noise = new Uint8Array(10 * 1024 * 1024 + 1024);
    for (let i = 0; i < noise.length; i += 65536) crypto.getRandomValues(noise.subarray(i, i + 65536));
    const big = zipSync({ "blueprint.json": manifest, "fixtures/noise.bin": noise }, { level: 0 });
    expectError(await uploadArchive(p, big, name, "1.0.0"), 413, "PAYLOAD_TOO_LARGE");
    // Over the host's body limit: refused before the registry is asked.
    const huge = new FormData();
    huge.set("bundle", new File([new Uint8Array(12 * 1024 * 1024)], "package.zip"));
    huge.set("signature", "a.b.c");
    expectError(await upload(p.token, huge), 413, "PAYLOAD_TOO_LARGE");
    expectError(await api("GET", `/v1/registry/packages/${name}`, { token: p.token }), 404, "NOT_FOUND");
  });

  it("refuses uploads missing a field, with the wrong media type, or without the right token", async () => {
    const p = await newPublisher("form");
    const name = `${p.name}/form`;
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    const complete = await signedUpload(archive, name, "1.0.0", p.privateJwk);

    const noSignature = new FormData();
    noSignature.set("bundle", complete.get("bundle")!);
    expectIssue(await upload(p.token, noSignature), 400, "VALIDATION_FAILED", { path: "signature" });
    const noBundle = new FormData();
    noBundle.set("signature", complete.get("signature")!);
    expectIssue(await upload(p.token, noBundle), 400, "VALIDATION_FAILED", { path: "bundle" });
    const textBundle = new FormData();
    textBundle.set("bundle", "not a file");
    textBundle.set("signature", complete.get("signature")!);
    expectIssue(await upload(p.token, textBundle), 400, "VALIDATION_FAILED", { path: "bundle" });
    const badSignature = new FormData();
    badSignature.set("bundle", complete.get("bundle")!);
    badSignature.set("signature", "not a jws");
    expectIssue(await upload(p.token, badSignature), 400, "VALIDATION_FAILED", { path: "signature" });
    const twice = await signedUpload(archive, name, "1.0.0", p.privateJwk);
    twice.append("bundle", complete.get("bundle")!);
    expectIssue(await upload(p.token, twice), 400, "VALIDATION_FAILED", { path: "bundle" });

    expectError(await api("POST", "/v1/registry/packages", { token: p.token, json: { bundle: "x", signature: "a.b.c" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectError(await api("POST", "/v1/registry/packages", { token: p.token, body: archive, headers: { "content-type": "application/zip" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectError(await api("POST", "/v1/registry/packages", { token: p.token, body: archive }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectError(await api("POST", "/v1/registry/packages", { token: p.token, body: "--x\r\nbroken", headers: { "content-type": "multipart/form-data; boundary=x" } }), 400, "BAD_REQUEST");

    expectError(await upload("", complete), 401, "UNAUTHORIZED");
    expectError(await upload("not-a-jwt", complete), 401, "UNAUTHORIZED");
    const { token: readOnly } = await createToken(p.tenantId, ["integrations:read"]);
    expectError(await upload(readOnly, complete), 403, "FORBIDDEN");
    expectError(await api("GET", `/v1/registry/packages`, { token: readOnly }), 403, "FORBIDDEN");
    expectError(await api("GET", `/v1/registry/packages`), 401, "UNAUTHORIZED");
    const key = await generatePublisherKey();
    expectError(await api("POST", "/v1/registry/publishers", { token: readOnly, json: { name: `@ro-${unique()}`, public_key: key.publicJwk } }), 403, "FORBIDDEN");
    expect((await upload(p.token, complete)).status).toBe(201);
  });
});

describe("the registry Worker behind the host", () => {
  it("answers only callers the host names", async () => {
    const call = (headers: Record<string, string>) => env.REGISTRY.fetch(new Request("https://registry.internal/v1/registry/packages", { headers }));
    const refused: Record<string, string>[] = [{}, { [CALLER_HEADER]: "admin" }, { [CALLER_HEADER]: JSON.stringify({ kind: "root" }) }, { [CALLER_HEADER]: JSON.stringify({ kind: "tenant", tenant_id: "t" }) }];
    for (const headers of refused) {
      const res = await call(headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: "UNAUTHORIZED" } });
    }
    expect((await call({ [CALLER_HEADER]: JSON.stringify({ kind: "host" }) })).status).toBe(200);
    // The host's own caller (installs) reads but never publishes.
    const key = await generatePublisherKey();
    const res = await env.REGISTRY.fetch(
      new Request("https://registry.internal/v1/registry/publishers", {
        method: "POST",
        headers: { [CALLER_HEADER]: JSON.stringify({ kind: "host" }), "content-type": "application/json" },
        body: JSON.stringify({ name: `@host-${unique()}`, public_key: key.publicJwk }),
      }),
    );
    expect(res.status).toBe(403);
  });

  it("answers 503 with the envelope, and nothing of the failure, when the registry is unreachable", async () => {
    const p = await newPublisher("outage");
    const broken = { ...env, REGISTRY: { fetch: async () => { throw new Error("connect ECONNREFUSED 10.0.0.7:443 internal detail"); } } };
    const res = await app.request("/v1/registry/packages", { headers: { authorization: `Bearer ${p.token}` } }, broken, createExecutionContext());
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ code: "INTERNAL", message: "The registry is unavailable; retry later", error: { code: "INTERNAL", message: "The registry is unavailable; retry later" } });
    expect(text).not.toContain("ECONNREFUSED");
    const failing = { ...env, REGISTRY: { fetch: async () => new Response("stack trace at registry/src/service.ts:42", { status: 500 }) } };
    const res500 = await app.request("/v1/registry/packages", { headers: { authorization: `Bearer ${p.token}` } }, failing, createExecutionContext());
    expect(res500.status).toBe(503);
    expect(await res500.text()).not.toContain("stack trace");
  });
});
