// npm run bench [-- scenario ...]: starts the real Worker (wrangler dev, fresh local state), drives it
// on loopback, checks correctness while measuring, prints a table and writes bench/results.json.
// Scenarios: inbound-ack, end-to-end, hot-entity, mapping, outbound, ingest-burst, file-proxy (default: all).
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { Webhook } from "standardwebhooks";
import "../scripts/wrangler-env.mjs";
import { byteAt, startFakeArchive } from "../scripts/fake-archive.mjs";
import { startReceiver } from "../scripts/receiver.mjs";

const root = path.resolve(import.meta.dirname, "..");
const examplesDir = path.resolve(root, "../shared/compat/epilot-mapping-examples");
const wrangler = path.join(root, "node_modules/wrangler/bin/wrangler.js");
const ALL = ["mapping", "end-to-end", "hot-entity", "outbound", "inbound-ack", "ingest-burst", "file-proxy"];
const ALIASES = { inbound: "inbound-ack", e2e: "end-to-end", hot: "hot-entity", files: "file-proxy", burst: "ingest-burst" };
const selected = process.argv.slice(2).map((a) => ALIASES[a] ?? a);
for (const s of selected) if (!ALL.includes(s)) throw new Error(`unknown scenario '${s}'; one of ${ALL.join(", ")}`);
const scenarios = selected.length ? ALL.filter((s) => selected.includes(s)) : ALL;

const example = (name) => JSON.parse(readFileSync(path.join(examplesDir, `${name}.json`), "utf8"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => (sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] : null);
const round = (x, d = 1) => (x === null || x === undefined ? null : Math.round(x * 10 ** d) / 10 ** d);

// ---- the Worker -------------------------------------------------------------------------------

const ADMIN = "bench-admin-token";
let worker;

async function startWorker(receiverPort, archivePort) {
  const persist = mkdtempSync(path.join(os.tmpdir(), "erp-edge-bench-"));
  const port = 8790 + Math.floor(Math.random() * 100);
  const vars = {
    ADMIN_TOKEN: ADMIN,
    SECRETS_KEY: "bench-secrets-key-0123456789abcdef",
    BENCH: "true",
    TENANT_RATE_LIMIT_PER_SECOND: "1000000",
    OUTBOUND_ALLOWED_PRIVATE_HOSTS: `127.0.0.1:${receiverPort}`,
    OUTBOUND_RETRY_BASE_MS: "200",
    FILE_PROXY_ALLOWED_PRIVATE_HOSTS: `127.0.0.1:${archivePort}`,
    FILE_PROXY_RATE_LIMIT_PER_SECOND: "1000000",
  };
  const migrated = spawnSync(process.execPath, [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persist], { cwd: root, encoding: "utf8" });
  if (migrated.status !== 0) throw new Error(`migrations failed: ${migrated.stderr}`);
  const logPath = path.join(os.tmpdir(), `erp-edge-bench-wrangler-${process.pid}.log`);
  const log = createWriteStream(logPath);
  const args = [wrangler, "dev", "--port", String(port), "--ip", "127.0.0.1", "--persist-to", persist, "--show-interactive-dev-session=false", "--log-level=warn", ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])];
  // X_LOCAL_OBSERVABILITY=false: wrangler dev's local trace collector (on by default) records every
  // invocation, RPC call and alarm into a Durable Object in the same workerd process. That is local
  // tooling, absent on Cloudflare, and it took about half of the thread and most of the memory growth
  // here (README, Performance), so the bench measures erp-edge without it.
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, CI: "true", X_LOCAL_OBSERVABILITY: "false" }, detached: true });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(`${base}/`)).ok) break;
    } catch {}
    if (i === 119) throw new Error(`wrangler dev did not start; see ${logPath}`);
    await sleep(500);
  }
  return {
    base,
    port,
    logPath,
    pid: child.pid,
    stop() {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      // Wait (at most 10 s) for the runtime to exit, so the next scenario's starts on an idle machine.
      spawnSync("sh", ["-c", `for i in $(seq 100); do kill -0 -${child.pid} 2>/dev/null || exit 0; sleep 0.1; done`]);
      rmSync(persist, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/**
 * Peak RSS, sampled every 200 ms, of the two workerd processes wrangler dev starts: the runtime that
 * runs erp-edge, and wrangler's dev proxy, a second workerd in front of it that takes the public port
 * and forwards every request (local tooling; on Cloudflare requests reach the Worker without it).
 * They are kept apart: the proxy alone grows by about 165 MB under 8 s of autocannon on the bare route.
 */
function rssSampler(w) {
  const peak = { runtime: 0, proxy: 0 };
  const descendants = (pid) => {
    const out = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" }).stdout.split("\n").map((s) => Number(s.trim())).filter(Boolean);
    return out.flatMap((c) => [c, ...descendants(c)]);
  };
  const sample = () => {
    const now = { runtime: 0, proxy: 0 };
    for (const pid of descendants(w.pid)) {
      try {
        const status = readFileSync(`/proc/${pid}/status`, "utf8");
        if (!/^Name:\s+workerd/m.test(status)) continue;
        const proxy = readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`entry=127.0.0.1:${w.port}`);
        now[proxy ? "proxy" : "runtime"] += Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0) * 1024;
      } catch {}
    }
    peak.runtime = Math.max(peak.runtime, now.runtime);
    peak.proxy = Math.max(peak.proxy, now.proxy);
  };
  sample();
  const timer = setInterval(sample, 200);
  return () => (clearInterval(timer), sample(), peak);
}

async function call(method, urlPath, { token, json } = {}) {
  const res = await fetch(`${worker.base}${urlPath}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(json !== undefined && { "content-type": "application/json" }) },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

const contactMapping = {
  entities: [
    {
      entity_schema: "contact",
      unique_ids: ["external_id"],
      fields: [
        { attribute: "external_id", field: "id" },
        { attribute: "full_name", field: "name" },
        { attribute: "_tags", jsonataExpression: "tag ? { '_append': [tag] } : undefined" },
      ],
    },
  ],
};

async function tenant(name, useCases) {
  const t = await call("POST", "/v1/tenants", { token: ADMIN, json: { name } });
  const scopes = ["integrations:read", "integrations:write", "events:write", "monitoring:read"];
  const { token } = await call("POST", `/v1/tenants/${t.id}/tokens`, { token: ADMIN, json: { name: "bench", scopes } });
  const integration = await call("POST", "/v2/integrations", { token, json: { name, use_cases: useCases } });
  return { token, integration };
}

async function postEvents(token, integrationId, events) {
  const body = await call("POST", "/v3/erp/updates/events", { token, json: { integration_id: integrationId, events } });
  const bad = body.results.filter((r) => r.status !== "success");
  if (bad.length) throw new Error(`events refused: ${JSON.stringify(bad[0])}`);
  return body.results;
}

async function allEvents(token, integrationId, query) {
  const out = [];
  let cursor;
  do {
    const page = await call("POST", `/v1/integrations/${integrationId}/events`, { token, json: { ...query, limit: 100, ...(cursor && { cursor }) } });
    out.push(...page.events);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

// ---- scenarios --------------------------------------------------------------------------------

async function inboundAck() {
  const payload = example("payload.customer");
  const bodyFor = (integrationId) =>
    JSON.stringify({
      integration_id: integrationId,
      events: Array.from({ length: 10 }, (_, i) => ({ event_name: "CustomerChanged", timestamp: new Date().toISOString(), payload: { ...payload, customerId: `ACK-${i}` } })),
    });
  const run = (url, body, token) =>
    autocannon({ url, method: "POST", body, headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, connections: 8, duration: 8, maxOverallRequests: 20_000 });
  // Unloaded first: 30 requests one after another, the latency of the path itself.
  const sequential = async (url, body, token) => {
    const times = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json", authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${url}: ${res.status}`);
      times.push(performance.now() - t);
      await sleep(50);
    }
    return times.sort((a, b) => a - b);
  };
  // The baseline runs first, on an idle runtime of its own: our requests leave events being processed
  // behind them, and the runtime's memory grows under HTTP load by itself (README, Performance), so
  // each route's peak RSS is measured in its own fresh runtime.
  const bareBody = bodyFor("bench");
  const stopBareRss = rssSampler(worker);
  const bareSeq = await sequential(`${worker.base}/__bench/bare`, bareBody, "bench");
  const bare = await run(`${worker.base}/__bench/bare`, bareBody, "bench");
  const bareRss = stopBareRss();
  worker.stop();
  worker = await startWorker(receiver.port, archive.port);
  const stopRss = rssSampler(worker);
  const { token, integration } = await tenant("bench-ack", [{ name: "Customers", slug: "customers", type: "inbound", configuration: { ...example("mapping.CustomerChanged"), event_names: ["CustomerChanged"] } }]);
  const body = bodyFor(integration.id);
  const oursSeq = await sequential(`${worker.base}/v3/erp/updates/events`, body, token);
  const ours = await run(`${worker.base}/v3/erp/updates/events`, body, token);
  const peakRss = stopRss();
  if (ours.non2xx || bare.non2xx) throw new Error(`non-2xx answers: ours ${ours.non2xx}, bare ${bare.non2xx}`);
  return {
    figures: [
      { name: "requests/s", value: round(ours.requests.average), baseline: round(bare.requests.average), unit: "req/s" },
      { name: "events/s accepted", value: round(ours.requests.average * 10), unit: "events/s" },
      { name: "latency p50 under load", value: ours.latency.p50, baseline: bare.latency.p50, unit: "ms" },
      { name: "latency p99 under load", value: ours.latency.p99, baseline: bare.latency.p99, unit: "ms" },
      { name: "latency p50 unloaded", value: round(pct(oursSeq, 50)), baseline: round(pct(bareSeq, 50)), unit: "ms" },
      { name: "latency p99 unloaded", value: round(pct(oursSeq, 99)), baseline: round(pct(bareSeq, 99)), unit: "ms" },
    ],
    peak_rss: peakRss,
    checks: {
      requests: ours.requests.total,
      all_2xx: true,
      bare_route_runtime_rss_mb: round(bareRss.runtime / 2 ** 20),
      bare_route_dev_proxy_rss_mb: round(bareRss.proxy / 2 ** 20),
      load: "autocannon, 8 connections, 8 s (at most 20,000 requests) per route; unloaded: 30 sequential requests",
      baseline: "POST /__bench/bare in the same Worker, in a fresh runtime of its own before ours: reads and parses the same body, answers 200",
    },
  };
}

async function endToEnd() {
  const ENTITIES = 1000;
  const UPDATES = 10;
  const GROUPS = 20;
  const { token, integration } = await tenant("bench-e2e", [{ name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping }]);
  const t0 = Date.now();
  const events = [];
  for (let u = 0; u < UPDATES; u++) {
    for (let e = 0; e < ENTITIES; e++) {
      // One entity always goes to the same group, so its updates stay ordered.
      events.push({ use_case_slug: "contacts", group_id: `g${e % GROUPS}`, timestamp: new Date(t0 + u * 1000).toISOString(), payload: { id: `E2E-${e}`, name: `v${u}` } });
    }
  }
  const started = performance.now();
  for (let i = 0; i < events.length; i += 400) {
    await Promise.all([0, 100, 200, 300].filter((o) => i + o < events.length).map((o) => postEvents(token, integration.id, events.slice(i + o, i + o + 100))));
  }
  const posted = performance.now();
  let rows;
  for (;;) {
    const stats = await call("GET", `/v1/integrations/${integration.id}/monitoring/stats?window=1h`, { token });
    const done = stats.counts.filter((c) => c.status === "done").reduce((a, c) => a + c.count, 0);
    const failed = stats.counts.filter((c) => ["error", "partial"].includes(c.status)).reduce((a, c) => a + c.count, 0);
    if (failed) throw new Error(`${failed} events failed`);
    if (done === events.length) break;
    if (performance.now() - started > 400_000) throw new Error(`only ${done} of ${events.length} events done after 400 s`);
    await sleep(1000);
  }
  const finished = performance.now();
  // Every entity queryable with its final state.
  let checked = 0;
  let cursor;
  do {
    const page = await call("GET", `/v1/entities/contact?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token });
    for (const c of page.entities) {
      if (c.attributes.full_name !== `v${UPDATES - 1}` || c.version !== UPDATES) throw new Error(`wrong final state: ${JSON.stringify(c)}`);
      checked++;
    }
    cursor = page.next_cursor;
  } while (cursor);
  if (checked !== ENTITIES) throw new Error(`${checked} entities instead of ${ENTITIES}`);
  rows = await allEvents(token, integration.id, { direction: "inbound" });
  const latency = rows.map((r) => Date.parse(r.completed_at) - Date.parse(r.received_at)).sort((a, b) => a - b);
  const processing = rows.map((r) => r.processing_duration_ms).sort((a, b) => a - b);
  return {
    figures: [
      { name: "events/s applied", value: round(events.length / ((finished - started) / 1000)), unit: "events/s" },
      { name: "receipt-to-applied p50", value: pct(latency, 50), unit: "ms" },
      { name: "receipt-to-applied p99", value: pct(latency, 99), unit: "ms" },
      { name: "processing per event p50", value: pct(processing, 50), unit: "ms" },
      { name: "processing per event p99", value: pct(processing, 99), unit: "ms" },
    ],
    checks: { events: events.length, entities_verified: checked, final_state: "every contact has its last update and version 10", posting_s: round((posted - started) / 1000, 2), total_s: round((finished - started) / 1000, 2) },
  };
}

/** Counts of an integration's inbound events by status (monitoring stats over the last hour). */
async function inboundCounts(token, integrationId) {
  const stats = await call("GET", `/v1/integrations/${integrationId}/monitoring/stats?window=1h`, { token });
  const counts = {};
  for (const c of stats.counts.filter((c) => c.direction === "inbound")) counts[c.status] = (counts[c.status] ?? 0) + c.count;
  return counts;
}

async function ingestBurst() {
  const EVENTS = Number(process.env.BURST_EVENTS ?? 100_000);
  const PER_REQUEST = 100;
  const CONNECTIONS = 8;
  const ENTITIES = 1000;
  const GROUPS = 100;
  const { token, integration } = await tenant("bench-burst", [{ name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping }]);
  const t0 = Date.now();
  const request = (r) =>
    Array.from({ length: PER_REQUEST }, (_, i) => {
      const n = r * PER_REQUEST + i;
      const e = n % ENTITIES;
      return { use_case_slug: "contacts", group_id: `g${e % GROUPS}`, timestamp: new Date(t0 + Math.floor(n / ENTITIES) * 1000).toISOString(), payload: { id: `BURST-${e}`, name: `v${Math.floor(n / ENTITIES)}` } };
    });
  const started = performance.now();
  let next = 0;
  let accepted = 0;
  // Requests go out in order per entity: request r holds update floor(n / ENTITIES) of each of its entities, and a
  // connection takes the next request only after its previous one was answered, so updates of one entity
  // can arrive out of order only across connections (the stale check then keeps the newest).
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      for (let r = next++; r < EVENTS / PER_REQUEST; r = next++) {
        const results = await postEvents(token, integration.id, request(r));
        accepted += results.length;
      }
    }),
  );
  const posted = performance.now();
  if (accepted !== EVENTS) throw new Error(`${accepted} of ${EVENTS} events accepted`);
  let counts;
  for (;;) {
    counts = await inboundCounts(token, integration.id);
    const finished = Object.entries(counts).filter(([s]) => !["accepted", "processing"].includes(s)).reduce((a, [, n]) => a + n, 0);
    if (finished === EVENTS) break;
    if (performance.now() - started > 900_000) throw new Error(`only ${finished} of ${EVENTS} events finished after 900 s: ${JSON.stringify(counts)}`);
    await sleep(1000);
  }
  const drained = performance.now();
  if (counts.done !== EVENTS) throw new Error(`not every event applied: ${JSON.stringify(counts)}`);
  const last = Math.floor((EVENTS - 1) / ENTITIES);
  let checked = 0;
  let cursor;
  do {
    const page = await call("GET", `/v1/entities/contact?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token });
    for (const c of page.entities) {
      if (c.attributes.full_name !== `v${last}`) throw new Error(`wrong final state: ${JSON.stringify(c)}`);
      checked++;
    }
    cursor = page.next_cursor;
  } while (cursor);
  if (checked !== ENTITIES) throw new Error(`${checked} entities instead of ${ENTITIES}`);
  return {
    figures: [
      { name: "events/s accepted", value: round(EVENTS / ((posted - started) / 1000)), unit: "events/s" },
      { name: "events/s drained (first post to last applied)", value: round(EVENTS / ((drained - started) / 1000)), unit: "events/s" },
    ],
    checks: { events: EVENTS, accepted, done: counts.done, entities_verified: checked, requests: EVENTS / PER_REQUEST, connections: CONNECTIONS, posting_s: round((posted - started) / 1000, 2), total_s: round((drained - started) / 1000, 2) },
  };
}

async function hotEntity() {
  const N = 1000;
  const { token, integration } = await tenant("bench-hot", [{ name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping }]);
  const ts = new Date().toISOString();
  const events = Array.from({ length: N }, (_, i) => ({ use_case_slug: "contacts", group_id: `hot-${i}`, timestamp: ts, payload: { id: "HOT", tag: `t${i}` } }));
  const started = performance.now();
  await Promise.all(Array.from({ length: N / 100 }, (_, i) => postEvents(token, integration.id, events.slice(i * 100, i * 100 + 100))));
  let entity;
  for (;;) {
    entity = (await call("GET", "/v1/entities/contact?external_id=HOT", { token })).entities[0];
    if (entity?.version === N) break;
    if (performance.now() - started > 300_000) throw new Error(`hot entity at version ${entity?.version} after 300 s`);
    await sleep(100);
  }
  const elapsed = (performance.now() - started) / 1000;
  const tags = new Set(entity.attributes._tags);
  if (tags.size !== N || entity.attributes._tags.length !== N) throw new Error(`expected ${N} distinct tags, got ${entity.attributes._tags.length}`);
  return {
    figures: [{ name: "updates/s to one entity", value: round(N / elapsed), unit: "updates/s" }],
    checks: { concurrent_updates: N, applied_exactly_once: true, version: entity.version },
  };
}

/**
 * Two mappings (the published CustomerChanged, and an S/4HANA business partner with 64 expressions
 * from bench/fixtures) through our engine against three baselines, in one Node process: the engine
 * with compile: false (JSONata's interpreter with our meter), jsonata-js itself (unbounded, no engine
 * features) and a hand-written function. bench/mapping.ts throws when any output differs.
 */
async function mapping() {
  const bundle = path.join(os.tmpdir(), `erp-edge-mapping-bench-${process.pid}.mjs`);
  execFileSync(path.join(root, "node_modules/.bin/esbuild"), [path.join(root, "bench/mapping.ts"), "--bundle", "--platform=node", "--format=esm", `--outfile=${bundle}`, "--log-level=warning"], { stdio: ["ignore", "inherit", "inherit"] });
  let out;
  try {
    // stderr passes through: a difference in outputs fails with its assertion message.
    const env = { ...process.env, EXAMPLES_DIR: examplesDir, FIXTURES_DIR: path.join(root, "bench/fixtures") };
    out = execFileSync(process.execPath, [bundle], { env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  } finally {
    rmSync(bundle, { force: true });
  }
  const r = JSON.parse(out.trim().split("\n").pop());
  const TARGETS = { jsonata_js: 20, hand_written: 0.2 };
  const figures = [];
  const checks = {};
  for (const m of r.mappings) {
    const equal = m.equal_output;
    if (!equal.hand_written || !equal.interpreted || !equal.jsonata_js_attributes) throw new Error(`${m.mapping}: outputs differ ${JSON.stringify(equal)}`);
    const label = `${m.mapping} (${m.expressions} expressions) evals/s`;
    figures.push(
      { name: `${label}, vs jsonata-js`, value: round(m.ours), baseline: round(m.jsonata_js), unit: "evals/s" },
      { name: `${label}, vs hand-written`, value: round(m.ours), baseline: round(m.hand_written), unit: "evals/s" },
      { name: `${label}, vs interpreted`, value: round(m.ours), baseline: round(m.interpreted), unit: "evals/s" },
    );
    checks[m.mapping] = {
      expressions: m.expressions,
      timed_payload: m.timed_payload,
      same_entity_updates_as_hand_written: equal.hand_written,
      same_result_compiled_and_interpreted: equal.interpreted,
      same_attributes_as_jsonata_js: equal.jsonata_js_attributes,
      payloads_checked: equal.payloads,
      targets: Object.fromEntries(Object.entries(TARGETS).map(([b, min]) => [`vs_${b}`, { ratio: round(m.ours / m[b], 3), at_least: min, met: m.ours / m[b] >= min }])),
    };
  }
  checks.baselines =
    "interpreted: runMapping with compile: false (JSONata's interpreter and our per-node meter); jsonata_js: the jsonata package itself, every text compiled once with jsonata(), evaluated unbounded over the inputs the engine gives it, attributes built minimally; hand_written: TypeScript producing the same MappingResult (bench/mapping.ts)";
  checks.timing = `median of ${r.rounds} alternating rounds of ${r.round_ms} ms each, after a warm-up, one Node process`;
  return { figures, checks, peak_rss: { runtime: r.rss_bytes } };
}

async function outbound(receiver) {
  const N = 1000;
  const key = `bench${Date.now()}`;
  const url = `http://127.0.0.1:${receiver.port}/hook/${key}`;
  const { token, integration } = await tenant("bench-out", [
    { name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping },
    {
      name: "to ERP", slug: "to-erp", type: "outbound",
      configuration: { event_catalog_event: "contact.created", mappings: [{ id: "main", name: "ERP", jsonata_expression: '{ "id": entity.unique_ids.external_id, "t": _event_time }', delivery: { type: "webhook", url } }] },
    },
  ]);
  const outboundId = integration.use_cases.find((u) => u.slug === "to-erp").id;
  const { secret } = await call("POST", `/v1/integrations/${integration.id}/outbound/endpoints/${outboundId}/main/secret`, { token });
  const ts = new Date().toISOString();
  const events = Array.from({ length: N }, (_, i) => ({ use_case_slug: "contacts", group_id: `g${i % 20}`, timestamp: ts, payload: { id: `OUT-${i}`, name: "x" } }));
  const started = performance.now();
  await Promise.all(Array.from({ length: N / 100 }, (_, i) => postEvents(token, integration.id, events.slice(i * 100, i * 100 + 100))));
  let got = [];
  for (;;) {
    got = (await (await fetch(`http://127.0.0.1:${receiver.port}/_requests/${key}`)).json()).filter((r) => r.status === 200);
    if (got.length >= N) break;
    if (performance.now() - started > 300_000) throw new Error(`${got.length} of ${N} delivered after 300 s`);
    await sleep(200);
  }
  const elapsed = (performance.now() - started) / 1000;
  const ids = new Set(got.map((r) => JSON.parse(r.body).id));
  if (ids.size !== N) throw new Error(`${ids.size} distinct deliveries for ${N} changes`);
  const wh = new Webhook(secret);
  for (const r of got) wh.verify(r.body, { "webhook-id": r.headers["webhook-id"], "webhook-timestamp": r.headers["webhook-timestamp"], "webhook-signature": r.headers["webhook-signature"] });
  const latency = got.map((r) => r.at - Date.parse(JSON.parse(r.body).t)).sort((a, b) => a - b);
  return {
    figures: [
      { name: "events/s delivered (signed)", value: round(N / elapsed), unit: "events/s" },
      { name: "change-to-delivery p50", value: pct(latency, 50), unit: "ms" },
      { name: "change-to-delivery p99", value: pct(latency, 99), unit: "ms" },
    ],
    checks: { deliveries: got.length, distinct: ids.size, signatures_verified_with: "standardwebhooks" },
  };
}

/**
 * The file proxy against the fake archive on loopback: MB/s of a 50 MB download through the proxy
 * (signed URL, two-step OAuth configuration) against fetching the same file from the archive
 * directly, and workerd's peak RSS while the proxy streams it (against its RSS just before).
 */
async function fileProxy(archive) {
  const ARCHIVE = `http://127.0.0.1:${archive.port}`;
  const SIZE = 50 * 1024 * 1024;
  const configuration = {
    auth: { type: "oauth2_client_credentials", token_url: "{{{env.ARCHIVE_URL}}}/oauth/token", client_id: "{{env.ARCHIVE_CLIENT}}", client_secret: "{{env.ARCHIVE_SECRET}}" },
    params: [{ name: "document_id", required: true }],
    steps: [
      { url: "{{{env.ARCHIVE_URL}}}/api/documents/{{params.document_id}}", method: "GET", response_type: "json" },
      { url: "{{{env.ARCHIVE_URL}}}{{{steps.0.body.download_path}}}", method: "GET", response_type: "binary" },
    ],
    response: { body: "steps[1].body", encoding: "binary", filename: "steps[0].body.filename", content_type: "steps[0].body.content_type" },
    allowed_hosts: [`127.0.0.1:${archive.port}`],
  };
  const env = [["ARCHIVE_URL", "String"], ["ARCHIVE_CLIENT", "String"], ["ARCHIVE_SECRET", "SecretString"]];
  const t = await call("POST", "/v1/tenants", { token: ADMIN, json: { name: "bench-files" } });
  const { token } = await call("POST", `/v1/tenants/${t.id}/tokens`, { token: ADMIN, json: { name: "bench", scopes: ["integrations:write", "files:read", "secrets:use"] } });
  const integration = await call("POST", "/v2/integrations", {
    token,
    json: { name: "Archive", environment_config: env.map(([key, type]) => ({ key, label: key, type })), use_cases: [{ name: "Invoices", slug: "invoices", type: "file_proxy", configuration }] },
  });
  await call("PUT", `/v1/integrations/${integration.id}/environment`, { token, json: { ARCHIVE_URL: ARCHIVE, ARCHIVE_CLIENT: "edge", ARCHIVE_SECRET: "s3cret" } });
  const doc = `bench-size-${SIZE}`;
  const { url } = await call("POST", "/v1/files/sign", { token, json: { integration_id: integration.id, use_case_slug: "invoices", params: { document_id: doc } } });
  const expected = (() => {
    const hash = createHash("sha256");
    for (let at = 0; at < SIZE; at += 1 << 20) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, SIZE - at));
      for (let i = 0; i < chunk.length; i++) chunk[i] = byteAt(at + i);
      hash.update(chunk);
    }
    return hash.digest("hex");
  })();
  // Reads a download to the end, digesting it; the bytes are checked, never kept.
  const timed = async (target, headers = {}) => {
    const t0 = performance.now();
    const res = await fetch(target, { headers });
    if (res.status !== 200) throw new Error(`${target}: ${res.status} ${await res.text()}`);
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of res.body) (bytes += chunk.byteLength), hash.update(chunk);
    const seconds = (performance.now() - t0) / 1000;
    if (bytes !== SIZE || hash.digest("hex") !== expected) throw new Error(`${target}: wrong bytes (${bytes})`);
    return SIZE / 2 ** 20 / seconds;
  };
  const { access_token } = await (await fetch(`${ARCHIVE}/oauth/token`, { method: "POST", body: new URLSearchParams({ grant_type: "client_credentials", client_id: "edge", client_secret: "s3cret" }) })).json();
  const direct = `${ARCHIVE}/files/${doc}`;
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const directRates = [];
  const proxyRates = [];
  await timed(url); // warm: the token, the configuration, the isolate
  let idleRss = 0;
  let peakRss = 0;
  for (let i = 0; i < 3; i++) {
    directRates.push(await timed(direct, { authorization: `Bearer ${access_token}` }));
    const stop = rssSampler(worker);
    idleRss = Math.max(idleRss, stop().runtime);
    const during = rssSampler(worker);
    proxyRates.push(await timed(url));
    peakRss = Math.max(peakRss, during().runtime);
  }
  return {
    figures: [
      { name: "50 MB download, MB/s (median of 3)", value: round(median(proxyRates)), baseline: round(median(directRates)), unit: "MB/s" },
      { name: "workerd RSS: peak during the download vs just before", value: round(peakRss / 2 ** 20), baseline: round(idleRss / 2 ** 20), unit: "MB" },
    ],
    checks: {
      downloads: 4,
      bytes_and_sha256_checked: true,
      baseline: "MB/s: the same file fetched from the fake archive directly (Node fetch, Bearer token); RSS: workerd just before each proxied download",
    },
  };
}

// ---- run --------------------------------------------------------------------------------------

const receiver = await startReceiver(0);
const archive = await startFakeArchive();
const results = {};
try {
  for (const name of scenarios) {
    // Each scenario gets a fresh runtime with fresh local state: its peak RSS and its figures are its
    // own, not what the scenarios before it left behind (queued work, caches, a grown heap).
    if (name !== "mapping") worker = await startWorker(receiver.port, archive.port);
    process.stdout.write(`running ${name}… `);
    const stopRss = name === "mapping" ? () => null : rssSampler(worker);
    const t = performance.now();
    const fn = { "inbound-ack": inboundAck, "end-to-end": endToEnd, "hot-entity": hotEntity, "ingest-burst": ingestBurst, mapping, outbound: () => outbound(receiver), "file-proxy": () => fileProxy(archive) }[name];
    const r = await fn();
    const sampled = stopRss();
    // A scenario that restarts the runtime (inbound-ack) measures its own peak.
    const peak = r.peak_rss ?? sampled;
    results[name] = {
      figures: r.figures.map((f) => ({ ...f, ...(f.baseline !== undefined && { ratio: round(f.value / f.baseline, 3) }) })),
      checks: r.checks,
      peak_rss_mb: round(peak.runtime / 2 ** 20),
      ...(peak.proxy !== undefined && { dev_proxy_peak_rss_mb: round(peak.proxy / 2 ** 20) }),
      rss_of: name === "mapping" ? "the Node process running all four (ours, interpreted, jsonata-js, hand-written)" : "the workerd process running erp-edge (wrangler dev's proxy, a second workerd in front of it, is dev_proxy_peak_rss_mb)",
      seconds: round((performance.now() - t) / 1000, 1),
      date: new Date().toISOString(),
    };
    console.log(`done in ${results[name].seconds} s`);
    worker?.stop();
    worker = undefined;
  }
} catch (err) {
  if (worker) console.error(`\nfailed; the Worker's log is ${worker.logPath}`);
  throw err;
} finally {
  worker?.stop();
  receiver.server.close();
  archive.server.close();
}

const pkg = (name) => JSON.parse(readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")).version;
// A run of some scenarios keeps the others' latest figures (each scenario carries its own date).
const previous = (() => {
  try {
    const old = JSON.parse(readFileSync(path.join(root, "bench/results.json"), "utf8"));
    return Object.fromEntries(Object.entries(old.scenarios ?? {}).map(([name, r]) => [name, { date: old.date, ...r }]));
  } catch {
    return {};
  }
})();
const report = {
  date: new Date().toISOString(),
  command: `npm run bench${selected.length ? ` -- ${selected.join(" ")}` : ""}`,
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memory_gb: round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}` },
  node: process.versions.node,
  workerd: pkg("workerd"),
  wrangler: pkg("wrangler"),
  scenarios: { ...(selected.length ? previous : {}), ...results },
};
writeFileSync(path.join(root, "bench/results.json"), JSON.stringify(report, null, 2) + "\n");

console.log(`\n${report.date}  ${report.machine.cpu} × ${report.machine.cores}, node ${report.node}, workerd ${report.workerd}\n`);
console.log("| scenario | figure | ours | baseline | ours/baseline | peak RSS | dev proxy RSS |");
console.log("|---|---|---|---|---|---|---|");
for (const [name, r] of Object.entries(results)) {
  r.figures.forEach((f, i) =>
    console.log(`| ${i ? "" : name} | ${f.name} | ${f.value} ${f.unit} | ${f.baseline ?? "—"}${f.baseline !== undefined ? ` ${f.unit}` : ""} | ${f.ratio ?? "—"} | ${i ? "" : `${r.peak_rss_mb} MB`} | ${i || r.dev_proxy_peak_rss_mb === undefined ? "" : `${r.dev_proxy_peak_rss_mb} MB`} |`),
  );
}
console.log("\nwritten to bench/results.json");
