-- The first and last event seq of each token, kept by the token-row upsert,
-- so that one token's events are read as a range of the run's event key.
-- Only adds columns; rows written before stay NULL and are read by a scan.
ALTER TABLE tokens ADD COLUMN first_seq BIGINT;
ALTER TABLE tokens ADD COLUMN last_seq BIGINT;
