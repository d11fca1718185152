// defineApp / defineAction: how a partner writes an erp-edge app. The objects they return are what
// an app's bundle default-exports and what the host's isolate harness runs: `actions.<name>.run`
// validates the input, runs the author's code and validates the output, the same in the Node
// harness (runAction) and inside the sandbox, because the bundle carries the SDK and zod with it.
import { z } from "zod";
import { PackageName, ExactVersion } from "../blueprint/manifest";

/** What an action's code may use; every capability is scoped by the host to (tenant, app). */
export interface ActionContext<Config = Record<string, unknown>> {
  /** Reaches only the hosts the tenant granted this app (and the action declared). */
  fetch: typeof fetch;
  /** The app's configuration for this tenant, secrets included. */
  config: Config;
  log: { info(...args: unknown[]): void; warn(...args: unknown[]): void; error(...args: unknown[]): void };
  /** A small durable key-value store per tenant and app (a sync cursor, say). Values are JSON. */
  state: { get<T = unknown>(key: string): Promise<T | undefined>; put(key: string, value: unknown): Promise<void>; delete(key: string): Promise<void> };
  tenant_id: string;
  integration_id: string | null;
}

/** The classified failure of a run, named like the host's error codes. */
export class AppRunError extends Error {
  constructor(
    readonly code: "APP_INPUT_INVALID" | "APP_OUTPUT_INVALID" | "APP_HOST_NOT_GRANTED" | "APP_NOT_FOUND",
    message: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message);
    this.name = "AppRunError";
  }
}

const ACTION_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
const issuesOf = (error: z.ZodError) => error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));

export interface ActionDefinition<I extends z.ZodType, O extends z.ZodType, C> {
  name: string;
  description: string;
  input: I;
  output: O;
  permissions?: { hosts: string[] };
  run(input: z.output<I>, ctx: ActionContext<C>): Promise<z.input<O>> | z.input<O>;
}

export interface Action<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType, C = any> {
  readonly kind: "erp-edge.action";
  readonly name: string;
  readonly description: string;
  readonly input: I;
  readonly output: O;
  readonly permissions: { hosts: string[] };
  /** Validates `input` (APP_INPUT_INVALID), runs the action, validates its output (APP_OUTPUT_INVALID). */
  run(input: unknown, ctx: ActionContext<C>): Promise<z.output<O>>;
}

/**
 * An action: a named function with zod input and output schemas.
 * @example defineAction({ name: "normalise", description: "…", input: z.object({ d: z.string() }), output: z.string(), run: ({ d }) => d.trim() })
 */
export function defineAction<I extends z.ZodType, O extends z.ZodType, C = any>(def: ActionDefinition<I, O, C>): Action<I, O, C> {
  if (!ACTION_NAME.test(def.name)) throw new TypeError(`Action name '${def.name}' must be lowercase letters, digits, '_' or '-', starting with a letter`);
  const hosts = def.permissions?.hosts ?? [];
  return Object.freeze({
    kind: "erp-edge.action" as const,
    name: def.name,
    description: def.description,
    input: def.input,
    output: def.output,
    permissions: { hosts: [...hosts] },
    async run(input: unknown, ctx: ActionContext<C>) {
      const parsed = def.input.safeParse(input);
      if (!parsed.success) throw new AppRunError("APP_INPUT_INVALID", `Invalid input for action '${def.name}'`, issuesOf(parsed.error));
      const result = await def.run(parsed.data, ctx);
      const checked = def.output.safeParse(result);
      if (!checked.success) throw new AppRunError("APP_OUTPUT_INVALID", `Action '${def.name}' returned output that does not match its schema`, issuesOf(checked.error));
      return checked.data;
    },
  });
}

export interface AppDefinition<C extends z.ZodType | undefined> {
  name: string;
  version: string;
  description: string;
  config?: C;
  actions: Action[];
}

export interface App<C = unknown> {
  readonly kind: "erp-edge.app";
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly config: z.ZodType | undefined;
  /** By name: what the host's harness calls (`app.actions[name].run(input, ctx)`). */
  readonly actions: Readonly<Record<string, Action<z.ZodType, z.ZodType, C>>>;
}

/** An app: its identity, optional configuration schema, and actions (names unique). */
export function defineApp<C extends z.ZodType | undefined = undefined>(def: AppDefinition<C>): App<C extends z.ZodType ? z.output<C> : Record<string, unknown>> {
  PackageName.parse(def.name);
  ExactVersion.parse(def.version);
  const actions: Record<string, Action> = Object.create(null);
  for (const action of def.actions) {
    if (action?.kind !== "erp-edge.action") throw new TypeError("actions must be made with defineAction");
    if (actions[action.name]) throw new TypeError(`Action '${action.name}' is defined twice`);
    actions[action.name] = action;
  }
  return Object.freeze({ kind: "erp-edge.app" as const, name: def.name, version: def.version, description: def.description, config: def.config, actions: Object.freeze(actions) });
}
