-- A workflow written by hand: prepare (update_context) -> summarize (llm_call)
-- -> save (write_artifact), in the default project. Only essential columns
-- are given; every other column takes its default.
BEGIN;

INSERT INTO workflows (id, project_id, name)
VALUES ('wf_summarize', 'proj_default', 'summarize');

INSERT INTO workflow_defs (id, workflow_id, version, description, initial_node, input_schema,
                           defines_artifact_types)
VALUES ('def_summarize_1', 'wf_summarize', 1, 'Summarize a topic and keep the summary.', 'prepare',
        '{"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}}',
        '["summary"]');

-- The artifact type the bundle defines (project scoped, version 1).
INSERT INTO artifact_types (id, project_id, name, version, schema)
VALUES ('at_summary_1', 'proj_default', 'summary', 1,
        '{"type": "object", "required": ["topic", "text"],
          "properties": {"topic": {"type": "string"}, "text": {"type": "string"}}}');

INSERT INTO prompt_specs (def_id, ref, system, template, produces)
VALUES ('def_summarize_1', 'summary_prompt', 'You write one-sentence summaries.',
        'Summarize: {{state.topic}}',
        '{"type": "object", "required": ["summary"], "properties": {"summary": {"type": "string"}}}');

-- A scripted model: deterministic offline answers, no API key needed.
INSERT INTO model_profiles (def_id, ref, provider, model, script)
VALUES ('def_summarize_1', 'offline', 'scripted', 'demo',
        '{"responses": [{"summary": "Rivers carry rain back to the sea."}]}');

-- Actions. 'prepare.action' and 'save.action' are the inline actions of the
-- nodes 'prepare' and 'save' (action_inline = 1 below); 'summarize_llm' is a
-- bundle-level action that a node names by ref.
INSERT INTO actions (def_id, ref, kind, config, execution) VALUES
    ('def_summarize_1', 'prepare.action', 'update_context',
     '{"updates": [{"path": "state.topic", "expr": "input.topic"}]}',
     NULL),
    ('def_summarize_1', 'summarize_llm', 'llm_call',
     '{"prompt": "summary_prompt", "model": "offline"}',
     '{"timeout_ms": 30000, "retry_policy": {"max_attempts": 3, "backoff": "exponential", "initial_delay_ms": 500}}'),
    ('def_summarize_1', 'save.action', 'write_artifact',
     '{"artifact_type": "summary", "name": "summary",
       "content_mapping": {"topic": "state.topic", "text": "state.summary"}}',
     NULL);

-- Nodes, in bundle order (no position given: insertion order).
INSERT INTO nodes (def_id, ref, action_ref, action_inline, output_mapping) VALUES
    ('def_summarize_1', 'prepare',   'prepare.action', 1, NULL),
    ('def_summarize_1', 'summarize', 'summarize_llm',  0, '{"state.summary": "result.summary"}'),
    ('def_summarize_1', 'save',      'save.action',    1, NULL);

INSERT INTO transitions (def_id, from_node, to_node) VALUES
    ('def_summarize_1', 'prepare',   'summarize'),
    ('def_summarize_1', 'summarize', 'save');

COMMIT;
