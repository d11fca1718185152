// Plans of blueprint installs, upgrades, rollbacks and removals: pure functions from what the
// tenant has and what a blueprint version declares to the entries a client reviews and the
// integration states the service then writes in one batch.
import type { BlueprintManifest } from "../../apps-sdk/src/blueprint/manifest";
import { pullTargetProblem } from "../integrations/pull-configuration";
import { appActionReferences, IntegrationSettings, MASK, UseCaseInput, type EnvironmentConfigEntry, type UseCase, type UseCaseType } from "../integrations/schema";
import type { IntegrationSnapshot, IntegrationState } from "../integrations/service";
import { isPrototypeKey } from "../platform/paths";
import { deepEqual, diffValues, merge3, type FieldChange, type FieldConflict } from "./merge";

export type PlanResource = "integration" | "use_case" | "environment" | "app";
export type PlanAction = "create" | "update" | "no-op" | "delete" | "conflict";

/**
 * One resource's fate. Keys: an integration's blueprint slug, `<integration slug>/<use case slug>`,
 * an environment key, an app's package name. `diff.changes` lists what is written; `diff.conflicts`
 * what is not, because the tenant changed it too.
 */
export interface PlanEntry {
  resource: PlanResource;
  key: string;
  action: PlanAction;
  diff?: { changes?: FieldChange[]; conflicts?: FieldConflict[] };
}

/** What an install owns: integration slug → id, `<integration slug>/<use case slug>` → id. */
export interface Resources {
  integrations: Record<string, string>;
  use_cases: Record<string, string>;
}

export const emptyResources = (): Resources => ({ integrations: {}, use_cases: {} });

const lookup = (map: Record<string, string>, key: string) => (Object.hasOwn(map, key) ? map[key] : undefined);
export const useCaseKey = (integrationSlug: string, useCaseSlug: string) => `${integrationSlug}/${useCaseSlug}`;

// ---- the blueprint as the host sees it -----------------------------------------------------------

export interface UseCaseModel {
  slug: string;
  name: string;
  type: UseCaseType;
  enabled: boolean;
  configuration: Record<string, unknown>;
}

export interface IntegrationModel {
  slug: string;
  name: string;
  description?: string;
  use_cases: UseCaseModel[];
}

/** A blueprint version's integrations and environment, every use case parsed as the host stores it (defaults applied). */
export interface BlueprintModel {
  environment: EnvironmentConfigEntry[];
  integrations: IntegrationModel[];
}

export const emptyModel = (): BlueprintModel => ({ environment: [], integrations: [] });

export interface ModelIssue {
  path: string;
  message: string;
}

/** An app action a use case of the blueprint runs (pre_mapping, transform, pull), by its manifest path. */
export interface ModelAppReference {
  path: string;
  app: string;
  action: string;
}

/**
 * The model of a resolved manifest (configurations already read from their files). Each use case
 * is validated with the host's UseCaseInput: `issues` names every failure by its manifest path
 * (`integrations.0.use_cases.1.configuration.entities.0.unique_ids`). A stored base that today's
 * schemas refuse keeps its raw values (`lenient`), so an old install can still be upgraded. A pull
 * use case's `target_use_case` must be an inbound use case of its integration; `references` lists
 * the app actions the use cases run, for the checks that need the tenant's apps.
 */
export function modelOf(manifest: Pick<BlueprintManifest, "environment" | "integrations">, lenient = false): { model: BlueprintModel; issues: ModelIssue[]; references: ModelAppReference[] } {
  const issues: ModelIssue[] = [];
  const references: ModelAppReference[] = [];
  const integrations = manifest.integrations.map((integration, n): IntegrationModel => ({
    slug: integration.slug,
    name: integration.name,
    ...(integration.description !== undefined && { description: integration.description }),
    use_cases: integration.use_cases.map((uc, i): UseCaseModel => {
      const at = `integrations.${n}.use_cases.${i}`;
      const raw = { slug: uc.slug, name: uc.name, type: uc.type, enabled: uc.enabled ?? true, configuration: uc.configuration as Record<string, unknown> };
      const parsed = UseCaseInput.safeParse(raw);
      if (parsed.success) {
        for (const ref of appActionReferences(parsed.data)) references.push({ path: [at, ...ref.path.map(String)].join("."), app: ref.app, action: ref.action });
        if (parsed.data.type === "pull" && !lenient) {
          const problem = pullTargetProblem(parsed.data.configuration.target_use_case, integration.use_cases);
          if (problem) issues.push({ path: `${at}.configuration.target_use_case`, message: problem });
        }
        return { ...useCaseView(parsed.data), slug: uc.slug };
      }
      if (!lenient) {
        for (const issue of parsed.error.issues) issues.push({ path: [at, ...issue.path.map(String)].join("."), message: issue.message });
      }
      return raw;
    }),
  }));
  // Environment keys become property names of value maps: `__proto__` and friends would not stay data.
  for (const [i, e] of manifest.environment.entries()) {
    if (!lenient && isPrototypeKey(e.key)) issues.push({ path: `environment.${i}.key`, message: "must not be __proto__, constructor or prototype" });
  }
  const environment = manifest.environment.map((e) => ({ key: e.key, label: e.label, type: e.type, required: e.required ?? false, ...(e.description !== undefined && { description: e.description }) }));
  return { model: { environment, integrations }, issues, references };
}

// ---- views: the fields a blueprint declares, compared and merged -----------------------------------

type UseCaseView = Omit<UseCaseModel, "slug">;
const useCaseView = (uc: { name: string; type: UseCaseType; enabled?: boolean; configuration: unknown }): UseCaseView => ({
  name: uc.name,
  type: uc.type,
  enabled: uc.enabled ?? true,
  configuration: uc.configuration as Record<string, unknown>,
});

interface IntegrationView {
  name: string;
  description?: string;
  environment_config: EnvironmentConfigEntry[];
}
const integrationView = (x: { name: string; description?: string }, environment: EnvironmentConfigEntry[]): IntegrationView => ({
  name: x.name,
  ...(x.description !== undefined && { description: x.description }),
  environment_config: environment,
});

/** An integration with all its use cases by slug: what "unchanged since install" compares. */
const wholeModelView = (m: IntegrationModel, environment: EnvironmentConfigEntry[]) => ({
  ...integrationView(m, environment),
  use_cases: Object.fromEntries(m.use_cases.map((uc) => [uc.slug, useCaseView(uc)])),
});
const wholeStoredView = (i: IntegrationSnapshot["integration"]) => ({
  ...integrationView(i, i.environment_config),
  use_cases: Object.fromEntries(i.use_cases.map((uc) => [uc.slug, useCaseView(uc)])),
});

const entry = (resource: PlanResource, key: string, action: PlanAction, changes: FieldChange[] = [], conflicts: FieldConflict[] = []): PlanEntry => ({
  resource,
  key,
  action,
  ...((changes.length > 0 || conflicts.length > 0) && { diff: { ...(changes.length > 0 && { changes }), ...(conflicts.length > 0 && { conflicts }) } }),
});

const newUseCase = (model: UseCaseModel, id: string, at: string): UseCase => ({ ...useCaseView(model), slug: model.slug, id, created_at: at, updated_at: at }) as UseCase;

// ---- install and upgrade ---------------------------------------------------------------------------

export interface ChangePlan {
  entries: PlanEntry[];
  /** New integrations, ids minted. */
  creates: IntegrationState[];
  /** Existing integrations to write, with the snapshot they were decided on. */
  rewrites: { snapshot: IntegrationSnapshot; target: IntegrationState }[];
  /** Existing integrations decided on but left as they are (still guarded against concurrent change). */
  unchanged: IntegrationSnapshot[];
  deletes: IntegrationSnapshot[];
  /** What the install owns afterwards. */
  resources: Resources;
}

export interface ChangeInput {
  /** The installed version (empty for a first install). */
  base: BlueprintModel;
  incoming: BlueprintModel;
  /** What the install owns now (empty for a first install). */
  resources: Resources;
  /** The owned integrations that still exist, by id. */
  current: Map<string, IntegrationSnapshot>;
  newId: () => string;
  at: string;
}

/**
 * The plan that takes the tenant from `base` to `incoming` by a three-way merge with its current
 * state (see merge3): per integration and per use case (matched by slug through `resources`),
 * field by field. Added resources are created; removed ones deleted unless the tenant changed them
 * (then a conflict, kept, and no longer owned); use cases the tenant added are not touched.
 */
export function planChanges(input: ChangeInput): ChangePlan {
  const { base, incoming, resources, current, newId, at } = input;
  const plan: ChangePlan = { entries: [], creates: [], rewrites: [], unchanged: [], deletes: [], resources: emptyResources() };
  const baseBySlug = new Map(base.integrations.map((i) => [i.slug, i]));
  const incomingBySlug = new Map(incoming.integrations.map((i) => [i.slug, i]));
  const slugs = [...new Set([...incomingBySlug.keys(), ...baseBySlug.keys()])];

  for (const slug of slugs) {
    const b = baseBySlug.get(slug);
    const i = incomingBySlug.get(slug);
    const id = lookup(resources.integrations, slug);
    const snapshot = id ? current.get(id) : undefined;

    if (!snapshot) {
      if (i && !b) {
        const state: IntegrationState = {
          id: newId(),
          name: i.name,
          ...(i.description !== undefined && { description: i.description }),
          environment_config: incoming.environment,
          settings: IntegrationSettings.parse({}),
          use_cases: i.use_cases.map((uc) => newUseCase(uc, newId(), at)),
        };
        plan.creates.push(state);
        plan.resources.integrations[slug] = state.id;
        plan.entries.push(entry("integration", slug, "create", [{ path: "", from: null, to: integrationView(i, incoming.environment) }]));
        for (const uc of state.use_cases) {
          plan.resources.use_cases[useCaseKey(slug, uc.slug)] = uc.id;
          plan.entries.push(entry("use_case", useCaseKey(slug, uc.slug), "create", [{ path: "", from: null, to: useCaseView(uc) }]));
        }
      } else if (i && b) {
        // The tenant deleted it since: it stays deleted; a changed new version of it is a conflict.
        const same = deepEqual(wholeModelView(b, base.environment), wholeModelView(i, incoming.environment));
        plan.entries.push(
          same
            ? entry("integration", slug, "no-op")
            : entry("integration", slug, "conflict", [], [{ path: "", base: wholeModelView(b, base.environment), current: null, incoming: wholeModelView(i, incoming.environment) }]),
        );
      } else {
        plan.entries.push(entry("integration", slug, "no-op"));
      }
      continue;
    }

    const cur = snapshot.integration;
    if (!i) {
      // Removed by the new version: deleted only if the tenant left it exactly as installed.
      if (b && deepEqual(wholeStoredView(cur), wholeModelView(b, base.environment))) {
        plan.deletes.push(snapshot);
        plan.entries.push(entry("integration", slug, "delete", [{ path: "", from: integrationView(cur, cur.environment_config), to: null }]));
        for (const uc of cur.use_cases) plan.entries.push(entry("use_case", useCaseKey(slug, uc.slug), "delete", [{ path: "", from: useCaseView(uc), to: null }]));
      } else {
        plan.unchanged.push(snapshot);
        plan.entries.push(
          entry("integration", slug, "conflict", [], [{ path: "", base: b ? wholeModelView(b, base.environment) : null, current: wholeStoredView(cur), incoming: null }]),
        );
      }
      continue;
    }

    const { target, entries, owned } = mergeIntegration(slug, b, base.environment, cur, i, incoming.environment, resources, newId, at);
    plan.entries.push(...entries);
    plan.resources.integrations[slug] = cur.id;
    Object.assign(plan.resources.use_cases, owned);
    const written = entries.some((e) => e.diff?.changes);
    if (written) plan.rewrites.push({ snapshot, target });
    else plan.unchanged.push(snapshot);
  }
  return plan;
}

/** The three-way merge of one existing integration and its use cases. */
function mergeIntegration(
  slug: string,
  b: IntegrationModel | undefined,
  baseEnvironment: EnvironmentConfigEntry[],
  cur: IntegrationSnapshot["integration"],
  i: IntegrationModel,
  incomingEnvironment: EnvironmentConfigEntry[],
  resources: Resources,
  newId: () => string,
  at: string,
): { target: IntegrationState; entries: PlanEntry[]; owned: Record<string, string> } {
  const currentView = integrationView(cur, cur.environment_config);
  const fields = merge3(b ? integrationView(b, baseEnvironment) : undefined, currentView, integrationView(i, incomingEnvironment));
  const merged = fields.value as IntegrationView;
  const entries: PlanEntry[] = [];
  const changes = diffValues(currentView, merged);
  entries.push(entry("integration", slug, fields.conflicts.length ? "conflict" : changes.length ? "update" : "no-op", changes, fields.conflicts));

  const useCases = new Map(cur.use_cases.map((uc) => [uc.id, uc]));
  const owned: Record<string, string> = {};
  const baseUseCases = new Map((b?.use_cases ?? []).map((uc) => [uc.slug, uc]));
  const incomingUseCases = new Map(i.use_cases.map((uc) => [uc.slug, uc]));
  for (const ucSlug of new Set([...incomingUseCases.keys(), ...baseUseCases.keys()])) {
    const key = useCaseKey(slug, ucSlug);
    const bu = baseUseCases.get(ucSlug);
    const iu = incomingUseCases.get(ucSlug);
    const ownedId = lookup(resources.use_cases, key);
    const cu = ownedId ? useCases.get(ownedId) : undefined;

    if (!cu) {
      if (!iu) {
        entries.push(entry("use_case", key, "no-op"));
        continue;
      }
      const taken = cur.use_cases.find((uc) => uc.slug === ucSlug);
      if (taken) {
        // The slug is the tenant's own use case now: adopted when identical, otherwise left alone.
        if (deepEqual(useCaseView(taken), useCaseView(iu))) {
          owned[key] = taken.id;
          entries.push(entry("use_case", key, "no-op"));
        } else {
          entries.push(entry("use_case", key, "conflict", [], [{ path: "", base: bu ? useCaseView(bu) : null, current: useCaseView(taken), incoming: useCaseView(iu) }]));
        }
      } else if (bu) {
        // Deleted by the tenant since: stays deleted.
        entries.push(deepEqual(useCaseView(bu), useCaseView(iu)) ? entry("use_case", key, "no-op") : entry("use_case", key, "conflict", [], [{ path: "", base: useCaseView(bu), current: null, incoming: useCaseView(iu) }]));
      } else {
        const created = newUseCase(iu, newId(), at);
        useCases.set(created.id, created);
        owned[key] = created.id;
        entries.push(entry("use_case", key, "create", [{ path: "", from: null, to: useCaseView(iu) }]));
      }
      continue;
    }

    if (!iu) {
      if (bu && deepEqual(useCaseView(cu), useCaseView(bu))) {
        useCases.delete(cu.id);
        entries.push(entry("use_case", key, "delete", [{ path: "", from: useCaseView(cu), to: null }]));
      } else {
        entries.push(entry("use_case", key, "conflict", [], [{ path: "", base: bu ? useCaseView(bu) : null, current: useCaseView(cu), incoming: null }]));
      }
      continue;
    }

    const currentUc = useCaseView(cu);
    const m = merge3(bu ? useCaseView(bu) : undefined, currentUc, useCaseView(iu));
    let mergedUc = m.value as UseCaseView;
    let conflicts = m.conflicts;
    if (!deepEqual(mergedUc, currentUc)) {
      // Fields merged from both sides may not make a valid use case together: then the whole use case is one conflict.
      const parsed = UseCaseInput.safeParse({ ...mergedUc, slug: cu.slug });
      if (parsed.success) mergedUc = useCaseView(parsed.data);
      else {
        mergedUc = currentUc;
        conflicts = [{ path: "", base: bu ? useCaseView(bu) : null, current: currentUc, incoming: useCaseView(iu) }];
      }
    }
    const ucChanges = diffValues(currentUc, mergedUc);
    if (ucChanges.length > 0) useCases.set(cu.id, { ...cu, ...mergedUc, updated_at: at } as UseCase);
    owned[key] = cu.id;
    entries.push(entry("use_case", key, conflicts.length ? "conflict" : ucChanges.length ? "update" : "no-op", ucChanges, conflicts));
  }

  const target: IntegrationState = {
    id: cur.id,
    name: merged.name,
    ...(merged.description !== undefined && { description: merged.description }),
    environment_config: merged.environment_config,
    settings: cur.settings,
    use_cases: [...useCases.values()],
  };
  return { target, entries, owned };
}

// ---- environment values ------------------------------------------------------------------------------

/**
 * Entries for environment values going from `from` to `to` (clear values by key). Values of `secret`
 * keys never appear: they are shown as the mask, and their changes still count.
 */
export function environmentEntries(from: Record<string, string>, to: Record<string, string>, secret: Set<string>): PlanEntry[] {
  const show = (key: string, value: string | undefined) => (value === undefined ? null : secret.has(key) ? MASK : value);
  const keys = [...new Set([...Object.keys(to), ...Object.keys(from)])].sort();
  return keys.map((key) => {
    const before = Object.hasOwn(from, key) ? from[key] : undefined;
    const after = Object.hasOwn(to, key) ? to[key] : undefined;
    const action: PlanAction = before === after ? "no-op" : before === undefined ? "create" : after === undefined ? "delete" : "update";
    return entry("environment", key, action, action === "no-op" ? [] : [{ path: "value", from: show(key, before), to: show(key, after) }]);
  });
}

/** One entry per environment key across several integrations: the first that changes something wins. */
export function mergeEnvironmentEntries(perIntegration: PlanEntry[][]): PlanEntry[] {
  const byKey = new Map<string, PlanEntry>();
  for (const entries of perIntegration) {
    for (const e of entries) {
      const seen = byKey.get(e.key);
      if (!seen || (seen.action === "no-op" && e.action !== "no-op")) byKey.set(e.key, e);
    }
  }
  return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key));
}

// ---- rollback and removal ------------------------------------------------------------------------------

export interface RestorePlan {
  entries: PlanEntry[];
  creates: IntegrationState[];
  rewrites: { snapshot: IntegrationSnapshot; target: IntegrationState }[];
  unchanged: IntegrationSnapshot[];
  deletes: IntegrationSnapshot[];
}

const stateOf = (i: IntegrationSnapshot["integration"]): IntegrationState => ({
  id: i.id,
  name: i.name,
  ...(i.description !== undefined && { description: i.description }),
  environment_config: i.environment_config,
  settings: i.settings,
  use_cases: i.use_cases,
});

const configurationView = (i: IntegrationSnapshot["integration"]) => ({ ...integrationView(i, i.environment_config), settings: i.settings });

/**
 * The plan that puts the integrations back exactly as `target` (a snapshot taken before an install
 * or upgrade) has them: integrations and use cases matched by id; those the step created deleted,
 * those it deleted re-created with their ids. `slugs` names integrations by id for the entries.
 */
export function planRestore(current: Map<string, IntegrationSnapshot>, target: IntegrationSnapshot[], slugs: Map<string, string>): RestorePlan {
  const plan: RestorePlan = { entries: [], creates: [], rewrites: [], unchanged: [], deletes: [] };
  const targetById = new Map(target.map((t) => [t.integration.id, t]));
  const slugOf = (id: string) => slugs.get(id) ?? id;
  for (const id of new Set([...targetById.keys(), ...current.keys()])) {
    const cur = current.get(id);
    const tgt = targetById.get(id);
    const slug = slugOf(id);
    if (tgt && !cur) {
      plan.creates.push(stateOf(tgt.integration));
      plan.entries.push(entry("integration", slug, "create", [{ path: "", from: null, to: configurationView(tgt.integration) }]));
      for (const uc of tgt.integration.use_cases) plan.entries.push(entry("use_case", useCaseKey(slug, uc.slug), "create", [{ path: "", from: null, to: useCaseView(uc) }]));
    } else if (cur && !tgt) {
      plan.deletes.push(cur);
      plan.entries.push(entry("integration", slug, "delete", [{ path: "", from: configurationView(cur.integration), to: null }]));
      for (const uc of cur.integration.use_cases) plan.entries.push(entry("use_case", useCaseKey(slug, uc.slug), "delete", [{ path: "", from: useCaseView(uc), to: null }]));
    } else if (cur && tgt) {
      const changes = diffValues(configurationView(cur.integration), configurationView(tgt.integration));
      const entries = [entry("integration", slug, changes.length ? "update" : "no-op", changes)];
      const before = new Map(cur.integration.use_cases.map((uc) => [uc.id, uc]));
      const after = new Map(tgt.integration.use_cases.map((uc) => [uc.id, uc]));
      for (const ucId of new Set([...after.keys(), ...before.keys()])) {
        const from = before.get(ucId);
        const to = after.get(ucId);
        const key = useCaseKey(slug, (to ?? from)!.slug);
        if (to && !from) entries.push(entry("use_case", key, "create", [{ path: "", from: null, to: useCaseView(to) }]));
        else if (from && !to) entries.push(entry("use_case", key, "delete", [{ path: "", from: useCaseView(from), to: null }]));
        else {
          const ucChanges = diffValues(useCaseView(from!), useCaseView(to!));
          entries.push(entry("use_case", key, ucChanges.length ? "update" : "no-op", ucChanges));
        }
      }
      plan.entries.push(...entries);
      if (entries.some((e) => e.action !== "no-op")) plan.rewrites.push({ snapshot: cur, target: stateOf(tgt.integration) });
      else plan.unchanged.push(cur);
    }
  }
  return plan;
}

/** Use cases in owned integrations that the install does not own: the tenant added them. */
export function tenantAddedUseCases(current: Map<string, IntegrationSnapshot>, resources: Resources, slugs: Map<string, string>): { key: string; id: string }[] {
  const owned = new Set(Object.values(resources.use_cases));
  return [...current.values()].flatMap((s) =>
    s.integration.use_cases.filter((uc) => !owned.has(uc.id)).map((uc) => ({ key: useCaseKey(slugs.get(s.integration.id) ?? s.integration.id, uc.slug), id: uc.id })),
  );
}
