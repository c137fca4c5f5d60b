-- Per-project engine settings. NULL = the engine default.
ALTER TABLE projects ADD COLUMN snapshot_every_events BIGINT CHECK (snapshot_every_events IS NULL OR snapshot_every_events > 0);
