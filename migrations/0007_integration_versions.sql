-- Version counters for optimistic concurrency: GET answers ETag "<id>.<version>", and a PUT or DELETE
-- with If-Match succeeds only while the stored version is still the one it names.
-- integrations.version also moves when one of its use cases changes (the integration embeds them).
ALTER TABLE integrations ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE use_cases ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
