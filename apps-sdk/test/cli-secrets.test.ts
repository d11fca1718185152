// A careless publisher: a signing key or an environment file inside the blueprint folder (or in an
// archive made elsewhere) is never packed, signed or sent.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { zipSync } from "fflate";
import { afterAll, describe, expect, it } from "vitest";
import { packBundle, PackageError, secretFileIssues, unpackBundle } from "../src/blueprint";
import { main } from "../src/cli/main";

const repo = resolve(import.meta.dirname, "../..");
const temps: string[] = [];
const encoder = new TextEncoder();

afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const requests: string[] = [];
  const fetch = (async (url: string) => {
    requests.push(String(url));
    return new Response("{}", { status: 201, headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env, cwd: repo, fetch });
  return { code, stdout: out.join("\n"), stderr: err.join("\n"), requests };
}

async function helloErpCopy(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "erp-edge-secrets-"));
  temps.push(root);
  const dir = join(root, "hello-erp");
  await cp(join(repo, "blueprints/hello-erp"), dir, { recursive: true });
  return dir;
}

describe("secrets in a package", () => {
  it("refuses to pack or publish a folder holding the signing key, and sends nothing", async () => {
    const dir = await helloErpCopy();
    const key = join(dir, "publisher.jwk");
    expect((await run(["keys", "generate", "--out", key])).code).toBe(0);
    const env = { ERP_EDGE_TOKEN: "t", ERP_EDGE_URL: "http://127.0.0.1:9" };
    const published = await run(["blueprint", "publish", dir, "--key", key], env);
    expect(published.code).toBe(1);
    expect(published.stderr).toContain("publisher.jwk");
    expect(published.stderr).toMatch(/secret/);
    expect(published.stderr).not.toMatch(/\n\s+at /);
    expect(published.requests).toEqual([]);
    const packed = await run(["blueprint", "pack", dir, "--out", join(dir, "..", "out.zip")]);
    expect(packed.code).toBe(1);
    expect(packed.stderr).toContain("publisher.jwk");
  });

  it("refuses a private JWK under any name, and an archive that holds one", async () => {
    const dir = await helloErpCopy();
    const keyFile = join(dir, "..", "key.jwk");
    await run(["keys", "generate", "--out", keyFile]);
    const jwk = await readFile(keyFile, "utf8");
    await writeFile(join(dir, "mappings", "settings.json"), jwk);
    const env = { ERP_EDGE_TOKEN: "t", ERP_EDGE_URL: "http://127.0.0.1:9" };
    const folder = await run(["blueprint", "publish", dir, "--key", keyFile], env);
    expect(folder.code).toBe(1);
    expect(folder.stderr).toContain("mappings/settings.json");
    expect(folder.requests).toEqual([]);

    const clean = join(dir, "..", "clean.zip");
    expect((await run(["blueprint", "pack", join(repo, "blueprints/hello-erp"), "--out", clean])).code).toBe(0);
    const files = unpackBundle(new Uint8Array(await readFile(clean)));
    const archive = join(dir, "..", "with-env.zip");
    await writeFile(archive, zipSync({ ...files, ".dev.vars": encoder.encode("SECRET=x") } as never));
    const fromArchive = await run(["blueprint", "publish", archive, "--key", keyFile], env);
    expect(fromArchive.code).toBe(1);
    expect(fromArchive.stderr).toContain(".dev.vars");
    expect(fromArchive.requests).toEqual([]);
  });

  it("names environment and key files wherever they are, and lets ordinary files be", () => {
    const files = {
      ".env": encoder.encode("A=1"),
      "config/.env.production": encoder.encode("A=1"),
      "x/.dev.vars": encoder.encode("A=1"),
      "tls/server.pem": encoder.encode("cert"),
      "keys/acme.key": encoder.encode("k"),
      "notes.md": encoder.encode("-----BEGIN OPENSSH PRIVATE KEY-----"),
      "mappings/customers.json": encoder.encode('{"kty_like": 1, "d": "x"}'),
      "environment.md": encoder.encode("set ERP_URL"),
    };
    expect(secretFileIssues(files).map((i) => i.file).sort()).toEqual([".env", "config/.env.production", "keys/acme.key", "notes.md", "tls/server.pem", "x/.dev.vars"]);
    expect(() => packBundle({ "blueprint.json": encoder.encode("{}"), "a.jwk": encoder.encode("{}") })).toThrow(PackageError);
  });
});
