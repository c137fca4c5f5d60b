//! Rows → bundle: the rows of [`bundle_rows`](super::bundle_rows), as a
//! backend read them, decoded back into a [`Bundle`].
//!
//! Rows may be written by hand with SQL, so a row that does not decode (bad
//! JSON, an unknown enum name, an inline action that is missing or shared)
//! is an [`Error::Backend`] whose message starts with `definition <def_id>:`
//! and names the object and column; a backend's loader turns those into
//! [`Error::BadDefinition`] with [`bad_definition`]. A backend reads each table in bundle order
//! (`ORDER BY position`, then insertion order) and calls the decoder of that
//! table, so the first bad row found is the one reported.

use std::collections::{BTreeMap, HashMap};

use braid_core::definition::{
    ActionBody, ActionDef, ActionKind, ActionRef, ArtifactTypeDef, Bundle, FanOut, Limits,
    ModelProfile, Node, Position, PromptSpec, RateLimit, Transition,
};
use serde_json::{Map, Value};

use super::bundle_rows::{ActionRow, DefRow, ModelRow, NodeRow, PromptRow, TransitionRow};
use super::json::{from_value, lenient_json, parse_json, parse_json_opt, typed_opt};
use crate::{Error, Result};

/// `e` as the loader of a version returns it: the decoders' errors (see the
/// module) become [`Error::BadDefinition`], others pass through.
pub fn bad_definition(e: Error) -> Error {
    match e {
        Error::Backend(m) if m.starts_with("definition ") => Error::BadDefinition(m),
        other => other,
    }
}

/// The content of a `workflow_defs` row, decoded.
pub struct DecodedDef {
    pub description: Option<String>,
    pub initial_node: String,
    pub input_schema: Option<Value>,
    pub output_schema: Option<Value>,
    pub output_mapping: BTreeMap<String, String>,
    pub limits: Option<Limits>,
    /// Names of the artifact types the version defines: the backend loads
    /// the latest schema of each and passes them to [`artifact_type`].
    pub defines: Vec<String>,
    /// The editor's node positions.
    pub layout: BTreeMap<String, Position>,
}

impl DecodedDef {
    /// Decodes the `workflow_defs` row of version `def_id`.
    pub fn decode(def_id: &str, row: DefRow) -> Result<DecodedDef> {
        let ctx = |field: &str| format!("definition {def_id}: {field}");
        Ok(DecodedDef {
            description: row.description,
            initial_node: row.initial_node,
            input_schema: parse_json_opt(row.input_schema.as_deref(), &|| ctx("input_schema"))?,
            output_schema: parse_json_opt(row.output_schema.as_deref(), &|| ctx("output_schema"))?,
            output_mapping: typed_opt(row.output_mapping, &|| ctx("output_mapping"))?
                .unwrap_or_default(),
            limits: typed_opt(row.limits, &|| ctx("limits"))?,
            defines: typed_opt(row.defines_artifact_types, &|| {
                ctx("defines_artifact_types")
            })?
            .unwrap_or_default(),
            layout: typed_opt(row.layout, &|| ctx("layout"))?.unwrap_or_default(),
        })
    }

    /// The bundle named `name` from this row and the decoded rows of the
    /// other tables.
    pub fn into_bundle(self, name: String, parts: BundleParts) -> Bundle {
        let BundleParts {
            actions,
            nodes,
            transitions,
            prompt_specs,
            model_profiles,
            artifact_types,
        } = parts;
        Bundle {
            name,
            description: self.description,
            input_schema: self.input_schema,
            output_schema: self.output_schema,
            initial_node: self.initial_node,
            nodes,
            transitions,
            output_mapping: self.output_mapping,
            limits: self.limits,
            actions: actions.into_named(),
            prompt_specs,
            model_profiles,
            artifact_types,
            layout: self.layout,
        }
    }
}

/// A version's decoded rows besides its `workflow_defs` row.
pub struct BundleParts {
    /// After [`nodes`] took the inline ones out.
    pub actions: LoadedActions,
    pub nodes: Vec<Node>,
    pub transitions: Vec<Transition>,
    pub prompt_specs: Vec<PromptSpec>,
    pub model_profiles: Vec<ModelProfile>,
    pub artifact_types: Vec<ArtifactTypeDef>,
}

/// A version's actions in order, each with its body (`None` once a node
/// took it inline), so that an inline action missing or shared by two
/// nodes is found.
pub struct LoadedActions {
    actions: Vec<(String, Option<ActionBody>)>,
    by_ref: HashMap<String, usize>,
}

impl LoadedActions {
    /// Decodes the `actions` rows of version `def_id`, in order.
    pub fn decode(def_id: &str, rows: Vec<ActionRow>) -> Result<LoadedActions> {
        let mut actions = Vec::with_capacity(rows.len());
        for r in rows {
            let r_ = r.ref_;
            let what = || format!("definition {def_id}: action {r_:?}");
            let body = action_body(r.kind, r.config, r.execution, &what)?;
            actions.push((r_, Some(body)));
        }
        let by_ref = actions
            .iter()
            .enumerate()
            .map(|(i, (r, _))| (r.clone(), i))
            .collect();
        Ok(LoadedActions { actions, by_ref })
    }

    /// Takes the body of the action `ref_` out, for the node that holds it
    /// inline; `None` when there is none or another node took it.
    fn take_inline(&mut self, ref_: &str) -> Option<ActionBody> {
        let &i = self.by_ref.get(ref_)?;
        self.actions[i].1.take()
    }

    /// The named actions: those no node took inline.
    fn into_named(self) -> Vec<ActionDef> {
        self.actions
            .into_iter()
            .filter_map(|(ref_, body)| body.map(|body| ActionDef { ref_, body }))
            .collect()
    }
}

/// Decodes the `nodes` rows of version `def_id`; an inline action is taken
/// out of `actions`.
pub fn nodes(def_id: &str, rows: Vec<NodeRow>, actions: &mut LoadedActions) -> Result<Vec<Node>> {
    let mut nodes = Vec::with_capacity(rows.len());
    for r in rows {
        let ref_ = r.ref_;
        let what = |field: &str| format!("definition {def_id}: node {ref_:?}: {field}");
        let action_ref = r.action_ref;
        let action = if r.action_inline {
            let body = actions.take_inline(&action_ref).ok_or_else(|| {
                let problem = format!("inline action {action_ref:?} is missing or shared");
                Error::Backend(what(&problem))
            })?;
            ActionRef::Inline(Box::new(body))
        } else {
            ActionRef::Ref(action_ref)
        };
        nodes.push(Node {
            name: r.name,
            action,
            input_mapping: typed_opt(r.input_mapping, &|| what("input_mapping"))?
                .unwrap_or_default(),
            output_mapping: typed_opt(r.output_mapping, &|| what("output_mapping"))?
                .unwrap_or_default(),
            fan_out: match r.fan_out {
                Some(s) => from_value(Value::String(s), &|| what("fan_out"))?,
                None => FanOut::default(),
            },
            fan_in: r
                .fan_in
                .map(|t| from_value(lenient_json(&t, string_or_object), &|| what("fan_in")))
                .transpose()?,
            joins: r.joins,
            merge: typed_opt(r.merge, &|| what("merge"))?,
            on_early_complete: r
                .on_early_complete
                .map(|s| from_value(Value::String(s), &|| what("on_early_complete")))
                .transpose()?,
            execution: typed_opt(r.execution, &|| what("execution"))?,
            ref_,
        });
    }
    Ok(nodes)
}

/// Decodes the `transitions` rows of version `def_id`.
pub fn transitions(def_id: &str, rows: Vec<TransitionRow>) -> Result<Vec<Transition>> {
    let mut transitions = Vec::with_capacity(rows.len());
    for r in rows {
        let (from, to) = (r.from, r.to);
        let what = |field: &str| format!("definition {def_id}: transition {from} -> {to}: {field}");
        transitions.push(Transition {
            priority: r.priority,
            condition: r
                .condition
                .map(|t| from_value(lenient_json(&t, string_or_object), &|| what("condition")))
                .transpose()?,
            on: from_value(Value::String(r.on), &|| what("on_outcome"))?,
            spawn_count: r
                .spawn_count
                .map(|t| from_value(lenient_json(&t, string_or_count), &|| what("spawn_count")))
                .transpose()?,
            foreach: typed_opt(r.foreach, &|| what("foreach"))?,
            loop_: typed_opt(r.loop_, &|| what("loop"))?,
            ref_: r.ref_,
            from,
            to,
        });
    }
    Ok(transitions)
}

/// Decodes the `prompt_specs` rows of version `def_id`.
pub fn prompt_specs(def_id: &str, rows: Vec<PromptRow>) -> Result<Vec<PromptSpec>> {
    rows.into_iter()
        .map(|r| {
            let ref_ = r.ref_;
            Ok(PromptSpec {
                system: r.system,
                template: r.template,
                produces: parse_json_opt(r.produces.as_deref(), &|| {
                    format!("definition {def_id}: prompt spec {ref_:?}: produces")
                })?,
                ref_,
            })
        })
        .collect()
}

/// Decodes the `model_profiles` rows of version `def_id`.
pub fn model_profiles(def_id: &str, rows: Vec<ModelRow>) -> Result<Vec<ModelProfile>> {
    rows.into_iter()
        .map(|r| {
            let ref_ = r.ref_;
            let what =
                |field: &str| format!("definition {def_id}: model profile {ref_:?}: {field}");
            let count = |field: &str, n: Option<i64>| {
                n.map(|n| {
                    u32::try_from(n)
                        .map_err(|_| Error::Backend(what(&format!("{field} out of range"))))
                })
                .transpose()
            };
            let rate_limit = RateLimit {
                requests_per_minute: count("requests_per_minute", r.requests_per_minute)?,
                tokens_per_minute: count("tokens_per_minute", r.tokens_per_minute)?,
            };
            Ok(ModelProfile {
                rate_limit: (rate_limit != RateLimit::default()).then_some(rate_limit),
                provider: r.provider,
                model: r.model,
                base_url: r.base_url,
                api_key_env: r.api_key_env,
                parameters: typed_opt::<Map<String, Value>>(r.parameters, &|| what("parameters"))?
                    .unwrap_or_default(),
                max_concurrency: r
                    .max_concurrency
                    .map(|n| {
                        u32::try_from(n)
                            .map_err(|_| Error::Backend(what("max_concurrency out of range")))
                    })
                    .transpose()?,
                cost_per_1k_input_tokens: r.cost_in,
                cost_per_1k_output_tokens: r.cost_out,
                script: parse_json_opt(r.script.as_deref(), &|| what("script"))?,
                ref_,
            })
        })
        .collect()
}

/// The artifact type `name` that version `def_id` defines, from the latest
/// `schema` of that name in its project (`None`: there is no row).
pub fn artifact_type(
    def_id: &str,
    name: String,
    schema: Option<String>,
) -> Result<ArtifactTypeDef> {
    let what = || format!("definition {def_id}: artifact type {name:?}");
    let schema = schema.ok_or_else(|| {
        Error::Backend(format!(
            "{}: listed in defines_artifact_types but not in artifact_types",
            what()
        ))
    })?;
    Ok(ArtifactTypeDef {
        schema: parse_json(&schema, &what)?,
        ref_: name,
    })
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
