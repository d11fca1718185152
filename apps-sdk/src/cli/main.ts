// The erp-edge command-line tool: keys, publishers, blueprints (validate, test, pack, publish) and apps
// (init, build, test, pack, publish).
// `main(argv, io)` runs one command and returns its exit code; bin.ts wires it to the process.
import { writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { runAction } from "../app/harness";
import type { App } from "../app/define";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { PackageName, PublisherName } from "../blueprint";
import { buildApp } from "./app-build";
import { initApp } from "./app-init";
import { prepareApp } from "./app-publish";
import { testApp } from "./app-test";
import { checkPackage, formatIssue } from "./check";
import { formatDifferences } from "./diff";
import { runFixture, type PreMapping } from "./fixtures";
import { CliError, EXIT, messageOf, nodeIo, type CliIo } from "./io";
import { generateKeyFile, readPrivateKey, type PublisherKey } from "./keys";
import { readPackageSource } from "./package-source";
import { archiveFileName, assertValid, preparePackage, publishPackage, type PreparedArchive } from "./publish";
import { isCleartextRemote, RegistryClient, RegistryError, serverUrl } from "./registry";
import pkg from "../../package.json";

type Values = Record<string, string | boolean | undefined>;

interface Command {
  summary: string;
  /** The command's help text after the `Usage:` line. */
  help: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  positionals: string[];
  run(args: { values: Values; positionals: string[]; io: CliIo }): Promise<number>;
}

const URL_OPTION = { url: { type: "string" } } as const;
const SERVER_HELP = `  --url <url>      The erp-edge server (default: ERP_EDGE_URL, else http://127.0.0.1:8787)

Environment:
  ERP_EDGE_TOKEN   A tenant token with the registry:publish scope (the operator's admin token for @erp-edge*)
  ERP_EDGE_URL     The server when --url is not given`;

const abs = (io: CliIo, path: string) => (isAbsolute(path) ? path : resolve(io.cwd, path));

function client(io: CliIo, values: Values): RegistryClient {
  const url = serverUrl(values.url as string | undefined, io.env);
  const token = io.env.ERP_EDGE_TOKEN?.trim();
  if (!token) {
    throw new CliError("ERP_EDGE_TOKEN is not set: export a tenant token with the registry:publish scope (or, for @erp-edge*, the operator's admin token)");
  }
  if (isCleartextRemote(url)) io.stderr(`warning: sending the token to ${url.origin} without TLS; use https for anything but a local server`);
  return new RegistryClient({ url, token, fetch: io.fetch });
}

/**
 * The pre_mapping runner of `blueprint test`: the blueprint folder's own app (app/src/index.ts), built
 * as `app build` builds it; undefined for an archive or a blueprint without one. Actions of other
 * apps are not run (the fixture then maps the payload as it is, with a note).
 */
async function blueprintApp(io: CliIo, dir: string): Promise<PreMapping | undefined> {
  const appDir = join(abs(io, dir), "app");
  if (!existsSync(join(appDir, "src/index.ts"))) return undefined;
  const built = await buildApp(appDir);
  const app = ((await import(`${pathToFileURL(built.modulePath).href}?test=${Date.now()}`)) as { default: App }).default;
  const ownName = (name: string) => name === app.name || name.split("/")[1] === app.name.split("/")[1];
  return async (ref, payload) => {
    if (!ownName(ref.app)) {
      io.stderr(`note: pre_mapping ${ref.app} is not this blueprint's app (${app.name}); the fixture maps the payload without it`);
      return undefined;
    }
    try {
      return { output: (await runAction(app, ref.action, payload)).output };
    } catch (err) {
      return { error: messageOf(err) };
    }
  };
}

/** What every publish command needs before it packs anything: the registry client and the --key (required). */
async function publishing(io: CliIo, values: Values): Promise<{ registry: RegistryClient; key: PublisherKey }> {
  if (typeof values.key !== "string") throw new CliError("--key <file> is required", [], EXIT.usage);
  const registry = client(io, values);
  return { registry, key: await readPrivateKey(abs(io, values.key), (w) => io.stderr(`warning: ${w}`)) };
}

function publisherName(value: string): string {
  const parsed = PublisherName.safeParse(value);
  if (!parsed.success) throw new CliError(`'${value}' is not a publisher name: ${parsed.error.issues[0]?.message}`, [], EXIT.usage);
  return parsed.data;
}

function packageName(value: string): string {
  const parsed = PackageName.safeParse(value);
  if (!parsed.success) throw new CliError(`'${value}' is not a package name: ${parsed.error.issues[0]?.message}`, [], EXIT.usage);
  return parsed.data;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Signs and uploads, then prints what was published; a 409 says which version to raise (`bump`). */
async function publishAndReport(io: CliIo, pkg: PreparedArchive, key: PublisherKey, registry: RegistryClient, bump: string): Promise<void> {
  let published;
  try {
    published = await publishPackage(pkg, key, registry);
  } catch (err) {
    if (err instanceof RegistryError && err.status === 409) {
      throw new CliError(`${pkg.name}@${pkg.version} is already published; versions are immutable, so raise ${bump}`, err.lines().map((l) => `  ${l}`));
    }
    throw err;
  }
  io.stdout(`Published ${published.name}@${published.version}`);
  io.stdout(`  digest: ${published.digest}`);
  io.stdout(`  signed with key ${key.kid}`);
}

const commands: Record<string, Command> = {
  "keys generate": {
    summary: "Create a publisher signing key (Ed25519)",
    usage: "erp-edge keys generate --out <file> [--force]",
    help: `Writes a new private key (a JWK, mode 0600) to <file> and prints its public part, with its key id,
as JSON on stdout: register that with \`erp-edge publisher create\`. Keep the private file secret.

Options:
  --out <file>     Where to write the private key (required)
  --force          Replace an existing file`,
    options: { out: { type: "string" }, force: { type: "boolean" } },
    positionals: [],
    async run({ values, io }) {
      if (typeof values.out !== "string") throw new CliError("--out <file> is required", [], EXIT.usage);
      const path = abs(io, values.out);
      const key = await generateKeyFile(path, { force: values.force === true });
      io.stdout(JSON.stringify(key.publicJwk, null, 2));
      io.stderr(`Private key written to ${path} (mode 0600, key id ${key.kid}). Keep it secret; it signs your packages.`);
      return EXIT.ok;
    },
  },

  "publisher create": {
    summary: "Register a publisher scope with a public key",
    usage: "erp-edge publisher create <@scope> --key <private-key-file> [--url <url>]",
    help: `Registers <@scope> (e.g. @acme) for the tenant of ERP_EDGE_TOKEN, with the public part of the key in
<private-key-file> (only the public part is sent).

Options:
  --key <file>     A private key file made by \`erp-edge keys generate\` (required)
${SERVER_HELP}`,
    options: { key: { type: "string" }, ...URL_OPTION },
    positionals: ["@scope"],
    async run({ values, positionals, io }) {
      const name = publisherName(positionals[0]!);
      if (typeof values.key !== "string") throw new CliError("--key <file> is required", [], EXIT.usage);
      const key = await readPrivateKey(abs(io, values.key), (w) => io.stderr(`warning: ${w}`));
      await client(io, values).createPublisher(name, key.publicJwk);
      io.stdout(`Registered publisher ${name} with key ${key.kid}.`);
      return EXIT.ok;
    },
  },

  "publisher add-key": {
    summary: "Add a signing key to a publisher (rotation)",
    usage: "erp-edge publisher add-key <@scope> --key <private-key-file> [--url <url>]",
    help: `Adds the public part of <private-key-file> to <@scope>'s keys. Versions signed with older keys keep
verifying; new versions can be signed with the new key.

Options:
  --key <file>     A private key file made by \`erp-edge keys generate\` (required)
${SERVER_HELP}`,
    options: { key: { type: "string" }, ...URL_OPTION },
    positionals: ["@scope"],
    async run({ values, positionals, io }) {
      const name = publisherName(positionals[0]!);
      if (typeof values.key !== "string") throw new CliError("--key <file> is required", [], EXIT.usage);
      const key = await readPrivateKey(abs(io, values.key), (w) => io.stderr(`warning: ${w}`));
      await client(io, values).addPublisherKey(name, key.publicJwk);
      io.stdout(`Added key ${key.kid} to publisher ${name}.`);
      return EXIT.ok;
    },
  },

  "blueprint validate": {
    summary: "Check a blueprint: manifest, $file references, configurations, fixtures",
    usage: "erp-edge blueprint validate <dir|archive.zip>",
    help: `Checks blueprint.json, resolves every { "$file": ... } reference, validates every use case's configuration
with erp-edge's own schemas (JSONata expressions are compiled) and reads every fixture. Each problem names
the file to edit and the JSON path inside it. Exit 1 when there is any.`,
    options: {},
    positionals: ["dir"],
    async run({ positionals, io }) {
      const path = abs(io, positionals[0]!);
      const source = await readPackageSource(path);
      const check = checkPackage(source.files);
      for (const w of check.warnings) io.stderr(`warning: ${w}`);
      assertValid(check, positionals[0]!);
      const useCases = check.manifest.integrations.reduce((n, i) => n + i.use_cases.length, 0);
      io.stdout(
        `${check.manifest.name}@${check.manifest.version} is valid: ${plural(check.manifest.integrations.length, "integration")}, ${plural(useCases, "use case")}, ${plural(check.fixtures.length, "fixture")}.`,
      );
      return EXIT.ok;
    },
  },

  "blueprint test": {
    summary: "Run the fixtures through the mapping engine and compare",
    usage: "erp-edge blueprint test <dir|archive.zip>",
    help: `Runs every fixture in the manifest's fixtures folder through erp-edge's mapping engine and compares the
entity updates and meter readings produced with the fixture's "expected" (in order, attributes exactly).
A use case's pre_mapping runs first when its app is the blueprint's own (the app/ folder beside
blueprint.json, built as \`app build\` builds it, run in the local harness with an empty config and
empty state for each fixture).
Prints a diff by JSON path for each difference; exit 1 when any fixture fails. See docs/cli.md for the
fixture format.`,
    options: {},
    positionals: ["dir"],
    async run({ positionals, io }) {
      const source = await readPackageSource(abs(io, positionals[0]!));
      const check = checkPackage(source.files);
      for (const w of check.warnings) io.stderr(`warning: ${w}`);
      assertValid(check, positionals[0]!);
      if (check.fixtures.length === 0) {
        throw new CliError(`${check.manifest.name} has no fixtures: add "fixtures": "fixtures" to blueprint.json and event files to that folder (docs/cli.md)`);
      }
      const preMapping = await blueprintApp(io, positionals[0]!);
      let failed = 0;
      for (const fixture of check.fixtures) {
        const result = await runFixture(fixture, check.useCases.get(`${fixture.integration}/${fixture.useCase}`)!, preMapping);
        const label = `${fixture.file}  ${fixture.integration}/${fixture.useCase}${fixture.description ? `: ${fixture.description}` : ""}`;
        if (result.error) {
          failed++;
          io.stdout(`FAIL ${label}`);
          io.stdout(`  ${result.error}`);
        } else if (result.differences.length > 0) {
          failed++;
          io.stdout(`FAIL ${label}`);
          io.stdout(`  ${plural(result.differences.length, "difference")} (expected vs actual):`);
          io.stdout(formatDifferences(result.differences, "  ").join("\n"));
        } else {
          const produced = result.produced!;
          const what = [plural(produced.entity_updates, "entity update"), produced.meter_readings_updates > 0 && plural(produced.meter_readings_updates, "meter reading")].filter(Boolean).join(", ");
          io.stdout(`PASS ${label} (${what})`);
        }
        for (const w of result.warnings) io.stdout(`  warning: ${w.code}: ${w.message}`);
      }
      const passed = check.fixtures.length - failed;
      io.stdout(`\n${plural(check.fixtures.length, "fixture")}: ${passed} passed, ${failed} failed`);
      return failed > 0 ? EXIT.failed : EXIT.ok;
    },
  },

  "blueprint pack": {
    summary: "Validate and pack a blueprint folder into its archive",
    usage: "erp-edge blueprint pack <dir> [--out <file.zip>]",
    help: `Validates the folder (as \`blueprint validate\`) and packs it into the zip archive that is signed and
published. Packing is deterministic: the same files give the same bytes and digest. Hidden files and
node_modules are left out.

Options:
  --out <file>     Where to write the archive (default: <scope>-<name>-<version>.zip in the current folder)`,
    options: { out: { type: "string" } },
    positionals: ["dir"],
    async run({ values, positionals, io }) {
      const pkg = await preparePackage(abs(io, positionals[0]!));
      for (const w of pkg.check.warnings) io.stderr(`warning: ${w}`);
      if (pkg.source !== "folder") throw new CliError(`${positionals[0]} is already an archive; pack a blueprint folder`, [], EXIT.usage);
      const out = abs(io, typeof values.out === "string" ? values.out : archiveFileName(pkg.name, pkg.version));
      await writeFile(out, pkg.archive);
      io.stdout(`${pkg.name}@${pkg.version}`);
      io.stdout(`  archive: ${out}`);
      io.stdout(`  digest:  ${pkg.digest}`);
      io.stdout(`  size:    ${pkg.archive.byteLength} bytes, ${plural(pkg.fileCount, "file")}`);
      return EXIT.ok;
    },
  },

  "blueprint publish": {
    summary: "Sign and publish a blueprint folder or archive",
    usage: "erp-edge blueprint publish <dir|archive.zip> --key <private-key-file> [--url <url>]",
    help: `Validates and packs <dir> (an archive is published byte for byte), signs { name, version, digest } with
the key, and uploads archive and signature to the registry. A version is immutable: publishing it again
fails with 409.

Options:
  --key <file>     The publisher's private key file (required)
${SERVER_HELP}`,
    options: { key: { type: "string" }, ...URL_OPTION },
    positionals: ["dir|archive"],
    async run({ values, positionals, io }) {
      const { registry, key } = await publishing(io, values);
      const pkg = await preparePackage(abs(io, positionals[0]!));
      for (const w of pkg.check.warnings) io.stderr(`warning: ${w}`);
      await publishAndReport(io, pkg, key, registry, '"version" in blueprint.json');
      return EXIT.ok;
    },
  },
  "app init": {
    summary: "Create a new app: one action, its test, and the scripts to build, test and publish it",
    usage: "erp-edge app init <dir> --name <@scope/name> [--force]",
    help: `Writes a working app into <dir> (created if missing): package.json, tsconfig.json, src/index.ts (defineApp
with one action, hello), test/index.test.ts (a passing test with node:test and the SDK's runAction),
README.md and .gitignore. \`erp-edge app test <dir>\` passes on it at once, with or without \`npm install\`.

Options:
  --name <name>    The app's package name, @scope/name; the scope is the publisher that signs it (required)
  --force          Write into a folder that is not empty (template files of the same names are replaced)`,
    options: { name: { type: "string" }, force: { type: "boolean" } },
    positionals: ["dir"],
    async run({ values, positionals, io }) {
      if (typeof values.name !== "string") throw new CliError("--name <@scope/name> is required", [], EXIT.usage);
      const name = packageName(values.name);
      const dir = abs(io, positionals[0]!);
      const files = await initApp(dir, name, { version: pkg.version, zod: pkg.dependencies.zod }, { force: values.force === true });
      io.stdout(`Created ${name} in ${dir}:`);
      io.stdout(files.map((f) => `  ${f}`).join("\n"));
      io.stdout(`\nNext:\n  npx erp-edge app test ${positionals[0]}\n  npx erp-edge app publish ${positionals[0]} --key <private-key-file>`);
      return EXIT.ok;
    },
  },

  "app build": {
    summary: "Bundle an app into dist/app.js and describe it in dist/app.json",
    usage: "erp-edge app build <dir>",
    help: `Bundles <dir>/src/index.ts (whose default export is defineApp({ … }) from @erp-edge/apps-sdk) into one
ES module, dist/app.js, with its dependencies (zod, the SDK) included, as erp-edge's sandbox loads it;
then writes dist/app.json: name, version, description, and per action its description, input and output
JSON Schemas and declared hosts. @erp-edge/apps-sdk and zod come from the app's node_modules, else from
this CLI, so an app builds before \`npm install\`.`,
    options: {},
    positionals: ["dir"],
    async run({ positionals, io }) {
      const built = await buildApp(abs(io, positionals[0]!));
      io.stdout(`${built.manifest.name}@${built.manifest.version}: ${plural(built.manifest.actions.length, "action")} (${built.manifest.actions.map((a) => a.name).join(", ")})`);
      io.stdout(`  module:   ${built.modulePath} (${built.bytes} bytes)`);
      io.stdout(`  manifest: ${built.manifestPath}`);
      return EXIT.ok;
    },
  },

  "app test": {
    summary: "Build an app and run its tests (test/**/*.test.ts) with node --test",
    usage: "erp-edge app test <dir>",
    help: `Builds the app (as \`app build\`: a broken app fails here), bundles every test/**/*.test.ts with what it
imports (the app, the SDK, zod) into a temporary folder, and runs them with \`node --test\` in the app's
folder, printing their output as it comes. Nothing needs installing: @erp-edge/apps-sdk and zod come from
the app's node_modules, else from this CLI. Exit code: the tests' (0 when all pass).`,
    options: {},
    positionals: ["dir"],
    async run({ positionals, io }) {
      const run = await testApp(abs(io, positionals[0]!), io, (built, files) => {
        io.stdout(`Built ${built.manifest.name}@${built.manifest.version}: ${plural(built.manifest.actions.length, "action")} (${built.manifest.actions.map((a) => a.name).join(", ")})`);
        io.stdout(`Running ${plural(files.length, "test file")} with node --test\n`);
      });
      return run.exitCode === 0 ? EXIT.ok : run.exitCode;
    },
  },

  "app pack": {
    summary: "Build an app and pack app.json and app.js into its archive",
    usage: "erp-edge app pack <dir> [--out <file.zip>]",
    help: `Builds the app (as \`app build\`) and packs dist/app.json and dist/app.js, and nothing else, into the zip
archive that is signed and published, checked as the registry checks it. Packing is deterministic: the
same build gives the same bytes and digest.

Options:
  --out <file>     Where to write the archive (default: <scope>-<name>-<version>.zip in the current folder)`,
    options: { out: { type: "string" } },
    positionals: ["dir"],
    async run({ values, positionals, io }) {
      const app = await prepareApp(abs(io, positionals[0]!));
      if (app.source !== "folder") throw new CliError(`${positionals[0]} is already an archive; pack an app folder`, [], EXIT.usage);
      const out = abs(io, typeof values.out === "string" ? values.out : archiveFileName(app.name, app.version));
      await writeFile(out, app.archive);
      io.stdout(`${app.name}@${app.version}: ${plural(app.actions.length, "action")} (${app.actions.join(", ")})`);
      io.stdout(`  archive: ${out}`);
      io.stdout(`  digest:  ${app.digest}`);
      io.stdout(`  size:    ${app.archive.byteLength} bytes, ${plural(app.fileCount, "file")}`);
      return EXIT.ok;
    },
  },

  "app publish": {
    summary: "Build, sign and publish an app folder (or an archive from app pack)",
    usage: "erp-edge app publish <dir|archive.zip> --key <private-key-file> [--url <url>]",
    help: `Builds and packs <dir> (as \`app pack\`; an archive is published byte for byte, after the same checks), signs
{ name, version, digest } with the key, and uploads archive and signature to the registry as a package of
kind app. A version is immutable: publishing it again fails with 409 (raise version in defineApp).

Options:
  --key <file>     The publisher's private key file (required)
${SERVER_HELP}`,
    options: { key: { type: "string" }, ...URL_OPTION },
    positionals: ["dir|archive"],
    async run({ values, positionals, io }) {
      const { registry, key } = await publishing(io, values);
      const app = await prepareApp(abs(io, positionals[0]!));
      await publishAndReport(io, app, key, registry, app.source === "folder" ? "version in defineApp (src/index.ts)" : "the app's version");
      return EXIT.ok;
    },
  },
};

function overview(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return `erp-edge ${pkg.version}: write, test and publish erp-edge blueprints and apps

Usage: erp-edge <command> [options]   (erp-edge <command> --help for one command)

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join("\n")}

Exit codes: 0 done, 1 failed (invalid package, failing fixture or test, refused request), 2 wrong usage.
Reference: docs/cli.md`;
}

const commandHelp = (name: string, c: Command) => `Usage: ${c.usage}\n\n${c.summary}.\n\n${c.help}`;

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    io.stdout(overview());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === "--version" || first === "-v") {
    io.stdout(pkg.version);
    return EXIT.ok;
  }
  const name = `${first} ${second ?? ""}`.trim();
  const command = commands[name];
  if (!command) {
    const group = Object.keys(commands).filter((c) => c.startsWith(`${first} `));
    const known = group.length > 0 && (second === undefined || second === "--help" || second === "-h");
    if (known) {
      io.stdout(`Usage:\n${group.map((g) => `  ${commands[g]!.usage}`).join("\n")}`);
      return second === undefined ? EXIT.usage : EXIT.ok;
    }
    io.stderr(`erp-edge: unknown command '${name}'\n\n${overview()}`);
    return EXIT.usage;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(2), options: { ...command.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr(`erp-edge: ${messageOf(err)}\nUsage: ${command.usage}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    io.stdout(commandHelp(name, command));
    return EXIT.ok;
  }
  if (parsed.positionals.length !== command.positionals.length) {
    const expected = command.positionals.length === 0 ? "no arguments" : command.positionals.map((p) => `<${p}>`).join(" ");
    io.stderr(`erp-edge: ${name} takes ${expected}\nUsage: ${command.usage}`);
    return EXIT.usage;
  }
  return command.run({ values: parsed.values as Values, positionals: parsed.positionals, io });
}

/**
 * Runs one command line (without `node` and the script) and returns the exit code. Expected failures
 * print `erp-edge: <message>` and their details, never a stack (set ERP_EDGE_DEBUG=1 for one).
 *
 * @example
 * process.exitCode = await main(["blueprint", "validate", "blueprints/hello-erp"]);
 */
export async function main(argv: string[], io: Partial<CliIo> = {}): Promise<number> {
  const full: CliIo = { ...nodeIo(), ...io };
  try {
    return await dispatch(argv, full);
  } catch (err) {
    if (err instanceof CliError) {
      full.stderr(`erp-edge: ${err.message}`);
      if (err.details.length > 0) full.stderr(err.details.join("\n"));
      return err.exitCode;
    }
    if (err instanceof RegistryError) {
      full.stderr(`erp-edge: the server refused the request: ${err.lines().join("\n")}`);
      return EXIT.failed;
    }
    full.stderr(`erp-edge: unexpected error: ${messageOf(err)}`);
    if (full.env.ERP_EDGE_DEBUG) full.stderr(String((err as Error)?.stack));
    return EXIT.failed;
  }
}
