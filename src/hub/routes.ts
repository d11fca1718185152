// The Integration Hub: a browser UI at /hub calling the public API with the tenant token the user pastes.
// The Worker serves one HTML shell and the client bundle (built by scripts/build-hub.mjs into the
// Workers static assets folder); every response under /hub carries the security headers below.
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../platform/app";
import { AppError } from "../platform/errors";

/**
 * Only the Worker's own scripts, styles and API; no inline code, no framing, no plug-ins. Images may
 * also be data: URLs (icons in the stylesheet). `connect-src 'self'` keeps the token from being sent
 * anywhere but this Worker.
 */
export const HUB_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": HUB_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // The hash route never leaves the page, and no other page learns where the user came from.
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
};

/** The one HTML page: the shell is built by the client bundle; without JavaScript the noscript text shows. */
const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>erp-edge Hub</title>
<link rel="icon" href="/hub/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/hub/assets/main.css">
<script type="module" src="/hub/assets/main.js"></script>
</head>
<body>
<noscript><p>The erp-edge Hub needs JavaScript. The API itself is documented at <a href="/docs">/docs</a>.</p></noscript>
</body>
</html>
`;

/** Sets the security headers on every /hub response, errors included. */
const secure = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
});

export const hubRoutes = new Hono<AppEnv>();

hubRoutes.use("/hub", secure);
hubRoutes.use("/hub/*", secure);

hubRoutes.get("/hub", (c) => c.html(SHELL, 200, { "cache-control": "no-cache" }));
hubRoutes.get("/hub/", (c) => c.redirect("/hub", 301));

/** The client bundle and its static files, from the assets folder; anything else under /hub is a 404 envelope. */
hubRoutes.get("/hub/assets/*", async (c) => {
  if (!c.env.ASSETS) throw new AppError("NOT_FOUND", "The Hub's assets are not built; run `npm run build:hub`");
  const asset = await c.env.ASSETS.fetch(new Request(new URL(c.req.path, c.req.url), { method: "GET" }));
  if (asset.status === 404) throw new AppError("NOT_FOUND", `No Hub asset at ${c.req.path}`);
  // A fresh Response: the assets binding's headers are immutable.
  const res = new Response(asset.body, asset);
  // Revalidated on every load (cheap: the assets answer 304 by ETag), so a rebuilt bundle is never stale.
  res.headers.set("cache-control", "no-cache");
  return res;
});

