/**
 * The Hub's entry point and shell: a skip link, the header with its navigation (Integrations,
 * Monitoring, Marketplace, Sign out), the <main> outlet the router renders pages into, and the
 * aria-live status region `status()` writes to. Signed-out users are sent to `#/sign-in`.
 *
 * Pages register their routes when imported; a new page module is added to the imports below.
 * Pages styles: hub.css (the shell and shared widgets) and pages/extra.css (Monitoring and
 * Marketplace), both bundled into /hub/assets/main.css.
 */
import "./hub.css";
import "./pages/extra.css";
import "./pages/sign-in";
import "./pages/integrations";
import "./pages/mapping";
import "./pages/monitoring";
import "./pages/marketplace";
import { clearToken, getToken, onUnauthorized } from "./api";
import { currentPath, navigate, startRouter } from "./router";
import { h, status } from "./ui";

const NAV = [
  { path: "/integrations", label: "Integrations" },
  { path: "/monitoring", label: "Monitoring" },
  { path: "/marketplace", label: "Marketplace" },
];

function signOut(): void {
  clearToken();
  status("Signed out. The token was removed from this browser tab.");
  navigate("/sign-in");
}

function shell(): HTMLElement {
  const links = NAV.map((item) => h("li", null, h("a", { href: `#${item.path}`, dataset: { path: item.path } }, item.label)));
  const signOutButton = h("button", { type: "button", class: "link-button", id: "sign-out", onclick: signOut }, "Sign out");
  const nav = h("nav", { "aria-label": "Main" }, h("ul", null, ...links, h("li", null, signOutButton)));
  const header = h("header", { class: "site-header" }, h("a", { class: "brand", href: "#/integrations" }, "erp-edge Hub"), nav);
  const main = h("main", { id: "main", tabindex: -1 });
  const region = h("div", { id: "status", class: "status-region", role: "status", "aria-live": "polite" });
  const skip = h("a", { class: "skip-link", href: "#main", onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, "Skip to content");

  // Highlights the current section and hides the navigation while signed out.
  window.addEventListener("hub:route", () => {
    const path = currentPath();
    const signedIn = getToken() !== null;
    nav.hidden = !signedIn;
    for (const a of nav.querySelectorAll<HTMLAnchorElement>("a[data-path]")) {
      if (path.startsWith(a.dataset.path!)) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  });
  const app = h("div", { class: "app" }, skip, header, main, region);
  startRouter(main, (path) => {
    if (path === "/" || path === "") return { path: getToken() ? "/integrations" : "/sign-in" };
    if (!getToken() && path !== "/sign-in") return { path: "/sign-in", query: { next: path } };
    return null;
  });
  return app;
}

onUnauthorized(() => {
  // On the sign-in page the page itself explains the refusal.
  if (currentPath() === "/sign-in") return;
  clearToken();
  status("The token was refused (expired or revoked). Sign in again.", "error");
  navigate("/sign-in", { next: currentPath() });
});

document.body.replaceChildren(shell());
