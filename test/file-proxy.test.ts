// The file proxy (issue #13) against the fake archive on loopback: signed and token downloads, the
// two-step OAuth configuration, streaming, Range, token reuse, refusals and what never leaks.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { fileUrl } from "../src/file-proxy/signing";
import { api, createToken, expectError } from "./helpers";
import { findOne, post, waitFor } from "./inbound-helpers";
import { ARCHIVE, ARCHIVE_HOST, archiveConfiguration, archiveSetup, archiveStats, byteAt, expectedDigest, open, signedPath, streamDigest } from "./file-proxy-helpers";

const MiB = 1024 * 1024;

describe("file proxy downloads", () => {
  it("serves a two-step OAuth archive's file with its bytes, type, length, ETag and UTF-8 filename", async () => {
    const { token, integrationId } = await archiveSetup();
    const { path, expires_at } = await signedPath(token, integrationId, { document_id: "Ü-4711" });
    expect(Date.parse(expires_at) - Date.now()).toBeGreaterThan(3500_000);
    const res = await open(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/pdf");
    expect(res.headers.get("content-length")).toBe(String(MiB));
    expect(res.headers.get("cache-control")).toContain("private");
    expect(res.headers.get("etag")).toBe('"%C3%9C-4711-1048576"');
    expect(res.headers.get("content-disposition")).toBe(`inline; filename="Rechnung U-4711.pdf"; filename*=UTF-8''Rechnung%20%C3%9C-4711.pdf`);
    expect(await streamDigest(res.body!)).toEqual({ sha256: await expectedDigest(0, MiB - 1), bytes: MiB });
  });

  it("streams a 50 MB file through whole (bytes and digest)", async () => {
    const { token, integrationId } = await archiveSetup();
    const size = 50 * MiB;
    const res = await open((await signedPath(token, integrationId, { document_id: `big-size-${size}` })).path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(size));
    expect(await streamDigest(res.body!)).toEqual({ sha256: await expectedDigest(0, size - 1), bytes: size });
  });

  it("passes Range to the archive and answers 206 with the slice; 416 outside the file", async () => {
    const { token, integrationId } = await archiveSetup();
    const { path } = await signedPath(token, integrationId, { document_id: "ranged" });
    const res = await open(path, { range: "bytes=1000-1999" });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 1000-1999/${MiB}`);
    expect(res.headers.get("content-length")).toBe("1000");
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(1000);
    expect(bytes.every((b, i) => b === byteAt(1000 + i))).toBe(true);
    const beyond = await open(path, { range: `bytes=${MiB + 10}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe(`bytes */${MiB}`);
    expect((await beyond.json<any>()).error.code).toBe("RANGE_NOT_SATISFIABLE");
  });

  it("fetches the OAuth token once for many downloads, and again once it expires", async () => {
    const { token, integrationId, client } = await archiveSetup({ configuration: archiveConfiguration({}, "?ttl=3") });
    const { path } = await signedPath(token, integrationId, { document_id: "many" });
    await Promise.all(Array.from({ length: 6 }, async () => expect((await open(path)).status).toBe(200)));
    for (let i = 0; i < 3; i++) {
      const res = await open(path);
      await res.body?.cancel();
    }
    expect(await archiveStats(client)).toEqual({ tokens_issued: 1, downloads: 9 });
    // A 3 s token is renewed 0.3 s before it expires; downloads then use a second one.
    await vi.waitFor(
      async () => {
        const res = await open(path);
        expect(res.status).toBe(200);
        await res.body?.cancel();
        expect((await archiveStats(client)).tokens_issued).toBe(2);
      },
      { timeout: 15_000, interval: 500 },
    );
  });

  it("accepts a files:read token instead of a signature, within the token's tenant only", async () => {
    const { tenant, integrationId } = await archiveSetup();
    const reader = (await createToken(tenant.id, ["files:read"])).token;
    const res = await api("GET", `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=by-token`, { token: reader });
    expect(res.status).toBe(200);
    expect(res.body.length).toBeGreaterThan(0);
    const other = await archiveSetup();
    expectError(await api("GET", `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=x`, { token: other.token }), 404, "NOT_FOUND");
    const noScope = (await createToken(tenant.id, ["integrations:read"])).token;
    expectError(await api("GET", `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=x`, { token: noScope }), 403, "FORBIDDEN");
    expectError(await api("GET", `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=x`), 401, "UNAUTHORIZED");
  });

  it("answers the archive's 404 with 404, a missing or unknown parameter with 400, a slow archive with 504", async () => {
    const { token, integrationId } = await archiveSetup({ configuration: archiveConfiguration({ timeout_seconds: 1 }) });
    const base = `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices`;
    expectError(await api("GET", `${base}&document_id=missing-1`, { token }), 404, "NOT_FOUND");
    expect(expectError(await api("GET", base, { token }), 400, "BAD_REQUEST")).toBeUndefined();
    expect((await api("GET", base, { token })).body.error.message).toContain("'document_id'");
    expect((await api("GET", `${base}&document_id=1&color=red`, { token })).body.error.message).toContain("'color'");
    expectError(await api("GET", `${base}&document_id=1&document_id=2`, { token }), 400, "BAD_REQUEST");
    expectError(await api("GET", `${base}&document_id=slow-1`, { token }), 504, "ARCHIVE_TIMEOUT");
    expectError(await api("GET", `/v1/files/download?integration_id=${integrationId}&use_case_slug=nope&document_id=1`, { token }), 404, "NOT_FOUND");
  });

  it("serves a base64 file from a JSON step", async () => {
    const configuration = archiveConfiguration({
      steps: [{ url: "{{{env.ARCHIVE_URL}}}/api/documents/{{params.document_id}}/content", method: "GET", response_type: "json" }],
      response: { body: "steps[0].body.content_base64", encoding: "base64", filename: "steps[0].body.filename", content_type: "'image/jpeg'" },
    });
    const { token, integrationId } = await archiveSetup({ configuration });
    const res = await open((await signedPath(token, integrationId, { document_id: "photo-size-5000" })).path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    expect(res.headers.get("content-disposition")).toContain("filename*=UTF-8''Z%C3%A4hlerfoto%20photo-size-5000.jpg");
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(5000);
    expect(bytes.every((b, i) => b === byteAt(i))).toBe(true);
  });
});

describe("signed URLs", () => {
  it("refuses expired, tampered and other-tenant URLs with 403", async () => {
    const a = await archiveSetup();
    const b = await archiveSetup();
    const { url } = await signedPath(a.token, a.integrationId, { document_id: "4711" });
    const tampered = new URL(url);
    tampered.searchParams.set("document_id", "4712");
    expectError(await api("GET", `${tampered.pathname}${tampered.search}`), 403, "FORBIDDEN");
    const badSig = new URL(url);
    badSig.searchParams.set("sig", `${badSig.searchParams.get("sig")!.slice(0, -2)}AA`);
    expectError(await api("GET", `${badSig.pathname}${badSig.search}`), 403, "FORBIDDEN");
    const longer = new URL(url);
    longer.searchParams.set("exp", String(Number(longer.searchParams.get("exp")) + 3600));
    expectError(await api("GET", `${longer.pathname}${longer.search}`), 403, "FORBIDDEN");
    // B's URL pointed at A's integration: the signature binds B's tenant and integration.
    const other = new URL((await signedPath(b.token, b.integrationId, { document_id: "4711" })).url);
    other.searchParams.set("integration_id", a.integrationId);
    expectError(await api("GET", `${other.pathname}${other.search}`), 403, "FORBIDDEN");
    // Signed with the real key but already expired.
    const expired = new URL(
      await fileUrl("http://erp-edge.test", env.SECRETS_KEY, {
        tenantId: a.tenant.id, integrationId: a.integrationId, useCaseSlug: "invoices", useCaseId: a.useCases.find((u) => u.slug === "invoices")!.id,
        params: { document_id: "4711" }, exp: Math.floor(Date.now() / 1000) - 5,
      }),
    );
    const res = await api("GET", `${expired.pathname}${expired.search}`);
    expectError(res, 403, "FORBIDDEN");
    expect(res.body.error.message).toContain("expired");
    // The untouched URL works.
    expect((await open(new URL(url).pathname + new URL(url).search)).status).toBe(200);
  });

  it("signs only the tenant's own use cases, with declared parameters", async () => {
    const a = await archiveSetup();
    const b = await archiveSetup();
    expectError(await api("POST", "/v1/files/sign", { token: b.token, json: { integration_id: a.integrationId, use_case_slug: "invoices", params: { document_id: "1" } } }), 404, "NOT_FOUND");
    expectError(await api("POST", "/v1/files/sign", { token: a.token, json: { integration_id: a.integrationId, use_case_slug: "invoices", params: {} } }), 400, "BAD_REQUEST");
    expectError(await api("POST", "/v1/files/sign", { token: a.token, json: { integration_id: a.integrationId, use_case_slug: "invoices", params: { sig: "x" } } }), 400, "BAD_REQUEST");
    expectError(await api("POST", "/v1/files/sign", { token: a.token, json: { integration_id: a.integrationId, use_case_slug: "invoices", params: { document_id: "1" }, expires_in: 0 } }), 400, "VALIDATION_FAILED");
    // A prototype key is never a parameter (zod leaves it out of the record).
    const proto = await api("POST", "/v1/files/sign", { token: a.token, json: { integration_id: a.integrationId, use_case_slug: "invoices", params: JSON.parse('{"document_id":"1","__proto__":"x"}') } });
    expect(proto.status).toBe(200);
    expect(proto.body.url).not.toContain("proto");
  });

  it("gives a mapped file entity a custom_download_url that opens", async () => {
    const invoiceFiles = {
      event_names: ["InvoiceArchived"],
      entities: [
        {
          entity_schema: "file",
          unique_ids: ["external_id"],
          fields: [
            { attribute: "external_id", field: "doc_id" },
            { attribute: "filename", field: "name" },
            { attribute: "custom_download_url", file_proxy_url: { use_case_slug: "invoices", params: { document_id: { field: "doc_id" } } } },
          ],
        },
      ],
    };
    const { token, integrationId } = await archiveSetup({ useCases: [{ name: "Invoice files", slug: "invoice-files", type: "inbound", configuration: invoiceFiles }] });
    const [accepted] = await post(token, integrationId, [{ use_case_slug: "invoice-files", format: "json", payload: { doc_id: "INV-2026-0042", name: "Rechnung INV-2026-0042.pdf" } }]);
    expect((await waitFor(token, accepted!.event_id)).status).toBe("done");
    const file = await findOne(token, "file", "external_id=INV-2026-0042");
    const link = new URL(file.attributes.custom_download_url);
    expect(link.origin).toBe("http://localhost:8787");
    expect(link.pathname).toBe("/v1/files/download");
    expect(link.searchParams.get("document_id")).toBe("INV-2026-0042");
    // Without url_expires_in the link does not expire (2100-01-01).
    expect(link.searchParams.get("exp")).toBe(String(Date.UTC(2100, 0, 1) / 1000));
    const res = await open(`${link.pathname}${link.search}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toContain("Rechnung%20INV-2026-0042.pdf");
    await res.body?.cancel();
  });
});

describe("file proxy safety", () => {
  const receiverHost = new URL(env.RECEIVER_URL).host;

  it("refuses steps at loopback, private and link-local addresses before any request", async () => {
    const key = crypto.randomUUID();
    // Hostnames that are literal private addresses in other spellings too: decimal, hex, IPv4-mapped IPv6.
    const targets = [
      `http://${receiverHost}/hook/${key}`, "http://[::1]/x", "http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/",
      "http://[::ffff:127.0.0.1]/x", "http://2130706433/x", "http://0x7f.1/x", "http://[::ffff:a00:1]/x", "http://[fd00::1]/x", "http://localhost/x",
    ];
    for (const target of targets) {
      const host = new URL(target).host;
      const configuration = archiveConfiguration({
        auth: { type: "none" },
        steps: [{ url: target, method: "GET", response_type: "binary" }],
        response: { body: "steps[0].body", encoding: "binary" },
        allowed_hosts: [host],
      });
      const { token, integrationId } = await archiveSetup({ configuration });
      const res = await api("GET", `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=1`, { token });
      expectError(res, 502, "ARCHIVE_HOST_REFUSED");
    }
    // The receiver on loopback (allowed for webhooks, not for the file proxy) saw nothing.
    expect(await (await fetch(`${env.RECEIVER_URL}/_requests/${key}`)).json()).toEqual([]);
  });

  it("refuses a host outside allowed_hosts, also through a redirect", async () => {
    const configuration = archiveConfiguration({
      params: [{ name: "document_id", required: true }, { name: "base", required: false }],
      steps: [{ url: "{{{params.base}}}/api/documents/{{params.document_id}}", method: "GET", response_type: "json" }],
      response: { body: "steps[0].body.document_id", encoding: "binary" },
    });
    const { token, integrationId } = await archiveSetup({ configuration });
    const base = `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=1`;
    const outside = await api("GET", `${base}&base=${encodeURIComponent("https://evil.example.com")}`, { token });
    expectError(outside, 502, "ARCHIVE_HOST_REFUSED");
    expect(outside.body.error.message).toContain("allowed_hosts");
    expect((await api("GET", `${base}&base=${encodeURIComponent(ARCHIVE)}`, { token })).status).toBe(200);

    const redirecting = archiveConfiguration({
      params: [{ name: "to", required: true }],
      steps: [{ url: "{{{env.ARCHIVE_URL}}}/redirect?to={{params.to}}", method: "GET", response_type: "binary" }],
      response: { body: "steps[0].body", encoding: "binary" },
    });
    const r = await archiveSetup({ configuration: redirecting });
    const via = (to: string) => api("GET", `/v1/files/download?integration_id=${r.integrationId}&use_case_slug=invoices&to=${encodeURIComponent(to)}`, { token: r.token });
    expectError(await via("http://169.254.169.254/latest/meta-data/"), 502, "ARCHIVE_HOST_REFUSED");
    expectError(await via(`${env.RECEIVER_URL}/hook/x`), 502, "ARCHIVE_HOST_REFUSED");
    // A redirect within the archive is followed (the Bearer token goes along: same origin).
    expect((await via(`${ARCHIVE}/files/redirected-size-10`)).status).toBe(200);
  });

  it("never shows a secret or token in answers, errors or the download log", async () => {
    const secret = `s3cret`;
    const { token, integrationId, client } = await archiveSetup({ secret });
    const base = `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices`;
    const answers = [
      await api("GET", `${base}&document_id=echo-1`, { token }),
      await api("GET", `${base}&document_id=missing-1`, { token }),
      await api("GET", `${base}&document_id=${secret}`, { token }),
    ];
    expectError(answers[0]!, 502, "ARCHIVE_ERROR");
    // Wrong credentials: the token request fails.
    const wrong = await archiveSetup({ secret: "not-the-secret-123" });
    const refused = await api("GET", `/v1/files/download?integration_id=${wrong.integrationId}&use_case_slug=invoices&document_id=1`, { token: wrong.token });
    expectError(refused, 502, "ARCHIVE_AUTH_FAILED");
    expect(JSON.stringify(refused.body)).not.toContain("not-the-secret-123");
    for (const res of answers) {
      const text = JSON.stringify(res.body);
      expect(text).not.toContain("tok-");
      expect(text).not.toContain(client);
    }
    expect(JSON.stringify(answers[0]!.body)).not.toContain(secret);
    const integration = await api("GET", `/v2/integrations/${integrationId}`, { token });
    expect(JSON.stringify(integration.body)).not.toContain(secret);
    await vi.waitFor(async () => {
      const { results } = await env.DB.prepare("SELECT * FROM file_downloads WHERE integration_id = ?").bind(integrationId).all();
      expect(results.length).toBe(3);
      const text = JSON.stringify(results);
      expect(text).not.toContain("tok-");
      expect(text).not.toContain(client);
      // The parameter that equals the secret is masked in the log.
      expect(text).not.toContain(secret);
    });
  });

  it("holds a source address to its rate before any signature is checked", async () => {
    const { integrationId } = await archiveSetup();
    const source = `203.0.113.${Math.floor(Math.random() * 250)}`;
    const junk = `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=1&exp=4102444800&sig=AAAA`;
    const statuses = await Promise.all(Array.from({ length: 160 }, async () => (await api("GET", junk, { headers: { "cf-connecting-ip": source } })).status));
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 429 && s !== 403)).toEqual([]);
  });

  it("holds a tenant to its download rate", async () => {
    const { token, integrationId } = await archiveSetup();
    const base = `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices`;
    const statuses = await Promise.all(Array.from({ length: 100 }, async () => (await api("GET", base, { token })).status));
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 429 && s !== 400)).toEqual([]);
  });
});

describe("file_proxy configurations", () => {
  const save = async (configuration: unknown, token?: string) => {
    const ctx = token ? { token } : await archiveSetup();
    return api("POST", "/v2/integrations", { token: ctx.token, json: { name: "Archive", use_cases: [{ name: "Files", slug: "files", type: "file_proxy", configuration }] } });
  };

  it("refuses templates outside the subset, a templated host without allowed_hosts and missing auth fields", async () => {
    const { token } = await archiveSetup();
    const step = (url: string) => ({ steps: [{ url, method: "GET", response_type: "binary" }], response: { body: "steps[0].body", encoding: "binary" } });
    expect((await save(step("https://archive.example.com/x/{{params.id}}"), token)).status).toBe(201);
    for (const [configuration, path] of [
      [step("https://archive.example.com/{{> partial}}"), "steps.0.url"],
      [step("https://archive.example.com/{{params.constructor}}"), "steps.0.url"],
      [step("https://archive.example.com/{{#params}}"), "steps.0.url"],
      [step("{{{env.BASE}}}/x"), "steps.0.url"],
      [{ ...step("https://archive.example.com/x"), allowed_hosts: ["other.example.com"] }, "steps.0.url"],
      [{ ...step("https://archive.example.com/x"), auth: { type: "oauth2_client_credentials", client_id: "a", client_secret: "b" } }, "auth.token_url"],
      [{ ...step("https://archive.example.com/x"), auth: { type: "api_key", value: "k" } }, "auth.header"],
      [{ ...step("https://archive.example.com/x"), response: { body: "steps[0.body", encoding: "binary" } }, "response.body"],
      [{ ...step("https://archive.example.com/x"), params: [{ name: "exp", required: true }] }, "params.0.name"],
      [{ steps: [], response: { body: "x", encoding: "binary" } }, "steps"],
      [{ ...step("https://archive.example.com/x"), steps: [{ url: "https://archive.example.com/x", method: "GET", response_type: "binary", body: "b" }] }, "steps.0.body"],
    ] as const) {
      const details = expectError(await save(configuration, token), 400, "VALIDATION_FAILED");
      expect(JSON.stringify(details)).toContain(path);
    }
  });

  it("needs secrets:use to save a configuration that sends environment values", async () => {
    const { tenant } = await archiveSetup();
    const writer = (await createToken(tenant.id, ["integrations:write", "integrations:read"])).token;
    const res = await save(archiveConfiguration(), writer);
    expectError(res, 403, "FORBIDDEN");
    expect(res.body.error.details.environment_keys).toEqual(expect.arrayContaining(["ARCHIVE_URL", "ARCHIVE_SECRET"]));
    expect(ARCHIVE_HOST).toContain("127.0.0.1");
  });
});

// Findings of a hostile review, kept as regressions.
describe("file proxy under attack", () => {
  const download = (integrationId: string, token: string, query: string, headers: Record<string, string> = {}) =>
    api("GET", `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&${query}`, { token, headers });

  it("refuses templates that read the whole environment, so secrets:use cannot be bypassed", async () => {
    const { tenant } = await archiveSetup();
    const writer = (await createToken(tenant.id, ["integrations:write", "integrations:read"])).token;
    for (const client_id of ["{{#env}}{{ARCHIVE_CLIENT}}{{/env}}", "{{env}}", "{{{auth}}}"]) {
      const configuration = archiveConfiguration({ auth: { type: "oauth2_client_credentials", token_url: `${ARCHIVE}/oauth/token`, client_id, client_secret: "x" }, allowed_hosts: [ARCHIVE_HOST] });
      const res = await api("POST", "/v2/integrations", { token: writer, json: { name: "Leak", use_cases: [{ name: "F", slug: "f", type: "file_proxy", configuration }] } });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain("auth.client_id");
    }
  });

  it("never shows a secret URL-encoded in an error", async () => {
    const secret = "S3cr3t/Value+x=1&y z";
    const configuration = archiveConfiguration({
      steps: [{ url: "http://10.0.0.1/x?key={{env.ARCHIVE_SECRET}}", method: "GET", response_type: "binary" }],
      response: { body: "steps[0].body", encoding: "binary" },
      auth: { type: "none" },
      allowed_hosts: ["10.0.0.1"],
    });
    const { token, integrationId } = await archiveSetup({ configuration, secret });
    const res = await download(integrationId, token, "document_id=1");
    expectError(res, 502, "ARCHIVE_HOST_REFUSED");
    const text = JSON.stringify(res.body);
    for (const form of [secret, encodeURIComponent(secret), "S3cr3t"]) expect(text).not.toContain(form);
  });

  it("answers what used to be 500s with envelopes: object values, long filenames, bad redirects, bad header values", async () => {
    const objects = archiveConfiguration({
      steps: [
        { url: "{{{env.ARCHIVE_URL}}}/api/documents/{{params.document_id}}?p={{{params}}}", method: "GET", response_type: "json" },
        { url: "{{{env.ARCHIVE_URL}}}{{{steps.0.body.download_path}}}", method: "GET", response_type: "binary" },
      ],
    });
    const a = await archiveSetup({ configuration: objects });
    expect((await download(a.integrationId, a.token, "document_id=obj")).status).toBe(200);

    const b = await archiveSetup();
    const long = await download(b.integrationId, b.token, `document_id=${encodeURIComponent(`${"a".repeat(245)}😀b`)}`);
    expect(long.status).toBe(200);
    expect(long.headers.get("content-disposition")).toMatch(/^inline; filename="Rechnung a+"; filename\*=UTF-8''Rechnung%20a+$/);

    const redirecting = archiveConfiguration({
      params: [{ name: "to", required: true }],
      steps: [{ url: "{{{env.ARCHIVE_URL}}}/redirect?to={{params.to}}", method: "GET", response_type: "binary" }],
      response: { body: "steps[0].body", encoding: "binary" },
    });
    const r = await archiveSetup({ configuration: redirecting });
    for (const to of ["http://[", "http://", "https://a b/"]) expectError(await download(r.integrationId, r.token, `to=${encodeURIComponent(to)}`), 502, "ARCHIVE_ERROR");

    const apiKey = archiveConfiguration({ auth: { type: "api_key", header: "x-api-key", value: "{{env.ARCHIVE_SECRET}}" } });
    const k = await archiveSetup({ configuration: apiKey, secret: "abc\ndef" });
    const bad = await download(k.integrationId, k.token, "document_id=1");
    expectError(bad, 502, "ARCHIVE_ERROR");
    expect(JSON.stringify(bad.body)).not.toContain("abc");
  });

  it("stops a template whose output would explode before building it", async () => {
    const configuration = archiveConfiguration({
      steps: [
        { url: "{{{env.ARCHIVE_URL}}}/api/documents/{{params.document_id}}/content", method: "GET", response_type: "json" },
        { url: "{{{env.ARCHIVE_URL}}}/x{{#steps.0.body.content_base64}}{{{steps.0.body.content_base64}}}{{/steps.0.body.content_base64}}", method: "GET", response_type: "binary" },
      ],
      response: { body: "steps[1].body", encoding: "binary" },
    });
    const { token, integrationId } = await archiveSetup({ configuration });
    const res = await download(integrationId, token, "document_id=big-size-1000000");
    expectError(res, 502, "ARCHIVE_ERROR");
    expect(res.body.error.message).toContain("longer than");
  });

  it("serves active content as a sandboxed attachment, never inline", async () => {
    const configuration = archiveConfiguration({
      steps: [{ url: "{{{env.ARCHIVE_URL}}}/api/documents/{{params.document_id}}", method: "GET", response_type: "json" }],
      response: { body: "'<script>alert(document.cookie)</script>'", encoding: "binary", content_type: "'text/html'", filename: "'x.html'" },
    });
    const { token, integrationId } = await archiveSetup({ configuration });
    const res = await download(integrationId, token, "document_id=1");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(/^attachment;/);
    expect(res.headers.get("content-security-policy")).toContain("sandbox");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("refuses HEAD instead of running a download for nothing", async () => {
    const { token, integrationId, client } = await archiveSetup();
    const res = await api("HEAD", `/v1/files/download?integration_id=${integrationId}&use_case_slug=invoices&document_id=1`, { token });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
    expect(await archiveStats(client)).toEqual({ tokens_issued: 0, downloads: 0 });
  });

  it("revokes a deleted use case's links even when the slug is used again", async () => {
    const { token, integrationId, useCases } = await archiveSetup();
    const { path } = await signedPath(token, integrationId, { document_id: "1" });
    const invoices = useCases.find((u) => u.slug === "invoices")!;
    expect((await api("DELETE", `/v1/integrations/${integrationId}/use-cases/${invoices.id}`, { token })).status).toBe(200);
    const again = await api("POST", `/v1/integrations/${integrationId}/use-cases`, { token, json: { name: "Invoices", slug: "invoices", type: "file_proxy", configuration: archiveConfiguration() } });
    expect(again.status).toBe(201);
    expectError(await api("GET", path), 403, "FORBIDDEN");
  });
});
