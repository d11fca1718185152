/**
 * Integrations: the list with a create form (`#/integrations`), and one integration
 * (`#/integrations/:id`): its name, description and settings; its environment (keys declared in
 * environment_config, values write-only: secrets only ever shown masked); its use cases with
 * enable/disable, a form to add one, a link to the mapping editor of inbound ones and each one's
 * change history.
 */
import { api, apiResponse, ApiError } from "../api";
import { href, navigate, registerPage } from "../router";
import { confirmDialog, errorBanner, field, h, loading, pageHeader, replace, showError, status, table, time } from "../ui";
import type { EnvironmentEntry, HistoryEntry, Integration, UseCase } from "./types";

const STARTER_MAPPING = {
  entities: [
    {
      entity_schema: "contact",
      unique_ids: ["customer_number"],
      fields: [{ attribute: "customer_number", field: "customerId" }],
    },
  ],
};

// ---- the list -----------------------------------------------------------------------------

registerPage("/integrations", async (root) => {
  const listArea = h("div");
  const createArea = h("div");
  const newButton = h("button", { type: "button", class: "primary", "aria-expanded": "false", "aria-controls": "create-integration" }, "New integration");
  root.append(pageHeader("Integrations", newButton), createArea, h("h2", null, "Your integrations"), listArea);

  newButton.addEventListener("click", () => {
    const open = newButton.getAttribute("aria-expanded") === "true";
    newButton.setAttribute("aria-expanded", String(!open));
    if (open) replace(createArea);
    else {
      replace(createArea, createForm());
      createArea.querySelector<HTMLInputElement>("input")?.focus();
    }
  });

  let cursor: string | null = null;
  const rows: Integration[] = [];
  const more = h("button", { type: "button", class: "secondary" }, "Load more");
  more.addEventListener("click", () => void load());
  async function load() {
    try {
      const page: { integrations: Integration[]; next_cursor: string | null } = await api("GET", "/v2/integrations", undefined, { query: { limit: 50, cursor } });
      rows.push(...page.integrations);
      cursor = page.next_cursor;
      replace(
        listArea,
        table(
          ["Name", "Description", "Use cases", "Updated"],
          rows.map((i) => [
            h("a", { href: href(`/integrations/${encodeURIComponent(i.id)}`) }, i.name),
            i.description ?? "",
            useCaseSummary(i.use_cases ?? []),
            time(i.updated_at),
          ]),
          { caption: "Integrations", empty: "No integrations yet. Create one with “New integration”." },
        ),
        cursor ? more : null,
      );
    } catch (err) {
      showError(listArea, err, "Integrations could not be listed");
    }
  }
  loading(listArea);
  await load();
});

function useCaseSummary(useCases: UseCase[]): string {
  if (useCases.length === 0) return "none";
  return useCases.map((u) => `${u.name} (${u.type}${u.enabled ? "" : ", disabled"})`).join(", ");
}

/** Name, description and optionally a first inbound use case with a starter mapping. */
function createForm(): HTMLElement {
  const name = field("Name", h("input", { name: "name", required: true, maxlength: 255, autocomplete: "off" }));
  const description = field("Description", h("textarea", { name: "description", maxlength: 1000, rows: 2 }), { hint: "Optional, up to 1,000 characters." });
  const withUseCase = h("input", { type: "checkbox", id: "create-with-use-case", checked: true });
  const ucName = field("Use case name", h("input", { name: "use_case_name", value: "Customers", maxlength: 255 }));
  const ucSlug = field("Use case slug", h("input", { name: "use_case_slug", value: "customers", pattern: "[a-z0-9][a-z0-9_-]*" }), {
    hint: "Lowercase letters, digits, '_' and '-'; fixed once created. Events name it as use_case_slug.",
  });
  const useCaseFields = h("div", null, ucName.wrapper, ucSlug.wrapper);
  withUseCase.addEventListener("change", () => (useCaseFields.hidden = !withUseCase.checked));
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Create integration");
  const form = h(
    "form",
    { class: "panel", id: "create-integration", "aria-labelledby": "create-integration-title", novalidate: true },
    h("h2", { id: "create-integration-title" }, "New integration"),
    name.wrapper,
    description.wrapper,
    h("fieldset", null, h("legend", null, "First use case"), h("div", { class: "checkbox" }, withUseCase, h("label", { for: withUseCase.id }, "Add an inbound use case with a starter mapping")), useCaseFields),
    errors,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    name.setError(null);
    replace(errors);
    if (!name.control.value.trim()) {
      name.setError("Give the integration a name.");
      name.control.focus();
      return;
    }
    const body: Record<string, unknown> = { name: name.control.value.trim(), use_cases: [] };
    if (description.control.value.trim()) body.description = description.control.value.trim();
    if (withUseCase.checked) {
      body.use_cases = [{ name: ucName.control.value.trim(), slug: ucSlug.control.value.trim() || undefined, type: "inbound", configuration: STARTER_MAPPING, change_description: "Created in the Hub" }];
    }
    submit.disabled = true;
    try {
      const created: Integration = await api("POST", "/v2/integrations", body);
      status(`Created integration “${created.name}”.`);
      navigate(`/integrations/${encodeURIComponent(created.id)}`);
    } catch (err) {
      replace(errors, errorBanner(err, "The integration was not created"));
      submit.disabled = false;
    }
  });
  return form;
}

// ---- one integration ----------------------------------------------------------------------

registerPage("/integrations/:id", async (root, params) => {
  const id = params.id!;
  loading(root);
  let integration: Integration;
  let etag: string | null;
  let values: Record<string, string>;
  try {
    const res = await apiResponse("GET", `/v2/integrations/${encodeURIComponent(id)}`);
    etag = res.headers.get("etag");
    integration = (await res.json()) as Integration;
    values = await api("GET", `/v1/integrations/${encodeURIComponent(id)}/environment`);
  } catch (err) {
    replace(root, h("p", { class: "breadcrumb" }, h("a", { href: href("/integrations") }, "Integrations")), errorBanner(err, "The integration could not be loaded"));
    return;
  }
  const reload = () => navigate(`/integrations/${encodeURIComponent(id)}`);
  const deleteButton = h("button", { type: "button", class: "danger" }, "Delete integration");
  deleteButton.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete “${integration.name}”?`, { confirmLabel: "Delete", danger: true, body: h("p", null, "Its use cases, environment values and event log are deleted too. This cannot be undone.") }))) return;
    try {
      await api("DELETE", `/v2/integrations/${encodeURIComponent(id)}`, undefined, { headers: etag ? { "if-match": etag } : {} });
      status(`Deleted “${integration.name}”.`);
      navigate("/integrations");
    } catch (err) {
      status(err instanceof Error ? err.message : String(err), "error");
    }
  });

  replace(
    root,
    h("p", { class: "breadcrumb" }, h("a", { href: href("/integrations") }, "Integrations"), " / ", integration.name),
    pageHeader(integration.name, h("a", { class: "button", href: href("/monitoring", { integration: id }) }, "Monitor events"), deleteButton),
    h("p", { class: "muted" }, "Id ", h("code", null, integration.id), " · created ", time(integration.created_at), " · updated ", time(integration.updated_at)),
    detailsForm(integration, etag, (newEtag) => (etag = newEtag)),
    useCasesSection(integration, reload),
    environmentSection(integration, values, reload),
  );
});

/** Name, description and settings, saved with If-Match so a concurrent change is not overwritten. */
function detailsForm(integration: Integration, etag: string | null, setEtag: (etag: string | null) => void): HTMLElement {
  const name = field("Name", h("input", { name: "name", value: integration.name, required: true, maxlength: 255 }));
  const description = field("Description", h("textarea", { name: "description", maxlength: 1000, rows: 2, value: integration.description ?? "" }));
  const redact = field("Redacted payload paths", h("textarea", { name: "redact_paths", rows: 3, value: (integration.settings?.redact_paths ?? []).join("\n") }), {
    hint: "One dotted path per line (e.g. customer.iban or contacts.*.email): replaced by [REDACTED] in the event log once processed.",
  });
  const retention = field("Retention (days)", h("input", { name: "retention_days", type: "number", min: 1, max: 365, value: String(integration.settings?.retention_days ?? 30) }), {
    hint: "How long events, deliveries and downloads are kept: 1 to 365 days.",
  });
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Save details");
  const form = h("form", { class: "panel", "aria-labelledby": "details-title", novalidate: true }, h("h2", { id: "details-title" }, "Details and settings"), name.wrapper, description.wrapper, redact.wrapper, retention.wrapper, errors, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    replace(errors);
    for (const f of [name, retention]) f.setError(null);
    const days = Number(retention.control.value);
    if (!name.control.value.trim()) return name.setError("A name is required.");
    if (!Number.isInteger(days) || days < 1 || days > 365) return retention.setError("A whole number of days from 1 to 365.");
    const body = {
      name: name.control.value.trim(),
      description: description.control.value,
      settings: { redact_paths: redact.control.value.split("\n").map((s) => s.trim()).filter(Boolean), retention_days: days },
    };
    submit.disabled = true;
    try {
      const res = await apiResponse("PUT", `/v1/integrations/${encodeURIComponent(integration.id)}`, body, { headers: etag ? { "if-match": etag } : {} });
      etag = res.headers.get("etag");
      setEtag(etag);
      status("Details saved.");
    } catch (err) {
      const hint = err instanceof ApiError && err.status === 412 ? "Someone changed this integration meanwhile; reload the page to see their change" : "The details were not saved";
      replace(errors, errorBanner(err, hint));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ---- use cases ----------------------------------------------------------------------------

function useCasesSection(integration: Integration, reload: () => void): HTMLElement {
  const historyArea = h("div", { id: "use-case-history" });
  const section = h("section", { "aria-labelledby": "use-cases-title" }, h("h2", { id: "use-cases-title" }, "Use cases"));
  const rows = integration.use_cases.map((uc) => {
    const toggle = h("button", { type: "button", class: "small secondary", "aria-label": `${uc.enabled ? "Disable" : "Enable"} ${uc.name}` }, uc.enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        await api("PUT", `/v1/integrations/${encodeURIComponent(integration.id)}/use-cases/${encodeURIComponent(uc.id)}`, {
          enabled: !uc.enabled,
          change_description: `${uc.enabled ? "Disabled" : "Enabled"} in the Hub`,
        });
        status(`${uc.name} ${uc.enabled ? "disabled" : "enabled"}.`);
        reload();
      } catch (err) {
        toggle.disabled = false;
        replace(historyArea, errorBanner(err, `${uc.name} was not changed`));
      }
    });
    const history = h("button", { type: "button", class: "small secondary", "aria-label": `History of ${uc.name}`, "aria-controls": "use-case-history" }, "History");
    history.addEventListener("click", () => void showHistory(integration.id, uc, historyArea));
    const mapping =
      uc.type === "inbound" ? h("a", { class: "button small", href: href(`/integrations/${encodeURIComponent(integration.id)}/use-cases/${encodeURIComponent(uc.id)}/mapping`), "aria-label": `Edit mapping of ${uc.name}` }, "Edit mapping") : null;
    return [
      h("strong", null, uc.name),
      h("code", null, uc.slug),
      uc.type,
      h("span", { class: `badge ${uc.enabled ? "on" : "off"}` }, uc.enabled ? "enabled" : "disabled"),
      time(uc.updated_at),
      h("div", { class: "actions" }, mapping, toggle, history),
    ];
  });
  section.append(table(["Name", "Slug", "Type", "State", "Updated", "Actions"], rows, { caption: "Use cases", empty: "No use cases yet." }), historyArea, addUseCaseForm(integration, reload));
  return section;
}

async function showHistory(integrationId: string, uc: UseCase, area: HTMLElement): Promise<void> {
  loading(area);
  try {
    const entries: HistoryEntry[] = [];
    let cursor: string | undefined;
    // At most a few pages: the newest changes are what a user looks for here.
    for (let i = 0; i < 5; i++) {
      const page: { history: HistoryEntry[]; next_cursor?: string } = await api("GET", `/v1/integrations/${encodeURIComponent(integrationId)}/use-cases/${encodeURIComponent(uc.id)}/history`, undefined, { query: { limit: 50, cursor } });
      entries.push(...page.history);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    const heading = h("h3", { id: "history-title", tabindex: -1 }, `History of ${uc.name}`);
    replace(
      area,
      h(
        "div",
        { class: "panel", role: "region", "aria-labelledby": "history-title" },
        heading,
        table(
          ["When", "Change", "By", "Description", "State then"],
          entries.map((e) => [
            time(e.changed_at),
            e.action,
            h("code", null, e.changed_by),
            e.change_description ?? "",
            snapshotDetails(e),
          ]),
          { caption: `Changes to ${uc.name}, newest first`, empty: "No changes recorded." },
        ),
      ),
    );
    heading.focus();
  } catch (err) {
    showError(area, err, "The history could not be loaded");
  }
}

function snapshotDetails(e: HistoryEntry): HTMLElement {
  return h(
    "details",
    null,
    h("summary", null, `${e.snapshot?.enabled ?? e.enabled ? "enabled" : "disabled"}, configuration`),
    h("pre", { class: "json" }, JSON.stringify(e.snapshot?.configuration ?? e.configuration ?? {}, null, 2)),
  );
}

function addUseCaseForm(integration: Integration, reload: () => void): HTMLElement {
  const name = field("Name", h("input", { name: "name", required: true, maxlength: 255 }));
  const slug = field("Slug", h("input", { name: "slug", pattern: "[a-z0-9][a-z0-9_-]*" }), { hint: "Optional: derived from the name when empty. Fixed once created." });
  const type = field("Type", h("select", { name: "type" }, ...["inbound", "outbound", "file_proxy", "pull"].map((t) => h("option", { value: t }, t))));
  const config = field("Configuration (JSON)", h("textarea", { name: "configuration", rows: 8, class: "code", spellcheck: "false", value: JSON.stringify(STARTER_MAPPING, null, 2) }), {
    hint: "Inbound: a mapping configuration (edit it later in the mapping editor). Other types: their configuration as documented in the README.",
  });
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Add use case");
  const form = h("form", { class: "panel", "aria-labelledby": "add-use-case-title", novalidate: true }, h("h3", { id: "add-use-case-title" }, "Add a use case"), name.wrapper, slug.wrapper, type.wrapper, config.wrapper, errors, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    replace(errors);
    name.setError(null);
    config.setError(null);
    if (!name.control.value.trim()) return name.setError("A name is required.");
    let configuration: unknown;
    try {
      configuration = JSON.parse(config.control.value || "{}");
    } catch (err) {
      return config.setError(`Not valid JSON: ${(err as Error).message}`);
    }
    submit.disabled = true;
    try {
      await api("POST", `/v1/integrations/${encodeURIComponent(integration.id)}/use-cases`, {
        name: name.control.value.trim(),
        slug: slug.control.value.trim() || undefined,
        type: type.control.value,
        configuration,
        change_description: "Created in the Hub",
      });
      status(`Use case “${name.control.value.trim()}” added.`);
      reload();
    } catch (err) {
      replace(errors, errorBanner(err, "The use case was not added"));
      submit.disabled = false;
    }
  });
  return form;
}

// ---- environment --------------------------------------------------------------------------

/**
 * Declared keys with their current value (secrets masked by the API, never sent back), a write-only
 * input per key, and a form to declare another key.
 */
function environmentSection(integration: Integration, values: Record<string, string>, reload: () => void): HTMLElement {
  const section = h("section", { "aria-labelledby": "environment-title" }, h("h2", { id: "environment-title" }, "Environment"));
  section.append(h("p", { class: "muted" }, "Values are write-only: secrets are encrypted at rest and shown masked; templates use them as {{env.KEY}}."));
  const errors = h("div");
  const entries = integration.environment_config ?? [];
  const rows = entries.map((entry) => {
    const secret = entry.type === "SecretString";
    const current = values[entry.key];
    const input = h("input", { type: secret ? "password" : "text", autocomplete: secret ? "new-password" : "off", "aria-label": `New value for ${entry.key}`, name: `env-${entry.key}`, class: "env-input" });
    const set = h("button", { type: "button", class: "small primary", "aria-label": `Set ${entry.key}` }, "Set");
    const clear = h("button", { type: "button", class: "small secondary", "aria-label": `Remove the value of ${entry.key}`, disabled: current === undefined }, "Remove");
    const write = async (value: string | null) => {
      replace(errors);
      try {
        await api("PUT", `/v1/integrations/${encodeURIComponent(integration.id)}/environment`, { [entry.key]: value });
        status(value === null ? `${entry.key} removed.` : `${entry.key} saved.`);
        reload();
      } catch (err) {
        replace(errors, errorBanner(err, `${entry.key} was not saved`));
      }
    };
    set.addEventListener("click", () => {
      if (input.value === "") return void input.focus();
      void write(input.value);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") set.click();
    });
    clear.addEventListener("click", () => void write(null));
    return [
      h("code", null, entry.key),
      entry.label,
      secret ? h("span", { class: "badge warn" }, "secret") : "text",
      entry.required ? "yes" : "no",
      current === undefined ? h("span", { class: "muted" }, "not set") : h("code", { class: "env-value" }, current),
      h("div", { class: "actions" }, input, set, clear),
    ];
  });
  section.append(table(["Key", "Label", "Type", "Required", "Value", "New value"], rows, { caption: "Environment values", empty: "No keys declared yet." }), errors, declareKeyForm(integration, entries, reload));
  return section;
}

function declareKeyForm(integration: Integration, entries: EnvironmentEntry[], reload: () => void): HTMLElement {
  const key = field("Key", h("input", { name: "key", required: true, pattern: "[A-Za-z0-9_][A-Za-z0-9_.-]*", maxlength: 128, autocomplete: "off" }), { hint: "Letters, digits, '_', '.', '-', e.g. API_KEY." });
  const label = field("Label", h("input", { name: "label", required: true, maxlength: 255 }));
  const type = field("Type", h("select", { name: "type" }, h("option", { value: "SecretString" }, "Secret (masked)"), h("option", { value: "String" }, "Text")));
  const required = h("input", { type: "checkbox", id: "declare-required" });
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Declare key");
  const form = h("form", { class: "panel", "aria-labelledby": "declare-title", novalidate: true }, h("h3", { id: "declare-title" }, "Declare an environment key"), key.wrapper, label.wrapper, type.wrapper, h("div", { class: "checkbox field" }, required, h("label", { for: required.id }, "Required")), errors, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    replace(errors);
    key.setError(null);
    label.setError(null);
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(key.control.value)) return key.setError("Letters, digits, '_', '.', '-', not starting with '.' or '-'.");
    if (!label.control.value.trim()) return label.setError("A label is required.");
    const declared = [...entries, { key: key.control.value, label: label.control.value.trim(), type: type.control.value as EnvironmentEntry["type"], required: required.checked }];
    submit.disabled = true;
    try {
      await api("PUT", `/v1/integrations/${encodeURIComponent(integration.id)}`, { environment_config: declared });
      status(`${key.control.value} declared.`);
      reload();
    } catch (err) {
      replace(errors, errorBanner(err, "The key was not declared"));
      submit.disabled = false;
    }
  });
  return form;
}
