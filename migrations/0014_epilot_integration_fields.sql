-- epilot's Integration and UseCase schemas define fields erp-edge used to drop; they are kept now.
-- integrations.epilot_fields holds, as one JSON object, the editable fields erp-edge stores and returns
-- without acting on them: access_token_ids, app_ids, integration_type, connector_config, protected,
-- _manifest (settings.autoRefresh lives in the existing settings column).
ALTER TABLE integrations ADD COLUMN epilot_fields TEXT NOT NULL DEFAULT '{}';

-- use_cases gains epilot's two further types (managed_call, secure_proxy) and, in extra, the fields of
-- a use case that are not its configuration (managed_call's type_annotations and types_locked).
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt (as in 0009).
CREATE TABLE use_cases_v3 (
  id                  TEXT PRIMARY KEY,      -- UUIDv7 (ULID for rows created before 0014)
  integration_id      TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  tenant_id           TEXT NOT NULL,
  name                TEXT NOT NULL,
  slug                TEXT NOT NULL,
  type                TEXT NOT NULL CHECK (type IN ('inbound', 'outbound', 'file_proxy', 'pull', 'managed_call', 'secure_proxy')),
  enabled             INTEGER NOT NULL DEFAULT 1,
  configuration       TEXT NOT NULL DEFAULT '{}',
  change_description  TEXT,
  created_at          TEXT NOT NULL,
  updated_at          TEXT NOT NULL,
  version             INTEGER NOT NULL DEFAULT 1,
  extra               TEXT NOT NULL DEFAULT '{}',
  UNIQUE (integration_id, slug)
);
INSERT INTO use_cases_v3 (id, integration_id, tenant_id, name, slug, type, enabled, configuration, change_description, created_at, updated_at, version)
  SELECT id, integration_id, tenant_id, name, slug, type, enabled, configuration, change_description, created_at, updated_at, version FROM use_cases;
DROP TABLE use_cases;
ALTER TABLE use_cases_v3 RENAME TO use_cases;
CREATE INDEX use_cases_tenant_type ON use_cases(tenant_id, type);

-- epilot's app mapping: an integration app instance's component (app_id, component_id) points at one
-- integration of the tenant. Configuration, written only by PUT/DELETE .../app-mapping.
CREATE TABLE integration_app_mappings (
  tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  app_id          TEXT NOT NULL,
  component_id    TEXT NOT NULL,
  integration_id  TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (tenant_id, app_id, component_id)
);
CREATE INDEX integration_app_mappings_integration ON integration_app_mappings(integration_id);
