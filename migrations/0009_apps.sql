-- Apps (src/apps): what each tenant installed and granted, every run's record for monitoring, the
-- scheduled pulls' clocks, and the use-case type 'pull' (the CHECK is widened by rebuilding the
-- table, which nothing references by foreign key).
CREATE TABLE app_installs (
  tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name          TEXT NOT NULL,               -- '@acme/sap-normalise'
  version_range TEXT NOT NULL,               -- what was asked: '^1.0.0', 'latest', '1.2.3'
  version       TEXT NOT NULL,               -- the resolved version
  digest        TEXT NOT NULL,               -- 'sha256-<base64>' of the archive the host verified
  manifest      TEXT NOT NULL,               -- app.json of that version
  grants        TEXT NOT NULL,               -- JSON { hosts: [...] }, a subset of what the app declares
  config        TEXT,                        -- AES-GCM ciphertext of the JSON configuration (secrets included)
  installed_via TEXT,                        -- the blueprint that installed it, or NULL when installed directly
  installed_at  TEXT NOT NULL,
  installed_by  TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  updated_by    TEXT NOT NULL,
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE app_runs (
  id              TEXT PRIMARY KEY,          -- ULID, orders the runs
  tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  app             TEXT NOT NULL,
  version         TEXT NOT NULL,
  action          TEXT NOT NULL,
  trigger         TEXT NOT NULL CHECK (trigger IN ('invoke', 'pre_mapping', 'transform', 'pull')),
  integration_id  TEXT,
  event_id        TEXT,                      -- the inbound event (pre_mapping) or core event (transform)
  outcome         TEXT NOT NULL,             -- 'ok' or the error code
  error           TEXT,
  exceeded_limit  TEXT,
  duration_ms     INTEGER NOT NULL,
  logs            TEXT NOT NULL,             -- JSON [{ level, message }]
  dropped_logs    INTEGER NOT NULL DEFAULT 0,
  started_at      TEXT NOT NULL
);
CREATE INDEX app_runs_tenant ON app_runs(tenant_id, id);
CREATE INDEX app_runs_app ON app_runs(tenant_id, app, id);
CREATE INDEX app_runs_started ON app_runs(started_at);

-- One row per pull use case: when it is next due, and the lease of a run in progress.
CREATE TABLE pull_schedules (
  use_case_id    TEXT PRIMARY KEY,
  tenant_id      TEXT NOT NULL,
  integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  next_run_at    TEXT NOT NULL,
  lease_until    TEXT,
  last_run_at    TEXT,
  last_outcome   TEXT
);
CREATE INDEX pull_schedules_due ON pull_schedules(next_run_at);

CREATE TABLE use_cases_v2 (
  id                  TEXT PRIMARY KEY,
  integration_id      TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  tenant_id           TEXT NOT NULL,
  name                TEXT NOT NULL,
  slug                TEXT NOT NULL,
  type                TEXT NOT NULL CHECK (type IN ('inbound', 'outbound', 'file_proxy', 'pull')),
  enabled             INTEGER NOT NULL DEFAULT 1,
  configuration       TEXT NOT NULL DEFAULT '{}',
  change_description  TEXT,
  created_at          TEXT NOT NULL,
  updated_at          TEXT NOT NULL,
  version             INTEGER NOT NULL DEFAULT 1,
  UNIQUE (integration_id, slug)
);
INSERT INTO use_cases_v2 (id, integration_id, tenant_id, name, slug, type, enabled, configuration, change_description, created_at, updated_at, version)
  SELECT id, integration_id, tenant_id, name, slug, type, enabled, configuration, change_description, created_at, updated_at, version FROM use_cases;
DROP TABLE use_cases;
ALTER TABLE use_cases_v2 RENAME TO use_cases;
CREATE INDEX use_cases_tenant_type ON use_cases(tenant_id, type);
