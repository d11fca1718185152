// The audit log: who changed what configuration, and which token was used, when.
import { newId, nowIso } from "./ids";

export interface AuditEntry {
  tenantId: string | null;
  actor: string;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
}

/** A statement to run in the same D1 batch as the change it records. */
export function auditStatement(db: D1Database, e: AuditEntry): D1PreparedStatement {
  return db
    .prepare("INSERT INTO audit_log (id, tenant_id, actor, action, target, details, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .bind(newId(), e.tenantId, e.actor, e.action, e.target ?? null, JSON.stringify(e.details ?? {}), nowIso());
}
