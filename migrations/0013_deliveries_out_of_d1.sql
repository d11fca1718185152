-- Outbound deliveries moved into their endpoints' Durable Objects (src/outbound/endpoint-do.ts, one
-- per outbound mapping): fan-out, attempts, poll leases, ACK tracking, dead letters and retention no
-- longer write D1. outbound_endpoints stays as configuration: each endpoint's state and signing
-- secrets, and the directory of the objects that hold deliveries (one row per mapping, written once).
DROP TABLE deliveries;
-- ACKs ask every endpoint of the tenant.
CREATE INDEX outbound_endpoints_tenant ON outbound_endpoints(tenant_id);
