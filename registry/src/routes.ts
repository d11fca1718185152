// The registry's HTTP routes under /v1/registry: parse, call one service function, answer.
// Every route but the schema document needs the caller header the host sets (401 without it).
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { z } from "zod";
import { BUNDLE_LIMITS } from "../../apps-sdk/src/blueprint/bundle";
import { blueprintJsonSchema } from "../../apps-sdk/src/blueprint/manifest";
import { RegistryError, validationError } from "./errors";
import {
  AddPublisherKey,
  Caller,
  CreatePublisher,
  Deprecate,
  PackageParams,
  PublisherParams,
  SearchQuery,
  SignatureField,
  VersionParams,
  Yank,
  type RegistryVars,
} from "./schema";
import * as service from "./service";

/** The header the host sets on every forwarded request (src/registry/client.ts). */
export const CALLER_HEADER = "x-erp-edge-caller";

/** An upload's body: the archive's limit plus room for the multipart framing and the signature. */
export const MAX_UPLOAD_BYTES = BUNDLE_LIMITS.maxArchiveBytes + 1024 * 1024;

function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(result.error, where);
  return result.data;
}

/** The caller the host named; anything else (no header, not JSON, not a caller) is 401. */
const requireCaller = createMiddleware<RegistryVars>(async (c, next) => {
  const header = c.req.header(CALLER_HEADER);
  let caller: Caller | null = null;
  try {
    const parsed = Caller.safeParse(header ? JSON.parse(header) : undefined);
    if (parsed.success) caller = parsed.data;
  } catch {
    // answered below
  }
  if (!caller) throw new RegistryError("UNAUTHORIZED", "The registry answers only the erp-edge host (missing or invalid caller)");
  c.set("caller", caller);
  await next();
});

async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) throw new RegistryError("UNSUPPORTED_MEDIA_TYPE", "Expected Content-Type: application/json");
  let value: unknown;
  try {
    value = JSON.parse(await c.req.text());
  } catch {
    throw new RegistryError("INVALID_JSON", "The body is not valid JSON");
  }
  return parse(schema, value, "request body");
}

/** The two fields of an upload: `bundle` (a file) and `signature` (text), each exactly once. */
async function uploadFields(c: Context): Promise<{ archive: Uint8Array; signature: string }> {
  if (!/^multipart\/form-data\s*;/i.test(c.req.header("content-type") ?? "")) {
    throw new RegistryError("UNSUPPORTED_MEDIA_TYPE", "Expected Content-Type: multipart/form-data with the fields 'bundle' and 'signature'");
  }
  let form: FormData;
  try {
    form = await c.req.raw.formData();
  } catch {
    throw new RegistryError("BAD_REQUEST", "The body is not readable multipart/form-data");
  }
  const issues: { path: string; message: string }[] = [];
  const bundles = form.getAll("bundle");
  const signatures = form.getAll("signature");
  const bundle = bundles[0];
  const signature = signatures[0];
  if (bundles.length !== 1 || typeof bundle === "string" || bundle === undefined) issues.push({ path: "bundle", message: "exactly one file: the packed archive" });
  if (signatures.length !== 1 || typeof signature !== "string") issues.push({ path: "signature", message: "exactly one text field: the compact JWS" });
  else if (!SignatureField.safeParse(signature).success) issues.push({ path: "signature", message: "a compact JWS (header.payload.signature, base64url), at most 4096 characters" });
  if (issues.length > 0) throw new RegistryError("VALIDATION_FAILED", "Invalid upload", issues);
  return { archive: new Uint8Array(await (bundle as File).arrayBuffer()), signature: signature as string };
}

const uploadLimit = bodyLimit({
  maxSize: MAX_UPLOAD_BYTES,
  onError: () => {
    throw new RegistryError("PAYLOAD_TOO_LARGE", `The upload exceeds ${MAX_UPLOAD_BYTES} bytes`, { max_bytes: MAX_UPLOAD_BYTES });
  },
});

/** The JSON Schema of blueprint.json, built once per isolate. */
let schemaDocument: Record<string, unknown> | undefined;

export const routes = new Hono<RegistryVars>();

routes.get("/v1/registry/schema/blueprint.json", (c) => c.json((schemaDocument ??= blueprintJsonSchema())));

routes.use("/v1/registry/*", requireCaller);

// ---- publishers ---------------------------------------------------------------------------------

routes.post("/v1/registry/publishers", async (c) => {
  const input = await jsonBody(c, CreatePublisher);
  return c.json(await service.createPublisher(c.env.REGISTRY_DB, c.get("caller"), input), 201);
});

routes.get("/v1/registry/publishers/:scope", async (c) => {
  const { scope } = parse(PublisherParams, c.req.param(), "path parameters");
  return c.json(await service.getPublisher(c.env.REGISTRY_DB, c.get("caller"), scope));
});

routes.post("/v1/registry/publishers/:scope/keys", async (c) => {
  const { scope } = parse(PublisherParams, c.req.param(), "path parameters");
  const { public_key } = await jsonBody(c, AddPublisherKey);
  return c.json(await service.addPublisherKey(c.env.REGISTRY_DB, c.get("caller"), scope, public_key), 201);
});

// ---- packages -----------------------------------------------------------------------------------

routes.post("/v1/registry/packages", uploadLimit, async (c) => {
  const upload = await uploadFields(c);
  return c.json(await service.publish(c.env, c.get("caller"), upload), 201);
});

routes.get("/v1/registry/packages", async (c) => {
  const query = parse(SearchQuery, c.req.query(), "query parameters");
  return c.json(await service.searchPackages(c.env.REGISTRY_DB, query));
});

routes.get("/v1/registry/packages/:scope/:name", async (c) => {
  const name = parse(PackageParams, c.req.param(), "path parameters");
  return c.json(await service.getPackage(c.env.REGISTRY_DB, name));
});

const versionOf = (c: Context) => {
  const { scope, name, version } = parse(VersionParams, c.req.param(), "path parameters");
  return { name: `${scope}/${name}`, version };
};

routes.get("/v1/registry/packages/:scope/:name/:version", async (c) => {
  const { name, version } = versionOf(c);
  return c.json(await service.getVersion(c.env.REGISTRY_DB, name, version));
});

routes.get("/v1/registry/packages/:scope/:name/:version/bundle", async (c) => {
  const { name, version } = versionOf(c);
  const bundle = await service.openBundle(c.env, name, version);
  const sha256 = bundle.digest.replace(/^sha256-/, "");
  return c.body(bundle.body, 200, {
    "content-type": "application/zip",
    etag: `"${bundle.digest}"`,
    digest: `sha-256=${sha256}`,
  });
});

routes.post("/v1/registry/packages/:scope/:name/:version/deprecate", async (c) => {
  const { name, version } = versionOf(c);
  const { message } = await jsonBody(c, Deprecate);
  return c.json(await service.deprecateVersion(c.env.REGISTRY_DB, c.get("caller"), name, version, message));
});

routes.post("/v1/registry/packages/:scope/:name/:version/yank", async (c) => {
  const { name, version } = versionOf(c);
  const { reason } = await jsonBody(c, Yank);
  return c.json(await service.yankVersion(c.env.REGISTRY_DB, c.get("caller"), name, version, reason));
});
