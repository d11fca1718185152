-- The entity schemas a tenant's inbound mappings ever wrote to (written with every use-case save):
-- each is an EntityStore Durable Object (`<tenant>/<schema>`), deleted with the tenant. Kept after
-- the use case or integration goes, since the entities stay with the tenant.
CREATE TABLE tenant_entity_schemas (
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  schema    TEXT NOT NULL,
  PRIMARY KEY (tenant_id, schema)
);
