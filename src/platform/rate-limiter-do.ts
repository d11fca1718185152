// RateLimiter: one Durable Object per bucket key (a tenant, a webhook source) holding a token bucket,
// so the limit holds across every edge location and isolate. Isolates lease tokens from it in small
// batches (platform/rate-limit.ts), so most requests never call it. State is in memory: a bucket
// that is evicted simply starts full again.
import { DurableObject } from "cloudflare:workers";

export class RateLimiter extends DurableObject<Env> {
  private tokens = -1;
  private updatedAt = 0;

  /**
   * Takes up to `want` tokens from a bucket refilled at `perSecond` and holding at most 2 × `perSecond`.
   * Answers how many were granted (at least one when any is left), and when none were, the seconds to wait.
   */
  async lease(perSecond: number, want: number): Promise<{ granted: number; wait: number }> {
    const capacity = Math.max(1, perSecond * 2);
    const now = Date.now();
    this.tokens = this.tokens < 0 ? capacity : Math.min(capacity, this.tokens + ((now - this.updatedAt) / 1000) * perSecond);
    this.updatedAt = now;
    const granted = Math.min(Math.max(1, Math.floor(want)), Math.floor(this.tokens));
    if (granted >= 1) {
      this.tokens -= granted;
      return { granted, wait: 0 };
    }
    return { granted: 0, wait: Math.max(1, Math.ceil((1 - this.tokens) / perSecond)) };
  }
}
