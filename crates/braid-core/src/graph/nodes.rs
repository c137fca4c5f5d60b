//! Compilation of nodes: the action each runs (named or inline), its
//! mappings, effective timeout and retry policy, and its join.

use super::actions::{ActionCompiler, check_execution};
use super::reachability::{can_fan_out, reaches, static_sibling_count};
use super::validator::{Validator, is_ident};
use super::{
    CONTEXT_NAMES, CompiledAction, CompiledJoin, CompiledNode, CompiledTransition,
    DEFAULT_TIMEOUT_MS, NodeIdx,
};
use crate::definition::{ActionRef, Execution, FanIn, Node};
use std::collections::{BTreeMap, HashMap};

const KIND: &str = "node";

/// What nodes are compiled against: the earlier phases' results.
pub(super) struct NodeCompiler<'b> {
    pub(super) actions: &'b ActionCompiler<'b>,
    /// Named actions as compiled by [`ActionCompiler::compile_named`].
    pub(super) named_actions: &'b HashMap<String, Option<CompiledAction>>,
    pub(super) index: &'b HashMap<String, NodeIdx>,
    pub(super) outgoing: &'b [Vec<CompiledTransition>],
}

impl NodeCompiler<'_> {
    /// Compiles every node, in definition order, and returns them with the
    /// joins found: fan-out node → ref of the node that joins it.
    pub(super) fn compile_all(
        &self,
        v: &mut Validator,
    ) -> (Vec<CompiledNode>, BTreeMap<NodeIdx, String>) {
        let nodes_in = &self.actions.bundle.nodes;
        let mut nodes = Vec::with_capacity(nodes_in.len());
        let mut joined: BTreeMap<NodeIdx, String> = BTreeMap::new();
        for n in nodes_in {
            nodes.push(self.compile_node(v, n, &mut joined));
        }
        (nodes, joined)
    }

    fn compile_node(
        &self,
        v: &mut Validator,
        n: &Node,
        joined: &mut BTreeMap<NodeIdx, String>,
    ) -> CompiledNode {
        let r = n.ref_.as_str();
        let (action_ref, action_execution, action) = self.node_action(v, n);
        if let Some(e) = &n.execution {
            check_execution(v, KIND, r, e);
        }
        let mut input_mapping = Vec::new();
        for (field, src) in &n.input_mapping {
            if !is_ident(field) || CONTEXT_NAMES.contains(&field.as_str()) {
                v.err(KIND, r, &format!("input_mapping.{field}"), format!("`{field}` must be an identifier other than input, state, output, artifacts, _branch, _loop"));
            }
            if let Some(e) = v.expr(KIND, r, &format!("input_mapping.{field}"), src, &[]) {
                input_mapping.push((field.clone(), e));
            }
        }
        let mut output_mapping = Vec::new();
        for (path, src) in &n.output_mapping {
            let field = format!("output_mapping.{path}");
            let p = v.target(KIND, r, &field, path);
            let e = v.expr(KIND, r, &field, src, &["result"]);
            if let (Some(p), Some(e)) = (p, e) {
                output_mapping.push((p, e));
            }
        }
        // A node's execution settings replace its action's.
        let is_workflow_call = matches!(action, Some(CompiledAction::WorkflowCall { .. }));
        let timeout_ms = n
            .execution
            .as_ref()
            .and_then(|e| e.timeout_ms)
            .or(action_execution.as_ref().and_then(|e| e.timeout_ms))
            .or(if is_workflow_call {
                None
            } else {
                Some(DEFAULT_TIMEOUT_MS)
            });
        let retry = n
            .execution
            .as_ref()
            .and_then(|e| e.retry_policy.clone())
            .or(action_execution
                .as_ref()
                .and_then(|e| e.retry_policy.clone()))
            .unwrap_or_default();
        let max_cost_usd = n
            .execution
            .as_ref()
            .and_then(|e| e.max_cost_usd)
            .or(action_execution.as_ref().and_then(|e| e.max_cost_usd));
        let join = self.compile_join(v, n, joined);
        CompiledNode {
            ref_: n.ref_.clone(),
            action_ref,
            action: action.unwrap_or(CompiledAction::UpdateContext(Vec::new())),
            input_mapping,
            output_mapping,
            fan_out: n.fan_out,
            transitions: self.outgoing[self.index[r]].clone(),
            join,
            timeout_ms,
            retry,
            max_cost_usd,
        }
    }

    /// The node's action: (action ref, the action's execution settings,
    /// compiled action when it compiled).
    fn node_action(
        &self,
        v: &mut Validator,
        n: &Node,
    ) -> (String, Option<Execution>, Option<CompiledAction>) {
        let r = n.ref_.as_str();
        match &n.action {
            ActionRef::Ref(a) => match self
                .actions
                .bundle
                .actions
                .iter()
                .rev()
                .find(|x| &x.ref_ == a)
            {
                Some(named) => (
                    a.clone(),
                    named.body.execution.clone(),
                    self.named_actions.get(a).cloned().flatten(),
                ),
                None => {
                    v.err(
                        KIND,
                        r,
                        "action",
                        format!("action `{a}` is not defined in this bundle"),
                    );
                    (a.clone(), None, None)
                }
            },
            ActionRef::Inline(body) => {
                let action_ref = format!("{r}.action");
                if let Some(e) = &body.execution {
                    check_execution(v, KIND, r, e);
                }
                let action = self.actions.compile(v, &action_ref, body);
                (action_ref, body.execution.clone(), action)
            }
        }
    }

    /// The node's join configuration: `fan_in` and `joins` go together and
    /// must close a fan-out node upstream that no other node joins.
    fn compile_join(
        &self,
        v: &mut Validator,
        n: &Node,
        joined: &mut BTreeMap<NodeIdx, String>,
    ) -> Option<CompiledJoin> {
        let r = n.ref_.as_str();
        let (fan_in, joins) = match (&n.fan_in, &n.joins) {
            (None, None) => {
                if n.merge.is_some() || n.on_early_complete.is_some() {
                    v.err(
                        KIND,
                        r,
                        "merge",
                        "merge and on_early_complete need fan_in and joins",
                    );
                }
                return None;
            }
            (Some(_), None) => {
                v.err(
                    KIND,
                    r,
                    "joins",
                    "a fan_in node must name the fan-out node it closes in `joins`",
                );
                return None;
            }
            (None, Some(_)) => {
                v.err(
                    KIND,
                    r,
                    "fan_in",
                    "`joins` needs `fan_in` (all, any or { m_of_n: M })",
                );
                return None;
            }
            (Some(fan_in), Some(joins)) => (fan_in, joins),
        };
        let Some(&fan_out_node) = self.index.get(joins) else {
            v.err(KIND, r, "joins", format!("joins unknown node `{joins}`"));
            return None;
        };
        let bundle = self.actions.bundle;
        let fan_out_transitions = &self.outgoing[fan_out_node];
        let fan_out_mode = bundle.nodes[fan_out_node].fan_out;
        if !can_fan_out(fan_out_transitions, fan_out_mode) {
            v.err(KIND, r, "joins", format!("node `{joins}` never fans out (no spawn_count, foreach, fan_out: all or several transitions): there is nothing to join"));
        } else if !reaches(self.outgoing, fan_out_node, self.index[r]) {
            v.err(
                KIND,
                r,
                "joins",
                format!("node `{joins}` is not upstream of `{r}`"),
            );
        }
        if let Some(other) = joined.insert(fan_out_node, r.to_string()) {
            v.err(
                KIND,
                r,
                "joins",
                format!("node `{other}` already joins `{joins}`: one join per fan-out node"),
            );
        }
        if let FanIn::MOfN { m_of_n } = fan_in {
            if *m_of_n == 0 {
                v.err(KIND, r, "fan_in.m_of_n", "m_of_n must be at least 1");
            } else if let Some(total) = static_sibling_count(fan_out_transitions, fan_out_mode)
                && *m_of_n > total
            {
                v.err(
                    KIND,
                    r,
                    "fan_in.m_of_n",
                    format!("m_of_n is {m_of_n} but `{joins}` spawns only {total} branches"),
                );
            }
        }
        if let Some(m) = &n.merge {
            if m.source != "*" && m.source.split('.').any(|s| s.is_empty()) {
                v.err(
                    KIND,
                    r,
                    "merge.source",
                    format!(
                        "`{}` is not a path inside the branch output (or `*`)",
                        m.source
                    ),
                );
            }
            v.target(KIND, r, "merge.target", &m.target);
        }
        Some(CompiledJoin {
            fan_in: *fan_in,
            joins: fan_out_node,
            merge: n.merge.clone(),
            on_early_complete: n.on_early_complete.unwrap_or_default(),
        })
    }
}
