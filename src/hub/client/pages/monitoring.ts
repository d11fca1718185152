/**
 * Monitoring pages: the events of one integration (filters, cursor paging, replay of selected
 * events), one event's detail (payload as stored, i.e. redacted, results, errors, the trace across
 * inbound and outbound, attempts), statistics of a window drawn as inline SVG charts, and the
 * dead-letter queue with redrive.
 *
 *   #/monitoring?integration=<id>&direction=&status=&use_case=&from=&to=&correlation_id=&cursor=&cursor_time=
 *   #/monitoring/events/<event id>?integration=<id>
 *   #/monitoring/stats?integration=<id>&window=1h|24h|7d
 *   #/monitoring/dead-letters?integration=<id>&cursor=
 *
 * Everything is read from the public API with the signed-in token; every string from the API goes
 * into the DOM as text (ui.ts's `h`), and every API error is shown with its message and request id.
 * The filters live in the route, so a filtered view can be bookmarked and the browser's Back button
 * returns to the previous page of results.
 */
import { api } from "../api";
import { href, navigate, registerPage } from "../router";
import { confirmDialog, errorBanner, field, h, loading, pageHeader, replace, status, table, time, uid } from "../ui";

// ---- API shapes (the parts read here) ------------------------------------------------------------

interface UseCase {
  id: string;
  slug: string;
  name: string;
  type: string;
}
interface Integration {
  id: string;
  name: string;
  use_cases: UseCase[];
  settings?: { redact_paths?: string[]; retention_days?: number };
}
interface MonitoredEvent {
  event_id: string;
  direction: "inbound" | "outbound" | "file";
  event_name: string | null;
  use_case_slug: string | null;
  status: string;
  error_category: string | null;
  correlation_id: string | null;
  received_at: string;
  completed_at: string | null;
  processing_duration_ms: number | null;
  attempts: number;
  last_error: string | null;
  ack_status: string | null;
  replay_of: string | null;
  file: { params: Record<string, string>; bytes: number; archive_status: number | null; http_status: number; range: string | null } | null;
}
interface EventsPage {
  data: (MonitoredEvent & { payload: unknown; format: string })[];
  events: MonitoredEvent[];
  has_more: boolean;
  next_cursor: { event_time?: string; event_id?: string } | null;
}
interface ReplayAnswer {
  replayed: number;
  results: { event_id: string; status: string; replay_event_id: string | null; message: string }[];
}
interface InboundStatus {
  status: string;
  entities: { slug: string; _id: string; operation: string; unique_ids: Record<string, unknown> }[];
  errors: { code: string; message: string; [k: string]: unknown }[];
  warnings: Record<string, unknown>[];
  attempts: number;
}
interface Delivery {
  id: string;
  use_case_slug: string;
  mapping_id: string;
  type: string;
  event_id: string;
  event_name: string;
  correlation_id: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  last_status_code: number | null;
  created_at: string;
  completed_at: string | null;
  payload: unknown;
}
interface Percentiles {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}
interface Stats {
  window: string;
  since: string;
  counts: { direction: string; use_case: string | null; status: string; count: number }[];
  processing_ms: Record<"inbound" | "outbound" | "file", Percentiles>;
  acks: { pending: number; timeout: number; processed: number; failed: number };
}

const DIRECTIONS = ["inbound", "outbound", "file"] as const;
/** The statuses each direction's rows take (inbound events, outbound deliveries, file downloads). */
const STATUSES: Record<(typeof DIRECTIONS)[number], string[]> = {
  inbound: ["accepted", "processing", "done", "partial", "error", "ignored"],
  outbound: ["pending", "delivered", "failed", "dead_lettered"],
  file: ["success", "error"],
};
/** Statuses that count as failures in the error rate (a partial inbound event failed some of its entities). */
const FAILED = new Set(["error", "partial", "failed", "dead_lettered"]);
/** Statuses that are still open: left out of the error rate's denominator. */
const OPEN = new Set(["accepted", "processing", "pending"]);
const PAGE_SIZE = 25;
const LAST_INTEGRATION = "erp-edge.hub.monitoring.integration";

// ---- shared frame: integration picker and section tabs ---------------------------------------------

const SECTIONS = [
  { path: "/monitoring", label: "Events" },
  { path: "/monitoring/stats", label: "Statistics" },
  { path: "/monitoring/dead-letters", label: "Dead letters" },
];

/**
 * Renders the page header, the integration picker and the section tabs into `root`, and answers the
 * chosen integration (the route's `integration`, else the last one used in this tab, else the first)
 * and the element the section renders into. Null when the tenant has no integration yet.
 */
async function frame(root: HTMLElement, params: Record<string, string>, section: string, title = "Monitoring"): Promise<{ integration: Integration; body: HTMLElement } | null> {
  root.append(pageHeader(title));
  const body = h("div");
  root.append(body);
  loading(body);
  let integrations: Integration[];
  try {
    integrations = (await api<{ integrations: Integration[] }>("GET", "/v2/integrations", undefined, { query: { limit: 100 } })).integrations;
  } catch (err) {
    replace(body, errorBanner(err, "The integrations could not be loaded"));
    return null;
  }
  if (integrations.length === 0) {
    replace(body, h("p", null, "There is no integration to monitor yet. ", h("a", { href: "#/integrations" }, "Create one"), " or install a blueprint from the ", h("a", { href: "#/marketplace" }, "marketplace"), "."));
    return null;
  }
  const wanted = params.integration ?? sessionStorage.getItem(LAST_INTEGRATION);
  const integration = integrations.find((i) => i.id === wanted) ?? integrations[0]!;
  sessionStorage.setItem(LAST_INTEGRATION, integration.id);

  const select = h("select", { name: "integration" }, ...integrations.map((i) => h("option", { value: i.id, selected: i.id === integration.id }, i.name)));
  const picker = field("Integration", select);
  // Changing the integration starts the section afresh (filters and cursors belong to the old one).
  select.addEventListener("change", () => navigate(section, { integration: select.value }));
  const tabs = h(
    "nav",
    { class: "subnav", "aria-label": "Monitoring sections" },
    h("ul", null, ...SECTIONS.map((s) => h("li", null, h("a", { href: href(s.path, { integration: integration.id }), "aria-current": s.path === section ? "page" : undefined }, s.label)))),
  );
  const content = h("div");
  replace(body, h("div", { class: "monitoring-bar" }, picker.wrapper, tabs), content);
  return { integration, body: content };
}

// ---- events: filters, paging, replay ---------------------------------------------------------------

const FILTER_KEYS = ["direction", "status", "use_case", "from", "to", "correlation_id"] as const;

/** A datetime-local value ("2026-11-23T10:00") in the browser's time zone as the API's ISO time; undefined when empty or invalid. */
function isoOfLocal(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

function statusBadge(s: string): HTMLElement {
  const kind = FAILED.has(s) ? "error" : OPEN.has(s) ? "warn" : s === "ignored" ? "off" : "on";
  return h("span", { class: `badge ${kind}` }, s.replace(/_/g, " "));
}

const ms = (n: number | null | undefined) => (n === null || n === undefined ? "—" : `${Math.round(n)} ms`);

registerPage("/monitoring", async (root, params) => {
  const framed = await frame(root, params, "/monitoring");
  if (!framed) return;
  const { integration, body } = framed;

  // The filter form: submitting it moves to the route with the filters (and no cursor: page one).
  const direction = field("Direction", h("select", { name: "direction" }, h("option", { value: "" }, "Any"), ...DIRECTIONS.map((d) => h("option", { value: d, selected: params.direction === d }, d))));
  const statusOptions = DIRECTIONS.map((d) => h("optgroup", { label: d }, ...STATUSES[d].map((s) => h("option", { value: s, selected: params.status === s }, s.replace(/_/g, " ")))));
  const statusField = field("Status", h("select", { name: "status" }, h("option", { value: "" }, "Any"), ...statusOptions));
  const useCase = field(
    "Use case",
    h("select", { name: "use_case" }, h("option", { value: "" }, "Any"), ...integration.use_cases.map((u) => h("option", { value: u.slug, selected: params.use_case === u.slug }, `${u.name} (${u.slug})`))),
  );
  const from = field("From", h("input", { type: "datetime-local", name: "from", value: params.from ?? "" }), { hint: "Received at or after (your time zone)" });
  const to = field("To", h("input", { type: "datetime-local", name: "to", value: params.to ?? "" }), { hint: "Received before" });
  const correlation = field("Correlation id", h("input", { type: "text", name: "correlation_id", value: params.correlation_id ?? "", autocomplete: "off", spellcheck: "false" }));
  const controls = { direction: direction.control, status: statusField.control, use_case: useCase.control, from: from.control, to: to.control, correlation_id: correlation.control };
  const form = h(
    "form",
    { class: "panel filters", "aria-label": "Event filters" },
    h("div", { class: "filter-grid" }, direction.wrapper, statusField.wrapper, useCase.wrapper, from.wrapper, to.wrapper, correlation.wrapper),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply filters"), h("a", { class: "button secondary", href: href("/monitoring", { integration: integration.id }) }, "Clear filters")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const query: Record<string, string> = { integration: integration.id };
    for (const key of FILTER_KEYS) if (controls[key].value.trim()) query[key] = controls[key].value.trim();
    navigate("/monitoring", query);
  });

  const results = h("section", { "aria-labelledby": "events-heading" });
  body.append(form, results);
  loading(results);

  const query: Record<string, unknown> = { limit: PAGE_SIZE };
  for (const key of ["direction", "status", "use_case", "correlation_id"] as const) if (params[key]) query[key] = params[key];
  const fromIso = isoOfLocal(params.from);
  const toIso = isoOfLocal(params.to);
  if (fromIso) query.from = fromIso;
  if (toIso) query.to = toIso;
  if (params.cursor) query.cursor = { event_id: params.cursor, ...(params.cursor_time && { event_time: params.cursor_time }) };

  let page: EventsPage;
  try {
    page = await api<EventsPage>("POST", `/v1/integrations/${encodeURIComponent(integration.id)}/events`, query);
  } catch (err) {
    replace(results, errorBanner(err, "The events could not be loaded"));
    return;
  }

  const selected = new Set<string>();
  const replayButton = h("button", { type: "button", class: "primary", disabled: true }, "Replay selected");
  const replayOutcome = h("div", { "aria-live": "polite" });
  const updateReplay = () => {
    replayButton.disabled = selected.size === 0;
    replayButton.textContent = selected.size === 0 ? "Replay selected" : `Replay ${selected.size} selected`;
  };
  const rows = page.events.map((ev) => {
    const box = h("input", { type: "checkbox", "aria-label": `Select ${ev.event_name ?? ev.direction} event ${ev.event_id}`, value: ev.event_id });
    // File downloads cannot be replayed (the API answers not_found for them).
    box.disabled = ev.direction === "file";
    box.addEventListener("change", () => {
      if (box.checked) selected.add(ev.event_id);
      else selected.delete(ev.event_id);
      updateReplay();
    });
    return [
      box,
      time(ev.received_at),
      ev.direction,
      h("a", { href: href(`/monitoring/events/${encodeURIComponent(ev.event_id)}`, { integration: integration.id }), class: "event-link" }, ev.event_name ?? ev.event_id),
      ev.use_case_slug ?? "—",
      statusBadge(ev.status),
      ms(ev.processing_duration_ms),
      String(ev.attempts),
      ev.last_error ? h("span", { class: "clip" }, ev.last_error) : "—",
    ];
  });

  replayButton.addEventListener("click", async () => {
    const ids = [...selected];
    const ok = await confirmDialog(`Replay ${ids.length} event${ids.length === 1 ? "" : "s"}?`, {
      confirmLabel: "Replay",
      body: h("p", null, "Inbound events run again through today's configuration; outbound deliveries are sent again. Each replay gets a new id linked to its original."),
    });
    if (!ok) return;
    replayButton.disabled = true;
    try {
      const answer = await api<ReplayAnswer>("POST", `/v1/integrations/${encodeURIComponent(integration.id)}/events/replay`, { event_ids: ids });
      replace(replayOutcome, replayResults(answer, integration.id));
      status(`Replayed ${answer.replayed} of ${ids.length}.`);
    } catch (err) {
      replace(replayOutcome, errorBanner(err, "The replay failed"));
    } finally {
      updateReplay();
    }
  });

  const filtered = FILTER_KEYS.some((k) => params[k]);
  const paging = h(
    "nav",
    { class: "pager", "aria-label": "Event pages" },
    params.cursor ? h("a", { class: "button secondary", href: href("/monitoring", { ...pick(params, ["integration", ...FILTER_KEYS]) }) }, "First page") : null,
    page.next_cursor?.event_id
      ? h("a", { class: "button secondary", rel: "next", href: href("/monitoring", { ...pick(params, ["integration", ...FILTER_KEYS]), integration: integration.id, cursor: page.next_cursor.event_id, cursor_time: page.next_cursor.event_time }) }, "Next page")
      : null,
  );
  replace(
    results,
    h("div", { class: "section-head" }, h("h2", { id: "events-heading" }, "Events"), h("div", { class: "actions" }, replayButton)),
    replayOutcome,
    table(["Select", "Received", "Direction", "Event", "Use case", "Status", "Duration", "Attempts", "Last error"], rows, {
      caption: `Events of ${integration.name}, newest first${filtered ? " (filtered)" : ""}`,
      empty: filtered ? "No event matches these filters." : "No events yet.",
    }),
    paging,
  );
});

function pick(params: Record<string, string>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => params[k]).map((k) => [k, params[k]!]));
}

function replayResults(answer: ReplayAnswer, integrationId: string): HTMLElement {
  return table(
    ["Event", "Result", "Replay", "Message"],
    answer.results.map((r) => [
      h("code", null, r.event_id),
      statusBadge(r.status),
      r.replay_event_id ? h("a", { href: href(`/monitoring/events/${encodeURIComponent(r.replay_event_id)}`, { integration: integrationId }) }, r.replay_event_id) : "—",
      r.message,
    ]),
    { caption: `Replay: ${answer.replayed} replayed` },
  );
}

// ---- one event ---------------------------------------------------------------------------------------

function json(value: unknown): HTMLElement {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return h("pre", { class: "json", tabindex: 0 }, text);
}

function facts(entries: [string, Node | string | null | undefined][]): HTMLElement {
  return h("dl", { class: "facts" }, ...entries.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v ?? "—")]));
}

/** Finds a dead-lettered delivery's payload in the DLQ (a few pages at most: the list holds every dead letter of the integration). */
async function deadLetterOf(integrationId: string, deliveryId: string): Promise<Delivery | null> {
  let cursor: string | undefined;
  for (let i = 0; i < 5; i++) {
    const page = await api<{ deliveries: Delivery[]; next_cursor: string | null }>("GET", `/v1/integrations/${encodeURIComponent(integrationId)}/outbound/dlq`, undefined, { query: { limit: 100, cursor } });
    const found = page.deliveries.find((d) => d.id === deliveryId);
    if (found) return found;
    if (!page.next_cursor) return null;
    cursor = page.next_cursor;
  }
  return null;
}

registerPage("/monitoring/events/:id", async (root, params) => {
  const framed = await frame(root, params, "/monitoring", "Event");
  if (!framed) return;
  const { integration, body } = framed;
  const id = params.id!;
  const base = `/v1/integrations/${encodeURIComponent(integration.id)}`;
  loading(body);
  let page: EventsPage;
  try {
    page = await api<EventsPage>("POST", `${base}/events`, { event_id: id, limit: 1 });
  } catch (err) {
    replace(body, errorBanner(err, "The event could not be loaded"));
    return;
  }
  const ev = page.events[0];
  if (!ev) {
    replace(body, h("p", null, "No event ", h("code", null, id), ` in ${integration.name}. It may belong to another integration, or be older than the retention period.`));
    return;
  }
  const back = h("p", { class: "breadcrumb" }, h("a", { href: href("/monitoring", { integration: integration.id }) }, "← All events"));
  const replayOutcome = h("div", { "aria-live": "polite" });
  const replayButton = h("button", { type: "button", class: "primary" }, "Replay this event");
  replayButton.hidden = ev.direction === "file";
  replayButton.addEventListener("click", async () => {
    if (!(await confirmDialog("Replay this event?", { confirmLabel: "Replay", body: h("p", null, ev.direction === "inbound" ? "It runs again through today's configuration, as a new event linked to this one." : "The delivery is sent again, as a new delivery linked to this one.") }))) return;
    replayButton.disabled = true;
    try {
      const answer = await api<ReplayAnswer>("POST", `${base}/events/replay`, { event_ids: [ev.event_id] });
      replace(replayOutcome, replayResults(answer, integration.id));
      status(answer.replayed === 1 ? "Replayed." : `Not replayed: ${answer.results[0]?.message ?? ""}`, answer.replayed === 1 ? "info" : "error");
    } catch (err) {
      replace(replayOutcome, errorBanner(err, "The replay failed"));
    } finally {
      replayButton.disabled = false;
    }
  });

  const summary = facts([
    ["Event id", h("code", null, ev.event_id)],
    ["Direction", ev.direction],
    ["Event name", ev.event_name ?? "—"],
    ["Use case", ev.use_case_slug ?? "—"],
    ["Status", statusBadge(ev.status)],
    ["Error category", ev.error_category ?? "—"],
    ["Last error", ev.last_error ?? "—"],
    ["Attempts", String(ev.attempts)],
    ["Received", time(ev.received_at) as Node | string],
    ["Completed", time(ev.completed_at) as Node | string],
    ["Processing time", ms(ev.processing_duration_ms)],
    ["ACK status", ev.ack_status ?? "—"],
    ["Correlation id", ev.correlation_id ? h("code", null, ev.correlation_id) : "—"],
    ["Replay of", ev.replay_of ? h("a", { href: href(`/monitoring/events/${encodeURIComponent(ev.replay_of)}`, { integration: integration.id }) }, ev.replay_of) : "—"],
  ]);
  const sections: HTMLElement[] = [];

  // What only one direction has: an inbound event's payload and results, a delivery's payload, a download's request.
  const [inbound, deadLetter, trace] = await Promise.allSettled([
    ev.direction === "inbound" ? api<InboundStatus>("GET", `/v3/erp/updates/events/${encodeURIComponent(ev.event_id)}`) : Promise.resolve(null),
    ev.direction === "outbound" && ev.status === "dead_lettered" ? deadLetterOf(integration.id, ev.event_id) : Promise.resolve(null),
    ev.correlation_id ? api<{ events: MonitoredEvent[] }>("GET", `${base}/monitoring/traces/${encodeURIComponent(ev.correlation_id)}`) : Promise.resolve(null),
  ]);

  const redactions = integration.settings?.redact_paths ?? [];
  const redactNote = redactions.length
    ? h("p", { class: "hint" }, "Stored with these paths replaced by [REDACTED]: ", ...redactions.flatMap((p, i) => [i ? ", " : "", h("code", null, p)]), ".")
    : h("p", { class: "hint" }, "This integration redacts no payload paths (settings.redact_paths).");
  if (ev.direction === "inbound") {
    const received = page.data.find((d) => d.event_id === ev.event_id);
    sections.push(h("section", null, h("h2", null, "Payload"), redactNote, received ? json(received.payload) : h("p", { class: "muted" }, "The payload is no longer stored.")));
    if (inbound.status === "fulfilled" && inbound.value) {
      const r = inbound.value;
      sections.push(
        h(
          "section",
          null,
          h("h2", null, "Results"),
          table(
            ["Entity", "Operation", "Unique ids", "Entity id"],
            r.entities.map((e) => [e.slug, e.operation, h("code", null, JSON.stringify(e.unique_ids)), h("code", null, e._id)]),
            { caption: "Entities this event changed", empty: "No entity was changed." },
          ),
          h("h3", null, "Errors"),
          r.errors.length ? h("ul", { class: "problems" }, ...r.errors.map((e) => h("li", null, h("strong", null, e.code), ": ", e.message))) : h("p", { class: "muted" }, "No errors."),
          r.warnings.length ? [h("h3", null, "Warnings"), json(r.warnings)] : null,
        ),
      );
    } else if (inbound.status === "rejected") sections.push(errorBanner(inbound.reason, "The event's results could not be loaded"));
  } else if (ev.direction === "outbound") {
    const payload =
      deadLetter.status === "fulfilled" && deadLetter.value
        ? json(deadLetter.value.payload)
        : deadLetter.status === "rejected"
          ? errorBanner(deadLetter.reason, "The payload could not be loaded")
          : h("p", { class: "muted" }, "The delivered payload is shown for dead letters only (see Dead letters).");
    sections.push(h("section", null, h("h2", null, "Payload"), payload));
  } else if (ev.file) {
    sections.push(h("section", null, h("h2", null, "Download"), facts([["Parameters", json(ev.file.params)], ["Bytes", String(ev.file.bytes)], ["Archive status", String(ev.file.archive_status ?? "—")], ["Answered", String(ev.file.http_status)], ["Range", ev.file.range ?? "—"]])));
  }

  if (trace.status === "fulfilled" && trace.value) {
    sections.push(
      h(
        "section",
        null,
        h("h2", null, "Trace"),
        h("p", { class: "hint" }, "Everything with this correlation id, inbound and outbound, in time order."),
        table(
          ["Received", "Direction", "Event", "Use case", "Status", "Attempts", "Last error"],
          trace.value.events.map((t) => [
            time(t.received_at),
            t.direction,
            t.event_id === ev.event_id
              ? h("strong", null, t.event_name ?? t.event_id, " (this event)")
              : h("a", { href: href(`/monitoring/events/${encodeURIComponent(t.event_id)}`, { integration: integration.id }) }, t.event_name ?? t.event_id),
            t.use_case_slug ?? "—",
            statusBadge(t.status),
            String(t.attempts),
            t.last_error ?? "—",
          ]),
          { caption: `Trace of ${ev.correlation_id}` },
        ),
      ),
    );
  } else if (trace.status === "rejected") sections.push(errorBanner(trace.reason, "The trace could not be loaded"));

  replace(body, back, h("div", { class: "section-head" }, h("h2", null, ev.event_name ?? `${ev.direction} event${ev.use_case_slug ? ` of ${ev.use_case_slug}` : ""}`), h("div", { class: "actions" }, replayButton)), replayOutcome, summary, ...sections);
});

// ---- statistics as charts -------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

interface Bar {
  label: string;
  value: number;
  /** The text after the bar (defaults to the value). */
  text?: string;
  /** A CSS class for the bar's colour (chart.css: bar-ok, bar-error, bar-open, bar-p50, …). */
  kind?: string;
}

/**
 * A horizontal bar chart as inline SVG (no library, no inline styles: colours come from classes).
 * The SVG is an image with a text summary; the same numbers are in a table under it for screen readers
 * and for copying.
 */
function barChart(title: string, bars: Bar[], options: { max?: number; unit?: string } = {}): HTMLElement {
  const labelWidth = 190;
  const chartWidth = 360;
  const rowHeight = 26;
  const width = labelWidth + chartWidth + 90;
  const height = Math.max(1, bars.length) * rowHeight + 8;
  const max = options.max ?? Math.max(1, ...bars.map((b) => b.value));
  const titleId = uid("chart");
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": titleId, class: "chart", preserveAspectRatio: "xMinYMin meet" });
  root.append(svg("title", { id: titleId }, `${title}: ${bars.map((b) => `${b.label} ${b.text ?? b.value}`).join(", ") || "no data"}`));
  bars.forEach((b, i) => {
    const y = i * rowHeight + 4;
    const w = max > 0 ? Math.max(b.value > 0 ? 2 : 0, (b.value / max) * chartWidth) : 0;
    root.append(
      svg("text", { x: labelWidth - 8, y: y + rowHeight / 2 + 4, "text-anchor": "end", class: "chart-label" }, b.label),
      svg("rect", { x: labelWidth, y: y + 3, width: chartWidth, height: rowHeight - 8, class: "bar-track" }),
      svg("rect", { x: labelWidth, y: y + 3, width: w.toFixed(1), height: rowHeight - 8, class: `bar ${b.kind ?? ""}` }),
      svg("text", { x: labelWidth + chartWidth + 6, y: y + rowHeight / 2 + 4, class: "chart-value" }, b.text ?? String(b.value)),
    );
  });
  if (bars.length === 0) root.append(svg("text", { x: 8, y: 20, class: "chart-label" }, "No data in this window"));
  const data = h("details", null, h("summary", null, "Show the numbers"), table(["", options.unit ?? "Value"], bars.map((b) => [b.label, b.text ?? String(b.value)]), { caption: title }));
  return h("figure", { class: "chart-figure" }, h("figcaption", null, title), root, data);
}

function kindOfStatus(s: string): string {
  return FAILED.has(s) ? "bar-error" : OPEN.has(s) ? "bar-open" : "bar-ok";
}

registerPage("/monitoring/stats", async (root, params) => {
  const framed = await frame(root, params, "/monitoring/stats");
  if (!framed) return;
  const { integration, body } = framed;
  const windowParam = ["1h", "24h", "7d"].includes(params.window ?? "") ? params.window! : "24h";
  const windowSelect = h("select", { name: "window" }, ...["1h", "24h", "7d"].map((w) => h("option", { value: w, selected: w === windowParam }, { "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days" }[w]!)));
  const windowField = field("Window", windowSelect);
  windowSelect.addEventListener("change", () => navigate("/monitoring/stats", { integration: integration.id, window: windowSelect.value }));
  const out = h("div");
  body.append(h("div", { class: "panel filters window-picker" }, windowField.wrapper), out);
  loading(out);
  let stats: Stats;
  try {
    stats = await api<Stats>("GET", `/v1/integrations/${encodeURIComponent(integration.id)}/monitoring/stats`, undefined, { query: { window: windowParam } });
  } catch (err) {
    replace(out, errorBanner(err, "The statistics could not be loaded"));
    return;
  }

  // Counts per direction and status (use cases summed), and per direction the error rate over finished rows.
  const byStatus = new Map<string, number>();
  const perDirection = new Map<string, { total: number; finished: number; failed: number }>();
  for (const c of stats.counts) {
    byStatus.set(`${c.direction} · ${c.status}`, (byStatus.get(`${c.direction} · ${c.status}`) ?? 0) + c.count);
    const d = perDirection.get(c.direction) ?? { total: 0, finished: 0, failed: 0 };
    d.total += c.count;
    if (!OPEN.has(c.status)) d.finished += c.count;
    if (FAILED.has(c.status)) d.failed += c.count;
    perDirection.set(c.direction, d);
  }
  const totals = [...perDirection.values()].reduce((a, d) => ({ total: a.total + d.total, finished: a.finished + d.finished, failed: a.failed + d.failed }), { total: 0, finished: 0, failed: 0 });
  const rate = (d: { finished: number; failed: number }) => (d.finished === 0 ? 0 : (d.failed / d.finished) * 100);
  const pct = (n: number) => `${n.toFixed(n > 0 && n < 10 ? 1 : 0)} %`;

  const countBars: Bar[] = [...byStatus.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([label, value]) => ({ label, value, kind: kindOfStatus(label.split(" · ")[1]!) }));
  const rateBars: Bar[] = DIRECTIONS.filter((d) => perDirection.has(d)).map((d) => {
    const r = rate(perDirection.get(d)!);
    return { label: d, value: r, text: pct(r), kind: r > 0 ? "bar-error" : "bar-ok" };
  });
  const latencyBars: Bar[] = DIRECTIONS.flatMap((d) => {
    const p = stats.processing_ms[d];
    if (!p || p.count === 0) return [];
    return (["p50", "p95", "p99"] as const).map((q) => ({ label: `${d} ${q}`, value: p[q] ?? 0, text: ms(p[q]), kind: `bar-${q}` }));
  });
  const useCaseRows = stats.counts
    .slice()
    .sort((a, b) => `${a.direction}${a.use_case}${a.status}`.localeCompare(`${b.direction}${b.use_case}${b.status}`))
    .map((c) => [c.direction, c.use_case ?? "—", statusBadge(c.status), String(c.count)]);

  replace(
    out,
    h("p", { class: "muted" }, "Since ", time(stats.since), "."),
    h(
      "div",
      { class: "kpis" },
      kpi("Events", String(totals.total)),
      kpi("Error rate", pct(rate(totals)), `${totals.failed} of ${totals.finished} finished`),
      kpi("Inbound p95", ms(stats.processing_ms.inbound?.p95)),
      kpi("Outbound p95", ms(stats.processing_ms.outbound?.p95)),
      kpi("ACKs pending", String(stats.acks.pending), `${stats.acks.timeout} timed out`),
    ),
    h(
      "div",
      { class: "chart-grid" },
      barChart("Events by direction and status", countBars, { unit: "Count" }),
      barChart("Error rate by direction", rateBars, { max: 100, unit: "Error rate" }),
      barChart("Processing time percentiles", latencyBars, { unit: "Milliseconds" }),
    ),
    h("h2", null, "Counts per use case"),
    table(["Direction", "Use case", "Status", "Count"], useCaseRows, { caption: `Counts, last ${stats.window}`, empty: "No events in this window." }),
    h("h2", null, "ACKs"),
    facts([["Pending", String(stats.acks.pending)], ["Processed", String(stats.acks.processed)], ["Failed", String(stats.acks.failed)], ["Timed out", String(stats.acks.timeout)]]),
  );
});

function kpi(label: string, value: string, note?: string): HTMLElement {
  return h("div", { class: "kpi" }, h("span", { class: "kpi-label" }, label), h("span", { class: "kpi-value" }, value), note ? h("span", { class: "kpi-note" }, note) : null);
}

// ---- the dead-letter queue -----------------------------------------------------------------------------

registerPage("/monitoring/dead-letters", async (root, params) => {
  const framed = await frame(root, params, "/monitoring/dead-letters");
  if (!framed) return;
  const { integration, body } = framed;
  const base = `/v1/integrations/${encodeURIComponent(integration.id)}/outbound/dlq`;
  loading(body);
  let page: { deliveries: Delivery[]; next_cursor: string | null };
  try {
    page = await api("GET", base, undefined, { query: { limit: PAGE_SIZE, cursor: params.cursor } });
  } catch (err) {
    replace(body, errorBanner(err, "The dead letters could not be loaded"));
    return;
  }
  const selected = new Set<string>();
  const outcome = h("div", { "aria-live": "polite" });
  const redriveSelected = h("button", { type: "button", class: "primary", disabled: true }, "Redrive selected");
  const redriveAll = h("button", { type: "button", class: "secondary", disabled: page.deliveries.length === 0 }, "Redrive all");
  const update = () => {
    redriveSelected.disabled = selected.size === 0;
    redriveSelected.textContent = selected.size === 0 ? "Redrive selected" : `Redrive ${selected.size} selected`;
  };
  const rows = page.deliveries.map((d) => {
    const box = h("input", { type: "checkbox", value: d.id, "aria-label": `Select dead letter ${d.event_name} ${d.id}` });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(d.id);
      else selected.delete(d.id);
      update();
    });
    return [
      box,
      time(d.created_at),
      h("a", { href: href(`/monitoring/events/${encodeURIComponent(d.id)}`, { integration: integration.id }) }, d.event_name),
      `${d.use_case_slug} / ${d.mapping_id}`,
      String(d.attempts),
      d.last_status_code === null ? "—" : String(d.last_status_code),
      d.last_error ?? "—",
      h("details", null, h("summary", null, "Payload"), json(d.payload)),
    ];
  });

  /** Redrives (ids, or every dead letter page by page) and reloads the list. */
  const redrive = async (ids: string[] | null) => {
    const question = ids ? `Redrive ${ids.length} dead letter${ids.length === 1 ? "" : "s"}?` : "Redrive every dead letter of this integration?";
    if (!(await confirmDialog(question, { confirmLabel: "Redrive", body: h("p", null, "They are delivered again with fresh attempts.") }))) return;
    redriveSelected.disabled = redriveAll.disabled = true;
    let total = 0;
    try {
      if (ids) total = (await api<{ redriven: number }>("POST", `${base}/redrive`, { ids })).redriven;
      else {
        // 100 per call: continue with the answer's cursor while it says more remain.
        let cursor: string | undefined;
        for (;;) {
          const answer = await api<{ redriven: number; has_more?: boolean; next_cursor?: string | null }>("POST", `${base}/redrive`, cursor ? { cursor } : {});
          total += answer.redriven;
          if (!answer.has_more || !answer.next_cursor) break;
          cursor = answer.next_cursor;
        }
      }
      status(`Redriven: ${total}.`);
      navigate("/monitoring/dead-letters", { integration: integration.id, redriven: `${total}-${Date.now()}` });
    } catch (err) {
      replace(outcome, errorBanner(err, "The redrive failed"));
      update();
      redriveAll.disabled = false;
    }
  };
  redriveSelected.addEventListener("click", () => void redrive([...selected]));
  redriveAll.addEventListener("click", () => void redrive(null));

  const redriven = params.redriven ? Number.parseInt(params.redriven, 10) : null;
  replace(
    body,
    h("div", { class: "section-head" }, h("h2", null, "Dead letters"), h("div", { class: "actions" }, redriveSelected, redriveAll)),
    h("p", { class: "hint" }, "Deliveries that ran out of attempts, were refused (4xx), or whose mapping failed. A redrive delivers them again with fresh attempts; follow each in Events."),
    redriven !== null && !Number.isNaN(redriven) ? h("p", { class: "notice", role: "status" }, `${redriven} dead letter${redriven === 1 ? "" : "s"} redriven.`) : null,
    outcome,
    table(["Select", "Created", "Event", "Use case / mapping", "Attempts", "Last status", "Last error", "Payload"], rows, {
      caption: `Dead letters of ${integration.name}`,
      empty: "The dead-letter queue is empty.",
    }),
    h(
      "nav",
      { class: "pager", "aria-label": "Dead-letter pages" },
      params.cursor ? h("a", { class: "button secondary", href: href("/monitoring/dead-letters", { integration: integration.id }) }, "First page") : null,
      page.next_cursor ? h("a", { class: "button secondary", rel: "next", href: href("/monitoring/dead-letters", { integration: integration.id, cursor: page.next_cursor }) }, "Next page") : null,
    ),
  );
});
