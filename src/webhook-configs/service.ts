// Webhook configurations: stored per tenant in D1 (webhook_configs), their auth secrets sealed with
// SECRETS_KEY, answered in epilot's shape with secrets masked; and what outbound reads of one at
// delivery time (deliveryTarget). The deliveries made through a configuration are outbound's.
import { assertParses, ExpressionError } from "../mapping/expression";
import { decryptValue, encryptValue } from "../platform/crypto";
import { checkDestination, DestinationLookupError, destinationPolicy, type DestinationEnv, type Resolver } from "../platform/destination";
import { AppError } from "../platform/errors";
import { newUuid, nowIso } from "../platform/ids";
import type { Auth, WebhookConfig, WebhookConfigInput } from "./schema";

type ConfigEnv = Pick<Env, "DB" | "SECRETS_KEY"> & DestinationEnv;

/** Who may make erp-edge send environment values (or keep sending stored secrets to a new host). */
export const SECRETS_SCOPE = "secrets:use";

interface ConfigRow {
  id: string;
  tenant_id: string;
  name: string;
  event_name: string;
  enabled: number;
  url: string | null;
  config: string;
  auth: string | null;
  signing_secret: string;
  creation_time: string;
  updated_time: string;
}

/** The fields kept in the `config` JSON column: everything but the ones with columns of their own. */
type StoredFields = Omit<WebhookConfigInput, "name" | "eventName" | "enabled" | "url" | "auth">;

const authContext = (id: string) => `webhook-config/${id}/auth`;
const secretContext = (id: string) => `webhook-config/${id}/signing-secret`;

/** `{{env.KEY}}` or epilot's `{{ env.KEY }}`: the key, else null. */
export function environmentKeyOf(value: string | null | undefined): string | null {
  return value?.match(/^\{\{\s*env\.([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}$/)?.[1] ?? null;
}

function newSigningSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

/** The secret fields of an auth, by where they sit. */
const SECRET_FIELDS = [
  ["basicAuthConfig", "password"],
  ["oauthConfig", "clientSecret"],
  ["apiKeyConfig", "keyValue"],
] as const;

/** Auth as answered: a secret value is left out, an environment reference (not a secret) is shown. */
function maskedAuth(auth: Auth): Auth {
  const out = structuredClone(auth) as Record<string, Record<string, unknown> | string | undefined>;
  for (const [part, field] of SECRET_FIELDS) {
    const section = out[part] as Record<string, unknown> | undefined;
    if (section && !environmentKeyOf(section[field] as string | null | undefined)) delete section[field];
  }
  return out as unknown as Auth;
}

/**
 * The auth to store: the request's, with each secret it leaves out taken from the stored auth
 * (epilot: omit to preserve, null to clear, a string to set). Answers which secrets were kept.
 */
function mergedAuth(sent: Auth | undefined, stored: Auth | null): { auth: Auth | null; kept: boolean } {
  if (!sent) return { auth: null, kept: false };
  const out = structuredClone(sent) as Record<string, Record<string, unknown> | string | undefined>;
  let kept = false;
  for (const [part, field] of SECRET_FIELDS) {
    const section = out[part] as Record<string, unknown> | undefined;
    if (!section) continue;
    const previous = (stored?.[part] as Record<string, unknown> | undefined)?.[field];
    if (!(field in section) && typeof previous === "string") {
      section[field] = previous;
      kept = true;
    }
    if (section[field] === null) delete section[field];
  }
  return { auth: out as unknown as Auth, kept };
}

/**
 * Whether a configuration sends environment values anywhere: its auth, its OAuth request's custom
 * parameters, or its custom headers (outbound resolves `{{env.KEY}}` in each of them at send time).
 */
export function usesEnvironment(auth: Auth | null, customHeaders: Record<string, string> | undefined): boolean {
  const values = [
    auth?.basicAuthConfig?.username, auth?.basicAuthConfig?.password, auth?.oauthConfig?.clientId, auth?.oauthConfig?.clientSecret, auth?.apiKeyConfig?.keyValue,
    ...(auth?.oauthConfig?.customParameterList ?? []).map((p) => p.value),
    ...Object.values(customHeaders ?? {}),
  ];
  return values.some((v) => environmentKeyOf(v) !== null) || Boolean(auth?.basicAuthConfig?.passwordIsEnvVar || auth?.oauthConfig?.clientSecretIsEnvVar || auth?.apiKeyConfig?.keyValueIsEnvVar);
}

async function fromRow(env: Pick<Env, "SECRETS_KEY">, row: ConfigRow): Promise<WebhookConfig> {
  const fields = JSON.parse(row.config) as StoredFields;
  const auth = row.auth ? (JSON.parse(await decryptValue(env.SECRETS_KEY, row.auth, authContext(row.id))) as Auth) : null;
  return {
    id: row.id,
    orgId: row.tenant_id,
    name: row.name,
    eventName: row.event_name,
    ...(row.url !== null && { url: row.url }),
    enabled: row.enabled === 1,
    ...fields,
    ...(auth && { auth: maskedAuth(auth) }),
    creationTime: row.creation_time,
    updatedTime: row.updated_time,
  };
}

/** Refuses (400) a url or OAuth endpoint the destination rules refuse, naming each path. */
async function assertSafeDestinations(input: WebhookConfigInput, env: DestinationEnv, resolve?: Resolver) {
  const policy = destinationPolicy(env, resolve);
  const urls = [
    ...(input.url ? [{ path: "url", url: input.url }] : []),
    ...(input.auth?.authType === "OAUTH_CLIENT_CREDENTIALS" && input.auth.oauthConfig ? [{ path: "auth.oauthConfig.endpoint", url: input.auth.oauthConfig.endpoint }] : []),
  ];
  const issues = [];
  for (const { path, url } of urls) {
    let problem: string | null;
    try {
      problem = await checkDestination(url, policy);
    } catch (err) {
      if (!(err instanceof DestinationLookupError)) throw err;
      problem = err.message;
    }
    if (problem) issues.push({ path, message: `unsafe destination: ${problem}`, code: "unsafe_destination" });
  }
  if (input.jsonataExpression !== undefined) {
    try {
      assertParses(input.jsonataExpression);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      issues.push({ path: "jsonataExpression", message: `JSONata ${err.code} at position ${err.position ?? 0}: ${err.message}`, code: "custom" });
    }
  }
  if (issues.length > 0) throw new AppError("VALIDATION_FAILED", "Invalid request body", issues);
}

function assertMaySend(auth: Auth | null, customHeaders: Record<string, string> | undefined, keptSecretsToNewHost: boolean, maySendSecrets: boolean) {
  if (maySendSecrets) return;
  if (usesEnvironment(auth, customHeaders)) {
    throw new AppError("FORBIDDEN", `This webhook configuration sends environment values; saving it needs the '${SECRETS_SCOPE}' scope`, { required_scope: SECRETS_SCOPE });
  }
  if (keptSecretsToNewHost) {
    throw new AppError("FORBIDDEN", `Changing where a webhook configuration sends its stored secrets needs the '${SECRETS_SCOPE}' scope (or send the secrets again)`, { required_scope: SECRETS_SCOPE });
  }
}

function storedFields(input: WebhookConfigInput): StoredFields {
  const { name: _n, eventName: _e, enabled: _en, url: _u, auth: _a, ...rest } = input;
  return rest;
}

const sealAuth = async (env: Pick<Env, "SECRETS_KEY">, id: string, auth: Auth | null) => (auth ? encryptValue(env.SECRETS_KEY, JSON.stringify(auth), authContext(id)) : null);

/**
 * createConfig: a new configuration with a new whsec_ signing secret, answered once here.
 * A new configuration without retryPolicy gets epilot's default (enabled, 3 retries).
 */
export async function createConfig(env: ConfigEnv, tenantId: string, input: WebhookConfigInput, opts: { maySendSecrets: boolean; resolve?: Resolver }): Promise<WebhookConfig> {
  await assertSafeDestinations(input, env, opts.resolve);
  const { auth } = mergedAuth(input.auth, null);
  assertMaySend(auth, input.payloadConfiguration?.custom_headers, false, opts.maySendSecrets);
  const { n } = (await env.DB.prepare("SELECT COUNT(*) AS n FROM webhook_configs WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!;
  if (n >= MAX_CONFIGS_PER_TENANT) throw new AppError("CONFLICT", `A tenant may have at most ${MAX_CONFIGS_PER_TENANT} webhook configurations; delete one first`);
  const id = newUuid();
  const at = nowIso();
  const secret = newSigningSecret();
  const fields = storedFields({ ...input, retryPolicy: input.retryPolicy ?? { enabled: true, maxAttempts: 3 } });
  const row: ConfigRow = {
    id, tenant_id: tenantId, name: input.name, event_name: input.eventName, enabled: input.enabled === false ? 0 : 1, url: input.url ?? null,
    config: JSON.stringify(fields), auth: await sealAuth(env, id, auth), signing_secret: await encryptValue(env.SECRETS_KEY, secret, secretContext(id)), creation_time: at, updated_time: at,
  };
  await env.DB
    .prepare("INSERT INTO webhook_configs (id, tenant_id, name, event_name, enabled, url, config, auth, signing_secret, creation_time, updated_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    .bind(row.id, row.tenant_id, row.name, row.event_name, row.enabled, row.url, row.config, row.auth, row.signing_secret, row.creation_time, row.updated_time)
    .run();
  return { ...(await fromRow(env, row)), signingSecret: secret };
}

/** Most configurations one tenant may have (createConfig refuses more): they are configuration, read whole by the list. */
export const MAX_CONFIGS_PER_TENANT = 500;

/** getConfigs: the tenant's configurations, oldest first, optionally of one event name. */
export async function listConfigs(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, eventName?: string): Promise<WebhookConfig[]> {
  const statement = eventName === undefined
    ? env.DB.prepare("SELECT * FROM webhook_configs WHERE tenant_id = ? ORDER BY id LIMIT ?").bind(tenantId, MAX_CONFIGS_PER_TENANT)
    : env.DB.prepare("SELECT * FROM webhook_configs WHERE tenant_id = ? AND event_name = ? ORDER BY id LIMIT ?").bind(tenantId, eventName, MAX_CONFIGS_PER_TENANT);
  const { results } = await statement.all<ConfigRow>();
  return Promise.all(results.map((r) => fromRow(env, r)));
}

async function configRow(db: D1Database, tenantId: string, id: string): Promise<ConfigRow> {
  const row = await db.prepare("SELECT * FROM webhook_configs WHERE id = ? AND tenant_id = ?").bind(id, tenantId).first<ConfigRow>();
  if (!row) throw new AppError("NOT_FOUND", `Webhook configuration '${id}' not found`);
  return row;
}

export async function getConfig(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, id: string): Promise<WebhookConfig> {
  return fromRow(env, await configRow(env.DB, tenantId, id));
}

/**
 * updateConfig: replaces the configuration with the body, except that an omitted retryPolicy and
 * omitted secrets keep their stored values (epilot's rules). Takes effect for later deliveries.
 */
export async function updateConfig(env: ConfigEnv, tenantId: string, id: string, input: WebhookConfigInput, opts: { maySendSecrets: boolean; resolve?: Resolver }): Promise<WebhookConfig> {
  const row = await configRow(env.DB, tenantId, id);
  await assertSafeDestinations(input, env, opts.resolve);
  const stored = row.auth ? (JSON.parse(await decryptValue(env.SECRETS_KEY, row.auth, authContext(id))) as Auth) : null;
  const { auth, kept } = mergedAuth(input.auth, stored);
  const previousFields = JSON.parse(row.config) as StoredFields;
  const hostChanged = (input.url ?? null) !== row.url || auth?.oauthConfig?.endpoint !== stored?.oauthConfig?.endpoint;
  assertMaySend(auth, input.payloadConfiguration?.custom_headers, kept && hostChanged, opts.maySendSecrets);
  const fields = storedFields({ ...input, retryPolicy: input.retryPolicy ?? previousFields.retryPolicy });
  const updated: ConfigRow = {
    ...row, name: input.name, event_name: input.eventName, enabled: input.enabled === false ? 0 : 1, url: input.url ?? null,
    config: JSON.stringify(fields), auth: await sealAuth(env, id, auth), updated_time: nowIso(),
  };
  const { meta } = await env.DB
    .prepare("UPDATE webhook_configs SET name = ?, event_name = ?, enabled = ?, url = ?, config = ?, auth = ?, updated_time = ? WHERE id = ? AND tenant_id = ?")
    .bind(updated.name, updated.event_name, updated.enabled, updated.url, updated.config, updated.auth, updated.updated_time, id, tenantId)
    .run();
  if (!meta.changes) throw new AppError("NOT_FOUND", `Webhook configuration '${id}' not found`);
  return fromRow(env, updated);
}

/** deleteConfig: the row goes; outbound removes the deliveries it holds for it (outbound/service.ts deleteWebhookConfig). */
export async function deleteConfig(db: D1Database, tenantId: string, id: string): Promise<void> {
  const { meta } = await db.prepare("DELETE FROM webhook_configs WHERE id = ? AND tenant_id = ?").bind(id, tenantId).run();
  if (!meta.changes) throw new AppError("NOT_FOUND", `Webhook configuration '${id}' not found`);
}

/** The ids of a tenant's configurations (for purging what outbound holds for them when the tenant goes). */
export async function configIdsOfTenant(db: D1Database, tenantId: string): Promise<string[]> {
  const { results } = await db.prepare("SELECT id FROM webhook_configs WHERE tenant_id = ?").bind(tenantId).all<{ id: string }>();
  return results.map((r) => r.id);
}

/**
 * Events that can trigger webhooks: erp-edge's own operational events, and every event name the
 * tenant's configurations subscribe to (outbound use cases name their core events themselves).
 */
export const BUILT_IN_EVENTS = [
  { eventName: "erp_edge.endpoint.paused", eventLabel: "Webhook endpoint paused (circuit breaker)" },
  { eventName: "erp_edge.endpoint.disabled", eventLabel: "Webhook endpoint disabled (410 Gone)" },
];

export async function configuredEvents(db: D1Database, tenantId: string): Promise<{ eventName: string; eventLabel: string }[]> {
  const { results } = await db.prepare("SELECT DISTINCT event_name FROM webhook_configs WHERE tenant_id = ? ORDER BY event_name").bind(tenantId).all<{ event_name: string }>();
  const names = new Map(BUILT_IN_EVENTS.map((e) => [e.eventName, e.eventLabel]));
  for (const r of results) if (!names.has(r.event_name)) names.set(r.event_name, r.event_name);
  return [...names].map(([eventName, eventLabel]) => ({ eventName, eventLabel }));
}

/** getWebhookExample: the shape of what a trigger of this configuration sends (metadata, entity, relations). */
export async function exampleOf(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, id: string, automationId?: string) {
  const config = await getConfig(env, tenantId, id);
  return {
    metadata: {
      action: automationId ? `Triggered by automation ${automationId}` : "Example generated by erp-edge",
      origin: "erp-edge",
      creation_timestamp: nowIso(),
      webhook_id: config.id,
      webhook_name: config.name,
      organization_id: tenantId,
      ...(automationId && { automation_name: automationId }),
    },
    entity: { _id: "00000000-0000-7000-8000-000000000000", _schema: config.eventName.split(/[._]/)[0] ?? "entity", _org: tenantId, _created_at: nowIso(), _updated_at: nowIso() },
    relations: [],
  };
}

/** What outbound needs to send through a configuration: its destination, headers, auth and secret, in clear. */
export interface DeliveryTarget {
  id: string;
  name: string;
  eventName: string;
  enabled: boolean;
  url: string | null;
  httpMethod: string;
  headers: Record<string, string>;
  auth: Auth | null;
  signingSecret: string;
  /** Attempts in all (the first one and epilot's automatic retries). */
  maxAttempts: number;
  jsonataExpression?: string;
}

/**
 * A configuration as outbound sends through it, read fresh (a changed configuration applies to the
 * next delivery); null when the tenant has no such configuration.
 */
export async function deliveryTarget(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, id: string): Promise<DeliveryTarget | null> {
  const row = await env.DB.prepare("SELECT * FROM webhook_configs WHERE id = ? AND tenant_id = ?").bind(id, tenantId).first<ConfigRow>();
  if (!row) return null;
  const fields = JSON.parse(row.config) as StoredFields;
  const retry = fields.retryPolicy;
  return {
    id: row.id,
    name: row.name,
    eventName: row.event_name,
    enabled: row.enabled === 1 && fields.status !== "inactive",
    url: row.url,
    httpMethod: fields.httpMethod ?? "POST",
    headers: fields.payloadConfiguration?.custom_headers ?? {},
    auth: row.auth ? (JSON.parse(await decryptValue(env.SECRETS_KEY, row.auth, authContext(id))) as Auth) : null,
    signingSecret: await decryptValue(env.SECRETS_KEY, row.signing_secret, secretContext(id)),
    maxAttempts: retry?.enabled ? (retry.maxAttempts ?? 3) + 1 : 1,
    ...(fields.jsonataExpression !== undefined && { jsonataExpression: fields.jsonataExpression }),
  };
}
