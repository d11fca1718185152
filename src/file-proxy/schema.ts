// Configuration of file-proxy use cases: how an archived file is fetched from the ERP on demand.
import { z } from "@hono/zod-openapi";

/** Provisional shape: the file-proxy work owns and completes this schema. */
export const FileProxyConfiguration = z.record(z.string(), z.unknown()).openapi("FileProxyConfiguration");
export type FileProxyConfiguration = z.infer<typeof FileProxyConfiguration>;
