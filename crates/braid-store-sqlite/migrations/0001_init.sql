-- Braid schema, SQLite backend. Documented in docs/schema.md.
--
-- Conventions:
--   * ids are TEXT with a prefix (ws_, proj_, wf_, def_, at_, run_, task_, art_ ...);
--   * times are INTEGER milliseconds since the Unix epoch (UTC);
--   * JSON columns are TEXT holding JSON; NULL means "absent" (empty map,
--     no limits, ...). Hand-written INSERTs only need the essential columns.

-- ---------------------------------------------------------------------------
-- Ownership scopes
-- ---------------------------------------------------------------------------

CREATE TABLE workspaces (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);

CREATE TABLE projects (
    id            TEXT    PRIMARY KEY,
    workspace_id  TEXT    NOT NULL REFERENCES workspaces (id),
    name          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    UNIQUE (workspace_id, name)
);

INSERT INTO workspaces (id, name) VALUES ('ws_default', 'default');
INSERT INTO projects (id, workspace_id, name) VALUES ('proj_default', 'ws_default', 'default');

-- ---------------------------------------------------------------------------
-- Definitions
-- ---------------------------------------------------------------------------

-- A workflow: a name in a project, with versions in workflow_defs.
CREATE TABLE workflows (
    id          TEXT    PRIMARY KEY,
    project_id  TEXT    NOT NULL REFERENCES projects (id),
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    UNIQUE (project_id, name)
);

-- One version of a workflow (the graph's top-level fields).
CREATE TABLE workflow_defs (
    id                      TEXT    PRIMARY KEY,
    workflow_id             TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version                 INTEGER NOT NULL CHECK (version >= 1),
    description             TEXT,
    initial_node            TEXT    NOT NULL,
    input_schema            TEXT    CHECK (input_schema IS NULL OR json_valid(input_schema)),
    output_schema           TEXT    CHECK (output_schema IS NULL OR json_valid(output_schema)),
    -- { "path in output": "CEL" }; NULL = {}
    output_mapping          TEXT    CHECK (output_mapping IS NULL OR json_valid(output_mapping)),
    -- { "timeout_ms": .., "max_run_tokens": .. }; NULL = engine defaults
    limits                  TEXT    CHECK (limits IS NULL OR json_valid(limits)),
    -- [ "artifact type name", ... ] defined by this bundle; NULL = none
    defines_artifact_types  TEXT    CHECK (defines_artifact_types IS NULL OR json_valid(defines_artifact_types)),
    created_at              INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    UNIQUE (workflow_id, version)
);

-- Actions of a version. An inline action of node N is stored here with
-- ref 'N.action' and the node row has action_inline = 1.
CREATE TABLE actions (
    def_id     TEXT    NOT NULL REFERENCES workflow_defs (id) ON DELETE CASCADE,
    ref        TEXT    NOT NULL,
    position   INTEGER NOT NULL DEFAULT 0,
    -- update_context | llm_call | write_artifact | workflow_call
    kind       TEXT    NOT NULL,
    -- the kind's fields, e.g. {"updates":[{"path":..,"expr":..}]} or {"prompt":..,"model":..}
    config     TEXT    CHECK (config IS NULL OR json_valid(config)),
    -- { "timeout_ms": .., "retry_policy": {..} }
    execution  TEXT    CHECK (execution IS NULL OR json_valid(execution)),
    PRIMARY KEY (def_id, ref)
);

CREATE TABLE nodes (
    def_id             TEXT    NOT NULL REFERENCES workflow_defs (id) ON DELETE CASCADE,
    ref                TEXT    NOT NULL,
    -- order of the node in the bundle (ties: insertion order)
    position           INTEGER NOT NULL DEFAULT 0,
    name               TEXT,
    action_ref         TEXT    NOT NULL,
    action_inline      INTEGER NOT NULL DEFAULT 0 CHECK (action_inline IN (0, 1)),
    input_mapping      TEXT    CHECK (input_mapping IS NULL OR json_valid(input_mapping)),
    output_mapping     TEXT    CHECK (output_mapping IS NULL OR json_valid(output_mapping)),
    -- first_match (NULL) | all
    fan_out            TEXT,
    -- "all" | "any" | {"m_of_n": M}  (bare all / any accepted)
    fan_in             TEXT,
    joins              TEXT,
    -- { "source": .., "target": .., "strategy": .. }
    merge              TEXT    CHECK (merge IS NULL OR json_valid(merge)),
    -- cancel (NULL) | abandon | allow_late_merge
    on_early_complete  TEXT,
    execution          TEXT    CHECK (execution IS NULL OR json_valid(execution)),
    PRIMARY KEY (def_id, ref),
    FOREIGN KEY (def_id, action_ref) REFERENCES actions (def_id, ref)
);

CREATE TABLE transitions (
    id           INTEGER PRIMARY KEY,
    def_id       TEXT    NOT NULL REFERENCES workflow_defs (id) ON DELETE CASCADE,
    -- order of the transition in the bundle (ties: insertion order)
    position     INTEGER NOT NULL DEFAULT 0,
    ref          TEXT,
    from_node    TEXT    NOT NULL,
    to_node      TEXT    NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    -- a JSON string holding CEL ('"state.x > 1"'), or a structured condition
    -- object; bare CEL text is accepted too. NULL = always true.
    condition    TEXT,
    -- success | failure | always
    on_outcome   TEXT    NOT NULL DEFAULT 'success',
    -- an integer, or a JSON string holding CEL; NULL = 1
    spawn_count  TEXT,
    -- { "collection": "CEL", "item_var": "name" }
    foreach      TEXT    CHECK (foreach IS NULL OR json_valid(foreach)),
    -- { "max_iterations": N }
    loop         TEXT    CHECK (loop IS NULL OR json_valid(loop)),
    FOREIGN KEY (def_id, from_node) REFERENCES nodes (def_id, ref),
    FOREIGN KEY (def_id, to_node) REFERENCES nodes (def_id, ref)
);
CREATE INDEX transitions_by_def ON transitions (def_id, position, id);

CREATE TABLE prompt_specs (
    def_id    TEXT    NOT NULL REFERENCES workflow_defs (id) ON DELETE CASCADE,
    ref       TEXT    NOT NULL,
    position  INTEGER NOT NULL DEFAULT 0,
    system    TEXT,
    template  TEXT    NOT NULL,
    -- JSON Schema of the structured output
    produces  TEXT    CHECK (produces IS NULL OR json_valid(produces)),
    PRIMARY KEY (def_id, ref)
);

CREATE TABLE model_profiles (
    def_id                     TEXT    NOT NULL REFERENCES workflow_defs (id) ON DELETE CASCADE,
    ref                        TEXT    NOT NULL,
    position                   INTEGER NOT NULL DEFAULT 0,
    -- openai | anthropic | openai_compatible | scripted
    provider                   TEXT    NOT NULL,
    model                      TEXT    NOT NULL,
    base_url                   TEXT,
    api_key_env                TEXT,
    -- { "temperature": .., "max_tokens": .., "top_p": .., "stop": .. }
    parameters                 TEXT    CHECK (parameters IS NULL OR json_valid(parameters)),
    max_concurrency            INTEGER,
    cost_per_1k_input_tokens   REAL,
    cost_per_1k_output_tokens  REAL,
    -- the scripted provider's responses
    script                     TEXT    CHECK (script IS NULL OR json_valid(script)),
    PRIMARY KEY (def_id, ref)
);

-- Project-scoped, versioned JSON Schemas for artifacts.
CREATE TABLE artifact_types (
    id          TEXT    PRIMARY KEY,
    project_id  TEXT    NOT NULL REFERENCES projects (id),
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    schema      TEXT    NOT NULL CHECK (json_valid(schema)),
    created_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    UNIQUE (project_id, name, version)
);

-- ---------------------------------------------------------------------------
-- Runs
-- ---------------------------------------------------------------------------

CREATE TABLE workflow_runs (
    id               TEXT    PRIMARY KEY,
    project_id       TEXT    NOT NULL REFERENCES projects (id),
    workflow_id      TEXT    NOT NULL REFERENCES workflows (id),
    workflow_name    TEXT    NOT NULL,
    def_id           TEXT    NOT NULL REFERENCES workflow_defs (id),
    version          INTEGER NOT NULL,
    -- running | completed | failed | cancelled
    status           TEXT    NOT NULL,
    -- { input, state, output, artifacts }
    context          TEXT    NOT NULL,
    -- { code, message, node, action, attempt, cause? } when failed
    error            TEXT,
    -- { llm_calls, input_tokens, output_tokens, cost_usd }
    usage            TEXT    NOT NULL,
    limits           TEXT    NOT NULL,
    parent_run_id    TEXT    REFERENCES workflow_runs (id),
    parent_token_id  TEXT,
    depth            INTEGER NOT NULL DEFAULT 0,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER
);
CREATE INDEX runs_by_created  ON workflow_runs (created_at DESC, id DESC);
CREATE INDEX runs_by_project  ON workflow_runs (project_id, created_at DESC, id DESC);
CREATE INDEX runs_by_status   ON workflow_runs (status, created_at DESC, id DESC);
CREATE INDEX runs_by_workflow ON workflow_runs (workflow_id, created_at DESC, id DESC);
CREATE INDEX runs_by_parent   ON workflow_runs (parent_run_id, created_at DESC, id DESC);

-- One node visit. (run_id, id) is the key; seq gives the creation order.
CREATE TABLE tokens (
    seq              INTEGER PRIMARY KEY,
    run_id           TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
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
    UNIQUE (run_id, id)
);
CREATE INDEX tokens_by_run ON tokens (run_id, seq);

-- The append-only event log: seq 1, 2, 3 ... per run.
CREATE TABLE events (
    run_id    TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    ts        INTEGER NOT NULL,
    token_id  TEXT,
    node      TEXT,
    payload   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Node results too large to be inlined in their node_completed event.
CREATE TABLE results (
    id          TEXT    PRIMARY KEY,
    run_id      TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    token_id    TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
CREATE INDEX results_by_run ON results (run_id, token_id, attempt);

CREATE TABLE snapshots (
    run_id      TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    PRIMARY KEY (run_id, seq)
);

-- The durable task queue: one attempt of one non-pure action per row.
CREATE TABLE tasks (
    id           TEXT    PRIMARY KEY,
    run_id       TEXT    NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    token_id     TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    payload      TEXT    NOT NULL,
    not_before   INTEGER NOT NULL,
    lease_until  INTEGER,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
-- A task is claimable once max(not_before, lease_until) has passed; claims
-- and next_task_due use this expression index.
CREATE INDEX tasks_due ON tasks (max(not_before, coalesce(lease_until, 0)), created_at);
CREATE INDEX tasks_by_run ON tasks (run_id);

-- Typed, project-scoped outputs; kept after their run.
CREATE TABLE artifacts (
    id                          TEXT    PRIMARY KEY,
    project_id                  TEXT    NOT NULL REFERENCES projects (id),
    type_name                   TEXT    NOT NULL,
    type_version                INTEGER NOT NULL,
    name                        TEXT    NOT NULL,
    content                     TEXT    NOT NULL,
    created_by_workflow_run_id  TEXT    NOT NULL,
    created_by_node             TEXT    NOT NULL,
    -- '<run>/<token>': a re-delivered write is a no-op
    idempotency_key             TEXT    NOT NULL UNIQUE,
    created_at                  INTEGER NOT NULL
);
CREATE INDEX artifacts_by_created ON artifacts (created_at DESC, id DESC);
CREATE INDEX artifacts_by_project ON artifacts (project_id, created_at DESC, id DESC);
CREATE INDEX artifacts_by_type    ON artifacts (project_id, type_name, created_at DESC, id DESC);
CREATE INDEX artifacts_by_run     ON artifacts (created_by_workflow_run_id, created_at DESC, id DESC);
