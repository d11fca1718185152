// Entities as the API shows them: the D1 projection of each entity's Durable Object.
import { z } from "@hono/zod-openapi";
import { NextCursor } from "../platform/pagination";

export const Entity = z
  .object({
    id: z.string(),
    schema: z.string(),
    attributes: z.record(z.string(), z.unknown()),
    unique_ids: z.record(z.string(), z.string()).openapi({ description: "The ERP's unique ids known for this entity" }),
    version: z.number().int(),
    stub: z.boolean().openapi({ description: "Created from a relation; its own event has not arrived yet" }),
    created_at: z.string(),
    updated_at: z.string(),
    deleted_at: z.string().nullable(),
  })
  .openapi("Entity");
export type Entity = z.infer<typeof Entity>;

export const EntityList = z.object({ entities: z.array(Entity), next_cursor: NextCursor }).openapi("EntityList");

export const EntityHistory = z
  .object({
    history: z.array(
      z.object({
        version: z.number().int(),
        event_id: z.string().nullable(),
        operation: z.string(),
        changes: z.record(z.string(), z.object({ from: z.unknown().optional(), to: z.unknown().optional() })),
        at: z.string(),
      }),
    ),
    next_cursor: NextCursor,
  })
  .openapi("EntityHistory");

export const MeterReading = z
  .object({
    id: z.string(),
    meter_id: z.string(),
    counter_id: z.string().nullable(),
    external_id: z.string(),
    timestamp: z.string(),
    value: z.number(),
    source: z.string(),
    reason: z.string().nullable(),
    attributes: z.record(z.string(), z.unknown()),
    event_id: z.string(),
    updated_at: z.string(),
  })
  .openapi("MeterReading");
export type MeterReading = z.infer<typeof MeterReading>;
export const MeterReadingList = z.object({ meter_readings: z.array(MeterReading), next_cursor: NextCursor }).openapi("MeterReadingList");
