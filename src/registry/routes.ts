// /v1/registry/*: the registry Worker's API, authenticated here and forwarded over the REGISTRY
// service binding with the caller in x-erp-edge-caller, so one base URL serves both Workers.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { blueprintJsonSchema } from "../../apps-sdk/src/blueprint/manifest";
import { createRouter, type AppEnv } from "../platform/app";
import { requireScopeOrAdmin } from "../platform/auth";
import { AppError, type ErrorEnvelope as ErrorBody } from "../platform/errors";
import { limitUpload, MAX_UPLOAD_BYTES } from "../platform/middleware";
import { ErrorEnvelope, errors, json, jsonBody } from "../platform/openapi";
import { CALLER_HEADER, registryCaller } from "./client";
import {
  AddPublisherKey,
  BlueprintJsonSchema,
  CreatePublisher,
  DeprecateVersion,
  PackageParams,
  PackageSearchPage,
  PackageSearchQuery,
  PackageUploadSchema,
  Published,
  Publisher,
  PublisherKey,
  PublisherParams,
  RegistryPackage,
  RegistryVersion,
  VersionParams,
  VersionSummary,
  YankVersion,
} from "./schema";

const read = requireScopeOrAdmin("blueprints:install", "registry:publish");
const write = requireScopeOrAdmin("registry:publish");
const security = [{ tenantToken: [] }];
const tags = ["Registry"];
const ADMIN_TOO = "Also accepts the operator's admin token.";

/** The registry's answers are passed on with these headers only. */
const PASSED_HEADERS = ["content-type", "etag", "digest"];

/**
 * Sends the request to the registry as the authenticated caller and streams its answer back. The
 * caller header is built here from scratch, so a client's own copy never reaches the registry. An
 * unreachable or failing registry is a 503 envelope without its internals. Typed `never` for the
 * router: the answer is the registry's, as each route's `responses` documents it, not a value built here.
 */
async function forward(c: Context<AppEnv>, path: string, init: { method?: string; json?: unknown; body?: ReadableStream | null; contentType?: string; attachment?: string } = {}): Promise<never> {
  const headers = new Headers({ [CALLER_HEADER]: JSON.stringify(registryCaller(c.get("caller"))), "x-request-id": c.get("requestId") });
  let body: BodyInit | null | undefined = init.body;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  } else if (init.contentType) headers.set("content-type", init.contentType);
  const unavailable = (detail: Record<string, unknown>) => {
    console.error(JSON.stringify({ level: "error", request_id: c.get("requestId"), message: "registry unavailable", path, ...detail }));
    const message = "The registry is unavailable; retry later";
    const envelope: ErrorBody = { code: "INTERNAL", message, error: { code: "INTERNAL", message } };
    return c.json(envelope, 503, { "retry-after": "5" }) as never;
  };
  let res: Response;
  try {
    res = await c.env.REGISTRY.fetch(new Request(`https://registry.internal${path}`, { method: init.method ?? "GET", headers, body }));
  } catch (err) {
    return unavailable({ error: String((err as Error)?.message ?? err) });
  }
  if (res.status >= 500) return unavailable({ status: res.status, body: (await res.text()).slice(0, 500) });
  // Answers to a bearer token are the caller's own (a publisher's owner shows to its tenant only):
  // no shared cache keeps them, and no browser sniffs a bundle into something it would run.
  const out = new Headers({ "cache-control": "private, no-store", "x-content-type-options": "nosniff" });
  for (const name of PASSED_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) out.set(name, value);
  }
  if (init.attachment) out.set("content-disposition", `attachment; filename="${init.attachment}"`);
  return new Response(res.body, { status: res.status, headers: out }) as never;
}

const packagePath = ({ scope, name }: { scope: string; name: string }) => `/v1/registry/packages/${scope}/${name}`;
const versionPath = (p: { scope: string; name: string; version: string }) => `${packagePath(p)}/${p.version}`;
const registryDown = { 503: { description: "The registry is unavailable; retry later", content: { "application/json": { schema: ErrorEnvelope } } } };

export const registryRoutes = createRouter();

// ---- the package format -------------------------------------------------------------------------

/** Built once per isolate: it depends only on the manifest schema. */
let schemaDocument: Record<string, unknown> | undefined;

registryRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/registry/schema/blueprint.json", tags, summary: "The JSON Schema of blueprint.json (public)",
    responses: { 200: json(BlueprintJsonSchema, "A JSON Schema (draft 2020-12), generated from the manifest's zod schema") },
  }),
  (c) => c.json((schemaDocument ??= blueprintJsonSchema()), 200),
);

// ---- publishers ---------------------------------------------------------------------------------

registryRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/registry/publishers", tags, security, middleware: [write] as const,
    summary: "Register a publisher (a scope) with its first public key",
    description: `The calling tenant owns the publisher; names starting with \`@erp-edge\` are reserved for the admin token (owner \`platform\`). ${ADMIN_TOO}`,
    request: jsonBody(CreatePublisher),
    responses: { 201: json(Publisher, "The publisher"), ...errors(400, 401, 403, 409, 413, 415), ...registryDown },
  }),
  (c) => forward(c, "/v1/registry/publishers", { method: "POST", json: c.req.valid("json") }),
);

registryRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/registry/publishers/{scope}", tags, security, middleware: [read] as const,
    summary: "Get a publisher with every public key it ever registered", description: ADMIN_TOO,
    request: { params: PublisherParams },
    responses: { 200: json(Publisher, "The publisher"), ...errors(400, 401, 403, 404), ...registryDown },
  }),
  (c) => forward(c, `/v1/registry/publishers/${c.req.valid("param").scope}`),
);

registryRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/registry/publishers/{scope}/keys", tags, security, middleware: [write] as const,
    summary: "Add a public key to a publisher (rotation); old keys keep verifying the versions they signed",
    description: `Only the publisher's owner. ${ADMIN_TOO}`,
    request: { params: PublisherParams, ...jsonBody(AddPublisherKey) },
    responses: { 201: json(PublisherKey, "The key"), ...errors(400, 401, 403, 404, 409, 413, 415, 422), ...registryDown },
  }),
  (c) => forward(c, `/v1/registry/publishers/${c.req.valid("param").scope}/keys`, { method: "POST", json: c.req.valid("json") }),
);

// ---- packages -----------------------------------------------------------------------------------

registryRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/registry/packages", tags, security, middleware: [write, limitUpload] as const,
    summary: "Publish a signed version of a package",
    description:
      "`multipart/form-data` with `bundle` (the archive) and `signature` (a compact JWS over `{ name, version, digest }` by a key of the name's publisher, which the caller must own). " +
      "The registry checks the digest, the signature and the manifest inside against the signed name and version. Versions are immutable: publishing one again is 409. " +
      `Bodies up to ${MAX_UPLOAD_BYTES} bytes. ${ADMIN_TOO}`,
    request: { body: { required: true, content: { "multipart/form-data": { schema: PackageUploadSchema } } } },
    responses: {
      201: json(Published, "The published version"),
      ...errors(400, 401, 403, 409),
      413: { description: "The upload or the archive is too large, or the archive unpacks to too much", content: { "application/json": { schema: ErrorEnvelope } } },
      ...errors(415),
      422: { description: "Invalid package (details list `{ file, path, message }`), SIGNATURE_INVALID or DIGEST_MISMATCH", content: { "application/json": { schema: ErrorEnvelope } } },
      ...registryDown,
    },
  }),
  (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!/^multipart\/form-data\s*;(.*;)?\s*boundary=/i.test(type)) {
      throw new AppError("UNSUPPORTED_MEDIA_TYPE", `Expected Content-Type: multipart/form-data with the fields 'bundle' and 'signature', got ${type || "none"}`);
    }
    return forward(c, "/v1/registry/packages", { method: "POST", body: c.req.raw.body, contentType: type });
  },
);

registryRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/registry/packages", tags, security, middleware: [read] as const,
    summary: "Search packages by name, title, summary and keywords", description: ADMIN_TOO,
    request: { query: PackageSearchQuery },
    responses: { 200: json(PackageSearchPage, "A page of packages, by name"), ...errors(400, 401, 403), ...registryDown },
  }),
  (c) => {
    const { q, kind, limit, cursor } = c.req.valid("query");
    const query = new URLSearchParams({ limit: String(limit) });
    if (q) query.set("q", q);
    if (kind) query.set("kind", kind);
    if (cursor) query.set("cursor", cursor);
    return forward(c, `/v1/registry/packages?${query}`);
  },
);

registryRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/registry/packages/{scope}/{name}", tags, security, middleware: [read] as const,
    summary: "Get a package: every version with its flags, and dist_tags.latest", description: ADMIN_TOO,
    request: { params: PackageParams },
    responses: { 200: json(RegistryPackage, "The package"), ...errors(400, 401, 403, 404), ...registryDown },
  }),
  (c) => forward(c, packagePath(c.req.valid("param"))),
);

registryRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/registry/packages/{scope}/{name}/{version}", tags, security, middleware: [read] as const,
    summary: "Get one version: manifest, digest, signature and the public key that signed it", description: ADMIN_TOO,
    request: { params: VersionParams },
    responses: { 200: json(RegistryVersion, "The version"), ...errors(400, 401, 403, 404), ...registryDown },
  }),
  (c) => forward(c, versionPath(c.req.valid("param"))),
);

registryRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/registry/packages/{scope}/{name}/{version}/bundle", tags, security, middleware: [read] as const,
    summary: "Download a version's archive", description: `The bytes as published; \`ETag\` and \`Digest\` name their SHA-256. ${ADMIN_TOO}`,
    request: { params: VersionParams },
    responses: {
      200: { description: "The archive", content: { "application/zip": { schema: { type: "string", format: "binary" } } } },
      ...errors(400, 401, 403, 404),
      ...registryDown,
    },
  }),
  (c) => {
    const p = c.req.valid("param");
    // Validated parts (lower-case letters, digits, '.', '_', '-', '+'): safe inside the quotes.
    return forward(c, `${versionPath(p)}/bundle`, { attachment: `${p.scope.slice(1)}-${p.name}-${p.version}.zip` });
  },
);

registryRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/registry/packages/{scope}/{name}/{version}/deprecate", tags, security, middleware: [write] as const,
    summary: "Deprecate a version (it stays installable; installs show the message)", description: `Only the publisher's owner. ${ADMIN_TOO}`,
    request: { params: VersionParams, ...jsonBody(DeprecateVersion) },
    responses: { 200: json(VersionSummary, "The version's summary"), ...errors(400, 401, 403, 404, 413, 415), ...registryDown },
  }),
  (c) => forward(c, `${versionPath(c.req.valid("param"))}/deprecate`, { method: "POST", json: c.req.valid("json") }),
);

registryRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/registry/packages/{scope}/{name}/{version}/yank", tags, security, middleware: [write] as const,
    summary: "Yank a version: no range resolves to it any more; an exact pin still installs it, with a warning",
    description: `Only the publisher's owner. ${ADMIN_TOO}`,
    request: { params: VersionParams, ...jsonBody(YankVersion) },
    responses: { 200: json(VersionSummary, "The version's summary"), ...errors(400, 401, 403, 404, 413, 415), ...registryDown },
  }),
  (c) => forward(c, `${versionPath(c.req.valid("param"))}/yank`, { method: "POST", json: c.req.valid("json") }),
);
