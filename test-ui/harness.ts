/**
 * What every Hub browser test uses. The Worker is started once for all files by global-setup.ts;
 * each file creates its own tenant, so files never see each other's data.
 *
 *   import { afterAll, beforeAll, expect, it } from "vitest";
 *   import { axeCheck, callApi, closeBrowser, createTenant, openSignedIn, screenshot, type Hub } from "./harness";
 *   let hub: Hub;
 *   beforeAll(async () => { hub = await openSignedIn(await createTenant("Monitoring flows")); });
 *   afterAll(() => closeBrowser());
 *   it("…", async () => {
 *     await hub.page.goto(`${hub.base}/hub#/monitoring`);            // or click the nav link
 *     await hub.page.getByRole("heading", { level: 1, name: "Monitoring" }).waitFor();
 *     await screenshot(hub.page, "monitoring");                      // test-results/monitoring.png
 *     await axeCheck(hub.page, "monitoring");                        // fails on serious/critical violations
 *     hub.assertClean();                                             // no CSP violation, console error or external request
 *   });
 *
 * - callApi(method, path, { token, json }) calls the API from Node (setting up data the UI then shows);
 *   it answers { status, body, headers } and never throws on a non-2xx.
 * - publishBundledBlueprints() publishes blueprints/* (and their apps) as the @erp-edge publisher, as
 *   `npm start` does; call it once before a marketplace test (it is idempotent per run).
 * - hubContext().receiverUrl is a loopback webhook receiver (scripts/receiver.mjs) the Worker may
 *   deliver to: POST `${receiverUrl}/_script/<key>` { responses: [500, 500] } makes `${receiverUrl}/hook/<key>` fail.
 * - Chromium: $HUB_CHROMIUM, else Debian's /usr/bin/chromium (apt package `chromium`), headless, no download.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { inject } from "vitest";
import { ROOT, waitFor } from "./worker";

export { waitFor } from "./worker";

export const RESULTS_DIR = path.join(ROOT, "test-results");

/** The running Worker's base URL, admin token and the webhook receiver's URL. */
export function hubContext() {
  return inject("hub");
}

export interface ApiAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** Calls the Worker's API from Node; `token` defaults to none (admin routes pass hubContext().adminToken). */
export async function callApi<T = any>(method: string, apiPath: string, options: { token?: string; json?: unknown } = {}): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${hubContext().base}${apiPath}`, { method, headers, body: options.json === undefined ? undefined : JSON.stringify(options.json) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.status, body: body as T, headers: res.headers };
}

export const ALL_SCOPES = ["integrations:read", "integrations:write", "events:write", "monitoring:read", "blueprints:install", "apps:invoke", "files:read"];

export interface Tenant {
  tenantId: string;
  token: string;
}

/** Creates a tenant and a token for it through the admin API, as the README's first steps do. */
export async function createTenant(name: string, scopes: string[] = ALL_SCOPES): Promise<Tenant> {
  const { adminToken } = hubContext();
  const tenant = await callApi("POST", "/v1/tenants", { token: adminToken, json: { name: `${name} ${Date.now()}` } });
  if (tenant.status !== 201) throw new Error(`tenant not created: ${tenant.status} ${JSON.stringify(tenant.body)}`);
  const token = await callApi("POST", `/v1/tenants/${tenant.body.id}/tokens`, { token: adminToken, json: { name: "hub-ui-test", scopes } });
  if (token.status !== 201) throw new Error(`token not issued: ${token.status} ${JSON.stringify(token.body)}`);
  return { tenantId: tenant.body.id, token: token.body.token };
}

/** The Chromium the tests drive: $HUB_CHROMIUM, else Debian's package; never a download. */
export function chromiumPath(): string {
  const candidates = [process.env.HUB_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter((p): p is string => Boolean(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`No Chromium found (tried ${candidates.join(", ")}). Install Debian's package (apt-get install chromium) or set HUB_CHROMIUM.`);
  return found;
}

let browser: Browser | undefined;

/** The file's one headless Chromium (launched on first use). */
export async function launchBrowser(): Promise<Browser> {
  browser ??= await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  return browser;
}

export async function closeBrowser(): Promise<void> {
  await browser?.close();
  browser = undefined;
}

export interface Hub {
  base: string;
  tenant: Tenant;
  context: BrowserContext;
  page: Page;
  /** Problems seen so far: CSP violations, console errors, page errors, requests leaving the Worker's origin. */
  problems: string[];
  /** Throws when `problems` is not empty (then clears it). */
  assertClean(): void;
}

/** The viewport sizes the tests use: a laptop screen and a phone. */
export const LAPTOP = { width: 1366, height: 850 };
export const PHONE = { width: 390, height: 844 };

/**
 * A new browser context (its own sessionStorage) on /hub, signed in through the sign-in page with
 * the tenant's token. Watches the page for CSP violations, console errors and external requests.
 */
export async function openSignedIn(tenant: Tenant, options: { viewport?: { width: number; height: number } } = {}): Promise<Hub> {
  const hub = await openHub(tenant, options);
  await signIn(hub.page, tenant.token);
  return hub;
}

/** Like openSignedIn, but stops at the sign-in page. */
export async function openHub(tenant: Tenant, options: { viewport?: { width: number; height: number } } = {}): Promise<Hub> {
  const { base } = hubContext();
  const context = await (await launchBrowser()).newContext({ viewport: options.viewport ?? LAPTOP, baseURL: base });
  // Fail fast: every Hub interaction answers within a few seconds locally.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems: string[] = [];
  const origin = new URL(base).origin;
  page.on("console", (msg) => {
    // A failed API call (4xx the test provoked) logs "Failed to load resource"; the UI shows those itself.
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("request", (req) => {
    const url = req.url();
    if (!url.startsWith("data:") && new URL(url).origin !== origin) problems.push(`external request: ${url}`);
  });
  await page.goto(`${base}/hub`);
  await page.getByRole("heading", { level: 1, name: /Sign in/ }).waitFor();
  return {
    base,
    tenant,
    context,
    page,
    problems,
    assertClean() {
      const seen = problems.splice(0);
      if (seen.length > 0) throw new Error(`the page reported problems:\n${seen.join("\n")}`);
    },
  };
}

/** Signs in through the form and waits for the Integrations page. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel("Tenant token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Integrations" }).waitFor();
}

/** Writes a full-page screenshot to test-results/<name>.png (status toasts cleared first); answers its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.png`);
  // Passing status toasts would cover the page in the picture.
  await page.evaluate(() => document.getElementById("status")?.replaceChildren());
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

let axeText: string | undefined;
/** axe-core's browser build, read once. */
const axeSource = () => (axeText ??= readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8"));

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

/**
 * Runs axe-core (WCAG 2 A/AA and best practices) on the page as it is; writes the violations to
 * test-results/<name>.axe.json and throws when one is serious or critical. axe's source is evaluated
 * through the DevTools protocol (page.evaluate), which the page's CSP does not govern, so the strict
 * CSP stays on while the check runs.
 */
export async function axeCheck(page: Page, name: string): Promise<AxeViolation[]> {
  const loaded = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe !== "undefined");
  if (!loaded) await page.evaluate(axeSource());
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(path.join(RESULTS_DIR, `${name}.axe.json`), `${JSON.stringify(violations, null, 2)}\n`);
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (serious.length > 0) {
    const lines = serious.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(", ")}\n    ${v.nodes[0]?.failureSummary ?? ""}`);
    throw new Error(`axe-core found ${serious.length} serious or critical violation(s) on ${name}:\n${lines.join("\n")}`);
  }
  return violations;
}

let published: Promise<void> | undefined;

/**
 * Publishes every bundled blueprint (blueprints/*, with their apps and the examples' apps) as the
 * local @erp-edge publisher, the way `npm start` does, with a signing key made for this run.
 */
export function publishBundledBlueprints(): Promise<void> {
  published ??= (async () => {
    const { base, adminToken } = hubContext();
    const cli = await import(pathToFileURL(path.join(ROOT, "apps-sdk/dist/cli-api.js")).href);
    const keyFile = path.join(os.tmpdir(), `erp-edge-hub-publisher-${process.pid}-${Date.now()}.jwk`);
    const key = await cli.generateKeyFile(keyFile);
    const client = new cli.RegistryClient({ url: new URL(base), token: adminToken });
    try {
      await client.createPublisher("@erp-edge", key.publicJwk);
    } catch (err) {
      if ((err as { status?: number }).status !== 409) throw err;
      await client.addPublisherKey("@erp-edge", key.publicJwk).catch((e: { status?: number }) => {
        if (e.status !== 409) throw e;
      });
    }
    const list = (dir: string, marker: string) =>
      existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, marker))).map((d) => path.join(dir, d.name)) : [];
    const folder = path.join(ROOT, "blueprints");
    const blueprints = list(folder, "blueprint.json");
    const packages = [
      ...list(path.join(folder, "examples"), "src/index.ts").map((p) => ({ p, prepare: cli.prepareApp })),
      ...blueprints.filter((p) => existsSync(path.join(p, "app/src/index.ts"))).map((p) => ({ p: path.join(p, "app"), prepare: cli.prepareApp })),
      ...blueprints.map((p) => ({ p, prepare: cli.preparePackage })),
    ];
    for (const { p, prepare } of packages) {
      try {
        await cli.publishPackage(await prepare(p), key, client);
      } catch (err) {
        if ((err as { status?: number }).status !== 409) throw err;
      }
    }
  })();
  return published;
}

/** Waits until `check` holds (polling, no fixed sleeps); `what` names it in the timeout error. */
export function eventually(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  return waitFor(what, check, ms);
}
