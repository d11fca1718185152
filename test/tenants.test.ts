import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signToken } from "../src/platform/tokens";
import { ADMIN, api, createTenant, createToken, expectError, type ApiResponse } from "./helpers";

describe("tenants (admin)", () => {
  it("requires the admin token", async () => {
    expectError(await api("GET", "/v1/tenants"), 401, "UNAUTHORIZED");
    expectError(await api("GET", "/v1/tenants", { token: "nope" }), 401, "UNAUTHORIZED");
    expectError(await api("GET", "/v1/tenants", { headers: { authorization: `Basic ${ADMIN}` } }), 401, "UNAUTHORIZED");
    // A tenant token is not an admin token.
    const tenant = await createTenant();
    const { token } = await createToken(tenant.id);
    expectError(await api("GET", "/v1/tenants", { token }), 401, "UNAUTHORIZED");
  });

  it("creates, reads, lists with cursors and deletes tenants", async () => {
    const created = await api("POST", "/v1/tenants", { token: ADMIN, json: { name: "Stadtwerke Süd" } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Stadtwerke Süd", slug: "stadtwerke-sud" });
    expect(created.body.id).toMatch(/^[0-9A-Z]{26}$/);
    expect((await api("GET", `/v1/tenants/${created.body.id}`, { token: ADMIN })).body).toEqual(created.body);

    // Same name again: the derived slug gets a suffix; an explicit taken slug is a conflict.
    const again = await api("POST", "/v1/tenants", { token: ADMIN, json: { name: "Stadtwerke Süd" } });
    expect(again.body.slug).toMatch(/^stadtwerke-sud-[0-9a-z]{6}$/);
    expectError(await api("POST", "/v1/tenants", { token: ADMIN, json: { name: "x", slug: "stadtwerke-sud" } }), 409, "CONFLICT");

    for (let i = 0; i < 3; i++) await createTenant(`page ${i}`);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ApiResponse = await api("GET", `/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: ADMIN });
      expect(page.status).toBe(200);
      expect(page.body.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.tenants.map((t: { id: string }) => t.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toContain(created.body.id);

    expect((await api("DELETE", `/v1/tenants/${created.body.id}`, { token: ADMIN })).status).toBe(204);
    expectError(await api("GET", `/v1/tenants/${created.body.id}`, { token: ADMIN }), 404, "NOT_FOUND");
    expectError(await api("DELETE", `/v1/tenants/${created.body.id}`, { token: ADMIN }), 404, "NOT_FOUND");
  });

  it("refuses malformed bodies and queries with 4xx envelopes", async () => {
    const details = expectError(await api("POST", "/v1/tenants", { token: ADMIN, json: { name: "", slug: "Bad Slug" } }), 400, "VALIDATION_FAILED");
    expect(details.map((d: { path: string }) => d.path).sort()).toEqual(["name", "slug"]);
    expectError(await api("POST", "/v1/tenants", { token: ADMIN, json: { name: "ok", extra: 1 } }), 400, "VALIDATION_FAILED");
    expectError(await api("POST", "/v1/tenants", { token: ADMIN, json: [] }), 400, "VALIDATION_FAILED");
    expectError(await api("GET", "/v1/tenants?limit=1000", { token: ADMIN }), 400, "VALIDATION_FAILED");
    expectError(await api("GET", "/v1/tenants?cursor=garbage", { token: ADMIN }), 400, "INVALID_CURSOR");
    const tenant = await createTenant();
    for (const json of [{}, { name: "t", scopes: [] }, { name: "t", scopes: ["root"] }, { name: "t", scopes: ["events:write", "events:write"] }, { name: "t", scopes: ["events:write"], expires_in_seconds: 5 }]) {
      expectError(await api("POST", `/v1/tenants/${tenant.id}/tokens`, { token: ADMIN, json }), 400, "VALIDATION_FAILED");
    }
    expectError(await api("POST", `/v1/tenants/nope/tokens`, { token: ADMIN, json: { name: "t", scopes: ["events:write"] } }), 404, "NOT_FOUND");
  });
});

describe("tenant tokens", () => {
  it("are shown once, listed without secrets, and revoked with immediate effect", async () => {
    const tenant = await createTenant();
    const created = await createToken(tenant.id, ["integrations:read"]);
    expect(created.token.split(".")).toHaveLength(3);
    expect((await api("GET", "/v2/integrations", { token: created.token })).status).toBe(200);

    const list = await api("GET", `/v1/tenants/${tenant.id}/tokens`, { token: ADMIN });
    expect(list.body.tokens).toHaveLength(1);
    expect(list.body.tokens[0]).toMatchObject({ id: created.id, scopes: ["integrations:read"], revoked_at: null });
    expect(JSON.stringify(list.body)).not.toContain(created.token);

    expect((await api("DELETE", `/v1/tenants/${tenant.id}/tokens/${created.id}`, { token: ADMIN })).status).toBe(204);
    expectError(await api("GET", "/v2/integrations", { token: created.token }), 401, "UNAUTHORIZED");
    const after = await api("GET", `/v1/tenants/${tenant.id}/tokens`, { token: ADMIN });
    expect(after.body.tokens[0].revoked_at).not.toBeNull();

    // Another tenant's token id is not revocable through this tenant.
    const other = await createTenant();
    const otherToken = await createToken(other.id);
    expectError(await api("DELETE", `/v1/tenants/${tenant.id}/tokens/${otherToken.id}`, { token: ADMIN }), 404, "NOT_FOUND");
    expect((await api("GET", "/v2/integrations", { token: otherToken.token })).status).toBe(200);
  });

  it("refuses missing, malformed, forged and expired tokens with 401", async () => {
    const tenant = await createTenant();
    const { token, id } = await createToken(tenant.id);
    expectError(await api("GET", "/v2/integrations"), 401, "UNAUTHORIZED");
    expectError(await api("GET", "/v2/integrations", { token: "not-a-jwt" }), 401, "UNAUTHORIZED");
    expectError(await api("GET", "/v2/integrations", { token: token.slice(0, -4) + "AAAA" }), 401, "UNAUTHORIZED");

    // Right claims, wrong key: forged.
    const forged = await signToken("some-other-key", { tokenId: id, tenantId: tenant.id, scopes: ["integrations:read"] });
    expectError(await api("GET", "/v2/integrations", { token: forged }), 401, "UNAUTHORIZED");

    // Right key, but the expiry has passed.
    const expired = await signToken(env.SECRETS_KEY, { tokenId: id, tenantId: tenant.id, scopes: ["integrations:read"] }, new Date(Date.now() - 1000));
    expectError(await api("GET", "/v2/integrations", { token: expired }), 401, "UNAUTHORIZED");

    // Right key, but claiming a tenant the token row does not belong to.
    const other = await createTenant();
    const crossed = await signToken(env.SECRETS_KEY, { tokenId: id, tenantId: other.id, scopes: ["integrations:read"] });
    expectError(await api("GET", "/v2/integrations", { token: crossed }), 401, "UNAUTHORIZED");

    // Deleting the tenant kills its tokens.
    await api("DELETE", `/v1/tenants/${tenant.id}`, { token: ADMIN });
    expectError(await api("GET", "/v2/integrations", { token }), 401, "UNAUTHORIZED");
  });

  it("carry an expiry when asked", async () => {
    const tenant = await createTenant();
    const res = await api("POST", `/v1/tenants/${tenant.id}/tokens`, { token: ADMIN, json: { name: "short", scopes: ["integrations:read"], expires_in_seconds: 3600 } });
    expect(res.status).toBe(201);
    const ttl = Date.parse(res.body.expires_at) - Date.parse(res.body.created_at);
    expect(ttl).toBe(3600_000);
    expect((await api("GET", "/v2/integrations", { token: res.body.token })).status).toBe(200);
  });
});
