-- Events and tokens are keyed by (run_id, seq). Events already are (SQLite's
-- WITHOUT ROWID rebuild has no PostgreSQL counterpart: a heap table plus its
-- primary-key index is the only layout). Tokens: `seq` becomes the token's
-- number in its run (`tk_7` is 7): the number from a `tk_<n>` id, else the
-- old creation order, and (run_id, seq) the key.
ALTER TABLE tokens DROP CONSTRAINT tokens_pkey;
ALTER TABLE tokens ALTER COLUMN seq DROP IDENTITY;
UPDATE tokens SET seq = substr(id, 4)::bigint WHERE id ~ '^tk_[0-9]+$';
ALTER TABLE tokens DROP CONSTRAINT tokens_run_id_id;
DROP INDEX tokens_by_run;
ALTER TABLE tokens ADD PRIMARY KEY (run_id, seq);
