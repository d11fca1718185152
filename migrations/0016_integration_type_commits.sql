-- Type generation (epilot's commitTypes): one row per committed types package of an integration.
-- Configuration, written only by POST /v1/integrations/{id}/commit-types; `shapes` keeps the
-- use cases' type descriptors as committed, so the next preview can tell what changed since.
CREATE TABLE integration_type_commits (
  id              TEXT PRIMARY KEY,          -- UUIDv7
  tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  integration_id  TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  package_name    TEXT NOT NULL,
  version         TEXT NOT NULL,
  annotations     TEXT NOT NULL DEFAULT '{}',  -- JSON: { <use case slug>: { request?, response? } }
  shapes          TEXT NOT NULL,               -- JSON: UseCaseTypePreview[] as committed
  committed_by    TEXT NOT NULL,               -- 'token:<id>' or 'admin'
  committed_at    TEXT NOT NULL,
  UNIQUE (integration_id, version)
);
CREATE INDEX integration_type_commits_integration ON integration_type_commits(integration_id, id);
