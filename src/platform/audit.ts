// The audit log: who changed what configuration, and which token was used, when.
import { newId, nowIso } from "./ids";
import { decodeCursor, toPage, type PageQuery } from "./pagination";

export interface AuditEntry {
  tenantId: string | null;
  actor: string;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
}

const COLUMNS = "id, tenant_id, actor, action, target, details, at";
const values = (e: AuditEntry) => [newId(), e.tenantId, e.actor, e.action, e.target ?? null, JSON.stringify(e.details ?? {}), nowIso()];

/** A statement to run in the same D1 batch as the change it records. */
export function auditStatement(db: D1Database, e: AuditEntry): D1PreparedStatement {
  return db.prepare(`INSERT INTO audit_log (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`).bind(...values(e));
}

/**
 * The same entry, written only if `exists` (an SQL query) finds a row at its point in the batch: for
 * a change that may turn out to touch nothing (an unknown id), so that nothing is recorded then.
 *
 * @example auditStatementIf(db, entry, "SELECT 1 FROM api_tokens WHERE id = ? AND tenant_id = ?", [tokenId, tenantId])
 */
export function auditStatementIf(db: D1Database, e: AuditEntry, exists: string, params: unknown[]): D1PreparedStatement {
  return db.prepare(`INSERT INTO audit_log (${COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (${exists})`).bind(...values(e), ...params);
}

/** A page of a tenant's audit log, newest first: without and with a cursor (index audit_log_tenant). */
export const AUDIT_LOG_SQL = {
  first: "SELECT * FROM audit_log WHERE tenant_id = ? ORDER BY id DESC LIMIT ?",
  after: "SELECT * FROM audit_log WHERE tenant_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
};

export async function listAuditLog(db: D1Database, tenantId: string, page: PageQuery) {
  const before = decodeCursor(page.cursor);
  const statement = before ? db.prepare(AUDIT_LOG_SQL.after).bind(tenantId, before, page.limit + 1) : db.prepare(AUDIT_LOG_SQL.first).bind(tenantId, page.limit + 1);
  const { results } = await statement.all<{ id: string; actor: string; action: string; target: string | null; details: string; at: string }>();
  const { items, next_cursor } = toPage(results, page.limit, (r) => ({ id: r.id, actor: r.actor, action: r.action, target: r.target, details: JSON.parse(r.details), at: r.at }));
  return { entries: items, next_cursor };
}

/** Retention: the oldest entries written before ?, at most ? of them (index on at). */
export const AUDIT_RETENTION_SQL = "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)";

export const deleteExpiredAuditStatement = (db: D1Database, before: string, limit: number) => db.prepare(AUDIT_RETENTION_SQL).bind(before, limit);
