//! Compilation of transitions into each node's outgoing list, sorted by
//! priority (ties keep definition order).

use super::validator::Validator;
use super::{CompiledTransition, NodeIdx, Spawn, transition_ref};
use crate::definition::{Bundle, Condition, SpawnCount, Transition};
use braid_expr::Expr;
use std::collections::HashMap;

const KIND: &str = "transition";

/// For each node, its compiled outgoing transitions in evaluation order.
/// A transition whose ends are unknown is reported and left out.
pub(super) fn compile_transitions(
    v: &mut Validator,
    bundle: &Bundle,
    index: &HashMap<String, NodeIdx>,
) -> Vec<Vec<CompiledTransition>> {
    let mut outgoing: Vec<Vec<CompiledTransition>> = vec![Vec::new(); bundle.nodes.len()];
    for (position, t) in bundle.transitions.iter().enumerate() {
        let tref = transition_ref(t);
        let from = index.get(&t.from).copied();
        let to = index.get(&t.to).copied();
        if from.is_none() {
            v.err(
                KIND,
                &tref,
                "from",
                format!("transition from unknown node `{}`", t.from),
            );
        }
        if to.is_none() {
            v.err(
                KIND,
                &tref,
                "to",
                format!("transition to unknown node `{}`", t.to),
            );
        }
        if t.loop_.is_some() && t.ref_.is_none() {
            v.err(
                KIND,
                &tref,
                "ref",
                "a transition with `loop` needs a `ref` (it names the loop counter _loop.<ref>)",
            );
        }
        if t.spawn_count.is_some() && t.foreach.is_some() {
            v.err(
                KIND,
                &tref,
                "spawn_count",
                "use either spawn_count or foreach, not both",
            );
        }
        let condition = compile_condition(v, &tref, t);
        let spawn = compile_spawn(v, &tref, t);
        if let Some(l) = &t.loop_
            && l.max_iterations == 0
        {
            v.err(
                KIND,
                &tref,
                "loop.max_iterations",
                "max_iterations must be at least 1 (remove the transition to never loop)",
            );
        }
        if let (Some(from), Some(to)) = (from, to) {
            outgoing[from].push(CompiledTransition {
                position,
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
    for transitions in &mut outgoing {
        transitions.sort_by_key(|t| (t.priority, t.position));
    }
    outgoing
}

fn compile_condition(v: &mut Validator, tref: &str, t: &Transition) -> Option<Expr> {
    match &t.condition {
        None => None,
        Some(Condition::Cel(src)) => v.expr(KIND, tref, "condition", src, &[]),
        Some(Condition::Structured(s)) => match s.to_cel() {
            Ok(src) => v.expr(KIND, tref, "condition", &src, &[]),
            Err(e) => {
                v.err(KIND, tref, "condition", e);
                None
            }
        },
    }
}

/// How many tokens taking `t` creates; an expression that does not compile
/// is reported and leaves [`Spawn::One`].
fn compile_spawn(v: &mut Validator, tref: &str, t: &Transition) -> Spawn {
    match (&t.spawn_count, &t.foreach) {
        (Some(SpawnCount::Fixed(n)), _) => Spawn::Count(*n),
        (Some(SpawnCount::Expr(src)), _) => match v.expr(KIND, tref, "spawn_count", src, &[]) {
            Some(e) => Spawn::CountExpr(e),
            None => Spawn::One,
        },
        (None, Some(foreach)) => {
            match v.expr(KIND, tref, "foreach.collection", &foreach.collection, &[]) {
                Some(e) => Spawn::Foreach {
                    collection: e,
                    item_var: foreach.item_var.clone(),
                },
                None => Spawn::One,
            }
        }
        (None, None) => Spawn::One,
    }
}
