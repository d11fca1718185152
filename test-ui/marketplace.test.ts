// The marketplace in the Hub, against the real Worker and registry with blueprints/* published as
// @erp-edge: search, a package's page (README, versions, signature checked in the browser), an install
// whose plan is shown before it is confirmed, the installed list with an upgrade plan and uninstall,
// and the trusted publishers.
import { afterAll, beforeAll, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Page } from "playwright-core";
import { axeCheck, callApi, closeBrowser, createTenant, hubContext, openSignedIn, PHONE, publishBundledBlueprints, screenshot, type Hub } from "./harness";
import { ROOT } from "./worker";

let hub: Hub;
let token: string;
const PACKAGE = "@erp-edge/hello-erp";

beforeAll(async () => {
  await publishBundledBlueprints();
  const tenant = await createTenant("Marketplace flows");
  token = tenant.token;
  hub = await openSignedIn(tenant);
});

afterAll(() => closeBrowser());

it("finds a blueprint and shows its page: README, versions and a verified signature", async () => {
  const { page } = hub;
  await page.getByRole("link", { name: "Marketplace", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Marketplace" }).waitFor();
  await page.getByRole("searchbox", { name: "Search" }).fill("contracts");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.getByRole("heading", { level: 2, name: /Packages matching/ }).waitFor();
  const link = page.getByRole("link", { name: PACKAGE });
  await link.waitFor();
  await screenshot(page, "marketplace-search");
  await axeCheck(page, "marketplace-search");

  await link.click();
  await page.getByRole("heading", { level: 1, name: PACKAGE }).waitFor();
  // The README, rendered from Markdown as DOM: its headings and tables, no raw markup.
  await page.getByRole("heading", { name: "What the ERP sends" }).waitFor();
  expect(await page.locator(".markdown table").count()).toBeGreaterThan(0);
  expect(await page.locator(".markdown").textContent()).not.toContain("## ");
  await page.getByText("Signature verified in this browser for version 1.0.0").waitFor({ timeout: 20_000 });
  await page.getByRole("region", { name: "Versions" }).getByText("1.0.0").waitFor();
  await screenshot(page, "marketplace-package");
  await axeCheck(page, "marketplace-package");
  hub.assertClean();
});

it("installs a blueprint after showing its plan", async () => {
  const { page } = hub;
  await page.getByLabel(/ERP base URL/).fill("https://erp.example.com/api");
  await page.getByRole("button", { name: "Review the plan" }).click();
  const plan = page.getByRole("list", { name: "The plan (nothing is changed yet)" });
  await plan.waitFor();
  expect(await plan.textContent()).toMatch(/create\s*integration\s*hello-erp/);
  expect(await plan.textContent()).toContain("hello-erp/customers");
  // Nothing is installed before the user confirms.
  expect((await callApi("GET", "/v1/blueprints/installed", { token })).body.installed).toEqual([]);
  await screenshot(page, "marketplace-plan");
  await axeCheck(page, "marketplace-plan");

  await page.getByRole("button", { name: `Install ${PACKAGE}@1.0.0` }).click();
  await page.getByRole("heading", { name: `Installed ${PACKAGE}@1.0.0` }).waitFor();
  const installed = (await callApi("GET", "/v1/blueprints/installed", { token })).body.installed;
  expect(installed.map((i: { name: string }) => i.name)).toEqual([PACKAGE]);
  await page.getByRole("link", { name: "hello-erp", exact: true }).first().waitFor();
  await screenshot(page, "marketplace-installed-notice");
  hub.assertClean();
});

it("lists the installed blueprint, plans an upgrade and uninstalls it", async () => {
  const { page } = hub;
  await page.getByRole("link", { name: "Installed", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Installed" }).waitFor();
  const card = page.getByRole("article", { name: PACKAGE });
  await card.waitFor();
  await card.getByRole("button", { name: "Plan upgrade" }).click();
  // Nothing newer than what is installed: the API's 409 is shown with its message and request id.
  const alert = card.getByRole("alert");
  await alert.waitFor();
  expect(await alert.textContent()).toMatch(/1\.0\.0 is already installed.*HTTP 409.*Request id: \S+/);
  await screenshot(page, "marketplace-installed");
  await axeCheck(page, "marketplace-installed");

  await card.getByRole("button", { name: "Uninstall" }).click();
  const dialog = page.getByRole("dialog", { name: `Uninstall ${PACKAGE}?` });
  await dialog.getByRole("list", { name: "What will be removed" }).waitFor();
  expect(await dialog.textContent()).toMatch(/delete\s*integration\s*hello-erp/);
  await dialog.getByRole("button", { name: "Uninstall" }).click();
  await page.getByText("No blueprint is installed.").waitFor();
  expect((await callApi("GET", "/v1/blueprints/installed", { token })).body.installed).toEqual([]);
  hub.assertClean();
});

it("plans an upgrade with a conflict, shows breaking notes, and upgrades", async () => {
  const { page } = hub;
  // A publisher of our own with hello-erp 1.0.0, installed; the tenant renames a use case; 1.1.0
  // renames it too (a conflict: the tenant's name is kept) and 2.0.0 has breaking-change notes.
  const publisher = await ownPublisher();
  const name = `${publisher.scope}/hello-erp`;
  await publisher.publish("1.0.0");
  expect((await callApi("PUT", "/v1/blueprints/trust", { token, json: { publishers: [publisher.scope] } })).status).toBe(200);
  const install = await callApi("POST", "/v1/blueprints/install", { token, json: { name, version: "1.0.0", environment: { ERP_BASE_URL: "https://erp.example.com" } } });
  expect(install.status, JSON.stringify(install.body)).toBe(201);
  const integrationId = install.body.installation.resources.integrations[0].id;
  const useCaseId = install.body.installation.resources.use_cases.find((u: { key: string }) => u.key === "hello-erp/customers").id;
  const useCase = await callApi("GET", `/v1/integrations/${integrationId}/use-cases/${useCaseId}`, { token });
  const renamed = await callApi("PUT", `/v1/integrations/${integrationId}/use-cases/${useCaseId}`, { token, json: { name: "Customers (Acme)", slug: useCase.body.slug, type: useCase.body.type, configuration: useCase.body.configuration } });
  expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
  await publisher.publish("1.1.0", (m) => {
    for (const uc of m.integrations[0].use_cases) uc.name = `ERP ${uc.slug}`;
  });

  await page.goto(`${hub.base}/hub#/marketplace/installed`);
  const card = page.getByRole("article", { name });
  await card.getByRole("textbox", { name: "Upgrade to" }).fill("1.1.0");
  await card.getByRole("button", { name: "Plan upgrade" }).click();
  const plan = card.getByRole("list", { name: "Upgrade plan (nothing is changed yet)" });
  await plan.waitFor();
  expect(await plan.textContent()).toMatch(/conflict\s*use case\s*hello-erp\/customers/);
  expect(await plan.textContent()).toContain('yours "Customers (Acme)" is kept; the new version has "ERP customers"');
  expect(await plan.textContent()).toMatch(/update\s*use case\s*hello-erp\/contracts.*name: "Contracts" → "ERP contracts"/);
  await card.getByText("1 conflict: your own values are kept").waitFor();
  await screenshot(page, "marketplace-upgrade-plan");
  await axeCheck(page, "marketplace-upgrade-plan");
  await card.getByRole("button", { name: "Upgrade to 1.1.0" }).click();
  await page.getByRole("heading", { level: 3, name: `${name} 1.1.0` }).waitFor();
  expect((await callApi("GET", `/v1/integrations/${integrationId}/use-cases/${useCaseId}`, { token })).body.name).toBe("Customers (Acme)");

  // A new major version: the API refuses without accept_breaking and names the notes, which the page shows.
  await publisher.publish("2.0.0", (m) => {
    m.breaking_changes = { "2": "The customers use case now expects ISO dates." };
  });
  const card2 = page.getByRole("article", { name });
  await card2.getByRole("textbox", { name: "Upgrade to" }).fill("2.0.0");
  await card2.getByRole("button", { name: "Plan upgrade" }).click();
  await card2.getByText("The customers use case now expects ISO dates.").waitFor();
  await card2.getByRole("checkbox", { name: /Accept breaking changes/ }).check();
  await card2.getByRole("button", { name: "Plan upgrade" }).click();
  await card2.getByRole("button", { name: "Upgrade to 2.0.0" }).waitFor();
  await screenshot(page, "marketplace-upgrade-breaking");
  hub.assertClean();
});

it("edits the trusted publishers", async () => {
  const { page } = hub;
  await page.getByRole("link", { name: "Trusted publishers", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Trusted publishers" }).waitFor();
  await page.getByRole("textbox", { name: "Publisher" }).fill("@acme");
  await page.getByRole("button", { name: "Trust", exact: true }).click();
  await page.getByRole("button", { name: "Remove @acme" }).waitFor();
  expect((await callApi("GET", "/v1/blueprints/trust", { token })).body.publishers).toContain("@acme");
  await screenshot(page, "marketplace-trust");
  await axeCheck(page, "marketplace-trust");
  // A malformed scope is explained at the field, before anything is sent.
  await page.getByRole("textbox", { name: "Publisher" }).fill("@Not Valid");
  await page.getByRole("button", { name: "Trust", exact: true }).click();
  await page.getByText(/A scope such as @acme/).waitFor();
  hub.assertClean();
});

it("fits a phone screen", async () => {
  const phone = await openSignedIn(hub.tenant, { viewport: PHONE });
  await phone.page.goto(`${phone.base}/hub#/marketplace/%40erp-edge/hello-erp`);
  await phone.page.getByRole("heading", { name: "What the ERP sends" }).waitFor();
  await phone.page.getByText("Signature verified in this browser for version 1.0.0").waitFor({ timeout: 20_000 });
  expect(await overflowing(phone.page)).toEqual([]);
  await screenshot(phone.page, "marketplace-package-phone");
  await axeCheck(phone.page, "marketplace-package-phone");
  phone.assertClean();
  await phone.context.close();
});

/** Elements reaching past the right edge of the screen (the page would scroll sideways), as "tag.class" names. */
function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll("body *")]
      // Content inside a scrolling box (wide tables, code) scrolls there, not the page.
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".table-wrap, pre"))
      .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}`)
      .slice(0, 10),
  );
}

/** A new publisher (admin token) that publishes copies of blueprints/hello-erp under its scope, as the CLI does. */
async function ownPublisher() {
  const cli = await import(pathToFileURL(path.join(ROOT, "apps-sdk/dist/cli-api.js")).href);
  const { base, adminToken } = hubContext();
  const scope = `@ui-${Date.now().toString(36)}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), "erp-edge-hub-bp-"));
  const key = await cli.generateKeyFile(path.join(dir, "key.jwk"));
  const client = new cli.RegistryClient({ url: new URL(base), token: adminToken });
  await client.createPublisher(scope, key.publicJwk);
  return {
    scope,
    async publish(version: string, edit?: (manifest: any) => void) {
      const folder = path.join(dir, version);
      cpSync(path.join(ROOT, "blueprints/hello-erp"), folder, { recursive: true });
      const file = path.join(folder, "blueprint.json");
      const manifest = JSON.parse(readFileSync(file, "utf8"));
      manifest.name = `${scope}/hello-erp`;
      manifest.version = version;
      edit?.(manifest);
      writeFileSync(file, JSON.stringify(manifest, null, 2));
      await cli.publishPackage(await cli.preparePackage(folder), key, client);
    },
  };
}
