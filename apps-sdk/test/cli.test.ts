// The erp-edge CLI, run in-process through main(): validate, test, pack, keys and publish (against a
// small local HTTP stub of the registry that checks the upload and its signature like the real one).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { cp, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestOf, PublicKeyJwk, readManifest, signatureKeyId, SignatureError, unpackBundle, verifyPackage } from "../src/blueprint";
import { main } from "../src/cli/main";

const repo = resolve(import.meta.dirname, "../..");
const helloErp = resolve(repo, "blueprints/hello-erp");
const temps: string[] = [];

async function run(argv: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: options.env ?? {}, cwd: options.cwd ?? repo });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "erp-edge-cli-"));
  temps.push(dir);
  return dir;
}

/** A copy of hello-erp in a temp folder, changed by `edit`. */
async function copyOfHelloErp(edit: (dir: string) => Promise<void> = async () => {}): Promise<string> {
  const dir = join(await tempDir(), "hello-erp");
  await cp(helloErp, dir, { recursive: true });
  await edit(dir);
  return dir;
}

async function editJson(file: string, change: (json: any) => void): Promise<void> {
  const json = JSON.parse(await readFile(file, "utf8"));
  change(json);
  await writeFile(file, JSON.stringify(json, null, 2));
}

afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

describe("blueprint validate", () => {
  it("passes on hello-erp", async () => {
    const result = await run(["blueprint", "validate", "blueprints/hello-erp"]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("@erp-edge/hello-erp@1.0.0 is valid: 1 integration, 2 use cases, 7 fixtures.");
    expect(result.code).toBe(0);
  });

  it("names the file and the JSON path of every problem, in referenced files and inline", async () => {
    const dir = await copyOfHelloErp(async (d) => {
      // A JSONata syntax error in a file referenced with $file.
      await editJson(join(d, "mappings/contracts.json"), (m) => (m.entities[0].fields[2].jsonataExpression = "$lowercase(division"));
      await editJson(join(d, "blueprint.json"), (m) => {
        m.version = "1.0";
        // An inline configuration with a broken expression.
        m.integrations[0].use_cases.push({
          slug: "invoices",
          name: "Invoices",
          type: "inbound",
          configuration: { entities: [{ entity_schema: "order", unique_ids: ["order_number"], fields: [{ attribute: "order_number", jsonataExpression: "$$.(" }] }] },
        });
        m.integrations[0].use_cases.push({ slug: "meters", name: "Meters", type: "inbound", configuration: { $file: "mappings/meters.json" } });
      });
      await editJson(join(d, "fixtures/power-contract.json"), (f) => {
        delete f.expected.entity_updates[0].unique_identifiers;
      });
      await editJson(join(d, "fixtures/customer-deleted.json"), (f) => (f.use_case = "tariffs"));
    });
    const result = await run(["blueprint", "validate", dir]);
    expect(result.code).toBe(1);
    const lines = result.stderr.split("\n");
    expect(lines[0]).toBe(`erp-edge: ${dir} is not a valid blueprint (6 problems)`);
    expect(lines).toContain("  blueprint.json: version: an exact semantic version such as 1.2.0");
    expect(result.stderr).toMatch(
      /^ {2}mappings\/contracts\.json: entities\.0\.fields\.2\.jsonataExpression: JSONata S0203 at position \d+: .+ \(referenced at blueprint\.json integrations\.0\.use_cases\.1\.configuration\)$/m,
    );
    expect(result.stderr).toMatch(/^ {2}blueprint\.json: integrations\.0\.use_cases\.2\.configuration\.entities\.0\.fields\.0\.jsonataExpression: JSONata S0\d{3} at position \d+: /m);
    expect(lines).toContain("  blueprint.json: integrations.0.use_cases.3.configuration.$file: 'mappings/meters.json' is not in the package");
    expect(result.stderr).toMatch(/^ {2}fixtures\/power-contract\.json: expected\.entity_updates\.0\.unique_identifiers: /m);
    expect(lines).toContain("  fixtures/customer-deleted.json: use_case: 'tariffs' is not a use case of integration 'hello-erp' (customers, contracts, invoices, meters)");
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses an unreadable manifest and a folder that is not a blueprint", async () => {
    const dir = await copyOfHelloErp((d) => writeFile(join(d, "blueprint.json"), "{ \"name\": "));
    const broken = await run(["blueprint", "validate", dir]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/^ {2}blueprint\.json: invalid JSON: /m);
    const empty = await run(["blueprint", "validate", await tempDir()]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/has no blueprint\.json; is it a blueprint folder\?/);
    // A key generated into the blueprint folder would be published with it.
    const withKey = await copyOfHelloErp(async (d) => {
      await run(["keys", "generate", "--out", join(d, "keys/publisher.jwk")]);
    });
    const leaked = await run(["blueprint", "pack", withKey, "--out", join(await tempDir(), "x.zip")]);
    expect(leaked.code).toBe(1);
    expect(leaked.stderr).toContain("  keys/publisher.jwk: holds a private key; move it out of the blueprint folder");
    const missing = await run(["blueprint", "validate", "no/such/folder"]);
    expect(missing.stderr).toBe(`erp-edge: ${resolve(repo, "no/such/folder")}: no such file or folder`);
  });
});

describe("blueprint test", () => {
  it("passes every fixture of hello-erp", async () => {
    const result = await run(["blueprint", "test", helloErp]);
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n").filter((l) => l.startsWith("PASS "))).toHaveLength(7);
    expect(result.stdout).toContain("PASS fixtures/gas-contract-xml.json  hello-erp/contracts");
    expect(result.stdout).not.toContain("warning:");
    expect(result.stdout).toMatch(/7 fixtures: 7 passed, 0 failed$/);
  });

  it("passes every fixture of the telematics blueprint", async () => {
    const result = await run(["blueprint", "test", resolve(repo, "blueprints/telematics")]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("PASS fixtures/04-trip-arrived.json  telematics/trips");
    expect(result.stdout).not.toContain("warning:");
    expect(result.stdout).toMatch(/7 fixtures: 7 passed, 0 failed$/);
  });

  it("passes every fixture of the SAP S/4HANA blueprint, without warnings", async () => {
    const result = await run(["blueprint", "test", resolve(repo, "blueprints/sap-s4hana")]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("PASS fixtures/03-customer-idoc.json  sap-s4hana/customers-idoc");
    expect(result.stdout).not.toContain("warning:");
    expect(result.stdout).toMatch(/11 fixtures: 11 passed, 0 failed$/);
  });

  it("fails with a diff by attribute path, with both values", async () => {
    const dir = await copyOfHelloErp((d) =>
      editJson(join(d, "fixtures/power-contract.json"), (f) => {
        const attributes = f.expected.entity_updates[0].attributes;
        attributes.status = "activ";
        delete attributes.base_fee;
        attributes.customer.$relation._set[0].$entity_unique_ids.customer_number = "100043";
      }),
    );
    const result = await run(["blueprint", "test", dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("FAIL fixtures/power-contract.json  hello-erp/contracts");
    expect(result.stdout).toContain(
      ["  entity_updates.0.attributes.status", '    expected: "activ"', '    actual:   "active"'].join("\n"),
    );
    expect(result.stdout).toContain(["  entity_updates.0.attributes.customer.$relation._set.0.$entity_unique_ids.customer_number", '    expected: "100043"', '    actual:   "100042"'].join("\n"));
    expect(result.stdout).toContain(["  entity_updates.0.attributes.base_fee: not expected", '    actual:   "12.50"'].join("\n"));
    expect(result.stdout).toMatch(/7 fixtures: 6 passed, 1 failed$/);
  });

  it("reports a missing entity update and a mapping that fails at run time", async () => {
    const dir = await copyOfHelloErp(async (d) => {
      await editJson(join(d, "fixtures/customer-deleted.json"), (f) => f.expected.entity_updates.push({ entity_slug: "account", unique_identifiers: { customer_number: "1" }, attributes: {} }));
      // Compiles, but fails on this payload: $number of a word.
      await editJson(join(d, "mappings/contracts.json"), (m) => (m.entities[0].fields[11].jsonataExpression = "$number(tariff.name)"));
    });
    const result = await run(["blueprint", "test", dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(["  entity_updates.1: missing from the result", '    expected: {"entity_slug":"account","unique_identifiers":{"customer_number":"1"},"attributes":{},"mode":"upsert"}'].join("\n"));
    expect(result.stdout).toMatch(/FAIL fixtures\/power-contract\.json .*\n {2}the mapping failed: contract\.base_fee: JSONata D3030 /);
  });

  it("needs fixtures to test", async () => {
    const dir = await copyOfHelloErp((d) => editJson(join(d, "blueprint.json"), (m) => delete m.fixtures));
    const result = await run(["blueprint", "test", dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^erp-edge: @erp-edge\/hello-erp has no fixtures/);
  });
});

describe("blueprint pack", () => {
  it("packs deterministically, leaving hidden files out", async () => {
    const out = await tempDir();
    const copy = await copyOfHelloErp((d) => writeFile(join(d, ".DS_Store"), "finder junk"));
    const first = await run(["blueprint", "pack", "blueprints/hello-erp", "--out", join(out, "a.zip")]);
    const second = await run(["blueprint", "pack", copy, "--out", join(out, "b.zip")]);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const a = new Uint8Array(await readFile(join(out, "a.zip")));
    const b = new Uint8Array(await readFile(join(out, "b.zip")));
    expect(Buffer.compare(a, b)).toBe(0);
    const digest = await digestOf(a);
    expect(first.stdout).toContain(`  digest:  ${digest}`);
    expect(first.stdout.split("\n")[0]).toBe("@erp-edge/hello-erp@1.0.0");
    expect(first.stdout).toContain(`  size:    ${a.byteLength} bytes, 12 files`);
    const files = Object.keys(unpackBundle(a));
    expect(files).toContain("fixtures/payloads/gas-contract.xml");
    expect(files).not.toContain(".DS_Store");
    // An archive validates and tests like its folder.
    expect((await run(["blueprint", "test", join(out, "a.zip")])).code).toBe(0);
  });

  it("writes <scope>-<name>-<version>.zip by default and refuses an invalid folder", async () => {
    const cwd = await tempDir();
    const result = await run(["blueprint", "pack", helloErp], { cwd });
    expect(result.stdout).toContain(`  archive: ${join(cwd, "erp-edge-hello-erp-1.0.0.zip")}`);
    await stat(join(cwd, "erp-edge-hello-erp-1.0.0.zip"));
    const dir = await copyOfHelloErp((d) => editJson(join(d, "blueprint.json"), (m) => (m.version = "1.0")));
    const invalid = await run(["blueprint", "pack", dir, "--out", join(cwd, "x.zip")]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain("  blueprint.json: version: an exact semantic version such as 1.2.0");
    await expect(stat(join(cwd, "x.zip"))).rejects.toThrow();
  });
});

describe("keys generate", () => {
  it("writes the private key 0600, prints the public key, and never overwrites without --force", async () => {
    const file = join(await tempDir(), "keys", "acme.jwk");
    const result = await run(["keys", "generate", "--out", file]);
    expect(result.code).toBe(0);
    const publicJwk = PublicKeyJwk.parse(JSON.parse(result.stdout));
    expect(publicJwk.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const written = await readFile(file, "utf8");
    expect(JSON.parse(written)).toMatchObject({ kty: "OKP", crv: "Ed25519", x: publicJwk.x, kid: publicJwk.kid });
    expect(result.stdout).not.toContain('"d"');

    const again = await run(["keys", "generate", "--out", file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; pass --force to replace it/);
    expect(await readFile(file, "utf8")).toBe(written);

    const forced = await run(["keys", "generate", "--out", file, "--force"]);
    expect(forced.code).toBe(0);
    expect(await readFile(file, "utf8")).not.toBe(written);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});

/** A stand-in for the registry's publish API: checks the multipart upload and its signature like the real one. */
class RegistryStub {
  readonly publishers = new Map<string, PublicKeyJwk[]>();
  readonly published = new Map<string, { archive: Uint8Array; signature: string }>();
  readonly server: Server;
  url = "";

  constructor(readonly token: string) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private send(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  private fail(res: ServerResponse, status: number, code: string, message: string, details?: unknown) {
    this.send(res, status, { error: { code, message, ...(details !== undefined && { details }) } });
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = new Request(`${this.url}${req.url}`, { method: req.method, headers: req.headers as Record<string, string>, body: req.method === "GET" ? undefined : Buffer.concat(chunks) });
    if (request.headers.get("authorization") !== `Bearer ${this.token}`) return this.fail(res, 401, "UNAUTHORIZED", "Missing or invalid token");
    const path = new URL(request.url).pathname;
    if (req.method === "POST" && path === "/v1/registry/publishers") {
      const body = (await request.json()) as { name: string; public_key: unknown };
      if (this.publishers.has(body.name)) return this.fail(res, 409, "CONFLICT", `Publisher ${body.name} is already registered`);
      this.publishers.set(body.name, [PublicKeyJwk.parse(body.public_key)]);
      return this.send(res, 201, { name: body.name });
    }
    const keys = /^\/v1\/registry\/publishers\/(@[a-z0-9-]+)\/keys$/.exec(path);
    if (req.method === "POST" && keys) {
      const body = (await request.json()) as { public_key: unknown };
      this.publishers.get(keys[1]!)?.push(PublicKeyJwk.parse(body.public_key));
      return this.send(res, 201, { kid: (body.public_key as PublicKeyJwk).kid });
    }
    if (req.method === "POST" && path === "/v1/registry/packages") {
      expect(request.headers.get("content-type")).toMatch(/^multipart\/form-data; boundary=/);
      const form = await request.formData();
      const bundle = form.get("bundle");
      const signature = form.get("signature");
      if (!(bundle instanceof File) || typeof signature !== "string") return this.fail(res, 400, "VALIDATION_FAILED", "Invalid upload");
      expect(bundle.type).toBe("application/zip");
      const archive = new Uint8Array(await bundle.arrayBuffer());
      const manifest = readManifest(unpackBundle(archive));
      if (manifest.name === "@acme/refused") {
        return this.fail(res, 422, "INVALID_PACKAGE", "The package's use cases do not validate", [
          { file: "blueprint.json", path: "integrations.0.use_cases.0.configuration.entities", message: "not allowed here" },
        ]);
      }
      const key = this.publishers.get(manifest.name.split("/")[0]!)?.find((k) => k.kid === signatureKeyId(signature));
      if (!key) return this.fail(res, 422, "SIGNATURE_INVALID", "The signature names no key of the publisher");
      try {
        const signed = await verifyPackage(signature, key, archive, { name: manifest.name, version: manifest.version });
        const id = `${signed.name}@${signed.version}`;
        if (this.published.has(id)) return this.fail(res, 409, "CONFLICT", `${id} is already published; versions are immutable`);
        this.published.set(id, { archive, signature });
        return this.send(res, 201, { name: signed.name, version: signed.version, digest: signed.digest });
      } catch (err) {
        if (err instanceof SignatureError) return this.fail(res, 422, err.code, err.message);
        throw err;
      }
    }
    return this.fail(res, 404, "NOT_FOUND", "No such route");
  }
}

describe("publisher and blueprint publish (a real HTTP round trip to a local stub)", () => {
  const stub = new RegistryStub("test-token");
  let env: Record<string, string>;
  let keyFile: string;
  let acme: string;

  beforeAll(async () => {
    await stub.start();
    env = { ERP_EDGE_URL: stub.url, ERP_EDGE_TOKEN: "test-token" };
    keyFile = join(await tempDir(), "acme.jwk");
    expect((await run(["keys", "generate", "--out", keyFile])).code).toBe(0);
    acme = await copyOfHelloErp((d) => editJson(join(d, "blueprint.json"), (m) => (m.name = "@acme/hello-erp")));
  });

  afterAll(() => new Promise<void>((r) => stub.server.close(() => r())));

  it("registers the publisher, publishes a signed folder, and refuses the same version again", async () => {
    const created = await run(["publisher", "create", "@acme", "--key", keyFile], { env });
    expect(created).toMatchObject({ code: 0, stderr: "" });
    const kid = JSON.parse(await readFile(keyFile, "utf8")).kid;
    expect(created.stdout).toBe(`Registered publisher @acme with key ${kid}.`);
    expect(stub.publishers.get("@acme")).toEqual([expect.objectContaining({ kid })]);
    expect(JSON.stringify(stub.publishers.get("@acme"))).not.toContain('"d"');

    const published = await run(["blueprint", "publish", acme, "--key", keyFile], { env });
    expect(published.stderr).toBe("");
    expect(published.code).toBe(0);
    const upload = stub.published.get("@acme/hello-erp@1.0.0")!;
    expect(published.stdout).toContain(`Published @acme/hello-erp@1.0.0\n  digest: ${await digestOf(upload.archive)}\n  signed with key ${kid}`);

    const again = await run(["blueprint", "publish", acme, "--key", keyFile], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('erp-edge: @acme/hello-erp@1.0.0 is already published; versions are immutable, so raise "version" in blueprint.json');
    expect(again.stderr).toContain("409 CONFLICT: @acme/hello-erp@1.0.0 is already published; versions are immutable");
  });

  it("publishes a packed archive byte for byte, signed by a rotated key", async () => {
    const next = join(await tempDir(), "acme-2.jwk");
    await run(["keys", "generate", "--out", next]);
    expect((await run(["publisher", "add-key", "@acme", "--key", next], { env })).code).toBe(0);
    const dir = await copyOfHelloErp((d) => editJson(join(d, "blueprint.json"), (m) => Object.assign(m, { name: "@acme/hello-erp", version: "1.1.0" })));
    const archive = join(await tempDir(), "acme.zip");
    expect((await run(["blueprint", "pack", dir, "--out", archive])).code).toBe(0);
    const result = await run(["blueprint", "publish", archive, "--key", next], { env });
    expect(result.code).toBe(0);
    expect(Buffer.compare(stub.published.get("@acme/hello-erp@1.1.0")!.archive, await readFile(archive))).toBe(0);
  });

  it("prints the server's error code, message and details with file and path", async () => {
    const dir = await copyOfHelloErp((d) => editJson(join(d, "blueprint.json"), (m) => (m.name = "@acme/refused")));
    const refused = await run(["blueprint", "publish", dir, "--key", keyFile], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      [
        "erp-edge: the server refused the request: 422 INVALID_PACKAGE: The package's use cases do not validate",
        "  blueprint.json: integrations.0.use_cases.0.configuration.entities: not allowed here",
      ].join("\n"),
    );
    // Another publisher's key: the stub, like the registry, finds no key of @acme with that id.
    const stranger = join(await tempDir(), "stranger.jwk");
    await run(["keys", "generate", "--out", stranger]);
    const wrongKey = await run(["blueprint", "publish", helloErp, "--key", stranger], { env });
    expect(wrongKey.stderr).toBe("erp-edge: the server refused the request: 422 SIGNATURE_INVALID: The signature names no key of the publisher");
  });

  it("says clearly what is missing: token, server, key (never a stack trace)", async () => {
    const noToken = await run(["blueprint", "publish", acme, "--key", keyFile], { env: { ERP_EDGE_URL: stub.url } });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/^erp-edge: ERP_EDGE_TOKEN is not set: /);

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const unreachable = await run(["blueprint", "publish", acme, "--key", keyFile, "--url", `http://127.0.0.1:${port}`], { env });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toBe(
      `erp-edge: cannot reach http://127.0.0.1:${port} (ECONNREFUSED); is erp-edge running there? (\`npm start\` serves http://127.0.0.1:8787; set --url or ERP_EDGE_URL otherwise)`,
    );

    const badUrl = await run(["publisher", "create", "@acme", "--key", keyFile, "--url", "ftp://example.com"], { env });
    expect(badUrl.stderr).toBe("erp-edge: 'ftp://example.com' must be an http or https URL");

    const noKey = await run(["blueprint", "publish", acme, "--key", "missing.jwk"], { env });
    expect(noKey.stderr).toMatch(/^erp-edge: cannot read the key file .*missing\.jwk: no such file/);

    const publicOnly = join(await tempDir(), "public.jwk");
    await writeFile(publicOnly, JSON.stringify(stub.publishers.get("@acme")![0]), { mode: 0o600 });
    const notPrivate = await run(["blueprint", "publish", acme, "--key", publicOnly], { env });
    expect(notPrivate.stderr).toMatch(/is not an Ed25519 private key/);

    const remote = await run(["publisher", "create", "@acme", "--key", keyFile, "--url", `http://127.0.0.2:${port}`], { env });
    expect(remote.stderr).toMatch(/^warning: sending the token to http:\/\/127\.0\.0\.2:\d+ without TLS/);

    for (const r of [noToken, unreachable, badUrl, noKey, notPrivate, remote]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("usage", () => {
  it("prints help, and usage with exit 2 for unknown commands, options and arguments", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("blueprint publish");
    const commandHelp = await run(["blueprint", "publish", "--help"]);
    expect(commandHelp.stdout).toMatch(/^Usage: erp-edge blueprint publish <dir\|archive\.zip> --key <private-key-file>/);
    const unknown = await run(["blueprint", "deploy"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^erp-edge: unknown command 'blueprint deploy'\n\n.*Usage: erp-edge <command>/s);
    const option = await run(["blueprint", "validate", helloErp, "--strict"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/Unknown option '--strict'[\s\S]*Usage: erp-edge blueprint validate/);
    const args = await run(["blueprint", "validate"]);
    expect(args).toMatchObject({ code: 2, stderr: "erp-edge: blueprint validate takes <dir>\nUsage: erp-edge blueprint validate <dir|archive.zip>" });
    expect((await run([])).code).toBe(2);
    const scope = await run(["publisher", "create", "acme", "--key", "k.jwk"]);
    expect(scope.code).toBe(2);
    expect(scope.stderr).toMatch(/^erp-edge: 'acme' is not a publisher name/);
  });
});
