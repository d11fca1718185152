/**
 * Marketplace pages: search the registry, a package's page (README rendered safely, versions,
 * publisher, signature status checked in the browser), plan-first installs whose plan is shown as a
 * diff before the user confirms, installed blueprints (upgrade with plan, conflicts and breaking
 * notes; uninstall) and apps (grants; removal), and the tenant's trusted publishers.
 *
 *   #/marketplace?q=&kind=&cursor=
 *   #/marketplace/installed
 *   #/marketplace/trust
 *   #/marketplace/<@scope>/<name>?version=
 *
 * Every API string is rendered as text. The one piece of markup from outside, a package's README,
 * is never parsed as HTML: renderMarkdown reads a safe subset of Markdown and builds DOM nodes from
 * it (text through text nodes; links only to http(s) and mailto; images shown as their alt text, so
 * a README cannot make the browser fetch anything).
 */
import { api, apiResponse, ApiError } from "../api";
import { href, navigate, registerPage } from "../router";
import { confirmDialog, errorBanner, field, h, loading, pageHeader, replace, status, table, time } from "../ui";

// ---- API shapes (the parts read here) ------------------------------------------------------------

interface SearchHit {
  name: string;
  kind: "blueprint" | "app";
  title: string;
  summary: string;
  keywords: string[];
  publisher: string;
  latest: string | null;
  updated_at: string;
}
interface VersionSummary {
  version: string;
  published_at: string;
  digest: string;
  yanked: boolean;
  yank_reason: string | null;
  deprecated: boolean;
  deprecation_message: string | null;
}
interface RegistryPackage {
  name: string;
  kind: "blueprint" | "app";
  title: string;
  summary: string;
  keywords: string[];
  publisher: string;
  dist_tags: { latest?: string };
  versions: VersionSummary[];
  readme: string | null;
  created_at: string;
  updated_at: string;
}
interface PublicKeyJwk {
  kty: string;
  crv: string;
  x: string;
}
interface RegistryVersion extends VersionSummary {
  name: string;
  kind: string;
  manifest: Manifest;
  signature: string;
  publisher: string;
  key_id: string;
  public_key: PublicKeyJwk;
  readme: string | null;
}
interface Manifest {
  environment?: { key: string; label?: string; type?: string; required?: boolean; description?: string }[];
  breaking_changes?: Record<string, string>;
  description?: { summary?: string; preinstall?: string; postinstall?: string } | string;
  [k: string]: unknown;
}
interface Publisher {
  name: string;
  owner: string | null;
  keys: { kid: string; created_at: string }[];
  created_at: string;
}
interface PlanEntry {
  resource: string;
  key: string;
  action: "create" | "update" | "no-op" | "delete" | "conflict";
  diff?: { changes?: { path: string; from: unknown; to: unknown }[]; conflicts?: { path: string; base: unknown; current: unknown; incoming: unknown }[] };
}
interface Installation {
  name: string;
  version: string;
  digest: string;
  installed_at: string;
  installed_by: string;
  updated_at: string;
  resources: { integrations: { slug: string; id: string }[]; use_cases: { key: string; id: string }[] };
}
interface PlanResult {
  name: string;
  version: string | null;
  digest: string | null;
  from: { version: string; digest: string } | null;
  dry_run: boolean;
  plan: PlanEntry[];
  warnings: string[];
  installation: Installation | null;
}
interface AppInstallation {
  name: string;
  version: string;
  digest: string;
  description: string;
  actions: { name: string; description: string; hosts: string[] }[];
  requested_hosts: string[];
  grants: { hosts: string[] };
  installed_via: string | null;
  installed_at: string;
  warnings?: string[];
}

const PLATFORM = "@erp-edge";
const enc = encodeURIComponent;
/** "/v1/registry/packages/@acme/x": scope and name are validated by the API; encoded anyway. */
const packagePath = (name: string) => {
  const [scope, base] = splitName(name);
  return `${enc(scope)}/${enc(base)}`;
};
function splitName(name: string): [string, string] {
  const i = name.indexOf("/");
  return [name.slice(0, i), name.slice(i + 1)];
}
const packageHref = (name: string, query?: Record<string, string>) => {
  const [scope, base] = splitName(name);
  return href(`/marketplace/${enc(scope)}/${enc(base)}`, query);
};

// ---- shared frame -------------------------------------------------------------------------------------

const SECTIONS = [
  { path: "/marketplace", label: "Browse" },
  { path: "/marketplace/installed", label: "Installed" },
  { path: "/marketplace/trust", label: "Trusted publishers" },
];

function frame(root: HTMLElement, section: string | null, title = "Marketplace"): HTMLElement {
  const tabs = h(
    "nav",
    { class: "subnav", "aria-label": "Marketplace sections" },
    h("ul", null, ...SECTIONS.map((s) => h("li", null, h("a", { href: href(s.path), "aria-current": s.path === section ? "page" : undefined }, s.label)))),
  );
  const body = h("div");
  root.append(pageHeader(title), tabs, body);
  return body;
}

const badge = (text: string, kind: string) => h("span", { class: `badge ${kind}` }, text);

// ---- browse: search the registry ---------------------------------------------------------------------

registerPage("/marketplace", async (root, params) => {
  const body = frame(root, "/marketplace");
  const q = field("Search", h("input", { type: "search", name: "q", value: params.q ?? "", autocomplete: "off" }), { hint: "Name, title, summary or keyword" });
  const kind = field("Kind", h("select", { name: "kind" }, h("option", { value: "" }, "Blueprints and apps"), h("option", { value: "blueprint", selected: params.kind === "blueprint" }, "Blueprints"), h("option", { value: "app", selected: params.kind === "app" }, "Apps")));
  const form = h("form", { class: "panel filters", role: "search", "aria-label": "Search the registry" }, h("div", { class: "filter-grid" }, q.wrapper, kind.wrapper), h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    navigate("/marketplace", { q: q.control.value.trim(), kind: kind.control.value });
  });
  const results = h("section", { "aria-labelledby": "packages-heading" });
  body.append(form, results);
  loading(results);
  let page: { packages: SearchHit[]; next_cursor: string | null };
  try {
    page = await api("GET", "/v1/registry/packages", undefined, { query: { q: params.q, kind: params.kind, cursor: params.cursor, limit: 24 } });
  } catch (err) {
    replace(results, errorBanner(err, "The registry could not be searched"));
    return;
  }
  const cards = page.packages.map((p) =>
    h(
      "li",
      { class: "package-card" },
      h("h3", null, h("a", { href: packageHref(p.name) }, p.name)),
      h("p", { class: "package-title" }, p.title),
      h("p", { class: "muted" }, p.summary),
      h("p", { class: "package-meta" }, badge(p.kind, "on"), " ", p.latest ? `latest ${p.latest}` : "no release", " · by ", p.publisher),
      p.keywords.length ? h("ul", { class: "keywords", "aria-label": "Keywords" }, ...p.keywords.map((k) => h("li", null, k))) : null,
    ),
  );
  replace(
    results,
    h("h2", { id: "packages-heading" }, params.q ? `Packages matching “${params.q}”` : "Packages"),
    cards.length ? h("ul", { class: "card-grid package-list" }, ...cards) : h("p", { class: "muted" }, "No package matches."),
    h(
      "nav",
      { class: "pager", "aria-label": "Result pages" },
      params.cursor ? h("a", { class: "button secondary", href: href("/marketplace", { q: params.q, kind: params.kind }) }, "First page") : null,
      page.next_cursor ? h("a", { class: "button secondary", rel: "next", href: href("/marketplace", { q: params.q, kind: params.kind, cursor: page.next_cursor }) }, "Next page") : null,
    ),
  );
});

// ---- a package's page ----------------------------------------------------------------------------------

registerPage("/marketplace/:scope/:name", async (root, params) => {
  const name = `${params.scope}/${params.name}`;
  const body = frame(root, null, name);
  loading(body);
  let pkg: RegistryPackage;
  try {
    pkg = await api<RegistryPackage>("GET", `/v1/registry/packages/${packagePath(name)}`);
  } catch (err) {
    replace(body, errorBanner(err, `${name} could not be loaded`));
    return;
  }
  const shown = params.version && pkg.versions.some((v) => v.version === params.version) ? params.version : (pkg.dist_tags.latest ?? pkg.versions[0]?.version);
  const installedPath = pkg.kind === "app" ? `/v1/apps/installed/${packagePath(name)}` : `/v1/blueprints/installed/${packagePath(name)}`;
  const [version, publisher, trust, installed] = await Promise.allSettled([
    shown ? api<RegistryVersion>("GET", `/v1/registry/packages/${packagePath(name)}/${enc(shown)}`) : Promise.reject(new Error("The package has no version")),
    api<Publisher>("GET", `/v1/registry/publishers/${enc(pkg.publisher)}`),
    api<{ publishers: string[] }>("GET", "/v1/blueprints/trust"),
    api<Installation | AppInstallation>("GET", installedPath).catch((err) => {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }),
  ]);

  const trusted = trust.status === "fulfilled" ? pkg.publisher === PLATFORM || trust.value.publishers.includes(pkg.publisher) : null;
  const current = installed.status === "fulfilled" ? installed.value : null;

  // Publisher and signature
  const signatureStatus = h("div", { class: "signature", "aria-live": "polite" }, h("p", { class: "muted" }, "Checking the signature…"));
  const publisherFacts = h(
    "dl",
    { class: "facts" },
    h("dt", null, "Publisher"),
    h("dd", null, pkg.publisher, " ", trusted === null ? null : trusted ? badge("trusted", "on") : badge("not trusted", "warn")),
    publisher.status === "fulfilled" ? [h("dt", null, "Publisher keys"), h("dd", null, String(publisher.value.keys.length), " registered since ", time(publisher.value.created_at))] : null,
    h("dt", null, "Kind"),
    h("dd", null, pkg.kind),
    h("dt", null, "Latest"),
    h("dd", null, pkg.dist_tags.latest ?? "—"),
    h("dt", null, "Installed"),
    h("dd", null, current ? `version ${current.version}` : installed.status === "rejected" ? "unknown" : "no"),
    pkg.keywords.length ? [h("dt", null, "Keywords"), h("dd", null, pkg.keywords.join(", "))] : null,
  );

  const versions = table(
    ["Version", "Published", "Digest", "State"],
    pkg.versions.map((v) => [
      v.version === shown ? h("strong", null, v.version, " (shown)") : h("a", { href: packageHref(name, { version: v.version }) }, v.version),
      time(v.published_at),
      h("code", { class: "digest" }, v.digest),
      [
        v.version === pkg.dist_tags.latest ? badge("latest", "on") : null,
        v.yanked ? [badge("yanked", "error"), " ", v.yank_reason ?? ""] : null,
        v.deprecated ? [badge("deprecated", "warn"), " ", v.deprecation_message ?? ""] : null,
      ],
    ]),
    { caption: "Versions" },
  );

  const readmeSource = version.status === "fulfilled" ? version.value.readme : pkg.readme;
  const readme = h("section", { class: "readme", "aria-labelledby": "readme-heading" }, h("h2", { id: "readme-heading" }, "README"), readmeSource ? h("div", { class: "markdown" }, renderMarkdown(readmeSource)) : h("p", { class: "muted" }, "This package has no README."));

  const installArea = h("section", { "aria-labelledby": "install-heading" }, h("h2", { id: "install-heading" }, current ? "Installed" : "Install"));
  if (installed.status === "rejected") installArea.append(errorBanner(installed.reason, "Whether it is installed could not be read"));
  else if (current) {
    installArea.append(h("p", null, `Version ${current.version} is installed. `, h("a", { href: href("/marketplace/installed") }, "Upgrade or uninstall it under Installed"), "."));
  } else if (version.status === "fulfilled") {
    if (trusted === false) installArea.append(h("p", { class: "notice warn" }, `${pkg.publisher} is not a trusted publisher of this tenant: the install is refused until you `, h("a", { href: href("/marketplace/trust") }, "trust it"), "."));
    installArea.append(pkg.kind === "app" ? appInstallForm(pkg, version.value) : blueprintInstallForm(pkg, version.value));
  }

  replace(
    body,
    h("p", { class: "breadcrumb" }, h("a", { href: href("/marketplace") }, "← Marketplace")),
    h("p", { class: "package-title" }, pkg.title),
    h("p", null, pkg.summary),
    h("div", { class: "package-layout" }, h("div", { class: "package-main" }, installArea, readme), h("aside", { class: "package-side", "aria-label": "About this package" }, h("h2", null, "About"), publisherFacts, h("h3", null, "Signature"), signatureStatus, versions)),
  );
  if (version.status === "rejected") replace(signatureStatus, errorBanner(version.reason, "The version could not be loaded"));
  else void checkSignature(version.value, publisher.status === "fulfilled" ? publisher.value : null).then((result) => replace(signatureStatus, result));
});

// ---- signature check in the browser ------------------------------------------------------------------------

function b64urlBytes(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function bytesB64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
const b64url = (bytes: Uint8Array) => bytesB64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const sha256 = async (data: Uint8Array<ArrayBuffer> | ArrayBuffer) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));

/**
 * Checks what the host checks before an install (src/registry/verify.ts), here in the browser with
 * WebCrypto, so the page shows a status it computed itself rather than one the registry claims: the
 * key is one of the publisher's (its RFC 7638 thumbprint is the key id the registry and the signature
 * name), the Ed25519 signature verifies over { name, version, digest }, and the downloaded archive's
 * SHA-256 is that digest.
 */
async function checkSignature(v: RegistryVersion, publisher: Publisher | null): Promise<HTMLElement> {
  const row = (ok: boolean, text: string) => h("li", { class: ok ? "ok" : "" }, h("span", { class: "visually-hidden" }, ok ? "Passed: " : "Failed: "), text);
  if (!globalThis.crypto?.subtle) return h("p", { class: "muted" }, "This browser cannot check signatures here (WebCrypto needs HTTPS). The host verifies every install.");
  const checks: HTMLElement[] = [];
  let ok = true;
  const check = (pass: boolean, text: string) => {
    ok &&= pass;
    checks.push(row(pass, text));
  };
  try {
    const [hPart = "", pPart = "", sPart = ""] = v.signature.split(".");
    const header = JSON.parse(new TextDecoder().decode(b64urlBytes(hPart))) as { alg?: string; kid?: string; typ?: string };
    const payload = JSON.parse(new TextDecoder().decode(b64urlBytes(pPart))) as { name?: string; version?: string; digest?: string };
    const thumbprint = b64url(await sha256(new TextEncoder().encode(JSON.stringify({ crv: v.public_key.crv, kty: v.public_key.kty, x: v.public_key.x }))));
    check(thumbprint === v.key_id && header.kid === v.key_id, `Key ${v.key_id.slice(0, 12)}… is the key the signature names`);
    if (publisher) check(publisher.keys.some((k) => k.kid === v.key_id), `The key is one of ${publisher.name}'s registered keys`);
    check(v.publisher === splitName(v.name)[0], `Published by the name's owner ${v.publisher}`);
    let verified = false;
    try {
      const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: v.public_key.x }, { name: "Ed25519" }, false, ["verify"]);
      verified = header.alg === "EdDSA" && (await crypto.subtle.verify({ name: "Ed25519" }, key, b64urlBytes(sPart), new TextEncoder().encode(`${hPart}.${pPart}`)));
    } catch (err) {
      if ((err as Error)?.name === "NotSupportedError") return h("p", { class: "muted" }, "This browser cannot check Ed25519 signatures. The host verifies every install.");
      throw err;
    }
    check(verified, "The Ed25519 signature verifies");
    check(payload.name === v.name && payload.version === v.version && payload.digest === v.digest, `It signs ${v.name}@${v.version} with the digest the registry lists`);
    const archive = await (await apiResponse("GET", `/v1/registry/packages/${packagePath(v.name)}/${enc(v.version)}/bundle`)).arrayBuffer();
    check(`sha256-${bytesB64(await sha256(archive))}` === payload.digest, `The downloaded archive (${archive.byteLength} bytes) has the signed digest`);
  } catch (err) {
    if (err instanceof ApiError) return errorBanner(err, "The signature could not be checked");
    check(false, `The signature is not readable: ${(err as Error)?.message ?? String(err)}`);
  }
  return h(
    "div",
    null,
    h("p", { class: `signature-verdict ${ok ? "ok" : "bad"}` }, ok ? `Signature verified in this browser for version ${v.version}` : `Signature NOT valid for version ${v.version}`),
    h("ul", { class: "checks" }, ...checks),
  );
}

// ---- plans as diffs ----------------------------------------------------------------------------------------

const SIGN: Record<PlanEntry["action"], string> = { create: "+", update: "~", delete: "−", conflict: "!", "no-op": "=" };

function value(v: unknown): string {
  if (v === undefined) return "(none)";
  const text = JSON.stringify(v);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** One field's change; a whole resource created or removed (path "") is shown folded, as the JSON it is. */
function changeView(c: { path: string; from: unknown; to: unknown }): HTMLElement {
  if (c.path === "") {
    const whole = c.to ?? c.from;
    return h("li", null, h("details", null, h("summary", null, c.to == null ? "The removed configuration" : "The new configuration"), h("pre", { class: "json", tabindex: 0 }, JSON.stringify(whole, null, 2))));
  }
  return h("li", null, h("code", null, c.path), ": ", h("del", null, value(c.from)), " → ", h("ins", null, value(c.to)));
}

/** A plan as a diff: one line per resource (+ create, ~ update, − delete, ! conflict, = no change), field changes under updates, conflicts with base, current and incoming values. */
export function planView(result: PlanResult, caption: string): HTMLElement {
  const counts = new Map<string, number>();
  for (const e of result.plan) counts.set(e.action, (counts.get(e.action) ?? 0) + 1);
  const summary = [...counts.entries()].map(([a, n]) => `${n} ${a}`).join(", ") || "nothing to change";
  const items = result.plan.map((e) =>
    h(
      "li",
      { class: `plan-entry plan-${e.action}` },
      h("span", { class: "plan-sign", "aria-hidden": "true" }, SIGN[e.action]),
      h("span", { class: "plan-action" }, e.action),
      " ",
      h("span", { class: "plan-resource" }, e.resource.replace("_", " ")),
      " ",
      h("code", null, e.key),
      e.diff?.changes?.length
        ? h("ul", { class: "plan-changes" }, ...e.diff.changes.map(changeView))
        : null,
      e.diff?.conflicts?.length
        ? h(
            "ul",
            { class: "plan-conflicts" },
            ...e.diff.conflicts.map((c) => h("li", null, h("code", null, c.path), `: yours ${value(c.current)} is kept; the new version has ${value(c.incoming)} (was ${value(c.base)})`)),
          )
        : null,
    ),
  );
  return h(
    "div",
    { class: "plan" },
    h("h3", null, caption),
    h("p", null, result.from ? `From ${result.from.version} to ${result.version ?? "nothing"}: ` : result.version ? `Version ${result.version}: ` : "", summary, "."),
    result.digest ? h("p", { class: "hint" }, "Digest ", h("code", { class: "digest" }, result.digest), " (verified by the host)") : null,
    h("ul", { class: "plan-list", "aria-label": caption }, ...items),
    result.warnings.length ? h("ul", { class: "problems warning-list", "aria-label": "Warnings" }, ...result.warnings.map((w) => h("li", null, w))) : null,
  );
}

// ---- install forms ------------------------------------------------------------------------------------------

/** Versions an install may pick: "latest" and each version (yanked ones only when pinned, with the API's warning). */
function versionSelect(pkg: RegistryPackage, shown: string): HTMLSelectElement {
  return h(
    "select",
    { name: "version" },
    ...pkg.versions.map((v) => h("option", { value: v.version, selected: v.version === shown }, `${v.version}${v.version === pkg.dist_tags.latest ? " (latest)" : ""}${v.yanked ? " (yanked)" : ""}${v.deprecated ? " (deprecated)" : ""}`)),
  );
}

function blueprintInstallForm(pkg: RegistryPackage, v: RegistryVersion): HTMLElement {
  const versionField = field("Version", versionSelect(pkg, v.version));
  versionField.control.addEventListener("change", () => navigate(`/marketplace/${enc(splitName(pkg.name)[0])}/${enc(splitName(pkg.name)[1])}`, { version: versionField.control.value }));
  const envFields = (v.manifest.environment ?? []).map((e) => {
    const input = h("input", { type: e.type === "SecretString" ? "password" : "text", name: `env-${e.key}`, required: e.required ?? false, autocomplete: "off", spellcheck: "false" });
    return { key: e.key, f: field(`${e.label ?? e.key} (${e.key})${e.required ? "" : " — optional"}`, input, { hint: e.description }) };
  });
  const pre = typeof v.manifest.description === "object" ? v.manifest.description?.preinstall : undefined;
  const planArea = h("div", { "aria-live": "polite" });
  const planButton = h("button", { type: "submit", class: "primary" }, "Review the plan");
  const form = h(
    "form",
    { class: "panel", "aria-label": `Install ${pkg.name}` },
    pre ? h("p", null, pre) : null,
    versionField.wrapper,
    envFields.length ? h("fieldset", null, h("legend", null, "Environment"), ...envFields.map((e) => e.f.wrapper)) : null,
    h("div", { class: "actions" }, planButton),
    planArea,
  );
  const request = (dryRun: boolean) => ({
    name: pkg.name,
    version: versionField.control.value,
    environment: Object.fromEntries(envFields.filter((e) => e.f.control.value !== "").map((e) => [e.key, e.f.control.value])),
    dry_run: dryRun,
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let missing = false;
    for (const env of envFields) {
      const empty = env.f.control.required && env.f.control.value.trim() === "";
      env.f.setError(empty ? "Required" : null);
      if (empty && !missing) env.f.control.focus();
      missing ||= empty;
    }
    if (missing) return;
    planButton.disabled = true;
    replace(planArea, h("p", { class: "loading" }, "Planning…"));
    try {
      const plan = await api<PlanResult>("POST", "/v1/blueprints/install", request(true));
      const install = h("button", { type: "button", class: "primary" }, `Install ${pkg.name}@${plan.version}`);
      const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
      cancel.addEventListener("click", () => {
        replace(planArea);
        planButton.focus();
      });
      install.addEventListener("click", async () => {
        install.disabled = cancel.disabled = true;
        try {
          const done = await api<PlanResult>("POST", "/v1/blueprints/install", { ...request(false), version: plan.version });
          status(`Installed ${done.name}@${done.version}.`);
          replace(planArea, installedNotice(done));
          (planArea.querySelector("h3") as HTMLElement | null)?.focus();
        } catch (err) {
          planArea.append(errorBanner(err, "The install failed"));
          install.disabled = cancel.disabled = false;
        }
      });
      replace(planArea, planView(plan, "The plan (nothing is changed yet)"), h("div", { class: "actions" }, install, cancel));
      install.focus();
    } catch (err) {
      replace(planArea, errorBanner(err, "The plan could not be made"));
    } finally {
      planButton.disabled = false;
    }
  });
  return form;
}

function installedNotice(done: PlanResult): HTMLElement {
  const integrations = done.installation?.resources.integrations ?? [];
  return h(
    "div",
    { class: "notice ok", role: "status" },
    h("h3", { tabindex: -1 }, `Installed ${done.name}@${done.version}`),
    integrations.length
      ? h("p", null, "Its integrations: ", ...integrations.flatMap((i, n) => [n ? ", " : "", h("a", { href: href(`/integrations/${enc(i.id)}`) }, i.slug)]), ". ", h("a", { href: href("/monitoring", { integration: integrations[0]!.id }) }, "Monitor them"), ".")
      : null,
    planView(done, "What was applied"),
  );
}

function appInstallForm(pkg: RegistryPackage, v: RegistryVersion): HTMLElement {
  const versionField = field("Version", versionSelect(pkg, v.version));
  versionField.control.addEventListener("change", () => navigate(`/marketplace/${enc(splitName(pkg.name)[0])}/${enc(splitName(pkg.name)[1])}`, { version: versionField.control.value }));
  const config = field("Configuration (JSON)", h("textarea", { name: "config", class: "code", rows: 5, spellcheck: "false" }, "{}"), { hint: "Checked against the app's configuration schema; stored encrypted." });
  const out = h("div", { "aria-live": "polite" });
  const checkButton = h("button", { type: "submit", class: "primary" }, "Review the install");
  const form = h("form", { class: "panel", "aria-label": `Install ${pkg.name}` }, versionField.wrapper, config.wrapper, h("div", { class: "actions" }, checkButton), out);
  const parseConfig = (): Record<string, unknown> | null => {
    try {
      const parsed = JSON.parse(config.control.value || "{}") as unknown;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
        config.setError(null);
        return parsed as Record<string, unknown>;
      }
    } catch {}
    config.setError("A JSON object, e.g. {}");
    config.control.focus();
    return null;
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const cfg = parseConfig();
    if (!cfg) return;
    checkButton.disabled = true;
    try {
      // A dry run names the hosts the app asks for; the user grants some or all of them.
      const preview = await api<AppInstallation>("POST", "/v1/apps/install", { name: pkg.name, version: versionField.control.value, config: cfg, dry_run: true });
      const boxes = preview.requested_hosts.map((host) => ({ host, box: h("input", { type: "checkbox", id: `grant-${host}`, value: host }) }));
      const install = h("button", { type: "button", class: "primary" }, `Install ${pkg.name}@${preview.version}`);
      install.addEventListener("click", async () => {
        install.disabled = true;
        try {
          const done = await api<AppInstallation>("POST", "/v1/apps/install", { name: pkg.name, version: preview.version, config: cfg, grants: { hosts: boxes.filter((b) => b.box.checked).map((b) => b.host) } });
          status(`Installed ${done.name}@${done.version}.`);
          replace(out, h("div", { class: "notice ok", role: "status" }, h("h3", null, `Installed ${done.name}@${done.version}`), h("p", null, "Granted hosts: ", done.grants.hosts.join(", ") || "none", ". ", h("a", { href: href("/marketplace/installed") }, "Manage installed apps"), ".")));
        } catch (err) {
          out.append(errorBanner(err, "The install failed"));
          install.disabled = false;
        }
      });
      replace(
        out,
        h("h3", null, `Review: ${preview.name}@${preview.version}`),
        h("p", null, preview.description),
        table(["Action", "Description", "Hosts it needs"], preview.actions.map((a) => [h("code", null, a.name), a.description, a.hosts.join(", ") || "none"]), { caption: "Actions" }),
        boxes.length
          ? h("fieldset", null, h("legend", null, "Grant hosts"), ...boxes.map((b) => h("div", { class: "checkbox" }, b.box, h("label", { for: b.box.id }, b.host))))
          : h("p", null, "It asks for no network access."),
        preview.warnings?.length ? h("ul", { class: "problems warning-list" }, ...preview.warnings.map((w) => h("li", null, w))) : null,
        h("div", { class: "actions" }, install),
      );
    } catch (err) {
      replace(out, errorBanner(err, "The install could not be checked"));
    } finally {
      checkButton.disabled = false;
    }
  });
  return form;
}

// ---- installed blueprints and apps -------------------------------------------------------------------------

registerPage("/marketplace/installed", async (root) => {
  const body = frame(root, "/marketplace/installed", "Installed");
  loading(body);
  const [blueprints, apps] = await Promise.allSettled([
    api<{ installed: Installation[] }>("GET", "/v1/blueprints/installed", undefined, { query: { limit: 100 } }),
    api<{ installed: AppInstallation[] }>("GET", "/v1/apps/installed", undefined, { query: { limit: 100 } }),
  ]);
  const bpSection = h("section", { "aria-labelledby": "bp-heading" }, h("h2", { id: "bp-heading" }, "Blueprints"));
  if (blueprints.status === "rejected") bpSection.append(errorBanner(blueprints.reason, "The installed blueprints could not be loaded"));
  else if (blueprints.value.installed.length === 0) bpSection.append(h("p", { class: "muted" }, "No blueprint is installed. ", h("a", { href: href("/marketplace", { kind: "blueprint" }) }, "Browse blueprints"), "."));
  else for (const inst of blueprints.value.installed) bpSection.append(installedBlueprint(inst));

  const appSection = h("section", { "aria-labelledby": "apps-heading" }, h("h2", { id: "apps-heading" }, "Apps"));
  if (apps.status === "rejected") appSection.append(errorBanner(apps.reason, "The installed apps could not be loaded"));
  else if (apps.value.installed.length === 0) appSection.append(h("p", { class: "muted" }, "No app is installed."));
  else for (const app of apps.value.installed) appSection.append(installedApp(app));
  replace(body, bpSection, appSection);
});

function installedBlueprint(inst: Installation): HTMLElement {
  const base = `/v1/blueprints/installed/${packagePath(inst.name)}`;
  const out = h("div", { "aria-live": "polite" });
  const target = field("Upgrade to", h("input", { type: "text", name: "version", value: "latest", autocomplete: "off", spellcheck: "false" }), { hint: "latest, a version (1.2.0) or a range (^1.2)" });
  const accept = h("input", { type: "checkbox", name: "accept_breaking" });
  const acceptLabel = h("div", { class: "checkbox" }, accept, h("label", { for: (accept.id = `accept-${inst.name.replace(/[^a-z0-9]/gi, "-")}`) }, "Accept breaking changes (a new major version)"));
  const planUpgrade = h("button", { type: "submit", class: "primary" }, "Plan upgrade");
  const uninstall = h("button", { type: "button", class: "danger" }, "Uninstall");
  const form = h("form", { class: "upgrade-form", "aria-label": `Upgrade ${inst.name}` }, target.wrapper, acceptLabel, h("div", { class: "actions" }, planUpgrade, uninstall));

  const upgradeRequest = (dryRun: boolean) => ({ version: target.control.value.trim() || "latest", dry_run: dryRun, accept_breaking: accept.checked });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    planUpgrade.disabled = true;
    replace(out, h("p", { class: "loading" }, "Planning…"));
    try {
      const plan = await api<PlanResult>("POST", `${base}/upgrade`, upgradeRequest(true));
      const go = h("button", { type: "button", class: "primary" }, `Upgrade to ${plan.version}`);
      go.addEventListener("click", async () => {
        go.disabled = true;
        try {
          const done = await api<PlanResult>("POST", `${base}/upgrade`, { ...upgradeRequest(false), version: plan.version });
          status(`Upgraded ${inst.name} to ${done.version}.`);
          navigate("/marketplace/installed", { upgraded: `${inst.name}@${done.version}` });
        } catch (err) {
          out.append(errorBanner(err, "The upgrade failed"));
          go.disabled = false;
        }
      });
      const conflicts = plan.plan.filter((p) => p.action === "conflict").length;
      replace(
        out,
        planView(plan, "Upgrade plan (nothing is changed yet)"),
        conflicts ? h("p", { class: "notice warn" }, `${conflicts} conflict${conflicts === 1 ? "" : "s"}: your own values are kept where you and the new version both changed a field.`) : null,
        plan.from?.version === plan.version ? h("p", null, "Already at this version.") : h("div", { class: "actions" }, go),
      );
    } catch (err) {
      const notes = breakingNotes(err);
      replace(out, errorBanner(err, "The upgrade could not be planned"), notes);
      if (notes) accept.focus();
    } finally {
      planUpgrade.disabled = false;
    }
  });

  uninstall.addEventListener("click", async () => {
    uninstall.disabled = true;
    try {
      let force = false;
      let plan: PlanResult;
      try {
        plan = await api<PlanResult>("DELETE", base, undefined, { query: { dry_run: true } });
      } catch (err) {
        // 409: the tenant added use cases to the blueprint's integrations; they go too only with force.
        if (!(err instanceof ApiError && err.status === 409)) throw err;
        replace(out, errorBanner(err, "Uninstalling needs force"));
        if (!(await confirmDialog(`Also remove what you added to ${inst.name}'s integrations?`, { confirmLabel: "Plan with force", danger: true, body: h("p", null, err.message) }))) return;
        force = true;
        plan = await api<PlanResult>("DELETE", base, undefined, { query: { dry_run: true, force: true } });
      }
      const ok = await confirmDialog(`Uninstall ${inst.name}?`, { confirmLabel: "Uninstall", danger: true, body: h("div", null, planView(plan, "What will be removed"), h("p", null, "Entities stay.")) });
      if (!ok) return;
      await api("DELETE", base, undefined, { query: { force: force || undefined } });
      status(`Uninstalled ${inst.name}.`);
      navigate("/marketplace/installed", { removed: inst.name });
    } catch (err) {
      replace(out, errorBanner(err, "The uninstall failed"));
    } finally {
      uninstall.disabled = false;
    }
  });

  return h(
    "article",
    { class: "panel installed", "aria-label": inst.name },
    h("h3", null, h("a", { href: packageHref(inst.name) }, inst.name), ` ${inst.version}`),
    h(
      "dl",
      { class: "facts" },
      h("dt", null, "Installed"),
      h("dd", null, time(inst.installed_at), " by ", inst.installed_by),
      h("dt", null, "Updated"),
      h("dd", null, time(inst.updated_at)),
      h("dt", null, "Integrations"),
      h("dd", null, ...inst.resources.integrations.flatMap((i, n) => [n ? ", " : "", h("a", { href: href(`/integrations/${enc(i.id)}`) }, i.slug)])),
      h("dt", null, "Use cases"),
      h("dd", null, inst.resources.use_cases.map((u) => u.key).join(", ") || "—"),
    ),
    form,
    out,
  );
}

/** The breaking-change notes a 409 names when an upgrade crosses a major version without accept_breaking. */
function breakingNotes(err: unknown): HTMLElement | null {
  const notes = err instanceof ApiError ? (err.details as { breaking_changes?: Record<string, string> } | undefined)?.breaking_changes : undefined;
  if (!notes || typeof notes !== "object") return null;
  return h(
    "div",
    { class: "notice warn" },
    h("h4", null, "Breaking changes"),
    h("dl", { class: "facts" }, ...Object.entries(notes).flatMap(([major, note]) => [h("dt", null, `Version ${major}`), h("dd", null, String(note))])),
    h("p", null, "Read them, tick “Accept breaking changes” and plan again."),
  );
}

function installedApp(app: AppInstallation): HTMLElement {
  const base = `/v1/apps/installed/${packagePath(app.name)}`;
  const out = h("div", { "aria-live": "polite" });
  const id = app.name.replace(/[^a-z0-9]/gi, "-");
  const boxes = app.requested_hosts.map((host, i) => ({ host, box: h("input", { type: "checkbox", id: `${id}-host-${i}`, value: host, checked: app.grants.hosts.includes(host) }) }));
  const save = h("button", { type: "submit", class: "primary" }, "Save grants");
  const remove = h("button", { type: "button", class: "danger" }, "Remove");
  const grants = h(
    "form",
    { "aria-label": `Grants of ${app.name}` },
    boxes.length
      ? h("fieldset", null, h("legend", null, "Hosts it may reach"), ...boxes.map((b) => h("div", { class: "checkbox" }, b.box, h("label", { for: b.box.id }, b.host))))
      : h("p", { class: "muted" }, "It asks for no network access."),
    h("div", { class: "actions" }, boxes.length ? save : null, remove),
  );
  grants.addEventListener("submit", async (e) => {
    e.preventDefault();
    save.disabled = true;
    try {
      const done = await api<AppInstallation>("PATCH", base, { grants: { hosts: boxes.filter((b) => b.box.checked).map((b) => b.host) } });
      status(`Saved: ${app.name} may reach ${done.grants.hosts.join(", ") || "no host"}.`);
      replace(out);
    } catch (err) {
      replace(out, errorBanner(err, "The grants could not be saved"));
    } finally {
      save.disabled = false;
    }
  });
  remove.addEventListener("click", async () => {
    if (!(await confirmDialog(`Remove ${app.name}?`, { confirmLabel: "Remove", danger: true, body: h("p", null, "Its state is forgotten. Use cases that run it then fail.") }))) return;
    remove.disabled = true;
    try {
      try {
        await api("DELETE", base);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 409)) throw err;
        if (!(await confirmDialog(`${app.name} is in use. Remove it anyway?`, { confirmLabel: "Remove anyway", danger: true, body: h("p", null, err.message) }))) return;
        await api("DELETE", base, undefined, { query: { force: true } });
      }
      status(`Removed ${app.name}.`);
      navigate("/marketplace/installed", { removed: app.name });
    } catch (err) {
      replace(out, errorBanner(err, "The app could not be removed"));
    } finally {
      remove.disabled = false;
    }
  });
  return h(
    "article",
    { class: "panel installed", "aria-label": app.name },
    h("h3", null, h("a", { href: packageHref(app.name) }, app.name), ` ${app.version}`),
    h("p", null, app.description),
    h(
      "dl",
      { class: "facts" },
      h("dt", null, "Installed"),
      h("dd", null, time(app.installed_at), app.installed_via ? ` with ${app.installed_via}` : ""),
      h("dt", null, "Actions"),
      h("dd", null, app.actions.map((a) => a.name).join(", ") || "—"),
      h("dt", null, "Granted hosts"),
      h("dd", null, app.grants.hosts.join(", ") || "none"),
    ),
    grants,
    out,
  );
}

// ---- trusted publishers ------------------------------------------------------------------------------------------

registerPage("/marketplace/trust", async (root) => {
  const body = frame(root, "/marketplace/trust", "Trusted publishers");
  loading(body);
  let trust: { publishers: string[] };
  try {
    trust = await api("GET", "/v1/blueprints/trust");
  } catch (err) {
    replace(body, errorBanner(err, "The trusted publishers could not be loaded"));
    return;
  }
  const out = h("div", { "aria-live": "polite" });
  const save = async (publishers: string[], message: string) => {
    try {
      // @erp-edge is always trusted; the API adds it back, so it is never sent.
      await api("PUT", "/v1/blueprints/trust", { publishers: publishers.filter((p) => p !== PLATFORM) });
      status(message);
      navigate("/marketplace/trust", { saved: `${Date.now()}` });
    } catch (err) {
      replace(out, errorBanner(err, "The trusted publishers could not be saved"));
    }
  };
  const rows = trust.publishers.map((p) => [
    h("code", null, p),
    p === PLATFORM
      ? h("span", { class: "muted" }, "Always trusted (the platform)")
      : h("button", { type: "button", class: "danger small", "aria-label": `Remove ${p}`, onclick: () => void save(trust.publishers.filter((x) => x !== p), `${p} is no longer trusted.`) }, "Remove"),
  ]);
  const add = field("Publisher", h("input", { type: "text", name: "publisher", placeholder: "@acme", autocomplete: "off", spellcheck: "false"}), { hint: "A publisher scope such as @acme" });
  const form = h("form", { class: "panel", "aria-label": "Trust a publisher" }, add.wrapper, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Trust")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = add.control.value.trim().toLowerCase();
    if (!/^@[a-z0-9][a-z0-9-]{0,38}$/.test(name)) {
      add.setError("A scope such as @acme: @, then lower-case letters, digits and dashes");
      add.control.focus();
      return;
    }
    add.setError(null);
    void save([...new Set([...trust.publishers, name])], `${name} is trusted.`);
  });
  replace(
    body,
    h("p", null, "Blueprints and apps install only from publishers this tenant trusts. Signatures are verified on every install."),
    table(["Publisher", ""], rows, { caption: "Trusted publishers" }),
    h("h2", null, "Trust a publisher"),
    form,
    out,
  );
});

// ---- Markdown: a safe subset, built as DOM --------------------------------------------------------------------------

const SAFE_LINK = /^(https?:|mailto:)/i;

/** Inline Markdown (code spans, strong, emphasis, links, images as alt text) as DOM nodes; everything else is text. */
function inline(text: string): Node[] {
  const out: Node[] = [];
  const pattern = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*(?!\s)([\s\S]+?)\*|(?<![\w])_(?!\s)([\s\S]+?)_(?![\w])|!\[([^\]]*)\]\(([^)]*)\)|\[([^\]]+)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)|<((?:https?:\/\/|mailto:)[^>\s]+)>/g;
  let last = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[1]) out.push(h("code", null, m[2]!.replace(/^ (.*) $/, "$1")));
    else if (m[3] !== undefined || m[4] !== undefined) out.push(h("strong", null, inline(m[3] ?? m[4]!)));
    else if (m[5] !== undefined || m[6] !== undefined) out.push(h("em", null, inline(m[5] ?? m[6]!)));
    else if (m[7] !== undefined) out.push(h("span", { class: "md-image" }, `[image: ${m[7] || "no description"}]`));
    else if (m[9] !== undefined) {
      const url = m[10] ?? "";
      // Only absolute web and mail links; a relative link points into the package, which the Hub does not serve.
      out.push(SAFE_LINK.test(url) ? h("a", { href: url, rel: "noopener noreferrer nofollow", referrerpolicy: "no-referrer" }, inline(m[9])) : h("span", { class: "md-link", title: url }, inline(m[9])));
    } else if (m[11]) out.push(h("a", { href: m[11], rel: "noopener noreferrer nofollow" }, m[11]));
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/** The cells of a table row, split on pipes outside code spans (`\|` is a literal pipe). */
function cells(line: string): string[] {
  const row = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  const out: string[] = [];
  let cell = "";
  let inCode = false;
  for (let i = 0; i < row.length; i++) {
    const ch = row[i]!;
    if (ch === "\\" && row[i + 1] === "|") {
      cell += "|";
      i++;
    } else if (ch === "`") {
      inCode = !inCode;
      cell += ch;
    } else if (ch === "|" && !inCode) {
      out.push(cell.trim());
      cell = "";
    } else cell += ch;
  }
  out.push(cell.trim());
  return out;
}

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const startsBlock = (line: string, next?: string) =>
  FENCE.test(line) || HEADING.test(line) || RULE.test(line) || ITEM.test(line) || QUOTE.test(line) || (line.includes("|") && next !== undefined && TABLE_RULE.test(next));

/**
 * Renders Markdown (CommonMark's common subset: headings, paragraphs, fenced code, lists, tables,
 * block quotes, rules, inline code, emphasis, links) as DOM. No HTML in the source is ever
 * interpreted: it shows as text. Headings move one level down (the page has its own h1 and the
 * README section its h2).
 */
export function renderMarkdown(source: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    let m: RegExpExecArray | null;
    if (/^\s*$/.test(line)) {
      i++;
    } else if ((m = FENCE.exec(line))) {
      const fence = m[1]!;
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i]!.trim().startsWith(fence)) code.push(lines[i++]!);
      i++;
      out.append(h("pre", { class: "code-block", tabindex: 0 }, h("code", m[2] ? { "data-lang": m[2] } : null, code.join("\n"))));
    } else if ((m = HEADING.exec(line))) {
      const level = Math.min(6, m[1]!.length + 2) as 3 | 4 | 5 | 6;
      out.append(h(`h${level}`, null, inline(m[2]!)));
      i++;
    } else if (RULE.test(line)) {
      out.append(h("hr"));
      i++;
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]!)) {
      const head = cells(line);
      i += 2;
      const rows: string[][] = [];
      while (i < lines.length && lines[i]!.includes("|") && !/^\s*$/.test(lines[i]!)) rows.push(cells(lines[i++]!));
      const t = h(
        "table",
        null,
        head.some((c) => c) ? h("thead", null, h("tr", null, ...head.map((c) => h("th", { scope: "col" }, inline(c))))) : null,
        h("tbody", null, ...rows.map((r) => h("tr", null, ...head.map((_, j) => h("td", null, inline(r[j] ?? "")))))),
      );
      out.append(h("div", { class: "table-wrap md-table", tabindex: 0, role: "region", "aria-label": "Table from the README" }, t));
    } else if (QUOTE.test(line)) {
      const quoted: string[] = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]!))) {
        quoted.push(m[1]!);
        i++;
      }
      out.append(h("blockquote", null, renderMarkdown(quoted.join("\n"))));
    } else if ((m = ITEM.exec(line))) {
      const ordered = /\d/.test(m[2]!);
      const indent = m[1]!.length;
      const items: string[][] = [];
      while (i < lines.length) {
        const l = lines[i]!;
        const im = ITEM.exec(l);
        if (im && im[1]!.length <= indent + 1 && /\d/.test(im[2]!) === ordered) {
          items.push([im[3]!]);
          i++;
        } else if (im && im[1]!.length <= indent + 1) break;
        else if (/^\s*$/.test(l)) {
          // A blank line ends the list unless the next line continues an item (indented) or starts one.
          const next = lines[i + 1];
          if (next !== undefined && (/^\s{2,}\S/.test(next) || (ITEM.exec(next)?.[1]!.length ?? 99) <= indent + 1)) {
            items[items.length - 1]!.push("");
            i++;
          } else break;
        } else if (/^\s+\S/.test(l) || !startsBlock(l, lines[i + 1])) {
          items[items.length - 1]!.push(l.replace(/^\s{1,4}/, ""));
          i++;
        } else break;
      }
      const list = h(ordered ? "ol" : "ul", null);
      for (const item of items) {
        const blocky = item.length > 1 && item.slice(1).some((l) => startsBlock(l) || l === "");
        list.append(h("li", null, blocky ? renderMarkdown(item.join("\n")) : inline(item.join(" "))));
      }
      out.append(list);
    } else {
      const para: string[] = [];
      while (i < lines.length && !/^\s*$/.test(lines[i]!) && (para.length === 0 || !startsBlock(lines[i]!, lines[i + 1]))) para.push(lines[i++]!.trim());
      out.append(h("p", null, inline(para.join(" "))));
    }
  }
  return out;
}
