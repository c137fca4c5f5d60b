//! Definitions: bundles ↔ normalized rows, workflows, projects and artifact types.

use std::collections::{BTreeMap, HashMap};

use braid_core::definition::{
    ActionBody, ActionDef, ActionKind, ActionRef, ArtifactTypeDef, Bundle, FanOut, Limits,
    ModelProfile, Node, PromptSpec, Transition,
};
use braid_store::{
    ArtifactType, Error, Millis, Page, Result, SaveOutcome, StoredDef, WorkflowSummary,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Connection, Row};

use crate::util::{
    Db, clamp_limit, enum_name, from_value, lenient_json, new_id, parse_json, parse_json_opt,
    to_json,
};

// ---------------------------------------------------------------------------
// Projects and listings
// ---------------------------------------------------------------------------

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
                    COALESCE((SELECT MAX(d.version) FROM workflow_defs d WHERE d.workflow_id = w.id), 0) AS latest
             FROM workflows w WHERE w.project_id = ? ORDER BY w.name LIMIT ?",
        )
        .bind(project_id.to_owned()),
        Some(after) => sqlx::query(
            "SELECT w.id, w.name, w.created_at,
                    COALESCE((SELECT MAX(d.version) FROM workflow_defs d WHERE d.workflow_id = w.id), 0) AS latest
             FROM workflows w WHERE w.project_id = ? AND w.name > ? ORDER BY w.name LIMIT ?",
        )
        .bind(project_id.to_owned())
        .bind(after.to_owned()),
    };
    let rows = q.bind(limit + 1).fetch_all(&mut *conn).await.db()?;
    let mut items = rows
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
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|w| w.name.clone())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
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

// ---------------------------------------------------------------------------
// Reading a version
// ---------------------------------------------------------------------------

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
             WHERE w.project_id = ? AND (w.id = ? OR w.name = ?)
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
/// [`Error::BadDefinition`], naming the definition, object and column.
pub(crate) async fn load_def(
    conn: &mut SqliteConnection,
    def_id: &str,
) -> Result<Option<StoredDef>> {
    load_def_rows(conn, def_id).await.map_err(|e| match e {
        Error::Backend(m) if m.starts_with("definition ") => Error::BadDefinition(m),
        other => other,
    })
}

async fn load_def_rows(conn: &mut SqliteConnection, def_id: &str) -> Result<Option<StoredDef>> {
    let Some(d) = sqlx::query(
        "SELECT d.workflow_id, d.version, d.description, d.initial_node, d.input_schema, d.output_schema,
                d.output_mapping, d.limits, d.defines_artifact_types, d.created_at, w.project_id, w.name
         FROM workflow_defs d JOIN workflows w ON w.id = d.workflow_id WHERE d.id = ?",
    )
    .bind(def_id.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .db()?
    else {
        return Ok(None);
    };
    let ctx = |field: &str| format!("definition {def_id}: {field}");

    let workflow_id: String = d.try_get("workflow_id").db()?;
    let project_id: String = d.try_get("project_id").db()?;
    let name: String = d.try_get("name").db()?;
    let version: i64 = d.try_get("version").db()?;
    let created_at: i64 = d.try_get("created_at").db()?;
    let description: Option<String> = d.try_get("description").db()?;
    let initial_node: String = d.try_get("initial_node").db()?;
    let input_schema = parse_json_opt(
        d.try_get::<Option<String>, _>("input_schema")
            .db()?
            .as_deref(),
        &|| ctx("input_schema"),
    )?;
    let output_schema = parse_json_opt(
        d.try_get::<Option<String>, _>("output_schema")
            .db()?
            .as_deref(),
        &|| ctx("output_schema"),
    )?;
    let output_mapping: BTreeMap<String, String> =
        typed_opt(d.try_get("output_mapping").db()?, &|| ctx("output_mapping"))?
            .unwrap_or_default();
    let limits: Option<Limits> = typed_opt(d.try_get("limits").db()?, &|| ctx("limits"))?;
    let defines: Vec<String> = typed_opt(d.try_get("defines_artifact_types").db()?, &|| {
        ctx("defines_artifact_types")
    })?
    .unwrap_or_default();

    // Actions, in order; inline ones are taken out by their nodes below.
    let mut actions: Vec<(String, Option<ActionBody>)> = Vec::new();
    for r in def_rows(conn, ACTIONS_SQL, def_id).await? {
        let r_: String = r.try_get("ref").db()?;
        let what = || format!("definition {def_id}: action {r_:?}");
        let body = action_body(
            r.try_get("kind").db()?,
            r.try_get("config").db()?,
            r.try_get("execution").db()?,
            &what,
        )?;
        actions.push((r_, Some(body)));
    }
    let action_index: HashMap<String, usize> = actions
        .iter()
        .enumerate()
        .map(|(i, (r, _))| (r.clone(), i))
        .collect();

    let mut nodes = Vec::new();
    for r in def_rows(conn, NODES_SQL, def_id).await? {
        let ref_: String = r.try_get("ref").db()?;
        let what = |field: &str| format!("definition {def_id}: node {ref_:?}: {field}");
        let action_ref: String = r.try_get("action_ref").db()?;
        let inline: bool = r.try_get::<i64, _>("action_inline").db()? != 0;
        let action = if inline {
            let body = action_index
                .get(&action_ref)
                .and_then(|&i| actions[i].1.take())
                .ok_or_else(|| {
                    let problem = format!("inline action {action_ref:?} is missing or shared");
                    Error::Backend(what(&problem))
                })?;
            ActionRef::Inline(Box::new(body))
        } else {
            ActionRef::Ref(action_ref)
        };
        let fan_out: Option<String> = r.try_get("fan_out").db()?;
        let fan_in: Option<String> = r.try_get("fan_in").db()?;
        let on_early: Option<String> = r.try_get("on_early_complete").db()?;
        nodes.push(Node {
            name: r.try_get("name").db()?,
            action,
            input_mapping: typed_opt(r.try_get("input_mapping").db()?, &|| what("input_mapping"))?
                .unwrap_or_default(),
            output_mapping: typed_opt(r.try_get("output_mapping").db()?, &|| {
                what("output_mapping")
            })?
            .unwrap_or_default(),
            fan_out: match fan_out {
                Some(s) => from_value(Value::String(s), &|| what("fan_out"))?,
                None => FanOut::default(),
            },
            fan_in: fan_in
                .map(|t| from_value(lenient_json(&t, string_or_object), &|| what("fan_in")))
                .transpose()?,
            joins: r.try_get("joins").db()?,
            merge: typed_opt(r.try_get("merge").db()?, &|| what("merge"))?,
            on_early_complete: on_early
                .map(|s| from_value(Value::String(s), &|| what("on_early_complete")))
                .transpose()?,
            execution: typed_opt(r.try_get("execution").db()?, &|| what("execution"))?,
            ref_,
        });
    }

    let mut transitions = Vec::new();
    for r in def_rows(conn, TRANSITIONS_SQL, def_id).await? {
        let ref_: Option<String> = r.try_get("ref").db()?;
        let from: String = r.try_get("from_node").db()?;
        let to: String = r.try_get("to_node").db()?;
        let what = |field: &str| format!("definition {def_id}: transition {from} -> {to}: {field}");
        let condition: Option<String> = r.try_get("condition").db()?;
        let spawn_count: Option<String> = r.try_get("spawn_count").db()?;
        let on: String = r.try_get("on_outcome").db()?;
        transitions.push(Transition {
            priority: r.try_get("priority").db()?,
            condition: condition
                .map(|t| from_value(lenient_json(&t, string_or_object), &|| what("condition")))
                .transpose()?,
            on: from_value(Value::String(on), &|| what("on_outcome"))?,
            spawn_count: spawn_count
                .map(|t| from_value(lenient_json(&t, string_or_count), &|| what("spawn_count")))
                .transpose()?,
            foreach: typed_opt(r.try_get("foreach").db()?, &|| what("foreach"))?,
            loop_: typed_opt(r.try_get("loop").db()?, &|| what("loop"))?,
            ref_,
            from,
            to,
        });
    }

    let mut prompt_specs = Vec::new();
    for r in def_rows(conn, PROMPT_SPECS_SQL, def_id).await? {
        let ref_: String = r.try_get("ref").db()?;
        let produces: Option<String> = r.try_get("produces").db()?;
        prompt_specs.push(PromptSpec {
            system: r.try_get("system").db()?,
            template: r.try_get("template").db()?,
            produces: parse_json_opt(produces.as_deref(), &|| {
                format!("definition {def_id}: prompt spec {ref_:?}: produces")
            })?,
            ref_,
        });
    }

    let mut model_profiles = Vec::new();
    for r in def_rows(conn, MODEL_PROFILES_SQL, def_id).await? {
        let ref_: String = r.try_get("ref").db()?;
        let what = |field: &str| format!("definition {def_id}: model profile {ref_:?}: {field}");
        let script: Option<String> = r.try_get("script").db()?;
        let max_concurrency: Option<i64> = r.try_get("max_concurrency").db()?;
        model_profiles.push(ModelProfile {
            provider: r.try_get("provider").db()?,
            model: r.try_get("model").db()?,
            base_url: r.try_get("base_url").db()?,
            api_key_env: r.try_get("api_key_env").db()?,
            parameters: typed_opt::<Map<String, Value>>(r.try_get("parameters").db()?, &|| {
                what("parameters")
            })?
            .unwrap_or_default(),
            max_concurrency: max_concurrency
                .map(|n| {
                    u32::try_from(n)
                        .map_err(|_| Error::Backend(what("max_concurrency out of range")))
                })
                .transpose()?,
            cost_per_1k_input_tokens: r.try_get("cost_per_1k_input_tokens").db()?,
            cost_per_1k_output_tokens: r.try_get("cost_per_1k_output_tokens").db()?,
            script: parse_json_opt(script.as_deref(), &|| what("script"))?,
            ref_,
        });
    }

    let mut artifact_types = Vec::new();
    for name in defines {
        let schema: Option<String> = sqlx::query_scalar(
            "SELECT schema FROM artifact_types WHERE project_id = ? AND name = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(project_id.clone())
        .bind(name.clone())
        .fetch_optional(&mut *conn)
        .await
        .db()?;
        let what = || format!("definition {def_id}: artifact type {name:?}");
        let schema = schema.ok_or_else(|| {
            Error::Backend(format!(
                "{}: listed in defines_artifact_types but not in artifact_types",
                what()
            ))
        })?;
        artifact_types.push(ArtifactTypeDef {
            schema: parse_json(&schema, &what)?,
            ref_: name,
        });
    }

    let actions = actions
        .into_iter()
        .filter_map(|(ref_, body)| body.map(|body| ActionDef { ref_, body }))
        .collect();

    let bundle = Bundle {
        name: name.clone(),
        description,
        input_schema,
        output_schema,
        initial_node,
        nodes,
        transitions,
        output_mapping,
        limits,
        actions,
        prompt_specs,
        model_profiles,
        artifact_types,
    };
    Ok(Some(StoredDef {
        workflow_id,
        def_id: def_id.to_owned(),
        project_id,
        name,
        version,
        bundle,
        created_at,
    }))
}

// Queries of a version's rows, in bundle order.
const ACTIONS_SQL: &str = "SELECT ref, kind, config, execution
     FROM actions WHERE def_id = ? ORDER BY position, rowid";
const NODES_SQL: &str = "SELECT ref, name, action_ref, action_inline, input_mapping,
            output_mapping, fan_out, fan_in, joins, merge, on_early_complete, execution
     FROM nodes WHERE def_id = ? ORDER BY position, rowid";
const TRANSITIONS_SQL: &str = "SELECT ref, from_node, to_node, priority, condition, on_outcome,
            spawn_count, foreach, loop
     FROM transitions WHERE def_id = ? ORDER BY position, id";
const PROMPT_SPECS_SQL: &str = "SELECT ref, system, template, produces
     FROM prompt_specs WHERE def_id = ? ORDER BY position, rowid";
const MODEL_PROFILES_SQL: &str = "SELECT ref, provider, model, base_url, api_key_env, parameters,
            max_concurrency, cost_per_1k_input_tokens, cost_per_1k_output_tokens, script
     FROM model_profiles WHERE def_id = ? ORDER BY position, rowid";

/// The rows of one of a version's tables.
async fn def_rows(
    conn: &mut SqliteConnection,
    sql: &'static str,
    def_id: &str,
) -> Result<Vec<SqliteRow>> {
    sqlx::query(sql)
        .bind(def_id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .db()
}

/// Parses an optional JSON column into a typed value.
fn typed_opt<T: DeserializeOwned>(
    text: Option<String>,
    what: &dyn Fn() -> String,
) -> Result<Option<T>> {
    match text {
        None => Ok(None),
        Some(t) => Ok(Some(from_value(parse_json(&t, what)?, what)?)),
    }
}

fn string_or_object(v: &Value) -> bool {
    v.is_string() || v.is_object()
}

fn string_or_count(v: &Value) -> bool {
    v.is_string() || v.is_u64()
}

/// An action from its `kind`, `config` (the kind's fields) and `execution` columns.
fn action_body(
    kind: String,
    config: Option<String>,
    execution: Option<String>,
    what: &dyn Fn() -> String,
) -> Result<ActionBody> {
    let mut map = match config {
        None => Map::new(),
        Some(t) => match parse_json(&t, &|| format!("{}: config", what()))? {
            Value::Object(m) => m,
            _ => {
                return Err(Error::Backend(format!(
                    "{}: config must be a JSON object",
                    what()
                )));
            }
        },
    };
    map.insert("kind".into(), Value::String(kind));
    let kind: ActionKind = from_value(Value::Object(map), what)?;
    let execution = typed_opt(execution, &|| format!("{}: execution", what()))?;
    Ok(ActionBody { kind, execution })
}

// ---------------------------------------------------------------------------
// Saving a version
// ---------------------------------------------------------------------------

struct ActionRow {
    ref_: String,
    position: i64,
    kind: String,
    config: Option<String>,
    execution: Option<String>,
}

struct NodeRow {
    ref_: String,
    position: i64,
    name: Option<String>,
    action_ref: String,
    action_inline: bool,
    input_mapping: Option<String>,
    output_mapping: Option<String>,
    fan_out: Option<String>,
    fan_in: Option<String>,
    joins: Option<String>,
    merge: Option<String>,
    on_early_complete: Option<String>,
    execution: Option<String>,
}

struct TransitionRow {
    position: i64,
    ref_: Option<String>,
    from: String,
    to: String,
    priority: i64,
    condition: Option<String>,
    on: String,
    spawn_count: Option<String>,
    foreach: Option<String>,
    loop_: Option<String>,
}

struct PromptRow {
    ref_: String,
    position: i64,
    system: Option<String>,
    template: String,
    produces: Option<String>,
}

struct ModelRow {
    ref_: String,
    position: i64,
    provider: String,
    model: String,
    base_url: Option<String>,
    api_key_env: Option<String>,
    parameters: Option<String>,
    max_concurrency: Option<i64>,
    cost_in: Option<f64>,
    cost_out: Option<f64>,
    script: Option<String>,
}

/// A bundle's rows, serialized before the transaction starts.
struct BundleRows {
    description: Option<String>,
    initial_node: String,
    input_schema: Option<String>,
    output_schema: Option<String>,
    output_mapping: Option<String>,
    limits: Option<String>,
    defines_artifact_types: Option<String>,
    actions: Vec<ActionRow>,
    nodes: Vec<NodeRow>,
    transitions: Vec<TransitionRow>,
    prompts: Vec<PromptRow>,
    models: Vec<ModelRow>,
}

fn opt_json<T: serde::Serialize>(v: &Option<T>) -> Result<Option<String>> {
    v.as_ref().map(to_json).transpose()
}

fn map_json(m: &BTreeMap<String, String>) -> Result<Option<String>> {
    if m.is_empty() {
        Ok(None)
    } else {
        to_json(m).map(Some)
    }
}

fn action_row(ref_: String, position: i64, body: &ActionBody) -> Result<ActionRow> {
    let ActionBody { kind, execution } = body;
    let mut map = match serde_json::to_value(kind) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(Error::Backend(format!(
                "action {ref_:?}: kind does not serialize to an object"
            )));
        }
        Err(e) => return Err(Error::Backend(format!("action {ref_:?}: {e}"))),
    };
    let kind = match map.remove("kind") {
        Some(Value::String(k)) => k,
        _ => return Err(Error::Backend(format!("action {ref_:?}: kind missing"))),
    };
    let config = if map.is_empty() {
        None
    } else {
        Some(to_json(&map)?)
    };
    Ok(ActionRow {
        ref_,
        position,
        kind,
        config,
        execution: opt_json(execution)?,
    })
}

impl BundleRows {
    fn new(bundle: &Bundle) -> Result<BundleRows> {
        // Destructured in full so that a new field fails to compile here
        // until it is stored.
        let Bundle {
            name: _,
            description,
            input_schema,
            output_schema,
            initial_node,
            nodes,
            transitions,
            output_mapping,
            limits,
            actions,
            prompt_specs,
            model_profiles,
            artifact_types,
        } = bundle;

        let mut action_rows = Vec::with_capacity(actions.len() + nodes.len());
        for (i, a) in actions.iter().enumerate() {
            action_rows.push(action_row(a.ref_.clone(), i as i64, &a.body)?);
        }
        let mut node_rows = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let Node {
                ref_,
                name,
                action,
                input_mapping,
                output_mapping,
                fan_out,
                fan_in,
                joins,
                merge,
                on_early_complete,
                execution,
            } = n;
            let (action_ref, action_inline) = match action {
                ActionRef::Ref(r) => (r.clone(), false),
                ActionRef::Inline(body) => {
                    let r = format!("{ref_}.action");
                    action_rows.push(action_row(r.clone(), (actions.len() + i) as i64, body)?);
                    (r, true)
                }
            };
            node_rows.push(NodeRow {
                ref_: ref_.clone(),
                position: i as i64,
                name: name.clone(),
                action_ref,
                action_inline,
                input_mapping: map_json(input_mapping)?,
                output_mapping: map_json(output_mapping)?,
                fan_out: if *fan_out == FanOut::default() {
                    None
                } else {
                    Some(enum_name(fan_out)?)
                },
                // Bare `all` / `any`, or the `{"m_of_n": M}` object.
                fan_in: match fan_in.as_ref().map(serde_json::to_value).transpose() {
                    Ok(None) => None,
                    Ok(Some(Value::String(s))) => Some(s),
                    Ok(Some(v)) => Some(to_json(&v)?),
                    Err(e) => return Err(Error::Backend(format!("node {ref_:?}: fan_in: {e}"))),
                },
                joins: joins.clone(),
                merge: opt_json(merge)?,
                on_early_complete: on_early_complete.as_ref().map(enum_name).transpose()?,
                execution: opt_json(execution)?,
            });
        }
        let mut transition_rows = Vec::with_capacity(transitions.len());
        for (i, t) in transitions.iter().enumerate() {
            let Transition {
                ref_,
                from,
                to,
                priority,
                condition,
                on,
                spawn_count,
                foreach,
                loop_,
            } = t;
            transition_rows.push(TransitionRow {
                position: i as i64,
                ref_: ref_.clone(),
                from: from.clone(),
                to: to.clone(),
                priority: *priority,
                condition: opt_json(condition)?,
                on: enum_name(on)?,
                spawn_count: opt_json(spawn_count)?,
                foreach: opt_json(foreach)?,
                loop_: opt_json(loop_)?,
            });
        }
        let mut prompts = Vec::with_capacity(prompt_specs.len());
        for (i, p) in prompt_specs.iter().enumerate() {
            let PromptSpec {
                ref_,
                system,
                template,
                produces,
            } = p;
            prompts.push(PromptRow {
                ref_: ref_.clone(),
                position: i as i64,
                system: system.clone(),
                template: template.clone(),
                produces: opt_json(produces)?,
            });
        }
        let mut models = Vec::with_capacity(model_profiles.len());
        for (i, m) in model_profiles.iter().enumerate() {
            let ModelProfile {
                ref_,
                provider,
                model,
                base_url,
                api_key_env,
                parameters,
                max_concurrency,
                cost_per_1k_input_tokens,
                cost_per_1k_output_tokens,
                script,
            } = m;
            models.push(ModelRow {
                ref_: ref_.clone(),
                position: i as i64,
                provider: provider.clone(),
                model: model.clone(),
                base_url: base_url.clone(),
                api_key_env: api_key_env.clone(),
                parameters: if parameters.is_empty() {
                    None
                } else {
                    Some(to_json(parameters)?)
                },
                max_concurrency: max_concurrency.map(i64::from),
                cost_in: *cost_per_1k_input_tokens,
                cost_out: *cost_per_1k_output_tokens,
                script: opt_json(script)?,
            });
        }
        let names: Vec<&str> = artifact_types.iter().map(|a| a.ref_.as_str()).collect();
        Ok(BundleRows {
            description: description.clone(),
            initial_node: initial_node.clone(),
            input_schema: opt_json(input_schema)?,
            output_schema: opt_json(output_schema)?,
            output_mapping: map_json(output_mapping)?,
            limits: opt_json(limits)?,
            defines_artifact_types: if names.is_empty() {
                None
            } else {
                Some(to_json(&names)?)
            },
            actions: action_rows,
            nodes: node_rows,
            transitions: transition_rows,
            prompts,
            models,
        })
    }
}

/// Saves `bundle` as version N+1 unless it equals the latest version. One transaction.
pub(crate) async fn save_bundle(
    conn: &mut SqliteConnection,
    project_id: &str,
    bundle: &Bundle,
    now: Millis,
) -> Result<SaveOutcome> {
    let rows = BundleRows::new(bundle)?;
    let canonical = bundle.canonical();

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.db()?;
    let project: Option<i64> = sqlx::query_scalar("SELECT 1 FROM projects WHERE id = ?")
        .bind(project_id.to_owned())
        .fetch_optional(&mut *tx)
        .await
        .db()?;
    if project.is_none() {
        return Err(Error::NotFound(format!("project {project_id:?}")));
    }

    let existing: Option<String> =
        sqlx::query_scalar("SELECT id FROM workflows WHERE project_id = ? AND name = ?")
            .bind(project_id.to_owned())
            .bind(bundle.name.clone())
            .fetch_optional(&mut *tx)
            .await
            .db()?;
    let workflow_id = match existing {
        Some(id) => id,
        None => {
            let id = new_id("wf");
            sqlx::query(
                "INSERT INTO workflows (id, project_id, name, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(id.clone())
            .bind(project_id.to_owned())
            .bind(bundle.name.clone())
            .bind(now)
            .execute(&mut *tx)
            .await
            .db()?;
            id
        }
    };

    let latest: Option<(String, i64)> = sqlx::query_as(
        "SELECT id, version FROM workflow_defs WHERE workflow_id = ? ORDER BY version DESC LIMIT 1",
    )
    .bind(workflow_id.clone())
    .fetch_optional(&mut *tx)
    .await
    .db()?;
    if let Some((def_id, version)) = &latest {
        // A latest version that no longer loads (e.g. broken by hand) is
        // simply replaced by the new one.
        if let Ok(Some(stored)) = load_def(&mut tx, def_id).await
            && stored.bundle.canonical() == canonical
        {
            tx.commit().await.db()?;
            return Ok(SaveOutcome {
                workflow_id,
                def_id: def_id.clone(),
                version: *version,
                created: false,
            });
        }
    }
    let version = latest.map_or(1, |(_, v)| v + 1);

    // Artifact types: a new version only when the schema changed.
    for at in &bundle.artifact_types {
        let current: Option<(i64, String)> = sqlx::query_as(
            "SELECT version, schema FROM artifact_types WHERE project_id = ? AND name = ?
             ORDER BY version DESC LIMIT 1",
        )
        .bind(project_id.to_owned())
        .bind(at.ref_.clone())
        .fetch_optional(&mut *tx)
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
        .execute(&mut *tx)
        .await
        .db()?;
    }

    let def_id = new_id("def");
    sqlx::query(
        "INSERT INTO workflow_defs (id, workflow_id, version, description, initial_node, input_schema, output_schema,
                                    output_mapping, limits, defines_artifact_types, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(def_id.clone())
    .bind(workflow_id.clone())
    .bind(version)
    .bind(rows.description)
    .bind(rows.initial_node)
    .bind(rows.input_schema)
    .bind(rows.output_schema)
    .bind(rows.output_mapping)
    .bind(rows.limits)
    .bind(rows.defines_artifact_types)
    .bind(now)
    .execute(&mut *tx)
    .await
    .db()?;

    for a in rows.actions {
        sqlx::query("INSERT INTO actions (def_id, ref, position, kind, config, execution) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(def_id.clone())
            .bind(a.ref_)
            .bind(a.position)
            .bind(a.kind)
            .bind(a.config)
            .bind(a.execution)
            .execute(&mut *tx)
            .await
            .db()?;
    }
    for p in rows.prompts {
        sqlx::query(
            "INSERT INTO prompt_specs (def_id, ref, position, system, template, produces) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.clone())
        .bind(p.ref_)
        .bind(p.position)
        .bind(p.system)
        .bind(p.template)
        .bind(p.produces)
        .execute(&mut *tx)
        .await
        .db()?;
    }
    for m in rows.models {
        sqlx::query(
            "INSERT INTO model_profiles (def_id, ref, position, provider, model, base_url, api_key_env, parameters,
                                         max_concurrency, cost_per_1k_input_tokens, cost_per_1k_output_tokens, script)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.clone())
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
        .execute(&mut *tx)
        .await
        .db()?;
    }
    for n in rows.nodes {
        sqlx::query(
            "INSERT INTO nodes (def_id, ref, position, name, action_ref, action_inline, input_mapping, output_mapping,
                                fan_out, fan_in, joins, merge, on_early_complete, execution)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.clone())
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
        .execute(&mut *tx)
        .await
        .db()?;
    }
    for t in rows.transitions {
        sqlx::query(
            "INSERT INTO transitions (def_id, position, ref, from_node, to_node, priority, condition, on_outcome,
                                      spawn_count, foreach, loop)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(def_id.clone())
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
