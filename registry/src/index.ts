// The erp-edge registry Worker (scaffold).
import { Hono } from "hono";

const app = new Hono<{ Bindings: Env }>();
app.get("/v1/registry/health", (c) => c.json({ ok: true }));
export default app;
