// Monitoring in the Hub, against the real Worker: an event posted with the API is found with the
// filters, opened (payload, results, trace) and replayed; a delivery the receiver refused shows in the
// dead-letter queue and is redriven; the statistics render as charts; an API error shows its request id.
import { afterAll, beforeAll, expect, it } from "vitest";
import { axeCheck, callApi, closeBrowser, createTenant, eventually, hubContext, openSignedIn, PHONE, screenshot, type Hub } from "./harness";

let hub: Hub;
let token: string;
let integrationId: string;
let eventId: string;
const hookKey = `monitoring-${Date.now()}`;

beforeAll(async () => {
  const tenant = await createTenant("Monitoring flows");
  token = tenant.token;
  const { receiverUrl } = hubContext();
  // The receiver refuses the first delivery with a 500; with max_attempts 1 it is dead-lettered at once.
  const scripted = await fetch(`${receiverUrl}/_script/${hookKey}`, { method: "POST", body: JSON.stringify({ responses: [500] }) });
  expect(scripted.status).toBe(204);
  const created = await callApi("POST", "/v2/integrations", {
    token,
    json: {
      name: "SAP (monitoring test)",
      use_cases: [
        {
          name: "Customers", slug: "customers", type: "inbound",
          configuration: { entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "customerId" }, { attribute: "full_name", field: "name" }] }] },
        },
        {
          name: "Contacts to SAP", slug: "contacts-out", type: "outbound",
          configuration: {
            event_catalog_event: "contact.created",
            mappings: [{ id: "sap", name: "SAP CPI", jsonata_expression: '{ "customer": entity.unique_ids.customer_number, "name": entity.attributes.full_name }',
              delivery: { type: "webhook", url: `${receiverUrl}/hook/${hookKey}`, max_attempts: 1 } }],
          },
        },
      ],
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  integrationId = created.body.id;
  const posted = await callApi("POST", "/v3/erp/updates/events", {
    token,
    json: { integration_id: integrationId, events: [{ use_case_slug: "customers", timestamp: new Date().toISOString(), correlation_id: `corr-${hookKey}`, payload: { customerId: "CUST-1", name: "Ada Lovelace" } }] },
  });
  expect(posted.status, JSON.stringify(posted.body)).toBeLessThan(300);
  eventId = posted.body.results[0].event_id;
  const done = await callApi("GET", `/v3/erp/updates/events/${eventId}?wait=20`, { token });
  expect(done.body.status, JSON.stringify(done.body)).toBe("done");
  hub = await openSignedIn(tenant);
});

afterAll(() => closeBrowser());

it("finds an event posted with the API, opens it and replays it", async () => {
  const { page } = hub;
  await page.getByRole("link", { name: "Monitoring", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Monitoring" }).waitFor();
  await page.getByLabel("Direction").selectOption("inbound");
  await page.getByLabel("Correlation id").fill(`corr-${hookKey}`);
  await page.getByRole("button", { name: "Apply filters" }).click();
  const link = page.getByRole("link", { name: eventId });
  await link.waitFor();
  expect(page.url()).toContain("direction=inbound");
  await screenshot(page, "monitoring-events");
  await axeCheck(page, "monitoring-events");

  await link.click();
  await page.getByRole("heading", { level: 1, name: "Event" }).waitFor();
  await page.getByRole("heading", { level: 2, name: "Payload" }).waitFor();
  await expect.poll(() => page.locator("pre.json").first().textContent()).toContain("Ada Lovelace");
  const results = page.getByRole("region", { name: "Entities this event changed" });
  await expect.poll(() => results.textContent()).toContain("created");
  // The trace holds the inbound event and the outbound delivery it caused.
  const trace = page.getByRole("region", { name: `Trace of corr-${hookKey}` });
  await expect.poll(() => trace.textContent(), { timeout: 20_000 }).toContain("outbound");
  await screenshot(page, "monitoring-event");
  await axeCheck(page, "monitoring-event");

  await page.getByRole("button", { name: "Replay this event" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Replay" }).click();
  const outcome = page.getByRole("region", { name: "Replay: 1 replayed" });
  await outcome.waitFor();
  const replayLink = outcome.getByRole("link");
  const replayId = (await replayLink.textContent())!;
  expect(replayId).not.toBe(eventId);
  // The replay is a new event linked to the original, as the API reports it.
  const replayed = await callApi("POST", `/v1/integrations/${integrationId}/events`, { token, json: { event_id: replayId } });
  expect(replayed.body.events[0].replay_of).toBe(eventId);
  await replayLink.click();
  // The replay's page names its original under "Replay of".
  await page.locator("dl.facts").getByRole("link", { name: eventId }).waitFor();
  hub.assertClean();
});

it("shows a dead-lettered delivery and redrives it", async () => {
  const { page } = hub;
  const dlq = () => callApi("GET", `/v1/integrations/${integrationId}/outbound/dlq`, { token });
  await eventually("the delivery to be dead-lettered", async () => (await dlq()).body.deliveries?.length === 1);
  await page.goto(`${hub.base}/hub#/monitoring/dead-letters?integration=${integrationId}`);
  await page.getByRole("heading", { level: 2, name: "Dead letters" }).waitFor();
  const box = page.getByRole("checkbox", { name: /Select dead letter contact\.created/ });
  await box.waitFor();
  await expect.poll(() => page.getByRole("region", { name: /Dead letters of/ }).textContent()).toContain("HTTP 500");
  await screenshot(page, "monitoring-dead-letters");
  await axeCheck(page, "monitoring-dead-letters");

  await box.check();
  await page.getByRole("button", { name: "Redrive 1 selected" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Redrive" }).click();
  await page.getByText("1 dead letter redriven.").waitFor();
  await page.getByText("The dead-letter queue is empty.").waitFor();
  // The receiver now answers 200: the delivery becomes delivered.
  await eventually("the redriven delivery to be delivered", async () => {
    const out = await callApi("POST", `/v1/integrations/${integrationId}/events`, { token, json: { direction: "outbound", status: "delivered" } });
    return out.body.events?.length === 1;
  });
  await page.goto(`${hub.base}/hub#/monitoring?integration=${integrationId}&direction=outbound`);
  await page.getByRole("region", { name: /Events of/ }).getByText("delivered").waitFor();
  hub.assertClean();
});

it("draws the statistics of a window as charts", async () => {
  const { page } = hub;
  await page.goto(`${hub.base}/hub#/monitoring/stats?integration=${integrationId}&window=1h`);
  await page.getByRole("figure").first().waitFor();
  const charts = page.locator("svg.chart[role=img]");
  await expect.poll(() => charts.count()).toBe(3);
  await expect.poll(() => page.locator("svg.chart title").first().textContent()).toMatch(/inbound · done \d+/);
  await expect.poll(() => page.locator(".kpis").textContent()).toContain("Error rate");
  await screenshot(page, "monitoring-stats");
  await axeCheck(page, "monitoring-stats");
  hub.assertClean();
});

it("shows an API error with its message and request id", async () => {
  const { page } = hub;
  // A status filter longer than the API accepts: a 400 the page shows as it came.
  await page.goto(`${hub.base}/hub#/monitoring?integration=${integrationId}&status=${"x".repeat(40)}`);
  const alert = page.getByRole("alert");
  await alert.waitFor();
  await expect.poll(() => alert.textContent()).toMatch(/Request id: \S+/);
  expect(await alert.textContent()).toContain("HTTP 400");
  await screenshot(page, "monitoring-error");
  hub.assertClean();
});

it("fits a phone screen", async () => {
  const phone = await openSignedIn(hub.tenant, { viewport: PHONE });
  await phone.page.goto(`${phone.base}/hub#/monitoring?integration=${integrationId}`);
  await phone.page.getByRole("link", { name: eventId }).first().waitFor();
  // Nothing wider than the screen: the page never scrolls sideways.
  expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  await screenshot(phone.page, "monitoring-events-phone");
  await axeCheck(phone.page, "monitoring-events-phone");
  phone.assertClean();
  await phone.context.close();
});
