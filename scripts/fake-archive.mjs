// A fake ERP archive on loopback for the file-proxy tests and the README walkthrough (issue #13): an
// OAuth2 client-credentials token endpoint, a JSON lookup step and a binary download with Range.
//   POST /oauth/token[?ttl=N]    grant_type=client_credentials, client id/secret in Basic auth or the form
//                                -> { access_token, token_type: "Bearer", expires_in } (N seconds, else tokenTtlSeconds)
//   GET  /api/documents/<id>     Bearer token -> { document_id, download_path, filename, content_type, size }
//   GET  /api/documents/<id>/content  Bearer token -> { filename, content_base64 } (the bytes inside JSON)
//   GET  /files/<id>             Bearer token -> the bytes (deterministic, `size` of them), Range -> 206
//   GET  /redirect?to=<url>      302 to <url>
//   GET  /sap/opu/odata/sap/API_CV_ATTACHMENT_SRV/GetAllOriginals?BusinessObjectTypeName='<type>'&LinkedSAPObjectKey='<key>'&$format=json
//                                Bearer token -> the ArchiveLink originals of an SAP object, OData v2:
//                                { d: { results: [{ __metadata: { media_src }, ArchiveDocumentID, FileName, MimeType, FileSize, … }] } }
//                                (one PDF "Rechnung <key without leading zeros>"; keys starting "missing" are 404)
//   GET  <media_src>             .../AttachmentContentSet(…,ArchiveDocumentID='…',LinkedSAPObjectKey='<key>',…)/$value: that PDF, Range -> 206
//   GET  /_stats[?client=<id>]   { tokens_issued, downloads } (of one client id when asked)
// Documents: any id; its size is the number after "size-" in the id (e.g. "doc-size-52428800"), 1 MiB
// otherwise, the bytes a pattern (byteAt). Ids starting "INV-" are a real one-page PDF instead. Ids starting "missing" are 404, "slow" answer after 5 s, "echo" fail with a 500 whose body
// repeats the request's Authorization header (to prove it is never passed on). Client ids are `clientId`
// or start with `${clientId}-` (a test's own client, counted apart), all with `clientSecret`.
import { createHash } from "node:crypto";
import { createServer } from "node:http";

/** Byte i of every document: a pattern a test can recompute (and digest) without storing the file. */
export const byteAt = (i) => (i * 31 + 7) & 0xff;

/**
 * A real one-page PDF saying "Rechnung <id>" (for ids starting "INV-", so the README walkthrough's
 * link shows a document in a browser); its xref offsets are computed, so viewers open it cleanly.
 */
export function invoicePdf(id) {
  const text = `Rechnung ${id}`.replace(/[()\\]/g, "").replace(/[^\x20-\x7e]/g, "?");
  const stream = `BT /F1 24 Tf 72 720 Td (${text}) Tj ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets = objects.map((body, i) => {
    const at = out.length;
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return at;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

const isInvoice = (id) => id.startsWith("INV-");

// SAP's attachment service (API_CV_ATTACHMENT_SRV) as the SAP blueprint's file proxy reads it (issue #14).
const ATTACHMENTS = "/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV";
const odataKey = (value) => (typeof value === "string" ? /^'((?:[^']|'')*)'$/.exec(value)?.[1]?.replaceAll("''", "'") : undefined);
const archiveDocumentId = (key) => createHash("md5").update(`archivelink:${key}`).digest("hex").toUpperCase();
const printDocumentPdf = (key) => invoicePdf(key.replace(/^0+(?=\d)/, ""));

/** The OData v2 answer of GetAllOriginals for one linked SAP object: its one archived PDF. */
function originals(base, type, key) {
  const id = archiveDocumentId(key);
  const entityKey = `DocumentInfoRecordDocType='',DocumentInfoRecordDocNumber='',DocumentInfoRecordDocVersion='',DocumentInfoRecordDocPart='',LogicalDocument='${id}',ArchiveDocumentID='${id}',LinkedSAPObjectKey='${key}',BusinessObjectTypeName='${type}'`;
  const uri = `${base}${ATTACHMENTS}/AttachmentContentSet(${entityKey})`;
  const filename = `Rechnung ${key.replace(/^0+(?=\d)/, "")}.pdf`;
  return {
    d: {
      results: [{
        __metadata: { id: uri, uri, type: "API_CV_ATTACHMENT_SRV.AttachmentContent", content_type: "application/pdf", media_src: `${uri}/$value` },
        DocumentInfoRecordDocType: "", DocumentInfoRecordDocNumber: "", DocumentInfoRecordDocVersion: "", DocumentInfoRecordDocPart: "",
        LogicalDocument: id, ArchiveDocumentID: id, LinkedSAPObjectKey: key, BusinessObjectTypeName: type, SemanticObject: "",
        WorkstationApplication: "PDF", FileSize: String(printDocumentPdf(key).length), FileName: filename, DocumentURL: "", MimeType: "application/pdf",
        Content: "", CreatedByUser: "BATCH_PRINT", CreatedByUserFullName: "Print workbench", CreationDateTime: "/Date(1795852800000+0000)/",
        BusinessObjectType: type, LastChangedByUser: "", ChangedDateTime: null, StorageCategory: "SOMU", ArchiveLinkRepository: "Z1",
      }],
    },
  };
}

const sizeOf = (id) => {
  if (isInvoice(id)) return invoicePdf(id).length;
  const match = /size-(\d{1,10})/.exec(id);
  return match ? Number(match[1]) : 1024 * 1024;
};

export function startFakeArchive({ port = 0, clientId = "edge", clientSecret = "s3cret", tokenTtlSeconds = 3600 } = {}) {
  const tokens = new Map();
  const stats = { tokens_issued: 0, downloads: 0 };
  /** Per client id: { tokens_issued, downloads }. */
  const clients = new Map();
  const clientStats = (id) => clients.get(id) ?? clients.set(id, { tokens_issued: 0, downloads: 0 }).get(id);
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://archive");
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const json = (status, body, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(body));
      };
      /**
       * Starts a download of a document of `size` bytes: the whole, or the Range asked (206), counted
       * in the stats; answers 416 itself (and gives null) for a range outside the document.
       */
      const served = (size, extra = {}) => {
        let [start, end] = [0, size - 1];
        const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
        const ranged = Boolean(range && (range[1] || range[2]));
        if (ranged) {
          start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
          end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
          if (start > end || start >= size) {
            res.writeHead(416, { "content-range": `bytes */${size}` });
            res.end();
            return null;
          }
        }
        stats.downloads++;
        clientStats(session.client).downloads++;
        res.writeHead(ranged ? 206 : 200, {
          "content-type": "application/pdf",
          "content-length": String(end - start + 1),
          "accept-ranges": "bytes",
          ...extra,
          ...(ranged && { "content-range": `bytes ${start}-${end}/${size}` }),
        });
        return { start, end };
      };
      if (url.pathname === "/_stats") return json(200, url.searchParams.has("client") ? clientStats(url.searchParams.get("client")) : stats);
      if (url.pathname === "/redirect") {
        res.writeHead(302, { location: url.searchParams.get("to") ?? "/" });
        return res.end();
      }
      if (req.method === "POST" && url.pathname === "/oauth/token") {
        const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
        let [id, secret] = [form.get("client_id"), form.get("client_secret")];
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "");
        if (basic) [id, secret] = Buffer.from(basic[1], "base64").toString("utf8").split(":");
        const knownClient = id === clientId || (typeof id === "string" && id.startsWith(`${clientId}-`));
        if (form.get("grant_type") !== "client_credentials" || !knownClient || secret !== clientSecret) return json(401, { error: "invalid_client" });
        const ttl = Number(url.searchParams.get("ttl") ?? tokenTtlSeconds);
        const token = `tok-${++stats.tokens_issued}-${Math.random().toString(36).slice(2)}`;
        clientStats(id).tokens_issued++;
        tokens.set(token, { until: Date.now() + ttl * 1000, client: id });
        return json(200, { access_token: token, token_type: "Bearer", expires_in: ttl });
      }
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
      const session = bearer && tokens.get(bearer);
      if (!session || !(session.until > Date.now())) return json(401, { error: "invalid_token" });
      if (url.pathname.startsWith(`${ATTACHMENTS}/`)) {
        const odataError = (status, value) => json(status, { error: { code: "/IWBEP/CM_MGW_RT/020", message: { lang: "en", value } } });
        if (url.pathname === `${ATTACHMENTS}/GetAllOriginals`) {
          const type = odataKey(url.searchParams.get("BusinessObjectTypeName"));
          const key = odataKey(url.searchParams.get("LinkedSAPObjectKey"));
          if (!type || !key) return odataError(400, "BusinessObjectTypeName and LinkedSAPObjectKey are required, quoted: '…'");
          if (key.startsWith("missing")) return odataError(404, `No originals for ${type} ${key}`);
          return json(200, originals(`http://${req.headers.host}`, type, key));
        }
        const content = /^\/AttachmentContentSet\((.*)\)\/\$value$/.exec(url.pathname.slice(ATTACHMENTS.length));
        const key = content && /LinkedSAPObjectKey='([^']*)'/.exec(decodeURIComponent(content[1]))?.[1];
        if (!key || key.startsWith("missing")) return odataError(404, "Resource not found for segment 'AttachmentContentSet'");
        const bytes = printDocumentPdf(key);
        const slice = served(bytes.length);
        return slice && res.end(bytes.subarray(slice.start, slice.end + 1));
      }
      const doc = /^\/api\/documents\/([^/]+)(\/content)?$/.exec(url.pathname);
      const id = decodeURIComponent((doc ?? /^\/files\/([^/]+)$/.exec(url.pathname))?.[1] ?? "");
      if (id.startsWith("missing")) return json(404, { error: "not_found" });
      if (id.startsWith("echo")) return json(500, { error: "internal", received_authorization: req.headers.authorization });
      if (id.startsWith("slow")) return setTimeout(() => json(200, { document_id: id }), 5000);
      if (doc && doc[2]) {
        const bytes = Buffer.alloc(Math.min(sizeOf(id), 1024 * 1024));
        for (let i = 0; i < bytes.length; i++) bytes[i] = byteAt(i);
        return json(200, { filename: `Zählerfoto ${id}.jpg`, content_base64: bytes.toString("base64") });
      }
      if (doc) return json(200, { document_id: id, download_path: `/files/${encodeURIComponent(id)}`, filename: `Rechnung ${id}.pdf`, content_type: "application/pdf", size: sizeOf(id) });
      const file = /^\/files\/([^/]+)$/.exec(url.pathname);
      if (!file) return json(404, { error: "not_found" });
      const slice = served(sizeOf(id), { etag: `"${file[1]}-${sizeOf(id)}"` });
      if (!slice) return;
      const { start, end } = slice;
      if (isInvoice(id)) return res.end(invoicePdf(id).subarray(start, end + 1));
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
