-- The first and last event seq of each token, kept by the token-row upsert,
-- so that one token's events are read as a range of the run's event key
-- (`seq BETWEEN first_seq AND last_seq AND token_id = ?`) instead of a scan
-- of the run. Only adds columns (the previous binary ignores them); rows
-- written before stay NULL and are read by a scan.
ALTER TABLE tokens ADD COLUMN first_seq INTEGER;
ALTER TABLE tokens ADD COLUMN last_seq INTEGER;
