//! What each [`Input`] does to a run; inputs that do not fit the state
//! (stale or duplicate deliveries, anything after the end) are ignored.

use super::{Machine, describe};
use crate::definition::Limits;
use crate::event::{ErrorInfo, EventBody};
use crate::protocol::{ChildOutcome, Command, Input, Outcome};
use crate::state::{RunStatus, TokenStatus};
use braid_types::ErrorCode;
use serde_json::Value;

/// Whether an input was applied or ignored early.
#[derive(PartialEq)]
enum Applied {
    Yes,
    Ignored,
}

impl Machine<'_> {
    pub(super) fn input(&mut self, input: Input) {
        let applied = match input {
            Input::Start {
                input,
                limits,
                artifacts,
            } => self.start_run(input, limits, artifacts),
            Input::Fork {
                history,
                from_run_id,
                from_seq,
                version,
            } => self.fork(history, from_run_id, from_seq, version),
            Input::TaskStarted { token, attempt } => {
                let Some(token) = self.live_token(&token) else {
                    return;
                };
                let t = &self.state.tokens[token];
                if t.status == TokenStatus::RetryWait && t.attempt == attempt {
                    self.node_started(token, attempt, String::new(), None);
                }
                Applied::Yes
            }
            Input::TaskResult {
                token,
                attempt,
                outcome,
            } => self.task_result(&token, attempt, outcome),
            Input::ChildStarted {
                token,
                attempt,
                child_run_id,
                workflow,
                version,
            } => self.child_started(&token, attempt, child_run_id, workflow, version),
            Input::ChildFinished {
                token,
                child_run_id,
                outcome,
            } => self.child_result(&token, child_run_id, outcome),
            Input::Cancel { reason } => {
                if self.state.status != Some(RunStatus::Running) {
                    return;
                }
                self.cancel_tokens(|_| true, &reason);
                self.emit(None, EventBody::WorkflowCancelled { reason });
                self.step.commands.push(Command::RunEnded);
                Applied::Yes
            }
            Input::Continue => {
                if self.state.status != Some(RunStatus::Running) {
                    return;
                }
                // Every token still pending was ready when the step stopped;
                // token order is creation order, the order they were queued.
                self.ready.extend(
                    (0..self.state.tokens.len())
                        .filter(|&token| self.state.tokens[token].status == TokenStatus::Pending),
                );
                self.run();
                Applied::Yes
            }
            Input::RunTimeout => {
                if self.state.status != Some(RunStatus::Running) {
                    return;
                }
                let ms = self.limits.timeout_ms.unwrap_or(0);
                self.fail_run(ErrorInfo::new(
                    ErrorCode::RunTimeout,
                    format!("the run exceeded its timeout of {ms} ms (limits.timeout_ms)"),
                ));
                Applied::Yes
            }
        };
        // An ignored input leaves the state as it was, sets still to be
        // checked for a join included.
        if applied == Applied::Yes {
            self.state.dirty.clear();
        }
    }

    fn start_run(&mut self, input: Value, limits: Limits, artifacts: Option<Value>) -> Applied {
        if self.state.status.is_some() {
            return Applied::Ignored;
        }
        self.limits = limits;
        let initial = self.graph.nodes[self.graph.initial].ref_.clone();
        self.emit_raw(
            Some(self.state.next_token_id(0)),
            Some(initial),
            EventBody::WorkflowStarted {
                input: input.clone(),
                artifacts,
            },
        );
        if let Some(schema) = &self.graph.input_schema
            && let Err(violations) = schema.validate(&input)
        {
            self.fail_run(ErrorInfo::new(
                ErrorCode::InputSchema,
                format!(
                    "the input does not match the workflow's input_schema: {}",
                    describe(&violations)
                ),
            ));
            return Applied::Ignored;
        }
        self.ready.push_back(0);
        self.run();
        Applied::Yes
    }

    /// A forked run: its copied history, then `workflow_forked`, then every
    /// pending token starts (those in flight at the fork point were made
    /// pending by `workflow_forked`) and the joins it may have settled fire.
    fn fork(
        &mut self,
        history: Vec<crate::event::Event>,
        from_run_id: String,
        from_seq: u64,
        version: i64,
    ) -> Applied {
        if self.state.status.is_some() || history.is_empty() {
            return Applied::Ignored;
        }
        for (i, e) in history.into_iter().enumerate() {
            debug_assert_eq!(e.seq, i as u64 + 1, "a renumbered history");
            self.state.apply_event(self.graph, &e);
            self.step.events.push(e);
        }
        self.state.dirty.clear();
        self.emit_raw(
            None,
            None,
            EventBody::WorkflowForked {
                from_run_id,
                from_seq,
                version,
            },
        );
        if self.state.status != Some(RunStatus::Running) {
            return Applied::Yes;
        }
        self.ready.extend(
            (0..self.state.tokens.len())
                .filter(|&token| self.state.tokens[token].status == TokenStatus::Pending),
        );
        self.run();
        Applied::Yes
    }

    fn task_result(&mut self, token_id: &str, attempt: u32, mut outcome: Outcome) -> Applied {
        let Some(token) = self.live_token(token_id) else {
            return Applied::Ignored;
        };
        let t = &self.state.tokens[token];
        if !matches!(
            t.status,
            TokenStatus::Running | TokenStatus::RetryWait | TokenStatus::WaitingChild
        ) || t.attempt != attempt
        {
            return Applied::Ignored; // duplicate or stale delivery: exactly-once state
        }
        let llm = match &mut outcome {
            Outcome::Success { llm, .. } | Outcome::Failure { llm, .. } => llm.take(),
        };
        self.pending_llm = llm.map(|mut exchange| {
            exchange.attempt = attempt;
            (token, exchange)
        });
        match outcome {
            Outcome::Success {
                result,
                usage,
                duration_ms,
                ..
            } => self.succeed(token, attempt, result, usage, duration_ms),
            Outcome::Failure {
                error,
                retry_after_ms,
                usage,
                ..
            } => {
                // A child run that outlived its node's timeout is cancelled.
                if let Some(child) = self.state.tokens[token].child.clone() {
                    self.emit(
                        Some(token),
                        EventBody::SubworkflowFailed {
                            child_run_id: child.clone(),
                            error: error.clone(),
                        },
                    );
                    self.step.commands.push(Command::CancelRuns(vec![child]));
                }
                self.attempt_failed(token, attempt, error, retry_after_ms, usage)
            }
        }
        self.pending_llm = None;
        self.run();
        Applied::Yes
    }

    fn child_started(
        &mut self,
        token_id: &str,
        attempt: u32,
        child_run_id: String,
        workflow: String,
        version: i64,
    ) -> Applied {
        let live = self.live_token(token_id).filter(|&token| {
            let t = &self.state.tokens[token];
            t.attempt == attempt
                && t.child.is_none()
                && matches!(t.status, TokenStatus::Running | TokenStatus::RetryWait)
        });
        let Some(token) = live else {
            // Nobody waits for this child (cancelled meanwhile, or a
            // duplicate start): stop it unless it is the current one.
            let current = crate::state::token_index(token_id)
                .and_then(|token| self.state.tokens.get(token))
                .and_then(|t| t.child.as_deref())
                == Some(child_run_id.as_str());
            if !current {
                self.step
                    .commands
                    .push(Command::CancelRuns(vec![child_run_id]));
            }
            return Applied::Ignored;
        };
        let t = &self.state.tokens[token];
        match t.status {
            TokenStatus::RetryWait => self.node_started(token, attempt, String::new(), None),
            TokenStatus::Running => {}
            _ => return Applied::Ignored,
        }
        self.emit(
            Some(token),
            EventBody::SubworkflowStarted {
                child_run_id,
                workflow,
                version,
                attempt,
            },
        );
        Applied::Yes
    }

    fn child_result(
        &mut self,
        token_id: &str,
        child_run_id: String,
        outcome: ChildOutcome,
    ) -> Applied {
        let Some(token) = self.live_token(token_id) else {
            return Applied::Ignored;
        };
        let t = &self.state.tokens[token];
        if t.status != TokenStatus::WaitingChild
            || t.child.as_deref() != Some(child_run_id.as_str())
        {
            return Applied::Ignored; // not the child this attempt waits for: a duplicate or a stale child
        }
        self.child_finished(token, child_run_id, outcome);
        self.run();
        Applied::Yes
    }

    /// The index of the live token `id` names, while the run is running.
    fn live_token(&self, id: &str) -> Option<usize> {
        if self.state.status != Some(RunStatus::Running) {
            return None;
        }
        let token = crate::state::token_index(id)?;
        (token < self.state.tokens.len()).then_some(token)
    }
}
