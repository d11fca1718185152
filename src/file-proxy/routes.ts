// File proxy routes: downloads through signed URLs (or a files:read token), and signing URLs.
import { createRoute, z } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { SLUG_PATTERN } from "../integrations/schema";
import { callerTenant, createRouter, type AppEnv } from "../platform/app";
import { requireScope } from "../platform/auth";
import { AppError } from "../platform/errors";
import { errors, json, jsonBody } from "../platform/openapi";
import { FileUrlRequest, FileUrlResponse } from "./schema";
import { download, signedFileUrl } from "./service";

const tags = ["File proxy"];

const withToken = requireScope("files:read");

/**
 * A download with `sig` is authenticated by its signature alone (a browser opening a link); without
 * one it needs a tenant token with `files:read`. Carries `.scopes`, so the document lists the token way.
 * A query naming a parameter twice is refused first: which value would count is ambiguous, and the
 * signature covers one.
 */
const signatureOrToken = Object.assign(
  createMiddleware<AppEnv>((c, next) => {
    // Hono answers HEAD with the GET handler; for a download that would run the whole archive
    // conversation and drop the file. A client wanting the headers asks for a Range instead.
    if (c.req.method === "HEAD") throw new AppError("METHOD_NOT_ALLOWED", "HEAD is not supported for downloads; use GET (with Range: bytes=0-0 for just the headers)", undefined, { allow: "GET" });
    const names = [...new URL(c.req.url).searchParams.keys()];
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) throw new AppError("BAD_REQUEST", `Query parameter '${twice}' is given more than once`);
    return c.req.query("sig") !== undefined ? next() : withToken(c, next);
  }),
  { scopes: withToken.scopes },
);

const Slug = z.string().min(1).max(128).regex(SLUG_PATTERN, "a use case slug");

export const fileProxyRoutes = createRouter();

fileProxyRoutes.openapi(
  createRoute({
    method: "get", path: "/v1/files/download", tags, middleware: [signatureOrToken] as const,
    summary: "Download a file from the ERP archive: a signed URL needs no token (else a files:read token); every other query parameter is the use case's",
    description:
      "Runs the file_proxy use case's steps against the archive and streams the file. Range is passed to the archive (206 when it supports ranges). Signed URLs come from POST /v1/files/sign or a mapping's file_proxy_url; see docs/file-proxy.md.",
    request: {
      query: z
        .object({
          integration_id: z.string().min(1).max(64),
          use_case_slug: Slug,
          exp: z.string().max(16).optional().openapi({ description: "Signed URLs: expiry, Unix seconds" }),
          sig: z.string().max(128).optional().openapi({ description: "Signed URLs: the signature" }),
        })
        .catchall(z.string()),
    },
    responses: {
      200: { description: "The file", content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } } },
      206: { description: "The requested range of the file", content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } } },
      ...errors(400, 401, 403, 404, 416, 429, 502, 504),
    },
  }),
  async (c) => {
    const url = new URL(c.req.url);
    const params: Record<string, string> = Object.create(null);
    let exp = "";
    let sig: string | undefined;
    for (const [name, value] of url.searchParams) {
      if (name === "integration_id" || name === "use_case_slug") continue;
      if (name === "exp") exp = value;
      else if (name === "sig") sig = value;
      else params[name] = value;
    }
    const { integration_id, use_case_slug } = c.req.valid("query");
    if (sig === undefined && exp !== "") throw new AppError("BAD_REQUEST", "exp belongs to a signed URL; a token download has no exp");
    const auth =
      sig !== undefined
        ? { kind: "signature" as const, exp, sig, source: c.req.header("cf-connecting-ip") ?? "unknown" }
        : { kind: "token" as const, tenantId: callerTenant(c.get("caller")) };
    return download(c.env, { integrationId: integration_id, useCaseSlug: use_case_slug, params, auth, range: c.req.header("range"), ifRange: c.req.header("if-range") }, (p) =>
      c.executionCtx.waitUntil(p),
    );
  },
);

fileProxyRoutes.openapi(
  createRoute({
    method: "post", path: "/v1/files/sign", tags, middleware: [requireScope("files:read")] as const,
    summary: "A signed download URL for a file_proxy use case, to hand to a browser",
    request: jsonBody(FileUrlRequest),
    responses: { 200: json(FileUrlResponse, "The URL and when it expires"), ...errors(400, 401, 403, 404, 429) },
  }),
  async (c) => c.json(await signedFileUrl(c.env, callerTenant(c.get("caller")), new URL(c.req.url).origin, c.req.valid("json")), 200),
);
