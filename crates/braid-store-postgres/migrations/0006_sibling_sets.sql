-- One row per sibling set (the tokens one fan-out created), written in the
-- commit of the events that create and fire it. Member counts are not
-- stored: they are grouped from the `tokens` rows when read. Only adds a table.
CREATE TABLE sibling_sets (
    run_id              TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    seq                 BIGINT  NOT NULL,
    id                  TEXT    NOT NULL,
    fan_out_node        TEXT    NOT NULL,
    origin_token_id     TEXT    NOT NULL,
    join_node           TEXT,
    total               BIGINT  NOT NULL,
    fired               BOOLEAN NOT NULL DEFAULT FALSE,
    parent_sibling_set  TEXT,
    PRIMARY KEY (run_id, seq)
);
