// A real HTTP webhook receiver on loopback: the outbound tests start it (vitest.config.mts), and
// `node scripts/receiver.mjs [port] [--fail N]` runs it by hand, printing each delivery.
// Each key follows a script of status codes, then answers 200; every request is recorded.
//   POST /_script/<key>  { "responses": [500, 500, { "status": 429, "retry_after": 1 }, 410, { "status": 200, "hold": true },
//                          { "status": 200, "body": { "access_token": "t" } }, { "status": 302, "location": "http://..." }] }
//   POST /hook/<key>     the webhook target
//   GET  /_requests/<key>  the recorded requests [{ at, headers, body, status }]
//   { "status": 200, "stall": true } answers the status with a content-length of 100, sends one byte and
//   stalls until released (then drops the connection);
//   POST /_release/<key> answers the requests held by a `hold` step (recorded at once, answered only now),
//                        so a test can act (e.g. ACK) while the webhook call is still open
import { createServer } from "node:http";

export function startReceiver(port = 0, { failFirst = 0, log = false } = {}) {
  let failuresLeft = failFirst;
  const scripts = new Map();
  const requests = new Map();
  const held = new Map();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const [, kind, key] = req.url.split("/");
      const reply = (status, payload = {}, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(payload));
      };
      if (kind === "_script") {
        scripts.set(key, JSON.parse(body).responses ?? []);
        return reply(204);
      }
      if (kind === "_requests") return reply(200, requests.get(key) ?? []);
      if (kind === "_release") {
        const waiting = held.get(key) ?? [];
        held.delete(key);
        for (const answer of waiting) answer();
        return reply(200, { released: waiting.length });
      }
      if (kind !== "hook") return reply(404);
      const step = (scripts.get(key) ?? []).shift() ?? (failuresLeft-- > 0 ? 500 : 200);
      const { status, retry_after, hold, stall, body: payload, location } = typeof step === "number" ? { status: step } : step;
      const list = requests.get(key) ?? [];
      list.push({ at: Date.now(), headers: req.headers, body, status });
      requests.set(key, list);
      if (log) console.log(`${new Date().toISOString()} ${req.url} -> ${status} webhook-id=${req.headers["webhook-id"]} ${body}`);
      const answer = () => reply(status, payload ?? {}, { ...(retry_after && { "retry-after": String(retry_after) }), ...(location && { location }) });
      if (stall) {
        // The status and a content-length of 100, then one byte, and nothing more until released.
        res.writeHead(status, { "content-type": "application/json", "content-length": "100" });
        res.write("{");
        held.set(key, [...(held.get(key) ?? []), () => res.destroy()]);
      } else if (hold) held.set(key, [...(held.get(key) ?? []), answer]);
      else answer();
    });
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, port: server.address().port })));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] ?? 9000);
  const failAt = process.argv.indexOf("--fail");
  const failFirst = failAt > 0 ? Number(process.argv[failAt + 1]) : 0;
  const { port: bound } = await startReceiver(port, { failFirst, log: true });
  console.log(`receiver on http://127.0.0.1:${bound}/hook/<anything>${failFirst ? `, failing the first ${failFirst} requests with 500` : ""}`);
}
