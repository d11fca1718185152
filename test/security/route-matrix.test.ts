// The route matrix: every operation in /openapi.json, called with real ids of tenant A, without a
// token, with a token lacking its scope, with tenant B's token, and across the admin/tenant line.
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/index";
import { ADMIN, ALL_SCOPES, createToken } from "../helpers";
import type { Scope } from "../../src/platform/scopes";
import {
  captureWorkerErrors,
  createFixture,
  envelopeProblem,
  fillPath,
  firstPathValues,
  loadDocument,
  markersOf,
  operationsOf,
  OPEN_OPERATIONS,
  ADMIN_ALSO_ACCEPTED,
  ownedBodyIds,
  pathValues,
  PUBLIC_OPERATIONS,
  PUBLIC_ASSET_ROUTES,
  PUBLIC_UNDOCUMENTED,
  send,
  validBody,
  type OpenApiDocument,
  type Operation,
  type RawResponse,
  type TenantFixture,
} from "./openapi-routes";

let doc: OpenApiDocument;
let operations: Operation[];
let A: TenantFixture;
let B: TenantFixture;
let log: ReturnType<typeof captureWorkerErrors>;

const tally = { routes: 0, requests: 0, status401: 0, status403: 0, status404: 0, status5xx: 0, crossTenantSuccesses: 0 };
const serverErrors: string[] = [];
const crossTenant: string[] = [];
let sequence = 0;

/** Sends one matrix request and counts it; a 5xx is recorded with the Worker's logged error. */
async function call(op: Operation, kind: string, path: string, opts: { token?: string; json?: unknown } = {}): Promise<RawResponse> {
  const res = await send(op.method, path, { ...opts, requestId: `matrix-${++sequence}` });
  tally.requests++;
  if (res.status === 401) tally.status401++;
  if (res.status === 403) tally.status403++;
  if (res.status === 404) tally.status404++;
  if (res.status >= 500) {
    tally.status5xx++;
    serverErrors.push(`${op.key} [${kind}] ${res.status}: ${log.errorsOf(res.requestId) || res.text.slice(0, 200)}`);
  }
  return res;
}

/** "" when `res` has one of `statuses` and the error envelope, else why not. */
function mismatch(op: Operation, kind: string, res: RawResponse, statuses: number[]): string {
  if (!statuses.includes(res.status)) return `${op.key} [${kind}] expected ${statuses.join("/")}, got ${res.status} ${res.text.slice(0, 160)}`;
  const problem = envelopeProblem(res);
  return problem ? `${op.key} [${kind}] ${res.status} ${problem}` : "";
}

/** A's identifying strings that the request itself did not carry, found in the answer. */
function leakedMarkers(res: RawResponse, request: string): string[] {
  return markersOf(A).filter((marker) => !request.includes(marker) && res.text.includes(marker));
}

/**
 * True when B's answer to a GET naming A's ids is exactly B's answer with those ids replaced by one that
 * exists nowhere (B's own values kept): the answer cannot depend on A's resource.
 */
async function answersLikeUnknownIds(op: Operation, params: Record<string, string>, theirs: Record<string, string[]>, res: RawResponse): Promise<boolean> {
  if (op.method !== "GET") return false;
  const unknown = Object.fromEntries(Object.entries(params).map(([name, v]) => [name, theirs[name]?.includes(v) ? v : "probe-missing"]));
  const baseline = await call(op, "tenant B on ids that exist nowhere", fillPath(op.path, unknown), { token: B.token });
  return baseline.status === res.status && baseline.text === res.text;
}

/** Every combination of the parameters' values, at most `cap`. */
function combinations(values: Record<string, string[]>, cap = 6): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const [name, options] of Object.entries(values)) out = out.flatMap((partial) => options.map((v) => ({ ...partial, [name]: v })));
  return out.slice(0, cap);
}

const report = (title: string, lines: string[]) => {
  if (lines.length) console.log(`${title} (${lines.length}):\n  ${lines.join("\n  ")}`);
};

describe("route matrix generated from /openapi.json", () => {
  beforeAll(async () => {
    log = captureWorkerErrors();
    doc = await loadDocument();
    operations = operationsOf(doc);
    tally.routes = operations.length;
    A = await createFixture("A", env.RECEIVER_URL);
    B = await createFixture("B", env.RECEIVER_URL);
  }, 60_000);

  afterAll(() => log.restore());

  it("documents every route, and only explicitly listed operations are public", async () => {
    const failures: string[] = [];
    // Routes the app serves but the document does not describe escape the generated suites.
    const documented = new Set(operations.map((op) => op.key));
    const undocumented = app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`)
      .filter((key) => !documented.has(key) && !(key in PUBLIC_UNDOCUMENTED) && !PUBLIC_ASSET_ROUTES.has(key) && key !== "POST /__bench/bare");
    failures.push(...undocumented.map((key) => `${key} is served but missing from /openapi.json`));
    expect((await send("POST", "/__bench/bare", { json: {}, requestId: "matrix-bench" })).status).toBe(404);

    for (const op of operations.filter((o) => o.guard === "public")) {
      if (!PUBLIC_OPERATIONS[op.key] && !OPEN_OPERATIONS[op.key]) failures.push(`${op.key} declares no security and is not in PUBLIC_OPERATIONS or OPEN_OPERATIONS`);
    }
    for (const key of Object.keys(PUBLIC_OPERATIONS)) {
      if (!documented.has(key)) failures.push(`PUBLIC_OPERATIONS lists ${key}, which the document no longer has`);
    }
    for (const key of Object.keys(OPEN_OPERATIONS)) {
      if (!documented.has(key)) failures.push(`OPEN_OPERATIONS lists ${key}, which the document no longer has`);
      const [method, path] = key.split(" ") as [string, string];
      const res = await send(method, path, { requestId: `matrix-open-${++sequence}` });
      tally.requests++;
      if (res.status !== 200) failures.push(`${key} is listed open but answered ${res.status}`);
    }
    // The document says which tenant operations the admin token may call; only those listed may say so.
    const documentedAdmin = new Set(operations.filter((op) => op.adminToo).map((op) => op.key));
    for (const key of ADMIN_ALSO_ACCEPTED) if (!documentedAdmin.has(key)) failures.push(`ADMIN_ALSO_ACCEPTED lists ${key}, which the document does not show as a tenant operation also open to the admin token`);
    for (const key of documentedAdmin) if (!ADMIN_ALSO_ACCEPTED.has(key)) failures.push(`${key} is documented as accepting the admin token but is not in ADMIN_ALSO_ACCEPTED`);
    for (const key of Object.keys(PUBLIC_UNDOCUMENTED)) {
      const [method, path] = key.split(" ") as [string, string];
      const res = await send(method, path, { requestId: `matrix-public-${++sequence}` });
      tally.requests++;
      if (res.status !== 200) failures.push(`${key} is listed public but answered ${res.status}`);
    }

    const gaps = operations.filter((op) => op.guard === "tenant" && op.documentedScopes === null).map((op) => op.key);
    report("scope gap: these operations' security requirement names no scope (derived by probing instead)", gaps);
    console.log(`public by design: ${[...Object.entries(PUBLIC_OPERATIONS), ...Object.entries(OPEN_OPERATIONS), ...Object.entries(PUBLIC_UNDOCUMENTED)].map(([k, why]) => `${k} (${why})`).join("; ")}`);
    expect(failures).toEqual([]);
  });

  it("refuses every protected operation without a token, or with a non-JWT bearer, with a 401 envelope", async () => {
    const failures: string[] = [];
    // Open operations answer anyone (checked above).
    for (const op of operations.filter((o) => !OPEN_OPERATIONS[o.key])) {
      const path = fillPath(op.path, firstPathValues(op, A));
      const res = await call(op, "no token", path, op.guard === "public" ? { json: {} } : {});
      // A public operation (a signed webhook) unsigned must be refused just the same, and say nothing about A.
      failures.push(mismatch(op, op.guard === "public" ? "no token, unsigned" : "no token", res, [401]));
      const leaks = leakedMarkers(res, path);
      if (leaks.length) failures.push(`${op.key} [no token] answer shows A's ${leaks.join(", ")}`);
      if (op.guard !== "public") {
        // A bearer that is not a JWT at all is as unauthenticated as none.
        failures.push(mismatch(op, "bearer not-a-jwt", await call(op, "bearer not-a-jwt", path, { token: "not-a-jwt" }), [401]));
      }
    }
    expect(failures.filter(Boolean)).toEqual([]);
  }, 60_000);

  it("learns each tenant operation's scope by probing, and refuses a token lacking it with 403", async () => {
    const failures: string[] = [];
    const single = new Map<Scope, string>();
    for (const scope of ALL_SCOPES) single.set(scope, (await createToken(A.tenantId, [scope])).token);
    const lacking = new Map<string, string>();
    const table: string[] = [];

    for (const op of operations.filter((o) => o.guard === "tenant")) {
      // Ids that exist nowhere: a token that passes the scope check then meets a 400/404, so probing changes nothing.
      const probePath = fillPath(op.path, Object.fromEntries(op.pathParams.map((p) => [p.name, "probe-missing"])));
      const accepted: Scope[] = [];
      for (const scope of ALL_SCOPES) {
        const res = await call(op, `probe ${scope}`, probePath, { token: single.get(scope) });
        if (res.status === 401) failures.push(`${op.key} [probe ${scope}] a valid single-scope token got 401`);
        else if (res.status !== 403) accepted.push(scope);
      }
      table.push(`${op.key} -> ${accepted.join(" | ") || "(none)"}`);
      if (op.documentedScopes && op.documentedScopes.join(",") !== [...accepted].sort().join(",")) {
        failures.push(`${op.key} documents scopes ${op.documentedScopes.join(", ")} but accepts ${accepted.join(", ")}`);
      }
      if (accepted.length === 0) {
        failures.push(`${op.key} refuses a token of every single scope`);
        continue;
      }
      const rest = ALL_SCOPES.filter((s) => !accepted.includes(s));
      if (rest.length === 0) {
        failures.push(`${op.key} accepts a token of any scope: it checks none`);
        continue;
      }
      const key = rest.join(",");
      if (!lacking.has(key)) lacking.set(key, (await createToken(A.tenantId, rest)).token);
      const path = fillPath(op.path, firstPathValues(op, A));
      const res = await call(op, `all scopes but ${accepted.join("/")}`, path, { token: lacking.get(key) });
      failures.push(mismatch(op, `all scopes but ${accepted.join("/")}`, res, [403]));
    }
    console.log(`scopes derived by probing (a token of each single scope):\n  ${table.join("\n  ")}`);
    const used = new Set(table.flatMap((line) => line.split(" -> ")[1]!.split(" | ")));
    report("scopes no documented operation accepts", ALL_SCOPES.filter((s) => !used.has(s)));
    expect(failures.filter(Boolean)).toEqual([]);
  }, 60_000);

  it("answers tenant B's token on tenant A's ids with 404, never shows A's data, and changes nothing of A's", async () => {
    const failures: string[] = [];
    // What A sees of its own data before B tries every route on it, to compare afterwards.
    const snapshot = async () => {
      const views = [
        `/v2/integrations/${A.integrationId}`, `/v1/integrations/${A.integrationId}/environment`, `/v1/entities/contact/${A.contactId}`, `/v1/integrations/${A.integrationId}/outbound/endpoints`,
        // The registry package A publishes (B reads it like any tenant, but must not yank, deprecate or re-key it).
        `/v1/registry/packages/${A.registry.publisher}/${A.registry.name}`, `/v1/registry/publishers/${A.registry.publisher}`,
      ];
      return Promise.all(views.map(async (path) => `${path} ${(await send("GET", path, { token: A.token, requestId: `matrix-snapshot-${++sequence}` })).text}`));
    };
    const before = await snapshot();
    const unknownLike: string[] = [];
    for (const op of operations.filter((o) => o.guard === "tenant")) {
      const values = pathValues(op, A);
      const theirs = pathValues(op, B);
      // A path naming only shared things (an entity schema slug) addresses no tenant's resource.
      const ownsPath = Object.entries(values).some(([name, v]) => v.join() !== theirs[name]?.join());
      if (!ownsPath) {
        // No tenant id in the path: B calls with a body that names A's resources where the body has ids.
        const path = fillPath(op.path, firstPathValues(op, A));
        const json = validBody(doc, op, A);
        const res = await call(op, "tenant B, A's ids in the body", path, { token: B.token, json });
        const request = `${path} ${JSON.stringify(json ?? "")}`;
        if (ownedBodyIds(doc, op).length) {
          if (res.status < 300) {
            tally.crossTenantSuccesses++;
            crossTenant.push(`${op.key} [B's token, A's ${ownedBodyIds(doc, op).join("/")}] ${res.status} ${res.text.slice(0, 160)}`);
          }
          // A foreign id in the body is "not found"; where the document lists no 404 (epilot's triggerErp
          // answers an id it cannot act on with 400), its documented refusal is the 400.
          failures.push(mismatch(op, "tenant B, A's ids in the body", res, op.statuses.includes(404) ? [404] : [400, 404]));
        }
        const leaks = leakedMarkers(res, request);
        if (leaks.length) {
          tally.crossTenantSuccesses++;
          crossTenant.push(`${op.key} [B's token] answer shows A's ${leaks.join(", ")}`);
        }
        continue;
      }

      const variants: { kind: string; params: Record<string, string> }[] = combinations(values).map((params) => ({ kind: "tenant B on A's ids", params }));
      // B's own parent with A's child: the child must be checked, not only the parent.
      const [first] = op.pathParams;
      const ownFirst = first && theirs[first.name]?.[0];
      if (op.pathParams.length > 1 && first && ownFirst && ownFirst !== values[first.name]?.[0]) {
        for (const params of combinations(values)) variants.push({ kind: `tenant B's ${first.name}, A's other ids`, params: { ...params, [first.name]: ownFirst } });
      }
      for (const { kind, params } of variants) {
        const path = fillPath(op.path, params);
        const json = validBody(doc, op, A, params);
        const res = await call(op, kind, path, { token: B.token, json });
        const request = `${path} ${JSON.stringify(json ?? "")}`;
        // A read that answers an id it does not hold with a 2xx (epilot's associated events: an empty list, no
        // 404) tells B nothing when the answer is the very one an id existing nowhere gets; A's markers are still checked.
        if (res.status < 300 && (await answersLikeUnknownIds(op, params, theirs, res))) {
          unknownLike.push(`${op.key} [${kind}] ${res.status} ${res.text.slice(0, 120)}`);
        } else {
          if (res.status < 300) {
            tally.crossTenantSuccesses++;
            crossTenant.push(`${op.key} [${kind}] ${path} -> ${res.status} ${res.text.slice(0, 160)}`);
          }
          failures.push(mismatch(op, `${kind} ${path}`, res, [404]));
        }
        const leaks = leakedMarkers(res, request);
        if (leaks.length) {
          tally.crossTenantSuccesses++;
          crossTenant.push(`${op.key} [${kind}] answer shows A's ${leaks.join(", ")}`);
        }
      }

      // The control: A reads its own ids, so B's 404 means isolation and not a wrong fixture.
      if (op.method === "GET") {
        for (const params of combinations(values)) {
          const res = await call(op, "tenant A on its own ids", fillPath(op.path, params), { token: A.token });
          if (res.status !== 200) failures.push(`${op.key} [control: A on its own ids ${JSON.stringify(params)}] ${res.status} ${res.text.slice(0, 160)}`);
        }
      }
    }
    const after = await snapshot();
    before.forEach((view, i) => {
      if (view !== after[i]) {
        tally.crossTenantSuccesses++;
        crossTenant.push(`tenant B's requests changed what A sees: ${view.slice(0, 200)} -> ${after[i]!.slice(0, 200)}`);
      }
    });
    report("cross-tenant successes", crossTenant);
    report("reads answering B's ids and A's exactly as ids that exist nowhere (2xx, not 404)", unknownLike);
    expect(failures.filter(Boolean)).toEqual([]);
    expect(crossTenant).toEqual([]);
  }, 60_000);

  it("refuses tenant tokens on admin routes and the admin token on tenant routes", async () => {
    const failures: string[] = [];
    for (const op of operations.filter((o) => o.guard !== "public")) {
      const path = fillPath(op.path, firstPathValues(op, A));
      const [kind, token] = op.guard === "admin" ? ["tenant A's all-scopes token", A.token] : ["admin token", ADMIN];
      const res = await call(op, kind, path, { token });
      if (op.adminToo) {
        // Authenticated as the operator; A's package is still A's (the registry's ownership check may say 403).
        if (res.status === 401) failures.push(`${op.key} [${kind}] is listed in ADMIN_ALSO_ACCEPTED but answered 401`);
        else if (res.status >= 400) failures.push(mismatch(op, kind, res, [res.status]));
        continue;
      }
      failures.push(mismatch(op, kind, res, [401, 403]));
    }
    expect(failures.filter(Boolean)).toEqual([]);
  }, 60_000);

  it("answers no request with a 5xx and lets no cross-tenant request succeed", () => {
    console.log(
      `route matrix: ${tally.routes} routes checked, ${tally.requests} requests, ${tally.status401} 401s, ${tally.status403} 403s, ` +
        `${tally.status404} 404s, ${tally.status5xx} 5xx, ${tally.crossTenantSuccesses} cross-tenant successes`,
    );
    report("5xx answers", serverErrors);
    expect(tally.routes).toBeGreaterThan(0);
    expect(serverErrors).toEqual([]);
    expect(crossTenant).toEqual([]);
  });
});
