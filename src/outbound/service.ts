// Outbound: core events fan out to outbound use cases as deliveries (webhook or poll), with
// signing secrets, dead-letter queue, poll leases and ACK tracking.
import { runInstalled, type AppsEnv } from "../apps/service";
import { referencedCoreEvent } from "../entities/service";
import { triggerPull, type PullEnv } from "../inbound/pull";
import type { TriggerErpActionRequest, TriggerWebhookResp } from "../inbound/schema";
import { acknowledgeInboundEvent } from "../inbound/service";
import { cachedConfig } from "../platform/config-cache";
import { enabledOutboundUseCases, getIntegration, outboundUseCase, resolveEnvironment } from "../integrations/service";
import { evaluateExpression } from "../mapping/expression";
import { decryptValue, encryptValue } from "../platform/crypto";
import { AppError, zodIssues } from "../platform/errors";
import { newId, nowIso, ulidFloor } from "../platform/ids";
import { decodeCursor, encodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { ownValue } from "../platform/paths";
import { checkDestination, DestinationLookupError, destinationPolicy, type DestinationEnv, type DestinationPolicy, type Resolver } from "../platform/destination";
import { configSignatureHeaders, newWebhookSecret, signatureHeaders } from "./signing";
import { deleteConfig, deliveryTarget, getConfig, type DeliveryTarget } from "../webhook-configs/service";
import type { WebhookConfig } from "../webhook-configs/schema";
import type { Auth as ConfigAuth } from "../webhook-configs/schema";
import { OutboundConfiguration, type WebhookAuth, type WebhookDelivery, type WebhookEvent, type WebhookEventSearch } from "./schema";
import { envelope, type CoreEventEnvelope } from "../platform/core-events";
import { jobCursorSql } from "../platform/db";
import { fromDeliveryRow, type DeliveryRow, type EndpointMeta, type NewDelivery, type WebhookEventQuery } from "./deliveries-log";
import { existingTenantId } from "../tenants/service";

// ---- core events ------------------------------------------------------------------------------

/** The largest business event envelope (JSON bytes): under the queue's 128 KB per message. */
export const MAX_BUSINESS_EVENT_BYTES = 120_000;

/** POST /v1/events: a named business event from middleware or an app, fanned out like entity events. */
export async function emitBusinessEvent(
  env: Pick<Env, "CORE_EVENTS">,
  tenantId: string,
  input: { event_name: string; event_version: string; correlation_id?: string; payload: Record<string, unknown> },
) {
  const event = envelope(tenantId, input.event_name, input.payload, { version: input.event_version, source: "api", correlationId: input.correlation_id });
  // A queue message holds at most 128 KB; say so instead of failing the send.
  const bytes = new TextEncoder().encode(JSON.stringify(event)).length;
  if (bytes > MAX_BUSINESS_EVENT_BYTES) {
    throw new AppError("PAYLOAD_TOO_LARGE", `A business event may be at most ${MAX_BUSINESS_EVENT_BYTES} bytes in its envelope; this one is ${bytes}`, { max_bytes: MAX_BUSINESS_EVENT_BYTES });
  }
  await env.CORE_EVENTS.send(event, { contentType: "json" });
  return { event_id: event._event_id, ack_id: event._ack_id, event_name: event._event_name };
}

// ---- fan-out ----------------------------------------------------------------------------------

type OutboundEnv = Pick<Env, "DB" | "OUTBOUND_ENDPOINT" | "ENTITY_STORE"> & AppsEnv;

export const endpointIdOf = (useCaseId: string, mappingId: string) => `${useCaseId}/${mappingId}`;

/** The Durable Object that owns one outbound mapping's deliveries. */
export const endpointObject = (env: Pick<Env, "OUTBOUND_ENDPOINT">, endpointId: string) => env.OUTBOUND_ENDPOINT.get(env.OUTBOUND_ENDPOINT.idFromName(endpointId));

// ---- the endpoint directory -------------------------------------------------------------------

/**
 * D1's outbound_endpoints lists every object that holds deliveries, so monitoring, ACKs, retention
 * and deletion can find them. It is configuration-sized: a row is written the first time a mapping
 * gets a delivery (each isolate remembers the endpoints it has registered), never per delivery.
 */
const registered = new Set<string>();
const MAX_REMEMBERED_ENDPOINTS = 10_000;

async function registerEndpoints(db: D1Database, metas: EndpointMeta[]): Promise<Set<string>> {
  const unknown = metas.filter((m) => !registered.has(m.endpoint_id));
  if (unknown.length > 0) {
    const statements = unknown.map((m) =>
      // Only while the integration exists: a fan-out racing its deletion registers nothing.
      db
        .prepare(
          `INSERT OR IGNORE INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at)
           SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM integrations WHERE id = ? AND tenant_id = ?)`,
        )
        .bind(m.endpoint_id, m.tenant_id, m.integration_id, m.use_case_id, m.mapping_id, nowIso(), m.integration_id, m.tenant_id),
    );
    const ids = JSON.stringify(unknown.map((m) => m.endpoint_id));
    const results = await db.batch([...statements, db.prepare("SELECT id FROM outbound_endpoints WHERE id IN (SELECT value FROM json_each(?))").bind(ids)]);
    if (registered.size + unknown.length > MAX_REMEMBERED_ENDPOINTS) registered.clear();
    for (const row of results.at(-1)!.results as { id: string }[]) registered.add(row.id);
  }
  // An endpoint not in the directory (its integration was deleted meanwhile) gets nothing: no
  // deliveries may land in an object that deletion and retention cannot find.
  return new Set(metas.map((m) => m.endpoint_id).filter((id) => registered.has(id)));
}

/** The endpoints holding deliveries of some integrations (index outbound_endpoints_integration). */
export async function endpointsOfIntegrations(db: D1Database, integrationIds: string[]): Promise<{ id: string; integration_id: string }[]> {
  if (integrationIds.length === 0) return [];
  const { results } = await db
    .prepare("SELECT id, integration_id FROM outbound_endpoints WHERE integration_id IN (SELECT value FROM json_each(?)) ORDER BY id")
    .bind(JSON.stringify(integrationIds))
    .all<{ id: string; integration_id: string }>();
  return results;
}

const endpointIdsOf = async (db: D1Database, integrationId: string) => (await endpointsOfIntegrations(db, [integrationId])).map((e) => e.id);

/** The endpoints holding a tenant's deliveries, cached like the rest of the event path's configuration. */
function tenantEndpointIds(db: D1Database, tenantId: string, fresh = false): Promise<string[]> {
  const read = async () => (await db.prepare("SELECT id FROM outbound_endpoints WHERE tenant_id = ? ORDER BY id").bind(tenantId).all<{ id: string }>()).results.map((r) => r.id);
  return fresh ? read() : cachedConfig(`endpoints:${tenantId}`, read);
}

/** The integrations (or tenant) are gone: their endpoints' deliveries go too. */
export async function purgeEndpoints(env: Pick<Env, "OUTBOUND_ENDPOINT">, endpointIds: string[]): Promise<void> {
  await Promise.all(endpointIds.map((id) => endpointObject(env, id).purge()));
}

export interface OutboundSubscription {
  useCaseId: string;
  integrationId: string;
  slug: string;
  config: OutboundConfiguration;
  /**
   * Set when the stored configuration no longer validates (saved before a check that refuses it now):
   * its events are not delivered but recorded as dead letters saying why, so the problem shows in
   * monitoring instead of events silently going nowhere. `config` then holds only what could be read.
   */
  invalid?: string;
}

/**
 * The tenant's enabled outbound use cases with valid configurations, read through an index and
 * cached in the isolate like the rest of the event path's configuration (platform/config-cache.ts):
 * a use case saved through this isolate receives the next batch's events, others' within seconds.
 */
export function subscriptionsOf(db: D1Database, tenantId: string): Promise<OutboundSubscription[]> {
  return cachedConfig(`subscriptions:${tenantId}`, () => readSubscriptions(db, tenantId));
}

async function readSubscriptions(db: D1Database, tenantId: string): Promise<OutboundSubscription[]> {
  const useCases = await enabledOutboundUseCases(db, tenantId);
  return useCases.flatMap((row): OutboundSubscription[] => {
    const raw = row.configuration as { event_catalog_event?: unknown; mappings?: unknown } | null;
    const parsed = OutboundConfiguration.safeParse(raw);
    const base = { useCaseId: row.id, integrationId: row.integrationId, slug: row.slug };
    if (parsed.success) return [{ ...base, config: parsed.data }];
    const problem = `stored configuration no longer validates: ${zodIssues(parsed.error).map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ").slice(0, 500)}`;
    console.error(JSON.stringify({ level: "error", message: "outbound use case skipped", use_case_id: row.id, problem }));
    if (typeof raw?.event_catalog_event !== "string") return [];
    return [{ ...base, invalid: problem, config: { event_catalog_event: raw.event_catalog_event, ack_tracking: "off", mappings: [] } as unknown as OutboundConfiguration }];
  });
}

/** The wall clock of one transform run. */
export const TRANSFORM_TIMEOUT_MS = 2000;

/**
 * A mapping's transform: the app action's output is the body. A failed run dead-letters the delivery
 * with the app's error (a redrive after fixing the app or its grants sends it); an app the tenant
 * removed does the same.
 */
async function transformed(env: OutboundEnv, event: CoreEventEnvelope, sub: OutboundSubscription, ref: { app: string; action: string }, body: unknown) {
  try {
    // Transforms run inside the queue consumer that serves every tenant: a short wall clock keeps one
    // slow app from holding other tenants' core events.
    const run = await runInstalled(env, event._org_id, ref.app, ref.action, body, { trigger: "transform", integration_id: sub.integrationId, event_id: event._event_id, limits: { timeout_ms: TRANSFORM_TIMEOUT_MS } });
    if (run.result.ok) return { body: run.result.output, error: null };
    return { body, error: `transform ${ref.app} ${ref.action} failed: ${run.result.code}: ${run.result.message}` };
  } catch (err) {
    if (err instanceof AppError) return { body, error: `transform ${ref.app} ${ref.action} failed: ${err.code}: ${err.message}` };
    throw err;
  }
}

/** A mapped body larger than this is dead-lettered with that error instead of stored (objects keep rows under 2 MB). */
export const MAX_DELIVERY_BYTES = 1_000_000;

type PreparedDelivery = { meta: EndpointMeta; row: NewDelivery };

/**
 * The deliveries one core event creates: one per enabled mapping of each subscribed use case whose
 * filter passes (a failing filter or mapping dead-letters its delivery with the error). Nothing is
 * stored here; `fanOutMany` stores a whole queue batch's deliveries at once.
 */
async function deliveriesOf(env: OutboundEnv, received: CoreEventEnvelope, subscriptions: OutboundSubscription[]): Promise<PreparedDelivery[]> {
  const subs = subscriptions.filter((s) => s.config.event_catalog_event === received._event_name);
  if (subs.length === 0) return [];
  const event = received._truncated === true ? await wholeEvent(env, received) : received;
  const prepared: PreparedDelivery[] = [];
  const at = nowIso();
  for (const sub of subs) {
    const config = sub.config;
    if (sub.invalid) {
      prepared.push(deliveryOf(event, sub, at, { mappingId: "invalid-configuration", type: "webhook", payload: null, error: sub.invalid, ackId: null, maxAttempts: 0 }));
      continue;
    }
    // A filter that fails does not decide: the event's deliveries are dead-lettered with the error
    // (mapped as usual, so a redrive after fixing the filter sends them), never silently dropped.
    let filterError: string | null = null;
    if (config.event_filter) {
      try {
        if (!(await evaluateExpression(config.event_filter, event))) continue;
      } catch (err) {
        filterError = `event_filter failed: ${(err as Error).message}`;
      }
    }
    for (const mapping of config.mappings.filter((m) => m.enabled)) {
      let body: unknown;
      let error: string | null = filterError;
      try {
        body = await evaluateExpression(mapping.jsonata_expression, event);
      } catch (err) {
        error ??= `mapping failed: ${(err as Error).message}`;
      }
      if (body === undefined && !error) continue;
      if (mapping.transform && !error) ({ body, error } = await transformed(env, event, sub, mapping.transform, body));
      const maxAttempts = mapping.delivery.type === "webhook" ? mapping.delivery.max_attempts : mapping.delivery.max_delivery_attempts;
      prepared.push(
        deliveryOf(event, sub, at, {
          mappingId: mapping.id, type: mapping.delivery.type, payload: body ?? null, error,
          ackId: config.ack_tracking === "on" ? event._ack_id : null, maxAttempts,
        }),
      );
    }
  }
  return prepared;
}

/**
 * Stores the deliveries of a queue batch: each event's are prepared on its own (an event whose
 * deliveries cannot be prepared, e.g. a reference whose body is gone, fails alone and is in
 * `failed`), then each endpoint gets all of the batch's deliveries for it in one call. When an
 * endpoint's call fails, each of its events is stored on its own, so only the events whose own
 * deliveries cannot be stored fail, never the rest of the batch. Endpoints keep one delivery per
 * event, so repeating this for the same events creates and sends nothing twice.
 */
export async function fanOutMany(env: OutboundEnv, events: CoreEventEnvelope[]): Promise<{ failed: Map<CoreEventEnvelope, unknown> }> {
  const failed = new Map<CoreEventEnvelope, unknown>();
  const byEndpoint = new Map<string, { meta: EndpointMeta; items: { event: CoreEventEnvelope; row: NewDelivery }[] }>();
  for (const event of events) {
    try {
      for (const { meta, row } of await deliveriesOf(env, event, await subscriptionsOf(env.DB, event._org_id))) {
        const entry = byEndpoint.get(meta.endpoint_id) ?? { meta, items: [] };
        entry.items.push({ event, row });
        byEndpoint.set(meta.endpoint_id, entry);
      }
    } catch (err) {
      failed.set(event, err);
    }
  }
  if (byEndpoint.size === 0) return { failed };
  let known: Set<string>;
  try {
    known = await registerEndpoints(env.DB, [...byEndpoint.values()].map((e) => e.meta));
  } catch (err) {
    for (const { items } of byEndpoint.values()) for (const { event } of items) failed.set(event, err);
    return { failed };
  }
  await Promise.all(
    [...byEndpoint.values()].filter(({ meta }) => known.has(meta.endpoint_id)).map(async ({ meta, items }) => {
      const endpoint = endpointObject(env, meta.endpoint_id);
      try {
        await endpoint.add(meta, items.map((i) => i.row));
      } catch {
        for (const event of new Set(items.map((i) => i.event))) {
          try {
            await endpoint.add(meta, items.filter((i) => i.event === event).map((i) => i.row));
          } catch (err) {
            failed.set(event, err);
          }
        }
      }
    }),
  );
  return { failed };
}

/**
 * The delivery of one (use case, mapping, event): pending, or dead-lettered at once with `error`
 * (a failed mapping or filter, a configuration that no longer validates, or a body too large).
 */
function deliveryOf(
  event: CoreEventEnvelope,
  sub: OutboundSubscription,
  at: string,
  d: { mappingId: string; type: "webhook" | "poll"; payload: unknown; error: string | null; ackId: string | null; maxAttempts: number },
): PreparedDelivery {
  let payload = JSON.stringify(d.payload ?? null);
  let error = d.error;
  if (payload.length > MAX_DELIVERY_BYTES) {
    error ??= `mapped body is ${payload.length} bytes; a delivery may be at most ${MAX_DELIVERY_BYTES}`;
    payload = "null";
  }
  return {
    meta: { endpoint_id: endpointIdOf(sub.useCaseId, d.mappingId), tenant_id: event._org_id, integration_id: sub.integrationId, use_case_id: sub.useCaseId, mapping_id: d.mappingId, type: d.type },
    row: {
      id: newId(), use_case_slug: sub.slug, event_id: event._event_id, event_name: event._event_name, correlation_id: event._correlation_id ?? null,
      payload, status: error ? "dead_lettered" : "pending", ack_id: d.ackId, max_attempts: d.maxAttempts, last_error: error, created_at: at, completed_at: error ? at : null,
    },
  };
}

/**
 * The whole envelope of an event that travelled by reference (`_truncated`: too large for a queue
 * message), loaded from the entity that sent it. Throws when it is gone, so the message is retried
 * and, in the end, recorded by the dead-letter queue's consumer.
 */
async function wholeEvent(env: Pick<Env, "ENTITY_STORE">, reference: CoreEventEnvelope): Promise<CoreEventEnvelope> {
  const entityId = reference._entity_id;
  const schema = (reference.entity as { schema?: unknown } | undefined)?.schema;
  if (typeof entityId !== "string" || typeof schema !== "string") throw new Error(`truncated core event ${reference._event_id} names no _entity_id and schema`);
  const whole = await referencedCoreEvent(env, reference._org_id, schema, reference._event_id);
  if (!whole || whole._org_id !== reference._org_id || whole._event_id !== reference._event_id) {
    throw new Error(`core event ${reference._event_id} of entity ${entityId} is no longer kept by its entity store`);
  }
  return whole as CoreEventEnvelope;
}

/**
 * Records a core event the queue gave up on (the consumer of its dead-letter queue), so none is
 * dropped silently; a message delivered to the dead-letter queue twice is recorded once.
 */
export async function recordDeadCoreEvent(db: D1Database, message: { queue: string; id: string; attempts: number; body: unknown }): Promise<void> {
  const body = message.body as Partial<CoreEventEnvelope> | null;
  const field = (key: keyof CoreEventEnvelope) => (typeof body?.[key] === "string" ? (body[key] as string) : null);
  let text: string;
  try {
    text = JSON.stringify(message.body) ?? String(message.body);
  } catch {
    text = String(message.body);
  }
  await db
    .prepare(
      `INSERT INTO core_event_dead_letters (id, queue, message_id, tenant_id, event_id, event_name, attempts, body, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (queue, message_id) DO NOTHING`,
    )
    .bind(newId(), message.queue, message.id, await existingTenantId(db, field("_org_id")), field("_event_id"), field("_event_name"), message.attempts, text, nowIso())
    .run();
}

// ---- endpoints and secrets --------------------------------------------------------------------

export interface EndpointRow {
  id: string;
  tenant_id: string;
  integration_id: string;
  use_case_id: string;
  mapping_id: string;
  state: "active" | "paused" | "disabled";
  secret: string | null;
  previous_secret: string | null;
  previous_secret_expires_at: string | null;
  consecutive_failures: number;
  paused_until: string | null;
  disabled_reason: string | null;
}

/** The endpoint that holds the deliveries a webhook configuration's trigger makes (not a mapping's). */
export const configEndpointId = (configId: string) => `webhook-config/${configId}`;
const CONFIG_ENDPOINT_PREFIX = "webhook-config/";

/** A mapping's webhook delivery as stored: an inline `url`, or (epilot's form) a `webhook_id` naming a webhook configuration. */
type StoredWebhookDelivery = Omit<WebhookDelivery, "url"> & { url?: string; webhook_id?: string };

/** Everything a delivery attempt needs about its endpoint. */
export interface EndpointContext {
  endpoint: EndpointRow;
  delivery: { url: string; auth?: WebhookAuth; ordered: boolean; rate_limit_per_second?: number };
  tenantId: string;
  /** The integration whose environment `{{env.KEY}}` references read; null for a configuration's own trigger endpoint. */
  integrationId: string | null;
  /** Set when the deliveries go through a webhook configuration: its method, headers, auth and signing secret. */
  target?: DeliveryTarget;
  /** Why nothing can be sent now (a referenced configuration is missing, disabled or has no url): pending deliveries are dead-lettered with it. */
  unavailable?: string;
}

/** Why a configuration cannot receive deliveries now, or null when it can. */
function unavailability(target: DeliveryTarget | null, configId: string): string | null {
  if (!target) return `webhook configuration '${configId}' not found`;
  if (!target.enabled) return `webhook configuration '${configId}' is disabled`;
  if (!target.url) return `webhook configuration '${configId}' has no url`;
  return null;
}

/**
 * Everything a delivery attempt needs about its endpoint, read fresh (a changed mapping or webhook
 * configuration applies to the next attempt); null when its use case or mapping is gone. `tenantId`
 * (`through.tenantId`) is needed for a configuration's own trigger endpoint (`webhook-config/<id>`),
 * which has no mapping; `through.secretsKey` unseals a configuration's auth and signing secret.
 */
export async function endpointContext(db: D1Database, endpointId: string, through: { secretsKey: string; tenantId?: string } = { secretsKey: "" }): Promise<EndpointContext | null> {
  const env = { DB: db, SECRETS_KEY: through.secretsKey };
  const tenantId = through.tenantId;
  if (endpointId.startsWith(CONFIG_ENDPOINT_PREFIX)) {
    if (!tenantId) return null;
    const configId = endpointId.slice(CONFIG_ENDPOINT_PREFIX.length);
    const target = await deliveryTarget(env, tenantId, configId);
    const endpoint: EndpointRow = {
      id: endpointId, tenant_id: tenantId, integration_id: "", use_case_id: "", mapping_id: "", state: "active", secret: null, previous_secret: null,
      previous_secret_expires_at: null, consecutive_failures: 0, paused_until: null, disabled_reason: null,
    };
    const unavailable = unavailability(target, configId);
    return { endpoint, delivery: { url: target?.url ?? "", ordered: false }, tenantId, integrationId: null, ...(target && { target }), ...(unavailable && { unavailable }) };
  }
  const [useCaseId, mappingId] = endpointId.split("/") as [string, string];
  const uc = await outboundUseCase(db, useCaseId);
  if (!uc) return null;
  const config = OutboundConfiguration.safeParse(uc.configuration);
  const mapping = config.success ? config.data.mappings.find((m) => m.id === mappingId) : undefined;
  if (!mapping || mapping.delivery.type !== "webhook") return null;
  const read = () => db.prepare("SELECT * FROM outbound_endpoints WHERE id = ?").bind(endpointId).first<EndpointRow>();
  let endpoint = await read();
  if (!endpoint) {
    await db
      .prepare("INSERT OR IGNORE INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(endpointId, uc.tenantId, uc.integrationId, uc.id, mappingId, nowIso())
      .run();
    endpoint = (await read())!;
  }
  const delivery = mapping.delivery as StoredWebhookDelivery;
  const base = { endpoint, tenantId: uc.tenantId, integrationId: uc.integrationId };
  const shape = { ordered: delivery.ordered, ...(delivery.rate_limit_per_second !== undefined && { rate_limit_per_second: delivery.rate_limit_per_second }) };
  if (delivery.webhook_id) {
    const target = await deliveryTarget(env, uc.tenantId, delivery.webhook_id);
    const unavailable = unavailability(target, delivery.webhook_id);
    return { ...base, delivery: { ...shape, url: target?.url ?? "" }, ...(target && { target }), ...(unavailable && { unavailable }) };
  }
  return { ...base, delivery: { ...shape, url: delivery.url ?? "", ...(delivery.auth && { auth: delivery.auth }) } };
}

const secretContext = (endpointId: string) => `endpoint/${endpointId}`;

/**
 * Creates or rotates an endpoint's whsec_ secret and returns it (shown only here). After a rotation
 * the previous secret keeps signing beside the new one for `overlapSeconds`.
 */
export async function rotateSecret(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, integrationId: string, useCaseId: string, mappingId: string, overlapSeconds: number) {
  await getIntegration(env.DB, tenantId, integrationId);
  const endpointId = endpointIdOf(useCaseId, mappingId);
  const ctx = await endpointContext(env.DB, endpointId, { secretsKey: env.SECRETS_KEY });
  if (!ctx || ctx.integrationId !== integrationId) throw new AppError("NOT_FOUND", `No webhook mapping '${mappingId}' in outbound use case '${useCaseId}'`);
  const secret = newWebhookSecret();
  const until = ctx.endpoint.secret && overlapSeconds > 0 ? new Date(Date.now() + overlapSeconds * 1000).toISOString() : null;
  await env.DB
    .prepare("UPDATE outbound_endpoints SET secret = ?, previous_secret = ?, previous_secret_expires_at = ?, updated_at = ? WHERE id = ?")
    .bind(await encryptValue(env.SECRETS_KEY, secret, secretContext(endpointId)), until ? ctx.endpoint.secret : null, until, nowIso(), endpointId)
    .run();
  return { endpoint_id: endpointId, secret, previous_secret_valid_until: until };
}

/** The secrets that sign a delivery now: the current one (created if missing) and, in overlap, the previous. */
export async function signingSecrets(env: Pick<Env, "DB" | "SECRETS_KEY">, endpoint: EndpointRow): Promise<string[]> {
  let current = endpoint.secret;
  if (!current) {
    current = await encryptValue(env.SECRETS_KEY, newWebhookSecret(), secretContext(endpoint.id));
    await env.DB.prepare("UPDATE outbound_endpoints SET secret = COALESCE(secret, ?) WHERE id = ?").bind(current, endpoint.id).run();
    current = (await env.DB.prepare("SELECT secret FROM outbound_endpoints WHERE id = ?").bind(endpoint.id).first<{ secret: string }>())!.secret;
    // The rest of this run's deliveries sign with it without asking D1 again.
    endpoint.secret = current;
  }
  const secrets = [await decryptValue(env.SECRETS_KEY, current, secretContext(endpoint.id))];
  if (endpoint.previous_secret && endpoint.previous_secret_expires_at && endpoint.previous_secret_expires_at > nowIso()) {
    secrets.push(await decryptValue(env.SECRETS_KEY, endpoint.previous_secret, secretContext(endpoint.id)));
  }
  return secrets;
}

/** An integration's endpoint rows (index outbound_endpoints_integration). */
export const ENDPOINTS_OF_INTEGRATION_SQL = "SELECT * FROM outbound_endpoints WHERE integration_id = ?";

export async function listEndpoints(db: D1Database, tenantId: string, integrationId: string) {
  const integration = await getIntegration(db, tenantId, integrationId);
  const { results } = await db.prepare(ENDPOINTS_OF_INTEGRATION_SQL).bind(integrationId).all<EndpointRow>();
  const rows = new Map(results.map((r) => [r.id, r]));
  const out = [];
  for (const uc of integration.use_cases.filter((u) => u.type === "outbound")) {
    const config = OutboundConfiguration.safeParse(uc.configuration);
    if (!config.success) continue;
    for (const m of config.data.mappings.filter((m) => m.delivery.type === "webhook")) {
      const id = endpointIdOf(uc.id, m.id);
      const row = rows.get(id);
      out.push({
        id, use_case_id: uc.id, mapping_id: m.id, url: (m.delivery as StoredWebhookDelivery).url ?? null,
        ...((m.delivery as StoredWebhookDelivery).webhook_id && { webhook_id: (m.delivery as StoredWebhookDelivery).webhook_id }),
        state: row?.state ?? "active", has_secret: Boolean(row?.secret),
        consecutive_failures: row?.consecutive_failures ?? 0, paused_until: row?.paused_until ?? null, disabled_reason: row?.disabled_reason ?? null,
      });
    }
  }
  return { endpoints: out };
}

/** Re-enables a disabled or paused endpoint and wakes its queue. */
export async function enableEndpoint(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, endpointId: string) {
  const { meta } = await env.DB
    .prepare("UPDATE outbound_endpoints SET state = 'active', consecutive_failures = 0, paused_until = NULL, disabled_reason = NULL, updated_at = ? WHERE id = ? AND tenant_id = ? AND integration_id = ?")
    .bind(nowIso(), endpointId, tenantId, integrationId)
    .run();
  if (!meta.changes) throw new AppError("NOT_FOUND", `Endpoint '${endpointId}' not found`);
  await endpointObject(env, endpointId).wake();
}

// ---- one webhook attempt ----------------------------------------------------------------------

export type AttemptOutcome =
  | { kind: "delivered"; statusCode: number }
  | { kind: "retry"; statusCode?: number; error: string; retryAfterMs?: number }
  | { kind: "gone"; statusCode: 410 }
  | { kind: "dead"; statusCode?: number; error: string };

const TIMEOUT_MS = 15_000;

/** `{{env.KEY}}` as the environment's own value of KEY (never an inherited property such as `constructor`). */
function resolveRef(value: string, environment: Record<string, string>): string {
  const m = value.match(/^\{\{\s*env\.(.+?)\s*\}\}$/);
  if (!m) return value;
  const resolved = ownValue(environment, m[1]!);
  return typeof resolved === "string" ? resolved : "";
}

/** A destination the rules refuse, or a token endpoint that redirects: the delivery is dead, not retried. */
class RefusedRequest extends Error {
  override name = "RefusedRequest";
}

/** Throws RefusedRequest when the URL may not be called; a failed DNS check throws (and is retried). */
async function assertDestination(url: string, policy: DestinationPolicy, what: string) {
  const problem = await checkDestination(url, policy);
  if (problem) throw new RefusedRequest(`${what} refused: ${problem}`);
}

async function authHeaders(auth: WebhookAuth | undefined, environment: Record<string, string>, policy: DestinationPolicy): Promise<Record<string, string>> {
  if (!auth || auth.type === "none") return {};
  if (auth.type === "basic") return { authorization: `Basic ${btoa(`${resolveRef(auth.username, environment)}:${resolveRef(auth.password, environment)}`)}` };
  if (auth.type === "api_key") return { [auth.header]: resolveRef(auth.value, environment) };
  // The client secret goes only to a token_url that passes the same rules as the webhook URL.
  await assertDestination(auth.token_url, policy, "token_url");
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: resolveRef(auth.client_id, environment), client_secret: resolveRef(auth.client_secret, environment) });
  if (auth.scope) form.set("scope", auth.scope);
  const res = await fetch(auth.token_url, { method: "POST", body: form, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "manual" });
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw new RefusedRequest(`token endpoint answered HTTP ${res.status}: redirects are not followed`);
  }
  const token = res.ok ? ((await res.json()) as { access_token?: string }).access_token : undefined;
  if (!token) throw new Error(`token endpoint answered ${res.status}`);
  return { authorization: `Bearer ${token}` };
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Most bytes of a receiver's answer read to its end (so the connection is kept for the next delivery). */
const DRAIN_LIMIT_BYTES = 64 * 1024;

/** What a receiver's status says: delivered, gone (410), dead (redirects, other 4xx) or retry. */
function outcomeOfStatus(res: Response): AttemptOutcome {
  if (res.status >= 200 && res.status < 300) return { kind: "delivered", statusCode: res.status };
  if (res.status === 410) return { kind: "gone", statusCode: 410 };
  if (res.status >= 300 && res.status < 400) return { kind: "dead", statusCode: res.status, error: `HTTP ${res.status}: redirects are not followed` };
  if (res.status === 408 || res.status === 429 || res.status >= 500) {
    return { kind: "retry", statusCode: res.status, error: `HTTP ${res.status}`, retryAfterMs: retryAfterMs(res.headers.get("retry-after")) };
  }
  return { kind: "dead", statusCode: res.status, error: `HTTP ${res.status} (not retried)` };
}

/** Longest a receiver's answer is read before its connection is given up instead. */
const DRAIN_MS = 1_000;

/**
 * Ends a response nobody reads, never changing the delivery's outcome (decided by the status
 * before): a small answer of known length is read to its end within DRAIN_MS, which keeps the
 * connection open for the next delivery (cancelling closes it, and a new connection per delivery
 * costs more than the delivery); anything else, or a body that does not arrive in time, is dropped.
 */
async function discardBody(res: Response): Promise<void> {
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (res.body && Number.isInteger(length) && length >= 0 && length <= DRAIN_LIMIT_BYTES) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      res.arrayBuffer().then(() => true, () => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DRAIN_MS))),
    ]);
    if (timer !== undefined) clearTimeout(timer);
    if (drained) return;
  }
  // A body still being read is locked and cannot be cancelled; its fetch's own timeout ends it.
  await res.body?.cancel().catch(() => undefined);
}

/** A receiver's answer as the trigger of a webhook configuration reports it (sync mode). */
export interface CapturedResponse {
  statusCode: number;
  body: unknown;
}

/** Reads up to DRAIN_LIMIT_BYTES of a response as JSON (or text), for a synchronous trigger's answer. */
async function captureBody(res: Response): Promise<unknown> {
  const reader = res.body?.getReader();
  if (!reader) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < DRAIN_LIMIT_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  await reader.cancel().catch(() => undefined);
  const text = new TextDecoder().decode(concatBytes(chunks).slice(0, DRAIN_LIMIT_BYTES));
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const concatBytes = (chunks: Uint8Array[]) => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
};

/**
 * One signed request of a delivery. Network errors, timeouts, 408, 429 and 5xx are retryable. The URL
 * (and an OAuth token_url) is checked again here, on every attempt, and redirects are never followed.
 * Through a webhook configuration, its method, custom headers, auth and signing secret apply, and the
 * platform's Ed25519 `v1a` signature goes beside the HMAC one. `capture` receives the answer's body.
 */
export async function attemptDelivery(
  env: Pick<Env, "DB" | "SECRETS_KEY"> & DestinationEnv,
  ctx: EndpointContext,
  delivery: { id: string; payload: string },
  resolve?: Resolver,
  capture?: (response: CapturedResponse) => void,
): Promise<AttemptOutcome> {
  const policy = destinationPolicy(env, resolve);
  try {
    if (ctx.unavailable) throw new RefusedRequest(ctx.unavailable);
    await assertDestination(ctx.delivery.url, policy, "destination");
    const target = ctx.target;
    const needsEnvironment = target ? Boolean(target.auth && target.auth.authType !== "NONE") || Object.keys(target.headers).length > 0 : Boolean(ctx.delivery.auth && ctx.delivery.auth.type !== "none");
    const environment = needsEnvironment && ctx.integrationId ? await resolveEnvironment(env, ctx.tenantId, ctx.integrationId) : {};
    const method = target?.httpMethod ?? "POST";
    const withBody = method !== "GET" && method !== "HEAD";
    const headers = {
      "content-type": "application/json",
      "user-agent": "erp-edge-webhooks/1",
      ...(target ? Object.fromEntries(Object.entries(target.headers).map(([k, v]) => [k.toLowerCase(), resolveRef(v, environment)])) : {}),
      ...(target ? await configAuthHeaders(target.auth, environment, policy) : await authHeaders(ctx.delivery.auth, environment, policy)),
      ...(target
        ? await configSignatureHeaders(env.SECRETS_KEY, delivery.id, delivery.payload, target.signingSecret)
        : await signatureHeaders(delivery.id, delivery.payload, await signingSecrets(env, ctx.endpoint))),
    };
    const res = await fetch(ctx.delivery.url, { method, headers, ...(withBody && { body: delivery.payload }), signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "manual" });
    const outcome = outcomeOfStatus(res);
    if (capture) capture({ statusCode: res.status, body: await captureBody(res) });
    else await discardBody(res);
    return outcome;
  } catch (err) {
    if (err instanceof RefusedRequest) return { kind: "dead", error: err.message };
    if (err instanceof DestinationLookupError) return { kind: "retry", error: err.message };
    const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    return { kind: "retry", error: timeout ? `timed out after ${TIMEOUT_MS} ms` : `network error: ${(err as Error).message}` };
  }
}

/** Headers of a webhook configuration's auth (epilot's Auth): Basic, an API key header, or an OAuth bearer token. */
async function configAuthHeaders(auth: ConfigAuth | null, environment: Record<string, string>, policy: DestinationPolicy): Promise<Record<string, string>> {
  if (!auth || auth.authType === "NONE") return {};
  if (auth.authType === "BASIC" && auth.basicAuthConfig) {
    const { username, password } = auth.basicAuthConfig;
    return { authorization: `Basic ${btoa(`${resolveRef(username, environment)}:${resolveRef(password ?? "", environment)}`)}` };
  }
  if (auth.authType === "API_KEY" && auth.apiKeyConfig) return { [auth.apiKeyConfig.keyName.toLowerCase()]: resolveRef(auth.apiKeyConfig.keyValue ?? "", environment) };
  if (auth.authType === "OAUTH_CLIENT_CREDENTIALS" && auth.oauthConfig) {
    const token = await configOAuthToken(auth.oauthConfig, environment, policy);
    return { authorization: `${/^bearer$/i.test(token.token_type ?? "bearer") ? "Bearer" : token.token_type} ${token.access_token}` };
  }
  return {};
}

/**
 * A client-credentials token exchange as a webhook configuration's oauthConfig describes it: its
 * method, and its custom parameters in the body, query or headers. The endpoint passes the same
 * destination rules as webhook URLs; redirects are refused.
 */
async function configOAuthToken(oauth: NonNullable<ConfigAuth["oauthConfig"]>, environment: Record<string, string>, policy: DestinationPolicy) {
  await assertDestination(oauth.endpoint, policy, "OAuth endpoint");
  const url = new URL(oauth.endpoint);
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: resolveRef(oauth.clientId, environment), client_secret: resolveRef(oauth.clientSecret ?? "", environment) });
  const headers: Record<string, string> = {};
  for (const p of oauth.customParameterList ?? []) {
    const value = resolveRef(p.value, environment);
    if (p.type === "query") url.searchParams.set(p.key, value);
    else if (p.type === "header") headers[p.key.toLowerCase()] = value;
    else form.set(p.key, value);
  }
  const withBody = oauth.httpMethod !== "GET" && oauth.httpMethod !== "HEAD";
  if (!withBody) for (const [k, v] of form) url.searchParams.set(k, v);
  const res = await fetch(url, { method: oauth.httpMethod, headers, ...(withBody && { body: form }), signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "manual" });
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw new RefusedRequest(`token endpoint answered HTTP ${res.status}: redirects are not followed`);
  }
  const body = res.ok ? ((await res.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; token_type?: unknown }) : (await res.body?.cancel(), {});
  if (typeof body.access_token !== "string" || body.access_token === "") throw new Error(`token endpoint answered ${res.status}${res.ok ? " without an access_token" : ""}`);
  return {
    access_token: body.access_token,
    ...(typeof body.expires_in === "number" && { expires_in: body.expires_in }),
    ...(typeof body.token_type === "string" && { token_type: body.token_type }),
  };
}

/**
 * testOAuth: a token exchange with a configuration's oauthConfig, nothing sent to its url. A
 * configuration without OAuth is 400; a failed exchange is 500 (epilot's status), saying why.
 */
export async function testOAuth(env: Pick<Env, "DB" | "SECRETS_KEY"> & DestinationEnv, tenantId: string, configId: string, resolve?: Resolver) {
  await getConfig(env, tenantId, configId);
  const target = (await deliveryTarget(env, tenantId, configId))!;
  if (target.auth?.authType !== "OAUTH_CLIENT_CREDENTIALS" || !target.auth.oauthConfig) {
    throw new AppError("BAD_REQUEST", `Webhook configuration '${configId}' does not use OAuth client credentials`);
  }
  try {
    const token = await configOAuthToken(target.auth.oauthConfig, {}, destinationPolicy(env, resolve));
    return { success: true, ...(token.expires_in !== undefined && { expires_in: token.expires_in }), token_type: token.token_type ?? "Bearer", message: "OAuth token exchange successful" };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new AppError("INTERNAL", `OAuth token exchange failed: ${why}`, { success: false });
  }
}

// ---- save-time destination check --------------------------------------------------------------

/** Full-jitter exponential backoff: random(0, min(max, base × 2^attempt)), never before Retry-After. */
export function backoffMs(env: Pick<Env, "OUTBOUND_RETRY_BASE_MS" | "OUTBOUND_RETRY_MAX_MS">, attempt: number, retryAfter?: number): number {
  const base = Number(env.OUTBOUND_RETRY_BASE_MS ?? 5000);
  const max = Number(env.OUTBOUND_RETRY_MAX_MS ?? 3_600_000);
  const jittered = Math.random() * Math.min(max, base * 2 ** attempt);
  return Math.max(jittered, retryAfter ?? 0);
}

// ---- dead-letter queue ------------------------------------------------------------------------

/** Rows of several endpoints merged by id (ULIDs, so oldest first), at most `limit`. */
const mergedById = <T extends { id: string }>(lists: T[][], limit: number) => lists.flat().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, limit);

/** A page of an integration's dead letters, oldest first: each endpoint's page, merged. */
export async function listDeadLetters(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, page: PageQuery) {
  await getIntegration(env.DB, tenantId, integrationId);
  const after = decodeCursor(page.cursor);
  const endpoints = await endpointIdsOf(env.DB, integrationId);
  const pages = await Promise.all(endpoints.map((id) => endpointObject(env, id).deadLetters(integrationId, after, page.limit + 1)));
  const { items, next_cursor } = toPage(mergedById(pages, page.limit + 1), page.limit, fromDeliveryRow);
  return { deliveries: items, next_cursor };
}

/** Most dead letters one redrive-all call puts back; `has_more` and `next_cursor` lead to the rest. */
export const REDRIVE_PAGE_SIZE = 100;

/**
 * Puts dead-lettered deliveries back in their queues with fresh attempts: the given ids, or (without
 * ids) the next REDRIVE_PAGE_SIZE of the integration's dead letters after `cursor`, oldest first.
 * Redrive-all answers `has_more` and `next_cursor`; calling again with that cursor continues where
 * this call stopped, so a delivery dead-lettered again meanwhile is not redriven twice in one pass.
 * @example redrive(env, tenantId, integrationId) // → { redriven: 100, ids, has_more: true, next_cursor: "..." }
 */
export async function redrive(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, ids?: string[], cursor?: string) {
  await getIntegration(env.DB, tenantId, integrationId);
  const endpoints = await endpointIdsOf(env.DB, integrationId);
  if (ids) {
    const redriven = (await Promise.all(endpoints.map((id) => endpointObject(env, id).redrive(integrationId, ids)))).flat().sort();
    return { redriven: redriven.length, ids: redriven };
  }
  // The page: the oldest REDRIVE_PAGE_SIZE dead letters after the cursor over all endpoints, each
  // endpoint asked for one more than a page so `has_more` is known without another pass.
  const after = decodeCursor(cursor);
  const candidates = mergedById(await Promise.all(endpoints.map((id) => endpointObject(env, id).deadLetters(integrationId, after, REDRIVE_PAGE_SIZE + 1))), REDRIVE_PAGE_SIZE + 1);
  const page = candidates.slice(0, REDRIVE_PAGE_SIZE);
  const byEndpoint = new Map<string, string[]>();
  for (const row of page) {
    const id = endpointIdOf(row.use_case_id, row.mapping_id);
    byEndpoint.set(id, [...(byEndpoint.get(id) ?? []), row.id]);
  }
  const redriven = (await Promise.all([...byEndpoint].map(([endpointId, rows]) => endpointObject(env, endpointId).redrive(integrationId, rows)))).flat().sort();
  const hasMore = page.length > 0 && candidates.length > page.length;
  return { redriven: redriven.length, ids: redriven, has_more: hasMore, next_cursor: hasMore ? encodeCursor(page.at(-1)!.id) : null };
}

// ---- poll delivery ----------------------------------------------------------------------------

export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30;
/** Most exhausted messages one poll moves to the dead-letter queue per mapping (the rest go on later polls). */
export const POLL_DEAD_LETTER_BATCH = 100;

/**
 * Leases up to `limit` poll messages of an integration: its poll mappings are asked one after
 * another (starting at a random one, so no mapping starves the others) for what the earlier ones
 * left of the limit. A message past its use case's max_delivery_attempts follows the poison policy:
 * dead_letter moves it aside; block leaves it, and holds back its mapping's later messages until it
 * is acked or redriven.
 */
export async function pollMessages(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, limit: number, visibilitySeconds = DEFAULT_VISIBILITY_TIMEOUT_SECONDS) {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const policies: Record<string, { max: number; block: 0 | 1 }> = {};
  for (const uc of integration.use_cases.filter((u) => u.type === "outbound")) {
    const config = OutboundConfiguration.safeParse(uc.configuration);
    for (const m of config.success ? config.data.mappings : []) {
      if (m.delivery.type === "poll") policies[endpointIdOf(uc.id, m.id)] = { max: m.delivery.max_delivery_attempts, block: m.delivery.poison_policy === "block" ? 1 : 0 };
    }
  }
  const now = nowIso();
  const visibleUntil = new Date(Date.now() + visibilitySeconds * 1000).toISOString();
  const json = JSON.stringify(policies);
  const mappings = Object.keys(policies);
  const start = Math.floor(Math.random() * Math.max(1, mappings.length));
  const leased: { id: string; lease_token: string; use_case_id: string; event_name: string; event_id: string; payload: string; created_at: string }[] = [];
  let more = false;
  for (const endpointId of [...mappings.slice(start), ...mappings.slice(0, start)]) {
    const share = await endpointObject(env, endpointId).poll(integrationId, json, limit - leased.length, now, visibleUntil, POLL_DEAD_LETTER_BATCH);
    leased.push(...share.leased);
    more ||= share.more;
  }
  const messages = leased
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((r) => ({ id: r.id, lease_token: r.lease_token, use_case_id: r.use_case_id, event_name: r.event_name, event_id: r.event_id, payload: JSON.parse(r.payload), enqueued_at: r.created_at }));
  return { messages, visibility_timeout_seconds: visibilitySeconds, has_more: more };
}

export async function ackMessages(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, acks: { id: string; lease_token: string }[]) {
  await getIntegration(env.DB, tenantId, integrationId);
  const now = nowIso();
  const answers = await Promise.all((await endpointIdsOf(env.DB, integrationId)).map((id) => endpointObject(env, id).ackPolled(acks, now)));
  return { results: acks.map((ack, i) => ({ id: ack.id, status: answers.find((a) => a[i] !== null)?.[i] ?? ("not_found" as const) })) };
}

// ---- ACK tracking -----------------------------------------------------------------------------

/**
 * ACK status only moves forward: none → pending (delivered) → timeout (sweep) → failed → processed
 * (the ERP's answers). Every statement that writes ack_status writes it only over an earlier one, so
 * an ACK sent while its webhook call is still open is not reset by the delivery's outcome, and a
 * repeated or contradicting ACK leaves a processed event processed.
 */
const ACK_ORDER = ["pending", "timeout", "failed", "processed"] as const;

/**
 * The ERP's ACK for an outbound event (by its _ack_id: every endpoint of the tenant is asked, as one
 * core event's deliveries share it) or an inbound event (ack_id = event id); answers the status now
 * recorded. An endpoint registered in the last seconds is found by a fresh read of the directory.
 */
export async function acknowledge(
  env: Pick<Env, "DB" | "EVENT_LOG" | "OUTBOUND_ENDPOINT"> & Partial<Pick<Env, "EVENT_LOG_SHARDS">>,
  tenantId: string,
  input: { ack_id: string; status: "processed" | "failed"; message?: string },
) {
  const at = nowIso();
  const before = ACK_ORDER.slice(0, ACK_ORDER.indexOf(input.status));
  const ask = (ids: string[]) => Promise.all(ids.map((id) => endpointObject(env, id).acknowledge(tenantId, input, before, at)));
  const cached = await tenantEndpointIds(env.DB, tenantId);
  let answers = (await ask(cached)).filter((a) => a !== null);
  if (answers.length === 0) {
    const known = new Set(cached);
    answers = (await ask((await tenantEndpointIds(env.DB, tenantId, true)).filter((id) => !known.has(id)))).filter((a) => a !== null);
  }
  if (answers.length > 0) {
    const statuses = answers.flatMap((a) => a.statuses.map((ack_status) => ({ ack_status })));
    return { message: "Acknowledged", ack_id: input.ack_id, status: latestAckStatus(statuses), direction: "outbound" as const, acknowledged: answers.reduce((n, a) => n + a.acknowledged, 0) };
  }
  const inbound = await acknowledgeInboundEvent(env, tenantId, input, before, at);
  if (inbound) {
    return { message: "Acknowledged", ack_id: input.ack_id, status: latestAckStatus(inbound.statuses.map((ack_status) => ({ ack_status }))), direction: "inbound" as const, acknowledged: inbound.acknowledged };
  }
  throw new AppError("NOT_FOUND", `Unknown ack_id '${input.ack_id}'`);
}

/** The furthest status among rows sharing one ack_id (they move together unless an ACK raced a delivery). */
function latestAckStatus(rows: { ack_status: string | null }[]): string {
  const rank = (s: string | null) => ACK_ORDER.indexOf(s as (typeof ACK_ORDER)[number]);
  return rows.reduce<string | null>((best, r) => (rank(r.ack_status) > rank(best) ? r.ack_status : best), null) ?? "pending";
}

/** Most deliveries one endpoint times out per sweep; a larger backlog is worked off by the next runs. */
export const ACK_SWEEP_BATCH = 1000;
/** Endpoints one sweep visits, round-robin from a cursor. */
export const ACK_SWEEP_ENDPOINTS = 500;

const ACK_CURSOR = jobCursorSql("ack_timeouts");

/**
 * ACK_PENDING deliveries older than ACK_TIMEOUT_SECONDS become ACK_TIMEOUT. Each endpoint times out
 * its own with its alarm; this cron sweep is the backstop (and lets tests move the clock), visiting
 * ACK_SWEEP_ENDPOINTS endpoints per run. Answers how many it timed out.
 */
export async function sweepAckTimeouts(env: Pick<Env, "DB" | "ACK_TIMEOUT_SECONDS" | "OUTBOUND_ENDPOINT">, now = Date.now()): Promise<number> {
  const before = now - Number(env.ACK_TIMEOUT_SECONDS ?? 3600) * 1000;
  const { results } = await env.DB.prepare(`SELECT id FROM outbound_endpoints WHERE id > ${ACK_CURSOR.after} ORDER BY id LIMIT ?`).bind(ACK_SWEEP_ENDPOINTS).all<{ id: string }>();
  // An endpoint that fails is tried again on the next visit; it does not hold the cursor.
  const counts = await Promise.allSettled(results.map((r) => endpointObject(env, r.id).expireAcks(before, ACK_SWEEP_BATCH)));
  await env.DB.prepare(ACK_CURSOR.save).bind(results.length < ACK_SWEEP_ENDPOINTS ? "" : results.at(-1)!.id, nowIso()).run();
  return counts.reduce((n, c) => n + (c.status === "fulfilled" ? c.value : 0), 0);
}

// ---- what monitoring reads and changes ----------------------------------------------------------

/** Retention of recorded core-event dead letters (bodies unredacted): ids (ULIDs) below ?, at most ? per run, by primary key. */
export const EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL = "DELETE FROM core_event_dead_letters WHERE id IN (SELECT id FROM core_event_dead_letters WHERE id < ? ORDER BY id LIMIT ?)";

export const deleteExpiredCoreEventDeadLettersStatement = (db: D1Database, before: number, limit: number) =>
  db.prepare(EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL).bind(ulidFloor(before), limit);

/**
 * A replay of a delivery: a new pending copy (new id, `replay_of` linking the original), sent again
 * by its endpoint; null when the integration has no such delivery.
 */
export async function replayDelivery(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, deliveryId: string) {
  const id = newId();
  const copies = await Promise.all((await endpointIdsOf(env.DB, integrationId)).map((endpointId) => endpointObject(env, endpointId).replay(tenantId, integrationId, deliveryId, id)));
  return copies.some((c) => c !== null) ? { id } : null;
}

// ---- webhook configurations: their deliveries (epilot's Webhooks API) ----------------------------

/**
 * The endpoints holding a configuration's deliveries: its own trigger endpoint, and every webhook
 * mapping of the tenant's enabled outbound use cases that names it by webhook_id.
 */
async function configEndpointIds(db: D1Database, tenantId: string, configId: string): Promise<string[]> {
  const ids = [configEndpointId(configId)];
  for (const uc of await enabledOutboundUseCases(db, tenantId)) {
    const config = OutboundConfiguration.safeParse(uc.configuration);
    for (const m of config.success ? config.data.mappings : []) {
      if (m.delivery.type === "webhook" && (m.delivery as StoredWebhookDelivery).webhook_id === configId) ids.push(endpointIdOf(uc.id, m.id));
    }
  }
  return ids;
}

const EVENT_STATUSES = { succeeded: ["delivered"], failed: ["failed", "dead_lettered"], in_progress: ["pending"], skipped: [] } as const;
const WEBHOOK_EVENT_STATUS = { delivered: "succeeded", failed: "failed", dead_lettered: "failed", pending: "in_progress" } as const;

/** A delivery as epilot's WebhookEvent, with erp-edge's own fields beside it. */
function toWebhookEvent(row: DeliveryRow, config: WebhookConfig): WebhookEvent {
  const method = config.httpMethod ?? "POST";
  return {
    event_id: row.id,
    org_id: row.tenant_id,
    webhook_config_id: config.id,
    ...(config.url !== undefined && { url: config.url }),
    created_at: row.created_at,
    event_name: row.event_name,
    ...((row.last_status_code !== null || row.last_error !== null) && {
      http_response: { ...(row.last_status_code !== null && { status_code: row.last_status_code }), ...(row.last_error !== null && { message: row.last_error }) },
    }),
    metadata: {
      organization_id: row.tenant_id,
      webhook_id: config.id,
      webhook_name: config.name,
      origin: row.use_case_id ? "outbound_mapping" : "trigger",
      ...(row.correlation_id !== null && { correlation_id: row.correlation_id }),
    },
    status: WEBHOOK_EVENT_STATUS[row.status],
    ...((method === "GET" || method === "POST" || method === "PUT") && { http_method: method }),
    payload: row.payload,
    retry_attempt: Math.max(0, row.attempts - 1),
    delivery_status: row.status,
    attempts: row.attempts,
    ...(row.use_case_id && { use_case_id: row.use_case_id, mapping_id: row.mapping_id }),
    ack_status: row.ack_status,
  };
}

const byIdDescending = (a: { id: string }, b: { id: string }) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/** A page of a configuration's events, newest first, merged over its endpoints; one more than `limit` says whether more follow. */
async function configEventPage(env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string, q: WebhookEventQuery) {
  const config = await getConfig(env, tenantId, configId);
  const endpoints = await configEndpointIds(env.DB, tenantId, configId);
  const rows = (await Promise.all(endpoints.map((id) => endpointObject(env, id).webhookEvents({ ...q, limit: q.limit + 1 })))).flat().filter((r) => r.tenant_id === tenantId).sort(byIdDescending);
  const page = rows.slice(0, q.limit);
  return { config, data: page.map((r) => toWebhookEvent(r, config)), hasMore: rows.length > q.limit, last: page.at(-1) };
}

/** getWebhookEventsV2: a configuration's events filtered by status, time and id; cursor `{ created_at, event_id }` of the last event. */
export async function searchConfigEvents(env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string, search: WebhookEventSearch) {
  const iso = (t: string | undefined) => (t === undefined ? null : new Date(t).toISOString());
  const { data, hasMore, last } = await configEventPage(env, tenantId, configId, {
    statuses: search.status ? [...EVENT_STATUSES[search.status]] : null,
    before: search.cursor?.event_id ?? null,
    from: iso(search.timestamp?.from),
    to: iso(search.timestamp?.to),
    eventId: search.event_id ?? null,
    limit: search.limit,
  });
  return { data, next_cursor: hasMore && last ? { created_at: last.created_at, event_id: last.id } : null, has_more: hasMore };
}

/** Events per page of the deprecated v1 list. */
export const V1_EVENTS_PAGE = 25;

/** getWehookEvents (v1, deprecated): newest first, by status, with an opaque cursor. */
export async function listConfigEvents(env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string, q: { status?: "succeeded" | "failed" | "in_progress"; cursor?: string }) {
  const { data, hasMore, last } = await configEventPage(env, tenantId, configId, {
    statuses: q.status ? [...EVENT_STATUSES[q.status]] : null,
    before: q.cursor === undefined ? null : decodeCursor(q.cursor),
    limit: V1_EVENTS_PAGE,
  });
  return { data, ...(hasMore && last && { cursor: encodeCursor(last.id) }) };
}

/** The endpoint holding one of a configuration's deliveries, with the delivery; null when none does. */
async function findConfigDelivery(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string, eventId: string) {
  for (const endpointId of await configEndpointIds(env.DB, tenantId, configId)) {
    const row = await endpointObject(env, endpointId).delivery(eventId);
    if (row && row.tenant_id === tenantId) return { endpointId, row };
  }
  return null;
}

/** getEventById: one of a configuration's events; 404 when the configuration or the event is not there. */
export async function getConfigEvent(env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string, eventId: string): Promise<WebhookEvent> {
  const config = await getConfig(env, tenantId, configId);
  const found = await findConfigDelivery(env, tenantId, configId, eventId);
  if (!found) throw new AppError("NOT_FOUND", `Webhook event '${eventId}' not found`);
  return toWebhookEvent(found.row, config);
}

/** replayEvent: the event is sent again as a new delivery (linked by replay_of), through today's configuration. */
export async function replayConfigEvent(env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string, eventId: string): Promise<string> {
  await getConfig(env, tenantId, configId);
  const copy = await replayFound(env, tenantId, await findConfigDelivery(env, tenantId, configId, eventId));
  if (!copy) throw new AppError("NOT_FOUND", `Webhook event '${eventId}' not found`);
  return copy;
}

async function replayFound(env: Pick<Env, "OUTBOUND_ENDPOINT">, tenantId: string, found: { endpointId: string; row: DeliveryRow } | null): Promise<string | null> {
  if (!found || found.row.type !== "webhook") return null;
  const copyId = newId();
  const copied = await endpointObject(env, found.endpointId).replay(tenantId, found.row.integration_id, found.row.id, copyId);
  return copied ? copyId : null;
}

/** batchReplayEvents: each event found is sent again; answers the ids of those enqueued (unknown ids are left out). */
export async function replayConfigEvents(env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string, eventIds: string[]) {
  await getConfig(env, tenantId, configId);
  const replayed: string[] = [];
  for (const eventId of new Set(eventIds)) {
    if (await replayFound(env, tenantId, await findConfigDelivery(env, tenantId, configId, eventId))) replayed.push(eventId);
  }
  return { replayed_event_ids: replayed };
}

/** deleteConfig: the configuration, and the deliveries its triggers made (mappings' deliveries stay with their mappings). */
export async function deleteWebhookConfig(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, configId: string): Promise<void> {
  await deleteConfig(env.DB, tenantId, configId);
  await endpointObject(env, configEndpointId(configId)).purge();
}

/**
 * triggerWebhook: sends an ExecutionPayload through a configuration (its jsonataExpression applied).
 * Asynchronously (default) it becomes a pending delivery of the configuration's own endpoint, with
 * its retry policy; synchronously it is sent once now and the receiver's answer reported. Either
 * way it is one of the configuration's events. metadata.organization_id is always the tenant.
 */
export async function triggerWebhook(
  env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT"> & DestinationEnv,
  tenantId: string,
  configId: string,
  input: { metadata: Record<string, unknown> } & Record<string, unknown>,
  sync: boolean,
) {
  const target = await deliveryTarget(env, tenantId, configId);
  if (!target) throw new AppError("NOT_FOUND", `Webhook configuration '${configId}' not found`);
  const id = newId();
  const at = nowIso();
  const metadata: Record<string, unknown> = { ...input.metadata, organization_id: tenantId, webhook_id: configId, webhook_name: target.name, creation_timestamp: (input.metadata.creation_timestamp as string | undefined) ?? at };
  let body: unknown = { ...input, metadata };
  if (target.jsonataExpression !== undefined) {
    try {
      body = await evaluateExpression(target.jsonataExpression, body);
    } catch (err) {
      throw new AppError("BAD_REQUEST", `The configuration's jsonataExpression failed: ${(err as Error).message}`);
    }
    // The platform key signs what goes out (v1a): a transform must not make it claim another tenant.
    if (body !== null && typeof body === "object" && !Array.isArray(body) && Object.hasOwn(body, "metadata")) {
      const meta = (body as { metadata: unknown }).metadata;
      (body as { metadata: unknown }).metadata = { ...(meta !== null && typeof meta === "object" && !Array.isArray(meta) ? meta : {}), organization_id: tenantId };
    }
  }
  const payload = JSON.stringify(body ?? null);
  if (payload.length > MAX_DELIVERY_BYTES) throw new AppError("PAYLOAD_TOO_LARGE", `The webhook body is ${payload.length} bytes; a delivery may be at most ${MAX_DELIVERY_BYTES}`);
  const meta: EndpointMeta = { endpoint_id: configEndpointId(configId), tenant_id: tenantId, integration_id: "", use_case_id: "", mapping_id: "", type: "webhook" };
  const correlation = typeof metadata.correlation_id === "string" ? metadata.correlation_id : null;
  const row: NewDelivery = {
    id, use_case_slug: "", event_id: id, event_name: target.eventName, correlation_id: correlation, payload, status: "pending", ack_id: null,
    max_attempts: sync ? 1 : target.maxAttempts, last_error: null, created_at: at, completed_at: null,
  };
  const endpoint = endpointObject(env, meta.endpoint_id);
  if (!sync) {
    await endpoint.add(meta, [row]);
    return { event_id: id, message: "Webhook event queued" };
  }
  const ctx = (await endpointContext(env.DB, meta.endpoint_id, { secretsKey: env.SECRETS_KEY, tenantId }))!;
  let answer: CapturedResponse | undefined;
  const outcome = await attemptDelivery(env, ctx, { id, payload }, undefined, (r) => (answer = r));
  const end = nowIso();
  const delivered = outcome.kind === "delivered";
  const error = delivered ? null : outcome.kind === "gone" ? "HTTP 410: endpoint gone" : outcome.error;
  const statusCode = "statusCode" in outcome ? (outcome.statusCode ?? null) : null;
  await endpoint.recordAttempt(meta, row, { statusCode, error, final: delivered ? "delivered" : "failed", at: end });
  const answered = answer?.body;
  return {
    event_id: id,
    status: delivered ? ("succeeded" as const) : ("failed" as const),
    ...(statusCode !== null && { status_code: String(statusCode) }),
    message: error ?? "Webhook delivered",
    ...(answered !== null && typeof answered === "object" && !Array.isArray(answered) && { body: answered as Record<string, unknown> }),
    start_date: at,
    end_date: end,
  };
}

/**
 * POST /v1/erp/trigger (epilot's triggerErp): an automation step tells the ERP about an entity
 * activity. `webhook_id` names a webhook configuration, as in epilot: the trigger's context goes
 * through it now (triggerWebhook, synchronously, one attempt) and the receiver's answer is reported,
 * `failed` with its status when it refused. As an erp-edge extension `webhook_id` may instead name
 * a pull use case, which then runs now (inbound/pull.ts). Neither, or another org: 400.
 */
export async function triggerErp(
  env: Pick<Env, "DB" | "SECRETS_KEY" | "OUTBOUND_ENDPOINT"> & DestinationEnv & PullEnv,
  tenantId: string,
  request: TriggerErpActionRequest,
): Promise<TriggerWebhookResp> {
  if (request.org_id !== tenantId) throw new AppError("BAD_REQUEST", "org_id is not the caller's organisation (its tenant id)", { path: "org_id" });
  if (!(await deliveryTarget(env, tenantId, request.webhook_id))) return triggerPull(env, tenantId, request);
  const { execution_id, flow_id, flow_name, action_id, flow_action_id, activity_id, entity_id, created_at } = request;
  const metadata = { action_id, automation_id: flow_id, flow_name, execution_id, flow_action_id, activity_id, entity_id, creation_timestamp: created_at };
  const sent = await triggerWebhook(env, tenantId, request.webhook_id, { metadata, entity_id, activity_id }, true);
  const at = nowIso();
  return {
    status: "status" in sent ? sent.status : "succeeded",
    status_code: "status_code" in sent && sent.status_code !== undefined ? sent.status_code : "",
    message: sent.message,
    body: ("body" in sent && sent.body) || {},
    start_date: "start_date" in sent ? sent.start_date : at,
    end_date: "end_date" in sent ? sent.end_date : at,
    event_id: sent.event_id,
  };
}
