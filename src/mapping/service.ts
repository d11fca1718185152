// Mapping simulation: validate a configuration, parse a payload, run the mapping, nothing stored.
import type { z } from "@hono/zod-openapi";
import { AppError, zodIssues } from "../platform/errors";
import { configuredExpressions, MappingError, runMapping, type EntityUpdate, type MappingContext, type MappingWarning, type MeterReadingUpdate } from "./engine";
import { compiledStatus, ExpressionError, mappingCompilationEnabled } from "./expression";
import { parsePayload, PayloadError, type PayloadFormat } from "./payload";
import { convertLegacyMapping, InboundConfiguration, LegacyMappingV1, MappingConfigurationV2Events } from "./schema";

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
export async function simulate(
  config: InboundConfiguration,
  format: PayloadFormat,
  payload: unknown,
  ctx: MappingContext,
): Promise<{ entity_updates: EntityUpdate[]; meter_readings_updates: MeterReadingUpdate[]; warnings: SimulationWarning[]; expressions: ExpressionReport[] }> {
  let input: unknown;
  try {
    input = parsePayload(format, payload);
  } catch (err) {
    if (err instanceof PayloadError) throw new AppError("UNPROCESSABLE", err.message, { path: "payload", ...err.details });
    throw err;
  }
  try {
    const { entity_updates, meter_readings_updates, warnings } = await runMapping(config, input, ctx);
    return { entity_updates, meter_readings_updates, warnings: warnings.map((w) => simulationWarning(config, w)), expressions: expressionReports(config, ctx.compile) };
  } catch (err) {
    if (err instanceof MappingError) throw new AppError(err.limit ? "MAPPING_LIMIT_EXCEEDED" : "UNPROCESSABLE", err.message, err.details);
    throw err;
  }
}

/** erp-edge's addition to the simulation: how each expression of the configuration runs. */
export type ExpressionReport = { path: string; compiled: true } | { path: string; compiled: false; reason: string };

/** Whether each expression runs compiled to closures or in the JSONata interpreter, and why. */
export function expressionReports(config: InboundConfiguration, compile = mappingCompilationEnabled()): ExpressionReport[] {
  return configuredExpressions(config).map(({ path, expression, rootBinding }) => {
    if (!compile) return { path, compiled: false, reason: "compilation is turned off (MAPPING_COMPILER=off)" };
    try {
      const status = compiledStatus(expression, { rootBinding });
      return status.compiled ? { path, compiled: true } : { path, compiled: false, reason: status.reason };
    } catch (err) {
      // Unreachable for a saved or validated configuration (expressions are parsed then); kept total.
      if (err instanceof ExpressionError) return { path, compiled: false, reason: `syntax error ${err.code}: ${err.message}` };
      throw err;
    }
  });
}

/** A simulation warning as epilot's MappingSimulationWarning: `entity_schema`, `field` and `message` always there. */
export type SimulationWarning = MappingWarning & { entity_schema: string; field: string };

/**
 * Names what a warning is about in epilot's terms: the entity schema (`meter_reading` for a reading)
 * and the field, which is the attribute when there is one, else the entity's unique ids (a warning
 * about a skipped entity is about them), else "" (a warning about a whole schema or reading).
 */
function simulationWarning(config: InboundConfiguration, w: MappingWarning): SimulationWarning {
  const entity = w.entity_index !== undefined ? config.entities[w.entity_index] : undefined;
  const schema = w.entity_schema ?? entity?.entity_schema ?? (w.meter_reading_index !== undefined ? "meter_reading" : "");
  const field = w.attribute ?? (w.code === "MISSING_UNIQUE_ID" && entity ? entity.unique_ids.join(",") : "");
  return { ...w, entity_schema: schema, field };
}

/**
 * The v1 simulation: a v1.0 configuration (`mapping.objects`, version "1.0" or absent) or a v2.0 one
 * (`version: "2.0"`, `mapping.events`), and the object type (event name) of the payload.
 */
export function parseSimulationConfiguration(input: unknown, objectType: string): InboundConfiguration {
  const version = input && typeof input === "object" && !Array.isArray(input) ? (input as { version?: unknown }).version : undefined;
  if (version !== "2.0") return parseLegacyConfiguration(version === undefined && input && typeof input === "object" ? { ...input, version: "1.0" } : input, objectType);
  const v2 = MappingConfigurationV2Events.safeParse(input);
  if (!v2.success) throw invalidConfiguration(v2.error, "mapping_configuration");
  if (!Object.hasOwn(v2.data.mapping.events, objectType)) {
    throw new AppError("UNPROCESSABLE", `object_type '${objectType}' is not in mapping_configuration.mapping.events`, {
      path: "object_type",
      known: Object.keys(v2.data.mapping.events),
    });
  }
  return parseMappingConfiguration(v2.data.mapping.events[objectType], `mapping_configuration.mapping.events.${objectType}`);
}

/** The v1 simulation of a v1.0 configuration, one of whose object types the payload is. */
export function parseLegacyConfiguration(input: unknown, objectType: string): InboundConfiguration {
  const legacy = LegacyMappingV1.safeParse(input);
  if (!legacy.success) throw invalidConfiguration(legacy.error, "mapping_configuration");
  if (!Object.hasOwn(legacy.data.mapping.objects, objectType)) {
    throw new AppError("UNPROCESSABLE", `object_type '${objectType}' is not in mapping_configuration.mapping.objects`, {
      path: "object_type",
      known: Object.keys(legacy.data.mapping.objects),
    });
  }
  return parseMappingConfiguration(convertLegacyMapping(legacy.data, objectType), "mapping_configuration");
}
