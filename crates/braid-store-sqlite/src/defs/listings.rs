//! Projects and listings: resolving a project, the workflows and artifact
//! types of a project.

use braid_store::{ArtifactType, Error, Page, Result, WorkflowSummary};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::util::{Db, clamp_limit, page, parse_json};

/// Resolves a project id or name.
pub(crate) async fn project_id(conn: &mut SqliteConnection, project: &str) -> Result<String> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM projects WHERE id = ? OR name = ? ORDER BY id = ? DESC, created_at LIMIT 1",
    )
    .bind(project)
    .bind(project)
    .bind(project)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    id.ok_or_else(|| Error::NotFound(format!("project {project:?}")))
}

/// Workflows of a project by name.
pub(crate) async fn list_workflows(
    conn: &mut SqliteConnection,
    project_id: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<WorkflowSummary>> {
    let limit = clamp_limit(limit);
    let q = match cursor {
        None => sqlx::query(
            "SELECT w.id, w.name, w.created_at,
                    COALESCE((SELECT MAX(d.version) FROM workflow_defs d WHERE d.workflow_id = w.id AND d.experiment = 0), 0) AS latest
             FROM workflows w WHERE w.project_id = ? ORDER BY w.name LIMIT ?",
        )
        .bind(project_id.to_owned()),
        Some(after) => sqlx::query(
            "SELECT w.id, w.name, w.created_at,
                    COALESCE((SELECT MAX(d.version) FROM workflow_defs d WHERE d.workflow_id = w.id AND d.experiment = 0), 0) AS latest
             FROM workflows w WHERE w.project_id = ? AND w.name > ? ORDER BY w.name LIMIT ?",
        )
        .bind(project_id.to_owned())
        .bind(after.to_owned()),
    };
    let rows = q.bind(limit + 1).fetch_all(&mut *conn).await.db()?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(WorkflowSummary {
                id: r.try_get("id").db()?,
                name: r.try_get("name").db()?,
                latest_version: r.try_get("latest").db()?,
                created_at: r.try_get("created_at").db()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |w| w.name.clone()))
}

/// Latest version of every artifact type of the project, by name.
pub(crate) async fn artifact_types(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> Result<Vec<ArtifactType>> {
    let rows = sqlx::query(
        "SELECT a.id, a.name, a.version, a.schema FROM artifact_types a
         WHERE a.project_id = ?
           AND a.version = (SELECT MAX(b.version) FROM artifact_types b
                            WHERE b.project_id = a.project_id AND b.name = a.name)
         ORDER BY a.name",
    )
    .bind(project_id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .db()?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name").db()?;
            let schema: String = r.try_get("schema").db()?;
            Ok(ArtifactType {
                id: r.try_get("id").db()?,
                version: r.try_get("version").db()?,
                schema: parse_json(&schema, &|| format!("artifact type {name:?}: schema"))?,
                name,
            })
        })
        .collect()
}

/// Names of the project's workflows.
pub(crate) async fn workflow_names(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> Result<Vec<String>> {
    sqlx::query_scalar("SELECT name FROM workflows WHERE project_id = ? ORDER BY name")
        .bind(project_id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .db()
}
