//! Reading a version: normalized rows → [`Bundle`](braid_core::definition::Bundle).
//! This module reads each table's columns into the shared row structs;
//! `braid_store::sql_support::bundle_load` decodes them, so rows that do
//! not decode (hand-written SQL with bad JSON or unknown values) name the
//! definition, object and column in the error as on every backend.

use braid_core::definition::ArtifactTypeDef;
use braid_store::sql_support::bundle_load::{self, BundleParts, DecodedDef, LoadedActions};
use braid_store::sql_support::bundle_rows::{
    ActionRow, DefRow, ModelRow, NodeRow, PromptRow, TransitionRow,
};
use braid_store::{Result, StoredDef};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use crate::util::Db;

/// A version by workflow id or name (latest when `version` is `None`).
pub(crate) async fn get_def(
    conn: &mut SqliteConnection,
    project_id: &str,
    id_or_name: &str,
    version: Option<i64>,
) -> Result<Option<StoredDef>> {
    match resolve_def(conn, project_id, id_or_name, version).await? {
        Some(id) => load_def(conn, &id).await,
        None => Ok(None),
    }
}

/// The row id of a version by workflow id or name (latest when `version`
/// is `None`).
pub(crate) async fn resolve_def(
    conn: &mut SqliteConnection,
    project_id: &str,
    id_or_name: &str,
    version: Option<i64>,
) -> Result<Option<String>> {
    let q = match version {
        None => sqlx::query_scalar(
            "SELECT d.id FROM workflow_defs d JOIN workflows w ON w.id = d.workflow_id
             WHERE w.project_id = ? AND (w.id = ? OR w.name = ?) AND d.experiment = 0
             ORDER BY d.version DESC LIMIT 1",
        )
        .bind(project_id.to_owned())
        .bind(id_or_name.to_owned())
        .bind(id_or_name.to_owned()),
        Some(v) => sqlx::query_scalar(
            "SELECT d.id FROM workflow_defs d JOIN workflows w ON w.id = d.workflow_id
             WHERE w.project_id = ? AND (w.id = ? OR w.name = ?) AND d.version = ?
             LIMIT 1",
        )
        .bind(project_id.to_owned())
        .bind(id_or_name.to_owned())
        .bind(id_or_name.to_owned())
        .bind(v),
    };
    q.fetch_optional(&mut *conn).await.db()
}

/// Rebuilds the stored version `def_id` from its rows. Rows that do not
/// decode (hand-written SQL with bad JSON or unknown values) are
/// [`Error::BadDefinition`](braid_store::Error::BadDefinition), naming the definition, object and column.
pub(crate) async fn load_def(
    conn: &mut SqliteConnection,
    def_id: &str,
) -> Result<Option<StoredDef>> {
    load_def_rows(conn, def_id)
        .await
        .map_err(bundle_load::bad_definition)
}

async fn load_def_rows(conn: &mut SqliteConnection, def_id: &str) -> Result<Option<StoredDef>> {
    let Some(d) = sqlx::query(
        "SELECT d.workflow_id, d.version, d.description, d.initial_node, d.input_schema, d.output_schema,
                d.output_mapping, d.limits, d.defines_artifact_types, d.layout, d.created_at, d.experiment, w.project_id, w.name
         FROM workflow_defs d JOIN workflows w ON w.id = d.workflow_id WHERE d.id = ?",
    )
    .bind(def_id.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .db()?
    else {
        return Ok(None);
    };
    let project_id: String = d.try_get("project_id").db()?;
    let name: String = d.try_get("name").db()?;
    let def = DecodedDef::decode(def_id, def_row(&d)?)?;
    // Inline actions are taken out of this list by their nodes.
    let mut actions =
        LoadedActions::decode(def_id, read(conn, ACTIONS_SQL, def_id, action_row).await?)?;
    let nodes = bundle_load::nodes(
        def_id,
        read(conn, NODES_SQL, def_id, node_row).await?,
        &mut actions,
    )?;
    let transitions = bundle_load::transitions(
        def_id,
        read(conn, TRANSITIONS_SQL, def_id, transition_row).await?,
    )?;
    let prompt_specs = bundle_load::prompt_specs(
        def_id,
        read(conn, PROMPT_SPECS_SQL, def_id, prompt_row).await?,
    )?;
    let model_profiles = bundle_load::model_profiles(
        def_id,
        read(conn, MODEL_PROFILES_SQL, def_id, model_row).await?,
    )?;
    let artifact_types = load_artifact_types(conn, def_id, &project_id, &def.defines).await?;
    let bundle = def.into_bundle(
        name.clone(),
        BundleParts {
            actions,
            nodes,
            transitions,
            prompt_specs,
            model_profiles,
            artifact_types,
        },
    );
    Ok(Some(StoredDef {
        workflow_id: d.try_get("workflow_id").db()?,
        def_id: def_id.to_owned(),
        project_id,
        name,
        version: d.try_get("version").db()?,
        bundle,
        created_at: d.try_get("created_at").db()?,
        experiment: d.try_get("experiment").db()?,
    }))
}

/// The latest schema of each artifact type the version defines (types are
/// project-wide, so a newer schema saved by another workflow shows here).
async fn load_artifact_types(
    conn: &mut SqliteConnection,
    def_id: &str,
    project_id: &str,
    defines: &[String],
) -> Result<Vec<ArtifactTypeDef>> {
    let mut artifact_types = Vec::new();
    for name in defines {
        let schema: Option<String> = sqlx::query_scalar(
            "SELECT schema FROM artifact_types WHERE project_id = ? AND name = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(project_id.to_owned())
        .bind(name.clone())
        .fetch_optional(&mut *conn)
        .await
        .db()?;
        artifact_types.push(bundle_load::artifact_type(def_id, name.clone(), schema)?);
    }
    Ok(artifact_types)
}

// Queries of a version's rows, in bundle order.
const ACTIONS_SQL: &str = "SELECT ref, position, kind, config, execution
     FROM actions WHERE def_id = ? ORDER BY position, rowid";
const NODES_SQL: &str = "SELECT ref, position, name, action_ref, action_inline, input_mapping,
            output_mapping, fan_out, fan_in, joins, merge, on_early_complete, execution
     FROM nodes WHERE def_id = ? ORDER BY position, rowid";
const TRANSITIONS_SQL: &str =
    "SELECT position, ref, from_node, to_node, priority, condition, on_outcome,
            spawn_count, foreach, loop
     FROM transitions WHERE def_id = ? ORDER BY position, id";
const PROMPT_SPECS_SQL: &str = "SELECT ref, position, system, template, produces
     FROM prompt_specs WHERE def_id = ? ORDER BY position, rowid";
const MODEL_PROFILES_SQL: &str =
    "SELECT ref, position, provider, model, base_url, api_key_env, parameters,
            max_concurrency, cost_per_1k_input_tokens, cost_per_1k_output_tokens, script,
            requests_per_minute, tokens_per_minute
     FROM model_profiles WHERE def_id = ? ORDER BY position, rowid";

/// The rows of one of a version's tables, each read by `row`.
async fn read<T>(
    conn: &mut SqliteConnection,
    sql: &'static str,
    def_id: &str,
    row: fn(&SqliteRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = sqlx::query(sql)
        .bind(def_id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .db()?;
    rows.iter().map(row).collect()
}

fn def_row(d: &SqliteRow) -> Result<DefRow> {
    Ok(DefRow {
        description: d.try_get("description").db()?,
        initial_node: d.try_get("initial_node").db()?,
        input_schema: d.try_get("input_schema").db()?,
        output_schema: d.try_get("output_schema").db()?,
        output_mapping: d.try_get("output_mapping").db()?,
        limits: d.try_get("limits").db()?,
        defines_artifact_types: d.try_get("defines_artifact_types").db()?,
        layout: d.try_get("layout").db()?,
    })
}

fn action_row(r: &SqliteRow) -> Result<ActionRow> {
    Ok(ActionRow {
        ref_: r.try_get("ref").db()?,
        position: r.try_get("position").db()?,
        kind: r.try_get("kind").db()?,
        config: r.try_get("config").db()?,
        execution: r.try_get("execution").db()?,
    })
}

fn node_row(r: &SqliteRow) -> Result<NodeRow> {
    Ok(NodeRow {
        ref_: r.try_get("ref").db()?,
        position: r.try_get("position").db()?,
        name: r.try_get("name").db()?,
        action_ref: r.try_get("action_ref").db()?,
        action_inline: r.try_get::<i64, _>("action_inline").db()? != 0,
        input_mapping: r.try_get("input_mapping").db()?,
        output_mapping: r.try_get("output_mapping").db()?,
        fan_out: r.try_get("fan_out").db()?,
        fan_in: r.try_get("fan_in").db()?,
        joins: r.try_get("joins").db()?,
        merge: r.try_get("merge").db()?,
        on_early_complete: r.try_get("on_early_complete").db()?,
        execution: r.try_get("execution").db()?,
    })
}

fn transition_row(r: &SqliteRow) -> Result<TransitionRow> {
    Ok(TransitionRow {
        position: r.try_get("position").db()?,
        ref_: r.try_get("ref").db()?,
        from: r.try_get("from_node").db()?,
        to: r.try_get("to_node").db()?,
        priority: r.try_get("priority").db()?,
        condition: r.try_get("condition").db()?,
        on: r.try_get("on_outcome").db()?,
        spawn_count: r.try_get("spawn_count").db()?,
        foreach: r.try_get("foreach").db()?,
        loop_: r.try_get("loop").db()?,
    })
}

fn prompt_row(r: &SqliteRow) -> Result<PromptRow> {
    Ok(PromptRow {
        ref_: r.try_get("ref").db()?,
        position: r.try_get("position").db()?,
        system: r.try_get("system").db()?,
        template: r.try_get("template").db()?,
        produces: r.try_get("produces").db()?,
    })
}

fn model_row(r: &SqliteRow) -> Result<ModelRow> {
    Ok(ModelRow {
        ref_: r.try_get("ref").db()?,
        position: r.try_get("position").db()?,
        provider: r.try_get("provider").db()?,
        model: r.try_get("model").db()?,
        base_url: r.try_get("base_url").db()?,
        api_key_env: r.try_get("api_key_env").db()?,
        parameters: r.try_get("parameters").db()?,
        max_concurrency: r.try_get("max_concurrency").db()?,
        requests_per_minute: r.try_get("requests_per_minute").db()?,
        tokens_per_minute: r.try_get("tokens_per_minute").db()?,
        cost_in: r.try_get("cost_per_1k_input_tokens").db()?,
        cost_out: r.try_get("cost_per_1k_output_tokens").db()?,
        script: r.try_get("script").db()?,
    })
}
