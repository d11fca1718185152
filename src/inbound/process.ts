// Processing of one accepted event: map it, resolve identities and relations, apply each entity
// update through its Durable Object, store meter readings, and record the outcome. Called by the
// event's log (EventLog), a round's events side by side (their writes in group order, see
// RoundWriter); safe to run again for the same event.
import type { Ambiguous, EntityOperation, EntityUpdateInput, EntityUpdateResult } from "../entities/store-do";
import type { ResolvedRelation } from "../entities/merge";
import { canonicalIds, type EntityWriter, type MeterReadingWrite } from "../entities/service";
import type { IntegrationSettings, UseCase } from "../integrations/schema";
import { processingConfiguration } from "../integrations/service";
import { fileUrlSigner, publicOrigin } from "../file-proxy/service";
import { MappingError, runMapping, type EntityRef, type EntityUpdate } from "../mapping/engine";
import { parsePayload, PayloadError } from "../mapping/payload";
import { InboundConfiguration } from "../mapping/schema";
import { crashPoint } from "../platform/crash-points";
import { runInstalled, type AppsEnv } from "../apps/service";
import { AppError } from "../platform/errors";
import { zodIssues } from "../platform/errors";
import { setOwn } from "../platform/paths";
import { redactPayloadText } from "../platform/redact";
import type { EventOutcome, EventRow } from "./events-log";
import type { EventEntityResult, EventError } from "./schema";

/** What processing needs: bindings, and the writer of the calling log's processing round. */
export type ProcessEnv = Pick<Env, "DB" | "ENTITY_STORE" | "SECRETS_KEY"> & Partial<Pick<Env, "PUBLIC_URL">> & AppsEnv & { entities: EntityWriter };

class EntityProblem extends Error {
  constructor(readonly error: EventError) {
    super(error.message);
  }
}

/** An update or reference whose unique ids name more than one entity: reported, never merged. */
function ambiguousIdentifier(schema: string, ids: Record<string, string>, matches: string[]): EventError {
  return { code: "AMBIGUOUS_IDENTIFIER", message: `${schema} ${JSON.stringify(ids)} matches ${matches.length} different entities; not merged`, schema, unique_ids: ids, matches };
}

/** Finds (or claims, creating a stub) the entity a relation or meter reference names. */
async function resolveReference(env: ProcessEnv, event: EventRow, schema: string, rawIds: Record<string, unknown>): Promise<string> {
  const ids = canonicalIds(rawIds);
  const resolution = await env.entities.resolve(event.tenant_id, schema, ids, event.integration_id);
  if ("ambiguous" in resolution) throw new EntityProblem(ambiguousIdentifier(schema, ids, resolution.ambiguous));
  return resolution.entityId;
}

/** Most relation references one event may resolve (each can claim an id and create a stub entity). */
const MAX_RELATION_REFS = 1000;
/** Most unique ids one reference may name (the same bound as a mapping's unique_ids). */
const MAX_REFERENCE_IDS = 20;

/** A reference's unique ids when they are usable: a plain object of 1..20 scalar values. */
function referenceIds(raw: unknown): Record<string, unknown> | null {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return null;
  const entries = Object.entries(raw);
  const scalar = (v: unknown) => typeof v === "string" || typeof v === "number" || typeof v === "boolean";
  return entries.length >= 1 && entries.length <= MAX_REFERENCE_IDS && entries.every(([, v]) => scalar(v)) ? (raw as Record<string, unknown>) : null;
}

/**
 * Replaces `{ $relation: { op: [{ $entity_unique_ids, _schema, _tags }] } }` with entity ids, for the
 * attributes the mapping declares as relations only: a `$relation` object that arrived as payload
 * data in any other attribute is kept as data and creates nothing. `budget` counts the references
 * one event may still resolve.
 */
async function resolveRelations(env: ProcessEnv, event: EventRow, attributes: Record<string, unknown>, relationAttributes: ReadonlySet<string>, budget: { left: number }, problems: EventError[]) {
  const out: Record<string, unknown> = {};
  for (const [attribute, value] of Object.entries(attributes)) {
    const relation = relationAttributes.has(attribute) ? (value as { $relation?: Record<string, EntityRef[]> } | null)?.$relation : undefined;
    if (!relation || typeof relation !== "object") {
      setOwn(out, attribute, value);
      continue;
    }
    const resolved: Record<string, ResolvedRelation[]> = {};
    for (const [op, refs] of Object.entries(relation)) {
      resolved[op] = [];
      for (const ref of Array.isArray(refs) ? refs : []) {
        const ids = referenceIds(ref?.$entity_unique_ids);
        if (!ids || typeof ref._schema !== "string") {
          problems.push({ code: "INVALID_RELATION", message: `relation item needs _schema and 1..${MAX_REFERENCE_IDS} scalar unique ids`, attribute });
          continue;
        }
        if (--budget.left < 0) {
          if (budget.left === -1) problems.push({ code: "RELATION_LIMIT_EXCEEDED", message: `more than ${MAX_RELATION_REFS} relation references in one event; the rest were skipped`, attribute });
          continue;
        }
        try {
          const entityId = await resolveReference(env, event, ref._schema, ids);
          resolved[op]!.push({ entity_id: entityId, _schema: ref._schema, ...(ref._tags && { _tags: ref._tags }) });
        } catch (err) {
          if (!(err instanceof EntityProblem)) throw err;
          problems.push({ ...err.error, attribute });
        }
      }
    }
    setOwn(out, attribute, { $relation: resolved });
  }
  return out;
}

/** The attributes each entity schema's mapping fills from `relations` (the only ones resolved as relations). */
function relationAttributesOf(config: InboundConfiguration): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const entity of config.entities) {
    const set = out.get(entity.entity_schema) ?? new Set<string>();
    for (const field of entity.fields) if (field.relations) set.add(field.attribute);
    out.set(entity.entity_schema, set);
  }
  return out;
}

/** Whether an update names relations (resolving them is a store call that must see earlier writes). */
function hasRelations(update: EntityUpdate, declared: Map<string, Set<string>>): boolean {
  const attributes = declared.get(update.entity_slug);
  return attributes !== undefined && [...attributes].some((a) => Object.hasOwn(update.attributes, a));
}

/** An entity update ready to commit: its relations resolved to entity ids. */
async function prepareUpdate(
  env: ProcessEnv,
  event: EventRow,
  update: EntityUpdate,
  index: number,
  relations: { attributes: Map<string, Set<string>>; budget: { left: number } },
  problems: EventError[],
): Promise<EntityUpdateInput> {
  const declared = relations.attributes.get(update.entity_slug) ?? new Set<string>();
  const attributes = await resolveRelations(env, event, update.attributes, declared, relations.budget, problems);
  return {
    updateId: `${event.id}#${index}`,
    eventId: event.id,
    tenantId: event.tenant_id,
    schema: update.entity_slug,
    uniqueIds: canonicalIds(update.unique_identifiers),
    integrationId: event.integration_id,
    attributes,
    mode: update.mode,
    sourceTimestamp: event.source_timestamp ?? undefined,
    correlationId: event.correlation_id,
  };
}

/** Parsed mapping configurations by their JSON text: parsing compiles every expression, once is enough. */
const parsedConfigs = new Map<string, InboundConfiguration>();
/** The use case's mapping, or the issues of one stored before a check that now refuses it. */
function mappingOf(useCase: UseCase): InboundConfiguration | { issues: ReturnType<typeof zodIssues> } {
  const key = JSON.stringify(useCase.configuration);
  let config = parsedConfigs.get(key);
  if (!config) {
    const parsed = InboundConfiguration.safeParse(useCase.configuration);
    if (!parsed.success) return { issues: zodIssues(parsed.error) };
    config = parsed.data;
    if (parsedConfigs.size >= 200) parsedConfigs.delete(parsedConfigs.keys().next().value!);
    parsedConfigs.set(key, config);
  }
  return config;
}

/**
 * Runs the use case's pre_mapping app action on the parsed payload. What the app does wrong (throws,
 * exceeds a limit, is not installed) fails this event with the app's message, never its stream: a
 * retry would fail the same way.
 */
async function preMapping(env: ProcessEnv, event: EventRow, ref: { app: string; action: string }, payload: unknown): Promise<{ ok: true; payload: unknown } | { ok: false; outcome: EventOutcome }> {
  const failed = (code: string, message: string, category: "validation" | "configuration", extra: Record<string, unknown> = {}): { ok: false; outcome: EventOutcome } => ({
    ok: false,
    outcome: { status: "error", error_category: category, errors: [{ code, message, app: ref.app, action: ref.action, ...extra }], entities: [], warnings: [] },
  });
  let run;
  try {
    run = await runInstalled(env, event.tenant_id, ref.app, ref.action, payload, { trigger: "pre_mapping", integration_id: event.integration_id, event_id: event.id });
  } catch (err) {
    if (err instanceof AppError && (err.code === "APP_NOT_INSTALLED" || err.code === "NOT_FOUND")) return failed(err.code, err.message, "configuration");
    throw err;
  }
  const { result } = run;
  if (result.ok) return { ok: true, payload: result.output };
  // The app rejecting the payload (or choking on it) is about this event; the rest is about the setup.
  const category = result.code === "APP_FAILED" || result.code === "APP_INPUT_INVALID" || result.code === "APP_LIMIT_EXCEEDED" ? "validation" : "configuration";
  return failed(result.code, result.message, category, { run_id: run.run_id, ...(result.limit && { limit: result.limit }) });
}

async function outcomeOf(env: ProcessEnv, event: EventRow, useCase: UseCase | null): Promise<EventOutcome> {
  if (!useCase || useCase.type !== "inbound" || !useCase.enabled) {
    return { status: "error", error_category: "configuration", errors: [{ code: "USE_CASE_UNAVAILABLE", message: `Inbound use case '${event.use_case_slug}' no longer exists or is disabled` }], entities: [], warnings: [] };
  }
  const config = mappingOf(useCase);
  if ("issues" in config) {
    // Stored before a check that now refuses it (e.g. a prototype key): a configuration error, never a retry.
    return { status: "error", error_category: "configuration", errors: [{ code: "INVALID_CONFIGURATION", message: "The use case's stored mapping no longer validates; save it again", details: config.issues }], entities: [], warnings: [] };
  }
  const relations = { attributes: relationAttributesOf(config), budget: { left: MAX_RELATION_REFS } };
  let mapped;
  try {
    let payload = parsePayload(event.format, event.payload ?? "");
    if (config.pre_mapping) {
      const pre = await preMapping(env, event, config.pre_mapping, payload);
      if (!pre.ok) return pre.outcome;
      payload = pre.payload;
    }
    mapped = await runMapping(config, payload, {
      integrationId: event.integration_id,
      // file_proxy_url values become signed download links (docs/file-proxy.md).
      fileUrl: fileUrlSigner(env, event.tenant_id, event.integration_id, publicOrigin(env)),
    });
  } catch (err) {
    if (err instanceof PayloadError) return { status: "error", error_category: "validation", errors: [{ code: "INVALID_PAYLOAD", message: err.message, ...err.details }], entities: [], warnings: [] };
    if (err instanceof MappingError) return { status: "error", error_category: "configuration", errors: [{ code: "MAPPING_FAILED", message: err.message, ...err.details }], entities: [], warnings: [] };
    throw err;
  }

  // An event's updates and readings go to their stores in commits, in its group's order, batched
  // with the round's other events (RoundWriter). A reference may name ids that this event's earlier
  // updates write, so those are committed before it is resolved; otherwise everything goes in one
  // commit at the end.
  const problems: EventError[] = [];
  const updates: EntityUpdateInput[] = [];
  const results: (EntityUpdateResult | Ambiguous)[] = [];
  const commitSoFar = async () => {
    if (updates.length > results.length) results.push(...(await env.entities.commit(updates.slice(results.length), { tenantId: event.tenant_id, readings: [] }, false)));
  };
  for (const [i, update] of mapped.entity_updates.entries()) {
    if (hasRelations(update, relations.attributes)) await commitSoFar();
    updates.push(await prepareUpdate(env, event, update, i, relations, problems));
  }
  if (mapped.meter_readings_updates.length > 0) await commitSoFar();
  const readings: MeterReadingWrite[] = [];
  const readingResults: EventEntityResult[] = [];
  for (const reading of mapped.meter_readings_updates) {
    try {
      const meterId = await resolveReference(env, event, "meter", reading.meter.$entity_unique_ids);
      const counterId = reading.meter_counter ? await resolveReference(env, event, "meter_counter", reading.meter_counter.$entity_unique_ids) : null;
      readings.push({ meterId, counterId, eventId: event.id, mode: reading.mode, attributes: reading.attributes });
      readingResults.push({ slug: "meter_reading", _id: meterId, operation: reading.mode === "delete" ? "deleted" : "upserted", unique_ids: { external_id: reading.attributes.external_id } });
    } catch (err) {
      if (!(err instanceof EntityProblem)) throw err;
      problems.push(err.error);
    }
  }
  const rest = updates.slice(results.length);
  if (rest.length + readings.length > 0) results.push(...(await env.entities.commit(rest, { tenantId: event.tenant_id, readings })));
  crashPoint("process.after-entity-update");
  const entities: EventEntityResult[] = [];
  for (const [i, result] of results.entries()) {
    const update = updates[i]!;
    if ("ambiguous" in result) problems.push(ambiguousIdentifier(update.schema, update.uniqueIds, result.ambiguous));
    else entities.push({ slug: update.schema, _id: result.entityId, operation: result.operation satisfies EntityOperation, unique_ids: update.uniqueIds });
  }
  entities.push(...readingResults);

  const status = problems.length === 0 ? "done" : entities.length > 0 ? "partial" : "error";
  return { status, error_category: problems.length ? "validation" : null, errors: problems, entities, warnings: mapped.warnings };
}

/**
 * Processes an accepted event of the caller's log: its outcome and the payload to store instead of
 * the received one (undefined to keep it). System failures (storage unavailable) throw, so the log
 * retries the event, and every entity write is idempotent per update id. The log records the outcome
 * and the redaction in one write, so an event is never finished with its PII still stored.
 */
export async function processEvent(env: ProcessEnv, event: EventRow, startedAt: string): Promise<{ startedAt: string; outcome: EventOutcome; payload: string | null | undefined }> {
  const { useCase, settings } = await processingConfiguration(env.DB, event.tenant_id, event.integration_id, event.use_case_id);
  const outcome = await outcomeOf(env, event, useCase);
  // Warnings recorded when the event was accepted (e.g. a webhook's event_name that failed) stay.
  const accepted = JSON.parse(event.warnings) as Record<string, unknown>[];
  if (accepted.length > 0) outcome.warnings = [...accepted, ...outcome.warnings];
  return { startedAt, outcome, payload: redactedPayload(event, settings) };
}

/**
 * Once processed, PII at the integration's redact_paths is removed from the logged payload: the
 * payload to store instead (null when it cannot be parsed to redact), or undefined to keep it.
 */
function redactedPayload(event: EventRow, settings: IntegrationSettings): string | null | undefined {
  if (settings.redact_paths.length === 0 || event.format !== "json" || !event.payload) return undefined;
  return redactPayloadText(event.payload, event.format, settings.redact_paths);
}

/** The outcome of an event the log gives up on after its retries, with its payload redacted like any other. */
export async function failedOutcome(env: Pick<Env, "DB">, event: EventRow, message: string): Promise<{ outcome: EventOutcome; payload: string | null | undefined }> {
  const { settings } = await processingConfiguration(env.DB, event.tenant_id, event.integration_id, null);
  const outcome: EventOutcome = { status: "error", error_category: "system", errors: [{ code: "PROCESSING_FAILED", message }], entities: [], warnings: [] };
  return { outcome, payload: redactedPayload(event, settings) };
}
