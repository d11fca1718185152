// The registry's one error envelope, `{ error: { code, message, details } }`, with the host's codes
// wherever the two overlap: the host streams these answers back to its clients unchanged.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import { PackageError } from "../../apps-sdk/src/blueprint/manifest";
import { SignatureError } from "../../apps-sdk/src/blueprint/signing";

export const ERROR_CODES = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  INVALID_CURSOR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  SIGNATURE_INVALID: 422,
  DIGEST_MISMATCH: 422,
  INTERNAL: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An expected failure, answered with its code's status and the envelope. */
export class RegistryError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "RegistryError";
    this.status = ERROR_CODES[code];
  }
}

/** A zod failure as VALIDATION_FAILED with `[{ path, message }]`, the host's shape. */
export function validationError(error: ZodError, where: string): RegistryError {
  return new RegistryError(
    "VALIDATION_FAILED",
    `Invalid ${where}`,
    error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message })),
  );
}

function envelope(c: Context, err: RegistryError): Response {
  const error: { code: ErrorCode; message: string; details?: unknown } = { code: err.code, message: err.message };
  if (err.details !== undefined) error.details = err.details;
  return c.json({ error }, err.status);
}

/**
 * `app.onError`: the package format's own errors keep their meaning (an unreadable or invalid
 * package is 422 listing `{ file, path, message }`, an oversized one 413; a bad signature or digest
 * is 422 with its code), anything unexpected is logged and answered INTERNAL without internals.
 */
export function onError(err: Error, c: Context): Response {
  if (err instanceof RegistryError) return envelope(c, err);
  if (err instanceof PackageError) {
    const code = err.code === "PACKAGE_TOO_LARGE" ? "PAYLOAD_TOO_LARGE" : "UNPROCESSABLE";
    return envelope(c, new RegistryError(code, err.message, err.issues.length ? err.issues : undefined));
  }
  if (err instanceof SignatureError) return envelope(c, new RegistryError(err.code, err.message));
  if (err instanceof HTTPException && err.status < 500) {
    const code: ErrorCode = err.status === 413 ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST";
    return envelope(c, new RegistryError(code, err.message || "Bad request"));
  }
  console.error(JSON.stringify({ level: "error", worker: "erp-edge-registry", request_id: c.req.header("x-request-id") ?? null, message: err.message, stack: err.stack }));
  return envelope(c, new RegistryError("INTERNAL", "Internal registry error"));
}
