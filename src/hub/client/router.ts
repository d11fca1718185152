/**
 * Hash-based routing for the Hub (`#/integrations`, `#/integrations/:id`, `#/monitoring`, …), so the
 * Worker serves one page and no route leaks data into server logs.
 *
 *   registerPage("/integrations/:id", async (root, params) => { … params.id … });
 *   navigate("/integrations/123");          // sets location.hash; the page renders on hashchange
 *   href("/integrations/123")               // "#/integrations/123", for <a href>
 *
 * - Patterns are matched segment by segment; `:name` captures one (URI-decoded) segment. The first
 *   registered pattern that matches wins, so register specific patterns before general ones.
 * - Query parameters after the path (`#/monitoring?status=error&cursor=…`) are merged into
 *   `params` (path parameters win); build them with `href(path, query)`.
 * - Each render gets a fresh, empty `root` element. When the user navigates away before an async
 *   render finishes, that root is detached: writing to it is harmless, nothing leaks into the next
 *   page. Errors thrown by a render are shown in the page as an error banner.
 * - Never put the token or any secret in a route: routes end up in history and bookmarks.
 */
import { errorBanner, h } from "./ui";

export type Render = (root: HTMLElement, params: Record<string, string>) => void | Promise<void>;

interface Route {
  segments: string[];
  render: Render;
}

const routes: Route[] = [];

export function registerPage(path: string, render: Render): void {
  routes.push({ segments: split(path), render });
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s.length > 0);
}

/** The route's hash for `path` and optional query, e.g. href("/monitoring", { status: "error" }) → "#/monitoring?status=error". */
export function href(path: string, query?: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  const qs = params.toString();
  return `#${path}${qs ? `?${qs}` : ""}`;
}

export function navigate(path: string, query?: Record<string, string | number | undefined | null>): void {
  const target = href(path, query);
  if (location.hash === target) void render(true);
  else location.hash = target;
}

/** The current route's path (without `#` and query), e.g. "/integrations/123". */
export function currentPath(): string {
  return (location.hash.slice(1) || "/").split("?")[0] ?? "/";
}

export function match(path: string): { route: Route; params: Record<string, string> } | null {
  const parts = split(path);
  for (const route of routes) {
    if (route.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (const [i, seg] of route.segments.entries()) {
      const part = parts[i]!;
      if (seg.startsWith(":")) {
        try {
          params[seg.slice(1)] = decodeURIComponent(part);
        } catch {
          ok = false;
        }
      } else if (seg !== part) ok = false;
      if (!ok) break;
    }
    if (ok) return { route, params };
  }
  return null;
}

/** What a guard answers: null to render the path, or the route to show instead (path and query). */
export type Redirect = { path: string; query?: Record<string, string | undefined> } | null;

let outlet: HTMLElement | null = null;
let beforeRender: ((path: string) => Redirect) | undefined;

/**
 * Starts routing into `container`. `guard` runs before each render and may redirect (the address is
 * replaced, not added to history) — the shell uses it to send signed-out users to sign-in.
 */
export function startRouter(container: HTMLElement, guard?: (path: string) => Redirect): void {
  outlet = container;
  beforeRender = guard;
  // After a navigation (not on the first load, where Tab should start at the skip link) focus moves
  // to the new page's heading, so screen readers announce it and Tab continues from there.
  window.addEventListener("hashchange", () => void render(true));
  void render(false);
}

async function render(focusHeading = false): Promise<void> {
  if (!outlet) return;
  const [path = "/", query = ""] = (location.hash.slice(1) || "/").split("?");
  const redirect = beforeRender?.(path);
  if (redirect) {
    history.replaceState(null, "", href(redirect.path, redirect.query));
    return render(focusHeading);
  }
  const root = h("div", { class: "page" });
  outlet.replaceChildren(root);
  window.dispatchEvent(new CustomEvent("hub:route", { detail: { path } }));
  const found = match(path);
  if (!found) {
    root.append(h("h1", { tabindex: -1 }, "Not found"), h("p", null, "No page at this address. "), h("a", { href: "#/integrations" }, "Go to integrations"));
    return;
  }
  const params: Record<string, string> = Object.fromEntries(new URLSearchParams(query));
  Object.assign(params, found.params);
  try {
    await found.route.render(root, params);
  } catch (err) {
    root.append(errorBanner(err, "This page could not be shown"));
  }
  if (focusHeading && root.isConnected && !root.contains(document.activeElement)) root.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
}
