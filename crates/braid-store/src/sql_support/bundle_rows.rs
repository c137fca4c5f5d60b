//! Bundle → rows: a bundle serialized into one row per action, node,
//! transition, prompt spec and model profile, before the saving transaction
//! starts; [`bundle_load`](super::bundle_load) is the inverse.
//!
//! A row holds its columns as a backend binds and reads them: JSON as text
//! (PostgreSQL casts it to and from JSONB in its SQL), enum names as bare
//! text, `position` as the object's index in its list. The structs serve
//! both directions, so a column added to a table is added here once.

use std::collections::BTreeMap;

use braid_core::definition::{
    ActionBody, ActionRef, Bundle, FanOut, ModelProfile, Node, Position, PromptSpec, Transition,
};
use serde_json::Value;

use super::json::{enum_name, to_json};
use crate::{Error, Result};

/// An `actions` row: a named action, or a node's inline one (`<node>.action`).
pub struct ActionRow {
    pub ref_: String,
    pub position: i64,
    /// The action kind's tag (`llm`, `http` …).
    pub kind: String,
    /// The kind's other fields as a JSON object; `None` when it has none.
    pub config: Option<String>,
    pub execution: Option<String>,
}

/// A `nodes` row.
pub struct NodeRow {
    pub ref_: String,
    pub position: i64,
    pub name: Option<String>,
    /// The action's ref, or the inline action's row `<node>.action`.
    pub action_ref: String,
    pub action_inline: bool,
    pub input_mapping: Option<String>,
    pub output_mapping: Option<String>,
    /// An enum name; `None` for the default.
    pub fan_out: Option<String>,
    /// Bare `all` / `any`, or the `{"m_of_n": M}` object as JSON.
    pub fan_in: Option<String>,
    pub joins: Option<String>,
    pub merge: Option<String>,
    /// An enum name.
    pub on_early_complete: Option<String>,
    pub execution: Option<String>,
}

/// A `transitions` row.
pub struct TransitionRow {
    pub position: i64,
    pub ref_: Option<String>,
    /// `from_node`.
    pub from: String,
    /// `to_node`.
    pub to: String,
    pub priority: i64,
    /// JSON, or bare text for a CEL string written by hand.
    pub condition: Option<String>,
    /// `on_outcome`: an enum name.
    pub on: String,
    /// JSON, or bare text for a CEL string written by hand.
    pub spawn_count: Option<String>,
    pub foreach: Option<String>,
    /// The `loop` column.
    pub loop_: Option<String>,
}

/// A `prompt_specs` row.
pub struct PromptRow {
    pub ref_: String,
    pub position: i64,
    pub system: Option<String>,
    pub template: String,
    pub produces: Option<String>,
}

/// A `model_profiles` row.
pub struct ModelRow {
    pub ref_: String,
    pub position: i64,
    pub provider: String,
    pub model: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    /// A JSON object; `None` when empty.
    pub parameters: Option<String>,
    pub max_concurrency: Option<i64>,
    /// `rate_limit.requests_per_minute`.
    pub requests_per_minute: Option<i64>,
    /// `rate_limit.tokens_per_minute`.
    pub tokens_per_minute: Option<i64>,
    /// `cost_per_1k_input_tokens`.
    pub cost_in: Option<f64>,
    /// `cost_per_1k_output_tokens`.
    pub cost_out: Option<f64>,
    pub script: Option<String>,
}

/// The content columns of a `workflow_defs` row (its ids, version number
/// and times are the backend's business).
pub struct DefRow {
    pub description: Option<String>,
    pub initial_node: String,
    pub input_schema: Option<String>,
    pub output_schema: Option<String>,
    pub output_mapping: Option<String>,
    pub limits: Option<String>,
    /// The names of the artifact types the version defines, a JSON array.
    pub defines_artifact_types: Option<String>,
    /// The editor's positions (`None` when the bundle has none).
    pub layout: Option<String>,
}

/// A bundle's rows, serialized before the transaction starts.
pub struct BundleRows {
    pub def: DefRow,
    /// Named actions first, then the nodes' inline ones.
    pub actions: Vec<ActionRow>,
    pub nodes: Vec<NodeRow>,
    pub transitions: Vec<TransitionRow>,
    pub prompts: Vec<PromptRow>,
    pub models: Vec<ModelRow>,
}

fn opt_json<T: serde::Serialize>(v: &Option<T>) -> Result<Option<String>> {
    v.as_ref().map(to_json).transpose()
}

/// A bundle's `layout` as stored: `None` when it has none.
fn layout_json(layout: &BTreeMap<String, Position>) -> Result<Option<String>> {
    if layout.is_empty() {
        Ok(None)
    } else {
        to_json(layout).map(Some)
    }
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
    /// Every row of `bundle`. Fails only when a part of it does not
    /// serialize as its column expects (a bug, not bad input).
    pub fn new(bundle: &Bundle) -> Result<BundleRows> {
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
            layout,
        } = bundle;

        let mut action_rows = Vec::with_capacity(actions.len() + nodes.len());
        for (i, a) in actions.iter().enumerate() {
            action_rows.push(action_row(a.ref_.clone(), i as i64, &a.body)?);
        }
        let mut node_rows = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            // Inline actions are stored after the named ones.
            let (row, inline) = node_row(n, i as i64, (actions.len() + i) as i64)?;
            action_rows.extend(inline);
            node_rows.push(row);
        }
        let names: Vec<&str> = artifact_types.iter().map(|a| a.ref_.as_str()).collect();
        Ok(BundleRows {
            def: DefRow {
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
                layout: layout_json(layout)?,
            },
            actions: action_rows,
            nodes: node_rows,
            transitions: enumerate_rows(transitions, transition_row)?,
            prompts: enumerate_rows(prompt_specs, prompt_row)?,
            models: enumerate_rows(model_profiles, model_row)?,
        })
    }
}

/// One row per item, with its position in the bundle.
fn enumerate_rows<T, R>(items: &[T], row: fn(i64, &T) -> Result<R>) -> Result<Vec<R>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| row(i as i64, item))
        .collect()
}

/// A node's row, and the row of its inline action (named `<node>.action`,
/// at `inline_position`) when it has one.
fn node_row(n: &Node, position: i64, inline_position: i64) -> Result<(NodeRow, Option<ActionRow>)> {
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
    let (action_ref, action_inline, inline_row) = match action {
        ActionRef::Ref(r) => (r.clone(), false, None),
        ActionRef::Inline(body) => {
            let r = format!("{ref_}.action");
            let row = action_row(r.clone(), inline_position, body)?;
            (r, true, Some(row))
        }
    };
    let row = NodeRow {
        ref_: ref_.clone(),
        position,
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
    };
    Ok((row, inline_row))
}

fn transition_row(position: i64, t: &Transition) -> Result<TransitionRow> {
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
    Ok(TransitionRow {
        position,
        ref_: ref_.clone(),
        from: from.clone(),
        to: to.clone(),
        priority: *priority,
        condition: opt_json(condition)?,
        on: enum_name(on)?,
        spawn_count: opt_json(spawn_count)?,
        foreach: opt_json(foreach)?,
        loop_: opt_json(loop_)?,
    })
}

fn prompt_row(position: i64, p: &PromptSpec) -> Result<PromptRow> {
    let PromptSpec {
        ref_,
        system,
        template,
        produces,
    } = p;
    Ok(PromptRow {
        ref_: ref_.clone(),
        position,
        system: system.clone(),
        template: template.clone(),
        produces: opt_json(produces)?,
    })
}

fn model_row(position: i64, m: &ModelProfile) -> Result<ModelRow> {
    let ModelProfile {
        ref_,
        provider,
        model,
        base_url,
        api_key_env,
        parameters,
        max_concurrency,
        rate_limit,
        cost_per_1k_input_tokens,
        cost_per_1k_output_tokens,
        script,
    } = m;
    let rate = rate_limit.unwrap_or_default();
    Ok(ModelRow {
        ref_: ref_.clone(),
        position,
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
        requests_per_minute: rate.requests_per_minute.map(i64::from),
        tokens_per_minute: rate.tokens_per_minute.map(i64::from),
        cost_in: *cost_per_1k_input_tokens,
        cost_out: *cost_per_1k_output_tokens,
        script: opt_json(script)?,
    })
}
