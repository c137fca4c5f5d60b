-- Events and tokens are written in bulk by every commit. As WITHOUT ROWID
-- tables each row is stored once, in its primary key's B-tree, instead of
-- in a rowid table plus a key index (plus, for tokens, a second index):
-- fewer pages per commit, fewer bytes to fsync.

CREATE TABLE events_keyed (
    run_id    TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    ts        INTEGER NOT NULL,
    token_id  TEXT,
    node      TEXT,
    payload   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO events_keyed (run_id, seq, kind, ts, token_id, node, payload)
    SELECT run_id, seq, kind, ts, token_id, node, payload FROM events ORDER BY run_id, seq;
DROP TABLE events;
ALTER TABLE events_keyed RENAME TO events;

-- `seq` is the token's number in its run (`tk_7` is 7): the creation order.
CREATE TABLE tokens_keyed (
    run_id           TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    id               TEXT    NOT NULL,
    node             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    parent_token_id  TEXT,
    sibling_set      TEXT,
    branch_index     INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
-- Rows written before this migration: the number from a `tk_<n>` id, else
-- the old creation order.
INSERT INTO tokens_keyed (run_id, seq, id, node, status, parent_token_id, sibling_set, branch_index,
                          attempts, created_at, started_at, ended_at)
    SELECT run_id,
           CASE WHEN id GLOB 'tk_[0-9]*' THEN CAST(substr(id, 4) AS INTEGER) ELSE seq END,
           id, node, status, parent_token_id, sibling_set, branch_index,
           attempts, created_at, started_at, ended_at
    FROM tokens ORDER BY run_id, seq;
DROP INDEX tokens_by_run;
DROP TABLE tokens;
ALTER TABLE tokens_keyed RENAME TO tokens;
