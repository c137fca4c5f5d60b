//! Reading a version: normalized rows → [`Bundle`]. Rows that do not decode
//! (hand-written SQL with bad JSON or unknown values) name the definition,
//! object and column in the error.

use std::collections::{BTreeMap, HashMap};

use braid_core::definition::{
    ActionBody, ActionDef, ActionKind, ActionRef, ArtifactTypeDef, Bundle, FanOut, Limits,
    ModelProfile, Node, Position, PromptSpec, RateLimit, Transition,
};
use braid_store::{Error, Result, StoredDef};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

use crate::util::{Db, from_value, lenient_json, parse_json, parse_json_opt};

/// A version by workflow id or name (latest when `version` is `None`).
pub(crate) async fn get_def(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
    project_id: &str,
    id_or_name: &str,
    version: Option<i64>,
) -> Result<Option<String>> {
    let q = match version {
        None => sqlx::query_scalar(
            "SELECT d.id FROM workflow_defs d JOIN workflows w ON w.id = d.workflow_id
             WHERE w.project_id = $1 AND (w.id = $2 OR w.name = $3)
             ORDER BY d.version DESC LIMIT 1",
        )
        .bind(project_id.to_owned())
        .bind(id_or_name.to_owned())
        .bind(id_or_name.to_owned()),
        Some(v) => sqlx::query_scalar(
            "SELECT d.id FROM workflow_defs d JOIN workflows w ON w.id = d.workflow_id
             WHERE w.project_id = $1 AND (w.id = $2 OR w.name = $3) AND d.version = $4
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
pub(crate) async fn load_def(conn: &mut PgConnection, def_id: &str) -> Result<Option<StoredDef>> {
    load_def_rows(conn, def_id).await.map_err(|e| match e {
        Error::Backend(m) if m.starts_with("definition ") => Error::BadDefinition(m),
        other => other,
    })
}

async fn load_def_rows(conn: &mut PgConnection, def_id: &str) -> Result<Option<StoredDef>> {
    let Some(d) = sqlx::query(
        "SELECT d.workflow_id, d.version, d.description, d.initial_node, d.input_schema::text AS input_schema,
                d.output_schema::text AS output_schema, d.output_mapping::text AS output_mapping,
                d.limits::text AS limits, d.defines_artifact_types::text AS defines_artifact_types,
                d.layout::text AS layout, d.created_at, w.project_id, w.name
         FROM workflow_defs d JOIN workflows w ON w.id = d.workflow_id WHERE d.id = $1",
    )
    .bind(def_id.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .db()?
    else {
        return Ok(None);
    };
    let version = VersionRow::decode(&d, def_id)?;
    // Inline actions are taken out of this list by their nodes.
    let mut actions = load_actions(conn, def_id).await?;
    let nodes = load_nodes(conn, def_id, &mut actions).await?;
    let transitions = load_transitions(conn, def_id).await?;
    let prompt_specs = load_prompt_specs(conn, def_id).await?;
    let model_profiles = load_model_profiles(conn, def_id).await?;
    let artifact_types =
        load_artifact_types(conn, def_id, &version.project_id, version.defines).await?;
    let actions = actions
        .into_iter()
        .filter_map(|(ref_, body)| body.map(|body| ActionDef { ref_, body }))
        .collect();

    let bundle = Bundle {
        name: version.name.clone(),
        description: version.description,
        input_schema: version.input_schema,
        output_schema: version.output_schema,
        initial_node: version.initial_node,
        nodes,
        transitions,
        output_mapping: version.output_mapping,
        limits: version.limits,
        actions,
        prompt_specs,
        model_profiles,
        artifact_types,
        layout: version.layout,
    };
    Ok(Some(StoredDef {
        workflow_id: version.workflow_id,
        def_id: def_id.to_owned(),
        project_id: version.project_id,
        name: version.name,
        version: version.version,
        bundle,
        created_at: version.created_at,
    }))
}

/// The `workflow_defs` row of a version (with its workflow's project and
/// name), decoded.
struct VersionRow {
    workflow_id: String,
    project_id: String,
    name: String,
    version: i64,
    created_at: i64,
    description: Option<String>,
    initial_node: String,
    input_schema: Option<Value>,
    output_schema: Option<Value>,
    output_mapping: BTreeMap<String, String>,
    limits: Option<Limits>,
    /// Names of the artifact types the version defines.
    defines: Vec<String>,
    /// The editor's node positions.
    layout: BTreeMap<String, Position>,
}

impl VersionRow {
    fn decode(d: &PgRow, def_id: &str) -> Result<VersionRow> {
        let ctx = |field: &str| format!("definition {def_id}: {field}");
        Ok(VersionRow {
            workflow_id: d.try_get("workflow_id").db()?,
            project_id: d.try_get("project_id").db()?,
            name: d.try_get("name").db()?,
            version: d.try_get("version").db()?,
            created_at: d.try_get("created_at").db()?,
            description: d.try_get("description").db()?,
            initial_node: d.try_get("initial_node").db()?,
            input_schema: parse_json_opt(
                d.try_get::<Option<String>, _>("input_schema")
                    .db()?
                    .as_deref(),
                &|| ctx("input_schema"),
            )?,
            output_schema: parse_json_opt(
                d.try_get::<Option<String>, _>("output_schema")
                    .db()?
                    .as_deref(),
                &|| ctx("output_schema"),
            )?,
            output_mapping: typed_opt(d.try_get("output_mapping").db()?, &|| {
                ctx("output_mapping")
            })?
            .unwrap_or_default(),
            limits: typed_opt(d.try_get("limits").db()?, &|| ctx("limits"))?,
            defines: typed_opt(d.try_get("defines_artifact_types").db()?, &|| {
                ctx("defines_artifact_types")
            })?
            .unwrap_or_default(),
            layout: typed_opt(d.try_get("layout").db()?, &|| ctx("layout"))?.unwrap_or_default(),
        })
    }
}

/// Actions in order, each with its body (`None` once a node took it inline).
type LoadedActions = Vec<(String, Option<ActionBody>)>;

async fn load_actions(conn: &mut PgConnection, def_id: &str) -> Result<LoadedActions> {
    let mut actions: LoadedActions = Vec::new();
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
    Ok(actions)
}

/// Nodes in order; an inline action is taken out of `actions`, so one that
/// is missing or shared by two nodes is an error.
async fn load_nodes(
    conn: &mut PgConnection,
    def_id: &str,
    actions: &mut LoadedActions,
) -> Result<Vec<Node>> {
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
        let inline: bool = r.try_get("action_inline").db()?;
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
    Ok(nodes)
}

async fn load_transitions(conn: &mut PgConnection, def_id: &str) -> Result<Vec<Transition>> {
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
    Ok(transitions)
}

async fn load_prompt_specs(conn: &mut PgConnection, def_id: &str) -> Result<Vec<PromptSpec>> {
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
    Ok(prompt_specs)
}

async fn load_model_profiles(conn: &mut PgConnection, def_id: &str) -> Result<Vec<ModelProfile>> {
    let mut model_profiles = Vec::new();
    for r in def_rows(conn, MODEL_PROFILES_SQL, def_id).await? {
        let ref_: String = r.try_get("ref").db()?;
        let what = |field: &str| format!("definition {def_id}: model profile {ref_:?}: {field}");
        let script: Option<String> = r.try_get("script").db()?;
        let max_concurrency: Option<i64> = r.try_get("max_concurrency").db()?;
        let count = |field: &str, n: Option<i64>| {
            n.map(|n| {
                u32::try_from(n).map_err(|_| Error::Backend(what(&format!("{field} out of range"))))
            })
            .transpose()
        };
        let rate_limit = RateLimit {
            requests_per_minute: count(
                "requests_per_minute",
                r.try_get("requests_per_minute").db()?,
            )?,
            tokens_per_minute: count("tokens_per_minute", r.try_get("tokens_per_minute").db()?)?,
        };
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
            rate_limit: (rate_limit != RateLimit::default()).then_some(rate_limit),
            cost_per_1k_input_tokens: r.try_get("cost_per_1k_input_tokens").db()?,
            cost_per_1k_output_tokens: r.try_get("cost_per_1k_output_tokens").db()?,
            script: parse_json_opt(script.as_deref(), &|| what("script"))?,
            ref_,
        });
    }
    Ok(model_profiles)
}

/// The latest schema of each artifact type the version defines (types are
/// project-wide, so a newer schema saved by another workflow shows here).
async fn load_artifact_types(
    conn: &mut PgConnection,
    def_id: &str,
    project_id: &str,
    defines: Vec<String>,
) -> Result<Vec<ArtifactTypeDef>> {
    let mut artifact_types = Vec::new();
    for name in defines {
        let schema: Option<String> = sqlx::query_scalar(
            "SELECT schema::text FROM artifact_types WHERE project_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(project_id.to_owned())
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
    Ok(artifact_types)
}

// Queries of a version's rows, in bundle order.
const ACTIONS_SQL: &str = "SELECT ref, kind, config::text AS config, execution::text AS execution
     FROM actions WHERE def_id = $1 ORDER BY position, rowid";
const NODES_SQL: &str =
    "SELECT ref, name, action_ref, action_inline, input_mapping::text AS input_mapping,
            output_mapping::text AS output_mapping, fan_out, fan_in, joins, merge::text AS merge,
            on_early_complete, execution::text AS execution
     FROM nodes WHERE def_id = $1 ORDER BY position, rowid";
const TRANSITIONS_SQL: &str = "SELECT ref, from_node, to_node, priority, condition, on_outcome,
            spawn_count, foreach::text AS foreach, loop::text AS loop
     FROM transitions WHERE def_id = $1 ORDER BY position, id";
const PROMPT_SPECS_SQL: &str = "SELECT ref, system, template, produces::text AS produces
     FROM prompt_specs WHERE def_id = $1 ORDER BY position, rowid";
const MODEL_PROFILES_SQL: &str = "SELECT ref, provider, model, base_url, api_key_env,
            parameters::text AS parameters, max_concurrency, cost_per_1k_input_tokens,
            cost_per_1k_output_tokens, script::text AS script, requests_per_minute, tokens_per_minute
     FROM model_profiles WHERE def_id = $1 ORDER BY position, rowid";

/// The rows of one of a version's tables.
async fn def_rows(conn: &mut PgConnection, sql: &'static str, def_id: &str) -> Result<Vec<PgRow>> {
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
