// Runs a mapping configuration over a payload: entity updates and meter readings, with warnings.
// Pure: no I/O, so the simulation endpoint, the event pipeline and tests all call it directly.
import { isRecord } from "../platform/json";
import { ownValue, setOwn } from "../platform/paths";
import { checkAgainstSchema } from "./entity-schemas";
import { evaluateExpression, ExpressionError, serialisedSize, type EvaluationBounds, type StepBudget } from "./expression";
import type {
  EntityMapping,
  FieldMapping,
  FileProxyUrl,
  InboundConfiguration,
  MeterReadingMapping,
  Relations,
  UniqueIdSource,
  ValueSource,
} from "./schema";

export interface EntityRef {
  $entity_unique_ids: Record<string, unknown>;
  _schema?: string;
  _tags?: string[];
}

export interface EntityUpdate {
  entity_slug: string;
  unique_identifiers: Record<string, unknown>;
  attributes: Record<string, unknown>;
  mode: EntityMapping["mode"];
}

export interface MeterReadingUpdate {
  meter: EntityRef;
  meter_counter?: EntityRef;
  attributes: { external_id: string; timestamp: string; source: string; value: number; reason?: string; [k: string]: unknown };
  mode: MeterReadingMapping["mode"];
}

export interface MappingWarning {
  code: string;
  message: string;
  entity_schema?: string;
  entity_index?: number;
  meter_reading_index?: number;
  item_index?: number;
  attribute?: string;
}

export interface MappingResult {
  entity_updates: EntityUpdate[];
  meter_readings_updates: MeterReadingUpdate[];
  warnings: MappingWarning[];
}

/** What one mapping run may produce and spend, on top of each evaluation's bounds (docs/mapping-limits.md). */
export interface MappingLimits {
  /** Elements one pre-processing `jsonataExpression` (entity or meter reading) may yield, error L1006. */
  maxItems: number;
  /** JSON size of the whole result: entity updates, meter readings and warnings, error L1005. */
  maxOutputBytes: number;
  /** Cost units of all the run's evaluations together, error D1012. */
  maxTotalSteps: number;
}

export const DEFAULT_MAPPING_LIMITS: MappingLimits = Object.freeze({ maxItems: 1_000, maxOutputBytes: 1_000_000, maxTotalSteps: 5_000_000 });

export interface MappingContext {
  /** Integration whose file-proxy use cases `file_proxy_url` points at. */
  integrationId?: string;
  /** Origin for file-proxy URLs, e.g. https://erp-edge.example.com. */
  baseUrl?: string;
  /** Signs `file_proxy_url` results (the event pipeline); without it they are unsigned. */
  fileUrl?: (useCaseSlug: string, params: Record<string, string>) => Promise<string>;
  bounds?: Partial<EvaluationBounds>;
  limits?: Partial<MappingLimits>;
}

export interface MappingErrorDetails {
  path: string;
  entity_schema?: string;
  attribute?: string;
  expression?: string;
  jsonata_code: string;
  position?: number;
  item_index?: number;
  /** Set when a limit stopped the mapping: its name (e.g. `max_array_length`) and configured value. */
  limit?: string;
  value?: number;
}

/** Where in the configuration an expression failed (or a limit was reached), and JSONata's own error. */
export class MappingError extends Error {
  constructor(
    message: string,
    readonly details: MappingErrorDetails,
  ) {
    super(message);
    this.name = "MappingError";
  }

  /** The limit that stopped the mapping, if one did (the simulation answers MAPPING_LIMIT_EXCEEDED). */
  get limit(): string | undefined {
    return this.details.limit;
  }
}

/** Our codes for the run-level limits (the expression-level ones are in expression.ts). */
export const MAPPING_LIMIT_CODES = { max_output_bytes: "L1005", max_mapping_items: "L1006" } as const;

function outputTooLarge(max: number, path: string, where: Pick<MappingErrorDetails, "entity_schema" | "attribute" | "item_index"> = {}): MappingError {
  return new MappingError(`The mapping result would exceed ${max} bytes of JSON (limit max_output_bytes = ${max})`, {
    path,
    ...where,
    jsonata_code: MAPPING_LIMIT_CODES.max_output_bytes,
    limit: "max_output_bytes",
    value: max,
  });
}

export const METER_READING_SOURCES = ["ERP", "ECP", "360", "journey-submission"] as const;

interface Scope {
  /** `$` for expressions: the payload, or one element of a pre-processed array. */
  input: unknown;
  /** The whole payload, set in array contexts so `$$` still reaches it. */
  root?: unknown;
  path: string;
  entity_schema?: string;
  item_index?: number;
}

class Mapper {
  readonly warnings: MappingWarning[] = [];
  readonly limits: MappingLimits;
  readonly budget: StepBudget;
  /** Running JSON size of the attribute values produced so far, to stop a run before it grows huge. */
  private outputSize = 0;

  constructor(private readonly ctx: MappingContext) {
    this.limits = { ...DEFAULT_MAPPING_LIMITS, ...ctx.limits };
    this.budget = { used: 0, limit: this.limits.maxTotalSteps };
  }

  async evaluate(text: string, scope: Scope, at: string, attribute?: string): Promise<unknown> {
    try {
      return await evaluateExpression(text, scope.input, { root: scope.root, bounds: this.ctx.bounds, budget: this.budget });
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      const where = [scope.entity_schema, attribute].filter(Boolean).join(".");
      throw new MappingError(`${where ? `${where}: ` : ""}JSONata ${err.code} at position ${err.position ?? 0} of ${at}: ${err.message}`, {
        path: at,
        entity_schema: scope.entity_schema,
        attribute,
        expression: text,
        jsonata_code: err.code,
        position: err.position,
        item_index: scope.item_index,
        ...(err.limit && { limit: err.limit, value: err.value }),
      });
    }
  }

  /** Adds a produced value to the run's output size; refuses the run past maxOutputBytes. */
  account(value: unknown, scope: Scope, at: string, attribute?: string): void {
    const max = this.limits.maxOutputBytes;
    this.outputSize += serialisedSize(value, max - this.outputSize);
    if (this.outputSize > max) throw outputTooLarge(max, at, { entity_schema: scope.entity_schema, attribute, item_index: scope.item_index });
  }

  async isEnabled(predicate: boolean | string | undefined, scope: Scope, at: string, attribute?: string): Promise<boolean> {
    if (predicate === undefined || predicate === true) return true;
    if (predicate === false) return false;
    return Boolean(await this.evaluate(predicate, scope, at, attribute));
  }

  /** `constant` > `jsonataExpression` > `field`. */
  async valueOf(source: ValueSource, scope: Scope, at: string, attribute: string): Promise<unknown> {
    if (source.constant !== undefined) return source.constant;
    if (source.jsonataExpression !== undefined) return this.evaluate(source.jsonataExpression, scope, `${at}.jsonataExpression`, attribute);
    if (source.field !== undefined) return readField(scope.input, source.field);
    return undefined;
  }

  /** The element list an optional pre-processing expression yields (one scope per element). */
  async itemsOf(expression: string | undefined, payload: unknown, at: string, entity_schema?: string): Promise<Scope[]> {
    if (expression === undefined) return [{ input: payload, path: at, entity_schema }];
    const value = await this.evaluate(expression, { input: payload, path: at, entity_schema }, `${at}.jsonataExpression`);
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) return [{ input: value, root: payload, path: at, entity_schema }];
    const max = this.limits.maxItems;
    if (value.length > max) {
      throw new MappingError(`${entity_schema ? `${entity_schema}: ` : ""}${at}.jsonataExpression yields ${value.length} items (limit max_mapping_items = ${max})`, {
        path: `${at}.jsonataExpression`,
        entity_schema,
        expression,
        jsonata_code: MAPPING_LIMIT_CODES.max_mapping_items,
        limit: "max_mapping_items",
        value: max,
      });
    }
    return value.map((input, item_index) => ({ input, root: payload, path: at, entity_schema, item_index }));
  }

  async uniqueIds(sources: (string | UniqueIdSource)[], scope: Scope, at: string): Promise<Record<string, unknown> | undefined> {
    const ids: Record<string, unknown> = {};
    for (const [k, source] of sources.entries()) {
      const resolved = typeof source === "string" ? { attribute: source, field: source } : source;
      const value = await this.valueOf(resolved, scope, `${at}.${k}`, resolved.attribute);
      if (value === undefined || value === null || value === "") return undefined;
      setOwn(ids, resolved.attribute, value);
    }
    return ids;
  }

  async relation(relations: Relations, scope: Scope, at: string, attribute: string): Promise<unknown> {
    const refs: EntityRef[] = [];
    if ("items" in relations) {
      for (const [j, item] of relations.items.entries()) {
        const ids = await this.uniqueIds(item.unique_ids, scope, `${at}.items.${j}.unique_ids`);
        if (!ids) {
          this.warn(scope, { code: "RELATION_UNRESOLVED", attribute, message: `relation to ${item.entity_schema} skipped: a unique id has no value` });
          continue;
        }
        refs.push({ $entity_unique_ids: ids, _schema: item.entity_schema, ...(item._tags && { _tags: item._tags }) });
      }
    } else {
      const value = await this.evaluate(relations.jsonataExpression, scope, `${at}.jsonataExpression`, attribute);
      for (const raw of value === undefined ? [] : Array.isArray(value) ? value : [value]) {
        const ref = toEntityRef(raw);
        if (ref) refs.push(ref);
        else this.warn(scope, { code: "RELATION_UNRESOLVED", attribute, message: `relation item ${JSON.stringify(raw)?.slice(0, 80)} has no entity_schema and unique_ids` });
      }
    }
    return refs.length === 0 ? undefined : { $relation: { [relations.operation]: refs } };
  }

  async fileProxyUrl(config: FileProxyUrl, scope: Scope, at: string, attribute: string): Promise<string> {
    const params: Record<string, string> = {};
    for (const [name, source] of Object.entries(config.params)) {
      const value = await this.valueOf(source, scope, `${at}.params.${name}`, attribute);
      if (value !== undefined && value !== null) setOwn(params, name, typeof value === "string" ? value : JSON.stringify(value));
    }
    if (this.ctx.fileUrl) return this.ctx.fileUrl(config.use_case_slug, params);
    // Without a signer (a simulation): the unsigned URL, which opens with a files:read token.
    const url = new URL("/v1/files/download", this.ctx.baseUrl ?? "http://localhost");
    url.searchParams.set("integration_id", this.ctx.integrationId ?? "{integration_id}");
    url.searchParams.set("use_case_slug", config.use_case_slug);
    for (const name of Object.keys(params).sort()) url.searchParams.set(name, params[name]!);
    return this.ctx.baseUrl ? url.toString() : `${url.pathname}${url.search}`;
  }

  async fields(fields: FieldMapping[], scope: Scope, at: string): Promise<Record<string, unknown>> {
    const attributes: Record<string, unknown> = {};
    for (const [i, field] of fields.entries()) {
      const fieldAt = `${at}.fields.${i}`;
      if (!(await this.isEnabled(field.enabled, scope, `${fieldAt}.enabled`, field.attribute))) continue;
      let value: unknown;
      if (field.relations) value = await this.relation(field.relations, scope, `${fieldAt}.relations`, field.attribute);
      else if (field.file_proxy_url) value = await this.fileProxyUrl(field.file_proxy_url, scope, `${fieldAt}.file_proxy_url`, field.attribute);
      else value = await this.valueOf(field, scope, fieldAt, field.attribute);
      if (value === undefined) continue;
      this.account(value, scope, fieldAt, field.attribute);
      if (field._type) value = wrapTyped(field._type, value);
      setOwn(attributes, field.attribute, mergeAttribute(ownValue(attributes, field.attribute), value));
    }
    return attributes;
  }

  warn(scope: Scope, warning: Omit<MappingWarning, "entity_schema" | "item_index">, extra: Partial<MappingWarning> = {}) {
    this.warnings.push({
      ...warning,
      ...(scope.entity_schema && { entity_schema: scope.entity_schema }),
      ...(scope.item_index !== undefined && { item_index: scope.item_index }),
      ...extra,
    });
  }
}

/** `field`: a key of the payload, or a `$.a.b[0].c` path. */
export function readField(input: unknown, field: string): unknown {
  // Own properties only: a path never reads what a payload inherits (toString, constructor, ...).
  if (!field.startsWith("$.")) return isRecord(input) ? ownValue(input, field) : undefined;
  let current: unknown = input;
  for (const match of field.slice(2).matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (current === undefined || current === null) return undefined;
    current = match[2] !== undefined ? (Array.isArray(current) ? ownValue(current, match[2]) : undefined) : isRecord(current) ? ownValue(current, match[1]!) : undefined;
  }
  return current;
}


/** `_type: "email"` turns "a@b" into [{ email: "a@b" }] (and a list of scalars into a list of those). */
function wrapTyped(type: "email" | "phone", value: unknown): unknown {
  const wrap = (v: unknown) => (typeof v === "string" || typeof v === "number" ? { [type]: String(v) } : v);
  return Array.isArray(value) ? value.map(wrap) : typeof value === "string" || typeof value === "number" ? [wrap(value)] : value;
}

/** Two fields writing the same attribute: `_append`/`_append_all` results merge, anything else replaces. */
function mergeAttribute(previous: unknown, next: unknown): unknown {
  if (!isRecord(next)) return next;
  const op = "_append" in next ? "_append" : "_append_all" in next ? "_append_all" : undefined;
  if (!op || !Array.isArray(next[op])) return next;
  if (Array.isArray(previous)) return [...previous, ...(next[op] as unknown[])];
  if (isRecord(previous) && Array.isArray(previous[op])) return { [op]: [...(previous[op] as unknown[]), ...(next[op] as unknown[])] };
  return next;
}

function toEntityRef(raw: unknown): EntityRef | undefined {
  if (!isRecord(raw)) return undefined;
  const schema = raw.entity_schema ?? raw._schema;
  const ids = raw.unique_ids ?? raw.$entity_unique_ids;
  if (typeof schema !== "string" || !isRecord(ids) || Object.keys(ids).length === 0) return undefined;
  return { $entity_unique_ids: ids, _schema: schema, ...(Array.isArray(raw._tags) && { _tags: raw._tags as string[] }) };
}

const BARE_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** ISO 8601 with a time zone, or a bare date meaning midnight UTC; anything else is undefined. */
export function normaliseTimestamp(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  if (BARE_DATE.test(value)) return `${value}T00:00:00.000Z`;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

async function mapEntity(m: Mapper, entity: EntityMapping, index: number, payload: unknown, out: EntityUpdate[]) {
  const at = `entities.${index}`;
  const base: Scope = { input: payload, path: at, entity_schema: entity.entity_schema };
  if (!(await m.isEnabled(entity.enabled, base, `${at}.enabled`))) return;
  if (!(await m.isEnabled(entity.condition, base, `${at}.condition`))) return;
  for (const scope of await m.itemsOf(entity.jsonataExpression, payload, at, entity.entity_schema)) {
    const attributes = await m.fields(entity.fields, scope, at);
    const missing = entity.unique_ids.filter((id) => {
      const value = ownValue(attributes, id);
      return value === undefined || value === null || value === "";
    });
    if (missing.length > 0) {
      m.warn(scope, { code: "MISSING_UNIQUE_ID", message: `${entity.entity_schema} skipped: no value for unique id ${missing.join(", ")}` }, { entity_index: index });
      continue;
    }
    for (const w of checkAgainstSchema(entity.entity_schema, entity.unique_ids, attributes)) m.warn(scope, w, { entity_index: index });
    out.push({
      entity_slug: entity.entity_schema,
      unique_identifiers: Object.fromEntries(entity.unique_ids.map((id) => [id, ownValue(attributes, id)])),
      attributes,
      mode: entity.mode,
    });
  }
}

async function mapMeterReadings(m: Mapper, mapping: MeterReadingMapping, index: number, payload: unknown, out: MeterReadingUpdate[]) {
  const at = `meter_readings.${index}`;
  for (const scope of await m.itemsOf(mapping.jsonataExpression, payload, at)) {
    const skip = (message: string) => m.warn(scope, { code: "INVALID_METER_READING", message }, { meter_reading_index: index });
    const meterIds = await m.uniqueIds(mapping.meter.unique_ids, scope, `${at}.meter.unique_ids`);
    if (!meterIds) {
      skip("meter reading skipped: the meter's unique ids have no value");
      continue;
    }
    let counter: EntityRef | undefined;
    if (mapping.meter_counter) {
      const ids = await m.uniqueIds(mapping.meter_counter.unique_ids, scope, `${at}.meter_counter.unique_ids`);
      if (!ids) {
        skip("meter reading skipped: the meter counter's unique ids have no value");
        continue;
      }
      counter = { $entity_unique_ids: ids };
    }
    const attributes = await m.fields(mapping.fields, scope, at);
    const timestamp = normaliseTimestamp(attributes.timestamp);
    const value = typeof attributes.value === "string" && attributes.value.trim() !== "" ? Number(attributes.value) : attributes.value;
    const problems = [
      typeof attributes.external_id !== "string" && typeof attributes.external_id !== "number" && "external_id is missing",
      !timestamp && `timestamp ${JSON.stringify(attributes.timestamp)} is not ISO 8601`,
      !METER_READING_SOURCES.includes(attributes.source as never) && `source ${JSON.stringify(attributes.source)} is not one of ${METER_READING_SOURCES.join(", ")}`,
      mapping.mode === "upsert" && (typeof value !== "number" || !Number.isFinite(value)) && `value ${JSON.stringify(attributes.value)} is not a number`,
    ].filter(Boolean);
    if (problems.length > 0) {
      skip(`meter reading skipped: ${problems.join("; ")}`);
      continue;
    }
    out.push({
      meter: { $entity_unique_ids: meterIds },
      ...(counter && { meter_counter: counter }),
      attributes: { ...attributes, external_id: String(attributes.external_id), timestamp: timestamp!, source: attributes.source as string, value: value as number },
      mode: mapping.mode,
    });
  }
}

/**
 * Maps one payload. Throws MappingError when an expression fails at run time or a limit is reached
 * (the event fails); anything that only makes an entity or reading unusable becomes a warning.
 */
export async function runMapping(config: InboundConfiguration, payload: unknown, ctx: MappingContext = {}): Promise<MappingResult> {
  const m = new Mapper(ctx);
  const entity_updates: EntityUpdate[] = [];
  const meter_readings_updates: MeterReadingUpdate[] = [];
  for (const [i, entity] of config.entities.entries()) await mapEntity(m, entity, i, payload, entity_updates);
  for (const [i, mapping] of config.meter_readings.entries()) await mapMeterReadings(m, mapping, i, payload, meter_readings_updates);
  const result = { entity_updates, meter_readings_updates, warnings: m.warnings };
  // The same bound for the simulation's response and the event pipeline's output.
  if (serialisedSize(result, m.limits.maxOutputBytes) > m.limits.maxOutputBytes) throw outputTooLarge(m.limits.maxOutputBytes, "output");
  return result;
}
