-- Blueprint installs (src/marketplace): the publishers a tenant trusts, one record per installed
-- blueprint, and the steps (install, upgrades) a rollback undoes, each with the exact configuration
-- of the owned integrations before it.
CREATE TABLE blueprint_trust (
  tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  publisher   TEXT NOT NULL,                 -- '@acme'; '@erp-edge' is trusted without a row
  trusted_at  TEXT NOT NULL,
  trusted_by  TEXT NOT NULL,                 -- 'token:<id>' or 'admin'
  PRIMARY KEY (tenant_id, publisher)
);

CREATE TABLE blueprint_installs (
  id            TEXT PRIMARY KEY,            -- ULID
  tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name          TEXT NOT NULL,               -- '@acme/sap-customers'
  version       TEXT NOT NULL,
  digest        TEXT NOT NULL,               -- 'sha256-<base64>' of the archive, verified by the host
  manifest      TEXT NOT NULL,               -- JSON: the installed version's resolved manifest, base of the next three-way merge
  resources     TEXT NOT NULL,               -- JSON: { integrations: { <slug>: <id> }, use_cases: { "<slug>/<slug>": <id> } }
  installed_at  TEXT NOT NULL,
  installed_by  TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  updated_by    TEXT NOT NULL,
  revision      INTEGER NOT NULL DEFAULT 1,  -- moves with every change; upgrades, rollbacks and removals claim it
  UNIQUE (tenant_id, name)                   -- two concurrent installs cannot both commit
);

CREATE TABLE blueprint_install_history (
  id            TEXT PRIMARY KEY,            -- ULID, orders the steps
  install_id    TEXT NOT NULL REFERENCES blueprint_installs(id) ON DELETE CASCADE,
  action        TEXT NOT NULL CHECK (action IN ('installed', 'upgraded')),
  version       TEXT NOT NULL,               -- what this step installed
  digest        TEXT NOT NULL,
  previous      TEXT,                        -- JSON { version, digest, manifest, resources } of the record before; NULL for 'installed'
  snapshot      TEXT NOT NULL,               -- JSON { integrations: [{ integration, version, environment: [{ key, ciphertext }] }] } before the step
  changed_at    TEXT NOT NULL,
  changed_by    TEXT NOT NULL
);
CREATE INDEX blueprint_install_history_install ON blueprint_install_history(install_id, id);
