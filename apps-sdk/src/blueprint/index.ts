// @erp-edge/apps-sdk/blueprint: the package format, archives and signatures, as the CLI, the
// registry and the host all use them.
export * from "./manifest";
export * from "./bundle";
export * from "./signing";
