-- Per-event state moved into Durable Objects (docs/SCALING.md): D1 holds configuration only, and
-- nothing on the per-event path writes it.
-- The inbound event log is in sharded EventLog objects (src/inbound/log-do.ts); the recovery sweep's
-- cursor goes with it (storing and queueing an event is now one write).
DROP TABLE events;
DELETE FROM maintenance_cursors WHERE job = 'sweep_pending_events';
-- Entities, their unique ids and meter readings are in one EntityStore per tenant and schema
-- (src/entities/store-do.ts).
DROP TABLE meter_readings;
DROP TABLE entity_identifiers;
DROP TABLE entities;
