// Requests and answers of the file proxy's routes. The use case's configuration is
// src/integrations/file-proxy-configuration.ts.
import { z } from "@hono/zod-openapi";
import { SLUG_PATTERN } from "../integrations/schema";
import { isPrototypeKey } from "../platform/paths";

/** The longest lifetime of a signed URL: ten years, like a use case's url_expires_in. */
export const MAX_URL_LIFETIME_S = 10 * 365 * 86_400;

export const FileUrlRequest = z
  .object({
    integration_id: z.string().min(1).max(64),
    use_case_slug: z.string().min(1).max(128).regex(SLUG_PATTERN, "a use case slug"),
    params: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), z.string().max(1024).refine((v) => v.isWellFormed(), "must be well-formed Unicode (no lone surrogates)"))
      .refine((p) => !Object.keys(p).some(isPrototypeKey), "must not name __proto__, constructor or prototype")
      .default({}),
    expires_in: z.number().int().min(1).max(MAX_URL_LIFETIME_S).default(3600).openapi({ description: "Seconds the URL stays valid (default one hour)" }),
  })
  .strict()
  .openapi("FileUrlRequest");
export type FileUrlRequest = z.infer<typeof FileUrlRequest>;

export const FileUrlResponse = z.object({ url: z.string(), expires_at: z.string() }).openapi("FileUrlResponse");
