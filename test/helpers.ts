// Drives the real Worker over HTTP (exports.default.fetch) the way clients do.
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import { SCOPES, type Scope } from "../src/platform/scopes";

export const ADMIN = env.ADMIN_TOKEN;

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function api<T = any>(
  method: string,
  path: string,
  opts: { token?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers = new Headers(opts.headers);
  if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  let body = opts.body;
  if (opts.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(opts.json);
  }
  const res = await exports.default.fetch(new Request(`http://erp-edge.test${path}`, { method, headers, body }));
  const text = await res.text();
  let parsed: unknown = text;
  if (res.headers.get("content-type")?.includes("json") && text) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed as T };
}

/** Expects the error envelope with the given status and code; returns its details. */
export function expectError(res: ApiResponse, status: number, code: string) {
  if (res.status !== status || res.body?.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
  if (typeof res.body.error.message !== "string") throw new Error("error envelope without message");
  return res.body.error.details;
}

export async function createTenant(name = "Acme Energy"): Promise<{ id: string; slug: string }> {
  const res = await api("POST", "/v1/tenants", { token: ADMIN, json: { name } });
  if (res.status !== 201) throw new Error(`tenant: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export const ALL_SCOPES: Scope[] = [...SCOPES];

export async function createToken(tenantId: string, scopes: Scope[] = ALL_SCOPES, extra: Record<string, unknown> = {}) {
  const res = await api("POST", `/v1/tenants/${tenantId}/tokens`, { token: ADMIN, json: { name: "test", scopes, ...extra } });
  if (res.status !== 201) throw new Error(`token: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; token: string };
}

/** A new tenant with a token carrying every scope. */
export async function tenantWithToken(name?: string) {
  const tenant = await createTenant(name);
  const { token, id: tokenId } = await createToken(tenant.id);
  return { tenant, token, tokenId };
}

/**
 * Waits (vi.waitFor, no sleeps) until `done` holds for what `probe` returns, and returns it; on
 * timeout, says what was awaited and the last value seen.
 */
export async function eventually<T>(probe: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  let last: T | undefined;
  try {
    return await vi.waitFor(
      async () => {
        last = await probe();
        if (!done(last)) throw new Error("not yet");
        return last;
      },
      { timeout: timeoutMs, interval: 50 },
    );
  } catch (err) {
    throw new Error(`timed out waiting for ${what}: ${String(JSON.stringify(last)).slice(0, 600)} (${(err as Error).message})`);
  }
}
