#!/usr/bin/env node
// The erp-edge command-line tool; its code is built into dist/ by `npm run build` (run by npm install).
import("../dist/cli.js").catch((err) => {
  if (err?.code === "ERR_MODULE_NOT_FOUND") {
    console.error("erp-edge: the CLI is not built yet; run `npm install` (or `npm run build -w @erp-edge/apps-sdk`) first");
    process.exit(2);
  }
  throw err;
});
