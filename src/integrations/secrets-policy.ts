// Who may make erp-edge use an integration's environment values (secrets).
//
// An outbound delivery's auth fields, and a file proxy's templates, can reference `{{env.KEY}}`; at
// send time the value is decrypted and sent to the delivery's URL (or OAuth token URL, or archive). Whoever can save such a
// configuration can point it at a host they control and read the secret there. An inbound
// use case's `webhook.secret_env` makes a value the key that signed webhooks are checked against,
// which turns the webhook route into an oracle for guessing it. A managed call's configuration and an
// integration's connector_config send `{{env.KEY}}` to a host the same caller sets. Saving any of these needs the
// `secrets:use` scope on top of `integrations:write`. Tokens for day-to-day configuration work
// (mappings, filters) do not need it; the operator issues it to whoever owns the credentials.
import type { Caller } from "../platform/app";
import { AppError } from "../platform/errors";
import { templateNames } from "../platform/template";
import { fileProxyEnvironmentKeys, type FileProxyConfiguration } from "./file-proxy-configuration";
import type { OutboundConfiguration } from "./outbound-configuration";

export const SECRETS_SCOPE = "secrets:use";

const ENV_REF = /^\{\{env\.(.+)\}\}$/;

/** The environment keys an outbound configuration's deliveries send anywhere, e.g. ["SAP_PASSWORD"]. */
export function environmentReferences(config: OutboundConfiguration): string[] {
  const keys = new Set<string>();
  for (const mapping of config.mappings) {
    if (mapping.delivery.type !== "webhook" || !mapping.delivery.auth) continue;
    for (const value of Object.values(mapping.delivery.auth)) {
      const key = typeof value === "string" ? value.match(ENV_REF)?.[1] : undefined;
      if (key) keys.add(key);
    }
  }
  return [...keys];
}

/**
 * Every `{{env.KEY}}` anywhere in a managed call's configuration or an integration's connector_config:
 * its path, headers, query and auth are all sent to the partner's host, which the same caller sets.
 */
function environmentKeysIn(value: unknown): string[] {
  const keys = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      if (!v.includes("{{")) return;
      // Parsed as the template engine parses it, so every form counts: {{env.X}}, {{&env.X}},
      // {{{env.X}}}, a section {{#env.X}}…{{/env.X}} or {{#env}}{{X}}{{/env}}. A string the engine
      // cannot parse is refused at save anyway; it counts as reading the whole environment here.
      let names: string[];
      try {
        names = templateNames(v);
      } catch {
        names = /env/.test(v) ? ["env"] : [];
      }
      for (const name of names) if (name === "env" || name.startsWith("env.")) keys.add(name === "env" ? "*" : name.slice(4));
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === "object") Object.values(v).forEach(visit);
  };
  visit(value);
  return [...keys];
}

/** The environment keys a use case uses as secrets: sent by outbound deliveries or managed calls, or a webhook's signing key. */
function secretsUsedBy(uc: { type: string; configuration?: unknown }): string[] {
  if (uc.type === "outbound" && uc.configuration) return environmentReferences(uc.configuration as OutboundConfiguration);
  if (uc.type === "managed_call") return environmentKeysIn(uc.configuration);
  if (uc.type === "file_proxy" && uc.configuration) return fileProxyEnvironmentKeys(uc.configuration as FileProxyConfiguration);
  const webhook = uc.type === "inbound" ? (uc.configuration as { webhook?: { secret_env?: unknown } } | undefined)?.webhook : undefined;
  return typeof webhook?.secret_env === "string" ? [webhook.secret_env] : [];
}

/**
 * Refuses (403) saving use cases that use environment values as secrets (outbound auth or file-proxy
 * templates sending `{{env.*}}`, an inbound webhook's `secret_env`) unless the caller holds `secrets:use`.
 * `useCases` are the use cases as they will be stored.
 */
export function assertMayUseSecrets(caller: Caller, useCases: readonly { type: string; slug?: string; configuration?: unknown }[]): void {
  if (caller.scopes.includes(SECRETS_SCOPE)) return;
  for (const uc of useCases) {
    const keys = secretsUsedBy(uc);
    if (keys.length > 0) {
      throw new AppError("FORBIDDEN", `Use case '${uc.slug ?? ""}' uses environment values as secrets (${keys.join(", ")}); saving it needs the '${SECRETS_SCOPE}' scope`, {
        required_scope: SECRETS_SCOPE,
        environment_keys: keys,
      });
    }
  }
}

/** Refuses (403) saving an integration whose connector_config sends `{{env.*}}` values, unless the caller holds `secrets:use`. */
export function assertMayUseConnectorSecrets(caller: Caller, connectorConfig: unknown): void {
  if (caller.scopes.includes(SECRETS_SCOPE)) return;
  const keys = environmentKeysIn(connectorConfig);
  if (keys.length > 0) {
    throw new AppError("FORBIDDEN", `connector_config uses environment values as secrets (${keys.join(", ")}); saving it needs the '${SECRETS_SCOPE}' scope`, {
      required_scope: SECRETS_SCOPE,
      environment_keys: keys,
    });
  }
}
