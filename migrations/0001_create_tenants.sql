-- Tenants and the scoped API tokens issued to them.
CREATE TABLE tenants (
  id          TEXT PRIMARY KEY,              -- ULID
  slug        TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  created_at  TEXT NOT NULL                  -- ISO 8601 UTC
);

CREATE TABLE api_tokens (
  id            TEXT PRIMARY KEY,            -- ULID, also the JWT's jti
  tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name          TEXT NOT NULL,
  scopes        TEXT NOT NULL,               -- JSON array of scope strings
  created_at    TEXT NOT NULL,
  expires_at    TEXT,                        -- NULL = no expiry
  revoked_at    TEXT,                        -- set by DELETE; checked on every request
  last_used_at  TEXT
);
CREATE INDEX api_tokens_tenant ON api_tokens(tenant_id, id);
