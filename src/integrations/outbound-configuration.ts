// The configuration of outbound use cases (epilot's contract): which core events go to the ERP,
// mapped how, delivered where. It lives with the integrations that store it; the outbound context
// runs it and re-exports it from its schema.
import { z } from "@hono/zod-openapi";
import { AppActionRef } from "../platform/app-ref";
import { assertParses, ExpressionError } from "../mapping/expression";
import { AppError } from "../platform/errors";
import { newUuid } from "../platform/ids";
import { checkDestination, DestinationLookupError, destinationPolicy, parseDestination, type DestinationEnv, type Resolver } from "../platform/destination";

const Expression = z.string().min(1).max(50_000);
const EnvRef = z.string().regex(/^\{\{env\.[A-Za-z_][A-Za-z0-9_.-]*\}\}$/, "an environment reference like {{env.API_KEY}}");
const SecretValue = z.union([EnvRef, z.string().min(1).max(1000)]).openapi({ description: "A value, or {{env.<key>}} to use an environment value (SecretString for secrets)" });

/**
 * A URL erp-edge will call: http(s), no user:pass@. Whether its host may be reached depends on the
 * deployment's allow-list and DNS, so that is checked where configurations are saved
 * (assertSafeOutboundConfiguration) and again before every request.
 */
const DestinationUrl = z
  .string()
  .max(2048)
  .superRefine((url, ctx) => {
    const parsed = parseDestination(url);
    if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed, params: { reason: "unsafe_destination" } });
  })
  .openapi({ format: "uri", description: "http or https; no credentials in the URL; loopback, private, link-local, metadata and local names are refused" });

export const WebhookAuth = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }),
  z.object({ type: z.literal("basic"), username: SecretValue, password: SecretValue }),
  z.object({ type: z.literal("api_key"), header: z.string().min(1).max(128).default("x-api-key"), value: SecretValue }),
  z.object({ type: z.literal("oauth2_client_credentials"), token_url: DestinationUrl, client_id: SecretValue, client_secret: SecretValue, scope: z.string().max(1000).optional() }),
]);
export type WebhookAuth = z.infer<typeof WebhookAuth>;

/**
 * Where a webhook mapping delivers: epilot's form names a webhook configuration by `webhook_id`
 * (src/webhook-configs, resolved to its URL when a delivery is made); erp-edge's own form gives the
 * `url` inline. Exactly one of the two (checked by OutboundConfiguration, which reports the path). `webhook_name` and `webhook_url` are epilot's display caches,
 * stored and returned as given, never called.
 */
export const WebhookDelivery = z
  .object({
    type: z.literal("webhook"),
    webhook_id: z.string().uuid().optional().openapi({ description: "A webhook configuration of this tenant (epilot's form)" }),
    webhook_name: z.string().max(255).optional().openapi({ description: "Cached webhook name, for display only" }),
    webhook_url: z.string().max(2048).optional().openapi({ description: "Cached webhook URL, for display only (never called)" }),
    url: DestinationUrl.optional().openapi({ description: "The URL to deliver to (erp-edge's inline form, instead of webhook_id)" }),
    auth: WebhookAuth.optional(),
    max_attempts: z.number().int().min(1).max(100).default(8),
    rate_limit_per_second: z.number().min(0.1).max(1000).optional(),
    ordered: z.boolean().default(false),
  })
  .openapi("WebhookDelivery");
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const PollDelivery = z
  .object({
    type: z.literal("poll"),
    retention_days: z.number().int().min(1).max(90).default(7),
    max_delivery_attempts: z.number().int().min(1).max(100).default(10),
    poison_policy: z.enum(["dead_letter", "block"]).default("dead_letter"),
  })
  .openapi("PollDelivery");
export type PollDelivery = z.infer<typeof PollDelivery>;

export const OutboundMapping = z
  .object({
    // epilot's mapping id is optional: one is minted when absent, then kept (clients send it back).
    id: z
      .string()
      .regex(/^[a-zA-Z0-9_-]{1,64}$/)
      .default(() => newUuid())
      .openapi({ description: "Stable id of the mapping (a UUID is minted when absent)" }),
    name: z.string().min(1).max(255),
    jsonata_expression: Expression.openapi({ description: "Maps the core event envelope to the body sent to the ERP" }),
    enabled: z.boolean().default(true),
    delivery: z.discriminatedUnion("type", [WebhookDelivery, PollDelivery]),
    transform: AppActionRef.optional().openapi({ description: "An app action applied to the JSONata result; its output is the body sent" }),
    created_at: z.string().datetime({ offset: true }).optional().openapi({ description: "epilot's mapping timestamp, stored as given" }),
    updated_at: z.string().datetime({ offset: true }).optional().openapi({ description: "epilot's mapping timestamp, stored as given" }),
  })
  .openapi("OutboundMapping");
export type OutboundMapping = z.infer<typeof OutboundMapping>;

export const OutboundConfiguration = z
  .object({
    event_catalog_event: z.string().min(1).max(255).openapi({ description: "Core event name, e.g. contact.updated or MeterReadingAdded" }),
    event_filter: Expression.optional().openapi({ description: "JSONata predicate over the envelope" }),
    ack_tracking: z.enum(["on", "off"]).default("off"),
    mappings: z.array(OutboundMapping).min(1).max(20),
  })
  .superRefine((config, ctx) => {
    const check = (path: (string | number)[], text: string | undefined) => {
      if (text === undefined) return;
      try {
        assertParses(text);
      } catch (err) {
        if (!(err instanceof ExpressionError)) throw err;
        ctx.addIssue({ code: "custom", path, message: `JSONata ${err.code} at position ${err.position ?? 0}: ${err.message}`, params: { jsonata_code: err.code, position: err.position ?? 0 } });
      }
    };
    check(["event_filter"], config.event_filter);
    const ids = new Set<string>();
    config.mappings.forEach((m, i) => {
      check(["mappings", i, "jsonata_expression"], m.jsonata_expression);
      if (m.delivery.type === "webhook" && (m.delivery.url === undefined) === (m.delivery.webhook_id === undefined)) {
        ctx.addIssue({ code: "custom", path: ["mappings", i, "delivery", "webhook_id"], message: "give exactly one of webhook_id (a webhook configuration) and url" });
      }
      if (ids.has(m.id)) ctx.addIssue({ code: "custom", path: ["mappings", i, "id"], message: `duplicate mapping id '${m.id}'` });
      ids.add(m.id);
    });
  })
  .openapi("OutboundConfiguration");
export type OutboundConfiguration = z.infer<typeof OutboundConfiguration>;

/** The envelope every core event travels in. */

// ---- save-time destination checks --------------------------------------------------------------

/**
 * Refuses an outbound configuration whose webhook url or OAuth token_url the destination rules
 * refuse, with VALIDATION_FAILED naming each path. Call it wherever a configuration is saved
 * (the rules depend on env, which the zod schema cannot see). `path` prefixes the reported paths.
 * @example await assertSafeOutboundConfiguration(body.configuration, c.env, ["configuration"])
 */
export async function assertSafeOutboundConfiguration(
  config: OutboundConfiguration,
  env: DestinationEnv,
  path: (string | number)[] = [],
  resolve?: Resolver,
): Promise<void> {
  const policy = destinationPolicy(env, resolve);
  const urls: { at: (string | number)[]; url: string }[] = [];
  config.mappings.forEach((m, i) => {
    if (m.delivery.type !== "webhook") return;
    // A webhook_id delivery has no URL yet: its webhook configuration's URL is checked where it is saved and when called.
    if (m.delivery.url !== undefined) urls.push({ at: [...path, "mappings", i, "delivery", "url"], url: m.delivery.url });
    if (m.delivery.auth?.type === "oauth2_client_credentials") urls.push({ at: [...path, "mappings", i, "delivery", "auth", "token_url"], url: m.delivery.auth.token_url });
  });
  const issues = [];
  for (const { at, url } of urls) {
    let problem: string | null;
    try {
      problem = await checkDestination(url, policy);
    } catch (err) {
      if (!(err instanceof DestinationLookupError)) throw err;
      problem = err.message;
    }
    if (problem) issues.push({ path: at.join("."), message: `unsafe destination: ${problem}`, code: "unsafe_destination" });
  }
  if (issues.length > 0) throw new AppError("VALIDATION_FAILED", "Invalid request body", issues);
}

/**
 * assertSafeOutboundConfiguration for each outbound use case of a list (an integration's
 * `use_cases`), reporting paths as `use_cases.<i>.configuration...`.
 */
export async function assertSafeOutboundUseCases(
  useCases: readonly ({ type: "outbound"; configuration: OutboundConfiguration } | { type: "inbound" | "file_proxy" | "pull" | "managed_call" | "secure_proxy" })[],
  env: DestinationEnv,
  path: (string | number)[] = ["use_cases"],
): Promise<void> {
  const failures: unknown[] = [];
  for (const [i, uc] of useCases.entries()) {
    if (uc.type !== "outbound") continue;
    try {
      await assertSafeOutboundConfiguration(uc.configuration, env, [...path, i, "configuration"]);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      failures.push(...(err.details as unknown[]));
    }
  }
  if (failures.length > 0) throw new AppError("VALIDATION_FAILED", "Invalid request body", failures);
}
