// app.json: what `erp-edge app build` writes beside the bundled module, what the registry stores as
// an app package's manifest and what the host reads (actions, schemas, declared hosts).
import { z } from "zod";
import { ExactVersion, PackageName } from "../blueprint/manifest";
import type { App } from "./define";

export const APP_MANIFEST_FILE = "app.json";

export const AppActionManifest = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/),
    description: z.string().max(2000),
    input_schema: z.record(z.string(), z.unknown()),
    output_schema: z.record(z.string(), z.unknown()),
    permissions: z.object({ hosts: z.array(z.string().min(1).max(253)).max(20) }).strict(),
  })
  .strict();

export const AppManifest = z
  .object({
    name: PackageName,
    version: ExactVersion,
    description: z.string().max(2000),
    /** The bundled ES module inside the package. */
    main: z.string().regex(/^[A-Za-z0-9_.-]+\.js$/, "a .js file at the package root"),
    config_schema: z.record(z.string(), z.unknown()).optional(),
    actions: z.array(AppActionManifest).min(1).max(50),
  })
  .strict()
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    m.actions.forEach((a, i) => {
      if (seen.has(a.name)) ctx.addIssue({ code: "custom", path: ["actions", i, "name"], message: `duplicate action '${a.name}'` });
      seen.add(a.name);
    });
  });
export type AppManifest = z.infer<typeof AppManifest>;

/** The app.json of a defined app: its actions with their input and output as JSON Schemas (zod's own). */
export function appManifest(app: App, main = "app.js"): AppManifest {
  const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return AppManifest.parse({
    name: app.name,
    version: app.version,
    description: app.description,
    main,
    ...(app.config && { config_schema: schema(app.config) }),
    actions: Object.values(app.actions).map((a) => ({ name: a.name, description: a.description, input_schema: schema(a.input), output_schema: schema(a.output), permissions: a.permissions })),
  });
}
