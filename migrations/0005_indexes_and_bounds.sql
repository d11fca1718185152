-- Indexes for every list, sweep and retention query (each checked with EXPLAIN QUERY PLAN in
-- test/reliability/query-plans.test.ts), and the cursors that let background jobs work in bounded,
-- resumable batches (docs/STORAGE.md, "Bounded background work").

-- Fan-out: the pending webhook deliveries of one core event.
CREATE INDEX deliveries_event ON deliveries(event_id, id);

-- Fan-out: a tenant's outbound use cases, read once per queue batch and tenant.
CREATE INDEX use_cases_tenant_type ON use_cases(tenant_id, type);

-- Retention (per integration, oldest first) and the monitoring stats window.
CREATE INDEX events_integration_received ON events(integration_id, received_at);
CREATE INDEX deliveries_integration_created ON deliveries(integration_id, created_at);

-- Audit-log retention, oldest first.
CREATE INDEX audit_log_at ON audit_log(at);

-- The ACK-timeout sweep: delivered deliveries still waiting for their ACK, oldest first.
CREATE INDEX deliveries_ack_pending ON deliveries(completed_at) WHERE ack_status = 'pending';

-- The dead-letter queue of an integration: listing and paged redrive.
CREATE INDEX deliveries_dead_lettered ON deliveries(integration_id, id) WHERE status = 'dead_lettered';

-- Poll with poison_policy "block": is there an older pending message of the same mapping?
CREATE INDEX deliveries_pending_order ON deliveries(use_case_id, mapping_id, id) WHERE status = 'pending';

-- The recovery sweep takes a bounded number of unfinished events per integration, so it replaces
-- the (status, received_at) index, which served one global oldest-first query.
DROP INDEX events_pending;
CREATE INDEX events_unfinished ON events(integration_id, received_at) WHERE status IN ('accepted', 'processing');

-- Endpoints of an integration (GET .../outbound/endpoints).
CREATE INDEX outbound_endpoints_integration ON outbound_endpoints(integration_id);

-- Where a round-robin background job (retention, the recovery sweep) continues on its next run.
CREATE TABLE maintenance_cursors (
  job         TEXT PRIMARY KEY,                      -- 'retention', 'sweep_pending_events'
  position    TEXT NOT NULL,                         -- the last integration id handled; '' = start over
  updated_at  TEXT NOT NULL
);
