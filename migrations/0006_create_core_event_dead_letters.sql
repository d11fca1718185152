-- Core events the queue gave up on: recorded by the consumer of erp-edge-core-events-dlq, so an event
-- that fails fan-out max_retries times is kept (and logged), never dropped silently.
CREATE TABLE core_event_dead_letters (
  id           TEXT PRIMARY KEY,                               -- ULID
  queue        TEXT NOT NULL,                                  -- the dead-letter queue it arrived on
  message_id   TEXT NOT NULL,                                  -- the queue message id (kept across dead-lettering)
  tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE,  -- the envelope's _org_id, NULL when unreadable or unknown
  event_id     TEXT,                                           -- _event_id
  event_name   TEXT,                                           -- _event_name
  attempts     INTEGER NOT NULL,                               -- delivery attempts on the dead-letter queue
  body         TEXT NOT NULL,                                  -- the message body as JSON (a reference when the event was _truncated)
  recorded_at  TEXT NOT NULL,
  UNIQUE (queue, message_id)
);
CREATE INDEX core_event_dead_letters_tenant ON core_event_dead_letters(tenant_id, id);
