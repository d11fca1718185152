// Configuration of inbound use cases: the mapping from an ERP payload to entities.
import { z } from "@hono/zod-openapi";

/**
 * Provisional shape: the mapping engine (issue #3) replaces this with the full
 * epilot-compatible mapping schema; the integrations API already validates against it.
 */
export const InboundConfiguration = z
  .object({
    entities: z.array(z.record(z.string(), z.unknown())).optional(),
    meter_readings: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .passthrough()
  .openapi("InboundConfiguration");
export type InboundConfiguration = z.infer<typeof InboundConfiguration>;
