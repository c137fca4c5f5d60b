//! Cancelling tokens (and their tasks and child runs), failing the run, and
//! completing it with its final output.

use super::{Machine, describe};
use crate::event::{ErrorInfo, EventBody};
use crate::protocol::Command;
use crate::state::{RunState, RunStatus, TokenStatus};
use braid_expr::Vars;
use braid_types::ErrorCode;

/// A token seen by a cancellation filter.
pub(super) struct TokenView<'s> {
    state: &'s RunState,
    token: usize,
}

impl TokenView<'_> {
    /// True when the token is in scope `s` or a scope nested in it.
    pub(super) fn in_scope(&self, s: usize) -> bool {
        let mut cur = self.state.tokens[self.token].scope;
        while let Some(c) = cur {
            if c == s {
                return true;
            }
            cur = self.state.scopes[c].parent;
        }
        false
    }
}

impl Machine<'_> {
    /// Cancels the live tokens `pick` selects and aborts their in-flight attempts.
    pub(super) fn cancel_tokens(&mut self, pick: impl Fn(&TokenView) -> bool, reason: &str) {
        let picked: Vec<usize> = (0..self.state.tokens.len())
            .filter(|&token| {
                self.state.tokens[token].status.is_live()
                    && pick(&TokenView {
                        state: self.state,
                        token,
                    })
            })
            .collect();
        let mut aborted = Vec::new();
        let mut children = Vec::new();
        for token in picked {
            if matches!(
                self.state.tokens[token].status,
                TokenStatus::Running | TokenStatus::RetryWait
            ) {
                aborted.push(self.state.tokens[token].id.clone());
            }
            if let Some(child) = &self.state.tokens[token].child {
                children.push(child.clone());
            }
            let set = self.state.tokens[token]
                .scope
                .map(|s| self.state.sets[self.state.scopes[s].set].id.clone());
            self.emit(
                Some(token),
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

    pub(super) fn fail_run(&mut self, error: ErrorInfo) {
        if self.state.status != Some(RunStatus::Running) {
            return;
        }
        let reason = format!("the run failed: {}", error.code);
        self.cancel_tokens(|_| true, &reason);
        self.emit(None, EventBody::WorkflowFailed { error });
        self.step.commands.push(Command::RunEnded);
        self.ready.clear();
    }

    pub(super) fn complete(&mut self) {
        let mut output = self.state.context.output.clone();
        {
            let c = &self.state.context;
            let vars = Vars::new()
                .with("input", &c.input)
                .with("state", &c.state)
                .with("output", &c.output)
                .with("artifacts", &c.artifacts);
            for (path, e) in &self.graph.output_mapping {
                let r = e
                    .eval(&vars)
                    .map_err(|err| err.to_string())
                    .and_then(|v| braid_expr::set_path(&mut output, path, v));
                if let Err(msg) = r {
                    drop(vars);
                    return self.fail_run(ErrorInfo::new(
                        ErrorCode::Expression,
                        format!("workflow output_mapping `{}`: {msg}", path.join(".")),
                    ));
                }
            }
        }
        if let Some(schema) = &self.graph.output_schema
            && let Err(violations) = schema.validate(&output)
        {
            return self.fail_run(ErrorInfo::new(
                ErrorCode::OutputSchema,
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
