// RateLimiter: one Durable Object per tenant holding a token bucket, so the limit holds across every
// edge location and isolate. State is in memory: a bucket that is evicted simply starts full again.
import { DurableObject } from "cloudflare:workers";

export class RateLimiter extends DurableObject<Env> {
  private tokens = -1;
  private updatedAt = 0;

  /**
   * Takes one token from a bucket refilled at `perSecond` and holding at most 2 × `perSecond`.
   * Returns 0 when allowed, else the seconds to wait.
   */
  async take(perSecond: number): Promise<number> {
    const capacity = Math.max(1, perSecond * 2);
    const now = Date.now();
    this.tokens = this.tokens < 0 ? capacity : Math.min(capacity, this.tokens + ((now - this.updatedAt) / 1000) * perSecond);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / perSecond));
  }
}
