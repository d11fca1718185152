-- Webhook configurations (epilot's Webhooks API, src/webhook-configs): named destinations that
-- outbound mappings reference by `delivery.webhook_id`, resolved at delivery time. Configuration
-- only: the deliveries made through a configuration live in OutboundEndpoint objects.
CREATE TABLE webhook_configs (
  id              TEXT PRIMARY KEY,                 -- UUIDv7
  tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  event_name      TEXT NOT NULL,
  enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  url             TEXT,
  config          TEXT NOT NULL,                    -- JSON: every other WebhookConfig field, secrets excepted
  auth            TEXT,                             -- AES-GCM sealed JSON of `auth` (secrets included); NULL = none
  signing_secret  TEXT NOT NULL,                    -- AES-GCM sealed whsec_ secret (shown once, on creation)
  creation_time   TEXT NOT NULL,
  updated_time    TEXT NOT NULL
);
CREATE INDEX webhook_configs_tenant ON webhook_configs(tenant_id, id);
CREATE INDEX webhook_configs_tenant_event ON webhook_configs(tenant_id, event_name);
