// Mapping simulation: validate a configuration, parse a payload, run the mapping, nothing stored.
import type { z } from "@hono/zod-openapi";
import { AppError, zodIssues } from "../platform/errors";
import { MappingError, runMapping, type MappingContext, type MappingResult } from "./engine";
import { parsePayload, PayloadError, type PayloadFormat } from "./payload";
import { convertLegacyMapping, InboundConfiguration, LegacyMappingV1 } from "./schema";

function invalidConfiguration(error: z.ZodError, field: string): AppError {
  const details = zodIssues(error).map((issue) => ({ ...issue, path: issue.path ? `${field}.${issue.path}` : field }));
  return new AppError("UNPROCESSABLE", `Invalid ${field}`, details);
}

/** Parses a use-case configuration; 422 with paths under `field` when it is not a valid mapping. */
export function parseMappingConfiguration(input: unknown, field = "event_configuration"): InboundConfiguration {
  const parsed = InboundConfiguration.safeParse(input);
  if (!parsed.success) throw invalidConfiguration(parsed.error, field);
  return parsed.data;
}

/**
 * Runs a mapping; payload and expression failures become 422s that say where: MAPPING_LIMIT_EXCEEDED
 * (with `limit` and `value` in the details) when a bound of docs/mapping-limits.md stopped it,
 * UNPROCESSABLE otherwise. The result is bounded in size by runMapping, as in the event pipeline.
 */
export async function simulate(config: InboundConfiguration, format: PayloadFormat, payload: unknown, ctx: MappingContext): Promise<MappingResult> {
  let input: unknown;
  try {
    input = parsePayload(format, payload);
  } catch (err) {
    if (err instanceof PayloadError) throw new AppError("UNPROCESSABLE", err.message, { path: "payload", ...err.details });
    throw err;
  }
  try {
    const { entity_updates, meter_readings_updates, warnings } = await runMapping(config, input, ctx);
    return { entity_updates, meter_readings_updates, warnings };
  } catch (err) {
    if (err instanceof MappingError) throw new AppError(err.limit ? "MAPPING_LIMIT_EXCEEDED" : "UNPROCESSABLE", err.message, err.details);
    throw err;
  }
}

/** The v1 simulation: a legacy configuration, one of whose object types the payload is. */
export function parseLegacyConfiguration(input: unknown, objectType: string): InboundConfiguration {
  const legacy = LegacyMappingV1.safeParse(input);
  if (!legacy.success) throw invalidConfiguration(legacy.error, "mapping_configuration");
  if (!legacy.data.mapping.objects[objectType]) {
    throw new AppError("UNPROCESSABLE", `object_type '${objectType}' is not in mapping_configuration.mapping.objects`, {
      path: "object_type",
      known: Object.keys(legacy.data.mapping.objects),
    });
  }
  return parseMappingConfiguration(convertLegacyMapping(legacy.data, objectType), "mapping_configuration");
}
