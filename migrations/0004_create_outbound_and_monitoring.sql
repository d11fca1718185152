-- Outbound endpoints and deliveries, ACK tracking, audit log, per-integration settings.

-- { redact_paths: [...], retention_days } (see README, Monitoring).
ALTER TABLE integrations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- ACKs for inbound events: the ERP acknowledges (ack_id = event id) that it processed what we told it.
ALTER TABLE events ADD COLUMN ack_status TEXT CHECK (ack_status IN ('pending', 'processed', 'failed', 'timeout'));
ALTER TABLE events ADD COLUMN ack_message TEXT;
ALTER TABLE events ADD COLUMN acked_at TEXT;

-- One row per webhook delivery target: an outbound use case's webhook mapping.
CREATE TABLE outbound_endpoints (
  id                          TEXT PRIMARY KEY,        -- "<use_case_id>/<mapping_id>"
  tenant_id                   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  integration_id              TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  use_case_id                 TEXT NOT NULL,
  mapping_id                  TEXT NOT NULL,
  state                       TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'disabled')),
  secret                      TEXT,                    -- encrypted whsec_ secret
  previous_secret             TEXT,                    -- encrypted; also signed with until previous_secret_expires_at
  previous_secret_expires_at  TEXT,
  consecutive_failures        INTEGER NOT NULL DEFAULT 0,
  paused_until                TEXT,
  disabled_reason             TEXT,
  updated_at                  TEXT NOT NULL
);

CREATE TABLE deliveries (
  id                      TEXT PRIMARY KEY,            -- ULID; also the webhook-id header
  tenant_id               TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  integration_id          TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  use_case_id             TEXT NOT NULL,
  use_case_slug           TEXT NOT NULL,
  mapping_id              TEXT NOT NULL,
  type                    TEXT NOT NULL CHECK (type IN ('webhook', 'poll')),
  event_id                TEXT NOT NULL,               -- the core event's _event_id
  event_name              TEXT NOT NULL,
  correlation_id          TEXT,
  payload                 TEXT NOT NULL,               -- the mapped body
  status                  TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead_lettered')),
  ack_id                  TEXT,
  ack_status              TEXT CHECK (ack_status IN ('pending', 'processed', 'failed', 'timeout')),
  ack_message             TEXT,
  acked_at                TEXT,
  attempts                INTEGER NOT NULL DEFAULT 0,
  max_attempts            INTEGER NOT NULL,
  last_error              TEXT,
  last_status_code        INTEGER,
  lease_token             TEXT,                        -- poll: the current lease
  visible_at              TEXT,                        -- poll: when an unacked message comes back
  created_at              TEXT NOT NULL,
  completed_at            TEXT,
  processing_duration_ms  INTEGER,
  replay_of               TEXT,
  UNIQUE (use_case_id, mapping_id, event_id)
);
CREATE INDEX deliveries_integration ON deliveries(integration_id, id);
CREATE INDEX deliveries_poll ON deliveries(integration_id, type, status, visible_at);
CREATE INDEX deliveries_ack ON deliveries(ack_id) WHERE ack_id IS NOT NULL;
CREATE INDEX deliveries_correlation ON deliveries(integration_id, correlation_id) WHERE correlation_id IS NOT NULL;

CREATE TABLE audit_log (
  id          TEXT PRIMARY KEY,                         -- ULID
  tenant_id   TEXT,                                     -- NULL for operator actions on no tenant
  actor       TEXT NOT NULL,                            -- 'admin' or 'token:<id>'
  action      TEXT NOT NULL,                            -- e.g. integration.updated, token.used
  target      TEXT,
  details     TEXT NOT NULL DEFAULT '{}',
  at          TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);
