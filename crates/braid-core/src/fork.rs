//! Forking a run (docs/lifecycles.md, decision 71): where a source run's
//! history may be cut, and whether a target version can go on from it.
//!
//! **Where a history may be cut.** Steps are not recorded in the event log
//! as such; what the log does show is where a step *could* have ended. The
//! machine starts ready tokens one by one and, at its event budget, stops
//! before the next start and leaves the rest `pending` for
//! [`Input::Continue`](crate::protocol::Input::Continue), an execution
//! equivalent to the unbounded step (any order of starting ready tokens is
//! valid). So the point just before any `node_started` is a step boundary
//! of some valid execution of the same run: the history before it holds
//! every event of the input that made the token ready, and the tokens
//! started after it are pending in the rebuilt state. A retry's
//! `node_started` opens a step of its own. A cut never falls anywhere
//! else, so it never splits the events that one decision emitted (a
//! completion and its routing, a fan-out and its members, a join's firing
//! and its merge).

use crate::event::{Event, EventBody};
use crate::graph::Graph;
use crate::state::{set_index, token_index};
use std::collections::{BTreeMap, BTreeSet};

/// Where to fork, as the API takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ForkPoint {
    /// Before the first visit of this node starts.
    Node(String),
    /// After the last step boundary at or before this event.
    Seq(u64),
}

/// Why a fork point does not fit a history.
#[derive(Debug, Clone, PartialEq)]
pub enum CutError {
    /// The node ref is not visited in the history (or not in the graph).
    UnknownNode(String),
    /// The seq is outside `1..=last`.
    SeqOutOfRange {
        /// Asked for.
        seq: u64,
        /// The history's last seq.
        last: u64,
    },
}

impl std::fmt::Display for CutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutError::UnknownNode(n) => write!(f, "node `{n}` was never started in the source run"),
            CutError::SeqOutOfRange { seq, last } => write!(
                f,
                "seq {seq} is out of range: the source run has events 1 to {last}"
            ),
        }
    }
}

/// True when the history may be cut just before `e` (see the module docs).
fn boundary_before(e: &Event) -> bool {
    matches!(e.body, EventBody::NodeStarted { .. })
}

/// How many events of `history` (a whole run, seq 1, 2, 3 …) a fork at
/// `point` copies: for a node, every event before the first `node_started`
/// of that node; for a seq, the events up to the last boundary at or
/// before it (never fewer than one: `workflow_started` is always copied).
pub fn cut(history: &[Event], point: &ForkPoint) -> Result<usize, CutError> {
    match point {
        ForkPoint::Node(node) => history
            .iter()
            .position(|e| boundary_before(e) && e.node.as_deref() == Some(node.as_str()))
            .ok_or_else(|| CutError::UnknownNode(node.clone())),
        ForkPoint::Seq(seq) => {
            let last = history.len() as u64;
            if *seq == 0 || *seq > last {
                return Err(CutError::SeqOutOfRange { seq: *seq, last });
            }
            // Copy `c` events where event `c + 1` opens a step, `c <= seq`.
            let seq = *seq as usize;
            let c = (1..=seq)
                .rev()
                .find(|&c| history.get(c).is_some_and(boundary_before))
                .unwrap_or(1);
            Ok(c)
        }
    }
}

/// What a target version lacks that the copied `history` refers to (empty
/// when it can go on from it), each item naming the node, action or join:
/// every node visited, every action started, the initial node, and for
/// every sibling set the join that closes it in the source version.
pub fn missing(history: &[Event], source: &Graph, target: &Graph) -> Vec<String> {
    let mut problems = BTreeSet::new();
    let initial = &source.nodes[source.initial].ref_;
    if target.nodes[target.initial].ref_ != *initial {
        problems.insert(format!(
            "initial node `{initial}` (the target starts at `{}`)",
            target.nodes[target.initial].ref_
        ));
    }
    let actions: BTreeSet<&str> = target.nodes.iter().map(|n| n.action_ref.as_str()).collect();
    // Token → node ref, to find the node each sibling set fanned out from.
    let mut token_nodes: BTreeMap<usize, &str> = BTreeMap::new();
    let mut sets: BTreeMap<usize, &str> = BTreeMap::new();
    for e in history {
        if let Some(node) = e.node.as_deref() {
            if !target.index.contains_key(node) {
                problems.insert(format!("node `{node}`"));
            }
            if let Some(t) = e.token_id.as_deref().and_then(token_index) {
                token_nodes.entry(t).or_insert(node);
            }
        }
        match &e.body {
            EventBody::NodeStarted { action, .. } if !actions.contains(action.as_str()) => {
                problems.insert(format!("action `{action}`"));
            }
            EventBody::TransitionTaken { to, tokens, .. } => {
                for t in tokens.iter().filter_map(|t| token_index(t)) {
                    token_nodes.entry(t).or_insert(to.as_str());
                }
            }
            EventBody::TokenSpawned {
                sibling_set,
                parent_token,
                ..
            } => {
                if let (Some(s), Some(origin)) = (set_index(sibling_set), token_index(parent_token))
                    && let Some(node) = token_nodes.get(&origin)
                {
                    sets.entry(s).or_insert(*node);
                }
            }
            _ => {}
        }
    }
    for fan_out in sets.values() {
        let Some(&src) = source.index.get(*fan_out) else {
            continue;
        };
        let src_join = source.joined_by[src].map(|j| source.nodes[j].ref_.as_str());
        let tgt_join = target
            .index
            .get(*fan_out)
            .and_then(|&t| target.joined_by[t])
            .map(|j| target.nodes[j].ref_.as_str());
        if src_join != tgt_join {
            problems.insert(match src_join {
                Some(j) => format!("join `{j}` closing the fan-out of `{fan_out}`"),
                None => format!("no join closing the fan-out of `{fan_out}`"),
            });
        }
    }
    problems.into_iter().collect()
}
