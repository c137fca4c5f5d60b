-- Scale-out (SPEC §7): several `braid serve` processes on one database.
-- Only adds. docs/postgres.md describes how the columns are used.

-- One row per process ever started on the database. A process is live
-- while `lease_until` (database time, ms) is ahead and `stopped_at` is NULL;
-- its heartbeat moves `lease_until` on. A run's lease is its owner's row.
CREATE TABLE servers (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL,
    stopped_at   BIGINT
);

-- The process that owns a live run, and the run's ownership epoch: 1 when
-- created, one more at every adoption. Every commit of the run checks it.
ALTER TABLE workflow_runs ADD COLUMN owner TEXT;
ALTER TABLE workflow_runs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
-- A cancel accepted by a process that does not own the run, for its owner.
ALTER TABLE workflow_runs ADD COLUMN cancel_requested_at BIGINT;
ALTER TABLE workflow_runs ADD COLUMN cancel_reason TEXT;
CREATE INDEX runs_live_by_owner ON workflow_runs (owner) WHERE status = 'running';

-- Who owned a run in each epoch (written at creation and at every adoption).
CREATE TABLE run_owners (
    run_id TEXT   NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    epoch  BIGINT NOT NULL,
    owner  TEXT   NOT NULL,
    since  BIGINT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);

-- The epoch under which each event was committed.
ALTER TABLE events ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;

-- The process that claimed a task (released at once when it is gone).
ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
