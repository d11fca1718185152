// The registry attacked as a hostile tenant and used by a careless publisher: forged callers and path
// tricks through the host, name squatting, signature and archive tricks, search cost, and headers.
import { exports } from "cloudflare:workers";
import { CompactSign, base64url } from "jose";
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { packBundle } from "../apps-sdk/src/blueprint/bundle";
import { digestOf, generatePublisherKey, signPackage, SIGNATURE_TYPE } from "../apps-sdk/src/blueprint/signing";
import { CALLER_HEADER } from "../src/registry/client";
import { ADMIN, api, createToken, expectError, type ApiResponse } from "./helpers";
import { newPublisher, packageFiles, publish, sampleManifest, signedUpload, unique, upload, type Publisher } from "./registry-helpers";

const encoder = new TextEncoder();

/** Any answer to a malformed request: a 4xx with the error envelope, never a 5xx. */
function expect4xx(res: ApiResponse) {
  expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
  if (res.status !== 405) expect(typeof res.body?.error?.code, JSON.stringify(res.body)).toBe("string");
}

async function uploadArchive(p: Publisher, archive: Uint8Array, name: string, version: string) {
  return upload(p.token, await signedUpload(archive, name, version, p.privateJwk));
}

/** A form with the archive and a hand-made signature. */
function form(archive: Uint8Array, signature: string): FormData {
  const f = new FormData();
  f.set("bundle", new File([archive as Uint8Array<ArrayBuffer>], "package.zip"));
  f.set("signature", signature);
  return f;
}

/**
 * A zip written by hand: every entry `stored`, each central-directory record pointing at `offsetOf`
 * (so several can share one local header: overlapping entries) with the sizes it declares.
 */
function handZip(entries: { name: string; data: Uint8Array; declared?: number; shareWith?: string }[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  const offsets = new Map<string, { offset: number; size: number }>();
  let offset = 0;
  for (const e of entries) {
    if (e.shareWith) continue;
    const name = encoder.encode(e.name);
    const local = new Uint8Array(30 + name.length);
    const v = new DataView(local.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint32(18, e.data.length, true);
    v.setUint32(22, e.data.length, true);
    v.setUint16(26, name.length, true);
    local.set(name, 30);
    offsets.set(e.name, { offset, size: e.data.length });
    chunks.push(local, e.data);
    offset += local.length + e.data.length;
  }
  const cdStart = offset;
  for (const e of entries) {
    const at = offsets.get(e.shareWith ?? e.name)!;
    const name = encoder.encode(e.name);
    const rec = new Uint8Array(46 + name.length);
    const v = new DataView(rec.buffer);
    v.setUint32(0, 0x02014b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(6, 20, true);
    v.setUint32(20, at.size, true);
    v.setUint32(24, e.declared ?? at.size, true);
    v.setUint16(28, name.length, true);
    v.setUint32(42, at.offset, true);
    rec.set(name, 46);
    central.push(rec);
    offset += rec.length;
  }
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, entries.length, true);
  v.setUint16(10, entries.length, true);
  v.setUint32(12, offset - cdStart, true);
  v.setUint32(16, cdStart, true);
  const out = new Uint8Array(offset + 22);
  let at = 0;
  for (const c of [...chunks, ...central, end]) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

describe("the caller header and the host's paths", () => {
  it("ignores a client's own x-erp-edge-caller: the host names the caller", async () => {
    const tenant = await newPublisher("forger");
    const { token: readOnly } = await createToken(tenant.tenantId, ["blueprints:install"]);
    const key = await generatePublisherKey();
    const forged = { [CALLER_HEADER]: JSON.stringify({ kind: "admin" }) };
    expectError(await api("POST", "/v1/registry/publishers", { token: readOnly, headers: forged, json: { name: `@erp-edge-${unique()}`, public_key: key.publicJwk } }), 403, "FORBIDDEN");
    expectError(await api("POST", "/v1/registry/publishers", { token: tenant.token, headers: forged, json: { name: `@erp-edge-${unique()}`, public_key: key.publicJwk } }), 403, "FORBIDDEN");
    expectError(await api("GET", "/v1/registry/packages", { headers: forged }), 401, "UNAUTHORIZED");
  });

  it("answers path tricks with 4xx envelopes, never reaching another route or a 5xx", async () => {
    const p = await newPublisher("paths");
    const name = `${p.name}/paths`;
    await publish(p, sampleManifest(name, "1.0.0"));
    const scope = p.name.slice(1);
    const tricks = [
      `/v1/registry/packages/%40${scope}%2Fpaths`,
      `/v1/registry/packages/${p.name}%2Fpaths/1.0.0`,
      `/v1/registry/packages/${p.name}/paths/..%2F..%2Fpublishers`,
      `/v1/registry/packages/${p.name}/paths/1.0.0%2Fbundle`,
      `/v1/registry/packages/${p.name}/paths/1.0.0/bundle/`,
      `/v1/registry//packages/${p.name}/paths`,
      `/v1/registry/packages/${p.name}/paths/01.0.0`,
      `/v1/registry/packages/${p.name}/paths/1.0.0+x`,
      `/v1/registry/packages/${p.name}/paths/v1.0.0`,
      `/v1/registry/packages/${p.name.toUpperCase()}/paths`,
      `/v1/registry/packages/@${scope}%00/paths`,
      `/v1/registry/packages/${p.name}/%E0%A4%A`,
      `/v1/registry/publishers/${p.name}%40x`,
      `/v1/registry/publishers/${p.name}/keys/../../packages`,
    ];
    for (const path of tricks) {
      const res = await api("GET", path, { token: p.token });
      expect4xx(res);
    }
    // HEAD reads like GET without a body; OPTIONS and other methods are refused.
    const head = await exports.default.fetch(new Request(`http://erp-edge.test/v1/registry/packages/${name}/1.0.0/bundle`, { method: "HEAD", headers: { authorization: `Bearer ${p.token}` } }));
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("application/zip");
    for (const method of ["OPTIONS", "PUT", "DELETE", "PATCH"]) expect4xx(await api(method, `/v1/registry/packages/${name}`, { token: p.token }));
  });

  it("serves bundles as application/zip, never sniffed, and private answers uncached", async () => {
    const p = await newPublisher("headers");
    const name = `${p.name}/headers`;
    await publish(p, sampleManifest(name, "1.0.0"));
    const res = await exports.default.fetch(new Request(`http://erp-edge.test/v1/registry/packages/${name}/1.0.0/bundle`, { headers: { authorization: `Bearer ${p.token}` } }));
    expect(res.headers.get("content-type")).toBe("application/zip");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toMatch(/no-store|private/);
    await res.arrayBuffer();
    const publisher = await api("GET", `/v1/registry/publishers/${p.name}`, { token: p.token });
    expect(publisher.body.owner).toBe(p.tenantId);
    expect(publisher.headers.get("cache-control")).toMatch(/no-store|private/);
  });
});

describe("squatting and keys", () => {
  it("reserves @erp-edge and its look-alikes for the operator", async () => {
    const p = await newPublisher("squat");
    const key = await generatePublisherKey();
    for (const name of ["@erp-edge", "@erp-edge-x", "@erpedge", "@erp--edge", "@3rp-edge", "@erp-edg3-tools", "@e-r-p-e-d-g-e"]) {
      expectError(await api("POST", "/v1/registry/publishers", { token: p.token, json: { name, public_key: key.publicJwk } }), 403, "FORBIDDEN");
    }
    for (const name of ["@Erp-Edge", "@ерп-edge", "@erp_edge", "@erp.edge", "@ erp-edge"]) {
      expectError(await api("POST", "/v1/registry/publishers", { token: p.token, json: { name, public_key: key.publicJwk } }), 400, "VALIDATION_FAILED");
    }
    const operator = await api("POST", "/v1/registry/publishers", { token: ADMIN, json: { name: `@erpedge-${unique()}`, public_key: key.publicJwk } });
    expect(operator.status).toBe(201);
  });

  it("refuses a private key as a public key, and a kid that is not the key's", async () => {
    const p = await newPublisher("keys");
    const key = await generatePublisherKey();
    const withD = { ...key.publicJwk, d: key.privateJwk.d };
    expectError(await api("POST", `/v1/registry/publishers/${p.name}/keys`, { token: p.token, json: { public_key: withD } }), 400, "VALIDATION_FAILED");
    const other = await generatePublisherKey();
    expectError(await api("POST", `/v1/registry/publishers/${p.name}/keys`, { token: p.token, json: { public_key: { ...key.publicJwk, kid: other.kid } } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", `/v1/registry/publishers/${p.name}/keys`, { token: p.token, json: { public_key: { ...key.publicJwk, kty: "oct", k: "c2VjcmV0" } } }), 400, "VALIDATION_FAILED");
  });
});

describe("signature tricks", () => {
  it("refuses alg none and HS256, another publisher's kid, extra payload fields and non-canonical versions", async () => {
    const p = await newPublisher("jws");
    const other = await newPublisher("jwsother");
    const name = `${p.name}/jws`;
    const archive = packBundle(packageFiles(sampleManifest(name, "1.0.0")));
    const digest = await digestOf(archive);
    const payload = base64url.encode(JSON.stringify({ name, version: "1.0.0", digest }));
    const header = (h: Record<string, unknown>) => base64url.encode(JSON.stringify(h));
    const none = `${header({ alg: "none", kid: p.kid, typ: SIGNATURE_TYPE })}.${payload}.AAAA`;
    expect4xx(await upload(p.token, form(archive, none)));
    const hs = await new CompactSign(encoder.encode(JSON.stringify({ name, version: "1.0.0", digest })))
      .setProtectedHeader({ alg: "HS256", kid: p.kid, typ: SIGNATURE_TYPE })
      .sign(encoder.encode(p.publicJwk.x));
    expectError(await upload(p.token, form(archive, hs)), 422, "SIGNATURE_INVALID");
    // Signed by another publisher's key (whose kid the header names).
    expectError(await upload(p.token, form(archive, await signPackage({ name, version: "1.0.0", digest }, other.privateJwk))), 422, "SIGNATURE_INVALID");
    const extra = await new CompactSign(encoder.encode(JSON.stringify({ name, version: "1.0.0", digest, admin: true })))
      .setProtectedHeader({ alg: "EdDSA", kid: p.kid, typ: SIGNATURE_TYPE })
      .sign(await crypto.subtle.importKey("jwk", { ...p.privateJwk, alg: undefined, use: undefined, kid: undefined } as JsonWebKey, { name: "Ed25519" }, false, ["sign"]));
    expectError(await upload(p.token, form(archive, extra)), 422, "SIGNATURE_INVALID");
    for (const version of ["01.0.0", "1.0.0+x", "v1.0.0", "1.0"]) {
      const m = sampleManifest(name, version);
      const a = packBundle(packageFiles(m));
      const res = await upload(p.token, form(a, await new CompactSign(encoder.encode(JSON.stringify({ name, version, digest: await digestOf(a) })))
        .setProtectedHeader({ alg: "EdDSA", kid: p.kid, typ: SIGNATURE_TYPE })
        .sign(await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: p.privateJwk.x, d: p.privateJwk.d } as JsonWebKey, { name: "Ed25519" }, false, ["sign"]))));
      expect4xx(res);
    }
    expect((await upload(p.token, await signedUpload(archive, name, "1.0.0", p.privateJwk))).status).toBe(201);
  });
});

describe("archive tricks", () => {
  it("counts a stored entry by the bytes it really holds, so overlapping entries cannot multiply an archive", async () => {
    const p = await newPublisher("overlap");
    const name = `${p.name}/overlap`;
    const manifest = encoder.encode(JSON.stringify(sampleManifest(name, "1.0.0")));
    const block = new Uint8Array(1024 * 1024).fill(32);
    // 30 names over one 1 MB stored entry, each declaring 0 bytes: 30 MB once unpacked.
    const entries = [{ name: "blueprint.json", data: manifest }, { name: "fixtures/a.bin", data: block, declared: 0 }];
    for (let i = 0; i < 30; i++) entries.push({ name: `fixtures/b${i}.bin`, data: block, declared: 0, shareWith: "fixtures/a.bin" } as never);
    const archive = handZip(entries);
    expect(archive.byteLength).toBeLessThan(2 * 1024 * 1024);
    expectError(await uploadArchive(p, archive, name, "1.0.0"), 413, "PAYLOAD_TOO_LARGE");
  });

  it("refuses duplicate names and __proto__ in an archive", async () => {
    const p = await newPublisher("dupes");
    const name = `${p.name}/dupes`;
    const manifest = encoder.encode(JSON.stringify(sampleManifest(name, "1.0.0")));
    const other = encoder.encode(JSON.stringify(sampleManifest(name, "1.0.0", { title: "Another title" })));
    const dupes = handZip([{ name: "blueprint.json", data: manifest }, { name: "blueprint.json", data: other }]);
    expectError(await uploadArchive(p, dupes, name, "1.0.0"), 422, "UNPROCESSABLE");
    const proto = handZip([{ name: "blueprint.json", data: manifest }, { name: "__proto__", data: encoder.encode("{}") }]);
    expectError(await uploadArchive(p, proto, name, "1.0.0"), 422, "UNPROCESSABLE");
  });

  it("bounds what $file references expand to, however often one file is referenced", async () => {
    const p = await newPublisher("fanout");
    const name = `${p.name}/fanout`;
    // One 1.5 MB JSON file referenced by 100 use cases: 150 MB of parsed JSON if each were read.
    const big = { entities: [{ entity_schema: "contact", unique_ids: ["id"], fields: [{ attribute: "id", field: "id" }] }], padding: "x".repeat(1_500_000) };
    const useCases = Array.from({ length: 100 }, (_, i) => ({ slug: `uc${i}`, name: `UC ${i}`, type: "inbound", configuration: { $file: "big.json" } }));
    const manifest = sampleManifest(name, "1.0.0", { integrations: [{ slug: "fan", name: "Fan", use_cases: useCases }] });
    const archive = zipSync({ "blueprint.json": encoder.encode(JSON.stringify(manifest)), "big.json": encoder.encode(JSON.stringify(big)) }, { level: 9 });
    expectError(await uploadArchive(p, archive, name, "1.0.0"), 413, "PAYLOAD_TOO_LARGE");
  });

  it("refuses a manifest too large to store as one row", async () => {
    const p = await newPublisher("fatmanifest");
    const name = `${p.name}/fat`;
    const breaking: Record<string, string> = {};
    for (let i = 0; i < 80; i++) breaking[String(i + 2)] = "x".repeat(19_000);
    const manifest = sampleManifest(name, "1.0.0", { breaking_changes: breaking });
    const res = await uploadArchive(p, packBundle(packageFiles(manifest)), name, "1.0.0");
    expectError(res, 413, "PAYLOAD_TOO_LARGE");
  });

  it("refuses a package holding a private key or an environment file", async () => {
    const p = await newPublisher("secrets");
    const name = `${p.name}/secrets`;
    const manifest = encoder.encode(JSON.stringify(sampleManifest(name, "1.0.0")));
    const cases: Record<string, Uint8Array> = {
      "publisher-key.jwk": encoder.encode(JSON.stringify(p.privateJwk)),
      "keys/signing.json": encoder.encode(JSON.stringify(p.privateJwk)),
      "config/.dev.vars": encoder.encode("SECRET=1"),
      ".env": encoder.encode("TOKEN=1"),
      "tls/server.pem": encoder.encode("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"),
    };
    for (const [file, bytes] of Object.entries(cases)) {
      const archive = zipSync({ "blueprint.json": manifest, [file]: bytes });
      const res = await uploadArchive(p, archive, name, "1.0.0");
      const details = expectError(res, 422, "UNPROCESSABLE") as { file: string }[];
      expect(details.map((d) => d.file)).toContain(file);
    }
  });
});

describe("multipart and body tricks", () => {
  it("refuses a chunked upload over the limit, a huge signature and a body without a boundary", async () => {
    const p = await newPublisher("multipart");
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 12 * 1024 * 1024) return controller.close();
        sent += 1024 * 1024;
        controller.enqueue(new Uint8Array(1024 * 1024));
      },
    });
    const res = await exports.default.fetch(
      new Request("http://erp-edge.test/v1/registry/packages", {
        method: "POST",
        headers: { authorization: `Bearer ${p.token}`, "content-type": "multipart/form-data; boundary=x" },
        body: stream,
        duplex: "half",
      } as RequestInit),
    );
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });
    // Without a token the body is not read at all: no anonymous client makes the host buffer 11 MB.
    let pulled = 0;
    const anonymous = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= 12 * 1024 * 1024) return controller.close();
        pulled += 1024 * 1024;
        controller.enqueue(new Uint8Array(1024 * 1024));
      },
    });
    const refused = await exports.default.fetch(
      new Request("http://erp-edge.test/v1/registry/packages", { method: "POST", headers: { "content-type": "multipart/form-data; boundary=x" }, body: anonymous, duplex: "half" } as RequestInit),
    );
    expect(refused.status).toBe(401);
    expect(pulled).toBeLessThanOrEqual(2 * 1024 * 1024);
    const archive = packBundle(packageFiles(sampleManifest(`${p.name}/x`, "1.0.0")));
    expectError(await upload(p.token, form(archive, `${"a".repeat(5000)}.b.c`)), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v1/registry/packages", { token: p.token, body: "x", headers: { "content-type": "multipart/form-data" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
  });
});

describe("media type parameters", () => {
  it("accepts multipart parameters in any order (charset before boundary)", async () => {
    const p = await newPublisher("order");
    const name = `${p.name}/params`;
    const body = await signedUpload(packBundle(packageFiles(sampleManifest(name, "1.0.0"))), name, "1.0.0", p.privateJwk);
    const encoded = new Request("http://x", { method: "POST", body });
    const boundary = /boundary=(\S+)/.exec(encoded.headers.get("content-type")!)![1]!;
    const res = await api("POST", "/v1/registry/packages", {
      token: p.token,
      body: await encoded.arrayBuffer(),
      headers: { "content-type": `multipart/form-data; charset=utf-8; boundary=${boundary}` },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });
});

describe("search cost and paging", () => {
  it("treats % and _ literally, and refuses absurd limits, long queries and forged cursors", async () => {
    const p = await newPublisher("likeq");
    await publish(p, sampleManifest(`${p.name}/one`, "1.0.0"));
    for (const q of ["%", "_", "%%", "\\", "%_%"]) {
      const res = await api("GET", `/v1/registry/packages?q=${encodeURIComponent(q)}`, { token: p.token });
      expect(res.status).toBe(200);
      expect(res.body.packages).toEqual([]);
    }
    for (const query of ["limit=1e9", "limit=0", "limit=-1", "limit=abc", `q=${"a".repeat(101)}`, "cursor=!!!", `cursor=${btoa(JSON.stringify({ after: "' OR 1=1 --" }))}`, "kind=evil", `cursor=${"a".repeat(300)}`]) {
      expect4xx(await api("GET", `/v1/registry/packages?${query}`, { token: p.token }));
    }
  });
});

describe("yanking and ownership", () => {
  it("keeps a yanked version's number taken, and lets only the owner yank or deprecate", async () => {
    const p = await newPublisher("yank");
    const stranger = await newPublisher("stranger");
    const name = `${p.name}/yank`;
    await publish(p, sampleManifest(name, "1.0.0"));
    expectError(await api("POST", `/v1/registry/packages/${name}/1.0.0/yank`, { token: stranger.token, json: { reason: "mine now" } }), 403, "FORBIDDEN");
    expectError(await api("POST", `/v1/registry/packages/${name}/1.0.0/deprecate`, { token: stranger.token, json: { message: "mine now" } }), 403, "FORBIDDEN");
    expect((await api("POST", `/v1/registry/packages/${name}/1.0.0/yank`, { token: p.token, json: { reason: "broken" } })).status).toBe(200);
    const again = await upload(p.token, await signedUpload(packBundle(packageFiles(sampleManifest(name, "1.0.0", { title: "Fixed" }))), name, "1.0.0", p.privateJwk));
    expectError(again, 409, "CONFLICT");
    expect4xx(await api("POST", `/v1/registry/packages/${name}/1.0.0/yank`, { token: p.token, json: { reason: "" } }));
    expect4xx(await api("POST", `/v1/registry/packages/${name}/1.0.0/yank`, { token: p.token, json: { reason: "x", extra: 1 } }));
    expect4xx(await api("POST", `/v1/registry/packages/${name}/9.9.9/yank`, { token: p.token, json: { reason: "x" } }));
  });
});
