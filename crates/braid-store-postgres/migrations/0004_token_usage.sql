-- The cost ledger: what each node visit's attempts cost, failed ones
-- included, so that a run's usage per node and over its descendants is a sum
-- in SQL. Only adds columns (the previous binary ignores them).
ALTER TABLE tokens ADD COLUMN llm_calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0;
