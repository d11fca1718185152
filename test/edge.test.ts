import { describe, expect, it } from "vitest";
import { app } from "../src/index";
import { ADMIN, api, expectError, tenantWithToken } from "./helpers";

describe("edge behaviour every route inherits", () => {
  it("answers unknown routes with a 404 envelope and an x-request-id", async () => {
    const res = await api("GET", "/v9/nothing-here");
    expectError(res, 404, "NOT_FOUND");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9A-Z]{26}$/);
    const echoed = await api("GET", "/", { headers: { "x-request-id": "cpi-run-42" } });
    expect(echoed.headers.get("x-request-id")).toBe("cpi-run-42");
    expectError(await api("PATCH", "/v2/integrations"), 404, "NOT_FOUND");
    // The benchmark baseline route exists only under npm run bench.
    expectError(await api("POST", "/__bench/bare", { json: {} }), 404, "NOT_FOUND");
  });

  it("refuses bodies over 1 MiB with 413 and stores nothing", async () => {
    const { token } = await tenantWithToken();
    const big = JSON.stringify({ name: "big", description: "x".repeat(1024 * 1024) });
    const res = await api("POST", "/v2/integrations", { token, body: big, headers: { "content-type": "application/json" } });
    expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect((await api("GET", "/v2/integrations", { token })).body.integrations).toEqual([]);
  });

  it("refuses non-JSON bodies with 415 and malformed JSON with 400", async () => {
    const { token } = await tenantWithToken();
    expectError(await api("POST", "/v2/integrations", { token, body: "name=x", headers: { "content-type": "application/x-www-form-urlencoded" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectError(await api("POST", "/v2/integrations", { token, body: "<xml/>", headers: { "content-type": "text/xml" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectError(await api("POST", "/v2/integrations", { token, body: '{"name": "x"' }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectError(await api("POST", "/v2/integrations", { token, body: '{"name": "x"', headers: { "content-type": "application/json" } }), 400, "INVALID_JSON");
    expectError(await api("POST", "/v1/tenants", { token: ADMIN, body: "", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON");
    // No body at all: the required fields are reported missing.
    expectError(await api("POST", "/v1/tenants", { token: ADMIN }), 400, "VALIDATION_FAILED");
    expect((await api("GET", "/v2/integrations", { token })).body.integrations).toEqual([]);
  });

  it("serves an OpenAPI 3.1 document listing every route, and the interactive reference", async () => {
    const doc = await api("GET", "/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    const undocumented = app.routes
      .filter((r) => r.method !== "ALL" && !["/", "/openapi.json", "/docs", "/__bench/bare", "/hub", "/hub/", "/hub/assets/*"].includes(r.path))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`)
      .filter((route) => {
        const [method, path] = route.split(" ") as [string, string];
        return !doc.body.paths[path]?.[method];
      });
    expect(undocumented).toEqual([]);
    // Every tenant route names the scopes it accepts, taken from its requireScope middleware.
    const unscoped = Object.entries(doc.body.paths as Record<string, Record<string, { security?: { tenantToken?: string[] }[] }>>)
      .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ route: `${method} ${path}`, security: op.security })))
      .filter(({ security }) => security?.some((s) => s.tenantToken && s.tenantToken.length === 0));
    expect(unscoped.map((u) => u.route)).toEqual([]);
    expect(doc.body.paths["/v2/integrations"].get.security).toEqual([{ tenantToken: ["integrations:read"] }]);
    expect(Object.keys(doc.body.paths).length).toBeGreaterThanOrEqual(8);
    expect(doc.body.components.schemas.ErrorEnvelope).toBeDefined();
    const docs = await api("GET", "/docs");
    expect(docs.status).toBe(200);
    expect(docs.body).toContain("/openapi.json");
  });
});
