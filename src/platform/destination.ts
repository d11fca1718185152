// Destination safety (SSRF): outbound requests (webhook POSTs, OAuth token requests) may only go to
// public unicast addresses, unless the operator allows a host for local receivers. See docs/security-outbound.md.
import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Suffixes of names that never leave the local network or the cloud provider (RFC 6761, 6762, 8375). */
const LOCAL_SUFFIXES = ["localhost", "local", "internal", "localdomain", "home.arpa", "lan", "intranet", "corp", "home", "private"];

const cidr = (text: string) => ipaddr.parseCIDR(text) as [ipaddr.IPv6, number];
const IPV4_COMPATIBLE = cidr("::/96"); // deprecated ::a.b.c.d
const IPV4_TRANSLATED = cidr("::ffff:0:0:0/96"); // SIIT ::ffff:0:a.b.c.d (RFC 6145)
const NAT64_WELL_KNOWN = cidr("64:ff9b::/96"); // RFC 6052
const NAT64_LOCAL_USE = cidr("64:ff9b:1::/48"); // RFC 8215: local use, the IPv4 part's position is site-defined
const SIX_TO_FOUR = cidr("2002::/16"); // RFC 3056: 2002:AABB:CCDD::/48
const TEREDO = cidr("2001::/32"); // RFC 4380: server IPv4 in bits 32-63, client IPv4 inverted in the last 32

const ipv4At = (parts: number[], index: number, invert = false) => {
  const [hi, lo] = [parts[index]!, parts[index + 1]!].map((p) => (invert ? p ^ 0xffff : p));
  return new ipaddr.IPv4([hi! >> 8, hi! & 0xff, lo! >> 8, lo! & 0xff]);
};

/**
 * The IPv4 addresses an IPv6 address carries and would reach through a translator or tunnel;
 * null when it embeds none. (IPv4-mapped addresses are turned into IPv4 before this, by `ipaddr.process`.)
 */
function embeddedIpv4(address: ipaddr.IPv6): ipaddr.IPv4[] | null {
  const parts = address.parts;
  if (address.match(IPV4_COMPATIBLE) || address.match(IPV4_TRANSLATED) || address.match(NAT64_WELL_KNOWN)) return [ipv4At(parts, 6)];
  if (address.match(SIX_TO_FOUR)) return [ipv4At(parts, 1)];
  if (address.match(TEREDO)) return [ipv4At(parts, 2), ipv4At(parts, 6, true)];
  return null;
}

/**
 * Why an IP address may not be reached, or null for a public unicast one.
 * @example addressProblem(ipaddr.process("::ffff:7f00:1")) // "127.0.0.1 is loopback"
 */
export function addressProblem(address: Address): string | null {
  if (address.kind() === "ipv6") {
    const v6 = address as ipaddr.IPv6;
    // :: and ::1 sit inside ::/96 but are IPv6's own unspecified and loopback addresses.
    const range = v6.range();
    if (range === "unspecified" || range === "loopback") return `${v6.toString()} is ${range}`;
    if (v6.match(NAT64_LOCAL_USE)) return `${v6.toString()} is in the local-use NAT64 prefix 64:ff9b:1::/48`;
    const embedded = embeddedIpv4(v6);
    if (embedded) {
      const problem = embedded.map(addressProblem).find((p) => p !== null);
      return problem ? `${v6.toString()} embeds ${problem}` : null;
    }
    return range === "unicast" ? null : `${v6.toString()} is ${range}`;
  }
  const range = address.range();
  return range === "unicast" ? null : `${address.toString()} is ${range}`;
}

/** Parses an IP address text (IPv4-mapped IPv6 becomes IPv4); null when it is not one. */
export function parseAddress(text: string): Address | null {
  return ipaddr.isValid(text) ? ipaddr.process(text) : null;
}

/** Why a host name may not be reached, or null. Names are lowercase without trailing dots. */
function nameProblem(name: string): string | null {
  if (name === "") return "empty host";
  const suffix = LOCAL_SUFFIXES.find((s) => name === s || name.endsWith(`.${s}`));
  if (suffix) return `'${name}' is a local name (.${suffix})`;
  if (name.startsWith("metadata")) return `'${name}' looks like a cloud metadata service`;
  return name.includes(".") ? null : `single-label name '${name}' is not a public host`;
}

/** A destination URL in canonical form: `host` without brackets or trailing dots, `port` always set. */
export interface CanonicalDestination {
  url: URL;
  host: string;
  port: string;
  address: Address | null;
}

/**
 * Parses a destination URL the way fetch() will, and checks what does not depend on the network:
 * http(s) only, no user:pass@. Returns the canonical host and, for an IP literal, its parsed address.
 */
export function parseDestination(rawUrl: string): CanonicalDestination | string {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return "not a URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return `scheme ${url.protocol} not allowed (http or https only)`;
  if (url.username || url.password) return "credentials in the URL (user:pass@) are not allowed; use the auth settings";
  const bracketed = url.hostname.startsWith("[");
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.+$/, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  // The URL parser has already turned decimal, hex, octal and short IPv4 forms into a dotted quad;
  // anything else ipaddr.js would read as an address is ambiguous and refused.
  let address: Address | null = null;
  if (bracketed) address = ipaddr.IPv6.isValid(host) ? ipaddr.process(host) : null;
  else if (ipaddr.IPv4.isValidFourPartDecimal(host)) address = ipaddr.IPv4.parse(host);
  else if (ipaddr.isValid(host)) return `ambiguous address form '${host}'`;
  if (bracketed && !address) return `invalid IPv6 address '${host}'`;
  return { url, host, port, address };
}

/**
 * Whether host list `entry` covers canonical `host` on `port`: "host" (any port), "host:port", or
 * "*.domain" (any name under the domain, not the domain itself; optionally ":port"). Apps' host
 * grants and file proxies' allowed_hosts are both judged by it.
 */
export function hostEntryCovers(entry: string, host: string, port: string): boolean {
  const wildcard = entry.startsWith("*.");
  const parsed = parseDestination(`http://${wildcard ? entry.slice(2) : entry}`);
  if (typeof parsed === "string") return false;
  if (/:\d+$/.test(entry) && parsed.port !== port) return false;
  return wildcard ? host.endsWith(`.${parsed.host}`) : host === parsed.host;
}

/** Canonical "host" and "host:port" entries of the allow-list, so "[::1]:8080" or "LOCALHOST." match what URLs give. */
function canonicalAllowList(allowed: string[]): Set<string> {
  const out = new Set<string>();
  for (const entry of allowed) {
    const parsed = parseDestination(`http://${entry}`);
    if (typeof parsed === "string") continue;
    out.add(/:\d+$/.test(entry) ? `${parsed.host}:${parsed.port}` : parsed.host);
  }
  return out;
}

/** The checks that need no network: a problem, or the canonical destination and whether the allow-list exempts it. */
function judgeForm(rawUrl: string, allowed: string[]): { problem: string } | { destination: CanonicalDestination; exempt: boolean } {
  const destination = parseDestination(rawUrl);
  if (typeof destination === "string") return { problem: destination };
  const list = canonicalAllowList(allowed);
  if (list.has(destination.host) || list.has(`${destination.host}:${destination.port}`)) return { destination, exempt: true };
  const problem = destination.address ? addressProblem(destination.address) : nameProblem(destination.host);
  return problem ? { problem } : { destination, exempt: false };
}

/**
 * Why a URL may not receive outbound requests, or null when it may. No DNS: names are judged by
 * their form only. `allowed` lists "host" or "host:port" entries exempt from the address rules.
 * @example destinationProblem("http://[::ffff:127.0.0.1]/", []) // "127.0.0.1 is loopback"
 */
export function destinationProblem(rawUrl: string, allowed: string[]): string | null {
  const verdict = judgeForm(rawUrl, allowed);
  return "problem" in verdict ? verdict.problem : null;
}

/** Every A and AAAA answer for a name (CNAMEs followed); throws when the lookup itself fails. */
export type Resolver = (name: string) => Promise<string[]>;

/** DNS-over-HTTPS lookups at Cloudflare's resolver (JSON API), A and AAAA. */
export const dohResolver: Resolver = async (name) => {
  const answers = await Promise.all(
    (["A", "AAAA"] as const).map(async (type) => {
      const res = await fetch(`https://cloudflare-dns.com/dns-query?name=${encodeURIComponent(name)}&type=${type}`, {
        headers: { accept: "application/dns-json" },
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) throw new Error(`DNS-over-HTTPS answered ${res.status}`);
      const body = (await res.json()) as { Status: number; Answer?: { type: number; data: string }[] };
      // 0 NOERROR, 3 NXDOMAIN (no address: nothing to refuse, and the request will fail anyway).
      if (body.Status !== 0 && body.Status !== 3) throw new Error(`DNS lookup of ${name} failed with status ${body.Status}`);
      return (body.Answer ?? []).filter((a) => a.type === 1 || a.type === 28).map((a) => a.data);
    }),
  );
  return answers.flat();
};

export class DestinationLookupError extends Error {
  override name = "DestinationLookupError";
}

/** How destinations are judged: the allow-list, and a resolver when names are checked by DNS. */
export interface DestinationPolicy {
  allowed: string[];
  resolve?: Resolver;
}

/**
 * destinationProblem, then, when the policy has a resolver and the host is a name, every address
 * it resolves to must be public unicast too. Throws DestinationLookupError when the lookup fails
 * (callers fail closed: not delivered, not saved).
 */
export async function checkDestination(rawUrl: string, policy: DestinationPolicy): Promise<string | null> {
  const verdict = judgeForm(rawUrl, policy.allowed);
  if ("problem" in verdict) return verdict.problem;
  const { destination, exempt } = verdict;
  if (exempt || destination.address || !policy.resolve) return null;
  let answers: string[];
  try {
    answers = await policy.resolve(destination.host);
  } catch (err) {
    throw new DestinationLookupError(`could not resolve ${destination.host} to check it: ${(err as Error).message}`);
  }
  for (const answer of answers) {
    const address = parseAddress(answer);
    const why = address ? addressProblem(address) : `'${answer}', which is not an address`;
    if (why) return `${destination.host} resolves to ${why}`;
  }
  return null;
}

/** What the destination rules read from the environment (wrangler.toml [vars]). */
export interface DestinationEnv {
  OUTBOUND_ALLOWED_PRIVATE_HOSTS?: string;
  OUTBOUND_DNS_CHECK?: string;
}

export const allowedPrivateHosts = (env: DestinationEnv) =>
  (env.OUTBOUND_ALLOWED_PRIVATE_HOSTS ?? "").split(",").map((s) => s.trim()).filter(Boolean);

/** The policy the Worker runs with: its allow-list, and DNS-over-HTTPS checks when OUTBOUND_DNS_CHECK is "true". */
export function destinationPolicy(env: DestinationEnv, resolve: Resolver = dohResolver): DestinationPolicy {
  return { allowed: allowedPrivateHosts(env), ...(env.OUTBOUND_DNS_CHECK === "true" && { resolve }) };
}
