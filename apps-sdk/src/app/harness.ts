// The local harness: runs an app's action in Node the way the host runs it in its sandbox (input and
// output validated, fetch limited to the action's declared hosts, state kept per app), for unit tests.
import { AppRunError, type ActionContext, type App } from "./define";

export interface HarnessOptions<C> {
  config?: C;
  /** The network: defaults to the global fetch. Calls to hosts the action did not declare are refused first. */
  fetch?: typeof fetch;
  /** The app's state store: a Map to inspect it after the run; a new empty one by default. */
  state?: Map<string, unknown>;
  tenant_id?: string;
  integration_id?: string | null;
}

export interface HarnessResult<O> {
  output: O;
  logs: { level: "info" | "warn" | "error"; message: string }[];
}

const MAX_STATE_VALUE_BYTES = 64 * 1024;

const urlOf = (input: RequestInfo | URL) => new URL(input instanceof Request ? input.url : String(input));

/**
 * Whether a declared host covers `url` as the host's gateway judges it: "host" (any port),
 * "host:port", or "*.domain" (names under the domain).
 */
function covers(entry: string, url: URL): boolean {
  const [name, port] = entry.toLowerCase().split(/:(?=\d+$)/) as [string, string | undefined];
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const urlPort = url.port || (url.protocol === "https:" ? "443" : "80");
  if (port !== undefined && port !== urlPort) return false;
  return name.startsWith("*.") ? host.endsWith(name.slice(1)) : host === name.replace(/^\[|\]$/g, "");
}

/**
 * Runs `name` of `app` with `input`.
 * @example const { output } = await runAction(app, "normalise", { value: "/Date(0)/" });
 */
export async function runAction<C, O = unknown>(app: App<C>, name: string, input: unknown, options: HarnessOptions<C> = {}): Promise<HarnessResult<O>> {
  const action = Object.hasOwn(app.actions, name) ? app.actions[name] : undefined;
  if (!action) throw new AppRunError("APP_NOT_FOUND", `${app.name} has no action '${name}' (it has ${Object.keys(app.actions).join(", ") || "none"})`);
  const logs: HarnessResult<O>["logs"] = [];
  const state = options.state ?? new Map<string, unknown>();
  const network = options.fetch ?? globalThis.fetch;
  const allowed = new Set(action.permissions.hosts);
  const ctx: ActionContext<C> = {
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = urlOf(input);
      if (![...allowed].some((entry) => covers(entry, url))) {
        throw new AppRunError("APP_HOST_NOT_GRANTED", `Host '${url.host}' is not among the hosts action '${name}' declares (${[...allowed].join(", ") || "none"})`);
      }
      return network(input, init);
    }) as typeof fetch,
    config: (options.config ?? {}) as C,
    log: {
      info: (...a) => logs.push({ level: "info", message: a.map(String).join(" ") }),
      warn: (...a) => logs.push({ level: "warn", message: a.map(String).join(" ") }),
      error: (...a) => logs.push({ level: "error", message: a.map(String).join(" ") }),
    },
    state: {
      get: async <T>(key: string) => (state.has(key) ? (structuredClone(state.get(key)) as T) : undefined),
      put: async (key: string, value: unknown) => {
        const text = JSON.stringify(value);
        if (text === undefined || new TextEncoder().encode(text).byteLength > MAX_STATE_VALUE_BYTES) {
          throw new Error(`State value for '${key}' must be JSON of at most ${MAX_STATE_VALUE_BYTES} bytes`);
        }
        state.set(key, JSON.parse(text));
      },
      delete: async (key: string) => void state.delete(key),
    },
    tenant_id: options.tenant_id ?? "tenant-local",
    integration_id: options.integration_id ?? null,
  };
  const output = (await action.run(input, ctx)) as O;
  return { output, logs };
}
