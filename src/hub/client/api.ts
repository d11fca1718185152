/**
 * The Hub's one way to call the erp-edge API from the browser.
 *
 * Usage (every page):
 *   import { api, ApiError } from "../api";
 *   const list = await api<{ integrations: Integration[] }>("GET", "/v2/integrations");
 *   await api("PUT", `/v1/integrations/${id}/environment`, { API_KEY: "s3cr3t" });
 *   const res = await api("POST", "/v1/...", body, { headers: { "if-match": etag }, raw: true }); // a Response
 *
 * - The tenant token the user pasted at sign-in lives in sessionStorage only (getToken/setToken/
 *   clearToken); it is sent as `Authorization: Bearer …`, never put in a URL.
 * - Bodies go out as JSON, answers are parsed as JSON (an empty body gives `undefined`).
 * - Any non-2xx answer throws an ApiError with the API's envelope read out: status, code, message,
 *   details (e.g. the 422 paths of a mapping) and the x-request-id the Worker answered with, so the
 *   UI can show "message (request id …)". A network failure throws an ApiError with status 0.
 * - A 401 also calls the handler set with onUnauthorized (the shell sends the user to sign-in).
 */

const TOKEN_KEY = "erp-edge.hub.token";

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API (its `{ code, message, error: { code, message, details } }` envelope). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let unauthorized: (() => void) | undefined;
/** Called on every 401 (after the ApiError is built, before it is thrown). */
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

export interface ApiOptions {
  /** Extra request headers (e.g. `if-match`). */
  headers?: Record<string, string>;
  /** Query parameters; undefined and empty values are left out. */
  query?: Record<string, string | number | boolean | undefined | null>;
  /** Aborts the request (e.g. a newer simulation replaces an older one). */
  signal?: AbortSignal;
}

/** Builds `path?query` with only the parameters that have a value. */
export function withQuery(path: string, query?: ApiOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Reads an error answer into an ApiError, whatever its body (the envelope, other JSON, or none). */
async function toApiError(res: Response): Promise<ApiError> {
  const requestId = res.headers.get("x-request-id");
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const envelope = (body && typeof body === "object" ? body : {}) as { code?: unknown; message?: unknown; error?: { code?: unknown; message?: unknown; details?: unknown } };
  const code = String(envelope.error?.code ?? envelope.code ?? `HTTP_${res.status}`);
  const message = String(envelope.error?.message ?? envelope.message ?? (res.statusText || `HTTP ${res.status}`));
  return new ApiError(res.status, code, message, requestId, envelope.error?.details);
}

/** Calls the API and answers the raw Response when it is 2xx (for ETags and headers); throws ApiError otherwise. */
export async function apiResponse(method: string, path: string, body?: unknown, options: ApiOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: "application/json", ...options.headers };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(withQuery(path, options.query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    if ((err as Error)?.name === "AbortError") throw err;
    throw new ApiError(0, "NETWORK_ERROR", `The API could not be reached: ${(err as Error)?.message ?? String(err)}`, null);
  }
  if (!res.ok) {
    const error = await toApiError(res);
    if (res.status === 401) unauthorized?.();
    throw error;
  }
  return res;
}

/** Calls the API and answers its parsed JSON body (undefined when empty); throws ApiError on non-2xx. */
export async function api<T = unknown>(method: string, path: string, body?: unknown, options: ApiOptions = {}): Promise<T> {
  const res = await apiResponse(method, path, body, options);
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}
