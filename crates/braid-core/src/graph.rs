//! Validation and compilation of a [`Bundle`] into an executable [`Graph`].
//!
//! A bundle is validated once (at save, or at a run's start for definitions
//! inserted by SQL) and compiled once: every expression, template and schema
//! is parsed here, so the state machine never re-parses anything per step.
//! Validation reports every problem at once (SPEC §2).

use crate::definition::*;
use crate::retry::RetryPolicy;
use braid_expr::{Expr, Schema, TargetPath, Template};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Names every expression may use.
pub const CONTEXT_NAMES: [&str; 6] = ["input", "state", "output", "artifacts", "_branch", "_loop"];

/// Default per-attempt timeout of an action (SPEC §5).
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
    pub nodes: Vec<CNode>,
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
pub struct CNode {
    /// Node ref.
    pub ref_: String,
    /// Action ref (`<node>.action` when inline).
    pub action_ref: String,
    /// Compiled action.
    pub action: CAction,
    /// `{ field: CEL }`.
    pub input_mapping: Vec<(String, Expr)>,
    /// `{ target: CEL }`.
    pub output_mapping: Vec<(TargetPath, Expr)>,
    /// Fan-out mode.
    pub fan_out: FanOut,
    /// Outgoing transitions sorted by priority (stable: ties in definition order).
    pub transitions: Vec<CTransition>,
    /// Join configuration, when this node is a fan-in.
    pub join: Option<CJoin>,
    /// Effective per-attempt timeout (`None` = unbounded).
    pub timeout_ms: Option<u64>,
    /// Effective retry policy.
    pub retry: RetryPolicy,
}

/// A compiled action.
#[derive(Debug, Clone)]
pub enum CAction {
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

impl CAction {
    /// True for actions the core runs inline (no executor, recomputed on replay).
    pub fn is_pure(&self) -> bool {
        matches!(self, CAction::UpdateContext(_))
    }
}

/// A compiled transition.
#[derive(Debug, Clone)]
pub struct CTransition {
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
pub struct CJoin {
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

struct V {
    errors: Vec<DefinitionError>,
    names: Vec<&'static str>,
    item_vars: Vec<String>,
}

impl V {
    fn err(&mut self, kind: &str, ref_: &str, field: &str, message: impl Into<String>) {
        self.errors.push(DefinitionError {
            kind: kind.into(),
            ref_: ref_.into(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn names(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = self.names.iter().map(|s| s.to_string()).collect();
        v.extend(self.item_vars.iter().cloned());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn expr(
        &mut self,
        kind: &str,
        ref_: &str,
        field: &str,
        src: &str,
        extra: &[&str],
    ) -> Option<Expr> {
        let names = self.names(extra);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match Expr::compile(src, &names) {
            Ok(e) => Some(e),
            Err(e) => {
                self.err(kind, ref_, field, e.message);
                None
            }
        }
    }

    fn schema(&mut self, kind: &str, ref_: &str, field: &str, v: &Value) -> Option<Schema> {
        match Schema::compile(v) {
            Ok(s) => Some(s),
            Err(e) => {
                self.err(kind, ref_, field, format!("not a valid JSON Schema: {e}"));
                None
            }
        }
    }

    fn target(&mut self, kind: &str, ref_: &str, field: &str, path: &str) -> Option<TargetPath> {
        match TargetPath::parse(path) {
            Ok(p) if p.root == braid_expr::PathRoot::Artifacts => {
                self.err(kind, ref_, field, format!("`{path}`: artifacts.* is written by write_artifact only; write state.*, output.* or _branch.output.*"));
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                self.err(kind, ref_, field, e);
                None
            }
        }
    }
}

fn is_snake(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unique<'a>(v: &mut V, kind: &str, refs: impl Iterator<Item = &'a str>) {
    let mut seen = BTreeSet::new();
    for r in refs {
        if !is_snake(r) {
            v.err(
                kind,
                r,
                "ref",
                format!("ref `{r}` must be snake_case (a-z, 0-9, _; starting with a letter)"),
            );
        }
        if !seen.insert(r) {
            v.err(
                kind,
                r,
                "ref",
                format!("duplicate {kind} ref `{r}`: refs must be unique within their kind"),
            );
        }
    }
}

/// Validates and compiles `bundle` against `env`. Every problem is reported.
pub fn compile(bundle: &Bundle, env: &Env) -> Result<Compiled, Vec<DefinitionError>> {
    let mut v = V {
        errors: Vec::new(),
        names: CONTEXT_NAMES.to_vec(),
        item_vars: Vec::new(),
    };
    let wf = bundle.name.as_str();
    if bundle.name.trim().is_empty() {
        v.err(
            "workflow",
            wf,
            "name",
            "the workflow needs a non-empty name",
        );
    }
    unique(&mut v, "node", bundle.nodes.iter().map(|n| n.ref_.as_str()));
    unique(
        &mut v,
        "action",
        bundle.actions.iter().map(|a| a.ref_.as_str()),
    );
    unique(
        &mut v,
        "prompt_spec",
        bundle.prompt_specs.iter().map(|a| a.ref_.as_str()),
    );
    unique(
        &mut v,
        "model_profile",
        bundle.model_profiles.iter().map(|a| a.ref_.as_str()),
    );
    unique(
        &mut v,
        "artifact_type",
        bundle.artifact_types.iter().map(|a| a.ref_.as_str()),
    );
    unique(
        &mut v,
        "transition",
        bundle.transitions.iter().filter_map(|t| t.ref_.as_deref()),
    );

    for t in &bundle.transitions {
        if let Some(fe) = &t.foreach
            && let Some(iv) = &fe.item_var
        {
            let tref = t
                .ref_
                .clone()
                .unwrap_or_else(|| format!("{}->{}", t.from, t.to));
            if !is_ident(iv) || CONTEXT_NAMES.contains(&iv.as_str()) || iv == "result" {
                v.err("transition", &tref, "foreach.item_var", format!("`{iv}` is not a usable variable name (an identifier other than input, state, output, artifacts, result, _branch, _loop)"));
            } else if !v.item_vars.contains(iv) {
                v.item_vars.push(iv.clone());
            }
        }
    }

    let index: HashMap<String, NodeIdx> = bundle
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.ref_.clone(), i))
        .collect();
    let initial = match index.get(&bundle.initial_node) {
        Some(i) => *i,
        None => {
            v.err(
                "workflow",
                wf,
                "initial_node",
                format!(
                    "initial_node `{}` is not a node of this workflow",
                    bundle.initial_node
                ),
            );
            0
        }
    };

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
        let segs: Vec<String> = p.split('.').map(str::to_string).collect();
        if segs.iter().any(|s| s.is_empty()) {
            v.err(
                "workflow",
                wf,
                &field,
                format!("`{path}` is not a path inside output (e.g. `winner` or `summary.text`)"),
            );
        }
        // At completion there is no token: no `_branch`, `_loop` or item.
        let e = match Expr::compile(src, &["input", "state", "output", "artifacts"]) {
            Ok(e) => Some(e),
            Err(e) => {
                v.err("workflow", wf, &field, e.message);
                None
            }
        };
        if let Some(e) = e {
            output_mapping.push((segs, e));
        }
    }

    // Prompt specs, model profiles, artifact types.
    let mut prompts: BTreeMap<&str, (Option<Template>, Option<Template>)> = BTreeMap::new();
    for p in &bundle.prompt_specs {
        let system = p.system.as_ref().and_then(|s| match Template::compile(s) {
            Ok(t) => Some(t),
            Err(e) => {
                v.err("prompt_spec", &p.ref_, "system", e.message);
                None
            }
        });
        let template = match Template::compile(&p.template) {
            Ok(t) => Some(t),
            Err(e) => {
                v.err("prompt_spec", &p.ref_, "template", e.message);
                None
            }
        };
        if let Some(s) = &p.produces
            && v.schema("prompt_spec", &p.ref_, "produces", s).is_some()
            && s.get("type").and_then(Value::as_str) != Some("object")
        {
            v.err(
                "prompt_spec",
                &p.ref_,
                "produces",
                "structured output must be an object schema (`type: object`)",
            );
        }
        prompts.insert(&p.ref_, (system, template));
    }
    for m in &bundle.model_profiles {
        if !["openai", "anthropic", "openai_compatible", "scripted"].contains(&m.provider.as_str())
        {
            v.err(
                "model_profile",
                &m.ref_,
                "provider",
                format!(
                    "unknown provider `{}`: use openai, anthropic, openai_compatible or scripted",
                    m.provider
                ),
            );
        }
        if m.provider == "openai_compatible" && m.base_url.is_none() {
            v.err(
                "model_profile",
                &m.ref_,
                "base_url",
                "openai_compatible needs a base_url (e.g. http://localhost:11434/v1)",
            );
        }
        if m.provider == "scripted" && m.script.is_none() {
            v.err(
                "model_profile",
                &m.ref_,
                "script",
                "the scripted provider needs a script",
            );
        }
        if m.max_concurrency == Some(0) {
            v.err(
                "model_profile",
                &m.ref_,
                "max_concurrency",
                "max_concurrency must be at least 1",
            );
        }
    }
    let mut artifact_types: BTreeMap<String, (i64, Value)> = env.artifact_types.clone();
    for a in &bundle.artifact_types {
        if v.schema("artifact_type", &a.ref_, "schema", &a.schema)
            .is_some()
        {
            // The saved version is decided by the store; a changed schema
            // becomes the next version, an unchanged one keeps its number.
            let version = match env.artifact_types.get(&a.ref_) {
                Some((ver, s)) if *s == a.schema => *ver,
                Some((ver, _)) => ver + 1,
                None => 1,
            };
            artifact_types.insert(a.ref_.clone(), (version, a.schema.clone()));
        }
    }

    // Actions.
    let actions: HashMap<&str, &ActionBody> = bundle
        .actions
        .iter()
        .map(|a| (a.ref_.as_str(), &a.body))
        .collect();
    let mut compiled_actions: HashMap<String, Option<CAction>> = HashMap::new();
    let compile_action = |v: &mut V, aref: &str, body: &ActionBody| -> Option<CAction> {
        let k = "action";
        match &body.kind {
            ActionKind::UpdateContext { updates } => {
                let mut out = Vec::new();
                for (i, u) in updates.iter().enumerate() {
                    let p = v.target(k, aref, &format!("updates[{i}].path"), &u.path);
                    let e = v.expr(k, aref, &format!("updates[{i}].expr"), &u.expr, &[]);
                    if let (Some(p), Some(e)) = (p, e) {
                        out.push((p, e));
                    }
                }
                Some(CAction::UpdateContext(out))
            }
            ActionKind::LlmCall { prompt, model } => {
                let p = prompts.get(prompt.as_str()).cloned();
                if p.is_none() {
                    v.err(
                        k,
                        aref,
                        "prompt",
                        format!("prompt spec `{prompt}` is not defined in this bundle"),
                    );
                }
                if !bundle.model_profiles.iter().any(|m| &m.ref_ == model) {
                    v.err(
                        k,
                        aref,
                        "model",
                        format!("model profile `{model}` is not defined in this bundle"),
                    );
                }
                let (system, template) = p?;
                let spec = bundle.prompt_specs.iter().find(|s| &s.ref_ == prompt)?;
                Some(CAction::LlmCall {
                    system,
                    template: template?,
                    produces: spec.produces.clone(),
                    model: model.clone(),
                })
            }
            ActionKind::WriteArtifact {
                artifact_type,
                name,
                content_mapping,
            } => {
                if !is_ident(name) {
                    v.err(k, aref, "name", format!("artifact name `{name}` must be an identifier (it becomes artifacts.{name})"));
                }
                let mut content = Vec::new();
                for (field, src) in content_mapping {
                    if let Some(e) = v.expr(k, aref, &format!("content_mapping.{field}"), src, &[])
                    {
                        content.push((field.clone(), e));
                    }
                }
                let Some((version, schema)) = artifact_types.get(artifact_type) else {
                    v.err(k, aref, "artifact_type", format!("artifact type `{artifact_type}` is neither defined in this bundle nor in the project"));
                    return None;
                };
                let schema = Schema::compile(schema).ok()?;
                Some(CAction::WriteArtifact {
                    type_name: artifact_type.clone(),
                    type_version: *version,
                    schema,
                    name: name.clone(),
                    content,
                })
            }
            ActionKind::WorkflowCall {
                workflow,
                version,
                inherit_artifacts,
                on_failure,
            } => {
                let workflow_expr = match workflow {
                    FromContextOr::Value(name) => {
                        if name != &bundle.name && !env.workflows.contains(name) {
                            v.err(k, aref, "workflow", format!("workflow `{name}` does not exist in this project: save it first"));
                        }
                        None
                    }
                    FromContextOr::FromContext { from_context } => {
                        v.expr(k, aref, "workflow.from_context", from_context, &[])
                    }
                };
                let version_expr = match version {
                    Some(FromContextOr::FromContext { from_context }) => {
                        v.expr(k, aref, "version.from_context", from_context, &[])
                    }
                    Some(FromContextOr::Value(0)) => {
                        v.err(k, aref, "version", "versions start at 1");
                        None
                    }
                    Some(FromContextOr::Value(n)) if i64::try_from(*n).is_err() => {
                        v.err(k, aref, "version", "no workflow has that many versions");
                        None
                    }
                    _ => None,
                };
                Some(CAction::WorkflowCall {
                    workflow: workflow.clone(),
                    workflow_expr,
                    version: version.clone(),
                    version_expr,
                    inherit_artifacts: *inherit_artifacts,
                    on_failure: *on_failure,
                })
            }
        }
    };
    let check_exec = |v: &mut V, kind: &str, r: &str, e: &Execution| {
        if let Some(p) = &e.retry_policy
            && p.max_attempts == 0
        {
            v.err(
                kind,
                r,
                "execution.retry_policy.max_attempts",
                "max_attempts counts the first attempt: it must be at least 1",
            );
        }
        if e.timeout_ms == Some(0) {
            v.err(
                kind,
                r,
                "execution.timeout_ms",
                "timeout_ms must be positive",
            );
        }
    };
    for a in &bundle.actions {
        if let Some(e) = &a.body.execution {
            check_exec(&mut v, "action", &a.ref_, e);
        }
        let c = compile_action(&mut v, &a.ref_, &a.body);
        compiled_actions.insert(a.ref_.clone(), c);
    }

    // Transitions.
    let mut outgoing: Vec<Vec<CTransition>> = vec![Vec::new(); bundle.nodes.len()];
    for (pos, t) in bundle.transitions.iter().enumerate() {
        let tref = t
            .ref_
            .clone()
            .unwrap_or_else(|| format!("{}->{}", t.from, t.to));
        let from = index.get(&t.from).copied();
        let to = index.get(&t.to).copied();
        if from.is_none() {
            v.err(
                "transition",
                &tref,
                "from",
                format!("transition from unknown node `{}`", t.from),
            );
        }
        if to.is_none() {
            v.err(
                "transition",
                &tref,
                "to",
                format!("transition to unknown node `{}`", t.to),
            );
        }
        if t.loop_.is_some() && t.ref_.is_none() {
            v.err(
                "transition",
                &tref,
                "ref",
                "a transition with `loop` needs a `ref` (it names the loop counter _loop.<ref>)",
            );
        }
        if t.spawn_count.is_some() && t.foreach.is_some() {
            v.err(
                "transition",
                &tref,
                "spawn_count",
                "use either spawn_count or foreach, not both",
            );
        }
        let condition = match &t.condition {
            None => None,
            Some(Condition::Cel(src)) => v.expr("transition", &tref, "condition", src, &[]),
            Some(Condition::Structured(s)) => match s.to_cel() {
                Ok(src) => v.expr("transition", &tref, "condition", &src, &[]),
                Err(e) => {
                    v.err("transition", &tref, "condition", e);
                    None
                }
            },
        };
        let spawn = match (&t.spawn_count, &t.foreach) {
            (Some(SpawnCount::Fixed(n)), _) => Spawn::Count(*n),
            (Some(SpawnCount::Expr(src)), _) => {
                match v.expr("transition", &tref, "spawn_count", src, &[]) {
                    Some(e) => Spawn::CountExpr(e),
                    None => Spawn::One,
                }
            }
            (None, Some(fe)) => match v.expr(
                "transition",
                &tref,
                "foreach.collection",
                &fe.collection,
                &[],
            ) {
                Some(e) => Spawn::Foreach {
                    collection: e,
                    item_var: fe.item_var.clone(),
                },
                None => Spawn::One,
            },
            (None, None) => Spawn::One,
        };
        if let Some(l) = &t.loop_
            && l.max_iterations == 0
        {
            v.err(
                "transition",
                &tref,
                "loop.max_iterations",
                "max_iterations must be at least 1 (remove the transition to never loop)",
            );
        }
        if let (Some(f), Some(to)) = (from, to) {
            outgoing[f].push(CTransition {
                position: pos,
                ref_: t.ref_.clone(),
                to,
                priority: t.priority,
                condition,
                on: t.on,
                spawn,
                max_iterations: t.loop_.map(|l| l.max_iterations),
            });
        }
    }
    for o in &mut outgoing {
        o.sort_by_key(|t| (t.priority, t.position));
    }

    // Reachability from the initial node.
    let mut reachable = vec![false; bundle.nodes.len()];
    if !bundle.nodes.is_empty() && index.contains_key(&bundle.initial_node) {
        let mut q = VecDeque::from([initial]);
        reachable[initial] = true;
        while let Some(n) = q.pop_front() {
            for t in &outgoing[n] {
                if !reachable[t.to] {
                    reachable[t.to] = true;
                    q.push_back(t.to);
                }
            }
        }
        for (i, n) in bundle.nodes.iter().enumerate() {
            if !reachable[i] {
                v.err("node", &n.ref_, "ref", format!("node `{}` is unreachable from initial_node `{}`: add a transition to it or remove it", n.ref_, bundle.initial_node));
            }
        }
    }
    if bundle.nodes.is_empty() {
        v.err(
            "workflow",
            wf,
            "nodes",
            "a workflow needs at least one node",
        );
    }

    // Every cycle must contain a loop transition: the graph without loop
    // edges must be acyclic.
    if let Some(cycle_node) = find_cycle(&outgoing) {
        let r = &bundle.nodes[cycle_node].ref_;
        v.err("node", r, "transitions", format!("node `{r}` is on a cycle without a bounded loop: give one transition of the cycle `loop: {{ max_iterations: N }}` and a ref"));
    }

    // Nodes.
    let mut nodes = Vec::with_capacity(bundle.nodes.len());
    let mut joined: BTreeMap<NodeIdx, String> = BTreeMap::new();
    for n in &bundle.nodes {
        let r = n.ref_.as_str();
        let (action_ref, body_exec, action) = match &n.action {
            ActionRef::Ref(a) => match actions.get(a.as_str()) {
                Some(body) => (
                    a.clone(),
                    body.execution.clone(),
                    compiled_actions.get(a).cloned().flatten(),
                ),
                None => {
                    v.err(
                        "node",
                        r,
                        "action",
                        format!("action `{a}` is not defined in this bundle"),
                    );
                    (a.clone(), None, None)
                }
            },
            ActionRef::Inline(body) => {
                let aref = format!("{r}.action");
                if let Some(e) = &body.execution {
                    check_exec(&mut v, "node", r, e);
                }
                let c = compile_action(&mut v, &aref, body);
                (aref, body.execution.clone(), c)
            }
        };
        if let Some(e) = &n.execution {
            check_exec(&mut v, "node", r, e);
        }
        let mut input_mapping = Vec::new();
        for (field, src) in &n.input_mapping {
            if !is_ident(field) || CONTEXT_NAMES.contains(&field.as_str()) {
                v.err("node", r, &format!("input_mapping.{field}"), format!("`{field}` must be an identifier other than input, state, output, artifacts, _branch, _loop"));
            }
            if let Some(e) = v.expr("node", r, &format!("input_mapping.{field}"), src, &[]) {
                input_mapping.push((field.clone(), e));
            }
        }
        let mut output_mapping = Vec::new();
        for (path, src) in &n.output_mapping {
            let p = v.target("node", r, &format!("output_mapping.{path}"), path);
            let e = v.expr(
                "node",
                r,
                &format!("output_mapping.{path}"),
                src,
                &["result"],
            );
            if let (Some(p), Some(e)) = (p, e) {
                output_mapping.push((p, e));
            }
        }
        let is_wfcall = matches!(action, Some(CAction::WorkflowCall { .. }));
        let timeout_ms = n
            .execution
            .as_ref()
            .and_then(|e| e.timeout_ms)
            .or(body_exec.as_ref().and_then(|e| e.timeout_ms))
            .or(if is_wfcall {
                None
            } else {
                Some(DEFAULT_TIMEOUT_MS)
            });
        let retry = n
            .execution
            .as_ref()
            .and_then(|e| e.retry_policy.clone())
            .or(body_exec.as_ref().and_then(|e| e.retry_policy.clone()))
            .unwrap_or_default();
        let join = match (&n.fan_in, &n.joins) {
            (None, None) => {
                if n.merge.is_some() || n.on_early_complete.is_some() {
                    v.err(
                        "node",
                        r,
                        "merge",
                        "merge and on_early_complete need fan_in and joins",
                    );
                }
                None
            }
            (Some(_), None) => {
                v.err(
                    "node",
                    r,
                    "joins",
                    "a fan_in node must name the fan-out node it closes in `joins`",
                );
                None
            }
            (None, Some(_)) => {
                v.err(
                    "node",
                    r,
                    "fan_in",
                    "`joins` needs `fan_in` (all, any or { m_of_n: M })",
                );
                None
            }
            (Some(fan_in), Some(j)) => match index.get(j) {
                None => {
                    v.err("node", r, "joins", format!("joins unknown node `{j}`"));
                    None
                }
                Some(&ji) => {
                    if !can_fan_out(&outgoing[ji], bundle.nodes[ji].fan_out) {
                        v.err("node", r, "joins", format!("node `{j}` never fans out (no spawn_count, foreach, fan_out: all or several transitions): there is nothing to join"));
                    } else if !reaches(&outgoing, ji, index[r]) {
                        v.err(
                            "node",
                            r,
                            "joins",
                            format!("node `{j}` is not upstream of `{r}`"),
                        );
                    }
                    if let Some(other) = joined.insert(ji, r.to_string()) {
                        v.err(
                            "node",
                            r,
                            "joins",
                            format!(
                                "node `{other}` already joins `{j}`: one join per fan-out node"
                            ),
                        );
                    }
                    if let FanIn::MOfN { m_of_n } = fan_in {
                        if *m_of_n == 0 {
                            v.err("node", r, "fan_in.m_of_n", "m_of_n must be at least 1");
                        } else if let Some(total) =
                            static_sibling_count(&outgoing[ji], bundle.nodes[ji].fan_out)
                            && *m_of_n > total
                        {
                            v.err(
                                "node",
                                r,
                                "fan_in.m_of_n",
                                format!(
                                    "m_of_n is {m_of_n} but `{j}` spawns only {total} branches"
                                ),
                            );
                        }
                    }
                    if let Some(m) = &n.merge {
                        if m.source != "*" && m.source.split('.').any(|s| s.is_empty()) {
                            v.err(
                                "node",
                                r,
                                "merge.source",
                                format!(
                                    "`{}` is not a path inside the branch output (or `*`)",
                                    m.source
                                ),
                            );
                        }
                        v.target("node", r, "merge.target", &m.target);
                    }
                    Some(CJoin {
                        fan_in: *fan_in,
                        joins: ji,
                        merge: n.merge.clone(),
                        on_early_complete: n.on_early_complete.unwrap_or_default(),
                    })
                }
            },
        };
        let idx = index[r];
        nodes.push(CNode {
            ref_: n.ref_.clone(),
            action_ref,
            action: action.unwrap_or(CAction::UpdateContext(Vec::new())),
            input_mapping,
            output_mapping,
            fan_out: n.fan_out,
            transitions: outgoing[idx].clone(),
            join,
            timeout_ms,
            retry,
        });
    }

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
    let warnings = branch_warnings(&nodes, &joined_by);
    Ok(Compiled {
        graph: Graph {
            bundle: bundle.clone(),
            nodes,
            index,
            initial,
            input_schema,
            output_schema,
            output_mapping,
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

/// Warnings (SPEC §2): a fan-out whose branches can reach a terminal node
/// without passing its join — their writes would be discarded.
fn branch_warnings(nodes: &[CNode], joined_by: &[Option<NodeIdx>]) -> Vec<DefinitionError> {
    let mut warnings = Vec::new();
    for (f, node) in nodes.iter().enumerate() {
        if !can_fan_out(&node.transitions, node.fan_out) {
            continue;
        }
        let join = joined_by[f];
        // Search from the branch starts, never entering the join.
        let mut seen = vec![false; nodes.len()];
        let mut stack: Vec<NodeIdx> = node.transitions.iter().map(|t| t.to).collect();
        let mut terminal = None;
        while let Some(n) = stack.pop() {
            if Some(n) == join || std::mem::replace(&mut seen[n], true) {
                continue;
            }
            let out: Vec<NodeIdx> = nodes[n]
                .transitions
                .iter()
                .filter(|t| t.on != On::Failure)
                .map(|t| t.to)
                .collect();
            if out.is_empty() {
                terminal = Some(n);
                break;
            }
            stack.extend(out);
        }
        if let Some(t) = terminal {
            let message = match join {
                Some(j) => format!(
                    "a branch of `{}` can end at `{}` without reaching its join `{}`: that branch's writes are discarded",
                    node.ref_, nodes[t].ref_, nodes[j].ref_
                ),
                None => format!(
                    "`{}` fans out but no node joins it: its branches' writes are discarded when they end (at `{}`)",
                    node.ref_, nodes[t].ref_
                ),
            };
            warnings.push(DefinitionError {
                kind: "node".into(),
                ref_: node.ref_.clone(),
                field: "transitions".into(),
                message,
            });
        }
    }
    warnings
}

fn can_fan_out(out: &[CTransition], fan_out: FanOut) -> bool {
    out.iter().any(|t| !matches!(t.spawn, Spawn::One)) || (fan_out == FanOut::All && out.len() > 1)
}

/// The number of siblings a fan-out node creates when it is known statically.
fn static_sibling_count(out: &[CTransition], fan_out: FanOut) -> Option<u64> {
    let count = |t: &CTransition| match t.spawn {
        Spawn::One => Some(1),
        Spawn::Count(n) => Some(n),
        _ => None,
    };
    match fan_out {
        FanOut::FirstMatch => {
            // Only one transition is taken: known when all spawning ones agree.
            let counts: BTreeSet<Option<u64>> = out
                .iter()
                .filter(|t| t.on != On::Failure)
                .map(count)
                .collect();
            if counts.len() == 1 {
                counts.into_iter().next().flatten()
            } else {
                None
            }
        }
        FanOut::All => {
            let groups: BTreeSet<i64> = out.iter().map(|t| t.priority).collect();
            if groups.len() != 1 || out.iter().any(|t| t.condition.is_some()) {
                return None;
            }
            // Unknown past u64: a count that large is refused at run time.
            out.iter().try_fold(0u64, |a, t| a.checked_add(count(t)?))
        }
    }
}

fn reaches(out: &[Vec<CTransition>], from: NodeIdx, to: NodeIdx) -> bool {
    let mut seen = vec![false; out.len()];
    let mut q = VecDeque::from([from]);
    while let Some(n) = q.pop_front() {
        for t in &out[n] {
            if t.to == to {
                return true;
            }
            if !seen[t.to] {
                seen[t.to] = true;
                q.push_back(t.to);
            }
        }
    }
    false
}

/// A node on a cycle made only of non-loop transitions, if any.
fn find_cycle(out: &[Vec<CTransition>]) -> Option<NodeIdx> {
    // 0 = unvisited, 1 = on stack, 2 = done. Iterative DFS.
    let mut color = vec![0u8; out.len()];
    for start in 0..out.len() {
        if color[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        color[start] = 1;
        while let Some((n, i)) = stack.last_mut() {
            let n = *n;
            let edges: Vec<NodeIdx> = out[n]
                .iter()
                .filter(|t| t.max_iterations.is_none())
                .map(|t| t.to)
                .collect();
            if *i < edges.len() {
                let next = edges[*i];
                *i += 1;
                match color[next] {
                    0 => {
                        color[next] = 1;
                        stack.push((next, 0));
                    }
                    1 => return Some(next),
                    _ => {}
                }
            } else {
                color[n] = 2;
                stack.pop();
            }
        }
    }
    None
}
