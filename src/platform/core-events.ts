// The core-event envelope: what entity changes and business events look like on the core-events
// queue. Produced by the entities context (its outbox) and the outbound context (business events),
// consumed by outbound fan-out, so it lives here rather than in either.
import { newId, nowIso } from "./ids";

export interface CoreEventEnvelope {
  _org_id: string;
  _event_time: string;
  _event_id: string;
  _event_name: string;
  _event_version: string;
  _event_source: string;
  _ack_id: string;
  _correlation_id?: string;
  /** Set on an entity event too large for a queue message: it carries no attributes or changes, and fan-out loads the whole event from the entity. */
  _truncated?: true;
  /** With `_truncated`: the entity that keeps the whole event, and its version after the change. */
  _entity_id?: string;
  _entity_version?: number;
  [key: string]: unknown;
}

/** A core event in its envelope; `payload` keys sit beside the `_` fields. */
export function envelope(tenantId: string, name: string, payload: Record<string, unknown>, opts: { version?: string; source?: string; correlationId?: string | null } = {}): CoreEventEnvelope {
  return {
    _org_id: tenantId,
    _event_time: nowIso(),
    _event_id: newId(),
    _event_name: name,
    _event_version: opts.version ?? "1",
    _event_source: opts.source ?? "erp-edge",
    _ack_id: newId(),
    ...(opts.correlationId && { _correlation_id: opts.correlationId }),
    ...payload,
  };
}
