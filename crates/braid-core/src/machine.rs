//! The run state machine: `apply(state, input, now) -> (events, commands)`.
//!
//! Pure: no IO, no clock (the caller passes `now`), no randomness (retry
//! jitter is derived from the run, token and attempt). Decisions are made
//! here and recorded as events; the state changes only by applying those
//! events, so replay equals live execution. Pure actions (`update_context`)
//! run inline; the others become [`Command::Dispatch`] for the runtime.

use crate::definition::{
    EarlyComplete, FanIn, FanOut, FromContextOr, Limits, Merge, MergeStrategy, On, OnChildFailure,
};
use crate::event::{ErrorInfo, Event, EventBody, Millis, Usage, Write};
use crate::graph::{CompiledAction, CompiledNode, CompiledTransition, Graph, Spawn};
use crate::state::{RunState, RunStatus, TokenStatus};
use braid_expr::{Expr, PathRoot, TargetPath, Vars};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::VecDeque;

/// Something that happened to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// Start the run with this input.
    Start {
        /// The run's input (validated here against `input_schema`).
        input: Value,
        /// Effective limits.
        limits: Limits,
        /// Artifacts inherited from a parent (`inherit_artifacts: true`).
        artifacts: Option<Value>,
    },
    /// The runtime created the child run of a `workflow_call` attempt.
    ChildStarted {
        /// The calling token.
        token: String,
        /// Its attempt.
        attempt: u32,
        /// The child run (as given in [`Command::StartChild`]).
        child_run_id: String,
        /// The workflow called.
        workflow: String,
        /// The version resolved at call time.
        version: i64,
    },
    /// A child run ended.
    ChildFinished {
        /// The calling token.
        token: String,
        /// The child run.
        child_run_id: String,
        /// How it ended.
        outcome: ChildOutcome,
    },
    /// An executor started an attempt (reported for retries).
    TaskStarted {
        /// Token id.
        token: String,
        /// Attempt.
        attempt: u32,
    },
    /// An executor finished an attempt.
    TaskResult {
        /// Token id.
        token: String,
        /// Attempt.
        attempt: u32,
        /// What happened.
        outcome: Outcome,
    },
    /// Cancel the run.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The run's `timeout_ms` elapsed.
    RunTimeout,
    /// Go on with the tokens a step left pending when it reached its event
    /// budget ([`Step::more`], [`apply_bounded`]).
    Continue,
}

/// Result of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The action succeeded.
    Success {
        /// The action's output.
        result: Value,
        /// LLM usage.
        usage: Option<Usage>,
        /// Wall time.
        duration_ms: u64,
    },
    /// The attempt failed.
    Failure {
        /// The error (code, message, retryable).
        error: ErrorInfo,
        /// A provider's `Retry-After`.
        retry_after_ms: Option<u64>,
        /// Wall time.
        duration_ms: u64,
    },
}

/// How a child run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChildOutcome {
    /// With this output.
    Completed(Value),
    /// With this error.
    Failed(ErrorInfo),
    /// Cancelled, for this reason.
    Cancelled(String),
}

/// A child run to start for a `workflow_call` attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildCall {
    /// The calling token.
    pub token: String,
    /// Its attempt.
    pub attempt: u32,
    /// The child's id, derived from (run, token, attempt) so that starting it
    /// again after a crash is idempotent.
    pub child_run_id: String,
    /// Workflow name (resolved from context when dynamic).
    pub workflow: String,
    /// Version; `None` = the latest at call time.
    pub version: Option<i64>,
    /// The child's input (the node's `input_mapping`).
    pub input: Value,
    /// Artifacts passed down (`inherit_artifacts: true`).
    pub artifacts: Option<Value>,
    /// Bound on the child run (the node's `timeout_ms`).
    pub timeout_ms: Option<u64>,
    /// Not before (a retry's delay).
    pub not_before: Millis,
}

/// What the runtime must do after persisting the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Queue an attempt of a non-pure action.
    Dispatch(Dispatch),
    /// Abort in-flight attempts of these tokens; their late results are ignored.
    CancelTasks(Vec<String>),
    /// Start a child run.
    StartChild(ChildCall),
    /// Cancel these child runs.
    CancelRuns(Vec<String>),
    /// The run ended: release it.
    RunEnded,
}

/// One attempt to queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Token id.
    pub token: String,
    /// Node ref.
    pub node: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Not claimable before.
    pub not_before: Millis,
    /// Per-attempt timeout.
    pub timeout_ms: Option<u64>,
    /// The resolved action invocation (see [`TaskPayload`]).
    pub payload: TaskPayload,
}

/// Everything an executor needs: resolved by the core from the context, so
/// executors never read run state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskPayload {
    /// An LLM call.
    LlmCall {
        /// Model profile ref (resolved against the run's definition).
        model: String,
        /// Rendered system prompt.
        system: Option<String>,
        /// Rendered user prompt.
        prompt: String,
        /// Output schema.
        produces: Option<Value>,
        /// Branch index, for the scripted provider.
        branch_index: Option<u64>,
    },
    /// An artifact write (content already validated).
    WriteArtifact {
        /// Type name.
        type_name: String,
        /// Type version.
        type_version: i64,
        /// Name.
        name: String,
        /// Content.
        content: Value,
    },
}

/// The output of one [`apply`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    /// Events to persist, in order (already applied to the state).
    pub events: Vec<Event>,
    /// Commands to run once the events are durable.
    pub commands: Vec<Command>,
    /// The step stopped at its event budget with tokens still pending:
    /// apply [`Input::Continue`] to go on. (Until then the pending tokens
    /// are in the state like any other, so a recovered run goes on too:
    /// see [`has_pending`].)
    pub more: bool,
}

/// Applies `input` to `state`. Inputs that do not fit the state (a result
/// for a token that is not waiting for that attempt, anything after the
/// run ended) are ignored: they produce no events.
pub fn apply(state: &mut RunState, graph: &Graph, input: Input, now: Millis) -> Step {
    apply_bounded(state, graph, input, now, usize::MAX)
}

/// [`apply`], but once the step holds `max_events` events it starts no
/// further token: those stay `pending` and [`Step::more`] is set. A chain
/// or fan-out of pure actions then reaches the store in bounded slices
/// that can be written while the next one is computed. Any order of
/// starting ready tokens is a valid execution, so the outcome is the same
/// as one unbounded step.
pub fn apply_bounded(
    state: &mut RunState,
    graph: &Graph,
    input: Input,
    now: Millis,
    max_events: usize,
) -> Step {
    let mut m = Machine {
        st: state,
        g: graph,
        now,
        step: Step::default(),
        ready: VecDeque::new(),
        limits: graph.limits,
        budget: max_events.max(1),
    };
    m.input(input);
    m.step
}

/// Whether a running run has tokens waiting to be started: a step stopped
/// at its budget ([`Step::more`]) and [`Input::Continue`] is owed, also
/// after a recovery.
pub fn has_pending(state: &RunState) -> bool {
    state.status == RunStatus::Running
        && state
            .tokens
            .iter()
            .any(|t| t.status == TokenStatus::Pending)
}

struct Machine<'a> {
    st: &'a mut RunState,
    g: &'a Graph,
    now: Millis,
    step: Step,
    ready: VecDeque<usize>,
    limits: Limits,
    /// Events after which no further token is started in this step.
    budget: usize,
}

/// Why a node failed, before it is routed.
struct Failure {
    error: ErrorInfo,
    attempt: u32,
}

/// The data an expression sees from one token: its scope's view of the
/// context. Borrowed from the state; copied only when writes must be seen
/// by later expressions of the same action.
struct Ctx<'s> {
    input: &'s Value,
    state: Cow<'s, Value>,
    output: Cow<'s, Value>,
    artifacts: Cow<'s, Value>,
    loops: Value,
    branch: Option<Value>,
    item: Option<(&'s str, &'s Value)>,
}

impl<'s> Ctx<'s> {
    fn vars<'v>(&'v self, result: Option<&'v Value>) -> Vars<'v> {
        let mut v = Vars::new()
            .with("input", self.input)
            .with("state", &self.state)
            .with("output", &self.output)
            .with("artifacts", &self.artifacts)
            .with("_loop", &self.loops);
        if let Some(b) = &self.branch {
            v = v.with("_branch", b);
        }
        if let Some((name, item)) = self.item {
            v = v.with(name, item);
        }
        if let Some(r) = result {
            v = v.with("result", r);
        }
        v
    }

    /// Makes a write visible to the following expressions.
    fn apply(&mut self, path: &TargetPath, value: &Value) {
        let _ = match path.root {
            PathRoot::State | PathRoot::BranchOutput => {
                if let Some(Value::Object(b)) = &mut self.branch
                    && let Some(out) = b.get_mut("output")
                {
                    let _ = braid_expr::set_path(out, &path.segments, value.clone());
                }
                braid_expr::set_path(self.state.to_mut(), &path.segments, value.clone())
            }
            PathRoot::Output => {
                braid_expr::set_path(self.output.to_mut(), &path.segments, value.clone())
            }
            PathRoot::Artifacts => {
                braid_expr::set_path(self.artifacts.to_mut(), &path.segments, value.clone())
            }
        };
    }

    /// The template data of a prompt: the context plus the node's input mapping.
    fn template_data(&self, args: Map<String, Value>) -> Value {
        let mut m = Map::new();
        m.insert("input".into(), self.input.clone());
        m.insert("state".into(), self.state.as_ref().clone());
        m.insert("output".into(), self.output.as_ref().clone());
        m.insert("artifacts".into(), self.artifacts.as_ref().clone());
        m.insert("_loop".into(), self.loops.clone());
        if let Some(b) = &self.branch {
            m.insert("_branch".into(), b.clone());
        }
        if let Some((name, item)) = self.item {
            m.insert(name.into(), item.clone());
        }
        m.extend(args);
        Value::Object(m)
    }
}

impl<'a> Machine<'a> {
    fn emit(&mut self, token: Option<usize>, body: EventBody) {
        let (token_id, node) = match token {
            Some(i) => {
                let t = &self.st.tokens[i];
                (Some(t.id.clone()), Some(self.g.nodes[t.node].ref_.clone()))
            }
            None => (None, None),
        };
        self.emit_raw(token_id, node, body);
    }

    fn emit_raw(&mut self, token_id: Option<String>, node: Option<String>, body: EventBody) {
        let e = Event {
            seq: self.st.seq + 1,
            ts: self.now,
            token_id,
            node,
            body,
        };
        self.st.apply_event(self.g, &e);
        self.step.events.push(e);
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Start {
                input,
                limits,
                artifacts,
            } => {
                if self.st.status != RunStatus::New {
                    return;
                }
                self.limits = limits;
                let initial = self.g.nodes[self.g.initial].ref_.clone();
                self.emit_raw(
                    Some(self.st.next_token_id(0)),
                    Some(initial),
                    EventBody::WorkflowStarted {
                        input: input.clone(),
                        artifacts,
                    },
                );
                if let Some(schema) = &self.g.input_schema
                    && let Err(violations) = schema.validate(&input)
                {
                    self.fail_run(ErrorInfo::new(
                        "INPUT_SCHEMA",
                        format!(
                            "the input does not match the workflow's input_schema: {}",
                            describe(&violations)
                        ),
                    ));
                    return;
                }
                self.ready.push_back(0);
                self.run();
            }
            Input::TaskStarted { token, attempt } => {
                let Some(i) = self.live_token(&token) else {
                    return;
                };
                let t = &self.st.tokens[i];
                if t.status == TokenStatus::RetryWait && t.attempt == attempt {
                    self.node_started(i, attempt, String::new());
                }
            }
            Input::TaskResult {
                token,
                attempt,
                outcome,
            } => {
                let Some(i) = self.live_token(&token) else {
                    return;
                };
                let t = &self.st.tokens[i];
                if !matches!(
                    t.status,
                    TokenStatus::Running | TokenStatus::RetryWait | TokenStatus::WaitingChild
                ) || t.attempt != attempt
                {
                    return; // duplicate or stale delivery: exactly-once state
                }
                match outcome {
                    Outcome::Success {
                        result,
                        usage,
                        duration_ms,
                    } => self.succeed(i, attempt, result, usage, duration_ms),
                    Outcome::Failure {
                        error,
                        retry_after_ms,
                        ..
                    } => {
                        // A child run that outlived its node's timeout is cancelled.
                        if let Some(child) = self.st.tokens[i].child.clone() {
                            self.emit(
                                Some(i),
                                EventBody::SubworkflowFailed {
                                    child_run_id: child.clone(),
                                    error: error.clone(),
                                },
                            );
                            self.step.commands.push(Command::CancelRuns(vec![child]));
                        }
                        self.attempt_failed(i, attempt, error, retry_after_ms)
                    }
                }
                self.run();
            }
            Input::ChildStarted {
                token,
                attempt,
                child_run_id,
                workflow,
                version,
            } => {
                let live = self.live_token(&token).filter(|&i| {
                    let t = &self.st.tokens[i];
                    t.attempt == attempt
                        && t.child.is_none()
                        && matches!(t.status, TokenStatus::Running | TokenStatus::RetryWait)
                });
                let Some(i) = live else {
                    // Nobody waits for this child (cancelled meanwhile, or a
                    // duplicate start): stop it unless it is the current one.
                    let current = crate::state::token_index(&token)
                        .and_then(|i| self.st.tokens.get(i))
                        .and_then(|t| t.child.as_deref())
                        == Some(child_run_id.as_str());
                    if !current {
                        self.step
                            .commands
                            .push(Command::CancelRuns(vec![child_run_id]));
                    }
                    return;
                };
                let t = &self.st.tokens[i];
                match t.status {
                    TokenStatus::RetryWait => self.node_started(i, attempt, String::new()),
                    TokenStatus::Running => {}
                    _ => return,
                }
                self.emit(
                    Some(i),
                    EventBody::SubworkflowStarted {
                        child_run_id,
                        workflow,
                        version,
                        attempt,
                    },
                );
            }
            Input::ChildFinished {
                token,
                child_run_id,
                outcome,
            } => {
                let Some(i) = self.live_token(&token) else {
                    return;
                };
                let t = &self.st.tokens[i];
                if t.status != TokenStatus::WaitingChild
                    || t.child.as_deref() != Some(child_run_id.as_str())
                {
                    return; // not the child this attempt waits for: a duplicate or a stale child
                }
                self.child_finished(i, child_run_id, outcome);
                self.run();
            }
            Input::Cancel { reason } => {
                if self.st.status != RunStatus::Running {
                    return;
                }
                self.cancel_tokens(|_| true, &reason);
                self.emit(None, EventBody::WorkflowCancelled { reason });
                self.step.commands.push(Command::RunEnded);
            }
            Input::Continue => {
                if self.st.status != RunStatus::Running {
                    return;
                }
                // Every token still pending was ready when the step stopped;
                // token order is creation order, the order they were queued.
                self.ready.extend(
                    (0..self.st.tokens.len())
                        .filter(|&i| self.st.tokens[i].status == TokenStatus::Pending),
                );
                self.run();
            }
            Input::RunTimeout => {
                if self.st.status != RunStatus::Running {
                    return;
                }
                let ms = self.limits.timeout_ms.unwrap_or(0);
                self.fail_run(ErrorInfo::new(
                    "RUN_TIMEOUT",
                    format!("the run exceeded its timeout of {ms} ms (limits.timeout_ms)"),
                ));
            }
        }
        self.st.dirty.clear();
    }

    fn live_token(&self, id: &str) -> Option<usize> {
        if self.st.status != RunStatus::Running {
            return None;
        }
        let i = crate::state::token_index(id)?;
        (i < self.st.tokens.len()).then_some(i)
    }

    /// Starts ready tokens and fires joins until nothing moves, then ends
    /// the run if no token is live.
    fn run(&mut self) {
        loop {
            while let Some(i) = self.ready.pop_front() {
                if self.st.status != RunStatus::Running {
                    return;
                }
                if self.step.events.len() >= self.budget {
                    // The rest stays pending in the state until Continue;
                    // sets settled by this step's input fire now.
                    self.check_joins();
                    self.ready.clear();
                    self.step.more = true;
                    return;
                }
                self.start(i);
                self.check_joins();
            }
            self.check_joins();
            if self.ready.is_empty() {
                break;
            }
        }
        if self.st.status == RunStatus::Running && self.st.live == 0 {
            self.complete();
        }
    }

    fn node(&self, i: usize) -> &'a CompiledNode {
        &self.g.nodes[self.st.tokens[i].node]
    }

    fn ctx(&self, i: usize) -> Ctx<'_> {
        let scope = self.st.tokens[i].scope;
        Ctx {
            input: &self.st.context.input,
            state: Cow::Borrowed(self.st.state_in(scope)),
            output: Cow::Borrowed(&self.st.context.output),
            artifacts: Cow::Borrowed(self.st.artifacts_in(scope)),
            loops: Value::Object(
                self.st.tokens[i]
                    .loops
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
            branch: self.st.branch_value(self.g, scope),
            item: self.st.item_var_in(scope),
        }
    }

    fn expr_error(&self, i: usize, what: &str, msg: &str) -> ErrorInfo {
        let n = self.node(i);
        let mut e = ErrorInfo::new("EXPRESSION", format!("node `{}`, {what}: {msg}", n.ref_));
        e.node = Some(n.ref_.clone());
        e.action = Some(n.action_ref.clone());
        e
    }

    fn node_error(&self, i: usize, code: &str, msg: String) -> ErrorInfo {
        let n = self.node(i);
        let mut e = ErrorInfo::new(code, msg);
        e.node = Some(n.ref_.clone());
        e.action = Some(n.action_ref.clone());
        e
    }

    fn start(&mut self, i: usize) {
        if self.st.tokens[i].status != TokenStatus::Pending {
            return;
        }
        let node = self.node(i);
        if let Some(join) = &node.join
            && !self.is_continuation(i)
        {
            return self.arrive(i, join.joins);
        }
        if node.action.is_pure() {
            self.node_started(i, 1, String::new());
            match self.update_context(i) {
                Ok(result) => self.succeed(i, 1, result, None, 0),
                Err(error) => self.fail_node(i, Failure { error, attempt: 1 }),
            }
        } else {
            self.dispatch(i, 1, self.now);
        }
    }

    /// A join node's continuation runs the node's action; other tokens arrive.
    fn is_continuation(&self, i: usize) -> bool {
        let t = &self.st.tokens[i];
        let Some(parent) = t.parent.as_deref().and_then(crate::state::token_index) else {
            return false;
        };
        self.st
            .sets
            .iter()
            .rev()
            .any(|s| s.continuation == Some(i) && s.origin == parent)
    }

    /// Token `i` reached a join node that closes fan-outs of `fan_out_node`.
    fn arrive(&mut self, i: usize, fan_out_node: usize) {
        let join_ref = self.node(i).ref_.clone();
        let scope = self.st.tokens[i].scope;
        let set = scope
            .map(|s| self.st.scopes[s].set)
            .filter(|&set| self.st.sets[set].fan_out_node == fan_out_node);
        let Some(set) = set else {
            let inner = scope.map(|s| format!(" (its innermost branch belongs to a fan-out of `{}`, which must be joined first)", self.g.nodes[self.st.sets[self.st.scopes[s].set].fan_out_node].ref_)).unwrap_or_default();
            let error = self.node_error(i, "JOIN_SCOPE", format!("token {} reached join `{join_ref}` but is not a branch of a fan-out of `{}`{inner}", self.st.tokens[i].id, self.g.nodes[fan_out_node].ref_));
            return self.fail_node(i, Failure { error, attempt: 1 });
        };
        let s = scope.expect("branch token");
        let set_id = self.st.sets[set].id.clone();
        if self.st.sets[set].fired {
            return self.late_arrival(i, set);
        }
        if self.st.scopes[s].arrived {
            return self.emit(
                Some(i),
                EventBody::TokenCancelled {
                    sibling_set: Some(set_id),
                    reason: "this branch already reached the join".into(),
                },
            );
        }
        self.emit(
            Some(i),
            EventBody::TokenWaiting {
                sibling_set: set_id,
                join_node: join_ref,
            },
        );
    }

    fn late_arrival(&mut self, i: usize, set: usize) {
        let set_id = self.st.sets[set].id.clone();
        let join = self.node(i).join.as_ref().expect("join node");
        let continuation = self.st.sets[set]
            .continuation
            .expect("fired set has a continuation");
        let origin_scope = self.st.tokens[continuation].scope;
        let scope_live = origin_scope.is_none_or(|s| self.st.scopes[s].live > 0);
        if join.on_early_complete == EarlyComplete::AllowLateMerge && scope_live {
            self.emit(
                Some(i),
                EventBody::TokenWaiting {
                    sibling_set: set_id.clone(),
                    join_node: self.node(i).ref_.clone(),
                },
            );
            if let Some(merge) = &join.merge {
                match self.merge_value(set, merge) {
                    Ok(v) => self.emit(
                        Some(continuation),
                        EventBody::ContextUpdated {
                            writes: vec![Write {
                                path: merge.target.clone(),
                                value: Some(v),
                            }],
                        },
                    ),
                    Err(msg) => {
                        let error = self.node_error(i, "MERGE_ERROR", msg);
                        self.emit(
                            Some(i),
                            EventBody::TokenCancelled {
                                sibling_set: Some(set_id),
                                reason: format!("late merge failed: {}", error.message),
                            },
                        );
                        return;
                    }
                }
            }
            self.emit(
                Some(i),
                EventBody::TokenMerged {
                    sibling_set: set_id,
                },
            );
        } else {
            self.emit(
                Some(i),
                EventBody::TokenCancelled {
                    sibling_set: Some(set_id),
                    reason: "arrived after the join fired".into(),
                },
            );
        }
    }

    /// Fires every join whose condition is met.
    fn check_joins(&mut self) {
        while let Some(set) = self.st.dirty.pop() {
            if self.st.status != RunStatus::Running {
                return;
            }
            let s = &self.st.sets[set];
            if s.fired || self.st.in_cancelled_branch(self.st.tokens[s.origin].scope) {
                continue; // a join inside a cancelled branch never fires
            }
            let Some(join_node) = self.g.joined_by[s.fan_out_node] else {
                continue;
            };
            let join = self.g.nodes[join_node].join.as_ref().expect("join config");
            let arrived = s.arrivals.len() as u64;
            let settled = arrived + s.ended >= s.total;
            match join.fan_in {
                FanIn::All if settled => self.fire(set, join_node, true),
                FanIn::All => {}
                FanIn::Any | FanIn::MOfN { .. } => {
                    let need = match join.fan_in {
                        FanIn::MOfN { m_of_n } => m_of_n,
                        _ => 1,
                    };
                    if arrived >= need {
                        self.fire(set, join_node, true);
                    } else if settled {
                        self.fire(set, join_node, false);
                    }
                }
            }
        }
    }

    /// The merge of the arrived members' `_branch.output` at `merge.source`.
    fn merge_value(&self, set: usize, merge: &Merge) -> Result<Value, String> {
        let s = &self.st.sets[set];
        let mut by_index: Vec<(u64, usize, &Value)> = Vec::with_capacity(s.arrivals.len());
        for (order, &t) in s.arrivals.iter().enumerate() {
            if !matches!(
                self.st.tokens[t].status,
                TokenStatus::WaitingJoin | TokenStatus::Merged
            ) {
                continue; // cancelled after arriving
            }
            let Some(scope) = self.st.tokens[t].scope else {
                continue;
            };
            let sc = &self.st.scopes[scope];
            let v = if merge.source == "*" {
                Some(&sc.output)
            } else {
                braid_expr::get_path(&sc.output, &merge.source)
            };
            if let Some(v) = v {
                by_index.push((sc.index, order, v));
            }
        }
        let strategy = merge.strategy;
        if strategy == MergeStrategy::LastWins {
            return Ok(by_index
                .iter()
                .max_by_key(|x| x.1)
                .map(|x| x.2.clone())
                .unwrap_or(Value::Null));
        }
        by_index.sort_by_key(|x| x.0);
        Ok(match strategy {
            MergeStrategy::Append => {
                let mut out = Vec::with_capacity(by_index.len());
                for (_, _, v) in by_index {
                    match v {
                        Value::Array(items) => out.extend(items.iter().cloned()),
                        other => out.push(other.clone()),
                    }
                }
                Value::Array(out)
            }
            MergeStrategy::Collect => {
                Value::Array(by_index.into_iter().map(|x| x.2.clone()).collect())
            }
            MergeStrategy::MergeObject => {
                let mut out = Map::new();
                for (index, _, v) in by_index {
                    let Value::Object(m) = v else {
                        return Err(format!(
                            "merge_object needs objects, but branch {index} has {} at `{}`",
                            type_name(v),
                            merge.source
                        ));
                    };
                    out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                Value::Object(out)
            }
            MergeStrategy::KeyedByBranch => Value::Object(
                by_index
                    .into_iter()
                    .map(|(i, _, v)| (i.to_string(), v.clone()))
                    .collect(),
            ),
            MergeStrategy::LastWins => unreachable!(),
        })
    }

    /// Fires the join of `set` (`satisfied`), or resolves it as `JOIN_UNSATISFIED`.
    fn fire(&mut self, set: usize, join_node: usize, satisfied: bool) {
        let join = self.g.nodes[join_node].join.as_ref().expect("join config");
        let (origin, set_id) = (self.st.sets[set].origin, self.st.sets[set].id.clone());
        let mut arrived: Vec<usize> = self.st.sets[set]
            .arrivals
            .iter()
            .copied()
            .filter(|&t| self.st.tokens[t].status == TokenStatus::WaitingJoin)
            .collect();
        arrived.sort_by_key(|&t| self.st.tokens[t].scope.map(|s| self.st.scopes[s].index));
        if !self.continuation_fits(join_node) {
            return;
        }
        let merged_value = match (&join.merge, satisfied) {
            (Some(m), true) => Some(self.merge_value(set, m)),
            _ => None,
        };
        let continuation = self.st.tokens.len();
        let merged = if satisfied {
            arrived
                .iter()
                .map(|&t| self.st.tokens[t].id.clone())
                .collect()
        } else {
            Vec::new()
        };
        self.fan_in_completed(join_node, set_id.clone(), merged, origin);
        for &t in &arrived {
            if satisfied {
                self.emit(
                    Some(t),
                    EventBody::TokenMerged {
                        sibling_set: set_id.clone(),
                    },
                );
            } else {
                self.emit(
                    Some(t),
                    EventBody::TokenCancelled {
                        sibling_set: Some(set_id.clone()),
                        reason: "the join could not be satisfied".into(),
                    },
                );
            }
        }
        if join.on_early_complete == EarlyComplete::Cancel {
            let members: Vec<usize> = self.st.sets[set].members.clone();
            if members.iter().any(|&m| self.st.scopes[m].live > 0) {
                let reason = format!(
                    "join `{}` fired without this branch",
                    self.g.nodes[join_node].ref_
                );
                self.cancel_tokens(|st| members.iter().any(|&m| st.in_scope(m)), &reason);
            }
        }
        if !satisfied {
            let s = &self.st.sets[set];
            let need = match join.fan_in {
                FanIn::MOfN { m_of_n } => m_of_n,
                _ => 1,
            };
            let error = self.node_error(continuation, "JOIN_UNSATISFIED", format!("join `{}` needed {need} arrival(s) from sibling set {} but only {} of {} branches arrived; the others ended elsewhere", self.g.nodes[join_node].ref_, s.id, s.arrivals.len(), s.total));
            return self.fail_node(continuation, Failure { error, attempt: 1 });
        }
        match merged_value {
            Some(Ok(v)) => {
                let target = join.merge.as_ref().expect("merge").target.clone();
                if !self.write_merge(continuation, target, v) {
                    return;
                }
            }
            Some(Err(msg)) => {
                let error = self.node_error(
                    continuation,
                    "MERGE_ERROR",
                    format!("join `{}`: {msg}", self.g.nodes[join_node].ref_),
                );
                return self.fail_node(continuation, Failure { error, attempt: 1 });
            }
            None => {}
        }
        self.ready.push_back(continuation);
    }

    /// `node_started` for attempt `attempt` of token `i`'s node.
    fn node_started(&mut self, i: usize, attempt: u32, input_digest: String) {
        let action = self.node(i).action_ref.clone();
        self.emit(
            Some(i),
            EventBody::NodeStarted {
                attempt,
                action,
                input_digest,
            },
        );
    }

    /// Resolves the invocation of a non-pure action and queues it.
    fn dispatch(&mut self, i: usize, attempt: u32, not_before: Millis) {
        let work = match self.resolve_payload(i) {
            Ok(w) => w,
            Err(error) => {
                if attempt == 1 {
                    self.node_started(i, attempt, String::new());
                }
                return self.fail_node(i, Failure { error, attempt });
            }
        };
        let node = self.node(i);
        if attempt == 1 {
            let input_digest = match &work {
                Work::Task(p) => digest(p),
                Work::Child { input, .. } => digest(input),
            };
            self.node_started(i, attempt, input_digest);
        }
        let token = self.st.tokens[i].id.clone();
        match work {
            Work::Task(payload) => self.step.commands.push(Command::Dispatch(Dispatch {
                token,
                node: node.ref_.clone(),
                attempt,
                not_before,
                timeout_ms: node.timeout_ms,
                payload,
            })),
            Work::Child {
                workflow,
                version,
                input,
                artifacts,
            } => {
                let child_run_id = child_run_id(&self.st.run_id, &token, attempt);
                self.step.commands.push(Command::StartChild(ChildCall {
                    token,
                    attempt,
                    child_run_id,
                    workflow,
                    version,
                    input,
                    artifacts,
                    timeout_ms: node.timeout_ms,
                    not_before,
                }));
            }
        }
    }

    /// A child run ended: the node succeeds with its output, or fails
    /// (`propagate`) / succeeds with `result.error` (`catch`).
    fn child_finished(&mut self, i: usize, child_run_id: String, outcome: ChildOutcome) {
        let attempt = self.st.tokens[i].attempt;
        let node = self.node(i);
        let CompiledAction::WorkflowCall { on_failure, .. } = &node.action else {
            return;
        };
        let error = match outcome {
            ChildOutcome::Completed(output) => {
                self.emit(
                    Some(i),
                    EventBody::SubworkflowCompleted {
                        child_run_id,
                        output: output.clone(),
                    },
                );
                return self.succeed(i, attempt, output, None, 0);
            }
            ChildOutcome::Failed(e) => e,
            ChildOutcome::Cancelled(reason) => {
                let mut e = ErrorInfo::new(
                    "CANCELLED",
                    format!("child run {child_run_id} was cancelled: {reason}"),
                );
                e.retryable = false;
                e
            }
        };
        self.emit(
            Some(i),
            EventBody::SubworkflowFailed {
                child_run_id: child_run_id.clone(),
                error: error.clone(),
            },
        );
        if error.code == "CANCELLED" {
            let mut e = self.node_error(i, "CANCELLED", error.message.clone());
            e.cause = Some(Box::new(error));
            return self.attempt_failed(i, attempt, e, None);
        }
        match on_failure {
            OnChildFailure::Catch => {
                let result = json!({ "error": {
                    "workflow_run_id": child_run_id, "code": error.code, "message": error.message,
                } });
                self.succeed(i, attempt, result, None, 0)
            }
            OnChildFailure::Propagate => {
                let mut e = self.node_error(
                    i,
                    "SUBWORKFLOW_FAILED",
                    format!(
                        "node `{}`: child run {child_run_id} failed with {}: {}",
                        node.ref_, error.code, error.message
                    ),
                );
                e.cause = Some(Box::new(error));
                self.attempt_failed(i, attempt, e, None)
            }
        }
    }

    fn resolve_payload(&self, i: usize) -> Result<Work, ErrorInfo> {
        let node = self.node(i);
        let ctx = self.ctx(i);
        let vars = ctx.vars(None);
        let eval = |e: &Expr, what: &str| {
            e.eval(&vars).map_err(|err| {
                self.expr_error(i, &format!("{what} `{}`", e.source()), &err.to_string())
            })
        };
        match &node.action {
            CompiledAction::LlmCall {
                system,
                template,
                produces,
                model,
            } => {
                let mut args = Map::new();
                for (field, e) in &node.input_mapping {
                    args.insert(field.clone(), eval(e, &format!("input_mapping.{field}"))?);
                }
                let data = ctx.template_data(args);
                let render = |t: &braid_expr::Template, what: &str| {
                    t.render(&data).map_err(|e| {
                        self.node_error(
                            i,
                            "TEMPLATE",
                            format!("node `{}`, {what}: {}", node.ref_, e.message),
                        )
                    })
                };
                let system = system
                    .as_ref()
                    .map(|s| render(s, "system prompt"))
                    .transpose()?;
                let prompt = render(template, "prompt template")?;
                let branch_index = self.st.tokens[i].scope.map(|s| self.st.scopes[s].index);
                Ok(Work::Task(TaskPayload::LlmCall {
                    model: model.clone(),
                    system,
                    prompt,
                    produces: produces.clone(),
                    branch_index,
                }))
            }
            CompiledAction::WriteArtifact {
                type_name,
                type_version,
                schema,
                name,
                content,
            } => {
                let mut out = Map::new();
                for (field, e) in content {
                    out.insert(field.clone(), eval(e, &format!("content_mapping.{field}"))?);
                }
                let content = Value::Object(out);
                if let Err(violations) = schema.validate(&content) {
                    return Err(self.node_error(i, "SCHEMA_MISMATCH", format!("node `{}`: artifact content does not match artifact type `{type_name}` v{type_version}: {}", node.ref_, describe(&violations))));
                }
                Ok(Work::Task(TaskPayload::WriteArtifact {
                    type_name: type_name.clone(),
                    type_version: *type_version,
                    name: name.clone(),
                    content,
                }))
            }
            CompiledAction::WorkflowCall {
                workflow,
                workflow_expr,
                version,
                version_expr,
                inherit_artifacts,
                ..
            } => {
                let workflow = match (workflow, workflow_expr) {
                    (FromContextOr::Value(name), _) => name.clone(),
                    (_, Some(e)) => match eval(e, "workflow.from_context")? {
                        Value::String(name) => name,
                        other => {
                            return Err(self.expr_error(
                                i,
                                &format!("workflow.from_context `{}`", e.source()),
                                &format!(
                                    "expected a workflow name (string), got {}",
                                    type_name(&other)
                                ),
                            ));
                        }
                    },
                    _ => unreachable!("compiled"),
                };
                let version = match (version, version_expr) {
                    (None, _) => None,
                    (Some(FromContextOr::Value(v)), _) => Some(*v as i64),
                    (_, Some(e)) => match eval(e, "version.from_context")? {
                        Value::Null => None,
                        Value::Number(n) if n.as_i64().is_some_and(|v| v >= 1) => n.as_i64(),
                        other => {
                            return Err(self.expr_error(
                                i,
                                &format!("version.from_context `{}`", e.source()),
                                &format!("expected a version number ≥ 1 or null, got {other}"),
                            ));
                        }
                    },
                    _ => unreachable!("compiled"),
                };
                let mut input = Map::new();
                for (field, e) in &node.input_mapping {
                    input.insert(field.clone(), eval(e, &format!("input_mapping.{field}"))?);
                }
                let artifacts = inherit_artifacts.then(|| ctx.artifacts.as_ref().clone());
                Ok(Work::Child {
                    workflow,
                    version,
                    input: Value::Object(input),
                    artifacts,
                })
            }
            CompiledAction::UpdateContext(_) => unreachable!("pure actions run inline"),
        }
    }

    /// Checks that token `i` may write under `root`.
    fn check_write(&self, i: usize, path: &TargetPath) -> Result<(), ErrorInfo> {
        let in_branch = self.st.tokens[i].scope.is_some();
        match path.root {
            PathRoot::Output if in_branch => Err(self.node_error(i, "BRANCH_OUTPUT_WRITE", format!("node `{}` writes `{path}` inside a branch: branches write their own output (`state.*` or `_branch.output.*`), merged by a join; write `output.*` after the join", self.node(i).ref_))),
            PathRoot::BranchOutput if !in_branch => Err(self.node_error(i, "BRANCH_OUTPUT_WRITE", format!("node `{}` writes `{path}` outside any branch", self.node(i).ref_))),
            _ => Ok(()),
        }
    }

    /// Runs an `update_context` action: each update sees the previous ones.
    fn update_context(&mut self, i: usize) -> Result<Value, ErrorInfo> {
        let CompiledAction::UpdateContext(updates) = &self.node(i).action else {
            unreachable!()
        };
        let mut result = Map::new();
        let mut writes = Vec::with_capacity(updates.len());
        {
            let mut ctx = self.ctx(i);
            for (n, (path, e)) in updates.iter().enumerate() {
                let v = e.eval(&ctx.vars(None)).map_err(|err| {
                    self.expr_error(
                        i,
                        &format!("update `{path}` = `{}`", e.source()),
                        &err.to_string(),
                    )
                })?;
                self.check_write(i, path)?;
                if n + 1 < updates.len() {
                    ctx.apply(path, &v);
                }
                result.insert(path.to_string(), v.clone());
                writes.push(Write {
                    path: path.to_string(),
                    value: Some(v),
                });
            }
        }
        if !writes.is_empty() {
            self.emit(Some(i), EventBody::ContextUpdated { writes });
        }
        Ok(Value::Object(result))
    }

    fn succeed(
        &mut self,
        i: usize,
        attempt: u32,
        result: Value,
        usage: Option<Usage>,
        duration_ms: u64,
    ) {
        // Output mappings are decided before anything is emitted, so a
        // failing mapping fails the node without half its writes.
        let mut writes = Vec::new();
        if !self.node(i).output_mapping.is_empty() {
            let ctx = self.ctx(i);
            let vars = ctx.vars(Some(&result));
            for (path, e) in &self.node(i).output_mapping {
                let r = e
                    .eval(&vars)
                    .map_err(|err| {
                        self.expr_error(
                            i,
                            &format!("output_mapping.{path} `{}`", e.source()),
                            &err.to_string(),
                        )
                    })
                    .and_then(|v| self.check_write(i, path).map(|_| v));
                match r {
                    Ok(v) => writes.push(Write {
                        path: path.to_string(),
                        value: Some(v),
                    }),
                    Err(error) => {
                        drop(vars);
                        drop(ctx);
                        return self.fail_node(i, Failure { error, attempt });
                    }
                }
            }
        }
        {
            let scope = self.st.tokens[i].scope;
            if self.st.state_in(scope).get("_last_error").is_some() {
                writes.push(Write {
                    path: "state._last_error".into(),
                    value: None,
                });
            }
        }
        let artifact = match &self.node(i).action {
            CompiledAction::WriteArtifact {
                type_name,
                type_version,
                name,
                ..
            } => result.get("artifact_id").and_then(Value::as_str).map(|id| {
                EventBody::ArtifactCreated {
                    artifact_id: id.into(),
                    type_name: type_name.clone(),
                    type_version: *type_version,
                    name: name.clone(),
                }
            }),
            _ => None,
        };
        self.emit(
            Some(i),
            EventBody::NodeCompleted {
                attempt,
                duration_ms,
                result,
                usage,
            },
        );
        if let Some(a) = artifact {
            self.emit(Some(i), a);
        }
        if !writes.is_empty() {
            self.emit(Some(i), EventBody::ContextUpdated { writes });
        }
        self.route(i, On::Success, attempt);
    }

    fn attempt_failed(
        &mut self,
        i: usize,
        attempt: u32,
        mut error: ErrorInfo,
        retry_after_ms: Option<u64>,
    ) {
        let node = self.node(i);
        error.node = Some(node.ref_.clone());
        error.action = Some(node.action_ref.clone());
        error.attempt = Some(attempt);
        let policy = &node.retry;
        error.retryable = policy.retries(&error.code);
        if error.retryable && attempt < policy.max_attempts {
            let delay_ms = policy.delay_ms(attempt, self.jitter(i, attempt), retry_after_ms);
            let not_before = self
                .now
                .saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX));
            self.emit(
                Some(i),
                EventBody::NodeRetrying {
                    attempt,
                    error,
                    delay_ms,
                    not_before,
                },
            );
            self.dispatch(i, attempt + 1, not_before);
        } else {
            self.fail_node(i, Failure { error, attempt });
        }
    }

    /// A deterministic sample in [-1, 1] from run, token and attempt.
    fn jitter(&self, i: usize, attempt: u32) -> f64 {
        let mut h = Sha256::new();
        h.update(self.st.run_id.as_bytes());
        h.update(self.st.tokens[i].id.as_bytes());
        h.update(attempt.to_le_bytes());
        let b = h.finalize();
        let x = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        (x as f64 / u64::MAX as f64) * 2.0 - 1.0
    }

    /// The node failed for good: record `_last_error` in the token's scope, then route the failure.
    fn fail_node(&mut self, i: usize, f: Failure) {
        let mut error = f.error;
        let node = self.node(i);
        error.node.get_or_insert_with(|| node.ref_.clone());
        error.action.get_or_insert_with(|| node.action_ref.clone());
        error.attempt.get_or_insert(f.attempt);
        let last = serde_json::to_value(&error).unwrap_or(Value::Null);
        self.emit(
            Some(i),
            EventBody::ContextUpdated {
                writes: vec![Write {
                    path: "state._last_error".into(),
                    value: Some(last),
                }],
            },
        );
        self.emit(
            Some(i),
            EventBody::NodeFailed {
                attempt: f.attempt,
                error,
            },
        );
        self.route(i, On::Failure, f.attempt);
    }

    /// Routing itself failed (a condition or spawn expression): the node
    /// fails, or, when it was routing a failure, the run (a failure of a
    /// failure route cannot be routed again).
    fn routing_failed(&mut self, i: usize, outcome: On, error: ErrorInfo, attempt: u32) {
        if outcome == On::Success {
            self.fail_node(i, Failure { error, attempt })
        } else {
            self.fail_run(error)
        }
    }

    fn route(&mut self, i: usize, outcome: On, attempt: u32) {
        let node = self.node(i);
        let candidates: Vec<&CompiledTransition> = node
            .transitions
            .iter()
            .filter(|t| t.on == outcome || t.on == On::Always)
            .collect();
        if candidates.is_empty() {
            if outcome == On::Failure {
                self.unrouted(i);
            }
            return; // success: terminal for this token
        }
        let mut taken: Vec<&CompiledTransition> = Vec::new();
        let mut group: Option<i64> = None;
        {
            // The context is built only when a condition needs it.
            let ctx = candidates
                .iter()
                .any(|t| t.condition.is_some())
                .then(|| self.ctx(i));
            let vars = ctx.as_ref().map(|c| c.vars(None)).unwrap_or_default();
            for t in candidates {
                if group.is_some_and(|g| g != t.priority) {
                    break; // a lower group already matched
                }
                if let (Some(max), Some(r)) = (t.max_iterations, &t.ref_)
                    && self.st.tokens[i].loops.get(r).copied().unwrap_or(0) >= max
                {
                    continue; // loop exhausted: treated as not matching
                }
                let matched = match &t.condition {
                    None => true,
                    Some(c) => match c.eval_bool(&vars) {
                        Ok(b) => b,
                        Err(err) => {
                            let error = self.expr_error(
                                i,
                                &format!(
                                    "condition `{}` of transition to `{}`",
                                    c.source(),
                                    self.g.nodes[t.to].ref_
                                ),
                                &err.to_string(),
                            );
                            drop(vars);
                            drop(ctx);
                            return self.routing_failed(i, outcome, error, attempt);
                        }
                    },
                };
                if matched {
                    group = Some(t.priority);
                    taken.push(t);
                    if node.fan_out == FanOut::FirstMatch {
                        break;
                    }
                }
            }
        }
        if taken.is_empty() {
            if outcome == On::Success {
                let error = self.node_error(i, "NO_MATCHING_TRANSITION", format!("node `{}` succeeded but none of its transitions' conditions matched: add a transition without condition as a fallback", node.ref_));
                return self.fail_node(i, Failure { error, attempt });
            }
            return self.unrouted(i);
        }
        // How many tokens each taken transition creates.
        let mut plan: Vec<(&CompiledTransition, u64, Option<Vec<Value>>)> =
            Vec::with_capacity(taken.len());
        {
            let ctx = taken
                .iter()
                .any(|t| matches!(t.spawn, Spawn::CountExpr(_) | Spawn::Foreach { .. }))
                .then(|| self.ctx(i));
            let vars = ctx.as_ref().map(|c| c.vars(None)).unwrap_or_default();
            for t in &taken {
                let r = match &t.spawn {
                    Spawn::One => Ok((1, None)),
                    Spawn::Count(n) => Ok((*n, None)),
                    Spawn::CountExpr(e) => {
                        self.eval_spawn(i, "spawn_count", e, &vars, |v| match v {
                            Value::Number(n) if n.as_u64().is_some() => {
                                Ok((n.as_u64().unwrap_or(0), None))
                            }
                            other => Err(format!(
                                "expected a non-negative integer, got {}",
                                type_name(&other)
                            )),
                        })
                    }
                    Spawn::Foreach { collection, .. } => {
                        self.eval_spawn(i, "foreach collection", collection, &vars, |v| match v {
                            Value::Array(items) => Ok((items.len() as u64, Some(items))),
                            other => Err(format!("expected a list, got {}", type_name(&other))),
                        })
                    }
                };
                match r {
                    Ok((n, items)) => plan.push((t, n, items)),
                    Err(error) => {
                        drop(vars);
                        drop(ctx);
                        return self.routing_failed(i, outcome, error, attempt);
                    }
                }
            }
        }
        // Saturating: `spawn_count: 18446744073709551615` is over any limit,
        // not a wrapped sum.
        let total = plan.iter().fold(0u64, |a, p| a.saturating_add(p.1));
        let max = self.limits.max_tokens();
        if (self.st.tokens.len() as u64).saturating_add(total) > max {
            return self.fail_run(ErrorInfo::new(
                "TOKEN_LIMIT",
                format!(
                    "node `{}` would bring the run past {max} tokens (limits.max_run_tokens)",
                    node.ref_
                ),
            ));
        }
        let fan = total != 1 || plan.iter().any(|p| !matches!(p.0.spawn, Spawn::One));
        let set_id = fan.then(|| format!("ss_{}", self.st.sets.len() + 1));
        let origin_id = self.st.tokens[i].id.clone();
        let mut index = 0u64;
        for (t, n, items) in plan {
            let first = self.st.tokens.len();
            let ids: Vec<String> = (0..n as usize).map(|k| self.st.next_token_id(k)).collect();
            if n == 0 {
                continue;
            }
            self.emit(
                Some(i),
                EventBody::TransitionTaken {
                    transition: t.ref_.clone(),
                    from: node.ref_.clone(),
                    to: self.g.nodes[t.to].ref_.clone(),
                    tokens: ids,
                },
            );
            let item_var = match &t.spawn {
                Spawn::Foreach { item_var, .. } => item_var.clone(),
                _ => None,
            };
            for k in 0..n as usize {
                if let Some(set_id) = &set_id {
                    self.emit(
                        Some(first + k),
                        EventBody::TokenSpawned {
                            sibling_set: set_id.clone(),
                            index,
                            total,
                            parent_token: origin_id.clone(),
                            item: items.as_ref().map(|it| it[k].clone()),
                            item_var: item_var.clone(),
                        },
                    );
                }
                index += 1;
                self.ready.push_back(first + k);
            }
        }
        if total == 0
            && let (Some(set_id), Some(join_node)) =
                (set_id, self.g.joined_by[self.st.tokens[i].node])
        {
            self.fire_empty(i, set_id, join_node);
        }
    }

    /// Evaluates a `spawn_count` or `foreach` expression and reads its value
    /// as (token count, foreach items); any error names the expression.
    fn eval_spawn(
        &self,
        i: usize,
        what: &str,
        e: &Expr,
        vars: &Vars,
        read: impl FnOnce(Value) -> Result<(u64, Option<Vec<Value>>), String>,
    ) -> Result<(u64, Option<Vec<Value>>), ErrorInfo> {
        let what = format!("{what} `{}`", e.source());
        let v = e
            .eval(vars)
            .map_err(|err| self.expr_error(i, &what, &err.to_string()))?;
        read(v).map_err(|msg| self.expr_error(i, &what, &msg))
    }

    /// `fan_in_completed` for set `set_id` at `join_node`: it creates the
    /// continuation token (the next token id).
    fn fan_in_completed(
        &mut self,
        join_node: usize,
        set_id: String,
        merged: Vec<String>,
        origin: usize,
    ) {
        let join = self.g.nodes[join_node].join.as_ref().expect("join config");
        self.emit_raw(
            Some(self.st.next_token_id(0)),
            Some(self.g.nodes[join_node].ref_.clone()),
            EventBody::FanInCompleted {
                sibling_set: set_id,
                merged,
                strategy: join
                    .merge
                    .as_ref()
                    .map(|m| strategy_name(m.strategy).to_string()),
                target: join.merge.as_ref().map(|m| m.target.clone()),
                continuation: self.st.next_token_id(0),
                origin_token: self.st.tokens[origin].id.clone(),
                fan_in: fan_in_name(join.fan_in).into(),
            },
        );
    }

    /// An empty sibling set: its join fires at once with an empty merge.
    fn fire_empty(&mut self, origin: usize, set_id: String, join_node: usize) {
        let join = self.g.nodes[join_node].join.as_ref().expect("join config");
        if !self.continuation_fits(join_node) {
            return;
        }
        let continuation = self.st.tokens.len();
        self.fan_in_completed(join_node, set_id, Vec::new(), origin);
        if let Some(m) = &join.merge {
            let empty = match m.strategy {
                MergeStrategy::Append | MergeStrategy::Collect => json!([]),
                MergeStrategy::MergeObject | MergeStrategy::KeyedByBranch => json!({}),
                MergeStrategy::LastWins => Value::Null,
            };
            if !self.write_merge(continuation, m.target.clone(), empty) {
                return;
            }
        }
        self.ready.push_back(continuation);
    }

    /// A join's continuation is a token too: false (and the run failed) past `max_run_tokens`.
    fn continuation_fits(&mut self, join_node: usize) -> bool {
        let max = self.limits.max_tokens();
        if (self.st.tokens.len() as u64) < max {
            return true;
        }
        let join = &self.g.nodes[join_node].ref_;
        self.fail_run(ErrorInfo::new(
            "TOKEN_LIMIT",
            format!("join `{join}` would bring the run past {max} tokens (limits.max_run_tokens)"),
        ));
        false
    }

    /// Writes a merge result into the continuation's scope; false (and the
    /// continuation failed) when the target is not writable there.
    fn write_merge(&mut self, continuation: usize, target: String, value: Value) -> bool {
        if let Ok(path) = TargetPath::parse(&target)
            && let Err(error) = self.check_write(continuation, &path)
        {
            self.fail_node(continuation, Failure { error, attempt: 1 });
            return false;
        }
        self.emit(
            Some(continuation),
            EventBody::ContextUpdated {
                writes: vec![Write {
                    path: target,
                    value: Some(value),
                }],
            },
        );
        true
    }

    fn unrouted(&mut self, i: usize) {
        if self.is_abandoned(i) {
            return; // an abandoned branch never fails the run
        }
        let scope = self.st.tokens[i].scope;
        let error = match self.st.state_in(scope).get("_last_error") {
            Some(v) => serde_json::from_value(v.clone())
                .unwrap_or_else(|_| ErrorInfo::new("INTERNAL", "unrouted failure")),
            None => ErrorInfo::new("INTERNAL", format!("node `{}` failed", self.node(i).ref_)),
        };
        self.fail_run(error);
    }

    fn is_abandoned(&self, i: usize) -> bool {
        let mut cur = self.st.tokens[i].scope;
        while let Some(s) = cur {
            if self.st.scopes[s].abandoned {
                return true;
            }
            cur = self.st.scopes[s].parent;
        }
        false
    }

    /// Cancels the live tokens `pick` selects and aborts their in-flight attempts.
    fn cancel_tokens(&mut self, pick: impl Fn(&TokenView) -> bool, reason: &str) {
        let picked: Vec<usize> = (0..self.st.tokens.len())
            .filter(|&i| {
                self.st.tokens[i].status.is_live()
                    && pick(&TokenView {
                        st: self.st,
                        token: i,
                    })
            })
            .collect();
        let mut aborted = Vec::new();
        let mut children = Vec::new();
        for i in picked {
            if matches!(
                self.st.tokens[i].status,
                TokenStatus::Running | TokenStatus::RetryWait
            ) {
                aborted.push(self.st.tokens[i].id.clone());
            }
            if let Some(child) = &self.st.tokens[i].child {
                children.push(child.clone());
            }
            let set = self.st.tokens[i]
                .scope
                .map(|s| self.st.sets[self.st.scopes[s].set].id.clone());
            self.emit(
                Some(i),
                EventBody::TokenCancelled {
                    sibling_set: set,
                    reason: reason.to_string(),
                },
            );
        }
        if !aborted.is_empty() {
            self.step.commands.push(Command::CancelTasks(aborted));
        }
        if !children.is_empty() {
            self.step.commands.push(Command::CancelRuns(children));
        }
    }

    fn fail_run(&mut self, error: ErrorInfo) {
        if self.st.status != RunStatus::Running {
            return;
        }
        let reason = format!("the run failed: {}", error.code);
        self.cancel_tokens(|_| true, &reason);
        self.emit(None, EventBody::WorkflowFailed { error });
        self.step.commands.push(Command::RunEnded);
        self.ready.clear();
    }

    fn complete(&mut self) {
        let mut output = self.st.context.output.clone();
        {
            let c = &self.st.context;
            let vars = Vars::new()
                .with("input", &c.input)
                .with("state", &c.state)
                .with("output", &c.output)
                .with("artifacts", &c.artifacts);
            for (path, e) in &self.g.output_mapping {
                let r = e
                    .eval(&vars)
                    .map_err(|err| err.to_string())
                    .and_then(|v| braid_expr::set_path(&mut output, path, v));
                if let Err(msg) = r {
                    drop(vars);
                    return self.fail_run(ErrorInfo::new(
                        "EXPRESSION",
                        format!("workflow output_mapping `{}`: {msg}", path.join(".")),
                    ));
                }
            }
        }
        if let Some(schema) = &self.g.output_schema
            && let Err(violations) = schema.validate(&output)
        {
            return self.fail_run(ErrorInfo::new(
                "OUTPUT_SCHEMA",
                format!(
                    "the final output does not match output_schema: {}",
                    describe(&violations)
                ),
            ));
        }
        // Abandoned branches still running are cancelled when the run ends.
        self.cancel_tokens(|_| true, "the run completed");
        self.emit(None, EventBody::WorkflowCompleted { output });
        self.step.commands.push(Command::RunEnded);
    }
}

/// Records that a snapshot of `state` is being taken: appends (and applies)
/// a `snapshot_created` event covering itself, so the snapshot taken right
/// after includes it. `None` once the run has ended: no event follows the
/// final one.
pub fn mark_snapshot(state: &mut RunState, graph: &Graph, now: Millis) -> Option<Event> {
    if state.status != RunStatus::Running {
        return None;
    }
    let seq = state.seq + 1;
    let e = Event {
        seq,
        ts: now,
        token_id: None,
        node: None,
        body: EventBody::SnapshotCreated { seq },
    };
    state.apply_event(graph, &e);
    Some(e)
}

/// The child starts a recovered run still owes: `workflow_call` attempts
/// whose child was requested but never reported started (the command was
/// lost with the process), and calls waiting on a child (the runtime checks
/// whether that child ended while nobody listened). Starting a child is
/// idempotent, so re-issuing is always safe.
pub fn pending_children(state: &mut RunState, graph: &Graph, now: Millis) -> Vec<ChildCall> {
    let waiting: Vec<usize> = (0..state.tokens.len())
        .filter(|&i| {
            let t = &state.tokens[i];
            matches!(
                graph.nodes[t.node].action,
                CompiledAction::WorkflowCall { .. }
            ) && matches!(
                t.status,
                TokenStatus::Running | TokenStatus::RetryWait | TokenStatus::WaitingChild
            )
        })
        .collect();
    let m = Machine {
        st: state,
        g: graph,
        now,
        step: Step::default(),
        ready: VecDeque::new(),
        limits: graph.limits,
        budget: usize::MAX,
    };
    let mut calls = Vec::new();
    for i in waiting {
        let t = &m.st.tokens[i];
        let node = m.node(i);
        if let Ok(Work::Child {
            workflow,
            version,
            input,
            artifacts,
        }) = m.resolve_payload(i)
        {
            calls.push(ChildCall {
                token: t.id.clone(),
                attempt: t.attempt,
                child_run_id: t
                    .child
                    .clone()
                    .unwrap_or_else(|| child_run_id(&m.st.run_id, &t.id, t.attempt)),
                workflow,
                version,
                input,
                artifacts,
                timeout_ms: node.timeout_ms,
                // A pending retry keeps its durable delay across a restart.
                not_before: t.not_before.unwrap_or(now).max(now),
            });
        }
    }
    calls
}

/// What starting a non-pure node means.
enum Work {
    /// A task for the executor pool.
    Task(TaskPayload),
    /// A child run.
    Child {
        workflow: String,
        version: Option<i64>,
        input: Value,
        artifacts: Option<Value>,
    },
}

/// The id of the child run of a `workflow_call` attempt: derived, so that
/// re-issuing the start after a crash finds the same run.
pub fn child_run_id(run_id: &str, token: &str, attempt: u32) -> String {
    let d = Sha256::digest(format!("{run_id}/{token}/{attempt}").as_bytes());
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("run_{hex}")
}

/// A token seen by a cancellation filter.
struct TokenView<'s> {
    st: &'s RunState,
    token: usize,
}

impl TokenView<'_> {
    /// True when the token is in scope `s` or a scope nested in it.
    fn in_scope(&self, s: usize) -> bool {
        let mut cur = self.st.tokens[self.token].scope;
        while let Some(c) = cur {
            if c == s {
                return true;
            }
            cur = self.st.scopes[c].parent;
        }
        false
    }
}

fn describe(violations: &[braid_expr::SchemaViolation]) -> String {
    braid_expr::SchemaViolation::describe_all(violations)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn fan_in_name(f: FanIn) -> &'static str {
    match f {
        FanIn::All => "all",
        FanIn::Any => "any",
        FanIn::MOfN { .. } => "m_of_n",
    }
}

fn strategy_name(s: MergeStrategy) -> &'static str {
    match s {
        MergeStrategy::Append => "append",
        MergeStrategy::Collect => "collect",
        MergeStrategy::MergeObject => "merge_object",
        MergeStrategy::KeyedByBranch => "keyed_by_branch",
        MergeStrategy::LastWins => "last_wins",
    }
}

fn digest(p: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(p).unwrap_or_default();
    let d = Sha256::digest(&bytes);
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}
