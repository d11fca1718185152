// `erp-edge app init`: a new app folder that builds, tests and publishes as it is: one action
// (`hello`), its passing test (node:test and the SDK's runAction), and the scripts that call the CLI.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CliError, messageOf } from "./io";

/** The files of a new app, by path inside its folder. */
export function appTemplate(name: string, sdk: { version: string; zod: string }): Record<string, string> {
  const base = name.slice(name.indexOf("/") + 1);
  const packageJson = {
    name,
    private: true,
    type: "module",
    description: `${base}: an erp-edge app`,
    scripts: {
      build: "erp-edge app build .",
      test: "erp-edge app test .",
      // `npm run publish -- --key <private-key-file>`: the key is never named in this file.
      publish: "erp-edge app publish .",
    },
    dependencies: { "@erp-edge/apps-sdk": `^${sdk.version}`, zod: sdk.zod },
    devDependencies: { "@types/node": ">=20" },
  };
  const tsconfig = {
    compilerOptions: {
      target: "ES2023",
      module: "ES2022",
      moduleResolution: "Bundler",
      lib: ["ES2023", "DOM"],
      types: ["node"],
      strict: true,
      noEmit: true,
      isolatedModules: true,
      skipLibCheck: true,
    },
    include: ["src", "test"],
  };
  return {
    "package.json": `${JSON.stringify(packageJson, null, 2)}\n`,
    "tsconfig.json": `${JSON.stringify(tsconfig, null, 2)}\n`,
    "src/index.ts": `// ${name}: an erp-edge app. \`erp-edge app build\` bundles this file (and what it imports) into
// dist/app.js and describes its actions in dist/app.json; erp-edge runs the actions in a sandbox.
import { defineAction, defineApp, z } from "@erp-edge/apps-sdk";

const hello = defineAction({
  name: "hello",
  description: "Greets someone by name",
  // Input and output are validated on every run (APP_INPUT_INVALID, APP_OUTPUT_INVALID).
  input: z.object({ name: z.string().min(1).max(100) }),
  output: z.object({ greeting: z.string() }),
  async run({ name }, ctx) {
    ctx.log.info(\`greeting \${name}\`);
    return { greeting: \`Hello, \${name}!\` };
  },
});

export default defineApp({
  name: ${JSON.stringify(name)},
  // Raise it for every publish: a published version never changes.
  version: "0.1.0",
  description: ${JSON.stringify(`${base}: an erp-edge app`)},
  actions: [hello],
});
`,
    "test/index.test.ts": `// The app's actions run in Node through the SDK's harness, as erp-edge runs them: \`erp-edge app test\`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runAction } from "@erp-edge/apps-sdk";
import app from "../src/index";

test("hello greets by name", async () => {
  const { output, logs } = await runAction(app, "hello", { name: "Ada" });
  assert.deepEqual(output, { greeting: "Hello, Ada!" });
  assert.deepEqual(logs, [{ level: "info", message: "greeting Ada" }]);
});

test("hello refuses input without a name", async () => {
  await assert.rejects(runAction(app, "hello", { name: "" }), { code: "APP_INPUT_INVALID" });
});
`,
    "README.md": `# ${name}

An erp-edge app: actions that erp-edge runs in a sandbox, as a
pre-mapping step of an inbound use case, an outbound transform, a scheduled pull, or on demand.

| command | what |
|---|---|
| \`npx erp-edge app build .\` | bundles \`src/index.ts\` into \`dist/app.js\` and writes \`dist/app.json\` (name, version, actions with their JSON Schemas) |
| \`npx erp-edge app test .\` | builds, then runs every \`test/**/*.test.ts\` with \`node --test\` |
| \`npx erp-edge app publish . --key <private-key-file>\` | builds, packs \`app.json\` and \`app.js\`, signs them and uploads them to the registry (\`ERP_EDGE_TOKEN\`, \`ERP_EDGE_URL\`) |

\`npm install\` is optional: when \`@erp-edge/apps-sdk\` and \`zod\` are not installed here, \`erp-edge\`
uses its own copies. With them installed, \`npm run build\`, \`npm test\` and
\`npm run publish -- --key <private-key-file>\` do the same.

- The app's name and version are those in \`defineApp\` (\`src/index.ts\`); raise the version before
  every publish, since a published version never changes.
- An action may only \`ctx.fetch\` the hosts it declares in \`permissions.hosts\` and the tenant grants.
- Keep the signing key (\`erp-edge keys generate --out <file>\`) outside this folder.
`,
    ".gitignore": "dist\nnode_modules\n*.jwk\n",
  };
}

/**
 * Writes the template into `dir` and returns the paths written. A folder that holds anything (but a
 * `.git`) is refused unless `force`, and then only the template's own files are replaced.
 */
export async function initApp(dir: string, name: string, sdk: { version: string; zod: string }, options: { force?: boolean } = {}): Promise<string[]> {
  let entries: string[] = [];
  try {
    entries = (await readdir(dir)).filter((entry) => entry !== ".git");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw new CliError(`${dir} is a file; name a folder for the new app`);
    if (code !== "ENOENT") throw new CliError(`cannot read ${dir}: ${messageOf(err)}`);
  }
  if (entries.length > 0 && !options.force) {
    throw new CliError(`${dir} is not empty; choose a new folder, or pass --force to write the template into it (its files of the same names are replaced)`);
  }
  const files = appTemplate(name, sdk);
  for (const [file, text] of Object.entries(files)) {
    const path = join(dir, file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
  return Object.keys(files);
}
