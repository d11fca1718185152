// The one error type and the one error envelope every route answers with.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";

/** The closed set of error codes clients can branch on. */
export const ERROR_CODES = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  NESTING_TOO_DEEP: 400,
  INVALID_CURSOR: 400,
  IMMUTABLE_FIELD: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  MAPPING_LIMIT_EXCEEDED: 422,
  // A package whose signature does not verify with its publisher's key, or whose archive is not the one signed.
  SIGNATURE_INVALID: 422,
  DIGEST_MISMATCH: 422,
  RATE_LIMITED: 429,
  // Apps (docs/apps.md): the app is not installed in this tenant; the caller's input failed the
  // action's schema or a limit; the app itself failed (its output, an ungranted host, a throw), which
  // is the app's fault, not the caller's, so a gateway error.
  APP_NOT_INSTALLED: 404,
  APP_INPUT_INVALID: 422,
  APP_LIMIT_EXCEEDED: 422,
  APP_OUTPUT_INVALID: 502,
  APP_HOST_NOT_GRANTED: 502,
  APP_FAILED: 502,
  // File proxy (docs/file-proxy.md): the archive refused erp-edge's credentials, failed, was not
  // allowed to be called (outside allowed_hosts, a private address) or did not answer in time.
  RANGE_NOT_SATISFIABLE: 416,
  ARCHIVE_AUTH_FAILED: 502,
  ARCHIVE_ERROR: 502,
  ARCHIVE_HOST_REFUSED: 502,
  ARCHIVE_TIMEOUT: 504,
  // Managed calls and the secure proxy (docs/managed-calls.md), with epilot's codes: the target
  // refused or failed, an address that may not be called, the target did not answer in time.
  EXTERNAL_API_ERROR: 502,
  SSRF_BLOCKED: 400,
  MANAGED_CALL_EXECUTION_ERROR: 502,
  UPSTREAM_TIMEOUT: 504,
  INTERNAL: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * `error` is erp-edge's envelope; `code` and `message` repeat at the top, where epilot's APIs put
 * them (their ErrorResponseBase), so an epilot client reads them too.
 */
export interface ErrorEnvelope {
  code: ErrorCode;
  message: string;
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** An expected failure: becomes `{ code, message, error: { code, message, details } }` with the code's status. */
export class AppError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
    this.status = ERROR_CODES[code];
  }
}

/** Zod issues as `[{ path: "use_cases.0.slug", message }]`, the details of VALIDATION_FAILED. */
export function zodIssues(error: ZodError): { path: string; message: string; code: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
    code: issue.code,
    // Custom checks (e.g. JSONata compile errors) carry their own fields such as `position`.
    ...(issue.code === "custom" ? issue.params : undefined),
  }));
}

export function validationError(error: ZodError, where = "request body"): AppError {
  return new AppError("VALIDATION_FAILED", `Invalid ${where}`, zodIssues(error));
}

export function errorResponse(c: Context, err: AppError): Response {
  const body: ErrorEnvelope = { code: err.code, message: err.message, error: { code: err.code, message: err.message } };
  if (err.details !== undefined) body.error.details = err.details;
  return c.json(body, err.status, err.headers);
}

/** `app.onError`: expected errors keep their code, anything else is logged and hidden behind INTERNAL. */
export function onError(err: Error, c: Context): Response {
  if (err instanceof AppError) return errorResponse(c, err);
  if (err instanceof HTTPException) {
    // Hono's own validators and middleware (malformed JSON, body limit) throw these.
    const status = err.status;
    if (status >= 500) return onError(new Error(err.message), c);
    const code: ErrorCode =
      status === 413 ? "PAYLOAD_TOO_LARGE" : status === 401 ? "UNAUTHORIZED" : /json/i.test(err.message) ? "INVALID_JSON" : "BAD_REQUEST";
    return errorResponse(c, new AppError(code, err.message || "Bad request"));
  }
  console.error(JSON.stringify({ level: "error", request_id: c.get("requestId"), message: err.message, stack: err.stack }));
  return errorResponse(c, new AppError("INTERNAL", "Internal error; quote the x-request-id header when reporting it"));
}
