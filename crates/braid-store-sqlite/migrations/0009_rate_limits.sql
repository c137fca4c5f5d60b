-- A model profile's `rate_limit` (requests and tokens per minute to its
-- endpoint), NULL when the profile sets none. Only adds columns.
ALTER TABLE model_profiles ADD COLUMN requests_per_minute INTEGER;
ALTER TABLE model_profiles ADD COLUMN tokens_per_minute INTEGER;
