// `erp-edge app test`: builds the app (a broken app fails here), bundles each test/**/*.test.ts with
// everything it imports into a temporary folder, and runs them with `node --test` in a child process.
// Bundling means no TypeScript loader and no `npm install`: the SDK and zod come from the app's
// node_modules or, failing that, from this CLI (sdkFallback).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { build } from "esbuild";
import { bundleErrorLines, buildApp, type BuiltApp } from "./app-build";
import { CliError } from "./io";
import { sdkFallback } from "./sdk-resolve";

const TEST_FILE = /\.test\.ts$/;

/** The app's test files: every `*.test.ts` in `test/` and its subfolders, sorted; hidden folders and node_modules skipped. */
export async function findTestFiles(dir: string): Promise<string[]> {
  const root = join(dir, "test");
  if (!existsSync(root)) return [];
  const found: string[] = [];
  const visit = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      const full = join(folder, entry.name);
      if (entry.isDirectory()) await visit(full);
      else if (entry.isFile() && TEST_FILE.test(entry.name)) found.push(full);
    }
  };
  await visit(root);
  return found.sort();
}

/** Splits a stream's chunks into whole lines for `write` (which adds the newline back), the rest at the end. */
function lineWriter(write: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let pending = "";
  return {
    push(chunk) {
      pending += chunk.toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) write(line);
    },
    end() {
      if (pending !== "") write(pending);
      pending = "";
    },
  };
}

export interface AppTestRun {
  built: BuiltApp;
  files: string[];
  /** The exit code of `node --test`: 0 when every test passed. */
  exitCode: number;
}

/**
 * Builds the app in `dir`, bundles its tests and runs them; the tests' output goes to `out`/`err`
 * line by line as it comes. The child runs in the app's folder on this process's Node
 * (`process.execPath`), with source maps, so failures point at the .ts lines.
 */
export async function testApp(dir: string, io: { stdout(text: string): void; stderr(text: string): void; env: Record<string, string | undefined> }, onBuilt: (built: BuiltApp, files: string[]) => void = () => {}): Promise<AppTestRun> {
  const built = await buildApp(dir);
  const files = await findTestFiles(dir);
  if (files.length === 0) throw new CliError(`${join(dir, "test")}: no test files; add test/<name>.test.ts files that use node:test (erp-edge app init writes one)`);
  onBuilt(built, files);
  const out = await mkdtemp(join(tmpdir(), "erp-edge-app-test-"));
  try {
    let outputs: string[];
    try {
      await build({
        entryPoints: files,
        outdir: out,
        outbase: dir,
        outExtension: { ".js": ".mjs" },
        bundle: true,
        format: "esm",
        platform: "node",
        target: "node20",
        sourcemap: "inline",
        // A CommonJS dependency bundled into ESM may still call require() for Node's built-ins.
        banner: { js: 'import { createRequire as __erpEdgeCreateRequire } from "node:module"; const require = __erpEdgeCreateRequire(import.meta.url);' },
        plugins: [sdkFallback()],
        logLevel: "silent",
      });
      outputs = files.map((file) => join(out, relative(dir, file)).replace(/\.ts$/, ".mjs"));
    } catch (err) {
      throw new CliError(`bundling the tests of ${dir} failed`, bundleErrorLines(err));
    }
    const exitCode = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ["--enable-source-maps", "--test", "--test-reporter=spec", ...outputs], {
        cwd: dir,
        env: { ...process.env, ...io.env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const stdout = lineWriter((line) => io.stdout(line));
      const stderr = lineWriter((line) => io.stderr(line));
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.on("error", reject);
      child.on("close", (code, signal) => {
        stdout.end();
        stderr.end();
        resolve(code ?? (signal ? 1 : 0));
      });
    });
    return { built, files: files.map((f) => relative(dir, f).split(sep).join("/")), exitCode };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
