// The README's apps walkthrough, step by step through the Worker, with the example app
// (blueprints/examples/sap-normalise) bundled as `erp-edge app build` bundles it.
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { api } from "./helpers";
import { publishApp, trust } from "./app-helpers";
import { findOne, setup, waitFor } from "./inbound-helpers";
import { newPublisher } from "./registry-helpers";

it("installs sap-normalise, invokes it and uses it as a pre_mapping, as the README shows", async () => {
  const publisher = await newPublisher("acme");
  const name = `${publisher.name}/sap-normalise`;
  await publishApp(publisher, name, "1.0.0", { normalise: { body: "" } }, { source: env.TEST_SAP_NORMALISE_BUNDLE });
  const { token, integrationId } = await setup();
  await trust(token, publisher.name);

  const installed = await api("POST", "/v1/apps/install", {
    token,
    json: { name, version: "^1", grants: { hosts: [] }, config: { strip_leading_zeros: ["KUNNR"], boolean_fields: ["LOEVM"], number_fields: ["NETWR"] } },
  });
  expect(installed.status).toBe(201);
  expect(installed.body).toMatchObject({ name, version: "1.0.0", requested_hosts: [], grants: { hosts: [] } });

  const invoked = await api("POST", `/v1/apps/${name}/actions/normalise/invoke`, {
    token,
    json: { input: { d: { KUNNR: "0000012345", ERDAT: "/Date(1700000000000)/", LOEVM: "X", NETWR: "12.50-" } } },
  });
  expect(invoked.status).toBe(200);
  expect(invoked.body.output).toEqual({ KUNNR: "12345", ERDAT: "2023-11-14T22:13:20.000Z", LOEVM: true, NETWR: -12.5 });

  const useCase = await api("POST", `/v1/integrations/${integrationId}/use-cases`, {
    token,
    json: {
      name: "SAP customers", slug: "sap-customers", type: "inbound",
      configuration: {
        pre_mapping: { app: name, action: "normalise" },
        entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "KUNNR" }, { attribute: "last_name", field: "NAME1" }] }],
      },
    },
  });
  expect(useCase.status).toBe(201);
  const posted = await api("POST", "/v3/erp/updates/events", {
    token,
    json: { integration_id: integrationId, events: [{ use_case_slug: "sap-customers", timestamp: "2026-12-03T10:00:00Z", payload: { d: { KUNNR: "0000012345", NAME1: "Schmidt" } } }] },
  });
  const status = await waitFor(token, posted.body.results[0].event_id);
  expect(status).toMatchObject({ status: "done", entities: [{ slug: "contact", operation: "created", unique_ids: { customer_number: "12345" } }] });
  expect((await findOne(token, "contact", "customer_number=12345")).attributes.last_name).toBe("Schmidt");
  const runs = await api("GET", `/v1/apps/runs?app=${encodeURIComponent(name)}`, { token });
  expect(runs.body.runs.map((r: { trigger: string; outcome: string }) => `${r.trigger}:${r.outcome}`)).toEqual(["pre_mapping:ok", "invoke:ok"]);
});
