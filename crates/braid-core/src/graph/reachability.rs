//! Graph shape: reachability from the initial node, cycles without a
//! bounded loop, which nodes fan out (and into how many branches), and the
//! warnings about branches that end without reaching their join.

use super::validator::Validator;
use super::{CompiledNode, CompiledTransition, DefinitionError, NodeIdx, Spawn};
use crate::definition::{Bundle, FanOut, On};
use std::collections::{BTreeSet, VecDeque};

/// Every node must be reachable from `initial`, the bundle must have a
/// node, and every cycle must contain a loop transition.
pub(super) fn check_shape(
    v: &mut Validator,
    bundle: &Bundle,
    initial: Option<NodeIdx>,
    outgoing: &[Vec<CompiledTransition>],
) {
    if let Some(initial) = initial
        && !bundle.nodes.is_empty()
    {
        let reachable = reachable_from(outgoing, initial);
        for (node, n) in bundle.nodes.iter().enumerate() {
            if !reachable[node] {
                v.err("node", &n.ref_, "ref", format!("node `{}` is unreachable from initial_node `{}`: add a transition to it or remove it", n.ref_, bundle.initial_node));
            }
        }
    }
    if bundle.nodes.is_empty() {
        v.err(
            "workflow",
            bundle.name.as_str(),
            "nodes",
            "a workflow needs at least one node",
        );
    }
    // The graph without loop edges must be acyclic.
    if let Some(cycle_node) = find_cycle(outgoing) {
        let r = &bundle.nodes[cycle_node].ref_;
        v.err("node", r, "transitions", format!("node `{r}` is on a cycle without a bounded loop: give one transition of the cycle `loop: {{ max_iterations: N }}` and a ref"));
    }
}

fn reachable_from(outgoing: &[Vec<CompiledTransition>], initial: NodeIdx) -> Vec<bool> {
    let mut reachable = vec![false; outgoing.len()];
    let mut queue = VecDeque::from([initial]);
    reachable[initial] = true;
    while let Some(node) = queue.pop_front() {
        for t in &outgoing[node] {
            if !reachable[t.to] {
                reachable[t.to] = true;
                queue.push_back(t.to);
            }
        }
    }
    reachable
}

/// Warnings (docs/definitions.md): a fan-out whose branches can reach a terminal node
/// without passing its join — their writes would be discarded.
pub(super) fn branch_warnings(
    nodes: &[CompiledNode],
    joined_by: &[Option<NodeIdx>],
) -> Vec<DefinitionError> {
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

pub(super) fn can_fan_out(out: &[CompiledTransition], fan_out: FanOut) -> bool {
    out.iter().any(|t| !matches!(t.spawn, Spawn::One)) || (fan_out == FanOut::All && out.len() > 1)
}

/// The number of siblings a fan-out node creates when it is known statically.
pub(super) fn static_sibling_count(out: &[CompiledTransition], fan_out: FanOut) -> Option<u64> {
    let count = |t: &CompiledTransition| match t.spawn {
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

pub(super) fn reaches(out: &[Vec<CompiledTransition>], from: NodeIdx, to: NodeIdx) -> bool {
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
fn find_cycle(out: &[Vec<CompiledTransition>]) -> Option<NodeIdx> {
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
