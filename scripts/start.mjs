// `npm start`: creates .dev.vars on first run, applies D1 migrations locally, then serves with wrangler dev.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import "./wrangler-env.mjs";

const root = resolve(import.meta.dirname, "..");
const devVars = resolve(root, ".dev.vars");
const wrangler = resolve(root, "node_modules/wrangler/bin/wrangler.js");
const run = (args) => spawnSync(process.execPath, [wrangler, ...args], { cwd: root, stdio: "inherit", env: process.env });

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

const migrated = run(["d1", "migrations", "apply", "DB", "--local"]);
if (migrated.status !== 0) process.exit(migrated.status ?? 1);

const dev = spawn(process.execPath, [wrangler, "dev", ...process.argv.slice(2)], { cwd: root, stdio: "inherit", env: process.env });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code) => process.exit(code ?? 0));
