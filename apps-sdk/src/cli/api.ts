// The CLI's building blocks for scripts in this repository (scripts/start.mjs bootstraps the local
// @erp-edge publisher with them): built to dist/cli-api.js, not a public entry point of the package.
export { main } from "./main";
export { CliError } from "./io";
export { checkPackage, formatIssue } from "./check";
export { generateKeyFile, readPrivateKey, type PublisherKey } from "./keys";
export { preparePackage, publishPackage, type PreparedPackage } from "./publish";
export { RegistryClient, RegistryError, DEFAULT_URL } from "./registry";
export { prepareApp, type PreparedApp } from "./app-publish";
