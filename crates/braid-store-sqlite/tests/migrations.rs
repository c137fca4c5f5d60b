//! Migration 0003 rebuilds `events` and `tokens` as WITHOUT ROWID tables:
//! rows written under the old layout survive it, and a token's `seq`
//! becomes its number in the run.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

#[tokio::test]
async fn keyed_tables_keep_old_rows_and_number_tokens_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = SqliteConnectOptions::new()
        .filename(dir.path().join("old.db"))
        .create_if_missing(true)
        .foreign_keys(false)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("../migrations/0001_init.sql"))
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("../migrations/0002_project_settings.sql"))
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::raw_sql(
        r#"INSERT INTO workflow_runs (id, project_id, workflow_id, workflow_name, def_id, version, status,
                                      context, usage, limits, created_at)
           VALUES ('run_a', 'p', 'w', 'w', 'd', 1, 'running', '{}', '{}', '{}', 1);
           INSERT INTO events (run_id, seq, kind, ts, token_id, node, payload) VALUES
             ('run_a', 2, 'node_started', 11, 'tk_1', 'a', '{"attempt":1}'),
             ('run_a', 1, 'workflow_started', 10, 'tk_1', 'a', '{"input":{}}');
           -- Written out of their number order: the old `seq` was the rowid.
           INSERT INTO tokens (run_id, id, node, status, attempts, created_at) VALUES
             ('run_a', 'tk_12', 'b', 'pending', 0, 3),
             ('run_a', 'tk_1', 'a', 'running', 1, 1),
             ('run_a', 'tk_2', 'b', 'completed', 1, 2);"#,
    )
    .execute(&mut c)
    .await
    .unwrap();

    sqlx::raw_sql(include_str!("../migrations/0003_keyed_event_tables.sql"))
        .execute(&mut c)
        .await
        .unwrap();

    for table in ["events", "tokens"] {
        let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE name = ?")
            .bind(table)
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert!(sql.contains("WITHOUT ROWID"), "{table}: {sql}");
    }
    let events: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT seq, kind, payload FROM events WHERE run_id = 'run_a' ORDER BY seq")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(
        events,
        vec![
            (1, "workflow_started".into(), r#"{"input":{}}"#.into()),
            (2, "node_started".into(), r#"{"attempt":1}"#.into()),
        ]
    );
    let tokens: Vec<(i64, String, String)> =
        sqlx::query("SELECT seq, id, status FROM tokens WHERE run_id = 'run_a' ORDER BY seq")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    assert_eq!(
        tokens,
        vec![
            (1, "tk_1".into(), "running".into()),
            (2, "tk_2".into(), "completed".into()),
            (12, "tk_12".into(), "pending".into()),
        ]
    );
    let old_index: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'tokens_by_run'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(old_index, 0);
    c.close().await.unwrap();
}
