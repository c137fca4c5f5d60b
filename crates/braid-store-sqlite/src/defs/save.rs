//! Saving a version: one `BEGIN IMMEDIATE` transaction that finds or
//! creates the workflow, keeps the latest version when the canonical
//! content is unchanged, and otherwise inserts version N+1's rows (and new
//! artifact type versions whose schema changed).

use braid_core::definition::{ArtifactTypeDef, Bundle};
use braid_store::sql_support::bundle_rows::{
    ActionRow, BundleRows, DefRow, ModelRow, NodeRow, PromptRow, TransitionRow,
};
use braid_store::{Error, Millis, Result, SaveOutcome};
use serde_json::Value;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use super::load::load_def;
use crate::util::{Db, new_id, to_json};

/// Saves `bundle` as version N+1 unless it equals the latest version (the
/// highest that is not an experiment); N+1 is the next number after every
/// version, experiments included. With `experiment`, a fork's target:
/// any stored version with the same content is reused, experiment or not,
/// and a new one is marked `experiment`. One transaction.
pub(crate) async fn save_bundle(
    conn: &mut SqliteConnection,
    project_id: &str,
    bundle: &Bundle,
    now: Millis,
    experiment: bool,
) -> Result<SaveOutcome> {
    let rows = BundleRows::new(bundle)?;
    let canonical = bundle.canonical();

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.db()?;
    require_project(&mut tx, project_id).await?;
    let workflow_id = find_or_create_workflow(&mut tx, project_id, &bundle.name, now).await?;
    let candidates = versions(&mut tx, &workflow_id, experiment).await?;
    let next = next_version(&mut tx, &workflow_id).await?;
    for (def_id, version) in &candidates {
        // A latest version that no longer loads (e.g. broken by hand) is
        // simply replaced by the new one.
        if let Ok(Some(stored)) = load_def(&mut tx, def_id).await
            && stored.bundle.canonical() == canonical
        {
            // The layout is not content: a new one replaces the version's,
            // none at all (a file written by hand) keeps it.
            if rows.def.layout.is_some() && stored.bundle.layout != bundle.layout {
                sqlx::query("UPDATE workflow_defs SET layout = ? WHERE id = ?")
                    .bind(rows.def.layout)
                    .bind(def_id.clone())
                    .execute(&mut *tx)
                    .await
                    .db()?;
            }
            tx.commit().await.db()?;
            return Ok(SaveOutcome {
                workflow_id,
                def_id: def_id.clone(),
                version: *version,
                created: false,
            });
        }
    }
    let version = next;
    save_artifact_types(&mut tx, project_id, &bundle.artifact_types, now).await?;
    let def_id = new_id("def");
    insert_version(&mut tx, &def_id, &workflow_id, version, rows, now).await?;
    if experiment {
        sqlx::query("UPDATE workflow_defs SET experiment = 1 WHERE id = ?")
            .bind(def_id.clone())
            .execute(&mut *tx)
            .await
            .db()?;
    }
    tx.commit().await.db()?;
    Ok(SaveOutcome {
        workflow_id,
        def_id,
        version,
        created: true,
    })
}

async fn require_project(c: &mut SqliteConnection, project_id: &str) -> Result<()> {
    let project: Option<i64> = sqlx::query_scalar("SELECT 1 FROM projects WHERE id = ?")
        .bind(project_id.to_owned())
        .fetch_optional(&mut *c)
        .await
        .db()?;
    if project.is_none() {
        return Err(Error::NotFound(format!("project {project_id:?}")));
    }
    Ok(())
}

/// The id of the project's workflow named `name`, created when missing.
async fn find_or_create_workflow(
    c: &mut SqliteConnection,
    project_id: &str,
    name: &str,
    now: Millis,
) -> Result<String> {
    let existing: Option<String> =
        sqlx::query_scalar("SELECT id FROM workflows WHERE project_id = ? AND name = ?")
            .bind(project_id.to_owned())
            .bind(name.to_owned())
            .fetch_optional(&mut *c)
            .await
            .db()?;
    Ok(match existing {
        Some(id) => id,
        None => {
            let id = new_id("wf");
            sqlx::query(
                "INSERT INTO workflows (id, project_id, name, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(id.clone())
            .bind(project_id.to_owned())
            .bind(name.to_owned())
            .bind(now)
            .execute(&mut *c)
            .await
            .db()?;
            id
        }
    })
}

/// The versions a save compares its content with, newest first: the
/// latest (the highest that is not an experiment) for an ordinary save,
/// every version for an experiment. `(def_id, version)`.
async fn versions(
    c: &mut SqliteConnection,
    workflow_id: &str,
    experiment: bool,
) -> Result<Vec<(String, i64)>> {
    let sql = if experiment {
        "SELECT id, version FROM workflow_defs WHERE workflow_id = ? ORDER BY version DESC"
    } else {
        "SELECT id, version FROM workflow_defs WHERE workflow_id = ? AND experiment = 0
         ORDER BY version DESC LIMIT 1"
    };
    sqlx::query_as(sql)
        .bind(workflow_id.to_owned())
        .fetch_all(&mut *c)
        .await
        .db()
}

/// The number a new version of the workflow gets: one more than every
/// version's, experiments included.
async fn next_version(c: &mut SqliteConnection, workflow_id: &str) -> Result<i64> {
    let max: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM workflow_defs WHERE workflow_id = ?")
            .bind(workflow_id.to_owned())
            .fetch_one(&mut *c)
            .await
            .db()?;
    Ok(max.unwrap_or(0) + 1)
}

/// Artifact types are project-wide: a new version only when the schema changed.
async fn save_artifact_types(
    c: &mut SqliteConnection,
    project_id: &str,
    artifact_types: &[ArtifactTypeDef],
    now: Millis,
) -> Result<()> {
    for at in artifact_types {
        let current: Option<(i64, String)> = sqlx::query_as(
            "SELECT version, schema FROM artifact_types WHERE project_id = ? AND name = ?
             ORDER BY version DESC LIMIT 1",
        )
        .bind(project_id.to_owned())
        .bind(at.ref_.clone())
        .fetch_optional(&mut *c)
        .await
        .db()?;
        let next = match current {
            Some((_, schema))
                if serde_json::from_str::<Value>(&schema).ok().as_ref() == Some(&at.schema) =>
            {
                continue;
            }
            Some((v, _)) => v + 1,
            None => 1,
        };
        sqlx::query(
            "INSERT INTO artifact_types (id, project_id, name, version, schema, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(new_id("at"))
        .bind(project_id.to_owned())
        .bind(at.ref_.clone())
        .bind(next)
        .bind(to_json(&at.schema)?)
        .bind(now)
        .execute(&mut *c)
        .await
        .db()?;
    }
    Ok(())
}

/// Inserts the rows of a new version.
async fn insert_version(
    c: &mut SqliteConnection,
    def_id: &str,
    workflow_id: &str,
    version: i64,
    rows: BundleRows,
    now: Millis,
) -> Result<()> {
    let BundleRows {
        def:
            DefRow {
                description,
                initial_node,
                input_schema,
                output_schema,
                output_mapping,
                limits,
                defines_artifact_types,
                layout,
            },
        actions,
        nodes,
        transitions,
        prompts,
        models,
    } = rows;
    sqlx::query(
        "INSERT INTO workflow_defs (id, workflow_id, version, description, initial_node, input_schema, output_schema,
                                    output_mapping, limits, defines_artifact_types, layout, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(def_id.to_owned())
    .bind(workflow_id.to_owned())
    .bind(version)
    .bind(description)
    .bind(initial_node)
    .bind(input_schema)
    .bind(output_schema)
    .bind(output_mapping)
    .bind(limits)
    .bind(defines_artifact_types)
    .bind(layout)
    .bind(now)
    .execute(&mut *c)
    .await
    .db()?;

    insert_actions(c, def_id, actions).await?;
    insert_prompts(c, def_id, prompts).await?;
    insert_models(c, def_id, models).await?;
    insert_nodes(c, def_id, nodes).await?;
    insert_transitions(c, def_id, transitions).await
}

async fn insert_actions(
    c: &mut SqliteConnection,
    def_id: &str,
    actions: Vec<ActionRow>,
) -> Result<()> {
    for a in actions {
        sqlx::query("INSERT INTO actions (def_id, ref, position, kind, config, execution) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(def_id.to_owned())
            .bind(a.ref_)
            .bind(a.position)
            .bind(a.kind)
            .bind(a.config)
            .bind(a.execution)
            .execute(&mut *c)
            .await
            .db()?;
    }
    Ok(())
}

async fn insert_prompts(
    c: &mut SqliteConnection,
    def_id: &str,
    prompts: Vec<PromptRow>,
) -> Result<()> {
    for p in prompts {
        sqlx::query(
            "INSERT INTO prompt_specs (def_id, ref, position, system, template, produces) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.to_owned())
        .bind(p.ref_)
        .bind(p.position)
        .bind(p.system)
        .bind(p.template)
        .bind(p.produces)
        .execute(&mut *c)
        .await
        .db()?;
    }
    Ok(())
}

async fn insert_models(
    c: &mut SqliteConnection,
    def_id: &str,
    models: Vec<ModelRow>,
) -> Result<()> {
    for m in models {
        sqlx::query(
            "INSERT INTO model_profiles (def_id, ref, position, provider, model, base_url, api_key_env, parameters,
                                         max_concurrency, cost_per_1k_input_tokens, cost_per_1k_output_tokens, script,
                                         requests_per_minute, tokens_per_minute)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.to_owned())
        .bind(m.ref_)
        .bind(m.position)
        .bind(m.provider)
        .bind(m.model)
        .bind(m.base_url)
        .bind(m.api_key_env)
        .bind(m.parameters)
        .bind(m.max_concurrency)
        .bind(m.cost_in)
        .bind(m.cost_out)
        .bind(m.script)
        .bind(m.requests_per_minute)
        .bind(m.tokens_per_minute)
        .execute(&mut *c)
        .await
        .db()?;
    }
    Ok(())
}

async fn insert_nodes(c: &mut SqliteConnection, def_id: &str, nodes: Vec<NodeRow>) -> Result<()> {
    for n in nodes {
        sqlx::query(
            "INSERT INTO nodes (def_id, ref, position, name, action_ref, action_inline, input_mapping, output_mapping,
                                fan_out, fan_in, joins, merge, on_early_complete, execution)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.to_owned())
        .bind(n.ref_)
        .bind(n.position)
        .bind(n.name)
        .bind(n.action_ref)
        .bind(i64::from(n.action_inline))
        .bind(n.input_mapping)
        .bind(n.output_mapping)
        .bind(n.fan_out)
        .bind(n.fan_in)
        .bind(n.joins)
        .bind(n.merge)
        .bind(n.on_early_complete)
        .bind(n.execution)
        .execute(&mut *c)
        .await
        .db()?;
    }
    Ok(())
}

async fn insert_transitions(
    c: &mut SqliteConnection,
    def_id: &str,
    transitions: Vec<TransitionRow>,
) -> Result<()> {
    for t in transitions {
        sqlx::query(
            "INSERT INTO transitions (def_id, position, ref, from_node, to_node, priority, condition, on_outcome,
                                      spawn_count, foreach, loop)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.to_owned())
        .bind(t.position)
        .bind(t.ref_)
        .bind(t.from)
        .bind(t.to)
        .bind(t.priority)
        .bind(t.condition)
        .bind(t.on)
        .bind(t.spawn_count)
        .bind(t.foreach)
        .bind(t.loop_)
        .execute(&mut *c)
        .await
        .db()?;
    }
    Ok(())
}
