// The published epilot mapping examples simulated through the real endpoint, plus its unhappy paths.
import { describe, expect, it } from "vitest";
import { api, createToken, expectError, tenantWithToken } from "./helpers";

const examples = import.meta.glob<string>("../../shared/compat/epilot-mapping-examples/*.json", { eager: true, query: "?raw", import: "default" });
const example = (name: string) => JSON.parse(examples[`../../shared/compat/epilot-mapping-examples/${name}.json`]!);

const SIM = "/v2/erp/updates/mapping_simulation";

async function simulate(token: string, event_configuration: unknown, payload: unknown, format = "json") {
  const res = await api("POST", SIM, { token, json: { event_configuration, payload, format } });
  if (res.status !== 200) throw new Error(`simulation: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

describe("epilot mapping examples (../shared/compat/epilot-mapping-examples)", () => {
  it("CustomerChanged: a business customer yields contact, account and billing account", async () => {
    const { token } = await tenantWithToken();
    const result = await simulate(token, example("mapping.CustomerChanged"), example("payload.customer"));
    expect(result.entity_updates.map((u: { entity_slug: string }) => u.entity_slug)).toEqual(["contact", "account", "billing_account"]);
    const contact = result.entity_updates[0];
    expect(contact.unique_identifiers).toEqual({ external_id: "CUST-9876" });
    expect(contact.attributes).toMatchObject({
      external_id: "CUST-9876",
      full_name: "Acme Corporation",
      company_name: "Acme Corporation",
      first_name: "Max",
      last_name: "Mustermann",
      email: [{ _tags: ["Primary"], email: "max.mustermann@acme.com" }],
      phone: [
        { _tags: ["Primary"], phone: "+49 89 12345678" },
        { _tags: ["Mobile"], phone: "+49 176 98765432" },
      ],
    });
    expect(contact.attributes.address).toEqual([
      { _tags: ["Primary Address"], street: "Hauptstraße 123", postal_code: "80331", city: "Munich", country: "Germany" },
      { _tags: ["Billing Address"], street: "Nebenstraße 456", postal_code: "10115", city: "Berlin", country: "Germany" },
    ]);
    expect(contact.attributes.account).toEqual({
      $relation: { _set: [{ $entity_unique_ids: { customer_number: "CUST-9876" }, _schema: "account" }] },
    });
    const account = result.entity_updates[1];
    expect(account.unique_identifiers).toEqual({ customer_number: "CUST-9876" });
    expect(account.attributes).toMatchObject({ name: "Acme Corporation", industry: ["Technology", "Solar Energy"], company_size: "100-249" });
    expect(account.attributes.payment).toEqual([
      { type: "payment_sepa", data: { iban: "DE89370400440532013000", bic_number: "DEUTDEFF", fullname: "Acme Corporation" } },
    ]);
    expect(result.entity_updates[2].attributes.billing_contact).toEqual({
      $relation: { _set: [{ $entity_unique_ids: { external_id: "CUST-9876" }, _schema: "contact" }] },
    });
    expect(result.meter_readings_updates).toEqual([]);
  });

  it("CustomerChanged: a private customer gets no account and no company name", async () => {
    const { token } = await tenantWithToken();
    const payload = { ...example("payload.customer"), customerType: "private" };
    const result = await simulate(token, example("mapping.CustomerChanged"), payload);
    expect(result.entity_updates.map((u: { entity_slug: string }) => u.entity_slug)).toEqual(["contact"]);
    expect(result.entity_updates[0].attributes.full_name).toBe("Max Mustermann");
    expect(result.entity_updates[0].attributes).not.toHaveProperty("company_name");
  });

  it("ContractChanged: contract, meter, one meter counter per element, and meter readings", async () => {
    const { token } = await tenantWithToken();
    const payload = example("payload.contract");
    const result = await simulate(token, example("mapping.ContractChanged"), JSON.stringify(payload));
    const slugs = result.entity_updates.map((u: { entity_slug: string }) => u.entity_slug);
    expect(slugs).toEqual(["contract", "meter", ...payload.meter.counters.map(() => "meter_counter")]);
    const contract = result.entity_updates[0];
    expect(contract.attributes).toMatchObject({ external_id: "CON-2024-5678", tariff_name: "Green Energy Basic", price_per_unit: "0.32", base_fee: "12.5" });
    expect(contract.attributes.meters).toEqual({ $relation: { _set: [{ $entity_unique_ids: { external_id: "MTR-001234" }, _schema: "meter" }] } });
    expect(result.entity_updates[1].attributes.meter_type).toBe("smart-meter");
    expect(result.entity_updates.slice(2).map((u: { unique_identifiers: unknown }) => u.unique_identifiers)).toEqual(
      payload.meter.counters.map((c: { counterId: string }) => ({ external_id: c.counterId })),
    );
    expect(result.meter_readings_updates).toHaveLength(payload.meterReadings.length);
    expect(result.meter_readings_updates[0]).toEqual({
      meter: { $entity_unique_ids: { external_id: "MTR-001234" } },
      meter_counter: { $entity_unique_ids: { external_id: "CNT-001234-HT" } },
      attributes: expect.objectContaining({ external_id: "RDG-2024-001", timestamp: "2024-10-01T00:00:00.000Z", source: "ERP", value: 12345.67, reason: "monthly_billing" }),
      mode: "upsert",
    });
  });

  it("OrderChanged: contact and order with a relation to the contact", async () => {
    const { token } = await tenantWithToken();
    const result = await simulate(token, example("mapping.OrderChanged"), example("payload.order"));
    expect(result.entity_updates.map((u: { entity_slug: string }) => u.entity_slug)).toEqual(["contact", "order"]);
    const order = result.entity_updates[1];
    expect(order.attributes.customer).toEqual({ $relation: { _set: [{ $entity_unique_ids: { external_id: expect.any(String) }, _schema: "contact" }] } });
    expect(typeof order.attributes.total_amount_decimal).toBe("string");
    expect(Array.isArray(order.attributes.order_items)).toBe(true);
  });
});

describe("mapping simulation endpoints", () => {
  const config = { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }] }] };

  it("refuses invalid configurations, unparsable expressions and bad payloads with 422 that say where", async () => {
    const { token } = await tenantWithToken();
    let details = expectError(await api("POST", SIM, { token, json: { event_configuration: { entities: [{ fields: [] }] }, payload: {} } }), 422, "UNPROCESSABLE");
    expect(details.map((d: { path: string }) => d.path)).toEqual(["event_configuration.entities.0.entity_schema", "event_configuration.entities.0.unique_ids"]);

    const broken = { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", field: "id" }, { attribute: "full_name", jsonataExpression: "first & (" }] }] };
    details = expectError(await api("POST", SIM, { token, json: { event_configuration: broken, payload: {} } }), 422, "UNPROCESSABLE");
    expect(details[0]).toMatchObject({ path: "event_configuration.entities.0.fields.1.jsonataExpression", jsonata_code: expect.stringMatching(/^S0/), position: expect.any(Number) });

    expectError(await api("POST", SIM, { token, json: { event_configuration: config, payload: "{not json" } }), 422, "UNPROCESSABLE");
    details = expectError(await api("POST", SIM, { token, json: { event_configuration: config, format: "xml", payload: "<a><b></a>" } }), 422, "UNPROCESSABLE");
    expect(details).toMatchObject({ path: "payload", format: "xml", line: 1 });

    const runtime = { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "external_id", jsonataExpression: "$number(id) + 'x'" }] }] };
    details = expectError(await api("POST", SIM, { token, json: { event_configuration: runtime, payload: { id: "1" } } }), 422, "UNPROCESSABLE");
    expect(details).toMatchObject({ path: "entities.0.fields.0.jsonataExpression", entity_schema: "contact", attribute: "external_id", jsonata_code: "T2002", position: expect.any(Number) });

    expectError(await api("POST", SIM, { token, json: { payload: {}, event_configuration: config, format: "csv" } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", SIM, { token, json: { event_configuration: config } }), 400, "VALIDATION_FAILED");
  });

  it("needs integrations:read", async () => {
    const { tenant } = await tenantWithToken();
    const { token } = await createToken(tenant.id, ["events:write"]);
    expectError(await api("POST", SIM, { token, json: { event_configuration: config, payload: {} } }), 403, "FORBIDDEN");
    expectError(await api("POST", SIM, { json: { event_configuration: config, payload: {} } }), 401, "UNAUTHORIZED");
  });

  it("maps an IDoc-style XML message with the same expressions", async () => {
    const { token } = await tenantWithToken();
    const idoc = `<?xml version="1.0" encoding="UTF-8"?>
<DEBMAS07><IDOC BEGIN="1"><EDI_DC40 SEGMENT="1"><DOCNUM>0000000000123456</DOCNUM></EDI_DC40>
<E1KNA1M SEGMENT="1"><KUNNR>0000012345</KUNNR><NAME1>Acme &amp; Co</NAME1><E1KNVVM SEGMENT="1"><VKORG>1000</VKORG></E1KNVVM><E1KNVVM SEGMENT="1"><VKORG>2000</VKORG></E1KNVVM></E1KNA1M>
</IDOC></DEBMAS07>`;
    const xmlConfig = {
      entities: [
        {
          entity_schema: "account",
          unique_ids: ["customer_number"],
          jsonataExpression: "DEBMAS07.IDOC.E1KNA1M",
          fields: [
            { attribute: "customer_number", field: "KUNNR" },
            { attribute: "name", field: "NAME1" },
            { attribute: "sales_orgs", jsonataExpression: "[E1KNVVM.VKORG]" },
            { attribute: "segment", jsonataExpression: "`@SEGMENT`" },
            { attribute: "idoc_number", jsonataExpression: "$$.DEBMAS07.IDOC.EDI_DC40.DOCNUM" },
          ],
        },
      ],
    };
    const result = await simulate(token, xmlConfig, idoc, "xml");
    expect(result.entity_updates[0].attributes).toEqual({
      customer_number: "0000012345",
      name: "Acme & Co",
      sales_orgs: ["1000", "2000"],
      segment: "1",
      idoc_number: "0000000000123456",
    });
  });

  it("accepts a legacy v1.0 configuration through /v1 and in use cases", async () => {
    const { token } = await tenantWithToken();
    const legacy = {
      version: "1.0",
      mapping: {
        objects: {
          Customer: {
            unique_ids: { contact: ["customer_number"], account: ["customer_number"] },
            fields: [
              { entity: "contact", attribute: "customer_number", field: "id" },
              { entity: "contact", attribute: "full_name", jsonataExpression: "first & ' ' & last" },
              { entity: "account", attribute: "customer_number", field: "id" },
            ],
          },
          Meter: { unique_ids: ["external_id"], fields: [{ entity: "meter", attribute: "external_id", field: "meterId" }] },
        },
      },
    };
    const res = await api("POST", "/v1/erp/updates/mapping_simulation", {
      token,
      json: { mapping_configuration: legacy, object_type: "Customer", format: "json", payload: { id: "C1", first: "Ada", last: "L" } },
    });
    expect(res.status).toBe(200);
    expect(res.body.entity_updates).toEqual([
      { entity_slug: "contact", unique_identifiers: { customer_number: "C1" }, attributes: { customer_number: "C1", full_name: "Ada L" }, mode: "upsert" },
      { entity_slug: "account", unique_identifiers: { customer_number: "C1" }, attributes: { customer_number: "C1" }, mode: "upsert" },
    ]);
    expectError(
      await api("POST", "/v1/erp/updates/mapping_simulation", { token, json: { mapping_configuration: legacy, object_type: "Nope", payload: {} } }),
      422,
      "UNPROCESSABLE",
    );
    expectError(
      await api("POST", "/v1/erp/updates/mapping_simulation", { token, json: { mapping_configuration: { version: "1.0" }, object_type: "x", payload: {} } }),
      422,
      "UNPROCESSABLE",
    );

    // Saved as a use case, it is stored converted to v2.
    const created = await api("POST", "/v2/integrations", { token, json: { name: "legacy", use_cases: [{ name: "c", slug: "c", type: "inbound", configuration: legacy }] } });
    expect(created.status).toBe(201);
    expect(created.body.use_cases[0].configuration.entities.map((e: { entity_schema: string }) => e.entity_schema)).toEqual(["contact", "account", "meter"]);
  });

  it("takes epilot's v1.0 defaults and forms: no version, unique ids as a payload-key map; and v2.0 mapping.events", async () => {
    const { token } = await tenantWithToken();
    const objects = {
      Partner: {
        unique_ids: { contact: { partner_id: "customer_number" } },
        fields: [{ entity: "contact", attribute: "first_name", field: "first" }],
      },
    };
    const v1 = "/v1/erp/updates/mapping_simulation";
    const res = await api("POST", v1, { token, json: { mapping_configuration: { mapping: { objects } }, object_type: "Partner", format: "json", payload: { partner_id: "P1", first: "Ada" } } });
    expect(res.status).toBe(200);
    expect(res.body.entity_updates).toEqual([
      { entity_slug: "contact", unique_identifiers: { customer_number: "P1" }, attributes: { customer_number: "P1", first_name: "Ada" }, mode: "upsert" },
    ]);
    // A map naming a prototype key is refused, not walked.
    const hostile = { Partner: { ...objects.Partner, unique_ids: { contact: { "__proto__.polluted": "customer_number" } } } };
    expectError(await api("POST", v1, { token, json: { mapping_configuration: { version: "1.0", mapping: { objects: hostile } }, object_type: "Partner", payload: {} } }), 422, "UNPROCESSABLE");

    const events = { version: "2.0", mapping: { events: { PartnerChanged: config } } };
    const v2 = await api("POST", v1, { token, json: { mapping_configuration: events, object_type: "PartnerChanged", payload: { id: "X1" } } });
    expect(v2.body.entity_updates).toEqual([{ entity_slug: "contact", unique_identifiers: { external_id: "X1" }, attributes: { external_id: "X1" }, mode: "upsert" }]);
    const details = expectError(await api("POST", v1, { token, json: { mapping_configuration: events, object_type: "toString", payload: {} } }), 422, "UNPROCESSABLE");
    expect(details).toMatchObject({ path: "object_type", known: ["PartnerChanged"] });
  });

  it("refuses a broken mapping when a use case is saved", async () => {
    const { token } = await tenantWithToken();
    const broken = { entities: [{ entity_schema: "contact", unique_ids: ["external_id"], fields: [{ attribute: "x", jsonataExpression: "a.(" }] }] };
    const details = expectError(
      await api("POST", "/v2/integrations", { token, json: { name: "x", use_cases: [{ name: "c", slug: "c", type: "inbound", configuration: broken }] } }),
      400,
      "VALIDATION_FAILED",
    );
    expect(details[0]).toMatchObject({ path: "use_cases.0.configuration.entities.0.fields.0.jsonataExpression", position: expect.any(Number) });
  });
});
