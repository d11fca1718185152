-- The registry's metadata: publishers and their keys, packages and their immutable versions.
-- Archives live in R2 (BUNDLES) under bundles/<name>/<version>/<sha256 hex>.zip, written before the
-- version row that names them (docs/registry.md, "Storage and crash safety").

-- A scope such as '@acme'. owner: the tenant id that registered it, or 'platform' (the operator).
CREATE TABLE publishers (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX publishers_by_owner ON publishers (owner);

-- Every key a publisher ever registered; none is deleted, so old versions keep verifying.
-- kid: the RFC 7638 thumbprint (SHA-256, base64url) of the public JWK stored in jwk.
CREATE TABLE publisher_keys (
  publisher TEXT NOT NULL REFERENCES publishers (name),
  kid TEXT NOT NULL,
  jwk TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (publisher, kid)
);

-- One row per package name. title, summary and keywords are those of its highest published version;
-- search_text is their lower-cased concatenation with the name, which ?q= searches.
CREATE TABLE packages (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('blueprint', 'app')),
  publisher TEXT NOT NULL REFERENCES publishers (name),
  title TEXT NOT NULL,
  summary TEXT NOT NULL,
  keywords TEXT NOT NULL DEFAULT '[]',
  search_text TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX packages_by_kind ON packages (kind, name);
CREATE INDEX packages_by_publisher ON packages (publisher);

-- Immutable once written, except the yank and deprecation flags. key_id names a publisher_keys row of
-- the package's publisher; digest is sha256-<base64> of the archive; size its length in bytes.
CREATE TABLE versions (
  name TEXT NOT NULL REFERENCES packages (name),
  version TEXT NOT NULL,
  manifest TEXT NOT NULL,
  digest TEXT NOT NULL,
  signature TEXT NOT NULL,
  key_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  published_at TEXT NOT NULL,
  published_by TEXT NOT NULL,
  yanked INTEGER NOT NULL DEFAULT 0 CHECK (yanked IN (0, 1)),
  yank_reason TEXT,
  deprecated INTEGER NOT NULL DEFAULT 0 CHECK (deprecated IN (0, 1)),
  deprecation_message TEXT,
  PRIMARY KEY (name, version)
);
