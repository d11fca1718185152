// `npm start`: creates .dev.vars on first run, applies both D1 migration sets locally, serves the host
// and the registry Worker with one `wrangler dev`, then, once the server answers, publishes as the local @erp-edge publisher (its key in
// .erp-edge/dev-publisher.jwk, created on first run) the apps (blueprints/examples/*, and each blueprint's own blueprints/<name>/app/), then
// the blueprints (blueprints/*): an install checks that the apps a blueprint lists are in the registry.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import "./wrangler-env.mjs";

const root = resolve(import.meta.dirname, "..");
const devVars = resolve(root, ".dev.vars");
const wrangler = resolve(root, "node_modules/wrangler/bin/wrangler.js");
const publisherKey = resolve(root, ".erp-edge/dev-publisher.jwk");
const PUBLISHER = "@erp-edge";
const run = (args) => spawnSync(process.execPath, [wrangler, ...args], { cwd: root, stdio: "inherit", env: process.env });
const log = (message) => console.log(`[erp-edge] ${message}`);

if (!existsSync(devVars)) {
  const secret = () => randomBytes(32).toString("base64url");
  writeFileSync(
    devVars,
    `# Local secrets for wrangler dev, created by npm start. Git-ignored; delete to regenerate.\nADMIN_TOKEN=${secret()}\nSECRETS_KEY=${secret()}\n`,
    { mode: 0o600 },
  );
  console.log(`Created ${devVars} with a random ADMIN_TOKEN and SECRETS_KEY.`);
}
// The token itself is never printed: server logs get copied into tickets and CI output.
console.log(`Admin token: ADMIN_TOKEN in ${devVars} (export ADMIN_TOKEN=$(grep ^ADMIN_TOKEN= .dev.vars | cut -d= -f2))`);

/** The value of `--name <v>` or `--name=<v>` among wrangler dev's extra arguments. */
function argValue(args, name) {
  for (const [i, arg] of args.entries()) {
    if (arg === name) return args[i + 1];
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
  }
  return undefined;
}

const extra = process.argv.slice(2);
// One state folder for both Workers and both migration runs: without it, each config would keep its
// own (.wrangler/state beside it) and the registry Worker would serve an unmigrated database.
const persist = ["--persist-to", argValue(extra, "--persist-to") ?? ".wrangler/state"];
const devArgs = argValue(extra, "--persist-to") === undefined ? [...persist, ...extra] : extra;

for (const args of [
  ["d1", "migrations", "apply", "DB", "--local", ...persist],
  ["d1", "migrations", "apply", "REGISTRY_DB", "--local", "-c", "registry/wrangler.toml", ...persist],
]) {
  const migrated = run(args);
  if (migrated.status !== 0) process.exit(migrated.status ?? 1);
}

// The CLI's code as of this checkout (half a second), so the bootstrap below never runs a stale build.
const built = spawnSync(process.execPath, [resolve(root, "node_modules/tsup/dist/cli-default.js"), "--silent"], { cwd: resolve(root, "apps-sdk"), stdio: "inherit" });
if (built.status !== 0) log("could not rebuild the erp-edge CLI (apps-sdk); the bootstrap uses the last build");

// The Integration Hub's client (/hub): built into the static assets folder before wrangler serves it.
try {
  const { buildHub } = await import("./build-hub.mjs");
  await buildHub();
} catch (err) {
  log(`could not build the Integration Hub (/hub): ${err?.message ?? err}`);
}

// The first config is the one served on 127.0.0.1:8787; the registry runs beside it, reached by the service binding.
const dev = spawn(process.execPath, [wrangler, "dev", "-c", "wrangler.toml", "-c", "registry/wrangler.toml", ...devArgs], { cwd: root, stdio: "inherit", env: process.env });
let devExited = false;
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code) => {
  devExited = true;
  process.exit(code ?? 0);
});

const base = `http://${argValue(extra, "--ip") ?? "127.0.0.1"}:${argValue(extra, "--port") ?? "8787"}`;
bootstrap(base).catch((err) => log(`bootstrap failed: ${err?.message ?? err} (the server keeps running; restart npm start to retry)`));

/** Waits until the host answers at all (any status), for up to two minutes. */
async function waitForServer(url) {
  const deadline = Date.now() + 120_000;
  while (!devExited && Date.now() < deadline) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(2_000) });
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return false;
}

function adminToken() {
  const line = readFileSync(devVars, "utf8")
    .split(/\r?\n/)
    .find((l) => /^\s*ADMIN_TOKEN\s*=/.test(l));
  const value = line?.slice(line.indexOf("=") + 1).trim().replace(/^(["'])(.*)\1$/, "$2");
  if (!value) throw new Error(`${devVars} has no ADMIN_TOKEN`);
  return value;
}

/** The lines an error from the CLI's functions carries (a refused request names code, file and path). */
function describe(err) {
  if (typeof err?.lines === "function") return err.lines().join("\n  ");
  return [err?.message ?? String(err), ...(err?.details ?? [])].join("\n  ");
}

/**
 * Registers @erp-edge with the dev key (or adds the key when the publisher already exists with
 * another one) and publishes every bundled app and blueprint version the registry does not have yet,
 * the apps first.
 */
async function bootstrap(url) {
  const cliApi = resolve(root, "apps-sdk/dist/cli-api.js");
  if (!existsSync(cliApi)) throw new Error("the erp-edge CLI is not built; run `npm install`");
  const api = await import(pathToFileURL(cliApi).href);
  if (!(await waitForServer(url))) {
    if (!devExited) log(`no answer from ${url} within two minutes; skipped publishing the bundled blueprints`);
    return;
  }
  const key = existsSync(publisherKey) ? await api.readPrivateKey(publisherKey, (w) => log(`warning: ${w}`)) : await api.generateKeyFile(publisherKey);
  const client = new api.RegistryClient({ url: new URL(url), token: adminToken() });

  try {
    await client.createPublisher(PUBLISHER, key.publicJwk);
    log(`registered publisher ${PUBLISHER} with the key in .erp-edge/dev-publisher.jwk (${key.kid})`);
  } catch (err) {
    if (err?.status !== 409) throw new Error(`could not register ${PUBLISHER}:\n  ${describe(err)}`);
    try {
      await client.addPublisherKey(PUBLISHER, key.publicJwk);
      log(`${PUBLISHER} existed with other keys; added the key in .erp-edge/dev-publisher.jwk (${key.kid})`);
    } catch (keyErr) {
      // 409: the key is already one of the publisher's, the usual case on every start after the first.
      if (keyErr?.status !== 409) throw new Error(`could not add the dev key to ${PUBLISHER}:\n  ${describe(keyErr)}`);
    }
  }

  // Apps: the examples (blueprints/examples/<name>/, an app with src/index.ts) and each blueprint's own
  // (blueprints/<name>/app/, which `blueprint pack` leaves out of the blueprint's archive). Then the
  // blueprints (blueprints/<name>/blueprint.json), whose installs look their apps up in the registry.
  const list = (dir, marker) => (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(resolve(dir, d.name, marker))).map((d) => resolve(dir, d.name)) : []);
  const folder = resolve(root, "blueprints");
  const blueprints = list(folder, "blueprint.json");
  const packages = [
    ...list(resolve(folder, "examples"), "src/index.ts").map((path) => ({ path, prepare: api.prepareApp })),
    ...blueprints.filter((path) => existsSync(resolve(path, "app/src/index.ts"))).map((path) => ({ path: resolve(path, "app"), prepare: api.prepareApp })),
    ...blueprints.map((path) => ({ path, prepare: api.preparePackage })),
  ];
  for (const { path, prepare } of packages) {
    const where = path.slice(root.length + 1);
    let pkg;
    try {
      pkg = await prepare(path);
      const published = await api.publishPackage(pkg, key, client);
      log(`published ${published.name}@${published.version} (${published.digest})`);
    } catch (err) {
      if (err?.status === 409 && pkg) {
        const version = await client.request("GET", `/v1/registry/packages/${pkg.name}/${pkg.version}`).catch(() => undefined);
        if (version?.digest && version.digest !== pkg.digest) {
          log(`${where} differs from the published ${pkg.name}@${pkg.version}; raise its version to publish the change`);
        } else log(`${pkg.name}@${pkg.version} is in the registry`);
      } else log(`could not publish ${where}:\n  ${describe(err)}`);
    }
  }
}
