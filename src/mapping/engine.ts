// Runs a mapping configuration over a payload: entity updates and meter readings, with warnings.
// Pure: no I/O, so the simulation endpoint, the event pipeline and tests all call it directly.
import { isRecord } from "../platform/json";
import { ownValue, setOwn } from "../platform/paths";
import { checkAgainstSchema } from "./entity-schemas";
import { evaluateNow, ExpressionError, serialisedSize, type EvaluationBounds, type StepBudget } from "./expression";
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
  /** Run expressions compiled to closures (default: the isolate's switch, see setMappingCompilation). */
  compile?: boolean;
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

/**
 * The engine is written once, as generators that yield only what must be awaited (an interpreted
 * expression, a signed file URL). `drive` runs one synchronously until the first such promise and
 * only then goes asynchronous: a mapping whose expressions all run compiled costs no microtask per
 * expression, which on the CustomerChanged mapping was most of its time once expressions were fast.
 */
type Step<T> = Generator<unknown, T, unknown>;

function drive<T>(steps: Step<T>): T | Promise<T> {
  let step = steps.next();
  while (!step.done) {
    if (step.value instanceof Promise) return driveAsync(steps, step.value);
    step = steps.next(step.value);
  }
  return step.value;
}

async function driveAsync<T>(steps: Step<T>, pending: Promise<unknown>): Promise<T> {
  for (;;) {
    let step: IteratorResult<unknown, T>;
    try {
      const value = await pending;
      step = steps.next(value);
    } catch (err) {
      // The awaited work failed: raised inside the generator where it yielded, so its own try/catch sees it.
      // (A failure of steps.next itself ends the generator; throw() on it rethrows that same error.)
      step = steps.throw(err);
    }
    while (!step.done && !(step.value instanceof Promise)) step = steps.next(step.value);
    if (step.done) return step.value;
    pending = step.value as Promise<unknown>;
  }
}

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

  /**
   * The expression's value, at once when it runs compiled, else a promise (the caller yields it to
   * the driver). Failures come out as MappingErrors saying where, either way.
   */
  evaluate(text: string, scope: Scope, at: string, attribute?: string): unknown {
    try {
      const value = evaluateNow(text, scope.input, { root: scope.root, bounds: this.ctx.bounds, budget: this.budget, compile: this.ctx.compile });
      return value instanceof Promise ? value.catch((err: unknown) => Promise.reject(mappingError(err, text, scope, at, attribute))) : value;
    } catch (err) {
      throw mappingError(err, text, scope, at, attribute);
    }
  }

  /**
   * False when the result surely serialises to less than maxOutputBytes, judged from the values
   * accounted so far: a value grows at most 16-fold when `_type` wraps each of its scalars
   * (`"a"` becomes `[{"email":"a"}]`), unique ids repeat attribute values, and every update and
   * warning adds its fixed keys and short texts. Meter readings carry unaccounted ids: always measured.
   */
  mayExceedOutput(result: MappingResult): boolean {
    if (result.meter_readings_updates.length > 0) return true;
    let fixed = 0;
    for (const update of result.entity_updates) {
      fixed += 200 + update.entity_slug.length;
      // Keys are configuration text, not accounted values; unique ids repeat some of them.
      for (const key of Object.keys(update.attributes)) fixed += 2 * (key.length + 4);
    }
    for (const warning of result.warnings) fixed += 300 + warning.message.length + 2 * (warning.attribute?.length ?? 0) + (warning.entity_schema?.length ?? 0);
    return 32 * this.outputSize + fixed >= this.limits.maxOutputBytes;
  }

  /** Adds a produced value to the run's output size; refuses the run past maxOutputBytes. */
  account(value: unknown, scope: Scope, at: string, attribute?: string): void {
    const max = this.limits.maxOutputBytes;
    this.outputSize += serialisedSize(value, max - this.outputSize);
    if (this.outputSize > max) throw outputTooLarge(max, at, { entity_schema: scope.entity_schema, attribute, item_index: scope.item_index });
  }

  *isEnabled(predicate: string, scope: Scope, at: string, attribute?: string): Step<boolean> {
    const value = this.evaluate(predicate, scope, at, attribute);
    return Boolean(value instanceof Promise ? yield value : value);
  }

  /** `constant` > `jsonataExpression` > `field`; a promise only when the interpreter evaluates it. */
  valueOf(source: ValueSource, scope: Scope, at: string, attribute: string): unknown {
    if (source.constant !== undefined) return source.constant;
    if (source.jsonataExpression !== undefined) return this.evaluate(source.jsonataExpression, scope, `${at}.jsonataExpression`, attribute);
    if (source.field !== undefined) return readField(scope.input, source.field);
    return undefined;
  }

  /** The element list an optional pre-processing expression yields (one scope per element). */
  *itemsOf(expression: string | undefined, payload: unknown, at: string, entity_schema?: string): Step<Scope[]> {
    if (expression === undefined) return [{ input: payload, path: at, entity_schema }];
    let value = this.evaluate(expression, { input: payload, path: at, entity_schema }, `${at}.jsonataExpression`);
    if (value instanceof Promise) value = yield value;
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

  *uniqueIds(sources: (string | UniqueIdSource)[], scope: Scope, at: string): Step<Record<string, unknown> | undefined> {
    const ids: Record<string, unknown> = {};
    for (let k = 0; k < sources.length; k++) {
      const source = sources[k]!;
      const resolved = typeof source === "string" ? { attribute: source, field: source } : source;
      let value = this.valueOf(resolved, scope, `${at}.${k}`, resolved.attribute);
      if (value instanceof Promise) value = yield value;
      if (value === undefined || value === null || value === "") return undefined;
      setOwn(ids, resolved.attribute, value);
    }
    return ids;
  }

  *relation(relations: Relations, scope: Scope, at: string, attribute: string): Step<unknown> {
    const refs: EntityRef[] = [];
    if ("items" in relations) {
      for (let j = 0; j < relations.items.length; j++) {
        const item = relations.items[j]!;
        const ids = yield* this.uniqueIds(item.unique_ids, scope, `${at}.items.${j}.unique_ids`);
        if (!ids) {
          this.warn(scope, { code: "RELATION_UNRESOLVED", attribute, message: `relation to ${item.entity_schema} skipped: a unique id has no value` });
          continue;
        }
        refs.push({ $entity_unique_ids: ids, _schema: item.entity_schema, ...(item._tags && { _tags: item._tags }) });
      }
    } else {
      let value = this.evaluate(relations.jsonataExpression, scope, `${at}.jsonataExpression`, attribute);
      if (value instanceof Promise) value = yield value;
      for (const raw of value === undefined ? [] : Array.isArray(value) ? value : [value]) {
        const ref = toEntityRef(raw);
        if (ref) refs.push(ref);
        else this.warn(scope, { code: "RELATION_UNRESOLVED", attribute, message: `relation item ${JSON.stringify(raw)?.slice(0, 80)} has no entity_schema and unique_ids` });
      }
    }
    return refs.length === 0 ? undefined : { $relation: { [relations.operation]: refs } };
  }

  *fileProxyUrl(config: FileProxyUrl, scope: Scope, at: string, attribute: string): Step<string> {
    const params: Record<string, string> = {};
    for (const [name, source] of Object.entries(config.params)) {
      let value = this.valueOf(source, scope, `${at}.params.${name}`, attribute);
      if (value instanceof Promise) value = yield value;
      if (value !== undefined && value !== null) setOwn(params, name, typeof value === "string" ? value : JSON.stringify(value));
    }
    if (this.ctx.fileUrl) return (yield this.ctx.fileUrl(config.use_case_slug, params)) as string;
    // Without a signer (a simulation): the unsigned URL, which opens with a files:read token.
    const url = new URL("/v1/files/download", this.ctx.baseUrl ?? "http://localhost");
    url.searchParams.set("integration_id", this.ctx.integrationId ?? "{integration_id}");
    url.searchParams.set("use_case_slug", config.use_case_slug);
    for (const name of Object.keys(params).sort()) url.searchParams.set(name, params[name]!);
    return this.ctx.baseUrl ? url.toString() : `${url.pathname}${url.search}`;
  }

  *fields(fields: FieldMapping[], scope: Scope, at: string): Step<Record<string, unknown>> {
    const attributes: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      const fieldAt = `${at}.fields.${i}`;
      if (field.enabled === false) continue;
      if (typeof field.enabled === "string" && !(yield* this.isEnabled(field.enabled, scope, `${fieldAt}.enabled`, field.attribute))) continue;
      let value: unknown;
      if (field.relations) value = yield* this.relation(field.relations, scope, `${fieldAt}.relations`, field.attribute);
      else if (field.file_proxy_url) value = yield* this.fileProxyUrl(field.file_proxy_url, scope, `${fieldAt}.file_proxy_url`, field.attribute);
      else {
        value = this.valueOf(field, scope, fieldAt, field.attribute);
        if (value instanceof Promise) value = yield value;
      }
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

function mappingError(err: unknown, text: string, scope: Scope, at: string, attribute?: string): unknown {
  if (!(err instanceof ExpressionError)) return err;
  const where = [scope.entity_schema, attribute].filter(Boolean).join(".");
  return new MappingError(`${where ? `${where}: ` : ""}JSONata ${err.code} at position ${err.position ?? 0} of ${at}: ${err.message}`, {
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

function* mapEntity(m: Mapper, entity: EntityMapping, index: number, payload: unknown, out: EntityUpdate[]): Step<void> {
  const at = `entities.${index}`;
  const base: Scope = { input: payload, path: at, entity_schema: entity.entity_schema };
  if (entity.enabled === false || entity.condition === false) return;
  if (typeof entity.enabled === "string" && !(yield* m.isEnabled(entity.enabled, base, `${at}.enabled`))) return;
  if (typeof entity.condition === "string" && !(yield* m.isEnabled(entity.condition, base, `${at}.condition`))) return;
  for (const scope of yield* m.itemsOf(entity.jsonataExpression, payload, at, entity.entity_schema)) {
    const attributes = yield* m.fields(entity.fields, scope, at);
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

function* mapMeterReadings(m: Mapper, mapping: MeterReadingMapping, index: number, payload: unknown, out: MeterReadingUpdate[]): Step<void> {
  const at = `meter_readings.${index}`;
  for (const scope of yield* m.itemsOf(mapping.jsonataExpression, payload, at)) {
    const skip = (message: string) => m.warn(scope, { code: "INVALID_METER_READING", message }, { meter_reading_index: index });
    const meterIds = yield* m.uniqueIds(mapping.meter.unique_ids, scope, `${at}.meter.unique_ids`);
    if (!meterIds) {
      skip("meter reading skipped: the meter's unique ids have no value");
      continue;
    }
    let counter: EntityRef | undefined;
    if (mapping.meter_counter) {
      const ids = yield* m.uniqueIds(mapping.meter_counter.unique_ids, scope, `${at}.meter_counter.unique_ids`);
      if (!ids) {
        skip("meter reading skipped: the meter counter's unique ids have no value");
        continue;
      }
      counter = { $entity_unique_ids: ids };
    }
    const attributes = yield* m.fields(mapping.fields, scope, at);
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

/** One JSONata expression of a configuration: where it is, and whether the engine evaluates it with `$$` rebound. */
export interface ConfiguredExpression {
  path: string;
  expression: string;
  /** Evaluated per element of a pre-processing expression's array, with `$$` the whole payload. */
  rootBinding: boolean;
}

/** Every expression a configuration holds, in the order a run evaluates them. */
export function configuredExpressions(config: InboundConfiguration): ConfiguredExpression[] {
  const out: ConfiguredExpression[] = [];
  const add = (path: string, expression: unknown, rootBinding: boolean) => {
    if (typeof expression === "string") out.push({ path, expression, rootBinding });
  };
  const value = (source: ValueSource, at: string, root: boolean) => add(`${at}.jsonataExpression`, source.jsonataExpression, root);
  const ids = (sources: (string | UniqueIdSource)[], at: string, root: boolean) =>
    sources.forEach((source, k) => typeof source !== "string" && value(source, `${at}.${k}`, root));
  const fields = (list: FieldMapping[], at: string, root: boolean) =>
    list.forEach((field, i) => {
      const f = `${at}.fields.${i}`;
      add(`${f}.enabled`, field.enabled, root);
      if (field.relations && "items" in field.relations) field.relations.items.forEach((item, j) => ids(item.unique_ids, `${f}.relations.items.${j}.unique_ids`, root));
      else if (field.relations) add(`${f}.relations.jsonataExpression`, field.relations.jsonataExpression, root);
      else if (field.file_proxy_url) for (const [name, source] of Object.entries(field.file_proxy_url.params)) value(source, `${f}.file_proxy_url.params.${name}`, root);
      else value(field, f, root);
    });
  config.entities.forEach((entity, i) => {
    const at = `entities.${i}`;
    add(`${at}.enabled`, entity.enabled, false);
    add(`${at}.condition`, entity.condition, false);
    add(`${at}.jsonataExpression`, entity.jsonataExpression, false);
    fields(entity.fields, at, entity.jsonataExpression !== undefined);
  });
  config.meter_readings.forEach((mapping, i) => {
    const at = `meter_readings.${i}`;
    const root = mapping.jsonataExpression !== undefined;
    add(`${at}.jsonataExpression`, mapping.jsonataExpression, false);
    ids(mapping.meter.unique_ids, `${at}.meter.unique_ids`, root);
    if (mapping.meter_counter) ids(mapping.meter_counter.unique_ids, `${at}.meter_counter.unique_ids`, root);
    fields(mapping.fields, at, root);
  });
  return out;
}

/**
 * Maps one payload. Throws MappingError when an expression fails at run time or a limit is reached
 * (the event fails); anything that only makes an entity or reading unusable becomes a warning.
 */
export async function runMapping(config: InboundConfiguration, payload: unknown, ctx: MappingContext = {}): Promise<MappingResult> {
  return drive(mapAll(config, payload, ctx));
}

function* mapAll(config: InboundConfiguration, payload: unknown, ctx: MappingContext): Step<MappingResult> {
  const m = new Mapper(ctx);
  const entity_updates: EntityUpdate[] = [];
  const meter_readings_updates: MeterReadingUpdate[] = [];
  for (let i = 0; i < config.entities.length; i++) yield* mapEntity(m, config.entities[i]!, i, payload, entity_updates);
  for (let i = 0; i < config.meter_readings.length; i++) yield* mapMeterReadings(m, config.meter_readings[i]!, i, payload, meter_readings_updates);
  const result = { entity_updates, meter_readings_updates, warnings: m.warnings };
  // The same bound for the simulation's response and the event pipeline's output, measured only
  // when a cheap upper bound does not already show the result is far below it.
  if (m.mayExceedOutput(result) && serialisedSize(result, m.limits.maxOutputBytes) > m.limits.maxOutputBytes) throw outputTooLarge(m.limits.maxOutputBytes, "output");
  return result;
}
