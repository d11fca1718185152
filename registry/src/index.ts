// The erp-edge registry Worker: publishers, keys and signed, immutable packages (blueprints and
// apps). It has no public route; the erp-edge host authenticates callers and forwards /v1/registry/*
// over its REGISTRY service binding, naming the caller in x-erp-edge-caller. See docs/registry.md.
import { Hono } from "hono";
import { onError, RegistryError } from "./errors";
import { routes } from "./routes";
import type { RegistryVars } from "./schema";

const app = new Hono<RegistryVars>();
app.route("/", routes);
app.notFound((c) => onError(new RegistryError("NOT_FOUND", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`), c));
app.onError(onError);

export default app;
