// Managed calls and the secure proxy (docs/managed-calls.md): a configured HTTP call to a partner API
// run by erp-edge with the integration's credentials, under the file proxy's safety rules: every URL
// and redirect checked against the hosts the configuration names and the address rules before it is
// called, secrets written in only as the request is sent and masked everywhere else, every answer
// bounded in time and size.
import { sha256Hex } from "../platform/crypto";
import { checkDestination, DestinationLookupError, destinationPolicy, hostEntryCovers, parseDestination, type CanonicalDestination, type DestinationPolicy } from "../platform/destination";
import { AppError, type ErrorCode } from "../platform/errors";
import { newUuid } from "../platform/ids";
import { renderTemplate, Secrets, TemplateError } from "../platform/template";
import { integrationForEvents, listIntegrations, resolveEnvironment } from "../integrations/service";
import type { Integration } from "../integrations/schema";
import { ExpressionError, evaluateExpression } from "../mapping/expression";
import type { TokenRequest } from "../file-proxy/tokens-do";
import ipaddr from "ipaddr.js";
import { ConnectorConfig, ManagedCallConfiguration, SecureProxyConfiguration, type ManagedCallAuth } from "./configuration";
import type { ManagedCallExecuteRequest, SecureProxyRequest, SecureProxyResponse, SecureProxySummary } from "./schema";

/** The bindings a call needs; the file proxy's private-host allow-list (FILE_PROXY_ALLOWED_PRIVATE_HOSTS) applies. */
export type ManagedCallEnv = Pick<Env, "DB" | "SECRETS_KEY" | "FILE_PROXY_TOKENS"> & Partial<Record<"FILE_PROXY_ALLOWED_PRIVATE_HOSTS" | "OUTBOUND_DNS_CHECK", string>>;

/** Largest partner answer read (JSON or, for the secure proxy, any body). */
export const MAX_RESPONSE_BYTES = 5 * 1024 * 1024;
/** Redirects followed per call, each checked like the first URL. */
const MAX_REDIRECTS = 5;
/** How much of a partner's error body the caller is shown (secrets masked). */
const MAX_ERROR_BODY = 2048;
/** The secure proxy's bound on one request (epilot's proxy answers 504 past its own). */
const SECURE_PROXY_TIMEOUT_MS = 30_000;

/**
 * The codes failures are answered with. epilot names EXTERNAL_API_ERROR, SSRF_BLOCKED and
 * MANAGED_CALL_EXECUTION_ERROR; until the closed set in platform/errors.ts has them, the nearest
 * existing codes with the same statuses stand in, chosen here and nowhere else.
 */
const FAILURE: Record<"blocked" | "configuration" | "upstream" | "timeout" | "forbidden", ErrorCode> = {
  blocked: "SSRF_BLOCKED",
  configuration: "BAD_REQUEST",
  upstream: "EXTERNAL_API_ERROR",
  timeout: "UPSTREAM_TIMEOUT",
  forbidden: "FORBIDDEN",
};

type StoredUseCase = { id: string; name: string; slug?: string; type: string; enabled: boolean; configuration?: unknown };

const useCasesOf = (integration: Integration) => integration.use_cases as unknown as StoredUseCase[];

/** The integration's connector_config (epilot's ConnectorConfig), when it has a valid one. */
function connectorOf(integration: Integration): ConnectorConfig | undefined {
  const parsed = ConnectorConfig.safeParse((integration as { connector_config?: unknown }).connector_config);
  return parsed.success ? parsed.data : undefined;
}

/** A JSON object without a prototype, so nothing a template or expression reads can be inherited. */
function record<T>(entries: Iterable<[string, T]>): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

// ---- listing -----------------------------------------------------------------------------------

/** Every secure_proxy use case of the tenant, across its integrations (epilot's listSecureProxies). */
export async function listSecureProxies(db: D1Database, tenantId: string): Promise<SecureProxySummary[]> {
  const out: SecureProxySummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await listIntegrations(db, tenantId, { limit: 100, ...(cursor && { cursor }) } as Parameters<typeof listIntegrations>[2]);
    for (const integration of page.integrations) {
      for (const uc of useCasesOf(integration)) {
        if (uc.type !== "secure_proxy") continue;
        const config = SecureProxyConfiguration.safeParse(uc.configuration);
        out.push({
          id: uc.id,
          name: uc.name,
          ...(uc.slug !== undefined && { slug: uc.slug }),
          enabled: uc.enabled,
          vpc_mode: config.success ? config.data.vpc_mode : "static_ip",
          ...(config.success && config.data.allowed_domains && { allowed_domains: config.data.allowed_domains }),
          ...(config.success && config.data.allowed_ips && { allowed_ips: config.data.allowed_ips }),
          integration_id: integration.id,
          integration_name: integration.name,
        });
      }
    }
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

// ---- one bounded HTTP exchange -------------------------------------------------------------------

class CallFailure extends AppError {}

interface Exchange {
  /** URL, header values and body as rendered: secrets are placeholders until the request is sent. */
  url: string;
  method: string;
  headers: [string, string][];
  body?: string;
  /** Whether a URL's host may be reached at all (before the address rules). */
  allowed: (host: string, port: string) => boolean;
  policy: DestinationPolicy;
  timeoutMs: number;
  secrets: Secrets;
  what: string;
}

interface Answer {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
}

/** Why a URL may not be called: not http(s), not an allowed host, or a private address. */
async function refusal(url: string, x: Pick<Exchange, "allowed" | "policy">): Promise<string | null> {
  const parsed = parseDestination(url);
  if (typeof parsed === "string") return parsed;
  if (!x.allowed(parsed.host, parsed.port)) return `host '${parsed.host}' is not one this use case may reach`;
  try {
    return await checkDestination(url, x.policy);
  } catch (err) {
    if (err instanceof DestinationLookupError) return err.message;
    throw err;
  }
}

/** A URL's host, for messages (never the whole URL: it may carry a secret). */
const hostOf = (url: string) => (URL.canParse(url) ? new URL(url).host : "an invalid URL");

/**
 * Sends one request and reads its whole answer (at most MAX_RESPONSE_BYTES, within the timeout),
 * following redirects only where `allowed` and the address rules let it. On a hop to another origin
 * every header rendered from a secret is dropped, and a body holding one is not sent on.
 */
async function exchange(x: Exchange): Promise<Answer> {
  let url = x.secrets.reveal(x.url);
  let method = x.method;
  let headers = x.headers;
  let body = x.body;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("timeout", "TimeoutError")), x.timeoutMs);
  const timedOut = () => new CallFailure(FAILURE.timeout, `${x.what}: ${hostOf(url)} did not answer within ${x.timeoutMs / 1000} s`);
  try {
    for (let hop = 0; ; hop++) {
      const why = await refusal(url, x);
      if (why) throw new CallFailure(FAILURE.blocked, `${x.what}${hop ? ` (redirect ${hop})` : ""} refused: ${x.secrets.mask(why)}`, { reason: "SSRF_BLOCKED" });
      const sent = new Headers();
      for (const [name, value] of headers) {
        try {
          sent.set(name, x.secrets.reveal(value));
        } catch {
          throw new CallFailure(FAILURE.configuration, `${x.what}: header '${name}' has a value HTTP does not allow`);
        }
      }
      let res: Response;
      try {
        res = await fetch(url, { method, headers: sent, body: body === undefined ? undefined : x.secrets.reveal(body), redirect: "manual", signal: controller.signal });
      } catch {
        if (controller.signal.aborted) throw timedOut();
        throw new CallFailure(FAILURE.upstream, `${x.what}: ${hostOf(url)} could not be reached`, { reason: "EXTERNAL_API_ERROR" });
      }
      if (res.status < 300 || res.status > 399 || res.status === 304) {
        return { status: res.status, headers: res.headers, bytes: await bounded(res, controller, timedOut, x.what) };
      }
      await res.body?.cancel();
      const location = res.headers.get("location");
      const next = location && URL.canParse(location, url) ? new URL(location, url) : null;
      if (!next || hop >= MAX_REDIRECTS) {
        const detail = !location ? "without a Location" : !next ? "to an address that is not a URL" : `more than ${MAX_REDIRECTS} times`;
        throw new CallFailure(FAILURE.upstream, `${x.what}: ${hostOf(url)} redirected (HTTP ${res.status}) ${detail}`, { reason: "EXTERNAL_API_ERROR" });
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
        method = "GET";
        body = undefined;
      }
      if (next.origin !== new URL(url).origin) {
        headers = headers.filter(([, value]) => !x.secrets.holds(value));
        if (body !== undefined && x.secrets.holds(body)) throw new CallFailure(FAILURE.blocked, `${x.what}: a redirect to ${next.host} would carry secrets to another origin`);
      }
      url = next.toString();
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The whole body, refused past MAX_RESPONSE_BYTES; the exchange's timeout also bounds reading it. */
async function bounded(res: Response, controller: AbortController, timedOut: () => CallFailure, what: string): Promise<Uint8Array> {
  const tooLarge = () => new CallFailure(FAILURE.upstream, `${what}: the answer is larger than ${MAX_RESPONSE_BYTES} bytes`, { reason: "EXTERNAL_API_ERROR" });
  if (Number(res.headers.get("content-length") ?? NaN) > MAX_RESPONSE_BYTES) {
    await res.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  while (reader) {
    let read;
    try {
      read = await reader.read();
    } catch {
      throw controller.signal.aborted ? timedOut() : new CallFailure(FAILURE.upstream, `${what}: the answer broke off`, { reason: "EXTERNAL_API_ERROR" });
    }
    if (read.done) break;
    size += read.value.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(read.value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) bytes.set(c, (at += c.byteLength) - c.byteLength);
  return bytes;
}

/** JSON when the bytes parse as JSON, else the text; null for an empty body. */
function parsedBody(bytes: Uint8Array): unknown {
  const text = new TextDecoder().decode(bytes);
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// ---- credentials -------------------------------------------------------------------------------

interface Credentials {
  header: string;
  value: () => string;
  /** Replaces a cached OAuth token the partner refused; false when there was none to replace. */
  renew?: () => Promise<boolean>;
}

/**
 * The header connector_config.auth adds to every call: an API key, a bearer token, or an OAuth2
 * client-credentials token held (and shared with the file proxy) by the integration's
 * FileProxyTokens object. Every value is a secret placeholder.
 */
async function credentials(env: ManagedCallEnv, integrationId: string, auth: ManagedCallAuth | undefined, view: Record<string, unknown>, secrets: Secrets, policy: DestinationPolicy, timeoutMs: number): Promise<Credentials | null> {
  if (!auth) return null;
  const text = (template: string | undefined) => (template === undefined ? "" : secrets.reveal(renderTemplate(template, view, "text", secrets)));
  if (auth.type === "api_key") {
    const value = secrets.hold(text(auth.api_key));
    return { header: (auth.api_key_header ?? "X-API-Key").toLowerCase(), value: () => value };
  }
  if (auth.type === "bearer") {
    const value = secrets.hold(`Bearer ${text(auth.token)}`);
    return { header: "authorization", value: () => value };
  }
  const tokenText = secrets.reveal(renderTemplate(auth.token_url!, view, "url", secrets));
  if (!URL.canParse(tokenText)) throw new CallFailure(FAILURE.configuration, "connector_config.auth.token_url did not render to a URL");
  const tokenUrl = new URL(tokenText);
  for (const [k, template] of Object.entries(auth.query_params ?? {})) tokenUrl.searchParams.set(k, text(template));
  // The token URL is the configuration's own: any public host, never a private one (unless allow-listed).
  const why = await refusal(tokenUrl.toString(), { allowed: () => true, policy });
  if (why) throw new CallFailure(FAILURE.blocked, `token_url refused: ${secrets.mask(why)}`, { reason: "SSRF_BLOCKED" });
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: text(auth.client_id), client_secret: text(auth.client_secret) });
  for (const [k, template] of [["scope", auth.scope], ["audience", auth.audience], ["resource", auth.resource]] as const) if (template !== undefined) form.set(k, text(template));
  for (const [k, template] of Object.entries(auth.body_params ?? {})) form.set(k, text(template));
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  for (const [k, template] of Object.entries(auth.headers ?? {})) {
    const value = text(template);
    if (/[\r\n\0]/.test(value)) throw new CallFailure(FAILURE.configuration, `auth header '${k}' rendered to a value HTTP does not allow`);
    headers[k.toLowerCase()] = value;
  }
  const request: TokenRequest = { url: tokenUrl.toString(), headers, body: form.toString(), timeoutMs };
  const key = await sha256Hex(JSON.stringify(["managed-call", request.url, request.headers, request.body]));
  const stub = env.FILE_PROXY_TOKENS.get(env.FILE_PROXY_TOKENS.idFromName(integrationId));
  let current = "";
  let cached = false;
  let slot = "";
  const fetchToken = async (stale?: string) => {
    const answer = await stub.token(key, request, stale);
    if (!answer.ok) throw new CallFailure(answer.kind === "timeout" ? FAILURE.timeout : FAILURE.upstream, `OAuth2 token request failed: ${secrets.mask(answer.message)}`, { reason: "EXTERNAL_API_ERROR", ...(answer.status && { status: answer.status }) });
    current = answer.access_token;
    cached = !answer.fetched;
    slot = secrets.hold(`${/^bearer$/i.test(answer.token_type) ? "Bearer" : answer.token_type} ${answer.access_token}`);
  };
  await fetchToken();
  const renew = async () => {
    if (!cached) return false;
    await fetchToken(current);
    return true;
  };
  return { header: "authorization", value: () => slot, renew };
}

/** Failures of our own as they are; a template over its budget as the configuration's; anything else logged and told as an execution error. */
function failureOf(err: unknown, secrets: Secrets): AppError {
  if (err instanceof AppError) return new AppError(err.code, secrets.mask(err.message), err.details, err.headers);
  if (err instanceof TemplateError) return new AppError(FAILURE.configuration, `A template of the use case failed: ${secrets.mask(err.message)}`);
  console.error(JSON.stringify({ level: "error", message: "managed call failed unexpectedly", error: secrets.mask(String((err as Error)?.message ?? err)) }));
  return new AppError(FAILURE.upstream, "The call to the partner API failed", { reason: "MANAGED_CALL_EXECUTION_ERROR" });
}

// ---- managed calls -----------------------------------------------------------------------------

/** The base URL a connector's calls stay below, rendered (it may read `{{{env.KEY}}}`) and parsed. */
function baseUrlOf(connector: ConnectorConfig | undefined, view: Record<string, unknown>, secrets: Secrets): CanonicalDestination {
  if (!connector?.base_url) throw new CallFailure(FAILURE.configuration, "The integration has no connector_config.base_url to call");
  const text = secrets.reveal(renderTemplate(connector.base_url, view, "url", secrets));
  const parsed = parseDestination(text);
  if (typeof parsed === "string") throw new CallFailure(FAILURE.blocked, `connector_config.base_url refused: ${secrets.mask(parsed)}`, { reason: "SSRF_BLOCKED" });
  return parsed;
}

/** Whether `host` on `port` is the base URL's own (the one host a connector's calls and credentials go to). */
const onHost = (base: CanonicalDestination) => (host: string, port: string) => host === base.host && port === base.port;

export interface ManagedCallResult {
  body: unknown;
  correlationId: string;
}

/**
 * Runs the integration's managed_call use case `slug` with the caller's payload: the operation's
 * path, query and headers rendered over the payload (and `env`), the body from request_mapping (or
 * the payload), sent below connector_config.base_url with its credentials; the answer mapped by
 * response_mapping (or returned as it is).
 */
export async function executeManagedCall(env: ManagedCallEnv, tenantId: string, slug: string, input: ManagedCallExecuteRequest): Promise<ManagedCallResult> {
  const integration = await integrationForEvents(env.DB, tenantId, input.integration_id);
  const uc = useCasesOf(integration).find((u) => u.type === "managed_call" && u.slug === slug);
  if (!uc) throw new AppError("NOT_FOUND", `Managed call '${slug}' not found in integration '${input.integration_id}'`);
  if (!uc.enabled) throw new AppError("NOT_FOUND", `Managed call '${slug}' is disabled`);
  const parsed = ManagedCallConfiguration.safeParse(uc.configuration);
  if (!parsed.success) throw new AppError(FAILURE.configuration, `The stored configuration of '${slug}' does not validate; save it again`);
  const environment = await resolveEnvironment(env, tenantId, input.integration_id);
  const secrets = new Secrets();
  try {
    return { body: await runManagedCall(env, input.integration_id, parsed.data, connectorOf(integration), environment, input.payload ?? {}, secrets), correlationId: input.correlation_id ?? newUuid() };
  } catch (err) {
    throw failureOf(err, secrets);
  }
}

/**
 * One managed call, given its configuration and the integration's decrypted environment: what
 * executeManagedCall runs once it has found them. Exported for tests beside this module.
 */
export async function runManagedCall(
  env: ManagedCallEnv,
  integrationId: string,
  config: ManagedCallConfiguration,
  connector: ConnectorConfig | undefined,
  environment: Record<string, string>,
  payload: Record<string, unknown>,
  secrets: Secrets,
): Promise<unknown> {
  const policy = destinationPolicy({ OUTBOUND_ALLOWED_PRIVATE_HOSTS: env.FILE_PROXY_ALLOWED_PRIVATE_HOSTS, OUTBOUND_DNS_CHECK: env.OUTBOUND_DNS_CHECK });
  const timeoutMs = config.timeout_seconds * 1000;
  const envView = record(Object.entries(environment).map(([k, v]) => [k, secrets.hold(v)]));
  // The payload's own fields are the template's names; `env` is always the integration's environment.
  const view = record<unknown>([...Object.entries(payload), ["env", envView]]);
  const destination = baseUrlOf(connector, record([["env", envView]]), secrets);
  const base = destination.url;
  const allowed = onHost(destination);
  const op = config.operation;
  const path = renderTemplate(op.path, view, "url", secrets);
  const basePath = base.pathname.replace(/\/$/, "");
  let url = `${base.origin}${basePath}${path.startsWith("/") || path === "" ? "" : "/"}${path}`;
  const query = Object.entries(op.query_params ?? {}).map(([k, template]) => `${encodeURIComponent(k)}=${secrets.urlEncode(renderTemplate(template, view, "text", secrets))}`);
  if (query.length > 0) url += `${url.includes("?") ? "&" : "?"}${query.join("&")}`;
  // The payload fills the path, never the host: the URL must stay on base_url's origin and below its path.
  const revealed = secrets.reveal(url);
  const final = URL.canParse(revealed) ? new URL(revealed) : null;
  if (!final || final.origin !== base.origin || !(final.pathname === basePath || final.pathname.startsWith(`${basePath}/`) || basePath === "")) {
    throw new CallFailure(FAILURE.blocked, "The operation's path leaves connector_config.base_url", { reason: "SSRF_BLOCKED" });
  }
  const auth = await credentials(env, integrationId, connector?.auth, record([["env", envView]]), secrets, policy, timeoutMs);
  const hasBody = op.method !== "GET" && op.method !== "DELETE";
  let body: string | undefined;
  if (hasBody) {
    const mapped = config.request_mapping ? await mapping(config.request_mapping, payload, "request_mapping") : payload;
    body = JSON.stringify(mapped ?? null);
  }
  const send = () => {
    const headers: [string, string][] = [["accept", "application/json"]];
    if (hasBody) headers.push(["content-type", "application/json"]);
    for (const [name, template] of Object.entries(op.headers ?? {})) headers.push([name.toLowerCase(), renderTemplate(template, view, "text", secrets)]);
    if (auth) headers.push([auth.header, auth.value()]);
    return exchange({ url, method: op.method, headers, body, allowed, policy, timeoutMs, secrets, what: "The partner API" });
  };
  let answer = await send();
  if (answer.status === 401 && auth?.renew && (await auth.renew())) answer = await send();
  const result = parsedBody(answer.bytes);
  if (answer.status < 200 || answer.status > 299) {
    const shown = typeof result === "string" ? result : JSON.stringify(result);
    throw new CallFailure(FAILURE.upstream, `The partner API answered HTTP ${answer.status}`, {
      reason: "EXTERNAL_API_ERROR",
      status: answer.status,
      body: secrets.mask(shown ?? "").slice(0, MAX_ERROR_BODY),
    });
  }
  // A partner echoing a credential back never hands it to the caller.
  return maskDeep(config.response_mapping ? await mapping(config.response_mapping, result, "response_mapping") : result, secrets);
}

/** A request or response mapping over `input`; a failing expression is the configuration's failure. */
async function mapping(expression: string, input: unknown, what: string): Promise<unknown> {
  try {
    return await evaluateExpression(expression, input);
  } catch (err) {
    if (err instanceof ExpressionError) throw new CallFailure(FAILURE.upstream, `${what}: ${err.message}`, { reason: "MANAGED_CALL_EXECUTION_ERROR" });
    throw err;
  }
}

// ---- secure proxy ------------------------------------------------------------------------------

/** Headers a caller may not set on the proxied request (the connection's own, and routing). */
const HOP_HEADERS = new Set(["host", "connection", "content-length", "transfer-encoding", "te", "trailer", "upgrade", "keep-alive", "proxy-authorization", "proxy-connection", "cf-connecting-ip", "x-forwarded-for", "x-real-ip"]);

/** Whether `address` lies in one of the CIDR ranges (allowed_ips). */
function inRanges(address: string, ranges: readonly string[]): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.process(address);
  return ranges.some((range) => {
    try {
      const [net, bits] = ipaddr.parseCIDR(range);
      return ip.kind() === net.kind() && ip.match([net, bits] as never);
    } catch {
      return false;
    }
  });
}

/**
 * Forwards one request to a host the integration's secure_proxy use case allows (its
 * allowed_domains, and for static_ip also connector_config.base_url's host), with the connector's
 * credentials when the target is base_url's host. Answers the upstream status, headers and body.
 */
export async function secureProxy(env: ManagedCallEnv, tenantId: string, input: SecureProxyRequest): Promise<SecureProxyResponse> {
  const integration = await integrationForEvents(env.DB, tenantId, input.integration_id);
  const uc = useCasesOf(integration).find((u) => u.type === "secure_proxy" && (input.use_case_id !== undefined ? u.id === input.use_case_id : u.slug === input.use_case_slug));
  if (!uc) throw new AppError("NOT_FOUND", `Secure proxy use case '${input.use_case_id ?? input.use_case_slug}' not found in integration '${input.integration_id}'`);
  if (!uc.enabled) throw new AppError("FORBIDDEN", `Secure proxy use case '${uc.slug ?? uc.id}' is disabled`);
  const parsed = SecureProxyConfiguration.safeParse(uc.configuration);
  if (!parsed.success) throw new AppError(FAILURE.configuration, "The secure proxy's stored configuration does not validate; save it again");
  const config = parsed.data;
  const target = parseDestination(input.url);
  if (typeof target === "string") throw new AppError("BAD_REQUEST", `url refused: ${target}`);
  if (!input.method.match(/^(POST|PUT|PATCH)$/) && input.body !== undefined) throw new AppError("BAD_REQUEST", `A ${input.method} request has no body`);

  const secrets = new Secrets();
  try {
    const connector = connectorOf(integration);
    const environment = await resolveEnvironment(env, tenantId, input.integration_id);
    const envView = record([["env", record(Object.entries(environment).map(([k, v]) => [k, secrets.hold(v)]))]]);
    const onBase = connector?.base_url ? onHost(baseUrlOf(connector, envView, secrets)) : () => false;
    const domains = config.allowed_domains ?? [];
    const allowed = (host: string, port: string) => {
      if (config.allowed_ips?.length && ipaddr.isValid(host) && !inRanges(host, config.allowed_ips)) return false;
      return domains.some((d) => hostEntryCovers(d, host, port)) || (config.vpc_mode === "static_ip" && onBase(host, port));
    };
    if (!allowed(target.host, target.port)) throw new AppError(FAILURE.forbidden, `Target host '${target.host}' is not whitelisted for this secure proxy`);
    const policy = destinationPolicy({ OUTBOUND_ALLOWED_PRIVATE_HOSTS: env.FILE_PROXY_ALLOWED_PRIVATE_HOSTS, OUTBOUND_DNS_CHECK: env.OUTBOUND_DNS_CHECK });
    const why = await refusal(input.url, { allowed, policy });
    if (why) throw new AppError(FAILURE.forbidden, `Target refused: ${why}`);

    const headers: [string, string][] = Object.entries(input.headers ?? {})
      .filter(([name]) => !HOP_HEADERS.has(name.toLowerCase()))
      .map(([name, value]) => [name.toLowerCase(), value]);
    let body: string | undefined;
    if (input.body !== undefined) {
      body = typeof input.body === "string" ? input.body : JSON.stringify(input.body);
      if (typeof input.body !== "string" && !headers.some(([n]) => n === "content-type")) headers.push(["content-type", "application/json"]);
    }
    // The connector's credentials go only to its own host, never to another allowed domain.
    const auth = onBase(target.host, target.port) ? await credentials(env, input.integration_id, connector?.auth, envView, secrets, policy, SECURE_PROXY_TIMEOUT_MS) : null;
    const send = () => exchange({ url: input.url, method: input.method, headers: auth ? [...headers.filter(([n]) => n !== auth.header), [auth.header, auth.value()]] : headers, body, allowed, policy, timeoutMs: SECURE_PROXY_TIMEOUT_MS, secrets, what: "The proxied target" });
    let answer = await send();
    if (answer.status === 401 && auth?.renew && (await auth.renew())) answer = await send();
    const responseHeaders: Record<string, string> = {};
    for (const [name, value] of answer.headers) if (name !== "set-cookie") responseHeaders[name] = secrets.mask(value);
    const responseBody =
      input.response_type === "binary"
        ? btoa(Array.from(answer.bytes, (b) => String.fromCharCode(b)).join(""))
        : maskDeep(parsedBody(answer.bytes), secrets);
    return { status_code: answer.status, headers: responseHeaders, body: responseBody };
  } catch (err) {
    throw failureOf(err, secrets);
  }
}

/** A parsed answer with every secret the target echoed masked (strings only; structure kept). */
function maskDeep(value: unknown, secrets: Secrets): unknown {
  if (typeof value === "string") return secrets.mask(value);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, secrets));
  if (value && typeof value === "object") return record(Object.entries(value).map(([k, v]) => [k, maskDeep(v, secrets)]));
  return value;
}
