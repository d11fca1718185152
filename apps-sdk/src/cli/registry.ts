// The registry's HTTP API as the CLI calls it: publishers, keys and signed packages, with the
// error envelope `{ error: { code, message, details } }` turned into readable lines.
import type { PublicKeyJwk } from "../blueprint";
import { CliError, messageOf } from "./io";

export const DEFAULT_URL = "http://127.0.0.1:8787";

/** A request the server answered with an error status. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
    this.name = "RegistryError";
  }

  /** `409 CONFLICT: message` and one line per detail (file and path first when the server names them). */
  lines(): string[] {
    return [`${this.status} ${this.code}: ${this.message}`, ...detailLines(this.details)];
  }
}

function detailLine(d: unknown): string {
  if (typeof d !== "object" || d === null) return JSON.stringify(d);
  const { file, path, message, ...rest } = d as { file?: unknown; path?: unknown; message?: unknown };
  const where = [file, path].filter((p) => typeof p === "string" && p !== "").join(": ");
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
  if (typeof message === "string") return `${where ? `${where}: ` : ""}${message}${extra}`;
  return `${where ? `${where}: ` : ""}${JSON.stringify(rest)}`;
}

function detailLines(details: unknown): string[] {
  if (details === undefined || details === null) return [];
  return (Array.isArray(details) ? details : [details]).map((d) => `  ${detailLine(d)}`);
}

/** The server's base URL from `--url`, ERP_EDGE_URL or the local default; only http(s). */
export function serverUrl(flag: string | undefined, env: Record<string, string | undefined>): URL {
  const text = flag ?? env.ERP_EDGE_URL ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`'${text}' is not a URL (--url or ERP_EDGE_URL, e.g. ${DEFAULT_URL})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CliError(`'${text}' must be an http or https URL`);
  if (url.username || url.password) throw new CliError("the server URL must not contain credentials; the token goes in ERP_EDGE_TOKEN");
  return url;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** True when a token would travel unencrypted to another machine. */
export const isCleartextRemote = (url: URL) => url.protocol === "http:" && !LOOPBACK.has(url.hostname);

/** `@acme/name` as a path: the scope's `@` and the `/` stay literal, each part is encoded. */
export const packagePath = (name: string) => name.split("/").map(encodeURIComponent).join("/").replace(/^%40/, "@");

export interface RegistryClientOptions {
  url: URL;
  token: string;
  fetch?: typeof fetch;
  /** Per request; publishing a large bundle over a slow link needs more than a read. */
  timeoutMs?: number;
}

export class RegistryClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: RegistryClientOptions) {
    this.base = options.url.href.replace(/\/+$/, "");
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** Sends a request; RegistryError for an error status, CliError when the server cannot be reached. */
  async request(method: string, path: string, body?: FormData | object): Promise<unknown> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.token}`, accept: "application/json" };
    let payload: BodyInit | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await this.fetch(`${this.base}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = (err as Error).name === "TimeoutError" ? "no answer in time" : (cause?.code ?? cause?.message ?? messageOf(err));
      throw new CliError(`cannot reach ${this.base} (${why}); is erp-edge running there? (\`npm start\` serves ${DEFAULT_URL}; set --url or ERP_EDGE_URL otherwise)`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok) return json;
    const envelope = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
    if (envelope && typeof envelope.code === "string") {
      throw new RegistryError(res.status, envelope.code, typeof envelope.message === "string" ? envelope.message : "(no message)", envelope.details);
    }
    throw new RegistryError(res.status, `HTTP_${res.status}`, `${method} ${path} answered ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`, undefined);
  }

  createPublisher(name: string, publicKey: PublicKeyJwk): Promise<unknown> {
    return this.request("POST", "/v1/registry/publishers", { name, public_key: publicKey });
  }

  addPublisherKey(name: string, publicKey: PublicKeyJwk): Promise<unknown> {
    return this.request("POST", `/v1/registry/publishers/${packagePath(name)}/keys`, { public_key: publicKey });
  }

  /** Publishes a signed archive: 201 `{ name, version, digest }`. */
  async publish(archive: Uint8Array, signature: string, fileName: string): Promise<{ name: string; version: string; digest: string }> {
    const form = new FormData();
    form.set("bundle", new Blob([archive as Uint8Array<ArrayBuffer>], { type: "application/zip" }), fileName);
    form.set("signature", signature);
    return (await this.request("POST", "/v1/registry/packages", form)) as { name: string; version: string; digest: string };
  }
}
