//! Artifacts.

use braid_store::{ArtifactFilter, ArtifactRecord, Page, Result};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Row};

use crate::util::{
    Db, clamp_limit, decode_time_cursor, encode_time_cursor, numbered, page, parse_json,
};

const COLUMNS: &str =
    "id, project_id, type_name, type_version, name, content, created_by_workflow_run_id,
    created_by_node, idempotency_key, created_at";

fn artifact_from_row(r: &PgRow) -> Result<ArtifactRecord> {
    let id: String = r.try_get("id").db()?;
    let content: String = r.try_get("content").db()?;
    Ok(ArtifactRecord {
        project_id: r.try_get("project_id").db()?,
        type_name: r.try_get("type_name").db()?,
        type_version: r.try_get("type_version").db()?,
        name: r.try_get("name").db()?,
        content: parse_json(&content, &|| format!("artifact {id}: content"))?,
        run_id: r.try_get("created_by_workflow_run_id").db()?,
        node: r.try_get("created_by_node").db()?,
        idempotency_key: r.try_get("idempotency_key").db()?,
        created_at: r.try_get("created_at").db()?,
        id,
    })
}

/// Inserts unless the idempotency key exists; the stored id either way.
pub(crate) async fn put_artifact(conn: &mut PgConnection, a: &ArtifactRecord) -> Result<String> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO artifacts (id, project_id, type_name, type_version, name, content, created_by_workflow_run_id,
                                created_by_node, idempotency_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(a.id.clone())
    .bind(a.project_id.clone())
    .bind(a.type_name.clone())
    .bind(a.type_version)
    .bind(a.name.clone())
    .bind(a.content.to_string())
    .bind(a.run_id.clone())
    .bind(a.node.clone())
    .bind(a.idempotency_key.clone())
    .bind(a.created_at)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    match inserted {
        Some(id) => Ok(id),
        None => sqlx::query_scalar("SELECT id FROM artifacts WHERE idempotency_key = $1")
            .bind(a.idempotency_key.clone())
            .fetch_one(&mut *conn)
            .await
            .db(),
    }
}

pub(crate) async fn get_artifact(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<ArtifactRecord>> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM artifacts WHERE id = $1"));
    sqlx::query(AssertSqlSafe(SQL.as_str()))
        .bind(id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .db()?
        .as_ref()
        .map(artifact_from_row)
        .transpose()
}

/// Artifacts newest first; SQL assembled from fixed fragments only.
pub(crate) async fn list_artifacts(
    conn: &mut PgConnection,
    filter: &ArtifactFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<ArtifactRecord>> {
    let limit = clamp_limit(limit);
    let cursor = cursor.map(decode_time_cursor).transpose()?;
    let mut sql = format!("SELECT {COLUMNS} FROM artifacts WHERE 1 = 1");
    if filter.project_id.is_some() {
        sql.push_str(" AND project_id = ?");
    }
    if filter.type_name.is_some() {
        sql.push_str(" AND type_name = ?");
    }
    if filter.run_id.is_some() {
        sql.push_str(" AND created_by_workflow_run_id = ?");
    }
    if cursor.is_some() {
        sql.push_str(" AND created_at <= ? AND (created_at < ? OR id < ?)");
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");

    let mut q = sqlx::query(AssertSqlSafe(numbered(&sql)));
    if let Some(p) = &filter.project_id {
        q = q.bind(p.clone());
    }
    if let Some(t) = &filter.type_name {
        q = q.bind(t.clone());
    }
    if let Some(r) = &filter.run_id {
        q = q.bind(r.clone());
    }
    if let Some((t, id)) = cursor {
        q = q.bind(t).bind(t).bind(id);
    }
    let rows = q.bind(limit + 1).fetch_all(&mut *conn).await.db()?;
    let items = rows
        .iter()
        .map(artifact_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |a| {
        encode_time_cursor(a.created_at, &a.id)
    }))
}
