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

/**
 * Several core events in one queue message, in the order they happened: an entity store's outbox
 * sends its events this way, so a queue message (and a queue operation) carries up to
 * MAX_PACK_EVENTS of them instead of one. Business events still travel alone, as an envelope.
 */
export interface CoreEventPack {
  _events: CoreEventEnvelope[];
}

/** What the core-events queue carries: one envelope, or a pack of them. */
export type CoreEventMessage = CoreEventEnvelope | CoreEventPack;

/** The most events one pack holds, whatever their size (the queue's 128 KB also bounds it). */
export const MAX_PACK_EVENTS = 50;

/** The events of a queue message's body, as sent: a pack's events, or the body itself. Unchecked. */
export function eventsOfMessage(body: unknown): unknown[] {
  const events = (body as Partial<CoreEventPack> | null)?._events;
  return Array.isArray(events) ? events : [body];
}
