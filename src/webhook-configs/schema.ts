// Webhook configurations as epilot's Webhooks API (webhooks.json) defines them: one zod schema per
// thing, the request bodies derived from the stored shape.
import { z } from "@hono/zod-openapi";
import { parseDestination } from "../platform/destination";

export const HttpMethod = z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]).openapi("WebhookHttpMethod");
export const AuthType = z.enum(["BASIC", "OAUTH_CLIENT_CREDENTIALS", "API_KEY", "NONE"]).openapi("WebhookAuthType");

/**
 * A URL erp-edge will call: http(s), no user:pass@. Whether its host may be reached (allow-list,
 * DNS) is checked where the configuration is saved and again before every request.
 */
const DestinationUrl = z
  .string()
  .max(2048)
  .superRefine((url, ctx) => {
    const parsed = parseDestination(url);
    if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed, params: { reason: "unsafe_destination" } });
  });

/** A secret as sent: a value, null to clear it, or absent to keep the stored one (on update). */
const SecretInput = z.string().min(1).max(4000).nullable().optional();

export const BasicAuthConfig = z.object({ username: z.string().max(1000), password: SecretInput, passwordIsEnvVar: z.boolean().optional() });
export const CustomOAuthParameter = z.object({ type: z.enum(["body", "query", "header"]), key: z.string().min(1).max(256), value: z.string().max(4000) });
export const OAuthConfig = z.object({
  clientId: z.string().max(1000),
  clientSecret: SecretInput,
  clientSecretIsEnvVar: z.boolean().optional(),
  endpoint: DestinationUrl,
  httpMethod: HttpMethod,
  customParameterList: z.array(CustomOAuthParameter).max(50).optional(),
});
export const ApiKeyConfig = z.object({
  keyName: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, "an HTTP header name"),
  keyValue: SecretInput,
  keyValueIsEnvVar: z.boolean().optional(),
});

export const Auth = z
  .object({ authType: AuthType, basicAuthConfig: BasicAuthConfig.optional(), oauthConfig: OAuthConfig.optional(), apiKeyConfig: ApiKeyConfig.optional() })
  .superRefine((auth, ctx) => {
    const needs = { BASIC: "basicAuthConfig", OAUTH_CLIENT_CREDENTIALS: "oauthConfig", API_KEY: "apiKeyConfig", NONE: null } as const;
    const field = needs[auth.authType];
    if (field && !auth[field]) ctx.addIssue({ code: "custom", path: [field], message: `${field} is required when authType is ${auth.authType}` });
  })
  .openapi("WebhookConfigAuth");
export type Auth = z.infer<typeof Auth>;

const WebhookCondition = z.object({
  field: z.string().max(500),
  operation: z.enum([
    "equals", "not_equals", "any_of", "none_of", "contains", "not_contains", "starts_with", "ends_with",
    "greater_than", "less_than", "greater_than_or_equals", "less_than_or_equals", "is_empty", "is_not_empty",
  ]),
  values: z.array(z.string().max(1000)).max(100).optional(),
  field_type: z.enum(["string", "number", "boolean", "date", "datetime"]).optional(),
  is_array_field: z.boolean().optional(),
  repeatable_item_op: z.boolean().optional(),
});

/** Custom request headers: names must be header tokens, values are sent as given (or `{{env.KEY}}`). */
const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "authorization"]);
const CustomHeaders = z
  .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, "an HTTP header name"), z.string().max(4000))
  .refine((h) => Object.keys(h).length <= 50, "at most 50 custom headers")
  .refine((h) => !Object.keys(h).some((k) => RESERVED_HEADERS.has(k.toLowerCase())), "custom headers may not set host, content-length, transfer-encoding, connection, content-type, authorization or the webhook-* signature headers");

/** Every WebhookConfig field but id, timestamps and the signing secret: what a client sends and what is stored as is. */
export const WebhookConfigFields = z.object({
  name: z.string().min(1).max(255),
  eventName: z.string().min(1).max(255),
  eventVersion: z.string().regex(/^\d+\.\d+$/).nullable().optional(),
  url: DestinationUrl.optional(),
  httpMethod: HttpMethod.optional(),
  enabled: z.boolean().optional(),
  auth: Auth.optional(),
  filter: z.object({ keyToFilter: z.string().max(500), supportedValues: z.array(z.string().max(1000)).max(1000) }).optional(),
  payloadConfiguration: z
    .object({
      hydrate_entity: z.boolean().optional(),
      include_relations: z.boolean().optional(),
      include_activity: z.boolean().optional(),
      include_changed_attributes: z.boolean().optional(),
      apply_changesets: z.boolean().optional(),
      custom_headers: CustomHeaders.optional(),
    })
    .optional(),
  enableStaticIP: z.boolean().optional(),
  protected: z.boolean().optional(),
  secureProxy: z.object({ integration_id: z.string().uuid(), use_case_slug: z.string().min(1).max(255) }).optional(),
  status: z.enum(["active", "inactive", "incomplete"]).optional(),
  jsonataExpression: z.string().max(50_000).optional(),
  deliveryMode: z.enum(["json_base64", "binary_multipart"]).optional(),
  multipartConfig: z
    .object({
      fileFieldName: z.string().max(255).optional(),
      fileFieldStrategy: z.enum(["single", "multi"]).optional(),
      fileSource: z.string().max(50_000).optional(),
      extraFields: z.record(z.string().max(255), z.string().max(50_000)).optional(),
    })
    .optional(),
  retryPolicy: z.object({ enabled: z.boolean(), maxAttempts: z.number().int().min(1).max(5).optional() }).optional(),
  filterConditions: z.object({ conditions: z.array(WebhookCondition).max(10).optional(), logical_operator: z.enum(["AND", "OR"]).optional() }).optional(),
  _manifest: z.array(z.string().uuid()).max(100).optional(),
});

/**
 * The body of createConfig and updateConfig: epilot's WebhookConfig. Read-only fields a client sends
 * back (id, creationTime, updatedTime, signingSecret) are ignored, as epilot ignores them.
 */
export const WebhookConfigInput = WebhookConfigFields.openapi("WebhookConfigInput");
export type WebhookConfigInput = z.infer<typeof WebhookConfigInput>;

/** A stored configuration as answered: secrets never in clear (an `{{env.KEY}}` reference is shown, a value is not). */
export const WebhookConfig = WebhookConfigFields.extend({
  id: z.string(),
  orgId: z.string().openapi({ description: "erp-edge extension: the tenant id" }),
  creationTime: z.string(),
  updatedTime: z.string(),
  signingSecret: z.string().optional().openapi({ description: "whsec_ secret signing this configuration's deliveries; only in createConfig's answer" }),
}).openapi("WebhookConfig");
export type WebhookConfig = z.infer<typeof WebhookConfig>;

export const PublicKeyResponse = z
  .object({ public_key: z.string().openapi({ description: "PEM (SPKI) Ed25519 public key verifying v1a webhook signatures" }), algorithm: z.string(), issuer: z.string().optional() })
  .openapi("WebhookPublicKey");

export const EventConfigEntry = z.object({ eventName: z.string(), eventLabel: z.string() }).openapi("WebhookEventConfigEntry");

export const Metadata = z
  .object({
    action: z.string().optional(),
    origin: z.string().optional(),
    creation_timestamp: z.string().optional(),
    webhook_id: z.string().optional(),
    webhook_name: z.string().optional(),
    automation_name: z.string().optional(),
    organization_id: z.string(),
    user_id: z.string().optional(),
    correlation_id: z.string().optional(),
    execution_id: z.string().optional(),
    action_id: z.string().optional(),
  })
  .passthrough()
  .openapi("WebhookMetadata");

export const ExampleRequest = z.object({ automation_id: z.string().max(255).optional() }).openapi("WebhookExampleRequest");
export const ExampleResponse = z
  .object({ metadata: Metadata, entity: z.record(z.string(), z.unknown()), relations: z.array(z.record(z.string(), z.unknown())) })
  .passthrough()
  .openapi("WebhookExampleResponse");

export const DeleteConfigParams = z.object({ configId: z.string().min(1).max(64).openapi({ param: { name: "configId", in: "path" } }) });
