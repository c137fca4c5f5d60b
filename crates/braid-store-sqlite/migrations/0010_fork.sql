-- Fork and compare (docs/lifecycles.md): a forked run names the run and the
-- seq its history was copied from; a version saved for a fork is an
-- experiment, never the latest. Only adds columns.
ALTER TABLE workflow_runs ADD COLUMN forked_from_run_id TEXT;
ALTER TABLE workflow_runs ADD COLUMN forked_from_seq INTEGER;
ALTER TABLE workflow_defs ADD COLUMN experiment INTEGER NOT NULL DEFAULT 0;
