//! Fan-in: members arriving at a join, firing the join exactly once per
//! sibling set (or resolving it as `JOIN_UNSATISFIED`), merging the arrived
//! members' outputs, and late arrivals.

use super::{Failure, Machine, fan_in_name};
use crate::definition::{EarlyComplete, FanIn, Merge};
use crate::event::{ErrorInfo, EventBody, Write};
use crate::merge::Contribution;
use crate::state::{RunStatus, TokenStatus};
use braid_expr::TargetPath;
use braid_types::ErrorCode;
use serde_json::Value;

impl Machine<'_> {
    /// A join node's continuation runs the node's action; other tokens arrive.
    pub(super) fn is_continuation(&self, token: usize) -> bool {
        let t = &self.state.tokens[token];
        let Some(parent) = t.parent.as_deref().and_then(crate::state::token_index) else {
            return false;
        };
        self.state
            .sets
            .iter()
            .rev()
            .any(|s| s.continuation == Some(token) && s.origin == parent)
    }

    /// `token` reached a join node that closes fan-outs of `fan_out_node`.
    pub(super) fn arrive(&mut self, token: usize, fan_out_node: usize) {
        let join_ref = self.node(token).ref_.clone();
        let scope = self.state.tokens[token].scope;
        let set = scope
            .map(|s| self.state.scopes[s].set)
            .filter(|&set| self.state.sets[set].fan_out_node == fan_out_node);
        let Some(set) = set else {
            let inner = scope.map(|s| format!(" (its innermost branch belongs to a fan-out of `{}`, which must be joined first)", self.graph.nodes[self.state.sets[self.state.scopes[s].set].fan_out_node].ref_)).unwrap_or_default();
            let error = self.node_error(token, ErrorCode::JoinScope, format!("token {} reached join `{join_ref}` but is not a branch of a fan-out of `{}`{inner}", self.state.tokens[token].id, self.graph.nodes[fan_out_node].ref_));
            return self.fail_node(token, Failure::unpaid(error, 1));
        };
        let s = scope.expect("branch token");
        let set_id = self.state.sets[set].id.clone();
        if self.state.sets[set].fired {
            return self.late_arrival(token, set);
        }
        if self.state.scopes[s].arrived {
            return self.emit(
                Some(token),
                EventBody::TokenCancelled {
                    sibling_set: Some(set_id),
                    reason: "this branch already reached the join".into(),
                },
            );
        }
        self.emit(
            Some(token),
            EventBody::TokenWaiting {
                sibling_set: set_id,
                join_node: join_ref,
            },
        );
    }

    fn late_arrival(&mut self, token: usize, set: usize) {
        let set_id = self.state.sets[set].id.clone();
        let join = self.node(token).join.as_ref().expect("join node");
        let continuation = self.state.sets[set]
            .continuation
            .expect("fired set has a continuation");
        let origin_scope = self.state.tokens[continuation].scope;
        let scope_live = origin_scope.is_none_or(|s| self.state.scopes[s].live > 0);
        if join.on_early_complete == EarlyComplete::AllowLateMerge && scope_live {
            self.emit(
                Some(token),
                EventBody::TokenWaiting {
                    sibling_set: set_id.clone(),
                    join_node: self.node(token).ref_.clone(),
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
                        let error = self.node_error(token, ErrorCode::MergeError, msg);
                        self.emit(
                            Some(token),
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
                Some(token),
                EventBody::TokenMerged {
                    sibling_set: set_id,
                },
            );
        } else {
            self.emit(
                Some(token),
                EventBody::TokenCancelled {
                    sibling_set: Some(set_id),
                    reason: "arrived after the join fired".into(),
                },
            );
        }
    }

    /// Fires every join whose condition is met.
    pub(super) fn check_joins(&mut self) {
        while let Some(set) = self.state.dirty.pop() {
            if self.state.status != Some(RunStatus::Running) {
                return;
            }
            let s = &self.state.sets[set];
            if s.fired
                || self
                    .state
                    .in_cancelled_branch(self.state.tokens[s.origin].scope)
            {
                continue; // a join inside a cancelled branch never fires
            }
            let Some(join_node) = self.graph.joined_by[s.fan_out_node] else {
                continue;
            };
            let join = self.graph.nodes[join_node]
                .join
                .as_ref()
                .expect("join config");
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
        let s = &self.state.sets[set];
        let mut contributions = Vec::with_capacity(s.arrivals.len());
        for (arrival, &member) in s.arrivals.iter().enumerate() {
            if !matches!(
                self.state.tokens[member].status,
                TokenStatus::WaitingJoin | TokenStatus::Merged
            ) {
                continue; // cancelled after arriving
            }
            let Some(scope) = self.state.tokens[member].scope else {
                continue;
            };
            let branch = &self.state.scopes[scope];
            let value = if merge.source == "*" {
                Some(&branch.output)
            } else {
                braid_expr::get_path(&branch.output, &merge.source)
            };
            if let Some(value) = value {
                contributions.push(Contribution {
                    branch_index: branch.index,
                    arrival,
                    value,
                });
            }
        }
        merge
            .strategy
            .combine(&contributions)
            .map_err(|reason| format!("{reason} at `{}`", merge.source))
    }

    /// Fires the join of `set` (`satisfied`), or resolves it as `JOIN_UNSATISFIED`.
    fn fire(&mut self, set: usize, join_node: usize, satisfied: bool) {
        let join = self.graph.nodes[join_node]
            .join
            .as_ref()
            .expect("join config");
        let (origin, set_id) = (self.state.sets[set].origin, self.state.sets[set].id.clone());
        let mut arrived: Vec<usize> = self.state.sets[set]
            .arrivals
            .iter()
            .copied()
            .filter(|&t| self.state.tokens[t].status == TokenStatus::WaitingJoin)
            .collect();
        arrived.sort_by_key(|&t| {
            self.state.tokens[t]
                .scope
                .map(|s| self.state.scopes[s].index)
        });
        if !self.continuation_fits(join_node) {
            return;
        }
        let merged_value = match (&join.merge, satisfied) {
            (Some(m), true) => Some(self.merge_value(set, m)),
            _ => None,
        };
        let continuation = self.state.tokens.len();
        let merged = if satisfied {
            arrived
                .iter()
                .map(|&t| self.state.tokens[t].id.clone())
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
            let members: Vec<usize> = self.state.sets[set].members.clone();
            if members.iter().any(|&m| self.state.scopes[m].live > 0) {
                let reason = format!(
                    "join `{}` fired without this branch",
                    self.graph.nodes[join_node].ref_
                );
                self.cancel_tokens(|view| members.iter().any(|&m| view.in_scope(m)), &reason);
            }
        }
        if !satisfied {
            let s = &self.state.sets[set];
            let need = match join.fan_in {
                FanIn::MOfN { m_of_n } => m_of_n,
                _ => 1,
            };
            let error = self.node_error(continuation, ErrorCode::JoinUnsatisfied, format!("join `{}` needed {need} arrival(s) from sibling set {} but only {} of {} branches arrived; the others ended elsewhere", self.graph.nodes[join_node].ref_, s.id, s.arrivals.len(), s.total));
            return self.fail_node(continuation, Failure::unpaid(error, 1));
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
                    ErrorCode::MergeError,
                    format!("join `{}`: {msg}", self.graph.nodes[join_node].ref_),
                );
                return self.fail_node(continuation, Failure::unpaid(error, 1));
            }
            None => {}
        }
        self.ready.push_back(continuation);
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
        let join = self.graph.nodes[join_node]
            .join
            .as_ref()
            .expect("join config");
        self.emit_raw(
            Some(self.state.next_token_id(0)),
            Some(self.graph.nodes[join_node].ref_.clone()),
            EventBody::FanInCompleted {
                sibling_set: set_id,
                merged,
                strategy: join.merge.as_ref().map(|m| m.strategy.name().to_string()),
                target: join.merge.as_ref().map(|m| m.target.clone()),
                continuation: self.state.next_token_id(0),
                origin_token: self.state.tokens[origin].id.clone(),
                fan_in: fan_in_name(join.fan_in).into(),
            },
        );
    }

    /// An empty sibling set: its join fires at once with an empty merge.
    pub(super) fn fire_empty(&mut self, origin: usize, set_id: String, join_node: usize) {
        let join = self.graph.nodes[join_node]
            .join
            .as_ref()
            .expect("join config");
        if !self.continuation_fits(join_node) {
            return;
        }
        let continuation = self.state.tokens.len();
        self.fan_in_completed(join_node, set_id, Vec::new(), origin);
        if let Some(m) = &join.merge {
            let empty = m.strategy.combine(&[]).unwrap_or(Value::Null);
            if !self.write_merge(continuation, m.target.clone(), empty) {
                return;
            }
        }
        self.ready.push_back(continuation);
    }

    /// A join's continuation is a token too: false (and the run failed) past `max_run_tokens`.
    fn continuation_fits(&mut self, join_node: usize) -> bool {
        let max = self.limits.max_tokens();
        if (self.state.tokens.len() as u64) < max {
            return true;
        }
        let join = &self.graph.nodes[join_node].ref_;
        self.fail_run(ErrorInfo::new(
            ErrorCode::TokenLimit,
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
            self.fail_node(continuation, Failure::unpaid(error, 1));
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
}
