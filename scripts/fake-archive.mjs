// A fake ERP archive on loopback for the file-proxy tests and the README walkthrough (issue #13): an
// OAuth2 client-credentials token endpoint, a JSON lookup step and a binary download with Range.
//   POST /oauth/token            grant_type=client_credentials, client id/secret in Basic auth or the form
//                                -> { access_token, token_type: "Bearer", expires_in }
//   GET  /api/documents/<id>     Bearer token -> { document_id, download_path, filename, content_type, size }
//   GET  /files/<id>             Bearer token -> the bytes (deterministic, `size` of them), Range -> 206
//   GET  /_stats                 { tokens_issued, downloads }
// Documents: any id; its size is the number after "size-" in the id (e.g. "inv-size-52428800"), 1 MiB otherwise.
import { createServer } from "node:http";

/** Byte i of every document: a pattern a test can recompute (and digest) without storing the file. */
export const byteAt = (i) => (i * 31 + 7) & 0xff;

const sizeOf = (id) => {
  const match = /size-(\d{1,10})/.exec(id);
  return match ? Number(match[1]) : 1024 * 1024;
};

export function startFakeArchive({ port = 0, clientId = "edge", clientSecret = "s3cret", tokenTtlSeconds = 3600 } = {}) {
  const tokens = new Map();
  const stats = { tokens_issued: 0, downloads: 0 };
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://archive");
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const json = (status, body, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === "/_stats") return json(200, stats);
      if (req.method === "POST" && url.pathname === "/oauth/token") {
        const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
        let [id, secret] = [form.get("client_id"), form.get("client_secret")];
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "");
        if (basic) [id, secret] = Buffer.from(basic[1], "base64").toString("utf8").split(":");
        if (form.get("grant_type") !== "client_credentials" || id !== clientId || secret !== clientSecret) return json(401, { error: "invalid_client" });
        const token = `tok-${++stats.tokens_issued}-${Math.random().toString(36).slice(2)}`;
        tokens.set(token, Date.now() + tokenTtlSeconds * 1000);
        return json(200, { access_token: token, token_type: "Bearer", expires_in: tokenTtlSeconds });
      }
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
      if (!bearer || !(tokens.get(bearer) > Date.now())) return json(401, { error: "invalid_token" });
      const doc = /^\/api\/documents\/([^/]+)$/.exec(url.pathname);
      if (doc) {
        const id = decodeURIComponent(doc[1]);
        if (id.startsWith("missing")) return json(404, { error: "not_found" });
        return json(200, { document_id: id, download_path: `/files/${encodeURIComponent(id)}`, filename: `Rechnung ${id}.pdf`, content_type: "application/pdf", size: sizeOf(id) });
      }
      const file = /^\/files\/([^/]+)$/.exec(url.pathname);
      if (!file) return json(404, { error: "not_found" });
      const size = sizeOf(decodeURIComponent(file[1]));
      let [start, end] = [0, size - 1];
      const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
      if (range && (range[1] || range[2])) {
        start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
        end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
        if (start > end || start >= size) {
          res.writeHead(416, { "content-range": `bytes */${size}` });
          return res.end();
        }
      }
      stats.downloads++;
      res.writeHead(range ? 206 : 200, {
        "content-type": "application/pdf",
        "content-length": String(end - start + 1),
        "accept-ranges": "bytes",
        etag: `"${file[1]}-${size}"`,
        ...(range && { "content-range": `bytes ${start}-${end}/${size}` }),
      });
      // Streamed in 64 KiB chunks with backpressure, never built whole.
      let at = start;
      const pump = () => {
        while (at <= end) {
          const n = Math.min(65536, end - at + 1);
          const chunk = Buffer.allocUnsafe(n);
          for (let i = 0; i < n; i++) chunk[i] = byteAt(at + i);
          at += n;
          if (!res.write(chunk)) return res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, port: server.address().port, stats })));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startFakeArchive({ port: Number(process.argv[2] ?? 9100) });
  console.log(`fake archive on http://127.0.0.1:${port} (client id "edge", secret "s3cret")`);
}
