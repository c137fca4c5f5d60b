//! A run's state and the one function that changes it: [`RunState::apply_event`].

use crate::definition::EarlyComplete;
use crate::event::{ErrorInfo, Event, EventBody, Millis, Usage, Write};
use crate::graph::{Graph, NodeIdx};
use braid_expr::{PathRoot, TargetPath};
pub use braid_types::{RunStatus, TokenStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One node visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// `tk_<n>`, unique in the run.
    pub id: String,
    /// The node it visits.
    pub node: NodeIdx,
    /// Lifecycle status.
    pub status: TokenStatus,
    /// The token whose visit created it.
    pub parent: Option<String>,
    /// Current (or last) attempt, 0 before the first.
    pub attempt: u32,
    /// Loop counters of its lineage (`_loop`).
    pub loops: BTreeMap<String, u64>,
    /// Its branch scope (index into [`RunState::scopes`]); `None` = the root scope.
    pub scope: Option<usize>,
    /// The child run a `workflow_call` token waits for (current attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<String>,
    /// Earliest start of the pending retry attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Millis>,
    /// Creation time.
    pub created_at: Millis,
    /// Last start.
    pub started_at: Option<Millis>,
    /// End.
    pub ended_at: Option<Millis>,
    /// What this visit's attempts cost, failed ones included: the ledger
    /// rows the store sums per node and over a run's descendants.
    #[serde(default, skip_serializing_if = "UsageTotals::is_zero")]
    pub usage: UsageTotals,
}

/// LLM usage totals: of a token's attempts, or of a run's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Requests sent to a provider (failed ones too: a 429 was sent).
    pub llm_calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost.
    pub cost_usd: f64,
}

impl UsageTotals {
    /// True when nothing was spent (the default).
    pub fn is_zero(&self) -> bool {
        *self == UsageTotals::default()
    }

    fn add(&mut self, u: &Usage) {
        self.llm_calls += 1;
        self.input_tokens += u.input_tokens;
        self.output_tokens += u.output_tokens;
        self.cost_usd += u.cost_usd;
    }
}

/// The run's data (docs/definitions.md context).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Immutable input.
    pub input: Value,
    /// Mutable state.
    pub state: Value,
    /// Final output being built.
    pub output: Value,
    /// name → artifact id.
    pub artifacts: Value,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            input: Value::Object(Map::new()),
            state: Value::Object(Map::new()),
            output: Value::Object(Map::new()),
            artifacts: Value::Object(Map::new()),
        }
    }
}

impl Context {
    /// `{ input, state, output, artifacts }`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "input": self.input, "state": self.state, "output": self.output, "artifacts": self.artifacts,
        })
    }
}

/// A branch: the scope of one sibling-set member and the tokens that follow it.
///
/// Reads see `view` (the parent scope's state at spawn with the branch's
/// writes applied); writes go to `view` and `output` (= `_branch.output`),
/// never to the parent scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Enclosing branch scope (`None` = root).
    pub parent: Option<usize>,
    /// The sibling set this branch belongs to.
    pub set: usize,
    /// The spawned member token.
    pub member: usize,
    /// `_branch.index`.
    pub index: u64,
    /// `_branch.item` (foreach).
    pub item: Option<Value>,
    /// Extra name bound to the item.
    pub item_var: Option<String>,
    /// Effective `state` inside the branch.
    pub view: Value,
    /// The branch's own writes (`_branch.output`).
    pub output: Value,
    /// Effective `artifacts` inside the branch.
    pub artifacts: Value,
    /// Live tokens in this scope and the scopes nested in it.
    pub live: usize,
    /// A token of this branch reached the join.
    pub arrived: bool,
    /// Left behind by an `abandon` join: no longer counted as live.
    pub abandoned: bool,
    /// Cancelled by a `cancel` join: nothing inside it continues.
    pub cancelled: bool,
}

/// The tokens created by one fan-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiblingSet {
    /// `ss_<n>`.
    pub id: String,
    /// The token whose visit spawned the set.
    pub origin: usize,
    /// The node that fanned out.
    pub fan_out_node: NodeIdx,
    /// Number of members.
    pub total: u64,
    /// Member scopes in index order.
    pub members: Vec<usize>,
    /// Arrived tokens (at the join) in arrival order.
    pub arrivals: Vec<usize>,
    /// Members whose branch ended without arriving.
    pub ended: u64,
    /// The join fired.
    pub fired: bool,
    /// The continuation token, once fired.
    pub continuation: Option<usize>,
}

/// Everything the core knows about a run. Serializable: it is the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Run id.
    pub run_id: String,
    /// Lifecycle: `None` until `workflow_started` (a run that has not
    /// started accepts nothing but its start).
    pub status: Option<RunStatus>,
    /// Root scope.
    pub context: Context,
    /// Tokens; `tk_<n>` is at index n − 1.
    pub tokens: Vec<Token>,
    /// Branch scopes.
    pub scopes: Vec<Scope>,
    /// Sibling sets; `ss_<n>` is at index n − 1.
    pub sets: Vec<SiblingSet>,
    /// Sets whose join condition may have changed (transient: cleared by the machine).
    #[serde(skip)]
    pub dirty: Vec<usize>,
    /// Number of live tokens.
    pub live: usize,
    /// Last event seq applied.
    pub seq: u64,
    /// Why the run failed.
    pub error: Option<ErrorInfo>,
    /// LLM usage totals.
    pub usage: UsageTotals,
    /// Start time.
    pub started_at: Option<Millis>,
    /// End time.
    pub ended_at: Option<Millis>,
}

/// Parses `tk_<n>` into its index.
pub fn token_index(id: &str) -> Option<usize> {
    id.strip_prefix("tk_")?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

/// Parses `ss_<n>` into its index.
pub fn set_index(id: &str) -> Option<usize> {
    id.strip_prefix("ss_")?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

fn token_id(index: usize) -> String {
    format!("tk_{}", index + 1)
}

impl RunState {
    /// A run that has not started.
    pub fn new(run_id: impl Into<String>) -> RunState {
        RunState {
            run_id: run_id.into(),
            status: None,
            context: Context::default(),
            tokens: Vec::new(),
            scopes: Vec::new(),
            sets: Vec::new(),
            dirty: Vec::new(),
            live: 0,
            seq: 0,
            error: None,
            usage: UsageTotals::default(),
            started_at: None,
            ended_at: None,
        }
    }

    /// The id the next created token gets.
    pub fn next_token_id(&self, offset: usize) -> String {
        token_id(self.tokens.len() + offset)
    }

    /// A token by id.
    pub fn token(&self, id: &str) -> Option<&Token> {
        self.tokens.get(token_index(id)?)
    }

    fn token_mut(&mut self, id: Option<&String>) -> Option<&mut Token> {
        let index = token_index(id?)?;
        self.tokens.get_mut(index)
    }

    /// Counts one attempt's usage in the run's totals and its token's.
    fn record_usage(&mut self, id: Option<&String>, usage: Option<&Usage>) {
        let Some(u) = usage else { return };
        self.usage.add(u);
        if let Some(t) = self.token_mut(id) {
            t.usage.add(u);
        }
    }

    fn set_status(&mut self, id: Option<&String>, status: TokenStatus, ts: Millis) {
        let Some(index) = id
            .and_then(|id| token_index(id))
            .filter(|&index| index < self.tokens.len())
        else {
            return;
        };
        let t = &mut self.tokens[index];
        let delta = status.is_live() as isize - t.status.is_live() as isize;
        t.status = status;
        if !status.is_live() {
            t.ended_at = Some(ts);
        }
        let scope = t.scope;
        self.count_live(scope, delta);
    }

    /// Adjusts live counts along a scope chain. Abandoned branches stop
    /// counting at their own scope: the run does not wait for them.
    fn count_live(&mut self, scope: Option<usize>, delta: isize) {
        if delta == 0 {
            return;
        }
        let mut cur = scope;
        while let Some(s) = cur {
            let sc = &mut self.scopes[s];
            let before = sc.live;
            sc.live = sc.live.saturating_add_signed(delta);
            if !sc.arrived {
                // A branch whose last live token ended without arriving has
                // ended; one that gets a live token again has not.
                let set = sc.set;
                if before > 0 && sc.live == 0 {
                    self.sets[set].ended += 1;
                    self.dirty.push(set);
                } else if before == 0 && sc.live > 0 {
                    self.sets[set].ended = self.sets[set].ended.saturating_sub(1);
                }
            }
            if self.scopes[s].abandoned {
                return;
            }
            cur = self.scopes[s].parent;
        }
        self.live = self.live.saturating_add_signed(delta);
    }

    fn create_token(
        &mut self,
        node: NodeIdx,
        parent: Option<String>,
        loops: BTreeMap<String, u64>,
        scope: Option<usize>,
        ts: Millis,
    ) -> usize {
        let id = token_id(self.tokens.len());
        self.tokens.push(Token {
            id,
            node,
            status: TokenStatus::Pending,
            parent,
            attempt: 0,
            loops,
            scope,
            child: None,
            not_before: None,
            created_at: ts,
            started_at: None,
            ended_at: None,
            usage: UsageTotals::default(),
        });
        self.count_live(scope, 1);
        self.tokens.len() - 1
    }

    /// Effective `state` as seen from a scope.
    pub fn state_in(&self, scope: Option<usize>) -> &Value {
        match scope {
            Some(s) => &self.scopes[s].view,
            None => &self.context.state,
        }
    }

    /// Effective `artifacts` as seen from a scope.
    pub fn artifacts_in(&self, scope: Option<usize>) -> &Value {
        match scope {
            Some(s) => &self.scopes[s].artifacts,
            None => &self.context.artifacts,
        }
    }

    /// `_branch` as seen from a scope (`None` at the root).
    pub fn branch_value(&self, graph: &Graph, scope: Option<usize>) -> Option<Value> {
        let s = &self.scopes[scope?];
        let set = &self.sets[s.set];
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.tokens[s.member].id.clone()));
        m.insert("index".into(), Value::from(s.index));
        m.insert("total".into(), Value::from(set.total));
        m.insert("sibling_set".into(), Value::String(set.id.clone()));
        m.insert(
            "fan_out_node".into(),
            Value::String(graph.nodes[set.fan_out_node].ref_.clone()),
        );
        if let Some(item) = &s.item {
            m.insert("item".into(), item.clone());
        }
        m.insert("output".into(), s.output.clone());
        if let Some(p) = self.branch_value(graph, s.parent) {
            m.insert("parent".into(), p);
        }
        Some(Value::Object(m))
    }

    /// True when a scope in the chain was cancelled by a join.
    pub fn in_cancelled_branch(&self, scope: Option<usize>) -> bool {
        let mut cur = scope;
        while let Some(s) = cur {
            if self.scopes[s].cancelled {
                return true;
            }
            cur = self.scopes[s].parent;
        }
        false
    }

    /// The foreach item variable visible in a scope chain: (name, value).
    pub fn item_var_in(&self, scope: Option<usize>) -> Option<(&str, &Value)> {
        let mut cur = scope;
        while let Some(s) = cur {
            let sc = &self.scopes[s];
            if let (Some(name), Some(item)) = (&sc.item_var, &sc.item) {
                return Some((name, item));
            }
            cur = sc.parent;
        }
        None
    }

    /// Applies one context write in a scope (`None` = root).
    pub fn write(&mut self, scope: Option<usize>, w: &Write) {
        let Ok(path) = TargetPath::parse(&w.path) else {
            return;
        };
        let mut targets: Vec<&mut Value> = Vec::with_capacity(2);
        match (scope, path.root) {
            (None, PathRoot::State | PathRoot::BranchOutput) => {
                targets.push(&mut self.context.state)
            }
            (_, PathRoot::Output) => targets.push(&mut self.context.output),
            (None, PathRoot::Artifacts) => targets.push(&mut self.context.artifacts),
            (Some(s), PathRoot::State | PathRoot::BranchOutput) => {
                let sc = &mut self.scopes[s];
                targets.push(&mut sc.view);
                targets.push(&mut sc.output);
            }
            (Some(s), PathRoot::Artifacts) => targets.push(&mut self.scopes[s].artifacts),
        }
        for root in targets {
            match &w.value {
                // Validity was checked when the write was decided.
                Some(v) => {
                    let _ = braid_expr::set_path(root, &path.segments, v.clone());
                }
                None => remove_path(root, &path.segments),
            }
        }
    }

    fn token_scope(&self, id: Option<&String>) -> Option<usize> {
        id.and_then(|id| self.token(id)).and_then(|t| t.scope)
    }

    /// The only way a run's state changes. Deterministic: replaying a run's
    /// events into [`RunState::new`] rebuilds exactly the live state.
    pub fn apply_event(&mut self, graph: &Graph, e: &Event) {
        self.seq = e.seq;
        let tok = e.token_id.as_ref();
        match &e.body {
            EventBody::WorkflowStarted { input, artifacts } => {
                self.status = Some(RunStatus::Running);
                self.context.input = input.clone();
                if let Some(a) = artifacts {
                    self.context.artifacts = a.clone();
                }
                self.started_at = Some(e.ts);
                self.create_token(graph.initial, None, BTreeMap::new(), None, e.ts);
            }
            EventBody::WorkflowCompleted { output } => {
                self.status = Some(RunStatus::Completed);
                self.context.output = output.clone();
                self.ended_at = Some(e.ts);
            }
            EventBody::WorkflowFailed { error } => {
                self.status = Some(RunStatus::Failed);
                self.error = Some(error.clone());
                self.ended_at = Some(e.ts);
            }
            EventBody::WorkflowCancelled { .. } => {
                self.status = Some(RunStatus::Cancelled);
                self.ended_at = Some(e.ts);
            }
            EventBody::NodeStarted { attempt, .. } => {
                self.set_status(tok, TokenStatus::Running, e.ts);
                if let Some(t) = self.token_mut(tok) {
                    t.attempt = *attempt;
                    t.started_at = Some(e.ts);
                }
            }
            EventBody::NodeCompleted { usage, .. } => {
                self.set_status(tok, TokenStatus::Completed, e.ts);
                self.record_usage(tok, usage.as_ref());
            }
            EventBody::NodeFailed { usage, .. } => {
                self.set_status(tok, TokenStatus::Failed, e.ts);
                self.record_usage(tok, usage.as_ref());
            }
            EventBody::NodeRetrying {
                attempt,
                not_before,
                usage,
                ..
            } => {
                self.set_status(tok, TokenStatus::RetryWait, e.ts);
                self.record_usage(tok, usage.as_ref());
                if let Some(t) = self.token_mut(tok) {
                    t.attempt = attempt + 1;
                    t.not_before = Some(*not_before);
                }
            }
            EventBody::TransitionTaken {
                transition,
                to,
                tokens,
                ..
            } => self.transition_taken(graph, e, transition, to, tokens.len()),
            EventBody::TokenCancelled { .. } => self.set_status(tok, TokenStatus::Cancelled, e.ts),
            EventBody::TokenMerged { .. } => self.set_status(tok, TokenStatus::Merged, e.ts),
            EventBody::TokenWaiting { sibling_set, .. } => {
                if let Some(index) = tok.and_then(|id| token_index(id))
                    && let Some(scope) = self.tokens.get(index).and_then(|t| t.scope)
                    && let Some(set) = set_index(sibling_set).filter(|&s| s < self.sets.len())
                {
                    self.scopes[scope].arrived = true;
                    self.sets[set].arrivals.push(index);
                    self.dirty.push(set);
                }
                self.set_status(tok, TokenStatus::WaitingJoin, e.ts);
            }
            EventBody::TokenSpawned {
                sibling_set,
                index,
                total,
                parent_token,
                item,
                item_var,
            } => self.token_spawned(e, sibling_set, *index, *total, parent_token, item, item_var),
            EventBody::FanInCompleted {
                sibling_set,
                origin_token,
                ..
            } => self.fan_in_completed(graph, e, sibling_set, origin_token),
            EventBody::ContextUpdated { writes } => {
                let scope = self.token_scope(tok);
                for w in writes {
                    self.write(scope, w);
                }
            }
            EventBody::ArtifactCreated {
                artifact_id, name, ..
            } => {
                let scope = self.token_scope(tok);
                self.write(
                    scope,
                    &Write {
                        path: format!("artifacts.{name}"),
                        value: Some(Value::String(artifact_id.clone())),
                    },
                );
            }
            EventBody::SubworkflowStarted { child_run_id, .. } => {
                self.set_status(tok, TokenStatus::WaitingChild, e.ts);
                if let Some(t) = self.token_mut(tok) {
                    t.child = Some(child_run_id.clone());
                }
            }
            EventBody::SubworkflowCompleted { .. } | EventBody::SubworkflowFailed { .. } => {
                if let Some(t) = self.token_mut(tok) {
                    t.child = None;
                }
            }
            // A record for readers: the attempt's outcome event changes the state.
            EventBody::SnapshotCreated { .. } | EventBody::LlmRequest(_) => {}
            EventBody::WorkflowForked { .. } => self.forked(e.ts),
        }
    }

    /// `workflow_forked`: the copied history ends here. Visits that were in
    /// flight (running, waiting for a retry or for a child run) start again
    /// from their first attempt; usage starts at zero (the copied attempts
    /// were paid by the source run); every join not yet fired is checked
    /// again, as the step that was cut might have settled it.
    fn forked(&mut self, ts: Millis) {
        self.status = Some(RunStatus::Running);
        self.started_at = Some(ts);
        self.usage = UsageTotals::default();
        for t in &mut self.tokens {
            t.usage = UsageTotals::default();
            if matches!(
                t.status,
                TokenStatus::Running | TokenStatus::RetryWait | TokenStatus::WaitingChild
            ) {
                // All three are live, as is pending: the live counts stay.
                t.status = TokenStatus::Pending;
                t.attempt = 0;
                t.child = None;
                t.not_before = None;
                t.started_at = None;
            }
        }
        self.dirty = (0..self.sets.len())
            .filter(|&s| !self.sets[s].fired)
            .collect();
    }

    /// Creates the tokens of a transition taken: in the parent's scope, with
    /// its loop counters (the taken loop's counted, a re-entered loop's reset).
    fn transition_taken(
        &mut self,
        graph: &Graph,
        e: &Event,
        transition: &Option<String>,
        to: &str,
        tokens: usize,
    ) {
        let Some(parent) = e.token_id.as_ref().and_then(|id| self.token(id)) else {
            return;
        };
        let Some(&to) = graph.index.get(to) else {
            return;
        };
        let from = parent.node;
        let scope = parent.scope;
        let mut loops = parent.loops.clone();
        let t = graph.nodes[from]
            .transitions
            .iter()
            .find(|t| t.to == to && t.ref_ == *transition);
        match t {
            Some(t) if t.max_iterations.is_some() => {
                if let Some(r) = &t.ref_ {
                    *loops.entry(r.clone()).or_insert(0) += 1;
                }
            }
            _ => {
                // Entering a loop's target from outside restarts it.
                if !loops.is_empty() {
                    for r in &graph.loops_into[to] {
                        loops.remove(r);
                    }
                }
            }
        }
        for _ in 0..tokens {
            self.create_token(to, e.token_id.clone(), loops.clone(), scope, e.ts);
        }
    }

    /// Makes a created token a member of its sibling set, in a branch scope of its own.
    #[allow(clippy::too_many_arguments)]
    fn token_spawned(
        &mut self,
        e: &Event,
        sibling_set: &str,
        index: u64,
        total: u64,
        parent_token: &str,
        item: &Option<Value>,
        item_var: &Option<String>,
    ) {
        let Some(member) = e.token_id.as_ref().and_then(|id| token_index(id)) else {
            return;
        };
        let Some(origin) = token_index(parent_token) else {
            return;
        };
        let Some(set) = set_index(sibling_set) else {
            return;
        };
        if set == self.sets.len() {
            self.sets.push(SiblingSet {
                id: sibling_set.to_string(),
                origin,
                fan_out_node: self.tokens[origin].node,
                total,
                members: Vec::new(),
                arrivals: Vec::new(),
                ended: 0,
                fired: false,
                continuation: None,
            });
        }
        // The member was created in the origin's scope; move it into its own branch.
        let parent_scope = self.tokens[member].scope;
        let live = self.tokens[member].status.is_live() as usize;
        let scope = self.scopes.len();
        self.scopes.push(Scope {
            parent: parent_scope,
            set,
            member,
            index,
            item: item.clone(),
            item_var: item_var.clone(),
            view: self.state_in(parent_scope).clone(),
            output: Value::Object(Map::new()),
            artifacts: self.artifacts_in(parent_scope).clone(),
            live,
            arrived: false,
            abandoned: false,
            cancelled: false,
        });
        self.tokens[member].scope = Some(scope);
        self.sets[set].members.push(scope);
    }

    /// Creates a join's continuation and marks its sibling set fired; the
    /// members left behind are cancelled or abandoned as the join says.
    fn fan_in_completed(
        &mut self,
        graph: &Graph,
        e: &Event,
        sibling_set: &str,
        origin_token: &str,
    ) {
        let Some(origin) = token_index(origin_token) else {
            return;
        };
        let Some(&join) = e.node.as_ref().and_then(|n| graph.index.get(n)) else {
            return;
        };
        let (scope, loops) = (self.tokens[origin].scope, self.tokens[origin].loops.clone());
        let c = self.create_token(join, Some(origin_token.to_string()), loops, scope, e.ts);
        if set_index(sibling_set) == Some(self.sets.len()) {
            // An empty sibling set: its join fires at once.
            self.sets.push(SiblingSet {
                id: sibling_set.to_string(),
                origin,
                fan_out_node: self.tokens[origin].node,
                total: 0,
                members: Vec::new(),
                arrivals: Vec::new(),
                ended: 0,
                fired: false,
                continuation: None,
            });
        }
        if let Some(set) = set_index(sibling_set).filter(|&s| s < self.sets.len()) {
            self.sets[set].fired = true;
            self.sets[set].continuation = Some(c);
            let early = graph.nodes[join].join.as_ref().map(|j| j.on_early_complete);
            if early == Some(EarlyComplete::Cancel) {
                // Nothing inside a cancelled branch continues (its inner joins never fire).
                for m in self.sets[set].members.clone() {
                    if !self.scopes[m].arrived {
                        self.scopes[m].cancelled = true;
                    }
                }
            }
            if early == Some(EarlyComplete::Abandon) {
                // Members still running are left behind: the run stops waiting for them.
                for m in self.sets[set].members.clone() {
                    let sc = &self.scopes[m];
                    if sc.live > 0 && !sc.arrived && !sc.abandoned {
                        let (live, parent) = (sc.live as isize, sc.parent);
                        self.count_live(parent, -live);
                        self.scopes[m].abandoned = true;
                    }
                }
            }
        }
    }

    /// Rebuilds a run from its events alone.
    pub fn rebuild<'a>(
        run_id: &str,
        graph: &Graph,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> RunState {
        RunState::new(run_id).replay(graph, events)
    }

    /// This state (a snapshot, or a new run) with `events` applied: what a
    /// live coordinator holds between inputs. The machine clears the sets
    /// still to be checked for a join at the end of every applied input,
    /// so a replay clears them too; otherwise a state rebuilt from a
    /// snapshot plus a tail that had an arrival would differ from the live
    /// one (and from a full replay) by that transient list.
    pub fn replay<'a>(
        mut self,
        graph: &Graph,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Self {
        for e in events {
            self.apply_event(graph, e);
        }
        self.dirty.clear();
        self
    }
}

fn remove_path(root: &mut Value, segments: &[String]) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut cur = root;
    for s in parents {
        match cur.get_mut(s) {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let Value::Object(m) = cur {
        m.remove(last);
    }
}
