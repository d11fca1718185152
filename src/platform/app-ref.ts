// How a use case names an app action (inbound pre_mapping, outbound transform, pull): shared by the
// mapping, integration and apps schemas, so it lives below all of them.
import { z } from "@hono/zod-openapi";
import { PACKAGE_NAME_PATTERN } from "../../apps-sdk/src/blueprint/manifest";

export const AppActionRef = z
  .object({
    app: z.string().max(104).regex(PACKAGE_NAME_PATTERN, "an installed app's name such as @acme/sap-normalise").openapi({ example: "@erp-edge/sap-normalise" }),
    action: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, "an action name").openapi({ example: "normalise" }),
  })
  .strict()
  .openapi("AppActionRef", { description: "An action of an app installed in this tenant (POST /v1/apps/install)" });
export type AppActionRef = z.infer<typeof AppActionRef>;
