//! Routing a node's outcome: choosing transitions by priority group and
//! condition, spawning tokens (sibling sets for fan-outs), and failures no
//! transition takes.

use super::{Failure, Machine};
use crate::definition::{FanOut, On};
use crate::event::{ErrorInfo, EventBody};
use crate::graph::{CompiledTransition, Spawn};
use crate::merge::type_name;
use braid_expr::{Expr, Vars};
use braid_types::ErrorCode;
use serde_json::Value;

impl<'a> Machine<'a> {
    /// Routing itself failed (a condition or spawn expression): the node
    /// fails, or, when it was routing a failure, the run (a failure of a
    /// failure route cannot be routed again).
    fn routing_failed(&mut self, token: usize, outcome: On, error: ErrorInfo, attempt: u32) {
        if outcome == On::Success {
            self.fail_node(token, Failure::unpaid(error, attempt))
        } else {
            self.fail_run(error)
        }
    }

    /// Routes `outcome` of the token's node: the first priority group with a
    /// match wins (`first_match` takes one transition of it, `all` every one).
    pub(super) fn route(&mut self, token: usize, outcome: On, attempt: u32) {
        let node = self.node(token);
        let candidates: Vec<&'a CompiledTransition> = node
            .transitions
            .iter()
            .filter(|t| t.on == outcome || t.on == On::Always)
            .collect();
        if candidates.is_empty() {
            if outcome == On::Failure {
                self.unrouted(token);
            }
            return; // success: terminal for this token
        }
        let mut taken: Vec<&'a CompiledTransition> = Vec::new();
        let mut group: Option<i64> = None;
        {
            // The context is built only when a condition needs it.
            let ctx = candidates
                .iter()
                .any(|t| t.condition.is_some())
                .then(|| self.context(token));
            let vars = ctx.as_ref().map(|c| c.vars(None)).unwrap_or_default();
            for t in candidates {
                if group.is_some_and(|g| g != t.priority) {
                    break; // a lower group already matched
                }
                if let (Some(max), Some(r)) = (t.max_iterations, &t.ref_)
                    && self.state.tokens[token].loops.get(r).copied().unwrap_or(0) >= max
                {
                    continue; // loop exhausted: treated as not matching
                }
                let matched = match &t.condition {
                    None => true,
                    Some(c) => match c.eval_bool(&vars) {
                        Ok(b) => b,
                        Err(err) => {
                            let error = self.expr_error(
                                token,
                                &format!(
                                    "condition `{}` of transition to `{}`",
                                    c.source(),
                                    self.graph.nodes[t.to].ref_
                                ),
                                &err.to_string(),
                            );
                            drop(vars);
                            drop(ctx);
                            return self.routing_failed(token, outcome, error, attempt);
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
                let error = self.node_error(token, ErrorCode::NoMatchingTransition, format!("node `{}` succeeded but none of its transitions' conditions matched: add a transition without condition as a fallback", node.ref_));
                return self.fail_node(token, Failure::unpaid(error, attempt));
            }
            return self.unrouted(token);
        }
        self.take_transitions(token, outcome, attempt, taken);
    }

    /// Creates the tokens of the transitions taken: each spawns one token,
    /// a count, or one per `foreach` item; more than one (or a spawning
    /// transition) forms a sibling set.
    fn take_transitions(
        &mut self,
        token: usize,
        outcome: On,
        attempt: u32,
        taken: Vec<&'a CompiledTransition>,
    ) {
        let node = self.node(token);
        // How many tokens each taken transition creates.
        let mut plan: Vec<(&CompiledTransition, u64, Option<Vec<Value>>)> =
            Vec::with_capacity(taken.len());
        {
            let ctx = taken
                .iter()
                .any(|t| matches!(t.spawn, Spawn::CountExpr(_) | Spawn::Foreach { .. }))
                .then(|| self.context(token));
            let vars = ctx.as_ref().map(|c| c.vars(None)).unwrap_or_default();
            for t in &taken {
                let r = match &t.spawn {
                    Spawn::One => Ok((1, None)),
                    Spawn::Count(n) => Ok((*n, None)),
                    Spawn::CountExpr(e) => {
                        self.eval_spawn(token, "spawn_count", e, &vars, |v| match v {
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
                        self.eval_spawn(token, "foreach collection", collection, &vars, |v| match v
                        {
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
                        return self.routing_failed(token, outcome, error, attempt);
                    }
                }
            }
        }
        // Saturating: `spawn_count: 18446744073709551615` is over any limit,
        // not a wrapped sum.
        let total = plan.iter().fold(0u64, |a, p| a.saturating_add(p.1));
        let max = self.limits.max_tokens();
        if (self.state.tokens.len() as u64).saturating_add(total) > max {
            return self.fail_run(ErrorInfo::new(
                ErrorCode::TokenLimit,
                format!(
                    "node `{}` would bring the run past {max} tokens (limits.max_run_tokens)",
                    node.ref_
                ),
            ));
        }
        let fan = total != 1 || plan.iter().any(|p| !matches!(p.0.spawn, Spawn::One));
        let set_id = fan.then(|| format!("ss_{}", self.state.sets.len() + 1));
        let origin_id = self.state.tokens[token].id.clone();
        let mut index = 0u64;
        for (t, n, items) in plan {
            let first = self.state.tokens.len();
            let ids: Vec<String> = (0..n as usize)
                .map(|k| self.state.next_token_id(k))
                .collect();
            if n == 0 {
                continue;
            }
            self.emit(
                Some(token),
                EventBody::TransitionTaken {
                    transition: t.ref_.clone(),
                    from: node.ref_.clone(),
                    to: self.graph.nodes[t.to].ref_.clone(),
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
                (set_id, self.graph.joined_by[self.state.tokens[token].node])
        {
            self.fire_empty(token, set_id, join_node);
        }
    }

    /// Evaluates a `spawn_count` or `foreach` expression and reads its value
    /// as (token count, foreach items); any error names the expression.
    fn eval_spawn(
        &self,
        token: usize,
        what: &str,
        e: &Expr,
        vars: &Vars,
        read: impl FnOnce(Value) -> Result<(u64, Option<Vec<Value>>), String>,
    ) -> Result<(u64, Option<Vec<Value>>), ErrorInfo> {
        let what = format!("{what} `{}`", e.source());
        let v = e
            .eval(vars)
            .map_err(|err| self.expr_error(token, &what, &err.to_string()))?;
        read(v).map_err(|msg| self.expr_error(token, &what, &msg))
    }

    fn unrouted(&mut self, token: usize) {
        if self.is_abandoned(token) {
            return; // an abandoned branch never fails the run
        }
        let scope = self.state.tokens[token].scope;
        let error = match self.state.state_in(scope).get("_last_error") {
            Some(v) => serde_json::from_value(v.clone())
                .unwrap_or_else(|_| ErrorInfo::new(ErrorCode::Internal, "unrouted failure")),
            None => ErrorInfo::new(
                ErrorCode::Internal,
                format!("node `{}` failed", self.node(token).ref_),
            ),
        };
        self.fail_run(error);
    }

    fn is_abandoned(&self, token: usize) -> bool {
        let mut cur = self.state.tokens[token].scope;
        while let Some(s) = cur {
            if self.state.scopes[s].abandoned {
                return true;
            }
            cur = self.state.scopes[s].parent;
        }
        false
    }
}
