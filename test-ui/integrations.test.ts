// Browser flows of the Integrations pages and the mapping editor (issue #18): sign in with a token,
// create an integration with an inbound use case, set its environment, toggle the use case and read
// its history, then edit its mapping until the simulation shows the expected entity, and save it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { axeCheck, callApi, closeBrowser, createTenant, eventually, hubContext, openHub, PHONE, screenshot, signIn, openSignedIn, type Hub, type Tenant } from "./harness";

/** The 1-based line of the first occurrence of `needle` in `text`. */
const lineOf = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split("\n").length;

let tenant: Tenant;
let hub: Hub;
let integrationId: string;

beforeAll(async () => {
  tenant = await createTenant("Hub integrations");
});
afterAll(() => closeBrowser());

describe("the Hub's security headers", () => {
  it("serves /hub and its assets with a strict CSP, nosniff and no framing; unknown assets are 404s", async () => {
    for (const path of ["/hub", "/hub/assets/main.js", "/hub/assets/main.css", "/hub/assets/nope.js"]) {
      const res = await callApi("GET", path);
      expect(res.status, path).toBe(path.endsWith("nope.js") ? 404 : 200);
      expect(res.headers.get("content-security-policy"), path).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      );
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
    }
    const html = (await callApi("GET", "/hub")).body as string;
    // No inline script or style, nothing from another origin.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style=/);
    expect(html).not.toMatch(/https?:\/\//);
    expect((await callApi("GET", "/hub/assets/main.js")).headers.get("content-type")).toMatch(/javascript/);
  });
});

describe("signing in", () => {
  it("refuses a bad token showing the API's message and request id, then signs in and out", async () => {
    hub = await openHub(tenant);
    await screenshot(hub.page, "sign-in");
    await axeCheck(hub.page, "sign-in");
    // Keyboard: the first Tab reaches the skip link.
    await hub.page.keyboard.press("Tab");
    expect(await hub.page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");

    const forged = `${tenant.token.slice(0, -4)}AAAA`;
    await hub.page.getByLabel("Tenant token").fill(forged);
    await hub.page.getByRole("button", { name: "Sign in" }).click();
    const alert = hub.page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/UNAUTHORIZED · HTTP 401/);
    expect(await alert.textContent()).toMatch(/Request id: [0-9A-Z]{26}/);
    expect(await hub.page.evaluate(() => sessionStorage.length)).toBe(0);

    await signIn(hub.page, tenant.token);
    // The token is in session storage, never in the address.
    expect(await hub.page.evaluate(() => Object.values(sessionStorage))).toEqual([tenant.token]);
    expect(hub.page.url()).not.toContain(tenant.token.slice(-20));
    await hub.page.getByRole("button", { name: "Sign out" }).click();
    await hub.page.getByRole("heading", { level: 1, name: /Sign in/ }).waitFor();
    expect(await hub.page.evaluate(() => sessionStorage.length)).toBe(0);
    // Signed out, a page's address leads back to sign-in.
    await hub.page.goto(`${hub.base}/hub#/integrations`);
    await hub.page.getByRole("heading", { level: 1, name: /Sign in/ }).waitFor();
    await signIn(hub.page, tenant.token);
    hub.assertClean();
  });
});

describe("integrations", () => {
  it("creates an integration with an inbound use case", async () => {
    const { page } = hub;
    await page.getByRole("button", { name: "New integration" }).click();
    await page.getByLabel("Name", { exact: true }).fill("SAP IS-U");
    await page.getByLabel("Description").fill("Customers from SAP");
    await page.getByRole("button", { name: "Create integration" }).click();
    await page.getByRole("heading", { level: 1, name: "SAP IS-U" }).waitFor();
    integrationId = decodeURIComponent(page.url().split("#/integrations/")[1]!);
    const stored = await callApi("GET", `/v2/integrations/${integrationId}`, { token: tenant.token });
    expect(stored.body).toMatchObject({ name: "SAP IS-U", description: "Customers from SAP", use_cases: [{ name: "Customers", slug: "customers", type: "inbound", enabled: true }] });

    await page.getByRole("link", { name: "Integrations", exact: true }).first().click();
    await page.getByRole("link", { name: "SAP IS-U" }).waitFor();
    await screenshot(page, "integrations");
    await axeCheck(page, "integrations");
    hub.assertClean();
  });

  it("edits the details, keeps a secret write-only, toggles the use case and shows its history", async () => {
    const { page } = hub;
    await page.getByRole("link", { name: "SAP IS-U" }).click();
    await page.getByRole("heading", { level: 1, name: "SAP IS-U" }).waitFor();

    await page.getByLabel("Retention (days)").fill("0");
    await page.getByRole("button", { name: "Save details" }).click();
    await page.getByText("A whole number of days from 1 to 365.").waitFor();
    await page.getByLabel("Retention (days)").fill("14");
    await page.getByLabel("Redacted payload paths").fill("customer.iban");
    await page.getByRole("button", { name: "Save details" }).click();
    await page.getByText("Details saved.").waitFor();
    expect((await callApi("GET", `/v2/integrations/${integrationId}`, { token: tenant.token })).body.settings).toMatchObject({ retention_days: 14, redact_paths: ["customer.iban"] });

    await page.getByLabel("Key", { exact: true }).fill("API_KEY");
    await page.getByLabel("Label", { exact: true }).fill("ERP API key");
    await page.getByRole("button", { name: "Declare key" }).click();
    const secretInput = page.getByLabel("New value for API_KEY");
    await secretInput.waitFor();
    expect(await secretInput.getAttribute("type")).toBe("password");
    await secretInput.fill("s3cr3t-value");
    await page.getByRole("button", { name: "Set API_KEY" }).click();
    await page.locator("code.env-value", { hasText: "********" }).waitFor();
    expect(await page.content()).not.toContain("s3cr3t-value");
    expect((await callApi("GET", `/v1/integrations/${integrationId}/environment`, { token: tenant.token })).body).toEqual({ API_KEY: "********" });

    await page.getByRole("button", { name: "Disable Customers" }).click();
    await page.getByRole("button", { name: "Enable Customers" }).waitFor();
    await page.getByRole("button", { name: "History of Customers" }).click();
    const history = page.getByRole("region", { name: "History of Customers" });
    await history.getByText("Disabled in the Hub").waitFor();
    expect(await history.locator("tbody tr").count()).toBe(2);
    await page.getByRole("button", { name: "Enable Customers" }).click();
    await page.getByRole("button", { name: "Disable Customers" }).waitFor();
    await screenshot(page, "integration");
    await axeCheck(page, "integration");
    hub.assertClean();
  });
});

describe("the mapping editor", () => {
  it("shows problems at their line, refuses to save while invalid, and simulates until the expected entity appears", async () => {
    const { page } = hub;
    await page.getByRole("link", { name: "Edit mapping of Customers" }).click();
    await page.getByRole("heading", { level: 1, name: "Mapping of Customers" }).waitFor();
    const editor = page.getByLabel("Mapping configuration (JSON)");
    const result = page.locator("#simulation-result");
    const save = page.getByRole("button", { name: "Save mapping" });
    // The starter mapping maps customerId to customer_number.
    await result.getByText('{"customer_number":"CUST-1"}').waitFor();

    // A JSON syntax error: found here, shown at its line; saving is refused.
    const starter = await editor.inputValue();
    const trailingComma = starter.replace('"customerId"', '"customerId",');
    await editor.fill(trailingComma);
    const problems = page.locator(".editor-field").first().locator(".problems li");
    // The error is where the parser meets the closing brace after the comma.
    await problems.first().getByText(`Line ${lineOf(trailingComma, '"customerId",') + 1}`, { exact: true }).waitFor();
    expect(await problems.first().textContent()).toContain("JSON syntax");
    await eventually("save refused", async () => save.isDisabled());

    // A structural error the API answers 422 for: its path is shown at the right line.
    const withoutIds = JSON.stringify({ entities: [{ entity_schema: "contact", fields: [{ attribute: "customer_number", field: "customerId" }] }] }, null, 2);
    await editor.fill(withoutIds);
    await problems.first().getByText("Line 3", { exact: true }).waitFor();
    expect(await problems.first().textContent()).toContain("entities.0.unique_ids");
    expect(await page.locator(".code-gutter .line-error").allTextContents()).toEqual(["3"]);
    await eventually("save refused", async () => save.isDisabled());
    expect(await page.locator("#save-state").textContent()).toMatch(/refused/);
    await screenshot(page, "mapping-invalid");

    // A broken JSONata expression: the 422 names the expression, at its line.
    const broken = JSON.stringify({ entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "customerId" }, { attribute: "full_name", jsonataExpression: "name & (" }] }] }, null, 2);
    await editor.fill(broken);
    const expressionLine = lineOf(broken, '"jsonataExpression"');
    await problems.first().getByText(`Line ${expressionLine}`, { exact: true }).waitFor();
    expect(await problems.first().textContent()).toContain("fields.1.jsonataExpression");
    await page.getByRole("button", { name: `Go to line ${expressionLine}` }).click();
    expect(await page.evaluate(() => (document.activeElement as HTMLTextAreaElement).value.slice((document.activeElement as HTMLTextAreaElement).selectionStart).split("\n")[0])).toContain('"jsonataExpression": "name & ("');

    // Fixed, with the email mapped too: the simulation shows the expected contact.
    const good = JSON.stringify(
      {
        entities: [
          {
            entity_schema: "contact",
            unique_ids: ["customer_number"],
            fields: [
              { attribute: "customer_number", field: "customerId" },
              { attribute: "full_name", jsonataExpression: "name" },
              { attribute: "email", field: "email", _type: "email" },
            ],
          },
        ],
      },
      null,
      2,
    );
    await editor.fill(good);
    const entity = result.locator("article.entity-update");
    await entity.getByText('"email": "ada@example.com"').waitFor();
    expect(await entity.locator(".entity-slug").textContent()).toBe("contact");
    expect(await entity.locator("pre").textContent()).toContain('"full_name": "Ada Lovelace"');
    expect(await page.locator(".problems li").count()).toBe(0);
    await eventually("save allowed", async () => save.isEnabled());

    // An XML payload: its root element is the top-level key, so customerId is not found at the top
    // and the entity is skipped with a warning, shown in the result.
    await page.getByLabel("XML").check();
    await page.getByLabel("Payload", { exact: true }).fill("<customer><customerId>X-9</customerId><name>Grace</name></customer>");
    await result.getByText("Warnings (1)").waitFor();
    expect(await result.locator(".warning-list li").textContent()).toContain("MISSING_UNIQUE_ID");
    // Malformed XML is the payload's problem, at its line; the configuration stays savable.
    await page.getByLabel("Payload", { exact: true }).fill("<customer>\n<customerId>X-9</customer>");
    await page.locator(".editor-field").nth(1).locator(".problems li").first().waitFor();
    expect(await page.locator(".editor-field").nth(1).locator(".problems li strong").first().textContent()).toMatch(/^Line \d+$/);
    await eventually("save allowed despite a bad payload", async () => save.isEnabled());
    await page.getByLabel("JSON", { exact: true }).check();
    await page.getByLabel("Payload", { exact: true }).fill(JSON.stringify({ customerId: "CUST-1", email: "ada@example.com", name: "Ada Lovelace" }, null, 2));
    await entity.getByText('"email": "ada@example.com"').waitFor();

    await screenshot(page, "mapping");
    await axeCheck(page, "mapping");
    await save.click();
    await page.getByText("Mapping saved.").waitFor();
    const stored = await callApi("GET", `/v2/integrations/${integrationId}`, { token: tenant.token });
    expect(stored.body.use_cases[0].configuration.entities[0].fields).toContainEqual({ attribute: "email", field: "email", _type: "email" });
    const history = await callApi("GET", `/v1/integrations/${integrationId}/use-cases/${stored.body.use_cases[0].id}/history`, { token: tenant.token });
    expect(history.body.history[0]).toMatchObject({ action: "updated", change_description: "Mapping edited in the Hub" });
    hub.assertClean();
  });
});

describe("on a phone", () => {
  it("lays the pages out in one column, readable and without serious accessibility violations", async () => {
    const phone = await openSignedIn(tenant, { viewport: PHONE });
    await phone.page.getByRole("link", { name: "SAP IS-U" }).waitFor();
    // Nothing wider than the screen: the page does not scroll sideways.
    expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await screenshot(phone.page, "integrations-phone");
    await axeCheck(phone.page, "integrations-phone");
    await phone.page.getByRole("link", { name: "SAP IS-U" }).click();
    await phone.page.getByRole("link", { name: "Edit mapping of Customers" }).click();
    await phone.page.locator("#simulation-result article.entity-update").waitFor();
    expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await screenshot(phone.page, "mapping-phone");
    await axeCheck(phone.page, "mapping-phone");
    phone.assertClean();
    expect(hubContext().base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
