// Configuration of outbound use cases: which core events go to the ERP and how.
import { z } from "@hono/zod-openapi";

/** Provisional shape: the outbound work (issue #5) owns and completes this schema. */
export const OutboundConfiguration = z.record(z.string(), z.unknown()).openapi("OutboundConfiguration");
export type OutboundConfiguration = z.infer<typeof OutboundConfiguration>;
