// Starts the real erp-edge Worker (and the registry Worker beside it) with `wrangler dev` for the
// browser tests: a free port, a fresh --persist-to folder, both migration sets applied, the Hub built.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
// @ts-expect-error: a plain .mjs script without types
import { buildHub } from "../scripts/build-hub.mjs";
// @ts-expect-error: a plain .mjs script without types
import { offlineEnv } from "../scripts/wrangler-env.mjs";

export const ROOT = path.resolve(import.meta.dirname, "..");
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");

export interface RunningWorker {
  base: string;
  adminToken: string;
  logPath: string;
  stop(): Promise<void>;
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` every 250 ms until it answers true or `ms` pass. */
export async function waitFor(what: string, check: () => Promise<boolean>, ms: number, exited?: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (exited?.()) throw new Error(`${what}: the process exited`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

/**
 * Starts `wrangler dev -c wrangler.toml -c registry/wrangler.toml` as `npm start` does, on a free port
 * with its own state folder (deleted by stop()). `vars` are passed as --var (e.g. a receiver allowed
 * past destination safety).
 */
export async function startWorker(vars: Record<string, string> = {}): Promise<RunningWorker> {
  await buildHub();
  const persist = mkdtempSync(path.join(os.tmpdir(), "erp-edge-hub-"));
  const env = { ...process.env, ...offlineEnv, CI: "true", X_LOCAL_OBSERVABILITY: "false" };
  for (const args of [
    ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist],
    ["d1", "migrations", "apply", "REGISTRY_DB", "--local", "-c", "registry/wrangler.toml", "--persist-to", persist],
  ]) {
    const migrated = spawnSync(process.execPath, [WRANGLER, ...args], { cwd: ROOT, encoding: "utf8", env });
    if (migrated.status !== 0) throw new Error(`migrations failed: ${migrated.stderr}`);
  }
  const port = await freePort();
  const inspector = await freePort();
  const adminToken = `hub-test-admin-${process.pid}`;
  const allVars = { ADMIN_TOKEN: adminToken, SECRETS_KEY: "hub-test-secrets-key-0123456789abcdef", ...vars };
  const logPath = path.join(os.tmpdir(), `erp-edge-hub-wrangler-${process.pid}.log`);
  const log = createWriteStream(logPath);
  const args = [
    WRANGLER, "dev", "-c", "wrangler.toml", "-c", "registry/wrangler.toml",
    "--port", String(port), "--ip", "127.0.0.1", "--inspector-port", String(inspector),
    "--persist-to", persist, "--show-interactive-dev-session=false", "--log-level=warn",
    ...Object.entries(allVars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ];
  // detached: its own process group, so stop() ends wrangler and the workerd processes it started.
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, detached: true });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  let exited = false;
  child.on("exit", () => (exited = true));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`wrangler dev on ${base} (log: ${logPath})`, async () => (await fetch(`${base}/`)).ok, 120_000, () => exited);
  return {
    base,
    adminToken,
    logPath,
    async stop() {
      if (!exited) {
        try {
          process.kill(-child.pid!, "SIGTERM");
        } catch {}
        await waitFor("wrangler dev to exit", async () => exited, 10_000).catch(() => {
          try {
            process.kill(-child.pid!, "SIGKILL");
          } catch {}
        });
      }
      rmSync(persist, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
