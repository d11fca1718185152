// Outbound: core events fan out to outbound use cases as deliveries (webhook or poll), with
// signing secrets, dead-letter queue, poll leases and ACK tracking.
import { getIntegration, resolveEnvironment } from "../integrations/service";
import { evaluateExpression } from "../mapping/expression";
import { decryptValue, encryptValue } from "../platform/crypto";
import { AppError } from "../platform/errors";
import { newId, nowIso } from "../platform/ids";
import { decodeCursor, toPage, type PageQuery } from "../platform/pagination";
import { ownValue } from "../platform/paths";
import { checkDestination, DestinationLookupError, destinationPolicy, type DestinationEnv, type DestinationPolicy, type Resolver } from "./destination";
import { newWebhookSecret, signatureHeaders } from "./signing";
import { OutboundConfiguration, type CoreEventEnvelope, type Delivery, type PollDelivery, type WebhookAuth, type WebhookDelivery } from "./schema";

// ---- core events ------------------------------------------------------------------------------

/** A core event in its envelope; `payload` keys sit beside the `_` fields. */
export function envelope(tenantId: string, name: string, payload: Record<string, unknown>, opts: { version?: string; source?: string; correlationId?: string | null } = {}): CoreEventEnvelope {
  return {
    _org_id: tenantId,
    _event_time: nowIso(),
    _event_id: newId(),
    _event_name: name,
    _event_version: opts.version ?? "1",
    _event_source: opts.source ?? "erp-edge",
    _ack_id: newId(),
    ...(opts.correlationId && { _correlation_id: opts.correlationId }),
    ...payload,
  };
}

/** POST /v1/events: a named business event from middleware or an app, fanned out like entity events. */
export async function emitBusinessEvent(
  env: Pick<Env, "CORE_EVENTS">,
  tenantId: string,
  input: { event_name: string; event_version: string; correlation_id?: string; payload: Record<string, unknown> },
) {
  const event = envelope(tenantId, input.event_name, input.payload, { version: input.event_version, source: "api", correlationId: input.correlation_id });
  await env.CORE_EVENTS.send(event);
  return { event_id: event._event_id, ack_id: event._ack_id, event_name: event._event_name };
}

// ---- fan-out ----------------------------------------------------------------------------------

interface UseCaseRow {
  id: string;
  integration_id: string;
  slug: string;
  configuration: string;
}

type OutboundEnv = Pick<Env, "DB" | "OUTBOUND_ENDPOINT">;

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
}

/** The tenant's enabled outbound use cases with valid configurations: fetched once per queue batch. */
export async function subscriptionsOf(db: D1Database, tenantId: string): Promise<OutboundSubscription[]> {
  const { results } = await db
    .prepare("SELECT id, integration_id, slug, configuration FROM use_cases WHERE tenant_id = ? AND type = 'outbound' AND enabled = 1")
    .bind(tenantId)
    .all<UseCaseRow>();
  return results.flatMap((row) => {
    const parsed = OutboundConfiguration.safeParse(JSON.parse(row.configuration));
    return parsed.success ? [{ useCaseId: row.id, integrationId: row.integration_id, slug: row.slug, config: parsed.data }] : [];
  });
}

/**
 * Creates one delivery per matching outbound use case mapping. A (use case, mapping, event) gets at
 * most one delivery, so a core event delivered twice by the queue is fanned out once.
 */
export async function fanOut(env: OutboundEnv, event: CoreEventEnvelope, subscriptions?: OutboundSubscription[]): Promise<number> {
  const subs = subscriptions ?? (await subscriptionsOf(env.DB, event._org_id));
  const statements: D1PreparedStatement[] = [];
  const at = nowIso();
  for (const sub of subs) {
    const config = sub.config;
    if (config.event_catalog_event !== event._event_name) continue;
    if (config.event_filter && !(await evaluateExpression(config.event_filter, event).catch(() => false))) continue;
    for (const mapping of config.mappings.filter((m) => m.enabled)) {
      let body: unknown;
      let error: string | null = null;
      try {
        body = await evaluateExpression(mapping.jsonata_expression, event);
      } catch (err) {
        error = `mapping failed: ${(err as Error).message}`;
      }
      if (body === undefined && !error) continue;
      const id = newId();
      const maxAttempts = mapping.delivery.type === "webhook" ? mapping.delivery.max_attempts : mapping.delivery.max_delivery_attempts;
      statements.push(
        env.DB.prepare(
          `INSERT OR IGNORE INTO deliveries (id, tenant_id, integration_id, use_case_id, use_case_slug, mapping_id, type, event_id, event_name, correlation_id,
             payload, status, ack_id, max_attempts, last_error, visible_at, created_at, completed_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).bind(
          id, event._org_id, sub.integrationId, sub.useCaseId, sub.slug, mapping.id, mapping.delivery.type, event._event_id, event._event_name,
          event._correlation_id ?? null, JSON.stringify(body ?? null), error ? "dead_lettered" : "pending",
          config.ack_tracking === "on" ? event._ack_id : null, maxAttempts, error, at, at, error ? at : null,
        ),
      );
    }
  }
  if (statements.length === 0) return 0;
  await env.DB.batch(statements);
  // Queue every pending webhook delivery of this event: endpoints ignore ids they already hold,
  // so a repeated fan-out queues nothing twice.
  const { results: pending } = await env.DB
    .prepare("SELECT id, use_case_id, mapping_id FROM deliveries WHERE event_id = ? AND type = 'webhook' AND status = 'pending' ORDER BY id")
    .bind(event._event_id)
    .all<{ id: string; use_case_id: string; mapping_id: string }>();
  await enqueueWebhookDeliveries(env, groupByEndpoint(pending));
  return statements.length;
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
  const uc = await db
    .prepare("SELECT id, tenant_id, integration_id, slug, enabled, configuration FROM use_cases WHERE id = ? AND type = 'outbound'")
    .bind(useCaseId)
    .first<{ id: string; tenant_id: string; integration_id: string; slug: string; enabled: number; configuration: string }>();
  if (!uc) return null;
  const config = OutboundConfiguration.safeParse(JSON.parse(uc.configuration));
  const mapping = config.success ? config.data.mappings.find((m) => m.id === mappingId) : undefined;
  if (!mapping || mapping.delivery.type !== "webhook") return null;
  await db
    .prepare("INSERT OR IGNORE INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(endpointId, uc.tenant_id, uc.integration_id, uc.id, mappingId, nowIso())
    .run();
  const endpoint = (await db.prepare("SELECT * FROM outbound_endpoints WHERE id = ?").bind(endpointId).first<EndpointRow>())!;
  return { endpoint, delivery: mapping.delivery as WebhookDelivery, tenantId: uc.tenant_id, integrationId: uc.integration_id };
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

export async function listEndpoints(db: D1Database, tenantId: string, integrationId: string) {
  const integration = await getIntegration(db, tenantId, integrationId);
  const { results } = await db.prepare("SELECT * FROM outbound_endpoints WHERE integration_id = ?").bind(integrationId).all<EndpointRow>();
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

/**
 * Refuses an outbound configuration whose webhook url or OAuth token_url the destination rules
 * refuse, with VALIDATION_FAILED naming each path. Call it wherever a configuration is saved
 * (the rules depend on env, which the zod schema cannot see). `path` prefixes the reported paths.
 * @example await assertSafeOutboundConfiguration(body.configuration, c.env, ["configuration"])
 */
export async function assertSafeOutboundConfiguration(
  config: OutboundConfiguration,
  env: DestinationEnv,
  path: (string | number)[] = [],
  resolve?: Resolver,
): Promise<void> {
  const policy = destinationPolicy(env, resolve);
  const urls: { at: (string | number)[]; url: string }[] = [];
  config.mappings.forEach((m, i) => {
    if (m.delivery.type !== "webhook") return;
    urls.push({ at: [...path, "mappings", i, "delivery", "url"], url: m.delivery.url });
    if (m.delivery.auth?.type === "oauth2_client_credentials") urls.push({ at: [...path, "mappings", i, "delivery", "auth", "token_url"], url: m.delivery.auth.token_url });
  });
  const issues = [];
  for (const { at, url } of urls) {
    let problem: string | null;
    try {
      problem = await checkDestination(url, policy);
    } catch (err) {
      if (!(err instanceof DestinationLookupError)) throw err;
      problem = err.message;
    }
    if (problem) issues.push({ path: at.join("."), message: `unsafe destination: ${problem}`, code: "unsafe_destination" });
  }
  if (issues.length > 0) throw new AppError("VALIDATION_FAILED", "Invalid request body", issues);
}

/**
 * assertSafeOutboundConfiguration for each outbound use case of a list (an integration's
 * `use_cases`), reporting paths as `use_cases.<i>.configuration...`.
 */
export async function assertSafeOutboundUseCases(
  useCases: readonly ({ type: "outbound"; configuration: OutboundConfiguration } | { type: "inbound" | "file_proxy" })[],
  env: DestinationEnv,
  path: (string | number)[] = ["use_cases"],
): Promise<void> {
  const failures: unknown[] = [];
  for (const [i, uc] of useCases.entries()) {
    if (uc.type !== "outbound") continue;
    try {
      await assertSafeOutboundConfiguration(uc.configuration, env, [...path, i, "configuration"]);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      failures.push(...(err.details as unknown[]));
    }
  }
  if (failures.length > 0) throw new AppError("VALIDATION_FAILED", "Invalid request body", failures);
}

/** Full-jitter exponential backoff: random(0, min(max, base × 2^attempt)), never before Retry-After. */
export function backoffMs(env: Pick<Env, "OUTBOUND_RETRY_BASE_MS" | "OUTBOUND_RETRY_MAX_MS">, attempt: number, retryAfter?: number): number {
  const base = Number(env.OUTBOUND_RETRY_BASE_MS ?? 5000);
  const max = Number(env.OUTBOUND_RETRY_MAX_MS ?? 3_600_000);
  const jittered = Math.random() * Math.min(max, base * 2 ** attempt);
  return Math.max(jittered, retryAfter ?? 0);
}

// ---- recording outcomes -----------------------------------------------------------------------

export async function recordOutcome(db: D1Database, deliveryId: string, outcome: AttemptOutcome, final: "delivered" | "failed" | "dead_lettered" | null) {
  const at = nowIso();
  const error = outcome.kind === "delivered" ? null : outcome.kind === "gone" ? "HTTP 410: endpoint gone (disabled)" : outcome.error;
  await db
    .prepare(
      `UPDATE deliveries SET attempts = attempts + 1, last_status_code = ?, last_error = ?, status = COALESCE(?, status),
         completed_at = CASE WHEN ? IS NULL THEN completed_at ELSE ? END,
         processing_duration_ms = CASE WHEN ? IS NULL THEN processing_duration_ms ELSE CAST((julianday(?) - julianday(created_at)) * 86400000 AS INTEGER) END,
         ack_status = CASE WHEN ? = 'delivered' AND ack_id IS NOT NULL THEN 'pending' ELSE ack_status END
       WHERE id = ?`,
    )
    .bind("statusCode" in outcome ? (outcome.statusCode ?? null) : null, error, final, final, at, final, at, final, deliveryId)
    .run();
}

export async function loadDelivery(db: D1Database, id: string) {
  return db.prepare("SELECT * FROM deliveries WHERE id = ?").bind(id).first<DeliveryRow>();
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

export async function listDeadLetters(db: D1Database, tenantId: string, integrationId: string, page: PageQuery) {
  await getIntegration(db, tenantId, integrationId);
  const { results } = await db
    .prepare("SELECT * FROM deliveries WHERE integration_id = ? AND status = 'dead_lettered' AND id > ? ORDER BY id LIMIT ?")
    .bind(integrationId, decodeCursor(page.cursor), page.limit + 1)
    .all<DeliveryRow>();
  const { items, next_cursor } = toPage(results, page.limit, fromDeliveryRow);
  return { deliveries: items, next_cursor };
}

/** Puts dead-lettered deliveries (all, or the given ids) back in their queues with fresh attempts. */
export async function redrive(env: Pick<Env, "DB" | "OUTBOUND_ENDPOINT">, tenantId: string, integrationId: string, ids?: string[]) {
  await getIntegration(env.DB, tenantId, integrationId);
  const filter = ids ? "AND id IN (SELECT value FROM json_each(?))" : "";
  const stmt = env.DB.prepare(
    `UPDATE deliveries SET status = 'pending', attempts = 0, last_error = NULL, completed_at = NULL, lease_token = NULL, visible_at = ?
     WHERE integration_id = ? AND status = 'dead_lettered' ${filter} RETURNING id, type, use_case_id, mapping_id`,
  );
  const bound = ids ? stmt.bind(nowIso(), integrationId, JSON.stringify(ids)) : stmt.bind(nowIso(), integrationId);
  const { results } = await bound.all<{ id: string; type: string; use_case_id: string; mapping_id: string }>();
  await enqueueWebhookDeliveries(env, groupByEndpoint(results.filter((r) => r.type === "webhook").sort((a, b) => (a.id < b.id ? -1 : 1))));
  return { redriven: results.length, ids: results.map((r) => r.id) };
}

// ---- poll delivery ----------------------------------------------------------------------------

export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30;

/**
 * Leases up to `limit` poll messages. A message past its use case's max_delivery_attempts follows
 * the poison policy: dead_letter moves it aside; block leaves it, and holds back its use case's
 * later messages until it is acked or redriven.
 */
export async function pollMessages(db: D1Database, tenantId: string, integrationId: string, limit: number, visibilitySeconds = DEFAULT_VISIBILITY_TIMEOUT_SECONDS) {
  const integration = await getIntegration(db, tenantId, integrationId);
  const policies = new Map<string, PollDelivery>();
  for (const uc of integration.use_cases.filter((u) => u.type === "outbound")) {
    const config = OutboundConfiguration.safeParse(uc.configuration);
    for (const m of config.success ? config.data.mappings : []) if (m.delivery.type === "poll") policies.set(`${uc.id}/${m.id}`, m.delivery);
  }
  const now = nowIso();
  const { results } = await db
    .prepare("SELECT * FROM deliveries WHERE integration_id = ? AND type = 'poll' AND status = 'pending' ORDER BY id LIMIT ?")
    .bind(integrationId, limit * 4 + 1)
    .all<DeliveryRow>();
  const blocked = new Set<string>();
  const visibleUntil = new Date(Date.now() + visibilitySeconds * 1000).toISOString();
  const messages = [];
  let hasMore = false;
  for (const row of results) {
    const key = `${row.use_case_id}/${row.mapping_id}`;
    if (blocked.has(key)) continue;
    const policy = policies.get(key);
    const leased = row.visible_at !== null && row.visible_at > now;
    if (leased) {
      if (policy?.poison_policy === "block") blocked.add(key);
      continue;
    }
    if (row.attempts >= (policy?.max_delivery_attempts ?? row.max_attempts)) {
      if (policy?.poison_policy === "block") {
        blocked.add(key);
        continue;
      }
      await db.prepare("UPDATE deliveries SET status = 'dead_lettered', completed_at = ?, last_error = 'max_delivery_attempts reached without ack' WHERE id = ? AND status = 'pending'").bind(now, row.id).run();
      continue;
    }
    if (messages.length >= limit) {
      hasMore = true;
      break;
    }
    const token = newId();
    // The guard makes two concurrent pollers unable to lease the same message.
    const got = await db
      .prepare("UPDATE deliveries SET lease_token = ?, visible_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending' AND (visible_at IS NULL OR visible_at <= ?) RETURNING id")
      .bind(token, visibleUntil, row.id, now)
      .first();
    if (!got) continue;
    if (policy?.poison_policy === "block") blocked.add(key);
    messages.push({ id: row.id, lease_token: token, use_case_id: row.use_case_id, event_name: row.event_name, event_id: row.event_id, payload: JSON.parse(row.payload), enqueued_at: row.created_at });
  }
  return { messages, visibility_timeout_seconds: visibilitySeconds, has_more: hasMore };
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
           ack_status = CASE WHEN ack_id IS NOT NULL THEN 'pending' ELSE ack_status END
         WHERE id = ? AND status = 'pending' AND lease_token = ? AND visible_at > ? RETURNING id`,
      )
      .bind(now, now, ack.id, ack.lease_token, now)
      .first();
    results.push({ id: ack.id, status: done ? ("acked" as const) : ("stale_lease" as const) });
  }
  return { results };
}

// ---- ACK tracking -----------------------------------------------------------------------------

/** The ERP's ACK for an outbound event (by its _ack_id) or an inbound event (ack_id = event id). */
export async function acknowledge(db: D1Database, tenantId: string, input: { ack_id: string; status: "processed" | "failed"; message?: string }) {
  const at = nowIso();
  const outbound = await db
    .prepare("UPDATE deliveries SET ack_status = ?, ack_message = ?, acked_at = ? WHERE ack_id = ? AND tenant_id = ? RETURNING id")
    .bind(input.status, input.message ?? null, at, input.ack_id, tenantId)
    .all();
  if (outbound.results.length > 0) return { ack_id: input.ack_id, status: input.status, direction: "outbound" as const, acknowledged: outbound.results.length };
  const inbound = await db
    .prepare("UPDATE events SET ack_status = ?, ack_message = ?, acked_at = ? WHERE id = ? AND tenant_id = ? RETURNING id")
    .bind(input.status, input.message ?? null, at, input.ack_id, tenantId)
    .all();
  if (inbound.results.length > 0) return { ack_id: input.ack_id, status: input.status, direction: "inbound" as const, acknowledged: 1 };
  throw new AppError("NOT_FOUND", `Unknown ack_id '${input.ack_id}'`);
}

/** ACK_PENDING deliveries older than ACK_TIMEOUT_SECONDS become ACK_TIMEOUT. */
export async function sweepAckTimeouts(env: Pick<Env, "DB" | "ACK_TIMEOUT_SECONDS">, now = Date.now()): Promise<number> {
  const before = new Date(now - Number(env.ACK_TIMEOUT_SECONDS ?? 3600) * 1000).toISOString();
  const { meta } = await env.DB.prepare("UPDATE deliveries SET ack_status = 'timeout' WHERE ack_status = 'pending' AND completed_at < ?").bind(before).run();
  return meta.changes;
}
