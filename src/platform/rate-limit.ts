// Token-bucket rate limits held by RateLimiter Durable Objects, one bucket per key. Each isolate
// leases a few tokens at a time (LEASE_SHARE of a second's budget) and spends them locally, so a
// busy tenant costs the bucket one call per lease, not one per request; once the bucket says wait,
// the isolate answers 429 on its own until then. Cloudflare's rate-limiting binding was not used: its
// limit and period are fixed per binding in wrangler.toml, and tenants here have limits of their own
// (docs/SCALING.md, "Rate limits").
import { AppError } from "./errors";

/** The share of a second's budget an isolate leases at once (a 200/s tenant: 10 requests per call). */
const LEASE_SHARE = 0.05;
/** Unspent leased tokens lapse after this, so an idle isolate cannot save up a burst. */
const LEASE_MS = 1_000;
/** Buckets this isolate remembers; the oldest go first. */
const MAX_KEYS = 10_000;

type Lease = { perSecond: number; tokens: number; expires: number; blockedUntil: number };
const leases = new Map<string, Lease>();

function remember(key: string, lease: Lease) {
  leases.delete(key);
  if (leases.size >= MAX_KEYS) leases.delete(leases.keys().next().value!);
  leases.set(key, lease);
}

const limited = (what: string, wait: number) =>
  new AppError("RATE_LIMITED", `${what} exceeded; retry in ${wait} s`, { retry_after_seconds: wait }, { "Retry-After": String(wait) });

/**
 * Takes one request from the bucket named `key` (refilled at `perSecond`, bursts up to twice that);
 * throws 429 RATE_LIMITED with Retry-After when it is empty.
 * @example await takeOrThrow(env, `tenant:${id}`, 200, "Tenant request rate limit")
 */
export async function takeOrThrow(env: Pick<Env, "RATE_LIMITER">, key: string, perSecond: number, what: string): Promise<void> {
  const now = Date.now();
  // A lease taken under another limit (the tenant's was just changed) is not spent.
  const held = leases.get(key)?.perSecond === perSecond ? leases.get(key) : undefined;
  if (held && held.blockedUntil > now) throw limited(what, Math.max(1, Math.ceil((held.blockedUntil - now) / 1000)));
  if (held && held.tokens > 0 && held.expires > now) {
    held.tokens--;
    return;
  }
  const { granted, wait } = await env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key)).lease(perSecond, perSecond * LEASE_SHARE);
  if (granted === 0) {
    remember(key, { perSecond, tokens: 0, expires: 0, blockedUntil: Date.now() + wait * 1000 });
    throw limited(what, wait);
  }
  remember(key, { perSecond, tokens: granted - 1, expires: Date.now() + LEASE_MS, blockedUntil: 0 });
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
