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
