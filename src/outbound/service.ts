// Outbound: core events fan out to outbound use cases as deliveries (webhook or poll), with
// signing secrets, dead-letter queue, poll leases and ACK tracking.
import { runInstalled, type AppsEnv } from "../apps/service";
import { referencedCoreEvent } from "../entities/service";
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
import { newWebhookSecret, signatureHeaders } from "./signing";
import { OutboundConfiguration, type Delivery, type WebhookAuth, type WebhookDelivery } from "./schema";
import { envelope, type CoreEventEnvelope } from "../platform/core-events";
import { monitoredWhere, percentilesSql, type MonitoredArm, type MonitoredEventFilter } from "../platform/monitored-events";
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

/** Delivery ids grouped by their endpoint, in the order given. */
export function groupByEndpoint(rows: { id: string; use_case_id: string; mapping_id: string }[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const r of rows) {
    const key = endpointIdOf(r.use_case_id, r.mapping_id);
    groups.set(key, [...(groups.get(key) ?? []), r.id]);
  }
  return groups;
}

/** Hands webhook deliveries to their endpoint's Durable Object, which delivers them. */
export async function enqueueWebhookDeliveries(env: Pick<Env, "OUTBOUND_ENDPOINT">, byEndpoint: Map<string, string[]>) {
  await Promise.all(
    [...byEndpoint].map(([endpointId, ids]) => env.OUTBOUND_ENDPOINT.get(env.OUTBOUND_ENDPOINT.idFromName(endpointId)).enqueue(endpointId, ids)),
  );
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


/**
 * A mapping's transform: the app action's output is the body. A failed run dead-letters the delivery
 * with the app's error (a redrive after fixing the app or its grants sends it); an app the tenant
 * removed does the same.
 */
/** The wall clock of one transform run. */
export const TRANSFORM_TIMEOUT_MS = 2000;

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

/**
 * The delivery rows one core event creates: one per enabled mapping of each subscribed use case
 * whose filter passes (a failing filter or mapping dead-letters its row with the error). Nothing is
 * written here; `fanOutMany` writes a whole queue batch's rows at once.
 */
async function deliveriesOf(env: OutboundEnv, received: CoreEventEnvelope, subscriptions: OutboundSubscription[]): Promise<D1PreparedStatement[]> {
  const subs = subscriptions.filter((s) => s.config.event_catalog_event === received._event_name);
  if (subs.length === 0) return [];
  const event = received._truncated === true ? await wholeEvent(env, received) : received;
  const statements: D1PreparedStatement[] = [];
  const at = nowIso();
  for (const sub of subs) {
    const config = sub.config;
    if (sub.invalid) {
      statements.push(deliveryStatement(env.DB, event, sub, at, { mappingId: "invalid-configuration", type: "webhook", payload: null, error: sub.invalid, ackId: null, maxAttempts: 0 }));
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
      statements.push(
        deliveryStatement(env.DB, event, sub, at, {
          mappingId: mapping.id, type: mapping.delivery.type, payload: body ?? null, error,
          ackId: config.ack_tracking === "on" ? event._ack_id : null, maxAttempts,
        }),
      );
    }
  }
  return statements;
}

/** The pending webhook deliveries of some core events, in order (index deliveries_event). */
export const PENDING_WEBHOOKS_OF_EVENTS_SQL =
  "SELECT id, use_case_id, mapping_id FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?)) AND type = 'webhook' AND status = 'pending' ORDER BY id";

/**
 * Writes the delivery rows of events already prepared (one D1 batch for all of them) and queues every
 * pending webhook delivery of those events at its endpoint (one call per endpoint). Endpoints ignore
 * ids they already hold and rows are unique per (use case, mapping, event), so repeating it for the
 * same events creates and queues nothing twice.
 */
async function writeDeliveries(env: OutboundEnv, eventIds: string[], statements: D1PreparedStatement[]): Promise<void> {
  if (statements.length === 0) return;
  await env.DB.batch(statements);
  const { results: pending } = await env.DB.prepare(PENDING_WEBHOOKS_OF_EVENTS_SQL).bind(JSON.stringify(eventIds)).all<{ id: string; use_case_id: string; mapping_id: string }>();
  await enqueueWebhookDeliveries(env, groupByEndpoint(pending));
}

/** Statements per D1 batch of fan-out, below D1's limit of 1,000 per batch. */
const FAN_OUT_BATCH_STATEMENTS = 900;

/**
 * Fans out a queue batch: each event's rows are prepared on its own (an event whose rows cannot be
 * prepared, e.g. a reference whose body is gone, fails alone and is in `failed`), then written
 * together, in D1 batches of at most FAN_OUT_BATCH_STATEMENTS, and queued at their endpoints. When a
 * combined write fails, each of its events is written on its own, so only the events whose own rows
 * cannot be written (one tenant's oversized delivery, say) fail, never the other tenants' in the batch.
 */
export async function fanOutMany(env: OutboundEnv, events: CoreEventEnvelope[]): Promise<{ failed: Map<CoreEventEnvelope, unknown> }> {
  const failed = new Map<CoreEventEnvelope, unknown>();
  const prepared: { event: CoreEventEnvelope; statements: D1PreparedStatement[] }[] = [];
  for (const event of events) {
    try {
      prepared.push({ event, statements: await deliveriesOf(env, event, await subscriptionsOf(env.DB, event._org_id)) });
    } catch (err) {
      failed.set(event, err);
    }
  }
  const chunks: (typeof prepared)[] = [[]];
  let size = 0;
  for (const p of prepared) {
    if (size > 0 && size + p.statements.length > FAN_OUT_BATCH_STATEMENTS) chunks.push([]), (size = 0);
    chunks.at(-1)!.push(p);
    size += p.statements.length;
  }
  for (const chunk of chunks) {
    try {
      await writeDeliveries(env, chunk.map((p) => p.event._event_id), chunk.flatMap((p) => p.statements));
    } catch {
      for (const p of chunk) {
        try {
          await writeDeliveries(env, [p.event._event_id], p.statements);
        } catch (err) {
          failed.set(p.event, err);
        }
      }
    }
  }
  return { failed };
}

/**
 * The delivery row of one (use case, mapping, event): pending, or dead-lettered at once with `error`
 * (a failed mapping or filter, or a configuration that no longer validates). At most one per
 * (use case, mapping, event), so a fan-out repeated by the queue inserts nothing twice.
 */
function deliveryStatement(
  db: D1Database,
  event: CoreEventEnvelope,
  sub: OutboundSubscription,
  at: string,
  d: { mappingId: string; type: "webhook" | "poll"; payload: unknown; error: string | null; ackId: string | null; maxAttempts: number },
) {
  return db
    .prepare(
      `INSERT OR IGNORE INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, correlation_id,
         payload, status, ack_id, max_attempts, last_error, visible_at, created_at, completed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      newId(), event._org_id, sub.integrationId, sub.useCaseId, sub.slug, d.mappingId, d.type, event._event_id, event._event_name,
      event._correlation_id ?? null, JSON.stringify(d.payload), d.error ? "dead_lettered" : "pending",
      d.ackId, d.maxAttempts, d.error, at, at, d.error ? at : null,
    );
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

/** Everything a delivery attempt needs about its endpoint; null when its use case or mapping is gone. */
export async function endpointContext(db: D1Database, endpointId: string) {
  const [useCaseId, mappingId] = endpointId.split("/") as [string, string];
  const uc = await outboundUseCase(db, useCaseId);
  if (!uc) return null;
  const config = OutboundConfiguration.safeParse(uc.configuration);
  const mapping = config.success ? config.data.mappings.find((m) => m.id === mappingId) : undefined;
  if (!mapping || mapping.delivery.type !== "webhook") return null;
  await db
    .prepare("INSERT OR IGNORE INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(endpointId, uc.tenantId, uc.integrationId, uc.id, mappingId, nowIso())
    .run();
  const endpoint = (await db.prepare("SELECT * FROM outbound_endpoints WHERE id = ?").bind(endpointId).first<EndpointRow>())!;
  return { endpoint, delivery: mapping.delivery as WebhookDelivery, tenantId: uc.tenantId, integrationId: uc.integrationId };
}

const secretContext = (endpointId: string) => `endpoint/${endpointId}`;

/**
 * Creates or rotates an endpoint's whsec_ secret and returns it (shown only here). After a rotation
 * the previous secret keeps signing beside the new one for `overlapSeconds`.
 */
export async function rotateSecret(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, integrationId: string, useCaseId: string, mappingId: string, overlapSeconds: number) {
  await getIntegration(env.DB, tenantId, integrationId);
  const endpointId = endpointIdOf(useCaseId, mappingId);
  const ctx = await endpointContext(env.DB, endpointId);
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
        id, use_case_id: uc.id, mapping_id: m.id, url: (m.delivery as WebhookDelivery).url, state: row?.state ?? "active", has_secret: Boolean(row?.secret),
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
  await enqueueWebhookDeliveries(env, new Map([[endpointId, []]]));
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
  const m = value.match(/^\{\{env\.(.+)\}\}$/);
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

/**
 * One signed POST of a delivery. Network errors, timeouts, 408, 429 and 5xx are retryable. The URL
 * (and an OAuth token_url) is checked again here, on every attempt, and redirects are never followed.
 */
export async function attemptDelivery(
  env: Pick<Env, "DB" | "SECRETS_KEY"> & DestinationEnv,
  ctx: NonNullable<Awaited<ReturnType<typeof endpointContext>>>,
  delivery: { id: string; payload: string },
  resolve?: Resolver,
): Promise<AttemptOutcome> {
  const policy = destinationPolicy(env, resolve);
  try {
    await assertDestination(ctx.delivery.url, policy, "destination");
    const environment = ctx.delivery.auth && ctx.delivery.auth.type !== "none" ? await resolveEnvironment(env, ctx.tenantId, ctx.integrationId) : {};
    const headers = {
      "content-type": "application/json",
      "user-agent": "erp-edge-webhooks/1",
      ...(await authHeaders(ctx.delivery.auth, environment, policy)),
      ...(await signatureHeaders(delivery.id, delivery.payload, await signingSecrets(env, ctx.endpoint))),
    };
    const res = await fetch(ctx.delivery.url, { method: "POST", headers, body: delivery.payload, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "manual" });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return { kind: "delivered", statusCode: res.status };
    if (res.status === 410) return { kind: "gone", statusCode: 410 };
    if (res.status >= 300 && res.status < 400) return { kind: "dead", statusCode: res.status, error: `HTTP ${res.status}: redirects are not followed` };
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      return { kind: "retry", statusCode: res.status, error: `HTTP ${res.status}`, retryAfterMs: retryAfterMs(res.headers.get("retry-after")) };
    }
    return { kind: "dead", statusCode: res.status, error: `HTTP ${res.status} (not retried)` };
  } catch (err) {
    if (err instanceof RefusedRequest) return { kind: "dead", error: err.message };
    if (err instanceof DestinationLookupError) return { kind: "retry", error: err.message };
    const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    return { kind: "retry", error: timeout ? `timed out after ${TIMEOUT_MS} ms` : `network error: ${(err as Error).message}` };
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

// ---- recording outcomes -----------------------------------------------------------------------

export async function recordOutcome(db: D1Database, deliveryId: string, outcome: AttemptOutcome, final: "delivered" | "failed" | "dead_lettered" | null) {
  await recordOutcomeStatement(db, deliveryId, outcome, final).run();
}

/** The statement recording an attempt's outcome (endpoints write a round's outcomes in one D1 batch). */
export function recordOutcomeStatement(db: D1Database, deliveryId: string, outcome: AttemptOutcome, final: "delivered" | "failed" | "dead_lettered" | null): D1PreparedStatement {
  const at = nowIso();
  const error = outcome.kind === "delivered" ? null : outcome.kind === "gone" ? "HTTP 410: endpoint gone (disabled)" : outcome.error;
  return db
    .prepare(
      `UPDATE deliveries SET attempts = attempts + 1, last_status_code = ?, last_error = ?, status = COALESCE(?, status),
         completed_at = CASE WHEN ? IS NULL THEN completed_at ELSE ? END,
         processing_duration_ms = CASE WHEN ? IS NULL THEN processing_duration_ms ELSE CAST((julianday(?) - julianday(created_at)) * 86400000 AS INTEGER) END,
         ack_status = CASE WHEN ? = 'delivered' AND ack_id IS NOT NULL AND ack_status IS NULL THEN 'pending' ELSE ack_status END
       WHERE id = ?`,
    )
    .bind("statusCode" in outcome ? (outcome.statusCode ?? null) : null, error, final, final, at, final, at, final, deliveryId);
}

/** Several deliveries by id, in one query. */
export async function loadDeliveries(db: D1Database, ids: string[]): Promise<Map<string, DeliveryRow>> {
  const { results } = await db.prepare("SELECT * FROM deliveries WHERE id IN (SELECT value FROM json_each(?))").bind(JSON.stringify(ids)).all<DeliveryRow>();
  return new Map(results.map((r) => [r.id, r]));
}

interface DeliveryRow {
  id: string;
  tenant_id: string;
  integration_id: string;
  use_case_id: string;
  use_case_slug: string;
  mapping_id: string;
  type: "webhook" | "poll";
  event_id: string;
  event_name: string;
  correlation_id: string | null;
  payload: string;
  status: Delivery["status"];
  ack_id: string | null;
  ack_status: string | null;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  last_status_code: number | null;
  lease_token: string | null;
  visible_at: string | null;
  created_at: string;
  completed_at: string | null;
}

const fromDeliveryRow = (r: DeliveryRow): Delivery => ({
  id: r.id, use_case_id: r.use_case_id, use_case_slug: r.use_case_slug, mapping_id: r.mapping_id, type: r.type, event_id: r.event_id,
  event_name: r.event_name, correlation_id: r.correlation_id, status: r.status, ack_id: r.ack_id, ack_status: r.ack_status, attempts: r.attempts,
  last_error: r.last_error, last_status_code: r.last_status_code, created_at: r.created_at, completed_at: r.completed_at, payload: JSON.parse(r.payload),
});

// ---- dead-letter queue ------------------------------------------------------------------------

/** A page of an integration's dead letters, oldest first (index deliveries_dead_lettered). */
export const DEAD_LETTERS_SQL = "SELECT * FROM deliveries WHERE integration_id = ? AND status = 'dead_lettered' AND id > ? ORDER BY id LIMIT ?";

export async function listDeadLetters(db: D1Database, tenantId: string, integrationId: string, page: PageQuery) {
  await getIntegration(db, tenantId, integrationId);
  const { results } = await db
    .prepare(DEAD_LETTERS_SQL)
    .bind(integrationId, decodeCursor(page.cursor), page.limit + 1)
    .all<DeliveryRow>();
  const { items, next_cursor } = toPage(results, page.limit, fromDeliveryRow);
  return { deliveries: items, next_cursor };
}

/** Most dead letters one redrive-all call puts back; `has_more` and `next_cursor` lead to the rest. */
export const REDRIVE_PAGE_SIZE = 100;

const REDRIVE_SET = "SET status = 'pending', attempts = 0, last_error = NULL, completed_at = NULL, lease_token = NULL, visible_at = ?";

/** The statements of a redrive; exported so that their query plans are checked. */
export const REDRIVE_SQL = {
  /** The given dead letters of an integration (at most 100 ids, each one index lookup). */
  byIds: `UPDATE deliveries ${REDRIVE_SET}
    WHERE id IN (SELECT value FROM json_each(?)) AND integration_id = ? AND status = 'dead_lettered'
    RETURNING id, type, use_case_id, mapping_id`,
  /** The next page of an integration's dead letters, oldest first, after the cursor's id. */
  page: `UPDATE deliveries ${REDRIVE_SET}
    WHERE id IN (SELECT id FROM deliveries WHERE integration_id = ? AND status = 'dead_lettered' AND id > ? ORDER BY id LIMIT ?) AND status = 'dead_lettered'
    RETURNING id, type, use_case_id, mapping_id`,
  /** Whether dead letters remain after the cursor's id; run after `page` in one batch, so these lie after the page. */
  more: "SELECT EXISTS (SELECT 1 FROM deliveries WHERE integration_id = ? AND status = 'dead_lettered' AND id > ?) AS more",
};

type Redriven = { id: string; type: string; use_case_id: string; mapping_id: string };

/**
 * Puts dead-lettered deliveries back in their queues with fresh attempts: the given ids, or (without
 * ids) the next REDRIVE_PAGE_SIZE of the integration's dead letters after `cursor`, oldest first.
 * Redrive-all answers `has_more` and `next_cursor`; calling again with that cursor continues where
 * this call stopped, so a delivery dead-lettered again meanwhile is not redriven twice in one pass.
 * @example redrive(env, tenantId, integrationId) // → { redriven: 100, ids, has_more: true, next_cursor: "..." }
 */
export async function redrive(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, ids?: string[], cursor?: string) {
  await getIntegration(env.DB, tenantId, integrationId);
  const at = nowIso();
  if (ids) {
    const { results } = await env.DB.prepare(REDRIVE_SQL.byIds).bind(at, JSON.stringify(ids), integrationId).all<Redriven>();
    await requeueRedriven(env, results);
    return { redriven: results.length, ids: results.map((r) => r.id) };
  }
  const after = decodeCursor(cursor);
  // One transaction: once the page is pending again, a dead letter left after `after` lies after the page.
  const [page, rest] = await env.DB.batch<Record<string, unknown>>([
    env.DB.prepare(REDRIVE_SQL.page).bind(at, integrationId, after, REDRIVE_PAGE_SIZE),
    env.DB.prepare(REDRIVE_SQL.more).bind(integrationId, after),
  ]);
  const results = (page!.results as unknown as Redriven[]).sort((a, b) => (a.id < b.id ? -1 : 1));
  const hasMore = results.length > 0 && Boolean((rest!.results[0] as { more: number } | undefined)?.more);
  await requeueRedriven(env, results);
  return { redriven: results.length, ids: results.map((r) => r.id), has_more: hasMore, next_cursor: hasMore ? encodeCursor(results.at(-1)!.id) : null };
}

/** Hands redriven webhook deliveries to their endpoints, oldest first; poll ones wait for the next poll. */
async function requeueRedriven(env: Pick<Env, "OUTBOUND_ENDPOINT">, rows: Redriven[]) {
  await enqueueWebhookDeliveries(env, groupByEndpoint(rows.filter((r) => r.type === "webhook").sort((a, b) => (a.id < b.id ? -1 : 1))));
}

// ---- poll delivery ----------------------------------------------------------------------------

export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30;
/** Most exhausted messages one poll moves to the dead-letter queue (the rest go on later polls). */
export const POLL_DEAD_LETTER_BATCH = 100;

/**
 * Messages of an integration a poll may lease now, in the order they became visible: pending, not
 * leased (visible_at <= now, so leased rows are never read: the range of index deliveries_poll ends
 * before them), with attempts left, and, under poison_policy "block", only the oldest pending message
 * of its mapping (a leased or exhausted head holds the rest back). Parameters: ?1 now, ?2 the
 * policies as JSON `{ "<use_case_id>/<mapping_id>": { "max": n, "block": 0|1 } }` (a mapping not
 * in it keeps its row's max_attempts and does not block), ?3 integration id, ?4 limit.
 */
const POLL_CANDIDATES = `
  SELECT message.id FROM deliveries message
    LEFT JOIN json_each(?2) policy ON policy.key = message.use_case_id || '/' || message.mapping_id
   WHERE message.integration_id = ?3 AND message.type = 'poll' AND message.status = 'pending' AND message.visible_at <= ?1
     AND message.attempts < COALESCE(json_extract(policy.value, '$.max'), message.max_attempts)
     AND (COALESCE(json_extract(policy.value, '$.block'), 0) = 0 OR NOT EXISTS (
           SELECT 1 FROM deliveries older WHERE older.use_case_id = message.use_case_id AND older.mapping_id = message.mapping_id AND older.status = 'pending' AND older.id < message.id))
   ORDER BY message.visible_at LIMIT ?4`;

/** The statements of one poll, run in one batch (one transaction, one round trip), in this order. */
export const POLL_SQL = {
  /** Exhausted messages of non-blocking mappings go to the dead-letter queue. ?1 now, ?2 policies, ?3 integration, ?4 batch size. */
  deadLetter: `UPDATE deliveries SET status = 'dead_lettered', completed_at = ?1, last_error = 'max_delivery_attempts reached without ack'
    WHERE id IN (
      SELECT message.id FROM deliveries message
        LEFT JOIN json_each(?2) policy ON policy.key = message.use_case_id || '/' || message.mapping_id
       WHERE message.integration_id = ?3 AND message.type = 'poll' AND message.status = 'pending' AND message.visible_at <= ?1
         AND COALESCE(json_extract(policy.value, '$.block'), 0) = 0 AND message.attempts >= COALESCE(json_extract(policy.value, '$.max'), message.max_attempts)
       ORDER BY message.visible_at LIMIT ?4)`,
  /** Leases the candidates, each with its own token. ?5 = the end of the lease. */
  lease: `UPDATE deliveries SET lease_token = lower(hex(randomblob(16))), visible_at = ?5, attempts = attempts + 1
    WHERE id IN (${POLL_CANDIDATES}) AND status = 'pending' AND visible_at <= ?1
    RETURNING id, lease_token, use_case_id, event_name, event_id, payload, created_at`,
  /** Whether another message could be leased now (after `lease` took its share). ?4 = 1. */
  more: `SELECT EXISTS (${POLL_CANDIDATES}) AS more`,
};

/**
 * Leases up to `limit` poll messages with one UPDATE: however many messages are leased already,
 * the available ones behind them are found. A message past its use case's max_delivery_attempts
 * follows the poison policy: dead_letter moves it aside; block leaves it, and holds back its
 * mapping's later messages until it is acked or redriven.
 */
export async function pollMessages(db: D1Database, tenantId: string, integrationId: string, limit: number, visibilitySeconds = DEFAULT_VISIBILITY_TIMEOUT_SECONDS) {
  const integration = await getIntegration(db, tenantId, integrationId);
  const policies: Record<string, { max: number; block: 0 | 1 }> = {};
  for (const uc of integration.use_cases.filter((u) => u.type === "outbound")) {
    const config = OutboundConfiguration.safeParse(uc.configuration);
    for (const m of config.success ? config.data.mappings : []) {
      if (m.delivery.type === "poll") policies[`${uc.id}/${m.id}`] = { max: m.delivery.max_delivery_attempts, block: m.delivery.poison_policy === "block" ? 1 : 0 };
    }
  }
  const now = nowIso();
  const visibleUntil = new Date(Date.now() + visibilitySeconds * 1000).toISOString();
  const json = JSON.stringify(policies);
  const [, leased, more] = await db.batch<Record<string, unknown>>([
    db.prepare(POLL_SQL.deadLetter).bind(now, json, integrationId, POLL_DEAD_LETTER_BATCH),
    db.prepare(POLL_SQL.lease).bind(now, json, integrationId, limit, visibleUntil),
    db.prepare(POLL_SQL.more).bind(now, json, integrationId, 1),
  ]);
  const rows = (leased!.results as unknown as Pick<DeliveryRow, "id" | "lease_token" | "use_case_id" | "event_name" | "event_id" | "payload" | "created_at">[]).sort((a, b) => (a.id < b.id ? -1 : 1));
  const messages = rows.map((r) => ({ id: r.id, lease_token: r.lease_token!, use_case_id: r.use_case_id, event_name: r.event_name, event_id: r.event_id, payload: JSON.parse(r.payload), enqueued_at: r.created_at }));
  return { messages, visibility_timeout_seconds: visibilitySeconds, has_more: Boolean((more!.results[0] as { more: number } | undefined)?.more) };
}

export async function ackMessages(db: D1Database, tenantId: string, integrationId: string, acks: { id: string; lease_token: string }[]) {
  await getIntegration(db, tenantId, integrationId);
  const now = nowIso();
  const results = [];
  for (const ack of acks) {
    const row = await db.prepare("SELECT * FROM deliveries WHERE id = ? AND integration_id = ? AND type = 'poll'").bind(ack.id, integrationId).first<DeliveryRow>();
    if (!row) {
      results.push({ id: ack.id, status: "not_found" as const });
      continue;
    }
    const done = await db
      .prepare(
        `UPDATE deliveries SET status = 'delivered', completed_at = ?, lease_token = NULL,
           processing_duration_ms = CAST((julianday(?) - julianday(created_at)) * 86400000 AS INTEGER),
           ack_status = CASE WHEN ack_id IS NOT NULL AND ack_status IS NULL THEN 'pending' ELSE ack_status END
         WHERE id = ? AND status = 'pending' AND lease_token = ? AND visible_at > ? RETURNING id`,
      )
      .bind(now, now, ack.id, ack.lease_token, now)
      .first();
    results.push({ id: ack.id, status: done ? ("acked" as const) : ("stale_lease" as const) });
  }
  return { results };
}

// ---- ACK tracking -----------------------------------------------------------------------------

/**
 * ACK status only moves forward: none → pending (delivered) → timeout (sweep) → failed → processed
 * (the ERP's answers). Every statement that writes ack_status writes it only over an earlier one, so
 * an ACK sent while its webhook call is still open is not reset by the delivery's outcome, and a
 * repeated or contradicting ACK leaves a processed event processed.
 */
const ACK_ORDER = ["pending", "timeout", "failed", "processed"] as const;
const ackStatusesBefore = (status: (typeof ACK_ORDER)[number]) => JSON.stringify(ACK_ORDER.slice(0, ACK_ORDER.indexOf(status)));

/** The ERP's ACK for an outbound event (by its _ack_id) or an inbound event (ack_id = event id); answers the status now recorded. */
export async function acknowledge(env: Pick<Env, "DB" | "EVENT_LOG"> & Partial<Pick<Env, "EVENT_LOG_SHARDS">>, tenantId: string, input: { ack_id: string; status: "processed" | "failed"; message?: string }) {
  const db = env.DB;
  const at = nowIso();
  const before = ackStatusesBefore(input.status);
  const forward = "(ack_status IS NULL OR ack_status IN (SELECT value FROM json_each(?)))";
  const [outbound, outboundNow] = await db.batch<{ ack_status: string | null }>([
    db
      .prepare(`UPDATE deliveries SET ack_status = ?, ack_message = ?, acked_at = ? WHERE ack_id = ? AND tenant_id = ? AND ${forward} RETURNING ack_status`)
      .bind(input.status, input.message ?? null, at, input.ack_id, tenantId, before),
    db.prepare("SELECT ack_status FROM deliveries WHERE ack_id = ? AND tenant_id = ?").bind(input.ack_id, tenantId),
  ]);
  if (outboundNow!.results.length > 0) {
    return { ack_id: input.ack_id, status: latestAckStatus(outboundNow!.results), direction: "outbound" as const, acknowledged: outbound!.results.length };
  }
  const inbound = await acknowledgeInboundEvent(env, tenantId, input, ACK_ORDER.slice(0, ACK_ORDER.indexOf(input.status)), at);
  if (inbound) {
    return { ack_id: input.ack_id, status: latestAckStatus(inbound.statuses.map((ack_status) => ({ ack_status }))), direction: "inbound" as const, acknowledged: inbound.acknowledged };
  }
  throw new AppError("NOT_FOUND", `Unknown ack_id '${input.ack_id}'`);
}

/** The furthest status among rows sharing one ack_id (they move together unless an ACK raced a delivery). */
function latestAckStatus(rows: { ack_status: string | null }[]): string {
  const rank = (s: string | null) => ACK_ORDER.indexOf(s as (typeof ACK_ORDER)[number]);
  return rows.reduce<string | null>((best, r) => (rank(r.ack_status) > rank(best) ? r.ack_status : best), null) ?? "pending";
}

/** Most deliveries one ACK-timeout sweep marks; a larger backlog is worked off by the next runs. */
export const ACK_SWEEP_BATCH = 1000;

/** Delivered deliveries still ACK_PENDING that were completed before ?, oldest first (index deliveries_ack_pending). */
export const ACK_TIMEOUT_SQL = `UPDATE deliveries SET ack_status = 'timeout'
  WHERE id IN (SELECT id FROM deliveries WHERE ack_status = 'pending' AND completed_at < ? ORDER BY completed_at LIMIT ?) AND ack_status = 'pending'`;

/** ACK_PENDING deliveries older than ACK_TIMEOUT_SECONDS become ACK_TIMEOUT, at most ACK_SWEEP_BATCH per run. */
export async function sweepAckTimeouts(env: Pick<Env, "DB" | "ACK_TIMEOUT_SECONDS">, now = Date.now()): Promise<number> {
  const before = new Date(now - Number(env.ACK_TIMEOUT_SECONDS ?? 3600) * 1000).toISOString();
  const { meta } = await env.DB.prepare(ACK_TIMEOUT_SQL).bind(before, ACK_SWEEP_BATCH).run();
  return meta.changes;
}

// ---- what monitoring reads and changes ----------------------------------------------------------

/** The outbound arm of monitoring's unified events view (the monitored-event row shape). */
const MONITORED_COLUMNS = `id, id AS event_id, 'outbound' AS direction, event_name, use_case_slug, status,
  CASE WHEN status IN ('failed', 'dead_lettered') THEN 'downstream' END AS error_category, correlation_id,
  created_at AS received_at, completed_at, processing_duration_ms, attempts, last_error, ack_status, replay_of, NULL AS file_details`;

/**
 * An integration's deliveries as monitored-event rows, filtered; null when the filters exclude them
 * all (a delivery's error category is 'downstream' exactly when it failed or was dead-lettered).
 */
export function monitoredDeliveries(integrationId: string, q: MonitoredEventFilter): MonitoredArm | null {
  const from = q.correlation_id !== undefined ? "deliveries INDEXED BY deliveries_correlation" : "deliveries";
  const { where, params } = monitoredWhere(integrationId, q, "created_at");
  if (q.error_category !== undefined && q.error_category !== "downstream") return null;
  if (q.error_category === "downstream") where.push("status IN ('failed', 'dead_lettered')");
  return { sql: `SELECT ${MONITORED_COLUMNS} FROM ${from} WHERE ${where.join(" AND ")}`, params };
}

/** The outbound halves of monitoring's statistics, each bound to (?1 integration id, ?2 since[, ?3 sample size]). */
export const OUTBOUND_STATS_SQL = {
  counts: `SELECT 'outbound' AS direction, use_case_slug, status, COUNT(*) AS n, COUNT(processing_duration_ms) AS timed
      FROM deliveries WHERE integration_id = ?1 AND created_at >= ?2 GROUP BY use_case_slug, status`,
  acks: "SELECT ack_status, COUNT(*) AS n FROM deliveries WHERE integration_id = ?1 AND created_at >= ?2 AND ack_status IS NOT NULL GROUP BY ack_status",
  percentiles: percentilesSql("deliveries", "created_at"),
};

/** Retention: an integration's oldest deliveries created before ?, at most ? of them (index on (integration_id, created_at)). */
export const EXPIRED_DELIVERIES_SQL = "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE integration_id = ? AND created_at < ? ORDER BY created_at LIMIT ?)";

/** Retention of recorded core-event dead letters (bodies unredacted): ids (ULIDs) below ?, at most ? per run, by primary key. */
export const EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL = "DELETE FROM core_event_dead_letters WHERE id IN (SELECT id FROM core_event_dead_letters WHERE id < ? ORDER BY id LIMIT ?)";

export const deleteExpiredCoreEventDeadLettersStatement = (db: D1Database, before: number, limit: number) =>
  db.prepare(EXPIRED_CORE_EVENT_DEAD_LETTERS_SQL).bind(ulidFloor(before), limit);

export const deleteExpiredDeliveriesStatement = (db: D1Database, integrationId: string, before: string, limit: number) =>
  db.prepare(EXPIRED_DELIVERIES_SQL).bind(integrationId, before, limit);

/**
 * A replay of a delivery: a new pending copy (new id, `replay_of` linking the original), not yet
 * handed to its endpoint; null when the integration has no such delivery.
 */
export async function copyDeliveryForReplay(db: D1Database, tenantId: string, integrationId: string, deliveryId: string) {
  const id = newId();
  const copied = await db
    .prepare(
      `INSERT INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, correlation_id, payload,
         status, ack_id, max_attempts, visible_at, created_at, replay_of)
       SELECT ?, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id || ':replay:' || ?, event_name, correlation_id, payload,
         'pending', ack_id, max_attempts, ?, ?, id
       FROM deliveries WHERE id = ? AND tenant_id = ? AND integration_id = ? RETURNING type, use_case_id, mapping_id`,
    )
    .bind(id, id, nowIso(), nowIso(), deliveryId, tenantId, integrationId)
    .first<{ type: string; use_case_id: string; mapping_id: string }>();
  return copied ? { id, ...copied } : null;
}
