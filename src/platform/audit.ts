// The audit log: who changed what configuration, and which token was used, when.
import { newId, nowIso } from "./ids";

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
