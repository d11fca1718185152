// App packages for the host's tests: a hand-written module (one or more actions, each the body of an
// async function of `input` and `ctx`) with its app.json, packed, signed and published through the API.
import { packBundle } from "../apps-sdk/src/blueprint/bundle";
import { api } from "./helpers";
import { signedUpload, upload, type Publisher } from "./registry-helpers";

const encoder = new TextEncoder();

export interface TestAction {
  /** The text of an async function body with `input` and `ctx` in scope. */
  body: string;
  hosts?: string[];
}

/** A module whose default export is `{ actions: { name: { run } } }`, as the SDK's defineApp makes. */
export function appModule(actions: Record<string, TestAction>, prelude = ""): string {
  const entries = Object.entries(actions).map(([name, a]) => `${JSON.stringify(name)}: { async run(input, ctx) { ${a.body} } }`);
  return `${prelude}\nexport default { kind: "erp-edge.app", actions: { ${entries.join(", ")} } };\n`;
}

export function appJson(name: string, version: string, actions: Record<string, TestAction>, configSchema?: Record<string, unknown>) {
  return {
    name,
    version,
    description: `Test app ${name}`,
    main: "app.js",
    ...(configSchema && { config_schema: configSchema }),
    actions: Object.entries(actions).map(([action, a]) => ({
      name: action,
      description: `action ${action}`,
      input_schema: {},
      output_schema: {},
      permissions: { hosts: a.hosts ?? [] },
    })),
  };
}

/** Publishes `name`@`version` made of `actions`; throws unless 201. */
export async function publishApp(
  publisher: Publisher,
  name: string,
  version: string,
  actions: Record<string, TestAction>,
  opts: { configSchema?: Record<string, unknown>; prelude?: string; source?: string } = {},
) {
  const archive = packBundle({
    "app.json": encoder.encode(JSON.stringify(appJson(name, version, actions, opts.configSchema))),
    "app.js": encoder.encode(opts.source ?? appModule(actions, opts.prelude)),
  });
  const res = await upload(publisher.token, await signedUpload(archive, name, version, publisher.privateJwk));
  if (res.status !== 201) throw new Error(`publish ${name}@${version}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { name: string; version: string; digest: string };
}

/** Trusts `publisher` in the tenant of `token` (keeping the platform publisher). */
export async function trust(token: string, publisher: string) {
  const res = await api("PUT", "/v1/blueprints/trust", { token, json: { publishers: [publisher] } });
  if (res.status !== 200) throw new Error(`trust: ${res.status} ${JSON.stringify(res.body)}`);
}

export const invoke = (token: string, name: string, action: string, body: Record<string, unknown>) =>
  api("POST", `/v1/apps/${name}/actions/${action}/invoke`, { token, json: body });
