// Atomic writes and lost updates (issue 10, finding 3): every change and its record are one
// transaction, and concurrent writers of the same thing cannot both win. Faults are real: SQLite
// triggers that refuse one write (in D1 or in a Durable Object's storage), and a second writer that
// commits at the exact moment between another's read and its write.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { entityStore } from "../../src/entities/service";
import type { EntityStore, EntityUpdateInput } from "../../src/entities/store-do";
import type { EventLog } from "../../src/inbound/log-do";
import { PutIntegration, UseCaseInput } from "../../src/integrations/schema";
import { replaceIntegration, updateUseCase } from "../../src/integrations/service";
import type { OutboundEndpoint } from "../../src/outbound/endpoint-do";
import { configChanged } from "../../src/platform/config-cache";
import { AppError } from "../../src/platform/errors";
import { newId } from "../../src/platform/ids";
import { createTenant } from "../../src/tenants/service";
import { ADMIN, api, expectError, tenantWithToken } from "../helpers";
import { contactMapping, eventRow, logOf, logQuery, post, setup, waitFor } from "../inbound-helpers";

/** Statements to undo after each test (dropping the triggers it created, in D1 or a log shard), so no fault outlives its test. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A D1 trigger that refuses matching writes with `message` until the test ends. */
async function d1Fault(name: string, definition: string) {
  await env.DB.prepare(`CREATE TRIGGER ${name} ${definition}`).run();
  cleanups.push(() => env.DB.prepare(`DROP TRIGGER IF EXISTS ${name}`).run());
  return () => env.DB.prepare(`DROP TRIGGER IF EXISTS ${name}`).run();
}

/** A trigger in one event log shard's own SQLite that refuses matching writes until the test ends. */
async function shardFault(log: DurableObjectStub<EventLog>, name: string, definition: string) {
  const drop = () => runInDurableObject(log, (_instance: EventLog, state) => void state.storage.sql.exec(`DROP TRIGGER IF EXISTS ${name}`));
  await runInDurableObject(log, (_instance: EventLog, state) => void state.storage.sql.exec(`CREATE TRIGGER ${name} ${definition}`));
  cleanups.push(drop);
  return drop;
}

/**
 * `db` as one request sees it while another request (`rival`) commits right before this one's first
 * statement whose SQL matches `pattern`: the interleaving a race produces, made deterministic.
 */
function racing(db: D1Database, pattern: RegExp, rival: () => Promise<unknown>): D1Database {
  let fired = false;
  const fire = async () => {
    if (fired) return;
    fired = true;
    await rival();
  };
  const sqlOf = new WeakMap<object, string>();
  const targetOf = new WeakMap<object, D1PreparedStatement>();
  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args), sql);
        if (typeof prop === "string" && ["run", "first", "all", "raw"].includes(prop) && pattern.test(sql)) {
          return async (...args: unknown[]) => {
            await fire();
            return (target[prop as "run"] as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    sqlOf.set(proxy, sql);
    targetOf.set(proxy, stmt);
    return proxy;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          if (statements.some((s) => pattern.test(sqlOf.get(s) ?? ""))) await fire();
          return target.batch(statements.map((s) => targetOf.get(s) ?? s));
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The AppError a promise rejects with (anything else fails the test). */
async function appErrorOf(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(() => null, (e: unknown) => e);
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${err instanceof Error ? err.stack : String(err)}`);
  return err;
}

const auditCount = async (action: string, target: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = ? AND target = ?").bind(action, target).first<{ n: number }>())!.n;

// ---- tenants and tokens -----------------------------------------------------------------------

describe("tokens and tenants", () => {
  it("revokes a token and records it in one transaction: a failed audit write leaves the token working", async () => {
    const { tenant, token, tokenId } = await tenantWithToken();
    const heal = await d1Fault("fail_revoke_audit", `BEFORE INSERT ON audit_log WHEN NEW.action = 'token.revoked' AND NEW.target = '${tokenId}' BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END`);

    expectError(await api("DELETE", `/v1/tenants/${tenant.id}/tokens/${tokenId}`, { token: ADMIN }), 500, "INTERNAL");
    // Nothing half-done: the token was not revoked without its audit entry.
    expect((await api("GET", "/v2/integrations", { token })).status).toBe(200);
    expect(await auditCount("token.revoked", tokenId)).toBe(0);

    await heal();
    expect((await api("DELETE", `/v1/tenants/${tenant.id}/tokens/${tokenId}`, { token: ADMIN })).status).toBe(204);
    expectError(await api("GET", "/v2/integrations", { token }), 401, "UNAUTHORIZED");
    expect(await auditCount("token.revoked", tokenId)).toBe(1);
    // Unknown tokens are still 404 and leave no audit entry.
    expectError(await api("DELETE", `/v1/tenants/${tenant.id}/tokens/01JD0000000000000000000000`, { token: ADMIN }), 404, "NOT_FOUND");
    expect(await auditCount("token.revoked", "01JD0000000000000000000000")).toBe(0);
  });

  it("answers a slug taken by a concurrent request with 409, and gives a derived slug its suffix", async () => {
    const rivalInsert = (slug: string) => () =>
      env.DB.prepare("INSERT INTO tenants (id, slug, name, created_at) VALUES (?, ?, 'Rival', ?)").bind(`rival-${slug}`, slug, new Date().toISOString()).run();

    const explicit = await appErrorOf(createTenant(racing(env.DB, /INSERT INTO tenants/, rivalInsert("race-explicit")), { name: "Race", slug: "race-explicit" }));
    expect(explicit).toMatchObject({ code: "CONFLICT", status: 409 });

    const derived = await createTenant(racing(env.DB, /INSERT INTO tenants/, rivalInsert("race-derived")), { name: "Race Derived" });
    expect(derived.slug).toMatch(/^race-derived-[0-9a-z]{6}$/);
    expect((await api("GET", `/v1/tenants/${derived.id}`, { token: ADMIN })).body.slug).toBe(derived.slug);
  });
});

// ---- optimistic concurrency for integrations and use cases ------------------------------------

const useCase = (slug: string, name = `Sync ${slug}`) => ({ name, slug, type: "inbound", configuration: contactMapping });

async function integrationWithToken() {
  const { tenant, token, tokenId } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", { token, json: { name: "ERP", use_cases: [useCase("contacts"), useCase("orders")] } });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return { tenant, token, tokenId, created: res.body, etag: res.headers.get("etag")! };
}

const putBody = (integration: { name: string; use_cases: Record<string, unknown>[] }, name: string) => ({
  name,
  use_cases: integration.use_cases.map(({ created_at: _c, updated_at: _u, ...uc }) => uc),
});

describe("ETag and If-Match on /v2/integrations/{id}", () => {
  it("answers a strong ETag, takes a current If-Match, refuses a stale one with 412, and keeps working without one", async () => {
    const { token, created, etag: createdTag } = await integrationWithToken();
    const path = `/v2/integrations/${created.id}`;
    const get = await api("GET", path, { token });
    const etag = get.headers.get("etag")!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(etag).toBe(createdTag);
    expect((await api("GET", path, { token })).headers.get("etag")).toBe(etag);

    const put = await api("PUT", path, { token, json: putBody(get.body, "ERP v2"), headers: { "if-match": etag } });
    expect(put.status).toBe(200);
    expect(put.body.name).toBe("ERP v2");
    const next = put.headers.get("etag")!;
    expect(next).not.toBe(etag);
    expect((await api("GET", path, { token })).headers.get("etag")).toBe(next);

    // The same If-Match again is now stale: 412 with the error envelope, and nothing changes.
    const stale = await api("PUT", path, { token, json: putBody(get.body, "lost update"), headers: { "if-match": etag } });
    expectError(stale, 412, "PRECONDITION_FAILED");
    expect((await api("GET", path, { token })).body.name).toBe("ERP v2");
    expectError(await api("PUT", path, { token, json: putBody(get.body, "weak"), headers: { "if-match": `W/${next}` } }), 412, "PRECONDITION_FAILED");
    expect((await api("PUT", path, { token, json: putBody(get.body, "listed"), headers: { "if-match": `"other", ${next}` } })).status).toBe(200);

    // epilot clients send no If-Match: unconditional writes keep working, and still move the ETag.
    const plain = await api("PUT", path, { token, json: putBody(get.body, "no precondition") });
    expect(plain.status).toBe(200);
    expect(plain.body.name).toBe("no precondition");
    const current = plain.headers.get("etag")!;

    expectError(await api("DELETE", path, { token, headers: { "if-match": next } }), 412, "PRECONDITION_FAILED");
    expect((await api("GET", path, { token })).status).toBe(200);
    expect((await api("DELETE", path, { token, headers: { "if-match": current } })).status).toBe(200);
    expectError(await api("GET", path, { token }), 404, "NOT_FOUND");

    const other = await integrationWithToken();
    expect((await api("DELETE", `/v2/integrations/${other.created.id}`, { token: other.token })).status).toBe(200);
  });

  it("lets only one of two PUTs based on the same version win, even when both pass the check before either writes", async () => {
    const { tenant, token, tokenId, created, etag } = await integrationWithToken();
    const path = `/v2/integrations/${created.id}`;
    const [contacts] = created.use_cases;
    // The rival request commits between this request's read (and If-Match check) and its write.
    const rival = async () => {
      const res = await api("PUT", path, { token, json: { ...putBody(created, "winner"), use_cases: [{ ...putBody(created, "").use_cases[0], name: "rival's" }] }, headers: { "if-match": etag } });
      if (res.status !== 200) throw new Error(`rival: ${res.status} ${JSON.stringify(res.body)}`);
    };
    const body = { ...putBody(created, "loser"), use_cases: [{ ...putBody(created, "").use_cases[0], name: "loser's" }, putBody(created, "").use_cases[1]] };
    const lost = await appErrorOf(replaceIntegration(racing(env.DB, /UPDATE integrations/, rival), `token:${tokenId}`, tenant.id, created.id, PutIntegration.parse(body), etag));
    expect(lost).toMatchObject({ code: "PRECONDITION_FAILED", status: 412 });

    const after = (await api("GET", path, { token })).body;
    expect(after.name).toBe("winner");
    expect(after.use_cases.map((u: { name: string }) => u.name)).toEqual(["rival's"]);
    // Only the winner's changes are in the history: the loser wrote nothing at all.
    const history = (await api("GET", `/v1/integrations/${created.id}/use-cases/${contacts.id}/history`, { token })).body.history;
    expect(history.map((h: { action: string; snapshot: { name: string } }) => `${h.action} ${h.snapshot.name}`)).toEqual(["updated rival's", "created Sync contacts"]);
    expect(await auditCount("integration.replaced", created.id)).toBe(1);

    // Without If-Match the same race is decided again on fresh data: the later write wins whole.
    const fresh = (await api("GET", path, { token })).body;
    const rival2 = async () => {
      const res = await api("PUT", path, { token, json: putBody(fresh, "second rival") });
      if (res.status !== 200) throw new Error(`rival: ${res.status} ${JSON.stringify(res.body)}`);
    };
    const result = await replaceIntegration(racing(env.DB, /UPDATE integrations/, rival2), `token:${tokenId}`, tenant.id, created.id, PutIntegration.parse(putBody(fresh, "last writer")));
    expect(result.integration.name).toBe("last writer");
    expect((await api("GET", path, { token })).headers.get("etag")).toBe(result.etag);
  });
});

describe("ETag and If-Match on /v1/integrations/{id}/use-cases/{use_case_id}", () => {
  it("versions each use case, and a use case change moves its integration's ETag too", async () => {
    const { token, created } = await integrationWithToken();
    const [contacts] = created.use_cases;
    const path = `/v1/integrations/${created.id}/use-cases/${contacts.id}`;
    const integrationTag = (await api("GET", `/v2/integrations/${created.id}`, { token })).headers.get("etag");

    const get = await api("GET", path, { token });
    expect(get.status).toBe(200);
    const etag = get.headers.get("etag")!;
    expect(etag).toMatch(/^"[^"]+"$/);

    const put = await api("PUT", path, { token, json: useCase("contacts", "Contacts v2"), headers: { "if-match": etag } });
    expect(put.status).toBe(200);
    const next = put.headers.get("etag")!;
    expect(next).not.toBe(etag);
    expect((await api("GET", path, { token })).headers.get("etag")).toBe(next);
    expect((await api("GET", `/v2/integrations/${created.id}`, { token })).headers.get("etag")).not.toBe(integrationTag);

    expectError(await api("PUT", path, { token, json: useCase("contacts", "lost"), headers: { "if-match": etag } }), 412, "PRECONDITION_FAILED");
    expect((await api("GET", path, { token })).body.name).toBe("Contacts v2");
    // An integration PUT that changes the use case moves the use case's version as well.
    const whole = (await api("GET", `/v2/integrations/${created.id}`, { token })).body;
    const replaced = await api("PUT", `/v2/integrations/${created.id}`, {
      token,
      json: { ...putBody(whole, "ERP"), use_cases: putBody(whole, "").use_cases.map((uc) => (uc.id === contacts.id ? { ...uc, name: "via integration" } : uc)) },
    });
    expect(replaced.status).toBe(200);
    expectError(await api("PUT", path, { token, json: useCase("contacts", "lost"), headers: { "if-match": next } }), 412, "PRECONDITION_FAILED");
    expectError(await api("DELETE", path, { token, headers: { "if-match": next } }), 412, "PRECONDITION_FAILED");

    const current = (await api("GET", path, { token })).headers.get("etag")!;
    expect((await api("PUT", path, { token, json: useCase("contacts", "no precondition") })).status).toBe(200);
    expectError(await api("DELETE", path, { token, headers: { "if-match": current } }), 412, "PRECONDITION_FAILED");
    expect((await api("DELETE", path, { token, headers: { "if-match": "*" } })).status).toBe(200);
    expectError(await api("GET", path, { token }), 404, "NOT_FOUND");
    const [, orders] = created.use_cases;
    expect((await api("DELETE", `/v1/integrations/${created.id}/use-cases/${orders.id}`, { token })).status).toBe(200);
  });

  it("lets only one of two use case PUTs based on the same version win", async () => {
    const { tenant, token, tokenId, created } = await integrationWithToken();
    const [contacts] = created.use_cases;
    const path = `/v1/integrations/${created.id}/use-cases/${contacts.id}`;
    const etag = (await api("GET", path, { token })).headers.get("etag")!;
    const rival = async () => {
      const res = await api("PUT", path, { token, json: useCase("contacts", "winner"), headers: { "if-match": etag } });
      if (res.status !== 200) throw new Error(`rival: ${res.status} ${JSON.stringify(res.body)}`);
    };
    const lost = await appErrorOf(updateUseCase(racing(env.DB, /UPDATE use_cases/, rival), `token:${tokenId}`, tenant.id, created.id, contacts.id, UseCaseInput.parse(useCase("contacts", "loser")), etag));
    expect(lost).toMatchObject({ code: "PRECONDITION_FAILED", status: 412 });
    expect((await api("GET", path, { token })).body.name).toBe("winner");
    const history = (await api("GET", `${path}/history`, { token })).body.history;
    expect(history.map((h: { snapshot: { name: string } }) => h.snapshot.name)).toEqual(["winner", "Sync contacts"]);
  });

  it("documents If-Match, ETag and 412 in /openapi.json", async () => {
    const res = await api("GET", "/openapi.json");
    if (res.status !== 200) throw new Error(`openapi: ${res.status} ${JSON.stringify(res.body).slice(0, 2000)}`);
    const doc = res.body;
    for (const path of ["/v2/integrations/{id}", "/v1/integrations/{id}/use-cases/{use_case_id}"]) {
      const ops = doc.paths[path];
      expect(ops.get.responses["200"].headers.ETag).toBeDefined();
      expect(ops.put.responses["200"].headers.ETag).toBeDefined();
      for (const method of ["put", "delete"]) {
        expect(ops[method].parameters).toContainEqual(expect.objectContaining({ in: "header", name: "if-match", required: false }));
        expect(ops[method].responses["412"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/ErrorEnvelope" });
      }
    }
    expect(doc.components.schemas.ErrorEnvelope.properties.error.properties.code.enum).toContain("PRECONDITION_FAILED");
  });
});

// ---- inbound events ---------------------------------------------------------------------------

describe("inbound events", () => {
  it("finishes an event and redacts its payload in one write: a failed write leaves it unfinished, to run again", async () => {
    const { token, integrationId } = await setup();
    await env.DB.prepare("UPDATE integrations SET settings = ? WHERE id = ?").bind(JSON.stringify({ redact_paths: ["name"], retention_days: 30 }), integrationId).run();
    configChanged();
    const stub = logOf(integrationId, "g-redact");
    const heal = await shardFault(stub, "fail_redaction", "BEFORE UPDATE OF payload ON events WHEN NEW.payload IS NOT OLD.payload BEGIN SELECT RAISE(ABORT, 'storage fault'); END");
    const [event] = await post(token, integrationId, [{ use_case_slug: "contacts", payload: { id: "PII-1", name: "Erika Mustermann" }, group_id: "g-redact" }]);
    await vi.waitFor(async () => expect((await stub.pending())[0]?.last_error).toMatch(/storage fault/), { timeout: 10_000, interval: 20 });

    // Not "done" with the name still stored: not finished at all (and still queued), so the log runs it again.
    const failed = await eventRow(integrationId, event!.event_id);
    expect(failed!.status).toBe("processing");
    expect(failed!.completed_at).toBeNull();
    expect(JSON.parse(failed!.payload!).name).toBe("Erika Mustermann");
    expect((await stub.pending()).map((p) => p.event_id)).toEqual([event!.event_id]);

    await heal();
    // The retry is due after its backoff: the log's alarm runs it then.
    const done = await waitFor(token, event!.event_id);
    expect(done.status).toBe("done");
    expect(JSON.parse((await eventRow(integrationId, event!.event_id))!.payload!)).toEqual({ id: "PII-1", name: "[REDACTED]" });
    expect(await stub.pending()).toEqual([]);
  });

  it("answers an error envelope when the log shard cannot store a batch, and stores nothing of it: a retry is not a duplicate", async () => {
    const { token, integrationId } = await setup();
    const stub = logOf(integrationId, "g-store");
    // The shard's own storage refuses new events (a real failure of the Durable Object call).
    const heal = await shardFault(stub, "refuse_events", "BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'log storage unavailable'); END");
    // Every event of the batch belongs to that shard: an accepted one, one with a deduplication id, one for no use case.
    const batch = {
      integration_id: integrationId,
      events: [
        { use_case_slug: "contacts", timestamp: new Date().toISOString(), group_id: "g-store", payload: { id: "H-1", name: "One" } },
        { use_case_slug: "contacts", timestamp: new Date().toISOString(), group_id: "g-store", payload: { id: "H-2", name: "Two" }, deduplication_id: "h-2" },
        { use_case_slug: "nope", timestamp: new Date().toISOString(), group_id: "g-store", payload: {} },
      ],
    };
    const logged = vi.spyOn(console, "error");
    try {
      const res = await api("POST", "/v3/erp/updates/events", { token, json: batch });
      // No AppError code fits a storage failure: the generic error envelope, the cause logged.
      expectError(res, 500, "INTERNAL");
      expect(logged.mock.calls.some(([line]) => String(line).includes("log storage unavailable"))).toBe(true);
    } finally {
      logged.mockRestore();
    }
    // Nothing of the batch is stored or queued: no event, no queue entry, no deduplication id taken.
    expect(await logQuery(integrationId, "SELECT id FROM events")).toEqual([]);
    expect(await logQuery(integrationId, "SELECT event_id FROM queue")).toEqual([]);

    // Once the shard stores again, the client's retry of the same batch is accepted whole, not skipped as a duplicate.
    await heal();
    const retry = await api("POST", "/v3/erp/updates/events", { token, json: batch });
    expect(retry.status).toBe(200);
    expect(retry.body.results.map((r: { status: string }) => r.status)).toEqual(["success", "success", "ignored"]);
    const [one, two] = retry.body.results as { event_id: string }[];
    expect((await waitFor(token, one!.event_id)).status).toBe("done");
    expect((await waitFor(token, two!.event_id)).status).toBe("done");
    expect(await logQuery(integrationId, "SELECT id FROM events")).toHaveLength(3);
  });
});

// ---- identity resolution ----------------------------------------------------------------------

describe("identity resolution", () => {
  it("leaves none of its claims behind when it finds an ambiguity, and two concurrent updates naming a new id make one entity", async () => {
    const { tenant } = await tenantWithToken();
    // A tenant's contacts, their unique-id index included, live in one entity store: resolution and claim are one transaction there.
    const store = entityStore(env, tenant.id, "contact");
    const apply = (uniqueIds: Record<string, string>) => {
      const eventId = newId();
      const update: EntityUpdateInput = { updateId: `${eventId}#0`, eventId, tenantId: tenant.id, schema: "contact", uniqueIds, attributes: {}, mode: "upsert" };
      return runInDurableObject(store, async (instance: EntityStore) => (await instance.apply([update]))[0]!);
    };
    const identifiers = () =>
      runInDurableObject(store, (_instance: EntityStore, state) => state.storage.sql.exec("SELECT attribute, value, entity_id FROM identifiers ORDER BY attribute, value").toArray());
    const known = await apply({ customer_number: "C-1" });
    const rival = await apply({ email: "e@example.com" });
    if (!("entityId" in known) || !("entityId" in rival)) throw new Error("expected two entities");

    const resolution = await apply({ customer_number: "C-1", crm_id: "CRM-1", email: "e@example.com" });
    expect(resolution).toEqual({ ambiguous: expect.arrayContaining([known.entityId, rival.entityId]) });
    // crm_id would have been claimed for the known entity by an update that was refused: it must not stay.
    expect(await identifiers()).toEqual([
      { attribute: "customer_number", value: "C-1", entity_id: known.entityId },
      { attribute: "email", value: "e@example.com", entity_id: rival.entityId },
    ]);

    // Unambiguous resolutions still claim every id, and a repeat finds them.
    const fresh = await apply({ customer_number: "C-2", crm_id: "CRM-2" });
    expect(fresh).toMatchObject({ operation: "created", entityId: expect.any(String) });
    expect(await apply({ crm_id: "CRM-2" })).toMatchObject({ entityId: (fresh as { entityId: string }).entityId });

    // Two updates naming the same new id at once: one creates the entity, the other finds it.
    const [a, b] = await Promise.all([apply({ customer_number: "C-3" }), apply({ customer_number: "C-3" })]);
    expect((a as { entityId: string }).entityId).toBe((b as { entityId: string }).entityId);
    expect([a, b].map((r) => (r as { operation: string }).operation).sort()).toEqual(["created", "unchanged"]);
  });
});

// ---- outbound endpoint state ------------------------------------------------------------------

describe("outbound endpoint state", () => {
  it("pauses an endpoint and records it in one transaction: a failed audit write leaves it active", async () => {
    const { token } = await tenantWithToken();
    const { body: integration } = await api("POST", "/v2/integrations", { token, json: { name: "ERP", use_cases: [] } });
    const { tenant_id } = (await env.DB.prepare("SELECT tenant_id FROM integrations WHERE id = ?").bind(integration.id).first<{ tenant_id: string }>())!;
    const endpointId = "01JD00000000000000000000UC/main";
    await env.DB.prepare("INSERT INTO outbound_endpoints (id, tenant_id, integration_id, use_case_id, mapping_id, updated_at) VALUES (?, ?, ?, '01JD00000000000000000000UC', 'main', ?)")
      .bind(endpointId, tenant_id, integration.id, new Date().toISOString())
      .run();
    const heal = await d1Fault("fail_pause_audit", `BEFORE INSERT ON audit_log WHEN NEW.action = 'erp_edge.endpoint.paused' AND NEW.target = '${endpointId}' BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END`);
    const stub = env.OUTBOUND_ENDPOINT.get(env.OUTBOUND_ENDPOINT.idFromName(endpointId));
    const pause = () =>
      runInDurableObject(stub, async (instance: OutboundEndpoint) => {
        try {
          await instance["setState"](endpointId, "paused", { paused_until: new Date(Date.now() + 60_000).toISOString(), failures: 6 });
          return null;
        } catch (err) {
          return String(err);
        }
      });
    const state = async () => (await env.DB.prepare("SELECT state, consecutive_failures FROM outbound_endpoints WHERE id = ?").bind(endpointId).first())!;

    expect(await pause()).toMatch(/audit log unavailable/);
    expect(await state()).toEqual({ state: "active", consecutive_failures: 0 });
    expect(await auditCount("erp_edge.endpoint.paused", endpointId)).toBe(0);

    await heal();
    expect(await pause()).toBeNull();
    expect(await state()).toEqual({ state: "paused", consecutive_failures: 6 });
    expect(await auditCount("erp_edge.endpoint.paused", endpointId)).toBe(1);
    const entry = await env.DB.prepare("SELECT tenant_id, actor, details FROM audit_log WHERE action = 'erp_edge.endpoint.paused' AND target = ?").bind(endpointId).first<{ tenant_id: string; actor: string; details: string }>();
    expect(entry).toMatchObject({ tenant_id, actor: "system" });
    expect(JSON.parse(entry!.details)).toMatchObject({ endpoint_id: endpointId, integration_id: integration.id, failures: 6 });
  });
});

describe("a write racing a delete", () => {
  it("never lets a use case update win over a concurrent delete (412 with If-Match, 404 without), and nothing is written", async () => {
    const { tenant, token, tokenId, created } = await integrationWithToken();
    const [contacts] = created.use_cases;
    const path = `/v1/integrations/${created.id}/use-cases/${contacts.id}`;
    const etag = (await api("GET", path, { token })).headers.get("etag")!;
    const input = UseCaseInput.parse({ ...useCase("contacts"), name: "renamed" });
    const deleteFirst = async () => expect((await api("DELETE", path, { token })).status).toBe(200);
    const lost = await appErrorOf(updateUseCase(racing(env.DB, /UPDATE use_cases/, deleteFirst), `token:${tokenId}`, tenant.id, created.id, contacts.id, input, etag));
    expect(lost).toMatchObject({ status: 412 });
    expect((await api("GET", path, { token })).status).toBe(404);
    const history = await env.DB.prepare("SELECT action FROM use_case_history WHERE use_case_id = ? ORDER BY changed_at").bind(contacts.id).all<{ action: string }>();
    expect(history.results.map((r) => r.action)).toEqual(["created", "deleted"]);

    const [, orders] = created.use_cases;
    const ordersPath = `/v1/integrations/${created.id}/use-cases/${orders.id}`;
    const deleteOrders = async () => expect((await api("DELETE", ordersPath, { token })).status).toBe(200);
    const unconditional = await appErrorOf(updateUseCase(racing(env.DB, /UPDATE use_cases/, deleteOrders), `token:${tokenId}`, tenant.id, created.id, orders.id, UseCaseInput.parse({ ...useCase("orders"), name: "x" })));
    expect(unconditional).toMatchObject({ status: 404 });
  });

  it("answers a PUT of an integration deleted meanwhile with 404, not 500", async () => {
    const { tenant, tokenId, token, created } = await integrationWithToken();
    const deleteFirst = async () => expect((await api("DELETE", `/v2/integrations/${created.id}`, { token })).status).toBe(200);
    const lost = await appErrorOf(replaceIntegration(racing(env.DB, /UPDATE integrations/, deleteFirst), `token:${tokenId}`, tenant.id, created.id, PutIntegration.parse(putBody(created, "late"))));
    expect(lost).toMatchObject({ status: 404 });
  });
});
