// Accepting inbound events: validate, route, deduplicate and store each one durably, hand it to its
// ordering stream, and answer before any mapping happens.
import type { Integration, UseCase } from "../integrations/schema";
import { findIntegrationForWebhook, integrationForEvents, integrationIdForAppComponent, resolveEnvironmentValue, tenantIntegrationIds } from "../integrations/service";
import { evaluateExpression } from "../mapping/expression";
import { parsePayload, PayloadError } from "../mapping/payload";
import type { InboundConfiguration } from "../mapping/schema";
import { AppError, zodIssues } from "../platform/errors";
import { nowIso } from "../platform/ids";
import { enforceRateLimit, takeOrThrow } from "../platform/rate-limit";
import { redactPayloadText } from "../platform/redact";
import { parseJsonBytes } from "../platform/json";
import { toEventStatus, type EventRow, type NewEvent } from "./events-log";
import { eventLog, eventLogs, integrationTag, locate, newEventId, shardCount, shardOf } from "./shards";
import { ErpEventV1, InboundEvent, TERMINAL_STATUSES, WEBHOOK_DEDUP_PREFIXES, type EventsBatch, type EventsBatchResult, type InboundEventStatus } from "./schema";
import { verifyStandardWebhook, verifyXSignature, type SignatureCheck } from "./signatures";

type InboundEnv = Pick<Env, "DB" | "EVENT_LOG"> & Partial<Pick<Env, "EVENT_MAX_FUTURE_SKEW_SECONDS" | "EVENT_LOG_SHARDS">>;

type Issue = ReturnType<typeof zodIssues>[number];
type Candidate = { event: NewEvent; result: EventsBatchResult["results"][number]; accept: boolean };

const inboundConfig = (uc: UseCase) => uc.configuration as InboundConfiguration;

/**
 * The enabled inbound use case an event goes to. A `use_case_slug` decides alone (epilot: it "takes
 * precedence over event_name"). An `event_name` goes first to the use case listing it in
 * `configuration.event_names` (erp-edge's explicit routing), else to the one whose name is that event
 * name (epilot's rule: the event name is the use case's "Event Name" in its integration UI, e.g.
 * `business_partner`), else to the one with that slug (portable across environments).
 */
function route(integration: Integration, slug: string | undefined, eventName: string | undefined): UseCase | undefined {
  const inbound = integration.use_cases.filter((uc) => uc.type === "inbound" && uc.enabled);
  if (slug !== undefined) return inbound.find((uc) => uc.slug === slug);
  if (eventName === undefined) return undefined;
  return (
    inbound.find((uc) => inboundConfig(uc).event_names?.includes(eventName)) ??
    inbound.find((uc) => uc.name === eventName) ??
    inbound.find((uc) => uc.slug === eventName)
  );
}

/** The answer of an event whose log shard refused it: nothing of it is stored, so it may be posted again as is. */
export const NOT_STORED = "Not stored: the event log was unavailable; post this event again";

/**
 * Stores events in their integration's log: one call per shard, each one transaction in that shard's
 * Durable Object, which also queues the accepted ones for processing. Answers once every shard has
 * them durably; a duplicate's answer names the event that holds its deduplication id. A request's
 * shards are separate objects: when some refuse and others stored their events, the refused events
 * answer `error` ("post it again") and the rest stand, so a retry of just those duplicates nothing;
 * when every shard refused, nothing is stored and the request fails as a whole.
 */
async function store(env: InboundEnv, candidates: Candidate[]): Promise<void> {
  const shards = new Map<string, { integrationId: string; shard: number; items: Candidate[] }>();
  for (const c of candidates) {
    const shard = locate(c.event.id)!.shard;
    const key = `${c.event.integration_id}/${shard}`;
    const entry = shards.get(key) ?? { integrationId: c.event.integration_id, shard, items: [] };
    entry.items.push(c);
    shards.set(key, entry);
  }
  const calls = [...shards.values()];
  const settled = await Promise.allSettled(
    calls.map(async ({ integrationId, shard, items }) => {
      const holders = await eventLog(env, integrationId, shard).accept(items.map((c) => ({ event: c.event, process: c.accept })));
      items.forEach((c, i) => {
        const holder = holders[i];
        if (!holder) return;
        const what = c.event.idempotency_key ? `delivery (the same signed request, or Idempotency-Key '${c.event.idempotency_key}')` : `deduplication_id '${c.event.deduplication_id}'`;
        c.result = { event_id: holder, status: "skipped", message: `Duplicate ${what} within 24 hours` };
      });
    }),
  );
  const failed = settled.flatMap((s, i) => (s.status === "rejected" ? [{ call: calls[i]!, reason: s.reason as unknown }] : []));
  if (failed.length === 0) return;
  if (failed.length === calls.length) throw failed[0]!.reason;
  for (const { call, reason } of failed) {
    console.error(JSON.stringify({ level: "error", message: "event log shard refused events; answered as not stored", integration_id: call.integrationId, shard: call.shard, error: String((reason as Error)?.message ?? reason) }));
    for (const c of call.items) c.result = { event_id: c.event.id, status: "error", message: NOT_STORED };
  }
}

/** How far in the future an event's `timestamp` may be (clock skew), from EVENT_MAX_FUTURE_SKEW_SECONDS. */
export function maxFutureSkewMs(env: Partial<Pick<Env, "EVENT_MAX_FUTURE_SKEW_SECONDS">>): number {
  const seconds = Number(env.EVENT_MAX_FUTURE_SKEW_SECONDS ?? 86_400);
  return (Number.isFinite(seconds) && seconds >= 0 ? seconds : 86_400) * 1000;
}

/**
 * An event that will not be processed keeps its payload in the log for diagnosis, but with the
 * integration's redaction paths applied now, since no processing will redact it later.
 */
function unprocessed(event: NewEvent, integration: Integration, changes: Partial<NewEvent>): NewEvent {
  const next = { ...event, ...changes };
  return { ...next, payload: redactPayloadText(next.payload, next.format, integration.settings.redact_paths) };
}

/**
 * Validates one raw event into a candidate for storing (accepted, ignored or invalid). A timestamp
 * further ahead than the allowed skew is refused: as the newest version it would make every real
 * later update of its entities stale.
 */
function candidateOf(
  raw: unknown,
  tenantId: string,
  integration: Integration,
  batch: Pick<EventsBatch, "correlation_id" | "group_id">,
  receivedAt: string,
  maxFutureMs: number,
  shards: number,
  options: {
    /** Only the signed-webhook route sets this: its own deduplication ids carry the reserved prefixes. */
    webhook?: boolean;
    /** What a caller's own checks found wrong with the event before conversion (the v1 and v2 APIs). */
    issues?: Issue[];
  } = {},
): Candidate {
  const { webhook = false } = options;
  const parsed = InboundEvent.safeParse(raw);
  // The id names the log shard the event is stored in: its group's (a refused event's group is unknown: ''), see shards.ts.
  const group = parsed.success ? (parsed.data.group_id ?? batch.group_id ?? null) : null;
  const id = newEventId(integration.id, shardOf(group, shards));
  const base = { id, tenant_id: tenantId, integration_id: integration.id, received_at: receivedAt };
  const issues = [...(options.issues ?? []), ...(parsed.success ? [] : zodIssues(parsed.error))];
  // An id posted through the API or returned by a pull must never pass for a webhook's (an X-Signature
  // webhook's Idempotency-Key is checked against events with them).
  const dedup = parsed.success ? parsed.data.deduplication_id : undefined;
  if (!webhook && dedup && WEBHOOK_DEDUP_PREFIXES.some((p) => dedup.startsWith(p))) {
    issues.push({ path: "deduplication_id", message: "must not start with 'xsig-' or 'whsw-' (reserved for signed webhooks)", code: "custom" });
  }
  if (!parsed.success || issues.length > 0) {
    const r = raw as Record<string, unknown> | null;
    const str = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : null);
    const event: NewEvent = {
      ...base, use_case_id: null, use_case_slug: str(r?.use_case_slug, 128), event_name: str(r?.event_name, 255),
      correlation_id: str(r?.correlation_id, 255) ?? batch.correlation_id ?? null, group_id: null, deduplication_id: null, source_timestamp: null,
      format: "json", payload: null, status: "error", error_category: "validation",
      errors: [{ code: "VALIDATION_FAILED", message: "Invalid event", details: issues }],
    };
    const paths = issues.map((i) => `${i.path || "(event)"}: ${i.message}`).join("; ");
    return { event, result: { event_id: id, status: "error", message: `Invalid event: ${paths}` }, accept: false };
  }
  const e = parsed.data;
  const useCase = route(integration, e.use_case_slug, e.event_name);
  const event: NewEvent = {
    ...base,
    use_case_id: useCase?.id ?? null,
    use_case_slug: useCase?.slug ?? e.use_case_slug ?? null,
    event_name: e.event_name ?? null,
    correlation_id: e.correlation_id ?? batch.correlation_id ?? null,
    group_id: e.group_id ?? batch.group_id ?? null,
    deduplication_id: e.deduplication_id ?? null,
    source_timestamp: new Date(e.timestamp).toISOString(),
    format: e.format,
    payload: typeof e.payload === "string" ? e.payload : JSON.stringify(e.payload),
    status: "accepted",
  };
  const ahead = Date.parse(e.timestamp) - Date.parse(receivedAt);
  if (ahead > maxFutureMs) {
    const message = `timestamp ${e.timestamp} is more than ${maxFutureMs / 1000} s in the future`;
    return {
      event: unprocessed(event, integration, { status: "error", error_category: "validation", errors: [{ code: "TIMESTAMP_IN_FUTURE", message, max_future_skew_seconds: maxFutureMs / 1000 }] }),
      result: { event_id: id, status: "error", message },
      accept: false,
    };
  }
  if (!useCase) {
    const what = e.use_case_slug !== undefined ? `use case '${e.use_case_slug}'` : `use case for event '${e.event_name}'`;
    return { event: unprocessed(event, integration, { status: "ignored" }), result: { event_id: id, status: "ignored", message: `No enabled inbound ${what}` }, accept: false };
  }
  try {
    parsePayload(e.format, e.payload);
  } catch (err) {
    if (!(err instanceof PayloadError)) throw err;
    return {
      event: unprocessed(event, integration, { status: "error", error_category: "validation", errors: [{ code: "INVALID_PAYLOAD", message: err.message, ...err.details }] }),
      result: { event_id: id, status: "error", message: err.message },
      accept: false,
    };
  }
  return { event, result: { event_id: id, status: "success", message: "Accepted" }, accept: true };
}

/**
 * POST /v3/erp/updates/events. Answers once every accepted event is stored and queued in its log
 * shard; mapping and entity writes happen after the answer. No D1 write on this path, and the
 * configuration it reads is cached in the isolate.
 */
export async function acceptEvents(env: InboundEnv, tenantId: string, batch: EventsBatch): Promise<EventsBatchResult> {
  const integration = await integrationForEvents(env.DB, tenantId, batch.integration_id);
  const receivedAt = nowIso();
  const candidates = batch.events.map((raw) => candidateOf(raw, tenantId, integration, batch, receivedAt, maxFutureSkewMs(env), shardCount(env)));
  await store(env, candidates);
  return { results: candidates.map((c) => c.result) };
}

/**
 * A v1/v2 event as the v3 event it stands for: `object_type` is the event name, and `event_type`,
 * which epilot's own v3 dropped as unused, is checked and then not kept. Anything else the event
 * carries (including erp-edge's use_case_slug and group_id) goes on as is, to be validated as v3.
 */
export function legacyEventToV3(raw: unknown): { raw: unknown; issues: Issue[] } {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return { raw, issues: [] };
  const { event_type, object_type, ...rest } = raw as Record<string, unknown>;
  const checked = LegacyEventFields.safeParse({ event_type, object_type });
  return { raw: { ...rest, ...(typeof object_type === "string" && { event_name: object_type }) }, issues: checked.success ? [] : zodIssues(checked.error) };
}
const LegacyEventFields = ErpEventV1.pick({ event_type: true, object_type: true });

/**
 * The integration a v1 request's app and component stand for: the one epilot's
 * PUT /v1/integrations/{id}/app-mapping mapped them to, else the integration listing the app in its
 * `app_ids` (epilot's Integration field). Reads only the cached configuration; NOT_FOUND when none is.
 */
export async function integrationIdForApp(env: InboundEnv, tenantId: string, appId: string, componentId: string): Promise<string> {
  const mapped = await integrationIdForAppComponent(env.DB, tenantId, appId, componentId);
  if (mapped) return mapped;
  for (const id of await tenantIntegrationIds(env.DB, tenantId)) {
    const integration = (await integrationForEvents(env.DB, tenantId, id)) as Integration & { app_ids?: string[] };
    if (integration.app_ids?.includes(appId)) return id;
  }
  throw new AppError("NOT_FOUND", `No integration is mapped to app_id '${appId}' and component_id '${componentId}'`, { path: "app_id" });
}

/**
 * POST /v1 and /v2/erp/updates/events (deprecated by epilot, still served): the same path as v3
 * (stored durably before the answer, deduplicated, in order, no D1 write), each event converted by
 * legacyEventToV3 and validated on its own.
 */
export async function acceptLegacyEvents(env: InboundEnv, tenantId: string, batch: Omit<EventsBatch, "events"> & { events: unknown[] }): Promise<EventsBatchResult> {
  const integration = await integrationForEvents(env.DB, tenantId, batch.integration_id);
  const receivedAt = nowIso();
  const candidates = batch.events.map((event) => {
    const { raw, issues } = legacyEventToV3(event);
    return candidateOf(raw, tenantId, integration, batch, receivedAt, maxFutureSkewMs(env), shardCount(env), { issues });
  });
  await store(env, candidates);
  return { results: candidates.map((c) => c.result) };
}

/**
 * A tenant's event by id, read from the log shard its id names. The id's tag must match one of the
 * tenant's integrations (with 15 bits a stranger's id rarely does, and the row's tenant is checked).
 */
export async function findEvent(env: InboundEnv, tenantId: string, eventId: string): Promise<EventRow | null> {
  const where = locate(eventId);
  if (!where || where.shard >= shardCount(env)) return null;
  const candidates = (await tenantIntegrationIds(env.DB, tenantId)).filter((id) => integrationTag(id) === where.tag);
  for (const integrationId of candidates) {
    const row = await eventLog(env, integrationId, where.shard).event(eventId);
    if (row && row.tenant_id === tenantId) return row;
  }
  return null;
}

export async function getEventStatus(env: InboundEnv, tenantId: string, eventId: string): Promise<InboundEventStatus> {
  const row = await findEvent(env, tenantId, eventId);
  if (!row) throw new AppError("NOT_FOUND", `Event '${eventId}' not found`);
  return toEventStatus(row);
}

/** Waits up to `seconds` for the event to finish, polling its log; returns its status either way. */
export async function waitForEvent(env: InboundEnv, tenantId: string, eventId: string, seconds: number): Promise<InboundEventStatus> {
  const deadline = Date.now() + seconds * 1000;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    const status = await getEventStatus(env, tenantId, eventId);
    if (TERMINAL_STATUSES.includes(status.status) || Date.now() + delay > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

// ---- signed webhooks --------------------------------------------------------------------------

export interface WebhookRequest {
  integrationId: string;
  useCaseSlug: string;
  headers: Headers;
  rawBody: Uint8Array;
}

const unauthorized = (reason: string) => new AppError("UNAUTHORIZED", `Webhook signature rejected: ${reason}`);

async function sha256Hex(...parts: (string | Uint8Array)[]): Promise<string> {
  const encoded = parts.map((p) => (typeof p === "string" ? new TextEncoder().encode(p) : p));
  const bytes = new Uint8Array(encoded.reduce((n, p) => n + p.length, 0));
  encoded.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The deduplication id of a verified webhook, taken only from what the signature covers and kept in
 * the use case's own namespace (so neither another use case's ids nor ids posted through the API
 * can make it a duplicate): the signed `webhook-id` for Standard Webhooks, compared exactly; for
 * X-Signature the signed timestamp and body, so the same request replayed inside the freshness
 * window is a duplicate however its header is spelled. An Idempotency-Key is a second test beside
 * this one (idempotencyKeyOf), never part of it.
 */
export async function webhookDeduplicationId(useCaseId: string, check: Extract<SignatureCheck, { ok: true }>, rawBody: Uint8Array): Promise<string> {
  if (check.id !== undefined) return `whsw-${await sha256Hex("standard-webhooks\u0000", useCaseId, "\u0000", check.id)}`;
  return `xsig-${await sha256Hex("x-signature\u0000", useCaseId, "\u0000", String(check.timestamp), "\u0000", rawBody)}`;
}

/** What an Idempotency-Key may be: 1..255 visible ASCII characters (a UUID, as the telematics seed shows). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The Idempotency-Key of a verified X-Signature delivery, or why it is ignored. The header is not
 * signed, so it only ever adds a duplicate test: a sender's retry, signed again with a new timestamp,
 * is a duplicate of the delivery that carried the key first, while a replayed request stays a
 * duplicate by its signed timestamp and body whatever key it carries (and a duplicate registers no
 * key). Standard Webhooks have their signed `webhook-id` for this, so the header plays no part there.
 */
export function idempotencyKeyOf(headers: Headers, check: Extract<SignatureCheck, { ok: true }>): { key: string } | { ignored: string } | null {
  const raw = headers.get("idempotency-key");
  if (raw === null || check.scheme !== "x-signature") return null;
  const key = raw.trim();
  return IDEMPOTENCY_KEY.test(key) ? { key } : { ignored: "Idempotency-Key ignored: 1 to 255 visible ASCII characters expected" };
}

/** Requests per second one source address may make to the webhook route before its signatures are checked. */
const sourceRateLimit = (env: Partial<Pick<Env, "WEBHOOK_SOURCE_RATE_LIMIT_PER_SECOND">>) => Number(env.WEBHOOK_SOURCE_RATE_LIMIT_PER_SECOND ?? 100) || 100;

/**
 * POST /v1/webhooks/{integration_id}/{use_case_slug}: checks the signature over the raw body with the
 * use case's secret, then stores the body as one event of the same pipeline. Nothing is stored
 * unless the signature is valid and fresh. Before anything is verified, the caller is limited per
 * source address (its own bucket, so unsigned junk cannot use up the tenant's budget) and only the
 * one signing secret is decrypted; the tenant's rate limit is charged once the request is verified.
 */
export async function acceptWebhook(
  env: InboundEnv & Pick<Env, "SECRETS_KEY" | "RATE_LIMITER" | "TENANT_RATE_LIMIT_PER_SECOND"> & Partial<Pick<Env, "WEBHOOK_SOURCE_RATE_LIMIT_PER_SECOND">>,
  req: WebhookRequest,
) {
  const xSignature = req.headers.get("x-signature");
  const standard = { id: req.headers.get("webhook-id") ?? undefined, timestamp: req.headers.get("webhook-timestamp") ?? undefined, signature: req.headers.get("webhook-signature") ?? undefined };
  if (!xSignature && !standard.signature) throw unauthorized("no X-Signature or webhook-signature header");
  await takeOrThrow(env, `webhook-source:${req.headers.get("cf-connecting-ip") ?? "unknown"}`, sourceRateLimit(env), "Webhook request rate limit for this source");

  const found = await findIntegrationForWebhook(env.DB, req.integrationId);
  const useCase = found?.integration.use_cases.find((uc) => uc.slug === req.useCaseSlug && uc.type === "inbound");
  const webhook = useCase && inboundConfig(useCase).webhook;
  // One answer for every unknown or unconfigured target, so ids cannot be probed without a secret.
  if (!found || !useCase || !webhook) throw unauthorized("unknown webhook target");
  const secret = await resolveEnvironmentValue(env, found.integration.id, webhook.secret_env);
  if (!secret) throw unauthorized("the use case's signing secret is not set");

  const now = Math.floor(Date.now() / 1000);
  let check: SignatureCheck;
  if (xSignature && webhook.scheme !== "standard-webhooks") check = await verifyXSignature(xSignature, req.rawBody, secret, now);
  else if (standard.signature && webhook.scheme !== "x-signature") check = await verifyStandardWebhook(standard, req.rawBody, secret, now);
  else check = { ok: false, reason: `this use case accepts only ${webhook.scheme}` };
  if (!check.ok) throw unauthorized(check.reason);
  await enforceRateLimit(env, found.tenantId, found.tenantRateLimit);

  const body = parseJsonBytes(req.rawBody, "Webhook body");
  // The event name is informational here (the URL names the use case): a failing expression does not
  // refuse the delivery, but it is logged and kept as a warning on the event, visible in monitoring.
  let eventName: unknown;
  let nameWarning: Record<string, unknown> | undefined;
  try {
    eventName = await evaluateExpression(webhook.event_name, body);
  } catch (err) {
    nameWarning = { code: "EVENT_NAME_FAILED", message: `webhook.event_name expression failed: ${(err as Error).message}`, expression: webhook.event_name };
    console.error(JSON.stringify({ level: "warn", message: "webhook event_name failed", integration_id: found.integration.id, use_case: useCase.slug, error: (err as Error).message }));
  }
  const idempotency = idempotencyKeyOf(req.headers, check);
  const raw = {
    use_case_slug: useCase.slug,
    ...(typeof eventName === "string" && eventName && { event_name: eventName.slice(0, 255) }),
    timestamp: new Date(check.timestamp * 1000).toISOString(),
    format: "json",
    payload: body,
    deduplication_id: await webhookDeduplicationId(useCase.id, check, req.rawBody),
    // The key names the delivery across the sender's retries: kept as the correlation id, it travels on
    // as `_correlation_id` of the core events this delivery causes.
    ...(idempotency && "key" in idempotency && { correlation_id: idempotency.key }),
  };
  const candidate = candidateOf(raw, found.tenantId, found.integration, {}, nowIso(), maxFutureSkewMs(env), shardCount(env), { webhook: true });
  if (idempotency && "key" in idempotency && candidate.accept) candidate.event.idempotency_key = idempotency.key;
  const warnings = [nameWarning, idempotency && "ignored" in idempotency ? { code: "IDEMPOTENCY_KEY_IGNORED", message: idempotency.ignored } : undefined].filter((w) => w !== undefined);
  if (warnings.length > 0) candidate.event.warnings = warnings;
  await store(env, [candidate]);
  return candidate.result;
}

/**
 * Replays a stored inbound event as a new event (new id, `replay_of` linking the original) through
 * today's configuration: the way to re-run a failed event once its use case is fixed.
 */
export async function replayInboundEvent(env: InboundEnv, tenantId: string, integrationId: string, eventId: string) {
  const original = await findEvent(env, tenantId, eventId);
  if (!original || original.integration_id !== integrationId) return null;
  const integration = await integrationForEvents(env.DB, tenantId, integrationId);
  const raw = {
    ...(original.use_case_slug && { use_case_slug: original.use_case_slug }),
    ...(original.event_name && { event_name: original.event_name }),
    timestamp: original.source_timestamp ?? original.received_at,
    format: original.format,
    payload: original.payload ?? "",
    ...(original.group_id && { group_id: original.group_id }),
    ...(original.correlation_id && { correlation_id: original.correlation_id }),
  };
  const candidate = candidateOf(raw, tenantId, integration, {}, nowIso(), maxFutureSkewMs(env), shardCount(env));
  candidate.event.replay_of = original.id;
  await store(env, [candidate]);
  return candidate.result;
}

/**
 * The ERP's ACK of an inbound event (its ack_id is the event id), recorded in the event's log shard:
 * ack_status moves to `status` only over one of `overwritable` (or none). Null when the tenant has
 * no such event; else how many rows changed and the status now recorded.
 */
export async function acknowledgeInboundEvent(
  env: InboundEnv,
  tenantId: string,
  ack: { ack_id: string; status: string; message?: string },
  overwritable: readonly string[],
  at = nowIso(),
): Promise<{ acknowledged: number; statuses: (string | null)[] } | null> {
  const event = await findEvent(env, tenantId, ack.ack_id);
  if (!event) return null;
  return eventLog(env, event.integration_id, locate(event.id)!.shard).acknowledge(tenantId, ack, overwritable, at);
}

/** Deletes every event of these (deleted) integrations, shard by shard. */
export async function purgeEventLogs(env: Pick<Env, "EVENT_LOG"> & Partial<Pick<Env, "EVENT_LOG_SHARDS">>, integrationIds: string[]): Promise<void> {
  await Promise.all(integrationIds.flatMap((id) => eventLogs(env, id).map((log) => log.purge())));
}
