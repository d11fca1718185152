/**
 * The mapping editor of an inbound use case (`#/integrations/:id/use-cases/:useCaseId/mapping`):
 * the configuration as highlighted JSON, a payload (JSON or XML) and the live result of
 * POST /v2/erp/updates/mapping_simulation, refreshed 400 ms after the last keystroke.
 *
 * Problems are shown at their line: JSON syntax errors found here, and the paths of the API's 422
 * details (`event_configuration.entities.0.unique_ids`). A configuration error refuses saving; an
 * error only this payload causes (a JSONata run-time error, a malformed payload) does not, since the
 * configuration itself is valid. Saving sends If-Match, so a concurrent change is not overwritten.
 */
import { ApiError, api, apiResponse } from "../api";
import { createCodeEditor, type Problem } from "../editor";
import { parseWithPositions } from "../json-locate";
import { href, registerPage } from "../router";
import { errorBanner, field, h, loading, pageHeader, replace, status } from "../ui";
import type { SimulationResult, UseCase } from "./types";

const DEBOUNCE_MS = 400;
const SAMPLE_PAYLOAD = { customerId: "CUST-1", email: "ada@example.com", name: "Ada Lovelace" };

interface Detail {
  path?: string;
  message?: string;
  line?: number;
  column?: number;
  position?: number;
  jsonata_code?: string;
}

/** The 422's details as a list (the API answers one object or an array). */
function detailsOf(err: ApiError): Detail[] {
  const d = err.details;
  if (Array.isArray(d)) return d.filter((x) => x && typeof x === "object") as Detail[];
  if (d && typeof d === "object") return [d as Detail];
  return [];
}

/** A path inside the configuration, from the prefixes the API uses for it; null when it is not one. */
export function configurationPath(path: string): { segments: string[]; structural: boolean } | null {
  for (const prefix of ["event_configuration.", "configuration.", /^use_cases\.\d+\.configuration\./]) {
    if (typeof prefix === "string" ? path.startsWith(prefix) : prefix.test(path)) {
      return { segments: path.replace(prefix, "").split("."), structural: true };
    }
  }
  if (path === "event_configuration" || path === "configuration") return { segments: [], structural: true };
  // Run-time errors name the expression's place without a prefix: entities.0.fields.0.jsonataExpression.
  if (/^(entities|meter_readings)(\.|$)/.test(path)) return { segments: path.split("."), structural: false };
  return null;
}

registerPage("/integrations/:id/use-cases/:useCaseId/mapping", async (root, params) => {
  const integrationId = params.id!;
  const useCaseId = params.useCaseId!;
  const useCasePath = `/v1/integrations/${encodeURIComponent(integrationId)}/use-cases/${encodeURIComponent(useCaseId)}`;
  loading(root, "Loading the use case…");
  let useCase: UseCase;
  let etag: string | null;
  let integrationName = integrationId;
  try {
    const res = await apiResponse("GET", useCasePath);
    etag = res.headers.get("etag");
    useCase = (await res.json()) as UseCase;
    integrationName = ((await api("GET", `/v1/integrations/${encodeURIComponent(integrationId)}`)) as { name: string }).name;
  } catch (err) {
    replace(root, h("p", { class: "breadcrumb" }, h("a", { href: href("/integrations") }, "Integrations")), errorBanner(err, "The use case could not be loaded"));
    return;
  }
  const integrationHref = href(`/integrations/${encodeURIComponent(integrationId)}`);
  const breadcrumb = h("p", { class: "breadcrumb" }, h("a", { href: href("/integrations") }, "Integrations"), " / ", h("a", { href: integrationHref }, integrationName), " / ", useCase.name);
  if (useCase.type !== "inbound") {
    replace(root, breadcrumb, pageHeader(`Mapping of ${useCase.name}`), h("p", null, `This is a ${useCase.type} use case; the mapping editor is for inbound use cases.`));
    return;
  }

  // ---- the panes -------------------------------------------------------------------------
  const config = createCodeEditor({
    label: "Mapping configuration (JSON)",
    name: "configuration",
    value: JSON.stringify(useCase.configuration ?? {}, null, 2),
    language: "json",
    hint: "Mapping configuration v2 (README, Mapping). Checked as you type; problems are listed below with their line.",
    onInput: schedule,
  });
  const formatJson = h("input", { type: "radio", name: "payload-format", value: "json", id: "payload-json", checked: true });
  const formatXml = h("input", { type: "radio", name: "payload-format", value: "xml", id: "payload-xml" });
  const payload = createCodeEditor({ label: "Payload", name: "payload", value: JSON.stringify(SAMPLE_PAYLOAD, null, 2), language: "json", hint: "A sample ERP message to map.", onInput: schedule });
  const formatFieldset = h("fieldset", { class: "payload-format" }, h("legend", null, "Payload format"), h("label", { for: formatJson.id }, formatJson, "JSON"), h("label", { for: formatXml.id }, formatXml, "XML"));
  for (const radio of [formatJson, formatXml]) {
    radio.addEventListener("change", () => {
      payload.setLanguage(formatXml.checked ? "text" : "json");
      schedule();
    });
  }
  const simulationState = h("p", { class: "sim-state", role: "status", "aria-live": "polite" });
  const result = h("div", { class: "result-pane", id: "simulation-result" });
  const changeDescription = field("Change description", h("input", { name: "change_description", maxlength: 2000, value: "Mapping edited in the Hub" }), { hint: "Kept in the use case's history." });
  const saveButton = h("button", { type: "button", class: "primary", id: "save-mapping" }, "Save mapping");
  const saveState = h("p", { class: "hint", id: "save-state" });
  saveButton.setAttribute("aria-describedby", saveState.id);
  const saveErrors = h("div");
  const formatButton = h("button", { type: "button", class: "secondary small" }, "Format JSON");
  formatButton.addEventListener("click", () => {
    const parsed = parseWithPositions(config.value());
    if (parsed.ok) {
      config.setValue(JSON.stringify(parsed.value, null, 2));
      schedule();
    } else config.goToLine(parsed.error.line);
  });

  replace(
    root,
    breadcrumb,
    pageHeader(`Mapping of ${useCase.name}`, h("a", { class: "button", href: href(`/integrations/${encodeURIComponent(integrationId)}`) }, "Back to the integration")),
    h("p", { class: "muted" }, "Use case ", h("code", null, useCase.slug), useCase.enabled ? "" : " (disabled)", ". Edit the configuration and the payload; the result refreshes as you type."),
    h(
      "div",
      { class: "editor-layout" },
      h("section", { "aria-label": "Configuration" }, config.element, h("div", { class: "actions" }, formatButton), changeDescription.wrapper, saveErrors, h("div", { class: "actions" }, saveButton), saveState),
      h(
        "section",
        { "aria-labelledby": "payload-title" },
        h("h2", { id: "payload-title" }, "Try it"),
        formatFieldset,
        payload.element,
        h("h2", { id: "result-title" }, "Result"),
        simulationState,
        result,
      ),
    ),
  );

  // ---- validation and simulation ---------------------------------------------------------
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: AbortController | undefined;
  let generation = 0;
  /** Resolves when the latest edit has been checked; Save waits for it. */
  let checked: Promise<void> = Promise.resolve();
  let resolveChecked: (() => void) | undefined;
  /** Whether the configuration (not the payload) has an error; saving is refused while it does. */
  let configInvalid = false;

  function schedule() {
    clearTimeout(timer);
    if (!resolveChecked) checked = new Promise((r) => (resolveChecked = r));
    setSaveState("Checking…", true);
    timer = setTimeout(() => void simulate(), DEBOUNCE_MS);
  }

  function setSaveState(text: string, disabled: boolean) {
    saveState.textContent = text;
    saveButton.disabled = disabled;
  }

  function finish(invalid: boolean) {
    configInvalid = invalid;
    setSaveState(invalid ? "Saving is refused while the configuration has errors (listed under it)." : "The configuration is valid.", invalid);
    resolveChecked?.();
    resolveChecked = undefined;
  }

  async function simulate() {
    const mine = ++generation;
    inFlight?.abort();
    const parsed = parseWithPositions(config.value());
    if (!parsed.ok) {
      config.setProblems([{ line: parsed.error.line, message: `JSON syntax: ${parsed.error.message} (column ${parsed.error.column})`, severity: "error" }]);
      payload.setProblems([]);
      simulationState.textContent = "Not simulated: the configuration is not valid JSON.";
      finish(true);
      return;
    }
    let payloadValue: unknown;
    const xml = formatXml.checked;
    if (xml) payloadValue = payload.value();
    else {
      const p = parseWithPositions(payload.value());
      if (!p.ok) {
        payload.setProblems([{ line: p.error.line, message: `JSON syntax: ${p.error.message} (column ${p.error.column})`, severity: "error" }]);
        simulationState.textContent = "Not simulated: the payload is not valid JSON.";
        // The configuration may still be invalid; it is checked once the payload parses.
        finish(configInvalid);
        return;
      }
      payloadValue = p.value;
    }
    inFlight = new AbortController();
    result.setAttribute("aria-busy", "true");
    simulationState.textContent = "Simulating…";
    try {
      const answer: SimulationResult = await api("POST", "/v2/erp/updates/mapping_simulation", { event_configuration: parsed.value, format: xml ? "xml" : "json", payload: payloadValue, integration_id: integrationId }, { signal: inFlight.signal });
      if (mine !== generation) return;
      config.setProblems([]);
      payload.setProblems([]);
      showResult(answer);
      finish(false);
    } catch (err) {
      if ((err as Error)?.name === "AbortError" || mine !== generation) return;
      if (err instanceof ApiError && err.status === 422) {
        const configProblems: Problem[] = [];
        const payloadProblems: Problem[] = [];
        for (const d of detailsOf(err)) {
          const path = String(d.path ?? "");
          const where = configurationPath(path);
          const message = [d.message ?? err.message, d.jsonata_code ? `(${d.jsonata_code}${d.position !== undefined ? ` at character ${d.position}` : ""})` : null].filter(Boolean).join(" ");
          if (where) {
            const at = parsed.locate(where.segments);
            configProblems.push({ line: at?.line ?? null, path: path.replace(/^(event_)?configuration\./, ""), message: where.structural ? message : `${message} — with this payload`, severity: where.structural ? "error" : "warning" });
          } else if (path === "payload" || path.startsWith("payload.")) {
            payloadProblems.push({ line: typeof d.line === "number" ? d.line : null, message, severity: "error" });
          } else configProblems.push({ line: null, path: path || undefined, message, severity: "error" });
        }
        if (configProblems.length === 0 && payloadProblems.length === 0) configProblems.push({ line: null, message: err.message, severity: "error" });
        config.setProblems(configProblems);
        payload.setProblems(payloadProblems);
        replace(result, errorBanner(err, "The simulation refused this"));
        simulationState.textContent = `Not simulated: ${configProblems.length + payloadProblems.length} problem(s).`;
        finish(configProblems.some((p) => p.severity === "error"));
      } else {
        replace(result, errorBanner(err, "The simulation failed"));
        simulationState.textContent = "The simulation could not run.";
        // Unknown: neither refuse nor vouch for the configuration; the server checks again on save.
        finish(false);
      }
    } finally {
      if (mine === generation) result.removeAttribute("aria-busy");
    }
  }

  function showResult(answer: SimulationResult) {
    const entities = answer.entity_updates ?? [];
    const readings = answer.meter_readings_updates ?? [];
    const warnings = answer.warnings ?? [];
    simulationState.textContent = `${entities.length} entity update(s), ${readings.length} meter reading(s), ${warnings.length} warning(s).`;
    replace(
      result,
      h("h3", null, `Entity updates (${entities.length})`),
      entities.length === 0 ? h("p", { class: "muted" }, "None.") : null,
      ...entities.map((e, n) =>
        h(
          "article",
          { class: "panel entity-update", "aria-label": `Entity update ${n + 1}: ${e.entity_slug}` },
          h("h4", null, h("span", { class: "entity-slug" }, e.entity_slug), " ", h("span", { class: "badge on" }, e.mode)),
          h("dl", { class: "facts" }, h("dt", null, "Unique ids"), h("dd", null, h("code", null, JSON.stringify(e.unique_identifiers)))),
          h("pre", { class: "json" }, JSON.stringify(e.attributes, null, 2)),
        ),
      ),
      h("h3", null, `Meter readings (${readings.length})`),
      readings.length === 0 ? h("p", { class: "muted" }, "None.") : h("pre", { class: "json" }, JSON.stringify(readings, null, 2)),
      h("h3", null, `Warnings (${warnings.length})`),
      warnings.length === 0
        ? h("p", { class: "muted" }, "None.")
        : h(
            "ul",
            { class: "problems warning-list" },
            ...warnings.map((w) => {
              const o = (w && typeof w === "object" ? w : { message: String(w) }) as { code?: string; message?: string; path?: string };
              return h("li", null, o.code ? h("code", null, o.code) : null, o.code ? " " : null, o.message ?? JSON.stringify(w), o.path ? ` (${o.path})` : null);
            }),
          ),
    );
  }

  // ---- saving ----------------------------------------------------------------------------
  saveButton.addEventListener("click", async () => {
    replace(saveErrors);
    if (timer !== undefined) {
      // An edit is waiting for its check: check now rather than save unchecked.
      clearTimeout(timer);
      timer = undefined;
      void simulate();
    }
    await checked;
    if (configInvalid) {
      status("Not saved: the configuration has errors.", "error");
      return;
    }
    const parsed = parseWithPositions(config.value());
    if (!parsed.ok) return;
    saveButton.disabled = true;
    try {
      const res = await apiResponse("PUT", useCasePath, { configuration: parsed.value, change_description: changeDescription.control.value || undefined }, { headers: etag ? { "if-match": etag } : {} });
      etag = res.headers.get("etag");
      status("Mapping saved.");
      setSaveState("Saved.", false);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) {
        // The server's own validation of the saved configuration: shown at the lines it names.
        const problems = detailsOf(err).map((d): Problem => {
          const where = configurationPath(String(d.path ?? ""));
          return { line: where ? (parsed.locate(where.segments)?.line ?? null) : null, path: d.path, message: d.message ?? err.message, severity: "error" };
        });
        if (problems.length) config.setProblems(problems);
      }
      const hint = err instanceof ApiError && err.status === 412 ? "Someone changed this use case meanwhile; reload to see their version" : "The mapping was not saved";
      replace(saveErrors, errorBanner(err, hint));
      saveButton.disabled = false;
    }
  });

  schedule();
});
