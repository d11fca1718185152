-- Integrations, their embedded use cases, the use-case change history and environment values.
CREATE TABLE integrations (
  id                  TEXT PRIMARY KEY,      -- ULID
  tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name                TEXT NOT NULL,
  description         TEXT,
  environment_config  TEXT NOT NULL DEFAULT '[]',  -- JSON array of { key, label, type, required, description }
  created_at          TEXT NOT NULL,
  updated_at          TEXT NOT NULL
);
CREATE INDEX integrations_tenant ON integrations(tenant_id, id);

CREATE TABLE use_cases (
  id                  TEXT PRIMARY KEY,      -- ULID
  integration_id      TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  tenant_id           TEXT NOT NULL,
  name                TEXT NOT NULL,
  slug                TEXT NOT NULL,
  type                TEXT NOT NULL CHECK (type IN ('inbound', 'outbound', 'file_proxy')),
  enabled             INTEGER NOT NULL DEFAULT 1,
  configuration       TEXT NOT NULL DEFAULT '{}',   -- JSON, validated by the type's schema
  change_description  TEXT,
  created_at          TEXT NOT NULL,
  updated_at          TEXT NOT NULL,
  UNIQUE (integration_id, slug)
);

-- One row per change; survives deletion of the use case itself (not of the integration).
CREATE TABLE use_case_history (
  id                  TEXT PRIMARY KEY,      -- ULID, orders the history
  use_case_id         TEXT NOT NULL,
  integration_id      TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  action              TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
  snapshot            TEXT NOT NULL,         -- JSON of the use case after the change (before it, for 'deleted')
  change_description  TEXT,
  changed_by          TEXT NOT NULL,         -- 'token:<id>' or 'admin'
  changed_at          TEXT NOT NULL
);
CREATE INDEX use_case_history_use_case ON use_case_history(use_case_id, id);

-- Every value is AES-GCM encrypted with a key derived from SECRETS_KEY;
-- whether a value is masked on read follows the key's type in environment_config.
CREATE TABLE environment_values (
  integration_id  TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  key             TEXT NOT NULL,
  ciphertext      TEXT NOT NULL,             -- base64url(iv || AES-GCM(value)), bound to integration and key
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (integration_id, key)
);
