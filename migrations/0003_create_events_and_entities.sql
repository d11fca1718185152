-- Inbound event log, the entity projection, the ID-mapping table and meter readings.

-- NULL = the Worker's default (TENANT_RATE_LIMIT_PER_SECOND).
ALTER TABLE tenants ADD COLUMN rate_limit_per_second INTEGER;

CREATE TABLE events (
  id                      TEXT PRIMARY KEY,        -- ULID event_id
  tenant_id               TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  integration_id          TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  use_case_id             TEXT,
  use_case_slug           TEXT,
  direction               TEXT NOT NULL DEFAULT 'inbound' CHECK (direction IN ('inbound', 'outbound')),
  event_name              TEXT,
  correlation_id          TEXT,
  group_id                TEXT,
  deduplication_id        TEXT,
  source_timestamp        TEXT,                    -- the ERP's event timestamp (ISO 8601)
  format                  TEXT NOT NULL DEFAULT 'json',
  payload                 TEXT,                    -- as received (JSON text or XML)
  status                  TEXT NOT NULL CHECK (status IN ('accepted', 'processing', 'done', 'partial', 'error', 'ignored')),
  error_category          TEXT CHECK (error_category IN ('validation', 'configuration', 'downstream', 'timeout', 'system')),
  errors                  TEXT NOT NULL DEFAULT '[]',   -- JSON [{ code, message, ... }]
  entities                TEXT NOT NULL DEFAULT '[]',   -- JSON [{ slug, _id, operation, unique_ids }]
  warnings                TEXT NOT NULL DEFAULT '[]',
  attempts                INTEGER NOT NULL DEFAULT 0,
  received_at             TEXT NOT NULL,
  started_at              TEXT,
  completed_at            TEXT,
  processing_duration_ms  INTEGER,
  replay_of               TEXT                     -- event id this one replays
);
-- Deduplication window lookups: the same deduplication_id within 24 hours is a duplicate.
CREATE INDEX events_dedup ON events(integration_id, deduplication_id, received_at) WHERE deduplication_id IS NOT NULL;
CREATE INDEX events_integration ON events(integration_id, id);
CREATE INDEX events_correlation ON events(integration_id, correlation_id) WHERE correlation_id IS NOT NULL;
-- The recovery sweep finds accepted events that were never handed to their stream.
CREATE INDEX events_pending ON events(status, received_at) WHERE status IN ('accepted', 'processing');

-- Read model of entities; each entity's Durable Object is the source of truth and writes this.
CREATE TABLE entities (
  id          TEXT PRIMARY KEY,                    -- ULID, our id
  tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  schema      TEXT NOT NULL,
  attributes  TEXT NOT NULL DEFAULT '{}',
  unique_ids  TEXT NOT NULL DEFAULT '{}',          -- JSON { attribute: value } known for this entity
  version     INTEGER NOT NULL,
  is_stub     INTEGER NOT NULL DEFAULT 0,          -- 1 = created from a relation, its own event not seen yet
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  deleted_at  TEXT                                 -- soft delete (restorable)
);
CREATE INDEX entities_tenant_schema ON entities(tenant_id, schema, id);

-- The ID-mapping table: every ERP unique id (attribute = value) of every entity, and our id.
CREATE TABLE entity_identifiers (
  tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  schema          TEXT NOT NULL,
  attribute       TEXT NOT NULL,
  value           TEXT NOT NULL,                   -- the ERP's value as a string
  entity_id       TEXT NOT NULL,
  integration_id  TEXT,                            -- the integration that first sent it
  created_at      TEXT NOT NULL,
  PRIMARY KEY (tenant_id, schema, attribute, value)
);
CREATE INDEX entity_identifiers_entity ON entity_identifiers(entity_id);

CREATE TABLE meter_readings (
  id           TEXT PRIMARY KEY,
  tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  meter_id     TEXT NOT NULL,                      -- entity id of the meter
  counter_id   TEXT,                               -- entity id of the meter counter
  external_id  TEXT NOT NULL,
  timestamp    TEXT NOT NULL,
  value        REAL NOT NULL,
  source       TEXT NOT NULL,
  reason       TEXT,
  attributes   TEXT NOT NULL DEFAULT '{}',
  event_id     TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  UNIQUE (tenant_id, meter_id, external_id)
);
