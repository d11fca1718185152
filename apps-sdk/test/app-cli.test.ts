// The app commands of the erp-edge CLI, run in-process through main(): init writes an app that builds
// and tests with nothing installed (it lives in the OS temp folder, outside this repository), test
// reports the tests' outcome as its exit code, pack and publish send exactly app.json and app.js,
// signed (to a local HTTP stub that checks them as the registry does), and the example app passes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppManifest } from "../src/app/manifest";
import { readPublishableApp } from "../src/app/publishable";
import { digestOf, PackageError, PublicKeyJwk, SignatureError, signatureKeyId, unpackBundle, verifyPackage } from "../src/blueprint";
import { main } from "../src/cli/main";
import pkg from "../package.json";

const repo = resolve(import.meta.dirname, "../..");
const example = resolve(repo, "blueprints/examples/sap-normalise");
const temps: string[] = [];

afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function run(argv: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: options.env ?? {}, cwd: options.cwd ?? repo });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** A new folder in the OS temp folder: no node_modules above it, as for a partner's app. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "erp-edge-app-"));
  temps.push(dir);
  return dir;
}

/** `app init` into a new temp folder; returns the app's folder. */
async function newApp(name = "@acme/hello"): Promise<string> {
  const dir = join(await tempDir(), "hello");
  const init = await run(["app", "init", dir, "--name", name]);
  expect(init.stderr).toBe("");
  expect(init.code).toBe(0);
  return dir;
}

describe("app init, build and test", () => {
  it("writes a template that builds and whose test passes with nothing installed", async () => {
    const dir = await newApp();
    const packageJson = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    expect(packageJson).toMatchObject({
      name: "@acme/hello",
      private: true,
      type: "module",
      scripts: { build: "erp-edge app build .", test: "erp-edge app test .", publish: "erp-edge app publish ." },
      dependencies: { "@erp-edge/apps-sdk": `^${pkg.version}`, zod: pkg.dependencies.zod },
    });
    expect(await readFile(join(dir, ".gitignore"), "utf8")).toBe("dist\nnode_modules\n*.jwk\n");
    for (const file of ["tsconfig.json", "README.md", "src/index.ts", "test/index.test.ts"]) await stat(join(dir, file));
    await expect(stat(join(dir, "node_modules"))).rejects.toThrow();

    const built = await run(["app", "build", dir]);
    expect(built.stderr).toBe("");
    expect(built.code).toBe(0);
    expect(built.stdout.split("\n")[0]).toBe("@acme/hello@0.1.0: 1 action (hello)");
    const manifest = AppManifest.parse(JSON.parse(await readFile(join(dir, "dist/app.json"), "utf8")));
    expect(manifest.actions).toEqual([expect.objectContaining({ name: "hello", input_schema: expect.objectContaining({ required: ["name"] }), permissions: { hosts: [] } })]);

    const tested = await run(["app", "test", dir]);
    expect(tested.code, tested.stdout + tested.stderr).toBe(0);
    expect(tested.stdout).toContain("Built @acme/hello@0.1.0: 1 action (hello)\nRunning 1 test file with node --test");
    expect(tested.stdout).toMatch(/✔ hello greets by name/);
    expect(tested.stdout).toMatch(/ℹ pass 2\nℹ fail 0/);
  });

  it("exits non-zero when a test fails, pointing at the TypeScript line", async () => {
    const dir = await newApp();
    const test = join(dir, "test/index.test.ts");
    await writeFile(test, (await readFile(test, "utf8")).replace('{ greeting: "Hello, Ada!" }', '{ greeting: "Hi, Ada!" }'));
    const result = await run(["app", "test", dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ℹ pass 1\nℹ fail 1/);
    expect(result.stdout).toContain(`${join(dir, "test/index.test.ts")}:9:`);
  });

  it("fails before running anything when the app does not build, or has no tests", async () => {
    const dir = await newApp();
    await writeFile(join(dir, "src/index.ts"), "export default defineApp({ name: ");
    const broken = await run(["app", "test", dir]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/^erp-edge: bundling .*src\/index\.ts failed\n {2}.*src\/index\.ts:1:\d+: /);
    expect(broken.stdout).toBe("");

    const untested = await newApp();
    await rm(join(untested, "test"), { recursive: true });
    const none = await run(["app", "test", untested]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/test: no test files; add test\/<name>\.test\.ts files/);
  });

  it("refuses a folder that is not empty (unless --force), and a name that is not @scope/name", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "notes.txt"), "mine");
    const refused = await run(["app", "init", dir, "--name", "@acme/hello"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`erp-edge: ${dir} is not empty; choose a new folder, or pass --force to write the template into it (its files of the same names are replaced)`);
    await expect(stat(join(dir, "package.json"))).rejects.toThrow();

    const forced = await run(["app", "init", dir, "--name", "@acme/hello", "--force"]);
    expect(forced.code).toBe(0);
    expect(await readFile(join(dir, "notes.txt"), "utf8")).toBe("mine");
    expect((await run(["app", "test", dir])).code).toBe(0);

    const empty = join(await tempDir(), "x");
    for (const name of ["acme/hello", "@Acme/hello", "@acme", "hello"]) {
      const bad = await run(["app", "init", empty, "--name", name]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(new RegExp(`^erp-edge: '${name}' is not a package name: `));
    }
    expect(await run(["app", "init", empty])).toMatchObject({ code: 2, stderr: "erp-edge: --name <@scope/name> is required" });
    await expect(stat(empty)).rejects.toThrow();
  });
});

/** A stand-in for the registry's publish API that checks an app upload as the registry does. */
class AppRegistryStub {
  readonly keys: PublicKeyJwk[] = [];
  readonly published = new Map<string, Uint8Array>();
  requests = 0;
  readonly server: Server = createServer((req, res) => void this.handle(req, res));
  url = "";

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private fail(res: ServerResponse, status: number, code: string, message: string, details?: unknown) {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error: { code, message, ...(details !== undefined && { details }) } }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    this.requests++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.headers.authorization !== "Bearer test-token") return this.fail(res, 401, "UNAUTHORIZED", "Missing or invalid token");
    if (req.method !== "POST" || req.url !== "/v1/registry/packages") return this.fail(res, 404, "NOT_FOUND", "No such route");
    const form = await new Request(`${this.url}${req.url}`, { method: "POST", headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) }).formData();
    const bundle = form.get("bundle") as File;
    const signature = form.get("signature") as string;
    const archive = new Uint8Array(await bundle.arrayBuffer());
    try {
      const { manifest } = readPublishableApp(unpackBundle(archive));
      const key = this.keys.find((k) => k.kid === signatureKeyId(signature));
      if (!key) return this.fail(res, 422, "SIGNATURE_INVALID", "The signature names no key of the publisher");
      const signed = await verifyPackage(signature, key, archive, { name: manifest.name, version: manifest.version });
      const id = `${signed.name}@${signed.version}`;
      if (this.published.has(id)) return this.fail(res, 409, "CONFLICT", `${id} is already published; versions are immutable`);
      this.published.set(id, archive);
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ name: signed.name, version: signed.version, digest: signed.digest }));
    } catch (err) {
      if (err instanceof PackageError) return this.fail(res, 422, "UNPROCESSABLE", err.message, err.issues);
      if (err instanceof SignatureError) return this.fail(res, 422, err.code, err.message);
      throw err;
    }
  }
}

describe("app pack and app publish (a real HTTP round trip to a local stub)", () => {
  const stub = new AppRegistryStub();
  let env: Record<string, string>;
  let keyFile: string;
  let kid: string;

  beforeAll(async () => {
    await stub.start();
    env = { ERP_EDGE_URL: stub.url, ERP_EDGE_TOKEN: "test-token" };
    keyFile = join(await tempDir(), "acme.jwk");
    const generated = await run(["keys", "generate", "--out", keyFile]);
    const publicJwk = PublicKeyJwk.parse(JSON.parse(generated.stdout));
    stub.keys.push(publicJwk);
    kid = publicJwk.kid!;
  });

  afterAll(() => new Promise<void>((r) => stub.server.close(() => r())));

  it("packs exactly app.json, app.js and the folder's README.md, deterministically", async () => {
    const dir = await newApp("@acme/packed");
    const out = await tempDir();
    const first = await run(["app", "pack", dir, "--out", join(out, "a.zip")]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const second = await run(["app", "pack", dir], { cwd: out });
    expect(second.stdout).toContain(`  archive: ${join(out, "acme-packed-0.1.0.zip")}`);
    const a = new Uint8Array(await readFile(join(out, "a.zip")));
    expect(Buffer.compare(a, await readFile(join(out, "acme-packed-0.1.0.zip")))).toBe(0);
    expect(first.stdout).toBe(
      [`@acme/packed@0.1.0: 1 action (hello)`, `  archive: ${join(out, "a.zip")}`, `  digest:  ${await digestOf(a)}`, `  size:    ${a.byteLength} bytes, 3 files`].join("\n"),
    );
    const files = unpackBundle(a);
    expect(Object.keys(files).sort()).toEqual(["README.md", "app.js", "app.json"]);
    expect(new TextDecoder().decode(files["README.md"])).toBe(await readFile(join(dir, "README.md"), "utf8"));
    expect(readPublishableApp(files).manifest).toMatchObject({ name: "@acme/packed", version: "0.1.0", main: "app.js" });
  });

  it("publishes a signed app, refuses the same version again, and publishes a packed archive byte for byte", async () => {
    const dir = await newApp("@acme/published");
    const published = await run(["app", "publish", dir, "--key", keyFile], { env });
    expect(published.stderr).toBe("");
    expect(published.code).toBe(0);
    const archive = stub.published.get("@acme/published@0.1.0")!;
    expect(published.stdout).toBe(`Published @acme/published@0.1.0\n  digest: ${await digestOf(archive)}\n  signed with key ${kid}`);
    expect(readPublishableApp(unpackBundle(archive)).source).toBe(await readFile(join(dir, "dist/app.js"), "utf8"));

    const again = await run(["app", "publish", dir, "--key", keyFile], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      [
        "erp-edge: @acme/published@0.1.0 is already published; versions are immutable, so raise version in defineApp (src/index.ts)",
        "  409 CONFLICT: @acme/published@0.1.0 is already published; versions are immutable",
      ].join("\n"),
    );

    const index = join(dir, "src/index.ts");
    await writeFile(index, (await readFile(index, "utf8")).replace('version: "0.1.0"', 'version: "0.2.0"'));
    const zip = join(await tempDir(), "app.zip");
    expect((await run(["app", "pack", dir, "--out", zip])).code).toBe(0);
    const fromArchive = await run(["app", "publish", zip, "--key", keyFile], { env });
    expect(fromArchive.code).toBe(0);
    expect(Buffer.compare(stub.published.get("@acme/published@0.2.0")!, await readFile(zip))).toBe(0);
  });

  it("checks an archive before signing or sending it, and says what is missing", async () => {
    const dir = await newApp("@acme/checked");
    expect((await run(["app", "build", dir])).code).toBe(0);
    const files = { "app.json": await readFile(join(dir, "dist/app.json")), "app.js": await readFile(join(dir, "dist/app.js")), "NOTES.md": Buffer.from("hi") };
    const zip = join(await tempDir(), "extra.zip");
    await writeFile(zip, zipSync(files));
    const before = stub.requests;
    const extra = await run(["app", "publish", zip, "--key", keyFile], { env });
    expect(extra.code).toBe(1);
    expect(extra.stderr).toBe(`erp-edge: ${zip} is not a valid app package: An app package holds app.json, its main module (app.js) and README.md only\n  NOTES.md: not part of an app package (app.json, app.js and README.md only)`);
    const secret = join(await tempDir(), "secret.zip");
    const key = await readFile(keyFile, "utf8");
    await writeFile(secret, zipSync({ "app.json": files["app.json"], "app.js": Buffer.from(`export const key = ${key};`) }));
    const leaked = await run(["app", "publish", secret, "--key", keyFile], { env });
    expect(leaked.code).toBe(1);
    expect(leaked.stderr).toContain("  app.js: holds a private key; it must not be in a package");
    expect(stub.requests).toBe(before);

    expect((await run(["app", "publish", dir, "--key", keyFile], { env: { ERP_EDGE_URL: stub.url } })).stderr).toMatch(/^erp-edge: ERP_EDGE_TOKEN is not set: /);
    expect(await run(["app", "publish", dir], { env })).toMatchObject({ code: 2, stderr: "erp-edge: --key <file> is required" });
    expect((await run(["app", "publish", join(dir, "missing"), "--key", keyFile], { env })).stderr).toBe(`erp-edge: ${join(dir, "missing")}: no such file or folder`);
    expect((await run(["app", "pack", zip])).code).toBe(1);
  });
});

describe("the example app, blueprints/examples/sap-normalise", () => {
  it("builds, and its tests pass", async () => {
    const built = await run(["app", "build", example]);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout.split("\n")[0]).toBe("@erp-edge/sap-normalise@1.0.0: 1 action (normalise)");
    const manifest = AppManifest.parse(JSON.parse(await readFile(join(example, "dist/app.json"), "utf8")));
    expect(manifest.config_schema).toMatchObject({ properties: { unwrap_odata: { type: "boolean", default: true } } });
    const tested = await run(["app", "test", example]);
    expect(tested.code, tested.stdout + tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/ℹ fail 0/);
  });
});

describe("usage", () => {
  it("lists the app commands and explains each", async () => {
    const help = await run(["--help"]);
    for (const command of ["app init", "app build", "app test", "app pack", "app publish"]) expect(help.stdout).toContain(`  ${command}`);
    expect((await run(["app", "publish", "--help"])).stdout).toMatch(/^Usage: erp-edge app publish <dir\|archive\.zip> --key <private-key-file> \[--url <url>\]/);
    expect((await run(["app", "init", "--help"])).stdout).toMatch(/^Usage: erp-edge app init <dir> --name <@scope\/name> \[--force\]/);
  });
});
