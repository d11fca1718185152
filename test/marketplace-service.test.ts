// The install service called directly with blueprints built here (fetching and verification are
// covered through the registry in marketplace.test.ts): environment across upgrades, bounded history.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BlueprintManifest } from "../apps-sdk/src/blueprint/manifest";
import { resolveEnvironment } from "../src/integrations/service";
import type { Caller } from "../src/platform/app";
import { AppError } from "../src/platform/errors";
import { SCOPES } from "../src/platform/scopes";
import { getInstalled, HISTORY_LIMIT, installVerified, putTrust, rollback, upgradeVerified, type VerifiedBlueprint } from "../src/marketplace/service";
import { createTenant } from "./helpers";

const name = "@svc/erp";

function blueprint(version: string, overrides: Record<string, unknown> = {}): VerifiedBlueprint {
  const manifest = BlueprintManifest.parse({
    name,
    version,
    title: "Service test",
    description: { summary: "Built in the test" },
    engines: { "erp-edge": "*" },
    environment: [{ key: "ERP_URL", label: "URL", type: "String", required: true }],
    integrations: [{ slug: "erp", name: `ERP ${version}`, use_cases: [{ slug: "customers", name: "Customers", type: "inbound", configuration: { entities: [{ entity_schema: "contact", unique_ids: ["id"], fields: [{ attribute: "id", field: "id" }] }] } }] }],
    ...overrides,
  });
  return { name, version, digest: `sha256-${"A".repeat(43)}=`, manifest, warnings: [] };
}

async function tenant() {
  const { id } = await createTenant("Service tenant");
  const caller: Caller = { kind: "tenant", tenantId: id, tokenId: "test-token", scopes: [...SCOPES] };
  await putTrust(env.DB, "test", id, { publishers: ["@svc"] });
  return { tenantId: id, caller };
}

const upgradeInput = { environment: {}, dry_run: false, accept_breaking: false };

describe("install service", () => {
  it("asks for new required values on upgrade and gives new integrations the values already set", async () => {
    const { tenantId, caller } = await tenant();
    await installVerified(env, caller, tenantId, blueprint("1.0.0"), { environment: { ERP_URL: "https://erp.example.com" }, dry_run: false });
    const second = (version: string) =>
      blueprint(version, {
        environment: [
          { key: "ERP_URL", label: "URL", type: "String", required: true },
          { key: "ERP_KEY", label: "Key", type: "SecretString", required: true },
        ],
        integrations: [
          { slug: "erp", name: "ERP 1.0.0", use_cases: [] },
          { slug: "billing", name: "Billing", use_cases: [] },
        ],
      });
    const missing = await upgradeVerified(env, caller, tenantId, second("1.1.0"), upgradeInput).catch((e: AppError) => e);
    expect(missing).toBeInstanceOf(AppError);
    expect((missing as AppError).details).toEqual([{ path: "environment.ERP_KEY", message: "required by the blueprint", code: "missing_value" }]);

    const result = await upgradeVerified(env, caller, tenantId, second("1.1.0"), { ...upgradeInput, environment: { ERP_KEY: "k3y" } });
    expect(result.plan.map((e) => `${e.resource} ${e.key} ${e.action}`)).toEqual([
      "integration erp update",
      "use_case erp/customers delete",
      "integration billing create",
      "environment ERP_KEY create",
      "environment ERP_URL no-op",
    ]);
    expect(JSON.stringify(result)).not.toContain("k3y");
    const ids = result.installation!.resources.integrations;
    for (const { id } of ids) expect(await resolveEnvironment(env, tenantId, id)).toEqual({ ERP_URL: "https://erp.example.com", ERP_KEY: "k3y" });
  });

  it("keeps the last HISTORY_LIMIT steps and rolls back one step per call until none is left", async () => {
    const { tenantId, caller } = await tenant();
    await installVerified(env, caller, tenantId, blueprint("1.0.0"), { environment: { ERP_URL: "u" }, dry_run: false });
    const steps = HISTORY_LIMIT + 2;
    for (let i = 1; i <= steps; i++) await upgradeVerified(env, caller, tenantId, blueprint(`1.0.${i}`), upgradeInput);
    const detail = await getInstalled(env.DB, tenantId, name);
    expect(detail.version).toBe(`1.0.${steps}`);
    expect(detail.history).toHaveLength(HISTORY_LIMIT);
    expect(detail.history[0]).toMatchObject({ action: "upgraded", version: `1.0.${steps}`, from_version: `1.0.${steps - 1}` });

    for (let i = steps - 1; i >= steps - HISTORY_LIMIT; i--) {
      const r = await rollback(env, caller, tenantId, name, { dry_run: false, force: false });
      expect(r.version).toBe(`1.0.${i}`);
      expect(r.plan.find((e) => e.resource === "integration")).toMatchObject({ action: "update", diff: { changes: [{ path: "name", from: `ERP 1.0.${i + 1}`, to: `ERP 1.0.${i}` }] } });
    }
    const exhausted = await rollback(env, caller, tenantId, name, { dry_run: false, force: false }).catch((e: AppError) => e);
    expect(exhausted).toMatchObject({ code: "CONFLICT" });
    expect((await getInstalled(env.DB, tenantId, name)).version).toBe(`1.0.${steps - HISTORY_LIMIT}`);
  });
});
