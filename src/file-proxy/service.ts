// The file proxy (issue #13, docs/file-proxy.md): a download runs the use case's steps against the
// archive, each URL checked against the use case's allowed hosts and the address rules before it is
// called, and streams the chosen step's body to the client without holding the file.
import { sha256Hex } from "../platform/crypto";
import { effectiveAllowedHosts, FileProxyConfiguration, hostAllowed, type FileProxyStep } from "../integrations/file-proxy-configuration";
import { fileProxyUseCase, resolveEnvironment } from "../integrations/service";
import { ExpressionError, evaluateExpression } from "../mapping/expression";
import { checkDestination, DestinationLookupError, destinationPolicy, parseDestination, type DestinationPolicy } from "../platform/destination";
import { AppError, type ErrorCode } from "../platform/errors";
import { newId, nowIso } from "../platform/ids";
import { takeOrThrow } from "../platform/rate-limit";
import { renderTemplate, Secrets, TemplateError } from "../platform/template";
import { recordDownloadStatement, type DownloadRecord } from "./downloads-log";
import { MAX_URL_LIFETIME_S, type FileUrlRequest } from "./schema";
import { fileUrl, fileUrlProblem } from "./signing";
import type { TokenRequest } from "./tokens-do";

export type FileProxyEnv = Pick<Env, "DB" | "SECRETS_KEY" | "RATE_LIMITER" | "FILE_PROXY_TOKENS"> &
  Partial<Pick<Env, "FILE_PROXY_ALLOWED_PRIVATE_HOSTS" | "FILE_PROXY_RATE_LIMIT_PER_SECOND" | "FILE_PROXY_SOURCE_RATE_LIMIT_PER_SECOND" | "OUTBOUND_DNS_CHECK">>;

/** Largest JSON answer of a step (a base64 file inside JSON included). */
export const MAX_JSON_STEP_BYTES = 16 * 1024 * 1024;
/** Redirects followed per step, each to an allowed host. */
const MAX_REDIRECTS = 5;
/** Longest parameter value. */
const MAX_PARAM_LENGTH = 1024;

/** What a download is asked with: the URL's query (minus its own fields) and how the caller proved itself. */
export interface DownloadRequest {
  integrationId: string;
  useCaseSlug: string;
  params: Record<string, string>;
  /** A signed URL's expiry and signature, or the tenant of a `files:read` token. */
  auth: { kind: "signature"; exp: string; sig: string; source: string } | { kind: "token"; tenantId: string };
  range?: string | null;
  ifRange?: string | null;
}

/** A failure the client is told about, with the error category its download-log row gets. */
class DownloadFailure extends AppError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly category: "validation" | "configuration" | "downstream" | "timeout" | "system",
    headers?: Record<string, string>,
  ) {
    super(code, message, undefined, headers);
  }
}

const archiveFailure = (status: number, step: number): DownloadFailure => {
  if (status === 404 || status === 410) return new DownloadFailure("NOT_FOUND", `The archive has no such document (step ${step} answered HTTP ${status})`, "downstream");
  if (status === 401 || status === 403) return new DownloadFailure("ARCHIVE_AUTH_FAILED", `The archive refused the credentials (step ${step} answered HTTP ${status})`, "downstream");
  if (status === 408 || status === 504) return new DownloadFailure("ARCHIVE_TIMEOUT", `The archive timed out (step ${step} answered HTTP ${status})`, "timeout");
  return new DownloadFailure("ARCHIVE_ERROR", `The archive failed (step ${step} answered HTTP ${status})`, "downstream");
};

/** Parsed configurations by stored text: a download re-validates what it runs, once per isolate and text. */
const parsedConfigs = new Map<string, FileProxyConfiguration | null>();
function configurationOf(text: string): FileProxyConfiguration | null {
  if (parsedConfigs.has(text)) return parsedConfigs.get(text)!;
  let parsed: FileProxyConfiguration | null = null;
  try {
    const result = FileProxyConfiguration.safeParse(JSON.parse(text));
    parsed = result.success ? result.data : null;
  } catch {
    parsed = null;
  }
  if (parsedConfigs.size >= 200) parsedConfigs.delete(parsedConfigs.keys().next().value!);
  parsedConfigs.set(text, parsed);
  return parsed;
}

/** A JSON object without a prototype, so nothing a template or expression reads can be inherited. */
const record = <T>(entries: Iterable<[string, T]>): Record<string, T> => Object.assign(Object.create(null) as Record<string, T>, Object.fromEntries(entries));

/** One step's answer as templates and expressions see it. */
interface StepView {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** How a binary step's body appears to expressions: `steps[i].body` yields this marker. */
const binaryMarker = (step: number) => ({ $binary_step: step });

/** The state of one download, for the monitoring row. */
interface Trace {
  archiveStatus: number | null;
  secrets: Secrets;
}

/**
 * Serves one download: authenticates it, runs the steps and answers the file as a stream. Every
 * outcome (served or refused after the use case was found) is recorded through `waitUntil`.
 */
export async function download(env: FileProxyEnv, req: DownloadRequest, waitUntil: (p: Promise<unknown>) => void): Promise<Response> {
  const receivedAt = nowIso();
  const started = Date.now();
  if (req.auth.kind === "signature") {
    // Before anything is read: an unauthenticated flood is held at its source.
    const perSecond = Number(env.FILE_PROXY_SOURCE_RATE_LIMIT_PER_SECOND ?? 50) || 50;
    await takeOrThrow(env, `file-source:${req.auth.source}`, perSecond, "Download rate limit for this source");
  }
  const useCase = await fileProxyUseCase(env.DB, req.integrationId, req.useCaseSlug);
  if (!useCase || (req.auth.kind === "token" && useCase.tenantId !== req.auth.tenantId)) {
    throw new AppError(req.auth.kind === "signature" ? "FORBIDDEN" : "NOT_FOUND", req.auth.kind === "signature" ? "Invalid download signature" : `File proxy use case '${req.useCaseSlug}' not found in integration '${req.integrationId}'`);
  }
  if (req.auth.kind === "signature") {
    const exp = /^\d{1,12}$/.test(req.auth.exp) ? Number(req.auth.exp) : NaN;
    const problem = Number.isNaN(exp)
      ? "bad_signature"
      : await fileUrlProblem(env.SECRETS_KEY, { tenantId: useCase.tenantId, integrationId: req.integrationId, useCaseSlug: req.useCaseSlug, useCaseId: useCase.id, params: req.params, exp }, req.auth.sig);
    if (problem === "expired") throw new AppError("FORBIDDEN", "This download link has expired");
    if (problem) throw new AppError("FORBIDDEN", "Invalid download signature");
  }
  const tenantId = useCase.tenantId;
  const perSecond = Number(env.FILE_PROXY_RATE_LIMIT_PER_SECOND ?? 20) || 20;
  await takeOrThrow(env, `files:${tenantId}`, perSecond, "Tenant download rate limit");

  const trace: Trace = { archiveStatus: null, secrets: new Secrets() };
  const logDownload = (outcome: Omit<DownloadRecord, "id" | "tenantId" | "integrationId" | "useCaseSlug" | "params" | "auth" | "receivedAt" | "completedAt" | "durationMs" | "archiveStatus" | "range">) =>
    recordDownloadStatement(env.DB, {
        id: newId(),
        tenantId,
        integrationId: req.integrationId,
        useCaseSlug: req.useCaseSlug,
        params: Object.fromEntries(Object.entries(req.params).map(([k, v]) => [k, trace.secrets.mask(v)])),
        auth: req.auth.kind,
        receivedAt,
        completedAt: nowIso(),
        durationMs: Date.now() - started,
        archiveStatus: trace.archiveStatus,
        range: req.range ?? null,
        ...outcome,
        ...(outcome.errorMessage !== undefined && { errorMessage: trace.secrets.mask(outcome.errorMessage) }),
      })
      .run()
      .catch((err: Error) => console.error(JSON.stringify({ level: "error", message: "download log write failed", error: err.message })));
  try {
    if (!useCase.enabled) throw new DownloadFailure("NOT_FOUND", `File proxy use case '${req.useCaseSlug}' is disabled`, "configuration");
    const config = configurationOf(useCase.configuration);
    if (!config) throw new DownloadFailure("ARCHIVE_ERROR", "The use case's stored configuration no longer validates; save it again", "configuration");
    const params = checkedParams(config, req.params);
    const answer = await run(env, tenantId, req, config, params, trace);
    const { response, finished } = streamed(answer);
    waitUntil(
      finished.then(({ bytes, completed }) =>
        logDownload({ status: completed ? "success" : "error", httpStatus: answer.status, bytes, ...(!completed && { errorCode: "TRANSFER_ABORTED", errorMessage: "the transfer did not complete", errorCategory: "system" }) }),
      ),
    );
    return response;
  } catch (caught) {
    const err = failureOf(caught, trace.secrets);
    const masked = new AppError(err.code, trace.secrets.mask(err.message), err.details, err.headers);
    waitUntil(logDownload({ status: "error", httpStatus: err.status, bytes: 0, errorCode: err.code, errorMessage: masked.message, errorCategory: err instanceof DownloadFailure ? err.category : "validation" }));
    throw masked;
  }
}

/**
 * What a failure is told as: our own errors as they are; a template over its budget and anything
 * else (a value HTTP or the URL parser refuses, a bug) as an archive error of this download, logged,
 * so no archive answer or configuration can make the proxy answer 500.
 */
function failureOf(err: unknown, secrets: Secrets): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof TemplateError) return new DownloadFailure("ARCHIVE_ERROR", `A template of the use case failed: ${err.message}`, "configuration");
  console.error(JSON.stringify({ level: "error", message: "download failed unexpectedly", error: secrets.mask(String((err as Error)?.message ?? err)) }));
  return new DownloadFailure("ARCHIVE_ERROR", "The download failed while talking to the archive", "system");
}

/** Signs a download URL for one of the tenant's file_proxy use cases (POST /v1/files/sign). */
export async function signedFileUrl(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, origin: string, body: FileUrlRequest) {
  const useCase = await fileProxyUseCase(env.DB, body.integration_id, body.use_case_slug);
  if (!useCase || useCase.tenantId !== tenantId) throw new AppError("NOT_FOUND", `File proxy use case '${body.use_case_slug}' not found in integration '${body.integration_id}'`);
  if (!useCase.enabled) throw new AppError("NOT_FOUND", `File proxy use case '${body.use_case_slug}' is disabled`);
  const config = configurationOf(useCase.configuration);
  if (!config) throw new AppError("UNPROCESSABLE", "The use case's stored configuration no longer validates; save it again");
  const params = checkedParams(config, body.params);
  const exp = Math.floor(Date.now() / 1000) + body.expires_in;
  const url = await fileUrl(origin, env.SECRETS_KEY, { tenantId, integrationId: body.integration_id, useCaseSlug: body.use_case_slug, useCaseId: useCase.id, params, exp });
  return { url, expires_at: new Date(exp * 1000).toISOString() };
}

/** The origin of links minted outside a request: PUBLIC_URL, else the local `npm start`. */
export const publicOrigin = (env: Partial<Pick<Env, "PUBLIC_URL">>) => (env.PUBLIC_URL ? new URL(env.PUBLIC_URL).origin : "http://localhost:8787");

/** Expiry of URLs that do not expire (a use case without url_expires_in): 2100-01-01. */
const NEVER = Date.UTC(2100, 0, 1) / 1000;

/**
 * The signer mappings use for `file_proxy_url` while events are processed: URLs under `origin` for
 * one integration. A use case's url_expires_in sets their lifetime (rounded up to the hour, so an
 * entity mapped twice in an hour keeps the same URL); without one they do not expire.
 */
export function fileUrlSigner(env: Pick<Env, "DB" | "SECRETS_KEY">, tenantId: string, integrationId: string, origin: string) {
  // Each use case is read once per signer (one event), only when a mapping produces a link to it.
  const useCases = new Map<string, Promise<{ id: string; lifetime?: number }>>();
  const useCaseOf = (slug: string) => {
    if (!useCases.has(slug)) {
      useCases.set(
        slug,
        // A link to a use case that does not exist (yet) is signed for none and never opens.
        fileProxyUseCase(env.DB, integrationId, slug).then((uc) => ({ id: uc?.id ?? "", lifetime: uc ? configurationOf(uc.configuration)?.url_expires_in : undefined })),
      );
    }
    return useCases.get(slug)!;
  };
  return async (useCaseSlug: string, params: Record<string, string>): Promise<string> => {
    const { id, lifetime } = await useCaseOf(useCaseSlug);
    const exp = lifetime === undefined ? NEVER : Math.ceil((Date.now() / 1000 + Math.min(lifetime, MAX_URL_LIFETIME_S)) / 3600) * 3600;
    return fileUrl(origin, env.SECRETS_KEY, { tenantId, integrationId, useCaseSlug, useCaseId: id, params, exp });
  };
}

/** The declared parameters from the query: unknown ones refused, required ones present, values bounded. */
function checkedParams(config: FileProxyConfiguration, given: Record<string, string>): Record<string, string> {
  const declared = new Set(config.params.map((p) => p.name));
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) throw new DownloadFailure("BAD_REQUEST", `Unknown parameter '${name}'; this use case takes ${[...declared].map((n) => `'${n}'`).join(", ") || "no parameters"}`, "validation");
    if (given[name]!.length > MAX_PARAM_LENGTH) throw new DownloadFailure("BAD_REQUEST", `Parameter '${name}' is longer than ${MAX_PARAM_LENGTH} characters`, "validation");
  }
  for (const p of config.params) {
    if (p.required && (given[p.name] === undefined || given[p.name] === "")) throw new DownloadFailure("BAD_REQUEST", `Missing required parameter '${p.name}'`, "validation");
  }
  return record(Object.entries(given));
}

interface Answer {
  status: 200 | 206;
  body: ReadableStream<Uint8Array> | Uint8Array;
  headers: Headers;
  /** The step answer whose body this is, if it is one. */
  from: Response | null;
}

/** A header value from a template; one the Headers API refuses (a line break, say) fails the download, not the Worker. */
function setHeader(headers: Headers, name: string, value: string, step: number) {
  try {
    headers.set(name, value);
  } catch {
    throw new DownloadFailure("ARCHIVE_ERROR", `Step ${step}: header '${name}' rendered to a value HTTP does not allow`, "configuration");
  }
}

/** Runs the steps and picks the file: the whole archive conversation of one download. */
async function run(env: FileProxyEnv, tenantId: string, req: DownloadRequest, config: FileProxyConfiguration, params: Record<string, string>, trace: Trace): Promise<Answer> {
  const { secrets } = trace;
  const allowed = effectiveAllowedHosts(config);
  // The outbound rules with the file proxy's own allow-list, and DNS checks when OUTBOUND_DNS_CHECK is on.
  const policy = destinationPolicy({ OUTBOUND_ALLOWED_PRIVATE_HOSTS: env.FILE_PROXY_ALLOWED_PRIVATE_HOSTS, OUTBOUND_DNS_CHECK: env.OUTBOUND_DNS_CHECK });
  const timeoutMs = config.timeout_seconds * 1000;
  const environment = await resolveEnvironment(env, tenantId, req.integrationId);
  const view = {
    params,
    env: record(Object.entries(environment).map(([k, v]) => [k, secrets.hold(v)])),
    auth: record<string>([]),
    steps: [] as StepView[],
  };
  const auth = await authorization(env, req.integrationId, config, view, secrets, { allowed, policy, timeoutMs });
  const bodies: (Response | null)[] = [];
  let kept: Response | null = null;
  try {
    for (const [i, step] of config.steps.entries()) {
      const last = i === config.steps.length - 1;
      // A client's Range goes to the step that serves the file: the last one, when it is binary.
      const ranged = last && step.response_type === "binary" && req.range ? req.range : null;
      const send = async () => {
        // Header values stay masked (placeholders) here; `call` writes the secrets in.
        const headers: [string, string][] = [];
        if (auth) headers.push([auth.header, auth.value()]);
        for (const [name, template] of Object.entries(step.headers ?? {})) headers.push([name.toLowerCase(), renderTemplate(template, view, "text", secrets)]);
        // Compressed answers would not match their Content-Length once fetch decompresses them.
        if (step.response_type === "binary") headers.push(["accept-encoding", "identity"]);
        if (ranged) headers.push(["range", ranged]);
        if (ranged && req.ifRange) headers.push(["if-range", req.ifRange]);
        return call(renderTemplate(step.url, view, "url", secrets), step, headers, step.body === undefined ? undefined : renderTemplate(step.body, view, "text", secrets), { allowed, policy, timeoutMs, secrets, step: i });
      };
      let { res, settled } = await send();
      if (res.status === 401 && auth?.renew) {
        // A cached token may have been revoked before it expired: one new token, one more try.
        await res.body?.cancel();
        settled();
        if (await auth.renew()) ({ res, settled } = await send());
      }
      trace.archiveStatus = res.status;
      if (res.status === 416 && ranged) {
        await res.body?.cancel();
        settled();
        const contentRange = res.headers.get("content-range");
        throw new DownloadFailure("RANGE_NOT_SATISFIABLE", "The requested range is outside the file", "validation", contentRange ? { "content-range": contentRange } : undefined);
      }
      if (res.status < 200 || res.status > 299) {
        await res.body?.cancel();
        settled();
        throw archiveFailure(res.status, i);
      }
      const headers = record([...res.headers].map(([k, v]) => [k.toLowerCase(), secrets.mask(v)]));
      if (step.response_type === "json") {
        // The step's timeout also bounds reading its answer (an archive sending a byte at a time).
        const body = await jsonBody(res, i, timeoutMs).finally(settled);
        view.steps.push({ status: res.status, headers, body });
        bodies.push(null);
      } else {
        // A file may take long to stream: only the wait for its headers is bounded.
        settled();
        view.steps.push({ status: res.status, headers, body: binaryMarker(i) });
        bodies.push(res);
      }
    }
    const answer = await chosenFile(config, view, bodies, req);
    kept = answer.from;
    return answer;
  } finally {
    // Binary answers that were not chosen are released, never left open.
    for (const res of bodies) if (res && res !== kept) await res.body?.cancel().catch(() => undefined);
  }
}

interface CallPolicy {
  allowed: string[];
  policy: DestinationPolicy;
  timeoutMs: number;
}

/** Why the archive URL may not be called: outside the allowed hosts, or a private address. */
async function refusal(url: string, { allowed, policy }: CallPolicy): Promise<string | null> {
  const parsed = parseDestination(url);
  if (typeof parsed === "string") return parsed;
  if (!hostAllowed(allowed, parsed.host, parsed.port)) return `host '${parsed.host}' is not in the use case's allowed_hosts`;
  try {
    return await checkDestination(url, policy);
  } catch (err) {
    if (err instanceof DestinationLookupError) return err.message;
    throw err;
  }
}

/**
 * One archive request, following redirects only to allowed hosts. Headers and body arrive masked
 * (secrets as placeholders) and are revealed only into the request; on a hop to another origin every
 * header rendered from a secret is dropped, and a body holding one is not sent on. Messages name
 * hosts, never URLs (a URL may carry a secret). `settled` ends the timeout: the caller calls it once
 * the answer's body is read, or right away for a stream.
 */
async function call(maskedUrl: string, step: FileProxyStep, headers: [string, string][], maskedBody: string | undefined, p: CallPolicy & { secrets: Secrets; step: number }): Promise<{ res: Response; settled: () => void }> {
  let url = p.secrets.reveal(maskedUrl);
  let method: string = step.method;
  let masked = headers;
  let body = maskedBody;
  for (let hop = 0; ; hop++) {
    const why = await refusal(url, p);
    if (why) throw new DownloadFailure("ARCHIVE_HOST_REFUSED", `Step ${p.step}${hop ? ` (redirect ${hop})` : ""} refused: ${p.secrets.mask(why)}`, "configuration");
    const sent = new Headers();
    for (const [name, value] of masked) setHeader(sent, name, p.secrets.reveal(value), p.step);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException("timeout", "TimeoutError")), p.timeoutMs);
    const settled = () => clearTimeout(timer);
    let res: Response;
    try {
      res = await fetch(url, { method, headers: sent, body: body === undefined ? undefined : p.secrets.reveal(body), redirect: "manual", signal: controller.signal });
    } catch {
      settled();
      throw controller.signal.aborted
        ? new DownloadFailure("ARCHIVE_TIMEOUT", `The archive did not answer step ${p.step} within ${p.timeoutMs / 1000} s`, "timeout")
        : new DownloadFailure("ARCHIVE_ERROR", `The archive could not be reached at step ${p.step} (${hostOf(url)})`, "downstream");
    }
    if (res.status < 300 || res.status > 399 || res.status === 304) return { res, settled };
    await res.body?.cancel();
    settled();
    const location = res.headers.get("location");
    const next = location && URL.canParse(location, url) ? new URL(location, url) : null;
    if (!next || hop >= MAX_REDIRECTS) {
      const what = !location ? "without a Location" : !next ? "to an address that is not a URL" : `more than ${MAX_REDIRECTS} times`;
      throw new DownloadFailure("ARCHIVE_ERROR", `Step ${p.step}: the archive redirected (HTTP ${res.status}) ${what}`, "downstream");
    }
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
      method = "GET";
      body = undefined;
    }
    if (next.origin !== new URL(url).origin) {
      masked = masked.filter(([, value]) => !p.secrets.holds(value));
      if (body !== undefined && p.secrets.holds(body)) throw new DownloadFailure("ARCHIVE_ERROR", `Step ${p.step}: a redirect to ${next.host} would carry a body with secrets to another origin`, "configuration");
    }
    url = next.toString();
  }
}

/** A URL's host, for messages (never the whole URL). */
const hostOf = (url: string) => (URL.canParse(url) ? new URL(url).host : "an invalid URL");

/** A JSON step's answer, read up to MAX_JSON_STEP_BYTES within the step's timeout. */
async function jsonBody(res: Response, step: number, timeoutMs: number): Promise<unknown> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > MAX_JSON_STEP_BYTES) {
    await res.body?.cancel();
    throw new DownloadFailure("ARCHIVE_ERROR", `Step ${step} answered ${declared} bytes of JSON; at most ${MAX_JSON_STEP_BYTES} are read`, "downstream");
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (;;) {
    let read;
    try {
      read = reader ? await reader.read() : { done: true as const, value: undefined };
    } catch {
      throw new DownloadFailure("ARCHIVE_TIMEOUT", `The archive did not finish answering step ${step} within ${timeoutMs / 1000} s`, "timeout");
    }
    const { done, value } = read;
    if (done) break;
    size += value.byteLength;
    if (size > MAX_JSON_STEP_BYTES) {
      await reader!.cancel();
      throw new DownloadFailure("ARCHIVE_ERROR", `Step ${step} answered more than ${MAX_JSON_STEP_BYTES} bytes of JSON`, "downstream");
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) bytes.set(c, (at += c.byteLength) - c.byteLength);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new DownloadFailure("ARCHIVE_ERROR", `Step ${step} did not answer JSON`, "downstream");
  }
}

/** The `Authorization` (or api-key) header every step sends, and how to renew an OAuth token. */
interface StepAuth {
  header: string;
  value: () => string;
  /** Replaces a cached token the archive refused; false when there was none to replace. */
  renew?: () => Promise<boolean>;
}

async function authorization(
  env: FileProxyEnv,
  integrationId: string,
  config: FileProxyConfiguration,
  view: { auth: Record<string, string> } & Record<string, unknown>,
  secrets: Secrets,
  p: CallPolicy,
): Promise<StepAuth | null> {
  const auth = config.auth;
  if (!auth || auth.type === "none") return null;
  const text = (template: string | undefined) => (template === undefined ? "" : secrets.reveal(renderTemplate(template, view, "text", secrets)));
  if (auth.type === "basic") {
    const value = secrets.hold(`Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${text(auth.username)}:${text(auth.password)}`)))}`);
    return { header: "authorization", value: () => value };
  }
  if (auth.type === "api_key") {
    const value = secrets.hold(text(auth.value));
    return { header: auth.header!, value: () => value };
  }
  // OAuth2: the token request is rendered with its secrets, checked like any step, and sent by the
  // integration's FileProxyTokens object, which reuses the token until shortly before it expires.
  const tokenText = secrets.reveal(renderTemplate(auth.token_url!, view, "url", secrets));
  if (!URL.canParse(tokenText)) throw new DownloadFailure("ARCHIVE_HOST_REFUSED", "token_url did not render to a URL", "configuration");
  const tokenUrl = new URL(tokenText);
  for (const [k, template] of Object.entries(auth.query_params ?? {})) tokenUrl.searchParams.set(k, text(template));
  const why = await refusal(tokenUrl.toString(), p);
  if (why) throw new DownloadFailure("ARCHIVE_HOST_REFUSED", `token_url refused: ${secrets.mask(why)}`, "configuration");
  const form = new URLSearchParams({ grant_type: auth.type === "oauth2_password" ? "password" : "client_credentials", client_id: text(auth.client_id), client_secret: text(auth.client_secret) });
  if (auth.type === "oauth2_password") form.set("username", text(auth.username)), form.set("password", text(auth.password));
  for (const [k, template] of [["scope", auth.scope], ["audience", auth.audience], ["resource", auth.resource]] as const) if (template !== undefined) form.set(k, text(template));
  for (const [k, template] of Object.entries(auth.body_params ?? {})) form.set(k, text(template));
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  for (const [k, template] of Object.entries(auth.headers ?? {})) {
    const value = text(template);
    if (/[\r\n\0]/.test(value)) throw new DownloadFailure("ARCHIVE_ERROR", `auth header '${k}' rendered to a value HTTP does not allow`, "configuration");
    headers[k.toLowerCase()] = value;
  }
  const request: TokenRequest = { url: tokenUrl.toString(), headers, body: form.toString(), timeoutMs: p.timeoutMs };
  const key = await sha256Hex(JSON.stringify([request.url, request.headers, request.body]));
  const stub = env.FILE_PROXY_TOKENS.get(env.FILE_PROXY_TOKENS.idFromName(integrationId));
  let current = "";
  let cached = false;
  let slot = "";
  const fetchToken = async (stale?: string) => {
    const answer = await stub.token(key, request, stale);
    if (!answer.ok) {
      const code = answer.kind === "timeout" ? "ARCHIVE_TIMEOUT" : answer.kind === "unreachable" ? "ARCHIVE_ERROR" : "ARCHIVE_AUTH_FAILED";
      throw new DownloadFailure(code, `OAuth2 token request failed: ${answer.message}`, answer.kind === "timeout" ? "timeout" : "downstream");
    }
    current = answer.access_token;
    cached = !answer.fetched;
    slot = secrets.hold(`${/^bearer$/i.test(answer.token_type) ? "Bearer" : answer.token_type} ${answer.access_token}`);
    view.auth = record([["access_token", secrets.hold(answer.access_token)]]);
  };
  await fetchToken();
  // Only a token from the cache is renewed: one fetched for this download is as fresh as it gets, and
  // renewing it on every refused download would hammer the archive's token endpoint.
  const renew = async () => {
    if (!cached) return false;
    await fetchToken(current);
    return true;
  };
  return { header: "authorization", value: () => slot, renew };
}

/** Evaluates one of the response's JSONata expressions over { params, steps } (never env or auth). */
async function expression(text: string, input: unknown, what: string): Promise<unknown> {
  try {
    return await evaluateExpression(text, input);
  } catch (err) {
    if (err instanceof ExpressionError) throw new DownloadFailure("ARCHIVE_ERROR", `response.${what}: ${err.message}`, "configuration");
    throw err;
  }
}

/** The file the response's expressions choose, with its headers. */
async function chosenFile(config: FileProxyConfiguration, view: { params: Record<string, string>; steps: StepView[] }, bodies: (Response | null)[], req: DownloadRequest): Promise<Answer> {
  const input = { params: view.params, steps: view.steps };
  const chosen = await expression(config.response.body, input, "body");
  const [filename, contentType] = await Promise.all([
    config.response.filename ? expression(config.response.filename, input, "filename") : undefined,
    config.response.content_type ? expression(config.response.content_type, input, "content_type") : undefined,
  ]);
  const headers = new Headers({ "cache-control": "private, no-store", "x-content-type-options": "nosniff" });
  let answer: Answer;
  const stepIndex = chosen && typeof chosen === "object" && typeof (chosen as { $binary_step?: unknown }).$binary_step === "number" ? (chosen as { $binary_step: number }).$binary_step : -1;
  if (stepIndex >= 0 && bodies[stepIndex]) {
    const res = bodies[stepIndex]!;
    const last = stepIndex === bodies.length - 1;
    for (const name of ["content-type", "etag", "last-modified", "accept-ranges", "content-disposition"]) {
      const value = res.headers.get(name);
      if (value) headers.set(name, value);
    }
    const contentRange = res.headers.get("content-range");
    const partial = last && res.status === 206 && req.range && contentRange;
    if (partial) headers.set("content-range", contentRange);
    // A length is passed on only for an uncompressed answer: fetch decompresses, the length would not match.
    const length = res.headers.get("content-length");
    if (length && /^\d+$/.test(length) && !res.headers.has("content-encoding")) headers.set("content-length", length);
    answer = { status: partial ? 206 : 200, body: res.body ?? new Uint8Array(), headers, from: res };
  } else if (typeof chosen === "string") {
    let bytes: Uint8Array;
    if (config.response.encoding === "base64") {
      try {
        bytes = Uint8Array.from(atob(chosen.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
      } catch {
        throw new DownloadFailure("ARCHIVE_ERROR", "response.body is not valid base64", "downstream");
      }
    } else bytes = new TextEncoder().encode(chosen);
    headers.set("content-length", String(bytes.byteLength));
    answer = { status: 200, body: bytes, headers, from: null };
  } else {
    throw new DownloadFailure("ARCHIVE_ERROR", "response.body chose no file: it must yield a binary step's body (e.g. steps[1].body) or a string", "configuration");
  }
  if (typeof contentType === "string" && /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(\s*;[^\r\n]*)?$/.test(contentType)) headers.set("content-type", contentType);
  if (!headers.has("content-type")) headers.set("content-type", "application/octet-stream");
  const inline = INLINE_TYPES.test(headers.get("content-type")!);
  if (typeof filename === "string" && filename.trim()) headers.set("content-disposition", contentDisposition(filename, inline));
  else if (!inline || !headers.has("content-disposition")) headers.set("content-disposition", inline ? "inline" : "attachment");
  // Anything but passive media is downloaded, never rendered under the API's origin (no stored XSS),
  // and runs nothing if a browser renders it anyway.
  if (!inline) {
    headers.set("content-disposition", headers.get("content-disposition")!.replace(/^\s*inline\b/i, "attachment"));
    headers.set("content-security-policy", "sandbox; default-src 'none'");
  }
  return answer;
}

/** Types a browser may show inline: documents and media that run no script. Everything else is an attachment. */
const INLINE_TYPES = /^(application\/pdf|image\/(png|jpeg|gif|webp|avif|bmp|tiff)|text\/plain|audio\/[\w.+-]+|video\/[\w.+-]+)\s*(;|$)/i;

/**
 * The disposition with the filename twice (RFC 6266): an ASCII fallback in `filename`, and the
 * exact name in `filename*` as RFC 8187 UTF-8 percent-encoding. At most 200 code points.
 */
export function contentDisposition(filename: string, inline = true): string {
  const name = Array.from(filename.toWellFormed().replace(/[\u0000-\u001f\u007f/\\]/g, "_")).slice(0, 200).join("");
  const fallback = name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").replace(/[^\x20-\x7e]/g, "_").replace(/["%]/g, "_");
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${inline ? "inline" : "attachment"}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/**
 * The answer as a Response whose body streams from the archive; `finished` settles once, when the
 * stream ends or the client goes away. With a known length the bytes go through a FixedLengthStream
 * untouched by JavaScript (a byte counter in JS cost 2.5x the throughput, `npm run bench -- file-proxy`),
 * and a completed transfer is exactly that long; without one they are counted on the way.
 */
function streamed(answer: Answer): { response: Response; finished: Promise<{ bytes: number; completed: boolean }> } {
  const source = answer.body instanceof Uint8Array ? new Blob([answer.body]).stream() : answer.body;
  const length = answer.headers.get("content-length");
  const settle = (piped: Promise<void>, bytes: () => number) =>
    piped.then(
      () => ({ bytes: bytes(), completed: true }),
      () => ({ bytes: 0, completed: false }),
    );
  if (length) {
    const sink = new FixedLengthStream(Number(length));
    return { response: new Response(sink.readable, { status: answer.status, headers: answer.headers }), finished: settle(source.pipeTo(sink.writable), () => Number(length)) };
  }
  let bytes = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      bytes += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  const sink = new IdentityTransformStream();
  return { response: new Response(sink.readable, { status: answer.status, headers: answer.headers }), finished: settle(source.pipeThrough(counter).pipeTo(sink.writable), () => bytes) };
}
