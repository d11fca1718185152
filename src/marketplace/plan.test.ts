import { describe, expect, it } from "vitest";
import type { IntegrationSnapshot, IntegrationState } from "../integrations/service";
import { emptyModel, emptyResources, environmentEntries, mergeEnvironmentEntries, modelOf, planChanges, planRestore, tenantAddedUseCases, type BlueprintModel } from "./plan";

const mapping = (field: string) => ({ entities: [{ entity_schema: "contact", unique_ids: ["customer_number"], fields: [{ attribute: "customer_number", field: "id" }, { attribute: "first_name", field }] }] });

function manifest(overrides: { name?: string; field?: string; extra?: boolean; drop?: boolean } = {}) {
  return {
    environment: [{ key: "ERP_URL", label: "ERP base URL", type: "String" as const, required: true }],
    integrations: [
      {
        slug: "erp",
        name: overrides.name ?? "ERP",
        use_cases: [
          ...(overrides.drop ? [] : [{ slug: "customers", name: "Customers", type: "inbound" as const, configuration: mapping(overrides.field ?? "name") }]),
          { slug: "contracts", name: "Contracts", type: "inbound" as const, configuration: mapping("contract") },
          ...(overrides.extra ? [{ slug: "meters", name: "Meters", type: "inbound" as const, configuration: mapping("meter") }] : []),
        ],
      },
    ],
  };
}

const model = (m: ReturnType<typeof manifest>): BlueprintModel => {
  const { model, issues } = modelOf(m);
  expect(issues).toEqual([]);
  return model;
};

const entitiesOf = (m: ReturnType<typeof manifest>) => (model(m).integrations[0]!.use_cases[0]!.configuration as { entities: unknown[] }).entities;

let n = 0;
const newId = () => `ID${String(++n).padStart(4, "0")}`;
const at = "2026-01-01T00:00:00.000Z";

/** A stored integration as the integrations service reads it back. */
const stored = (state: IntegrationState, version = 1): IntegrationSnapshot => ({
  integration: { ...state, orgId: "tenant-1", created_at: at, updated_at: at },
  version,
  environment: [],
});

function installed(m = manifest()) {
  const plan = planChanges({ base: emptyModel(), incoming: model(m), resources: emptyResources(), current: new Map(), newId, at });
  const snapshot = stored(plan.creates[0]!);
  return { plan, snapshot, current: new Map([[snapshot.integration.id, snapshot]]) };
}

describe("modelOf", () => {
  it("names every invalid use case by its manifest path", () => {
    const m = manifest();
    m.integrations[0]!.use_cases[1]!.configuration = { entities: [{ entity_schema: "contact", unique_ids: [], fields: "nope" }] } as never;
    const { issues } = modelOf(m);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.every((i) => i.path.startsWith("integrations.0.use_cases.1.configuration"))).toBe(true);
  });
});

describe("planChanges", () => {
  it("creates every integration and use case of a first install", () => {
    const { plan } = installed();
    expect(plan.entries.map((e) => [e.resource, e.key, e.action])).toEqual([
      ["integration", "erp", "create"],
      ["use_case", "erp/customers", "create"],
      ["use_case", "erp/contracts", "create"],
    ]);
    expect(plan.creates).toHaveLength(1);
    expect(Object.keys(plan.resources.use_cases)).toEqual(["erp/customers", "erp/contracts"]);
    expect(plan.creates[0]!.environment_config).toEqual([{ key: "ERP_URL", label: "ERP base URL", type: "String", required: true }]);
  });

  it("keeps a tenant change, takes a blueprint change, and reports a conflict with all three values", () => {
    const { plan, snapshot, current } = installed();
    // The tenant renamed the integration and changed the customers mapping.
    const mine = structuredClone(snapshot);
    mine.integration.name = "Our ERP";
    const customers = mine.integration.use_cases.find((u) => u.slug === "customers")!;
    (customers.configuration as ReturnType<typeof mapping>).entities[0]!.fields[1]!.field = "tenant_field";
    current.set(mine.integration.id, mine);
    // The new version changes the customers mapping too, the integration's name not, and adds meters.
    const next = planChanges({ base: model(manifest()), incoming: model(manifest({ field: "full_name", extra: true })), resources: plan.resources, current, newId, at });
    const byKey = Object.fromEntries(next.entries.map((e) => [e.key, e]));
    expect(byKey.erp!.action).toBe("no-op");
    expect(byKey["erp/customers"]).toEqual({
      resource: "use_case",
      key: "erp/customers",
      action: "conflict",
      // Configurations are compared as the host stores them, defaults (such as mode) applied.
      diff: { conflicts: [{ path: "configuration.entities", base: entitiesOf(manifest()), current: (customers.configuration as ReturnType<typeof mapping>).entities, incoming: entitiesOf(manifest({ field: "full_name" })) }] },
    });
    expect(byKey["erp/contracts"]!.action).toBe("no-op");
    expect(byKey["erp/meters"]!.action).toBe("create");
    const target = next.rewrites[0]!.target;
    expect(target.name).toBe("Our ERP");
    expect(target.use_cases.find((u) => u.slug === "customers")!.configuration).toEqual(customers.configuration);
    expect(target.use_cases.map((u) => u.slug).sort()).toEqual(["contracts", "customers", "meters"]);
    expect(Object.keys(next.resources.use_cases).sort()).toEqual(["erp/contracts", "erp/customers", "erp/meters"]);
  });

  it("applies a change the tenant did not touch", () => {
    const { plan, current } = installed();
    const next = planChanges({ base: model(manifest()), incoming: model(manifest({ name: "ERP v2" })), resources: plan.resources, current, newId, at });
    expect(next.entries[0]).toEqual({ resource: "integration", key: "erp", action: "update", diff: { changes: [{ path: "name", from: "ERP", to: "ERP v2" }] } });
    expect(next.rewrites[0]!.target.name).toBe("ERP v2");
  });

  it("deletes what the new version removes unless the tenant changed it", () => {
    const { plan, snapshot, current } = installed();
    const untouched = planChanges({ base: model(manifest()), incoming: model(manifest({ drop: true })), resources: plan.resources, current, newId, at });
    expect(untouched.entries.find((e) => e.key === "erp/customers")!.action).toBe("delete");
    expect(untouched.rewrites[0]!.target.use_cases.map((u) => u.slug)).toEqual(["contracts"]);
    expect(untouched.resources.use_cases).not.toHaveProperty("erp/customers");

    const mine = structuredClone(snapshot);
    mine.integration.use_cases.find((u) => u.slug === "customers")!.enabled = false;
    const changed = planChanges({ base: model(manifest()), incoming: model(manifest({ drop: true })), resources: plan.resources, current: new Map([[mine.integration.id, mine]]), newId, at });
    const entry = changed.entries.find((e) => e.key === "erp/customers")!;
    expect(entry.action).toBe("conflict");
    expect(entry.diff!.conflicts![0]).toMatchObject({ path: "", incoming: null, current: { enabled: false } });
    expect(changed.rewrites).toHaveLength(0);
    expect(changed.resources.use_cases).not.toHaveProperty("erp/customers");
  });

  it("leaves use cases the tenant added alone, and what the tenant deleted deleted", () => {
    const { plan, snapshot } = installed();
    const mine = structuredClone(snapshot);
    mine.integration.use_cases = mine.integration.use_cases.filter((u) => u.slug !== "contracts");
    mine.integration.use_cases.push({ ...mine.integration.use_cases[0]!, id: "TENANT", slug: "own", name: "Own" });
    const next = planChanges({ base: model(manifest()), incoming: model(manifest({ name: "ERP v2" })), resources: plan.resources, current: new Map([[mine.integration.id, mine]]), newId, at });
    expect(next.entries.find((e) => e.key === "erp/contracts")!.action).toBe("no-op");
    const target = next.rewrites[0]!.target;
    expect(target.use_cases.map((u) => u.slug).sort()).toEqual(["customers", "own"]);
    expect(tenantAddedUseCases(new Map([[mine.integration.id, mine]]), plan.resources, new Map([[mine.integration.id, "erp"]]))).toEqual([{ key: "erp/own", id: "TENANT" }]);
  });
});

describe("planRestore", () => {
  it("puts back exactly what the snapshot holds, by id", () => {
    const { snapshot } = installed();
    const now = structuredClone(snapshot);
    now.integration.name = "Changed";
    now.integration.use_cases = now.integration.use_cases.slice(1);
    now.integration.use_cases.push({ ...snapshot.integration.use_cases[0]!, id: "NEW", slug: "new" });
    const restore = planRestore(new Map([[now.integration.id, now]]), [snapshot], new Map([[snapshot.integration.id, "erp"]]));
    expect(restore.entries.map((e) => [e.key, e.action])).toEqual([
      ["erp", "update"],
      ["erp/customers", "create"],
      ["erp/contracts", "no-op"],
      ["erp/new", "delete"],
    ]);
    expect(restore.rewrites[0]!.target.use_cases).toEqual(snapshot.integration.use_cases);
    // Rolling back a first install: the snapshot is empty, so everything goes.
    expect(planRestore(new Map([[now.integration.id, now]]), [], new Map()).deletes).toHaveLength(1);
  });
});

describe("environment entries", () => {
  it("masks secrets and still reports their changes", () => {
    const entries = environmentEntries({ URL: "a", KEY: "old", GONE: "x" }, { URL: "a", KEY: "new", NEW: "n" }, new Set(["KEY"]));
    expect(entries).toEqual([
      { resource: "environment", key: "GONE", action: "delete", diff: { changes: [{ path: "value", from: "x", to: null }] } },
      { resource: "environment", key: "KEY", action: "update", diff: { changes: [{ path: "value", from: "********", to: "********" }] } },
      { resource: "environment", key: "NEW", action: "create", diff: { changes: [{ path: "value", from: null, to: "n" }] } },
      { resource: "environment", key: "URL", action: "no-op" },
    ]);
    expect(mergeEnvironmentEntries([environmentEntries({ A: "1" }, { A: "1" }, new Set()), environmentEntries({ A: "1" }, { A: "2" }, new Set())])[0]!.action).toBe("update");
  });
});

describe("modelOf with app actions", () => {
  const pull = (target: string) => ({ slug: "delta", name: "Delta", type: "pull" as const, configuration: { app: "@acme/erp-delta", action: "pull", schedule: "*/15 * * * *", target_use_case: target } });
  const pre = { slug: "customers", name: "Customers", type: "inbound" as const, configuration: { ...mapping("name"), pre_mapping: { app: "@acme/normalise", action: "clean" } } };
  const withUseCases = (useCases: unknown[]) => ({ environment: [], integrations: [{ slug: "erp", name: "ERP", use_cases: useCases }] }) as unknown as Parameters<typeof modelOf>[0];

  it("lists the app actions use cases run, by manifest path, and accepts a pull that feeds an inbound use case", () => {
    const { model: m, issues, references } = modelOf(withUseCases([pre, pull("customers")]));
    expect(issues).toEqual([]);
    expect(m.integrations[0]!.use_cases[1]).toMatchObject({ type: "pull", configuration: { input: {} } });
    expect(references).toEqual([
      { path: "integrations.0.use_cases.0.configuration.pre_mapping.app", app: "@acme/normalise", action: "clean" },
      { path: "integrations.0.use_cases.1.configuration.app", app: "@acme/erp-delta", action: "pull" },
    ]);
  });

  it("refuses a pull whose target is missing or not inbound, unless reading a stored base leniently", () => {
    const missing = modelOf(withUseCases([pre, pull("nope")]));
    expect(missing.issues).toEqual([{ path: "integrations.0.use_cases.1.configuration.target_use_case", message: expect.stringContaining("no use case 'nope'") }]);
    const itself = modelOf(withUseCases([pre, pull("delta")]));
    expect(itself.issues).toEqual([{ path: "integrations.0.use_cases.1.configuration.target_use_case", message: expect.stringContaining("'delta' is a pull use case") }]);
    expect(modelOf(withUseCases([pre, pull("nope")]), true).issues).toEqual([]);
  });
});
