// The fake archive the file-proxy tests and walkthrough use (scripts/fake-archive.mjs) behaves like one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error plain JavaScript module without declarations
import { byteAt, startFakeArchive } from "../../scripts/fake-archive.mjs";

let base: string;
let server: { close(): void };

beforeAll(async () => {
  const started = await startFakeArchive({ tokenTtlSeconds: 60 });
  base = `http://127.0.0.1:${started.port}`;
  server = started.server;
});
afterAll(() => server.close());

const token = async () => {
  const res = await fetch(`${base}/oauth/token`, { method: "POST", headers: { authorization: `Basic ${btoa("edge:s3cret")}`, "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials" });
  return ((await res.json()) as { access_token: string }).access_token;
};

describe("fake archive", () => {
  it("issues tokens, looks documents up and serves their bytes, whole or by range", async () => {
    const bad = await fetch(`${base}/oauth/token`, { method: "POST", body: "grant_type=client_credentials&client_id=edge&client_secret=no" });
    expect(bad.status).toBe(401);
    const auth = { authorization: `Bearer ${await token()}` };
    expect((await fetch(`${base}/api/documents/x`)).status).toBe(401);
    const doc = (await (await fetch(`${base}/api/documents/inv-size-300000`, { headers: auth })).json()) as { download_path: string; size: number; filename: string };
    expect(doc).toMatchObject({ size: 300000, filename: "Rechnung inv-size-300000.pdf" });
    const whole = new Uint8Array(await (await fetch(base + doc.download_path, { headers: auth })).arrayBuffer());
    const expected = Uint8Array.from({ length: 300000 }, (_, i) => byteAt(i));
    const digest = async (bytes: Uint8Array) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>))].join(",");
    expect(await digest(whole)).toBe(await digest(expected));
    const part = await fetch(base + doc.download_path, { headers: { ...auth, range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 100-199/300000");
    expect([...new Uint8Array(await part.arrayBuffer())]).toEqual([...expected.slice(100, 200)]);
    expect((await fetch(`${base}/api/documents/missing-1`, { headers: auth })).status).toBe(404);
  });
});
