-- The file proxy's download log (src/file-proxy/downloads-log.ts): one row per GET /v1/files/download,
-- written after the stream ends, shown with events and deliveries in monitoring (direction 'file').
CREATE TABLE file_downloads (
  id                      TEXT PRIMARY KEY,            -- ULID
  tenant_id               TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  integration_id          TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  use_case_slug           TEXT NOT NULL,
  params                  TEXT NOT NULL,               -- JSON object of the query parameters, secrets masked by the caller
  status                  TEXT NOT NULL CHECK (status IN ('success', 'error')),
  error_code              TEXT,                        -- the API error code answered (or TRANSFER_ABORTED)
  error_message           TEXT,                        -- masked like params
  error_category          TEXT,                        -- an inbound error category (validation, configuration, downstream, timeout, system)
  archive_status          INTEGER,                     -- the archive's last HTTP status; NULL when it was never reached
  http_status             INTEGER NOT NULL,            -- what the proxy answered the client
  bytes                   INTEGER NOT NULL DEFAULT 0,  -- bytes streamed to the client
  range                   TEXT,                        -- the Range header asked, if any
  auth                    TEXT NOT NULL CHECK (auth IN ('signature', 'token')),
  received_at             TEXT NOT NULL,
  completed_at            TEXT,
  processing_duration_ms  INTEGER
);
-- Monitoring's events pages (merged with events and deliveries by id).
CREATE INDEX file_downloads_integration ON file_downloads(integration_id, id);
-- Retention (per integration, oldest first) and the monitoring stats window.
CREATE INDEX file_downloads_integration_received ON file_downloads(integration_id, received_at);
