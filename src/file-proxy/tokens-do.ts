// FileProxyTokens: one Durable Object per integration holding its archives' OAuth2 access tokens, so
// every isolate and location reuses one token until shortly before it expires, and concurrent
// downloads wait for one token request instead of each sending their own. Tokens are kept in memory
// only: an evicted object simply asks for a new one.
import { DurableObject } from "cloudflare:workers";

/** The token request, fully rendered (secrets included): the caller has checked its destination. */
export interface TokenRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export type TokenAnswer =
  | { ok: true; access_token: string; token_type: string; expires_at: number; fetched: boolean }
  | { ok: false; kind: "auth" | "timeout" | "unreachable"; status?: number; message: string };

interface Cached {
  access_token: string;
  token_type: string;
  expires_at: number;
}

/** Tokens without `expires_in` are kept this long. */
const DEFAULT_LIFETIME_S = 300;
/** A token is renewed this long before it expires: a tenth of its lifetime, at most a minute. */
const marginMs = (lifetimeS: number) => Math.min(60_000, lifetimeS * 100);

export class FileProxyTokens extends DurableObject<Env> {
  private readonly tokens = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<TokenAnswer>>();

  /**
   * A token for the request named `key` (a digest of the rendered request, so a changed secret or
   * configuration never reuses an old token): the cached one, or a new one. `stale` is a token the
   * archive refused: it is dropped before asking again.
   */
  async token(key: string, request: TokenRequest, stale?: string): Promise<TokenAnswer> {
    const cached = this.tokens.get(key);
    if (cached && stale !== undefined && cached.access_token === stale) this.tokens.delete(key);
    else if (cached && cached.expires_at > Date.now()) return { ok: true, ...cached, fetched: false };
    let flight = this.pending.get(key);
    if (!flight) {
      flight = this.fetchToken(key, request).finally(() => this.pending.delete(key));
      this.pending.set(key, flight);
    }
    return flight;
  }

  private async fetchToken(key: string, request: TokenRequest): Promise<TokenAnswer> {
    let res: Response;
    try {
      res = await fetch(request.url, { method: "POST", headers: request.headers, body: request.body, redirect: "manual", signal: AbortSignal.timeout(request.timeoutMs) });
    } catch (err) {
      const timeout = (err as Error).name === "TimeoutError";
      return { ok: false, kind: timeout ? "timeout" : "unreachable", message: timeout ? "the token endpoint did not answer in time" : "the token endpoint could not be reached" };
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      const why = res.status >= 300 && res.status < 400 ? "redirects are not followed" : "the credentials were refused or the endpoint failed";
      return { ok: false, kind: "auth", status: res.status, message: `the token endpoint answered HTTP ${res.status}: ${why}` };
    }
    const body = (await res.json().catch(() => null)) as { access_token?: unknown; token_type?: unknown; expires_in?: unknown } | null;
    if (!body || typeof body.access_token !== "string" || body.access_token === "" || body.access_token.length > 16_384) {
      return { ok: false, kind: "auth", status: res.status, message: "the token endpoint's answer has no access_token" };
    }
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : Number(body.expires_in) > 0 ? Number(body.expires_in) : DEFAULT_LIFETIME_S;
    const token: Cached = {
      access_token: body.access_token,
      token_type: typeof body.token_type === "string" && /^[A-Za-z0-9_-]{1,32}$/.test(body.token_type) ? body.token_type : "Bearer",
      expires_at: Date.now() + lifetime * 1000 - marginMs(lifetime),
    };
    if (this.tokens.size >= 100) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(key, token);
    return { ok: true, ...token, fetched: true };
  }
}
