/**
 * Small DOM helpers for the Hub's pages. Nothing here ever parses HTML: text goes in through
 * textContent (a string child of `h` becomes a Text node), so API data cannot inject markup.
 *
 *   h("button", { type: "button", class: "primary", onclick: save }, "Save")
 *   h("a", { href: "#/integrations/" + id }, integration.name)
 *   table(["Name", "Updated"], rows.map((r) => [h("a", { href: … }, r.name), r.updated_at]), { caption: "Integrations" })
 *   const f = field("Name", h("input", { name: "name", required: true }), { hint: "1–255 characters" });
 *   f.wrapper (append it), f.control (read .value), f.setError("…") (shown under it, aria-invalid set)
 *   errorBanner(err)            // an element: "<message>" + "code · HTTP status · request id <id>" (role=alert)
 *   showError(container, err)   // replaces container's content with errorBanner(err)
 *   status("Saved")             // announces in the page's aria-live status region (a toast)
 *   if (await confirmDialog("Replay 3 events?", { confirmLabel: "Replay" })) …
 *   pageHeader("Integrations", actionButton)  // <h1> + actions (the router focuses the <h1> after a navigation)
 *   loading(root)               // a "Loading…" placeholder with aria-busy
 *
 * Attributes: `class`, `for` (htmlFor), `hidden`, boolean attributes (`true` sets, false/undefined
 * omits), `on<event>` functions become listeners, `dataset` an object of data-* values, anything
 * else setAttribute(name, String(value)). Styles come only from the stylesheet (the CSP forbids
 * inline styles), so there is deliberately no `style` attribute support.
 */
import { ApiError } from "./api";

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, unknown> & { dataset?: Record<string, string> };

/** Builds an element; string children become text nodes (never HTML). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "style") throw new Error("inline styles are refused by the CSP; use a class");
    if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value as EventListener);
    else if (name === "class") el.className = String(value);
    else if (name === "for") el.setAttribute("for", String(value));
    else if (name === "value" && "value" in el) (el as HTMLInputElement).value = String(value);
    else if (name === "checked" && el instanceof HTMLInputElement) el.checked = Boolean(value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

/** Appends children (strings as text nodes, arrays flattened, null/false skipped). */
export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Removes every child of `el`, then appends `children`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let idCounter = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix = "hub"): string {
  return `${prefix}-${++idCounter}`;
}

/** A table with a caption (for screen readers), header cells with scope and one row per entry; wrapped to scroll on narrow screens. */
export function table(headers: string[], rows: Child[][], options: { caption?: string; empty?: string } = {}): HTMLElement {
  const body = h("tbody", null, ...rows.map((cells) => h("tr", null, ...cells.map((cell, j) => h("td", { "data-label": headers[j] }, cell)))));
  if (rows.length === 0) body.append(h("tr", null, h("td", { colspan: headers.length, class: "empty" }, options.empty ?? "Nothing here yet.")));
  const t = h(
    "table",
    null,
    options.caption ? h("caption", null, options.caption) : null,
    h("thead", null, h("tr", null, ...headers.map((text) => h("th", { scope: "col" }, text)))),
    body,
  );
  // A focusable scroll region so keyboard users can scroll a wide table on a phone.
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": `${options.caption ?? "Table"} (scrollable table)` }, t);
}

export interface Field<C extends HTMLElement> {
  wrapper: HTMLElement;
  control: C;
  /** Shows `message` under the control and marks it invalid; null clears it. */
  setError(message: string | null): void;
}

/** A labelled form control with an optional hint and an error line, wired with aria-describedby. */
export function field<C extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(label: string, control: C, options: { hint?: string } = {}): Field<C> {
  if (!control.id) control.id = uid("field");
  const hintId = `${control.id}-hint`;
  const errorId = `${control.id}-error`;
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  const describedBy = [options.hint ? hintId : null, errorId].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", describedBy);
  const wrapper = h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, label),
    options.hint ? h("p", { class: "hint", id: hintId }, options.hint) : null,
    control,
    error,
  );
  return {
    wrapper,
    control,
    setError(message) {
      error.hidden = message === null;
      error.textContent = message ?? "";
      if (message === null) control.removeAttribute("aria-invalid");
      else control.setAttribute("aria-invalid", "true");
    },
  };
}

/** "<message>" and "<code> · HTTP <status> · request id <id>" of an error, for an alert. */
export function errorBanner(err: unknown, title?: string): HTMLElement {
  const e = err instanceof ApiError ? err : null;
  const message = e ? e.message : err instanceof Error ? err.message : String(err);
  const meta = e ? [e.code, e.status ? `HTTP ${e.status}` : null].filter(Boolean).join(" · ") : null;
  return h(
    "div",
    { class: "error-banner", role: "alert" },
    title ? h("strong", null, title, ": ") : null,
    h("span", { class: "error-message" }, message),
    meta ? h("span", { class: "error-meta" }, ` (${meta})`) : null,
    e?.requestId ? h("span", { class: "error-request-id" }, " Request id: ", h("code", null, e.requestId)) : null,
    details(e?.details),
  );
}

/** An error's details as a list: "path: message" per validation issue, or "key: value" per simple field (e.g. required_scope). */
function details(value: unknown): HTMLElement | null {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const simple = Object.entries(value).filter(([, v]) => v === null || ["string", "number", "boolean"].includes(typeof v));
    if (simple.length === 0) return null;
    return h("ul", { class: "error-details" }, ...simple.slice(0, 20).map(([k, v]) => h("li", null, h("code", null, k), ": ", String(v))));
  }
  if (!Array.isArray(value) || value.length === 0) return null;
  const items = value.slice(0, 20).map((d) => {
    const o = (d && typeof d === "object" ? d : {}) as { path?: unknown; message?: unknown };
    return h("li", null, o.path ? h("code", null, String(o.path)) : null, o.path ? ": " : null, String(o.message ?? JSON.stringify(d)));
  });
  return h("ul", { class: "error-details" }, ...items);
}

/** Replaces `container`'s content with an error banner for `err`. */
export function showError(container: Element, err: unknown, title?: string): void {
  replace(container, errorBanner(err, title));
}

/** Announces `message` in the shell's aria-live status region (a toast that fades after a while). */
export function status(message: string, kind: "info" | "error" = "info"): void {
  const region = document.getElementById("status");
  if (!region) return;
  const item = h("p", { class: `toast toast-${kind}` }, message);
  region.append(item);
  // The newest three stay, each for five seconds: older news is no longer true.
  while (region.childElementCount > 3) region.firstElementChild?.remove();
  setTimeout(() => item.remove(), 5000);
}

/** Asks for confirmation in a modal <dialog> (focus trapped, Escape cancels); resolves true on confirm. */
export function confirmDialog(question: string, options: { confirmLabel?: string; body?: Node; danger?: boolean } = {}): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const ok = h("button", { type: "button", class: options.danger ? "danger" : "primary" }, options.confirmLabel ?? "Confirm");
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": titleId }, h("h2", { id: titleId }, question), options.body ?? null, h("div", { class: "actions" }, cancel, ok));
    const close = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener("click", () => close(false));
    ok.addEventListener("click", () => close(true));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** The page's <h1> (focusable: the router moves focus to it after navigation) with optional action elements; sets the document title. */
export function pageHeader(title: string, ...actions: Child[]): HTMLElement {
  const heading = h("h1", { tabindex: -1 }, title);
  document.title = `${title} · erp-edge Hub`;
  return h("div", { class: "page-header" }, heading, actions.length ? h("div", { class: "actions" }, ...actions) : null);
}

/** Puts a busy placeholder into `root`. */
export function loading(root: Element, what = "Loading…"): void {
  root.setAttribute("aria-busy", "true");
  replace(root, h("p", { class: "loading" }, what));
  queueMicrotask(() => root.removeAttribute("aria-busy"));
}

/** Formats an ISO timestamp for display in the user's locale (the ISO text stays in the title). */
export function time(iso: string | null | undefined): HTMLElement | string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return h("time", { datetime: iso, title: iso }, d.toLocaleString());
}
