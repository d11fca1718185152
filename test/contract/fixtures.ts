// The data the contract test's requests point at, created through the real API the way an epilot
// client would: a tenant and token, integrations with use cases, a webhook configuration, an event.
import { env } from "cloudflare:workers";
import { api, eventually, tenantWithToken, type ApiResponse } from "../helpers";

/** The integrations the operations run against; destructive operations get one of their own. */
export type IntegrationRole = "main" | "connector" | "scratch" | "doomedV1" | "doomedV2";
/** The use cases the operations run against ("doomed" is the one deleteUseCase deletes). */
export type UseCaseRole = "inbound" | "outbound" | "secureProxy" | "managedCall" | "doomed";

export interface Fixtures {
  tenantId: string;
  token: string;
  integrations: Partial<Record<IntegrationRole, string>>;
  useCases: Partial<Record<UseCaseRole, { id: string; slug?: string }>>;
  webhookId?: string;
  /** An inbound event of the main integration (its id is also its ack_id). */
  eventId?: string;
  /** The app and component ids of processErpUpdatesEvents' example, mapped to the main integration. */
  appMapped: boolean;
  /** Each fixture step that failed, by name: the operations that need it fail with this reason. */
  problems: Partial<Record<string, string>>;
}

/** The app_id / component_id of epilot's own processErpUpdatesEvents example. */
export const EXAMPLE_APP = { app_id: "123e4567-e89b-12d3-a456-426614174000", component_id: "123e4567-e89b-12d3-a456-426614174000" };

/** One status-and-body line for a failed call: enough to tell what broke without the whole body. */
export function answerOf(res: ApiResponse): string {
  const b = res.body;
  const code = b?.code ?? b?.error?.code;
  const message = b?.message ?? b?.error?.message;
  const details = b?.details ?? b?.error?.details;
  const text = code || message ? `${code ?? ""} ${message ?? ""}`.trim() : typeof b === "string" ? b : JSON.stringify(b);
  return `${res.status} ${String(text).slice(0, 160)}${details === undefined ? "" : ` ${JSON.stringify(details).slice(0, 200)}`}`;
}

const inboundUseCase = (slug: string, entity_schema: string) => ({
  name: slug,
  slug,
  type: "inbound",
  enabled: true,
  configuration: {
    entities: [
      {
        entity_schema,
        unique_ids: ["external_id"],
        fields: [
          { attribute: "external_id", field: "id" },
          { attribute: "name", field: "name" },
        ],
      },
    ],
  },
});

/** Everything the 43 operations need, each step recorded apart so one failure names its victims. */
export async function createFixtures(): Promise<Fixtures> {
  const { tenant, token } = await tenantWithToken("epilot contract");
  const f: Fixtures = { tenantId: tenant.id, token, integrations: {}, useCases: {}, appMapped: false, problems: {} };
  const hook = (key: string) => `${env.RECEIVER_URL}/hook/${key}`;

  // A webhook configuration (epilot's Webhooks API) for the outbound use case to deliver to.
  const webhook = await api("POST", "/v1/webhooks/configs", {
    token,
    json: { name: "ERP contract sync", eventName: "contract.created", url: hook("contract-webhook"), httpMethod: "POST", enabled: true },
  });
  if (webhook.status < 300 && typeof webhook.body?.id === "string") f.webhookId = webhook.body.id;
  else f.problems.webhook = `POST /v1/webhooks/configs answered ${answerOf(webhook)}`;

  const mainUseCases = [
    inboundUseCase("business_partner", "account"),
    inboundUseCase("contract_account", "billing_account"),
    {
      name: "contract created",
      slug: "contract-created",
      type: "outbound",
      enabled: true,
      configuration: {
        event_catalog_event: "contract.created",
        mappings: [
          {
            name: "ERP Contract Sync",
            jsonata_expression: '{ "id": entity._id, "customer": entity.customer_name }',
            enabled: true,
            delivery: { type: "webhook", webhook_id: f.webhookId ?? "contract-webhook" },
          },
        ],
      },
    },
  ];
  const main = await createIntegration(f, "main", { name: "Contract test ERP", description: "epilot contract test", use_cases: mainUseCases });
  if (main) {
    f.useCases.inbound = main.bySlug.business_partner;
    f.useCases.outbound = main.bySlug["contract-created"];
  }

  // The partner API of the managed call and the secure proxy: the fake archive (scripts/fake-archive.mjs)
  // is the loopback service the test Worker may reach (FILE_PROXY_ALLOWED_PRIVATE_HOSTS), and its
  // GET /_stats answers JSON without credentials.
  const connector = await createIntegration(f, "connector", {
    name: "Contract test connector",
    integration_type: "connector",
    connector_config: { base_url: env.ARCHIVE_URL },
    use_cases: [
      {
        name: "archive stats",
        slug: "archive-stats",
        type: "managed_call",
        enabled: true,
        configuration: { operation: { method: "GET", path: "/_stats" }, response_mapping: "$" },
      },
      // vpc_mode is readOnly "after creation": creation is where it is set. static_ip reaches the
      // connector's base_url host.
      { name: "archive proxy", slug: "archive-proxy", type: "secure_proxy", enabled: true, configuration: { vpc_mode: "static_ip" } },
    ],
  });
  if (connector) {
    f.useCases.managedCall = connector.bySlug["archive-stats"];
    f.useCases.secureProxy = connector.bySlug["archive-proxy"];
  }

  await createIntegration(f, "scratch", { name: "Contract test scratch" });
  await createIntegration(f, "doomedV1", { name: "Contract test doomed v1" }, "v1");
  await createIntegration(f, "doomedV2", { name: "Contract test doomed v2" });

  if (f.integrations.main) {
    const doomed = await api("POST", `/v1/integrations/${f.integrations.main}/use-cases`, { token, json: inboundUseCase("doomed", "contact") });
    if (doomed.status === 201 && typeof doomed.body?.id === "string") f.useCases.doomed = { id: doomed.body.id, slug: doomed.body.slug };
    else f.problems.doomedUseCase = `POST /v1/integrations/{id}/use-cases answered ${answerOf(doomed)}`;

    const mapping = await api("PUT", `/v1/integrations/${f.integrations.main}/app-mapping`, { token, json: { ...EXAMPLE_APP, overwrite: true } });
    if (mapping.status === 200) f.appMapped = true;
    else f.problems.appMapping = `PUT /v1/integrations/{id}/app-mapping answered ${answerOf(mapping)}`;

    f.eventId = await postEvent(f);
  }
  return f;
}

/**
 * An integration through POST /v2/integrations (use cases embedded), or through POST
 * /v1/integrations plus one POST per use case when v2 refuses (or when `via` says v1); the use
 * cases are returned by slug.
 */
async function createIntegration(
  f: Fixtures,
  role: IntegrationRole,
  body: { name: string; use_cases?: Array<Record<string, unknown>>; [key: string]: unknown },
  via: "v1" | "v2" = "v2",
): Promise<{ id: string; bySlug: Record<string, { id: string; slug?: string }> } | null> {
  const bySlug: Record<string, { id: string; slug?: string }> = {};
  const collect = (useCases: unknown) => {
    for (const u of Array.isArray(useCases) ? useCases : []) if (u?.id && u?.slug) bySlug[u.slug] = { id: u.id, slug: u.slug };
  };
  if (via === "v2") {
    const v2 = await api("POST", "/v2/integrations", { token: f.token, json: body });
    if (v2.status === 201 && typeof v2.body?.id === "string") {
      f.integrations[role] = v2.body.id;
      collect(v2.body.use_cases);
      return { id: v2.body.id, bySlug };
    }
    f.problems[`${role}Integration(v2)`] = `POST /v2/integrations answered ${answerOf(v2)}`;
  }
  const { use_cases, ...fields } = body;
  const v1 = await api("POST", "/v1/integrations", { token: f.token, json: fields });
  if (v1.status !== 201 || typeof v1.body?.id !== "string") {
    f.problems[`${role}Integration`] = `POST /v1/integrations answered ${answerOf(v1)}`;
    return null;
  }
  f.integrations[role] = v1.body.id;
  for (const useCase of use_cases ?? []) {
    const created = await api("POST", `/v1/integrations/${v1.body.id}/use-cases`, { token: f.token, json: useCase });
    if (created.status === 201) collect([created.body]);
    else f.problems[`${role}UseCase:${String(useCase.slug)}`] = `POST /v1/integrations/{id}/use-cases answered ${answerOf(created)}`;
  }
  return { id: v1.body.id, bySlug };
}

/** One business_partner event for the main integration; its id from the answer, or from the events query. */
async function postEvent(f: Fixtures): Promise<string | undefined> {
  const integrationId = f.integrations.main!;
  const posted = await api("POST", "/v3/erp/updates/events", {
    token: f.token,
    json: {
      integration_id: integrationId,
      correlation_id: "contract-fixture",
      events: [
        {
          event_name: "business_partner",
          timestamp: "2025-05-01T08:30:00Z",
          format: "json",
          payload: JSON.stringify({ id: "BP-FIXTURE", name: "Fixture Partner" }),
          deduplication_id: "contract-fixture-event",
        },
      ],
    },
  });
  if (posted.status >= 300) {
    f.problems.event = `POST /v3/erp/updates/events answered ${answerOf(posted)}`;
    return undefined;
  }
  const answered = posted.body?.results?.[0]?.event_id;
  if (typeof answered === "string") return answered;
  try {
    const found = await eventually(
      () => api("POST", `/v1/integrations/${integrationId}/events`, { token: f.token, json: {} }),
      (res) => res.status === 200 && typeof res.body?.data?.[0]?.event_id === "string",
      "the fixture event in POST /v1/integrations/{id}/events",
      5_000,
    );
    return found.body.data[0].event_id;
  } catch (err) {
    f.problems.event = `no event id: results[0].event_id absent and ${(err as Error).message.slice(0, 200)}`;
    return undefined;
  }
}
