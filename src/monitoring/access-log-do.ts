// AccessLog: one Durable Object per integration recording the API calls made against it (epilot's
// access logs), so a request costs one small insert here and never a D1 write. Rows carry the
// caller's tenant (org_id) and reads filter on it: a caller naming another tenant's integration id
// writes rows its owner never sees. Kept as long as the integration's events (the retention run
// applies its retention_days), and never longer than MAX_KEPT_DAYS: the object expires its own rows
// daily, so the log of an integration that is gone (or of an id that never was one) empties itself.
import { DurableObject } from "cloudflare:workers";
import { emptyStorage } from "../platform/object-storage";
import type { AccessLogEntry, AccessLogQuery } from "./schema";

export const ACCESS_LOG_SCHEMA = `
  CREATE TABLE IF NOT EXISTS access_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, org_id TEXT NOT NULL, token_id TEXT, service TEXT NOT NULL,
    method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, latency_ms INTEGER NOT NULL, response_length INTEGER,
    origin TEXT, source_ip TEXT, at TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS access_log_org_at ON access_log(org_id, at, request_id);
  CREATE INDEX IF NOT EXISTS access_log_at ON access_log(at);`;

/** One recorded request (AccessLogEntry's fields as the middleware has them). */
export type AccessRecord = Omit<AccessLogEntry, "response_length" | "token_id" | "origin" | "source_ip"> & {
  response_length: number | null;
  token_id: string | null;
  origin: string | null;
  source_ip: string | null;
};

interface Row extends Record<string, SqlStorageValue> {
  request_id: string;
  org_id: string;
  token_id: string | null;
  service: string;
  method: string;
  path: string;
  status: number;
  latency_ms: number;
  response_length: number | null;
  origin: string | null;
  source_ip: string | null;
  at: string;
}

const toEntry = (r: Row): AccessLogEntry => ({
  timestamp: r.at,
  service: r.service,
  request_id: r.request_id,
  method: r.method,
  path: r.path,
  status: r.status,
  response_latency_ms: r.latency_ms,
  org_id: r.org_id,
  ...(r.response_length !== null && { response_length: r.response_length }),
  ...(r.token_id !== null && { token_id: r.token_id }),
  ...(r.origin !== null && { origin: r.origin }),
  ...(r.source_ip !== null && { source_ip: r.source_ip }),
});

/** The longest retention_days an integration may have: no entry is kept longer, whatever happens to its integration. */
export const MAX_KEPT_DAYS = 365;
const DAY_MS = 86_400_000;
/** Rows one alarm deletes; a longer backlog is continued by the next alarm, a minute later. */
const EXPIRE_BATCH = 5000;

/** Escapes LIKE's wildcards so a path filter matches its text literally. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export class AccessLog extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Whether this instance has made sure an expiry alarm is set. */
  private armed = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(ACCESS_LOG_SCHEMA);
  }

  /** Records requests an isolate gathered (access-log.ts): one insert each, committed together. */
  async record(records: AccessRecord[]): Promise<void> {
    for (const r of records) {
      this.sql.exec(
        "INSERT INTO access_log (request_id, org_id, token_id, service, method, path, status, latency_ms, response_length, origin, source_ip, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        r.request_id, r.org_id, r.token_id, r.service, r.method, r.path, r.status, r.response_latency_ms, r.response_length, r.origin, r.source_ip, r.timestamp,
      );
    }
    if (!this.armed) {
      if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + DAY_MS);
      this.armed = true;
    }
  }

  /** Daily: drops entries older than MAX_KEPT_DAYS; re-arms while entries remain. */
  override async alarm(): Promise<void> {
    const deleted = await this.expire(new Date(Date.now() - MAX_KEPT_DAYS * DAY_MS).toISOString(), EXPIRE_BATCH);
    const left = this.sql.exec("SELECT 1 FROM access_log LIMIT 1").toArray().length > 0;
    if (left) await this.ctx.storage.setAlarm(Date.now() + (deleted >= EXPIRE_BATCH ? 60_000 : DAY_MS));
  }

  /** A tenant's entries, newest first, after the cursor (the last entry's time and request id), `limit + 1` of them. */
  async query(orgId: string, q: AccessLogQuery): Promise<AccessLogEntry[]> {
    const where = ["org_id = ?"];
    const params: SqlStorageValue[] = [orgId];
    const add = (clause: string, ...values: SqlStorageValue[]) => (where.push(clause), params.push(...values));
    if (q.token_id !== undefined) add("token_id = ?", q.token_id);
    if (q.service !== undefined) add("service = ?", q.service);
    if (q.method !== undefined) add("method = ?", q.method);
    if (q.path !== undefined) add("path LIKE ? ESCAPE '\\'", `%${likeLiteral(q.path)}%`);
    if (q.status !== undefined) add("status = ?", q.status);
    if (q.from_date !== undefined) add("at >= ?", new Date(q.from_date).toISOString());
    if (q.to_date !== undefined) add("at <= ?", new Date(q.to_date).toISOString());
    if (q.cursor?.timestamp !== undefined) {
      const at = new Date(q.cursor.timestamp).toISOString();
      add("(at < ? OR (at = ? AND request_id < ?))", at, at, q.cursor.request_id ?? "");
    }
    const rows = this.sql.exec<Row>(`SELECT * FROM access_log WHERE ${where.join(" AND ")} ORDER BY at DESC, request_id DESC LIMIT ?`, ...params, q.limit + 1).toArray();
    return rows.map(toEntry);
  }

  /** Retention: deletes at most `limit` of the oldest entries before `before`; answers how many. */
  async expire(before: string, limit: number): Promise<number> {
    return this.sql.exec("DELETE FROM access_log WHERE seq IN (SELECT seq FROM access_log WHERE at < ? ORDER BY at LIMIT ?) RETURNING seq", before, limit).toArray().length;
  }

  /** The integration is gone: its access log goes too. */
  async purge(): Promise<void> {
    await emptyStorage(this.ctx, ACCESS_LOG_SCHEMA);
  }
}
