-- The editor's node positions of a version (`layout` of a bundle): JSON
-- `{ "<node ref>": { "x": …, "y": … } }`, NULL when the bundle has none.
-- Not part of the version's content. Only adds a column.
ALTER TABLE workflow_defs ADD COLUMN layout JSONB;
