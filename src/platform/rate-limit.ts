// Token-bucket rate limits held by RateLimiter Durable Objects, one bucket per key.
import { AppError } from "./errors";

/**
 * Takes one request from the bucket named `key` (refilled at `perSecond`, bursts up to twice that);
 * throws 429 RATE_LIMITED with Retry-After when it is empty.
 * @example await takeOrThrow(env, `tenant:${id}`, 200, "Tenant request rate limit")
 */
export async function takeOrThrow(env: Pick<Env, "RATE_LIMITER">, key: string, perSecond: number, what: string): Promise<void> {
  const wait = await env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key)).take(perSecond);
  if (wait > 0) {
    throw new AppError("RATE_LIMITED", `${what} exceeded; retry in ${wait} s`, { retry_after_seconds: wait }, { "Retry-After": String(wait) });
  }
}

/** A tenant's requests per second: its own `rate_limit_per_second`, else TENANT_RATE_LIMIT_PER_SECOND. */
export function rateLimitOf(env: Pick<Env, "TENANT_RATE_LIMIT_PER_SECOND">, own: number | null): number {
  return own ?? Number(env.TENANT_RATE_LIMIT_PER_SECOND ?? 200);
}

/** Takes one request from the tenant's bucket; throws 429 with Retry-After when it is empty. */
export async function enforceRateLimit(env: Pick<Env, "RATE_LIMITER" | "TENANT_RATE_LIMIT_PER_SECOND">, tenantId: string, own: number | null) {
  // The bucket's name is the bare tenant id (other buckets carry a "kind:" prefix).
  await takeOrThrow(env, tenantId, rateLimitOf(env, own), "Tenant request rate limit");
}
