// @erp-edge/apps-sdk: write erp-edge apps (defineApp, defineAction, runAction) and packages.
export * from "./app";
