// The only way out of an app isolate: a per-run capability that forwards fetch() to hosts the tenant
// granted the app, after the same destination (SSRF) rules as outbound webhooks, within a subrequest
// budget. The isolate itself has no network (globalOutbound: null).
import { RpcTarget } from "cloudflare:workers";
import { checkDestination, DestinationLookupError, hostEntryCovers, parseDestination, type DestinationPolicy } from "../platform/destination";

/** Why `url` is outside the grant list, or null. Entries are "host" (any port), "host:port" or "*.domain". */
export function grantProblem(url: string, hosts: string[]): string | null {
  const destination = parseDestination(url);
  if (typeof destination === "string") return destination;
  if (hosts.some((entry) => hostEntryCovers(entry, destination.host, destination.port))) return null;
  return `${destination.host} is not granted to this app`;
}

/** What the gateway saw during one run, read by the host to classify the run's failure. */
export interface GatewayRecord {
  subrequests: number;
  refused: string[];
  over_budget: boolean;
}

/** A refusal, answered instead of a Response; the isolate's fetch() throws it as an Error there. */
export interface GatewayRefusal {
  error: string;
}

/**
 * The fetch capability of one run, handed to the isolate over RPC (its stub dies with the run). A
 * refusal comes back as `{ error }` (message starting with the run's error code), which the isolate's
 * fetch() throws into the app: an Error made there, so it carries no host stack.
 */
export class RunGateway extends RpcTarget {
  readonly record: GatewayRecord = { subrequests: 0, refused: [], over_budget: false };

  constructor(
    private readonly hosts: string[],
    private readonly policy: DestinationPolicy,
    private readonly maxSubrequests: number,
  ) {
    super();
  }

  async fetch(request: Request): Promise<Response | GatewayRefusal> {
    if (this.record.subrequests >= this.maxSubrequests) {
      this.record.over_budget = true;
      return { error: `APP_LIMIT_EXCEEDED: more than ${this.maxSubrequests} subrequests in one run` };
    }
    this.record.subrequests++;
    let problem = grantProblem(request.url, this.hosts);
    if (!problem) {
      try {
        problem = await checkDestination(request.url, this.policy);
      } catch (err) {
        problem = err instanceof DestinationLookupError ? err.message : "destination check failed";
      }
    }
    if (problem) {
      this.record.refused.push(problem);
      return { error: `APP_HOST_NOT_GRANTED: ${problem}` };
    }
    // Redirects are handed to the app, so a redirected request passes these checks again.
    return fetch(request, { redirect: "manual" });
  }
}
