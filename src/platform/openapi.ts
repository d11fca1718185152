// Helpers that keep route definitions short while the OpenAPI document stays complete.
import { z } from "@hono/zod-openapi";
import { ERROR_CODES } from "./errors";

const ErrorCode = z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]]);
export const ErrorEnvelope = z
  .object({
    code: ErrorCode.openapi({ description: "The error code, where epilot's APIs put it" }),
    message: z.string(),
    error: z.object({ code: ErrorCode, message: z.string(), details: z.unknown().optional() }),
  })
  .openapi("ErrorEnvelope");

const errorDescriptions: Record<number, string> = {
  400: "Invalid request (details lists the failing paths)",
  401: "Missing, malformed, expired or revoked token",
  403: "The token lacks the required scope",
  404: "Not found (or not this tenant's)",
  409: "Conflict with existing data",
  413: "Body larger than 1 MiB",
  415: "Body is not JSON",
  422: "Well-formed but not processable",
  429: "Rate limited; see Retry-After",
  502: "The app failed: it threw, returned output its schema refuses, or reached a host it was not granted",
};

/** Error responses for the given statuses, all with the error envelope. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [s, { description: errorDescriptions[s] ?? "Error", content: { "application/json": { schema: ErrorEnvelope } } }]),
  );
}

export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A required JSON request body (required, so a non-JSON body is refused rather than skipped). */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { body: { required: true, content: { "application/json": { schema } } } };
}

/** A query flag: "true" or "false" (absent means false), as a boolean. */
export const booleanQuery = z
  .enum(["true", "false"])
  .default("false")
  .transform((v) => v === "true");

/** Path parameters by name, e.g. `pathParams("id", "use_case_id")`. */
export function pathParams<K extends string>(...names: K[]) {
  const shape = Object.fromEntries(
    names.map((name) => [name, z.string().min(1).max(64).openapi({ param: { name, in: "path" } })]),
  ) as Record<K, z.ZodString>;
  return z.object(shape);
}
