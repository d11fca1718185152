// Destination safety: webhooks must not reach loopback, private, link-local or metadata addresses
// (SSRF), unless the operator lists a host as allowed for local development.

const BLOCKED_NAMES = /^(localhost|.*\.localhost|metadata|metadata\.google\.internal|.*\.internal|.*\.local)$/i;

function ipv4(host: string): number[] | null {
  const m = host.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : null;
}

function privateIpv4([a, b]: number[]): boolean {
  return (
    a === 0 || a === 10 || a === 127 || (a === 100 && b! >= 64 && b! <= 127) || (a === 169 && b === 254) ||
    (a === 172 && b! >= 16 && b! <= 31) || (a === 192 && b === 168) || (a === 198 && (b === 18 || b === 19)) || a! >= 224
  );
}

function privateIpv6(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "::" || h === "::1") return true;
  if (/^f[cd][0-9a-f]{2}:/.test(h) || /^fe[89ab][0-9a-f]:/.test(h)) return true; // unique local, link-local
  const mapped = h.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  return mapped ? privateIpv4(ipv4(mapped[1]!)!) : false;
}

/** Why a URL may not receive webhooks, or null when it may. `allowed` lists "host" or "host:port". */
export function destinationProblem(rawUrl: string, allowed: string[]): string | null {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return "not a URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return `scheme ${url.protocol} not allowed`;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  if (allowed.includes(host) || allowed.includes(`${host}:${port}`)) return null;
  const v4 = ipv4(host);
  if ((v4 && privateIpv4(v4)) || (host.includes(":") && privateIpv6(host)) || BLOCKED_NAMES.test(host)) {
    return `destination ${host} is a loopback, private, link-local or metadata address`;
  }
  return null;
}

export const allowedPrivateHosts = (env: Pick<Env, "OUTBOUND_ALLOWED_PRIVATE_HOSTS">) =>
  (env.OUTBOUND_ALLOWED_PRIVATE_HOSTS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
