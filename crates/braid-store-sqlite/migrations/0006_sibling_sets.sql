-- One row per sibling set (the tokens one fan-out created), written in the
-- commit of the events that create and fire it, so the run view lists a
-- 10,000-branch fan-out as one line. Member counts are not stored: they are
-- grouped from the `tokens` rows when read. Only adds a table.
CREATE TABLE sibling_sets (
    run_id              TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    -- the set's number in its run (`ss_7` is 7): the creation order
    seq                 INTEGER NOT NULL,
    id                  TEXT    NOT NULL,
    fan_out_node        TEXT    NOT NULL,
    origin_token_id     TEXT    NOT NULL,
    -- NULL when no node joins the fan-out node
    join_node           TEXT,
    total               INTEGER NOT NULL,
    fired               INTEGER NOT NULL DEFAULT 0 CHECK (fired IN (0, 1)),
    -- the set the origin token belongs to; NULL for a set spawned in the root scope
    parent_sibling_set  TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
