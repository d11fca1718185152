// Set-up shared by the file-proxy tests: a tenant whose integration reaches the fake archive
// (scripts/fake-archive.mjs, started by vitest.config.mts) through a two-step OAuth2 configuration.
import { env, exports } from "cloudflare:workers";
import { api } from "./helpers";
import { setup } from "./inbound-helpers";

export const ARCHIVE = env.ARCHIVE_URL;
export const ARCHIVE_HOST = new URL(ARCHIVE).host;

/** Byte i of every fake-archive document (scripts/fake-archive.mjs byteAt). */
export const byteAt = (i: number) => (i * 31 + 7) & 0xff;

/** The archive's two-step configuration: a JSON lookup, then the binary download it points at. */
export function archiveConfiguration(extra: Record<string, unknown> = {}, tokenQuery = "") {
  return {
    auth: { type: "oauth2_client_credentials", token_url: `{{{env.ARCHIVE_URL}}}/oauth/token${tokenQuery}`, client_id: "{{env.ARCHIVE_CLIENT}}", client_secret: "{{env.ARCHIVE_SECRET}}" },
    params: [{ name: "document_id", required: true, description: "The archive's document id" }],
    steps: [
      { url: "{{{env.ARCHIVE_URL}}}/api/documents/{{params.document_id}}", method: "GET", response_type: "json" },
      { url: "{{{env.ARCHIVE_URL}}}{{{steps.0.body.download_path}}}", method: "GET", response_type: "binary" },
    ],
    response: { body: "steps[1].body", encoding: "binary", filename: "steps[0].body.filename", content_type: "steps[0].body.content_type" },
    allowed_hosts: [ARCHIVE_HOST],
    ...extra,
  };
}

/**
 * A tenant with an integration whose `invoices` use case is the archive configuration (plus
 * `useCases`), its own OAuth client id (so the archive counts its tokens apart) and a secret that
 * tests look for in every answer.
 */
export async function archiveSetup(opts: { configuration?: Record<string, unknown>; useCases?: Record<string, unknown>[]; secret?: string } = {}) {
  const client = `edge-${crypto.randomUUID()}`;
  const environment = { ARCHIVE_URL: ARCHIVE, ARCHIVE_CLIENT: client, ARCHIVE_SECRET: opts.secret ?? "s3cret" };
  const ctx = await setup([{ name: "Invoices", slug: "invoices", type: "file_proxy", configuration: opts.configuration ?? archiveConfiguration() }, ...(opts.useCases ?? [])], environment);
  return { ...ctx, client };
}

/** The archive's counters for one client id. */
export async function archiveStats(client: string): Promise<{ tokens_issued: number; downloads: number }> {
  return (await fetch(`${ARCHIVE}/_stats?client=${encodeURIComponent(client)}`)).json();
}

/** A signed URL from POST /v1/files/sign, as a path on the test origin. */
export async function signedPath(token: string, integrationId: string, params: Record<string, string>, extra: Record<string, unknown> = {}) {
  const res = await api("POST", "/v1/files/sign", { token, json: { integration_id: integrationId, use_case_slug: "invoices", params, ...extra } });
  if (res.status !== 200) throw new Error(`sign: ${res.status} ${JSON.stringify(res.body)}`);
  const url = new URL(res.body.url);
  return { path: `${url.pathname}${url.search}`, expires_at: res.body.expires_at as string, url: res.body.url as string };
}

/** Opens a download through the Worker without reading the body. */
export function open(path: string, headers: Record<string, string> = {}) {
  return exports.default.fetch(new Request(`http://erp-edge.test${path}`, { headers }));
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** SHA-256 and length of a stream, read chunk by chunk (never held whole). */
export async function streamDigest(stream: ReadableStream<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const digest = new crypto.DigestStream("SHA-256");
  let bytes = 0;
  await stream
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          bytes += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }),
    )
    .pipeTo(digest);
  return { sha256: hex(await digest.digest), bytes };
}

/** SHA-256 of bytes [start, end] of any fake-archive document, generated in chunks. */
export async function expectedDigest(start: number, end: number): Promise<string> {
  const digest = new crypto.DigestStream("SHA-256");
  const writer = digest.getWriter();
  for (let at = start; at <= end; ) {
    const n = Math.min(1 << 20, end - at + 1);
    const chunk = new Uint8Array(n);
    for (let i = 0; i < n; i++) chunk[i] = byteAt(at + i);
    await writer.write(chunk);
    at += n;
  }
  await writer.close();
  return hex(await digest.digest);
}
