// Edge behaviour every route inherits: request ids, body size limits, JSON-only bodies.
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { requestId } from "hono/request-id";
import type { AppEnv } from "./app";
import { AppError } from "./errors";
import { configChanged } from "./config-cache";
import { newId } from "./ids";
import { assertJsonDepth, decodeUtf8 } from "./json";

export const MAX_BODY_BYTES = 1024 * 1024;
/** A registry upload: an archive of up to 10 MB, plus room for the multipart framing and signature. */
export const MAX_UPLOAD_BYTES = 11 * 1024 * 1024;

/** The one route whose body is not JSON and may exceed MAX_BODY_BYTES: publishing a package. */
const isUpload = (method: string, path: string) => method === "POST" && path === "/v1/registry/packages";

/** `x-request-id` on every response: the caller's (if sane) or a new ULID. */
export const requestIds = requestId({ generator: () => newId() });

const limitOf = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new AppError("PAYLOAD_TOO_LARGE", `Request body exceeds ${maxSize} bytes`, { max_bytes: maxSize });
    },
  });
const jsonLimit = limitOf(MAX_BODY_BYTES);

/**
 * MAX_UPLOAD_BYTES for a package upload. Not applied here but by the upload route after its token
 * check: a body without Content-Length is read to be counted, and an anonymous client must not get
 * the host to buffer 11 MB.
 */
export const limitUpload = limitOf(MAX_UPLOAD_BYTES);

/** MAX_BODY_BYTES for every body but a package upload's (limitUpload, in its route). */
export const limitBody = createMiddleware<AppEnv>((c, next) => (isUpload(c.req.method, c.req.path) ? next() : jsonLimit(c, next)));

const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json(\s*;.*)?$/i;

/**
 * Signed webhooks take the sender's own body as is; the signature, not the media type, decides.
 * A package upload is multipart/form-data: its route checks the media type, the registry the fields.
 */
const RAW_BODY_ROUTES = /^\/v1\/webhooks\/(?!configs(\/|$)|\.well-known\/|configured-events$)[^/]+\/[^/]+$/;

/**
 * Bodies of POST/PUT/PATCH must be JSON: anything else is 415 before a handler sees it. A JSON body
 * is then read once, decoded as strict UTF-8 (400) and checked for nesting depth (400) before any
 * parser or schema recurses into it; handlers and validators get the checked text from Hono's cache.
 */
export const requireJsonBodies = createMiddleware<AppEnv>(async (c, next) => {
  const { method, path } = c.req;
  if ((method === "POST" || method === "PUT" || method === "PATCH") && !RAW_BODY_ROUTES.test(path) && !isUpload(method, path)) {
    const type = c.req.header("content-type");
    const hasBody = c.req.header("content-length") !== "0" && c.req.raw.body !== null;
    if (type ? !JSON_TYPE.test(type) : hasBody) {
      throw new AppError("UNSUPPORTED_MEDIA_TYPE", `Expected Content-Type: application/json, got ${type ?? "none"}`);
    }
    // Whatever Content-Length claims: a body that is there is checked.
    if (c.req.raw.body !== null) {
      const text = decodeUtf8(await c.req.arrayBuffer());
      assertJsonDepth(text);
      // Hono caches body reads as promises (its BodyCache type names the resolved values).
      (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
    }
  }
  await next();
});

/**
 * Requests that carry events or downloads, not configuration: everything else that writes
 * (POST/PUT/PATCH/DELETE) may change configuration the event path caches.
 */
const EVENT_TRAFFIC = new RegExp(
  String.raw`^\/(v[123]\/erp\/updates\/events|v1\/erp\/trigger$|v1\/webhooks\/(?!configs(\/|$))|v1\/erp\/tracking\/acknowledgement|v1\/files\/|v1\/events$|v1\/integrations\/[^/]+\/events(\/replay)?$|v1\/integrations\/[^/]+\/outbound\/(messages|dlq)\/|v[12]\/erp\/updates\/mapping_simulation$|__bench\/` +
    // Reads and calls that POST (monitoring queries, managed calls, type previews, webhook triggers and replays).
    String.raw`|v1\/integrations\/[^/]+\/monitoring\/|v2\/integrations\/[^/]+\/monitoring\/|v1\/secure-proxy$|v1\/managed-call\/|v1\/integrations\/[^/]+\/generate-types(-preview)?$` +
    String.raw`|v[12]\/webhooks\/configs\/[^/]+\/(trigger|events|example|test-oauth)(\/|$))`,
);

/** Clears this isolate's configuration cache after any configuration write (platform/config-cache.ts). */
export const configWrites = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  // Only a write that succeeded can have changed anything (a 4xx, an unauthenticated caller, did not).
  if (c.res.status < 300 && c.req.method !== "GET" && c.req.method !== "HEAD" && !EVENT_TRAFFIC.test(new URL(c.req.url).pathname)) configChanged();
});
