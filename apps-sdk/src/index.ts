// @erp-edge/apps-sdk: write erp-edge apps (defineApp, defineAction, runAction) and packages.
export * from "./app";
// zod itself, so an app's schemas are made by the same zod the SDK validates and describes them with
// (`import { defineApp, z } from "@erp-edge/apps-sdk"`); importing "zod" directly keeps working.
export { z } from "zod";
