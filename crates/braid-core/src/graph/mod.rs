//! Validation and compilation of a [`Bundle`] into an executable [`Graph`].
//!
//! A bundle is validated once (at save, or at a run's start for definitions
//! inserted by SQL) and compiled once: every expression, template and schema
//! is parsed here, so the state machine never re-parses anything per step.
//! Validation reports every problem at once (docs/definitions.md).
//!
//! [`compile`] runs the phases in order, each in its own module: the
//! catalog (refs, prompts, models, artifact types), actions, transitions,
//! the graph's shape (reachability, cycles), then nodes and their joins.
//! All phases report to one [`validator::Validator`].

mod actions;
mod catalog;
mod nodes;
mod reachability;
mod transitions;
mod validator;

use crate::definition::*;
use crate::retry::RetryPolicy;
use actions::ActionCompiler;
use braid_expr::{Expr, Schema, TargetPath, Template};
use nodes::NodeCompiler;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use validator::Validator;

/// Names every expression may use.
pub const CONTEXT_NAMES: [&str; 6] = ["input", "state", "output", "artifacts", "_branch", "_loop"];

/// Default per-attempt timeout of an action (docs/definitions.md).
pub const DEFAULT_TIMEOUT_MS: u64 = 300_000;

/// One validation problem: the object kind and ref, the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefinitionError {
    /// `workflow`, `node`, `transition`, `action`, `prompt_spec`, `model_profile`, `artifact_type`.
    pub kind: String,
    /// The object's ref (or `from->to` for a transition without ref).
    #[serde(rename = "ref")]
    pub ref_: String,
    /// The field at fault.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// What a bundle may refer to outside itself.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// The project's artifact types: name → (version, schema).
    pub artifact_types: BTreeMap<String, (i64, Value)>,
    /// The project's workflow names.
    pub workflows: BTreeSet<String>,
}

/// Index of a node in [`Graph::nodes`].
pub type NodeIdx = usize;

/// A validated, compiled workflow version.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The bundle it was compiled from.
    pub bundle: Bundle,
    /// Compiled nodes, in definition order.
    pub nodes: Vec<CompiledNode>,
    /// ref → index.
    pub index: HashMap<String, NodeIdx>,
    /// Where runs start.
    pub initial: NodeIdx,
    /// Compiled `input_schema`.
    pub input_schema: Option<Schema>,
    /// Compiled `output_schema`.
    pub output_schema: Option<Schema>,
    /// Workflow `output_mapping`: path inside `output` → expression.
    pub output_mapping: Vec<(Vec<String>, Expr)>,
    /// Definition limits.
    pub limits: Limits,
    /// For each node, the join node that closes its fan-outs (if any).
    pub joined_by: Vec<Option<NodeIdx>>,
    /// For each node, the refs of the loop transitions that enter it.
    pub loops_into: Vec<Vec<String>>,
    /// Model profiles by ref.
    pub model_profiles: BTreeMap<String, ModelProfile>,
}

/// A compiled node.
#[derive(Debug, Clone)]
pub struct CompiledNode {
    /// Node ref.
    pub ref_: String,
    /// Action ref (`<node>.action` when inline).
    pub action_ref: String,
    /// Compiled action.
    pub action: CompiledAction,
    /// `{ field: CEL }`.
    pub input_mapping: Vec<(String, Expr)>,
    /// `{ target: CEL }`.
    pub output_mapping: Vec<(TargetPath, Expr)>,
    /// Fan-out mode.
    pub fan_out: FanOut,
    /// Outgoing transitions sorted by priority (stable: ties in definition order).
    pub transitions: Vec<CompiledTransition>,
    /// Join configuration, when this node is a fan-in.
    pub join: Option<CompiledJoin>,
    /// Effective per-attempt timeout (`None` = unbounded).
    pub timeout_ms: Option<u64>,
    /// Effective retry policy.
    pub retry: RetryPolicy,
    /// Effective budget in USD of one visit's LLM attempts.
    pub max_cost_usd: Option<f64>,
}

/// A compiled action.
#[derive(Debug, Clone)]
pub enum CompiledAction {
    /// Pure writes, run inline by the core.
    UpdateContext(Vec<(TargetPath, Expr)>),
    /// A model call, run by an executor.
    LlmCall {
        /// System template.
        system: Option<Template>,
        /// User template.
        template: Template,
        /// Output schema source.
        produces: Option<Value>,
        /// Model profile ref.
        model: String,
    },
    /// An artifact write, run by an executor.
    WriteArtifact {
        /// Type name.
        type_name: String,
        /// Type version resolved at compile time.
        type_version: i64,
        /// Type schema.
        schema: Schema,
        /// Name in `artifacts`.
        name: String,
        /// `{ field: CEL }`.
        content: Vec<(String, Expr)>,
    },
    /// A child run (its own issue; compiled so validation covers it).
    WorkflowCall {
        /// Workflow name or expression.
        workflow: FromContextOr<String>,
        /// Compiled `from_context` of `workflow`.
        workflow_expr: Option<Expr>,
        /// Version or expression.
        version: Option<FromContextOr<u64>>,
        /// Compiled `from_context` of `version`.
        version_expr: Option<Expr>,
        /// Pass artifacts to the child.
        inherit_artifacts: bool,
        /// `propagate` or `catch`.
        on_failure: OnChildFailure,
    },
}

impl CompiledAction {
    /// True for actions the core runs inline (no executor, recomputed on replay).
    pub fn is_pure(&self) -> bool {
        matches!(self, CompiledAction::UpdateContext(_))
    }
}

/// A compiled transition.
#[derive(Debug, Clone)]
pub struct CompiledTransition {
    /// Position in the bundle's `transitions`.
    pub position: usize,
    /// `ref`, if any.
    pub ref_: Option<String>,
    /// Target node.
    pub to: NodeIdx,
    /// Priority group.
    pub priority: i64,
    /// Condition (absent = true).
    pub condition: Option<Expr>,
    /// Outcome it applies to.
    pub on: On,
    /// How many tokens taking it creates.
    pub spawn: Spawn,
    /// `loop.max_iterations`.
    pub max_iterations: Option<u64>,
}

/// Token creation of a transition.
#[derive(Debug, Clone)]
pub enum Spawn {
    /// One token, no sibling set by itself.
    One,
    /// A fixed count (forms a sibling set).
    Count(u64),
    /// A computed count (forms a sibling set).
    CountExpr(Expr),
    /// One token per element (forms a sibling set).
    Foreach {
        /// The collection.
        collection: Expr,
        /// Extra name bound to the item.
        item_var: Option<String>,
    },
}

/// Join configuration.
#[derive(Debug, Clone)]
pub struct CompiledJoin {
    /// Wait mode.
    pub fan_in: FanIn,
    /// The fan-out node whose sibling sets it closes.
    pub joins: NodeIdx,
    /// Merge.
    pub merge: Option<Merge>,
    /// Remaining members' fate.
    pub on_early_complete: EarlyComplete,
}

/// Result of a successful compilation.
#[derive(Debug)]
pub struct Compiled {
    /// The graph.
    pub graph: Graph,
    /// Problems that do not prevent running.
    pub warnings: Vec<DefinitionError>,
}

/// Validates and compiles `bundle` against `env`. Every problem is reported.
pub fn compile(bundle: &Bundle, env: &Env) -> Result<Compiled, Vec<DefinitionError>> {
    let mut v = Validator::new();
    if bundle.name.trim().is_empty() {
        v.err(
            "workflow",
            &bundle.name,
            "name",
            "the workflow needs a non-empty name",
        );
    }
    catalog::check_refs(&mut v, bundle);
    let index: HashMap<String, NodeIdx> = bundle
        .nodes
        .iter()
        .enumerate()
        .map(|(node, n)| (n.ref_.clone(), node))
        .collect();
    let initial = index.get(&bundle.initial_node).copied();
    if initial.is_none() {
        v.err(
            "workflow",
            &bundle.name,
            "initial_node",
            format!(
                "initial_node `{}` is not a node of this workflow",
                bundle.initial_node
            ),
        );
    }
    for node in bundle.layout.keys().filter(|r| !index.contains_key(*r)) {
        v.err(
            "workflow",
            &bundle.name,
            &format!("layout.{node}"),
            format!("layout names `{node}`, which is not a node of this workflow: remove it"),
        );
    }
    for (field, problem) in bundle.limits.unwrap_or_default().problems() {
        v.err("workflow", &bundle.name, field, problem);
    }
    let io = compile_workflow_io(&mut v, bundle);
    let catalog = catalog::compile_catalog(&mut v, bundle, env);
    let actions = ActionCompiler {
        bundle,
        env,
        catalog: &catalog,
    };
    let named_actions = actions.compile_named(&mut v);
    let outgoing = transitions::compile_transitions(&mut v, bundle, &index);
    reachability::check_shape(&mut v, bundle, initial, &outgoing);
    let (nodes, joined) = NodeCompiler {
        actions: &actions,
        named_actions: &named_actions,
        index: &index,
        outgoing: &outgoing,
    }
    .compile_all(&mut v);

    if !v.errors.is_empty() {
        return Err(v.errors);
    }
    let mut loops_into: Vec<Vec<String>> = vec![Vec::new(); bundle.nodes.len()];
    for n in &nodes {
        for t in &n.transitions {
            if let (Some(_), Some(r)) = (t.max_iterations, &t.ref_) {
                loops_into[t.to].push(r.clone());
            }
        }
    }
    let mut joined_by = vec![None; bundle.nodes.len()];
    for (fan_out, join) in &joined {
        joined_by[*fan_out] = index.get(join).copied();
    }
    let warnings = reachability::branch_warnings(&nodes, &joined_by);
    Ok(Compiled {
        graph: Graph {
            bundle: bundle.clone(),
            nodes,
            index,
            initial: initial.unwrap_or(0),
            input_schema: io.input_schema,
            output_schema: io.output_schema,
            output_mapping: io.output_mapping,
            limits: bundle.limits.unwrap_or_default(),
            joined_by,
            loops_into,
            model_profiles: bundle
                .model_profiles
                .iter()
                .map(|m| (m.ref_.clone(), m.clone()))
                .collect(),
        },
        warnings,
    })
}

/// The workflow's own input and output: schemas and `output_mapping`.
struct WorkflowIo {
    input_schema: Option<Schema>,
    output_schema: Option<Schema>,
    output_mapping: Vec<(Vec<String>, Expr)>,
}

fn compile_workflow_io(v: &mut Validator, bundle: &Bundle) -> WorkflowIo {
    let wf = bundle.name.as_str();
    let input_schema = bundle
        .input_schema
        .as_ref()
        .and_then(|s| v.schema("workflow", wf, "input_schema", s));
    let output_schema = bundle
        .output_schema
        .as_ref()
        .and_then(|s| v.schema("workflow", wf, "output_schema", s));
    let mut output_mapping = Vec::new();
    for (path, src) in &bundle.output_mapping {
        let field = format!("output_mapping.{path}");
        let p = path.strip_prefix("output.").unwrap_or(path);
        let segments: Vec<String> = p.split('.').map(str::to_string).collect();
        if segments.iter().any(|s| s.is_empty()) {
            v.err(
                "workflow",
                wf,
                &field,
                format!("`{path}` is not a path inside output (e.g. `winner` or `summary.text`)"),
            );
        }
        // At completion there is no token: no `_branch`, `_loop` or item.
        match Expr::compile(src, &["input", "state", "output", "artifacts"]) {
            Ok(e) => output_mapping.push((segments, e)),
            Err(e) => v.err("workflow", wf, &field, e.message),
        }
    }
    WorkflowIo {
        input_schema,
        output_schema,
        output_mapping,
    }
}

/// How problems name a transition: its ref, or `from->to` without one.
fn transition_ref(t: &Transition) -> String {
    t.ref_
        .clone()
        .unwrap_or_else(|| format!("{}->{}", t.from, t.to))
}
