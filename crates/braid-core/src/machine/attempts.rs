//! A token's visit of a node: starting it (inline for pure actions,
//! dispatched otherwise), resolving the task payload from the context,
//! succeeding (output mappings), failing attempts, retries with their
//! deterministic jitter, and a node's final failure.

use super::children::child_run_id;
use super::{Failure, Machine, describe, digest};
use crate::definition::{FromContextOr, On};
use crate::event::{ErrorInfo, EventBody, Millis, Usage, Write};
use crate::graph::CompiledAction;
use crate::merge::type_name;
use crate::protocol::{ChildCall, Command, Dispatch, TaskPayload};
use crate::state::TokenStatus;
use braid_expr::Expr;
use braid_types::ErrorCode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What starting a non-pure node means.
pub(super) enum Work {
    /// A task for the executor pool, and the action's input for `node_started`.
    Task(TaskPayload, Option<Value>),
    /// A child run.
    Child {
        workflow: String,
        version: Option<i64>,
        input: Value,
        artifacts: Option<Value>,
    },
}

impl Machine<'_> {
    pub(super) fn start(&mut self, token: usize) {
        if self.state.tokens[token].status != TokenStatus::Pending {
            return;
        }
        let node = self.node(token);
        if let Some(join) = &node.join
            && !self.is_continuation(token)
        {
            return self.arrive(token, join.joins);
        }
        if node.action.is_pure() {
            // The mapped input is shown only: `update_context` reads the context itself.
            let input = match self.mapped_input(token) {
                Ok(input) => input,
                Err(error) => {
                    self.node_started(token, 1, String::new(), None);
                    return self.fail_node(token, Failure::unpaid(error, 1));
                }
            };
            self.node_started(token, 1, String::new(), input);
            match self.update_context(token) {
                Ok(result) => self.succeed(token, 1, result, None, 0),
                Err(error) => self.fail_node(token, Failure::unpaid(error, 1)),
            }
        } else {
            self.dispatch(token, 1, self.now);
        }
    }

    /// `node_started` for attempt `attempt` of the token's node.
    pub(super) fn node_started(
        &mut self,
        token: usize,
        attempt: u32,
        input_digest: String,
        input: Option<Value>,
    ) {
        let action = self.node(token).action_ref.clone();
        self.emit(
            Some(token),
            EventBody::NodeStarted {
                attempt,
                action,
                input_digest,
                input,
            },
        );
    }

    /// The node's `input_mapping` evaluated in the token's context (`None`
    /// for a node without one).
    fn mapped_input(&self, token: usize) -> Result<Option<Value>, ErrorInfo> {
        let node = self.node(token);
        if node.input_mapping.is_empty() {
            return Ok(None);
        }
        let ctx = self.context(token);
        let vars = ctx.vars(None);
        let mut args = Map::new();
        for (field, e) in &node.input_mapping {
            let v = e.eval(&vars).map_err(|err| {
                let what = format!("input_mapping.{field} `{}`", e.source());
                self.expr_error(token, &what, &err.to_string())
            })?;
            args.insert(field.clone(), v);
        }
        Ok(Some(Value::Object(args)))
    }

    /// Resolves the invocation of a non-pure action and queues it.
    fn dispatch(&mut self, token: usize, attempt: u32, not_before: Millis) {
        let work = match self.resolve_payload(token) {
            Ok(w) => w,
            Err(error) => {
                if attempt == 1 {
                    self.node_started(token, attempt, String::new(), None);
                }
                return self.fail_node(token, Failure::unpaid(error, attempt));
            }
        };
        let node = self.node(token);
        if attempt == 1 {
            let (input_digest, input) = match &work {
                Work::Task(p, input) => (digest(p), input.clone()),
                Work::Child { input, .. } => (digest(input), Some(input.clone())),
            };
            self.node_started(token, attempt, input_digest, input);
        }
        let token_id = self.state.tokens[token].id.clone();
        match work {
            Work::Task(payload, _) => self.step.commands.push(Command::Dispatch(Dispatch {
                token: token_id,
                node: node.ref_.clone(),
                attempt,
                not_before,
                timeout_ms: node.timeout_ms,
                max_cost_usd: node.max_cost_usd,
                payload,
            })),
            Work::Child {
                workflow,
                version,
                input,
                artifacts,
            } => {
                let child_run_id = child_run_id(&self.state.run_id, &token_id, attempt);
                self.step.commands.push(Command::StartChild(ChildCall {
                    token: token_id,
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

    pub(super) fn resolve_payload(&self, token: usize) -> Result<Work, ErrorInfo> {
        let node = self.node(token);
        let ctx = self.context(token);
        let vars = ctx.vars(None);
        let eval = |e: &Expr, what: &str| {
            e.eval(&vars).map_err(|err| {
                self.expr_error(token, &format!("{what} `{}`", e.source()), &err.to_string())
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
                let input = (!args.is_empty()).then(|| Value::Object(args.clone()));
                let data = ctx.template_data(args);
                let render = |t: &braid_expr::Template, what: &str| {
                    t.render(&data).map_err(|e| {
                        self.node_error(
                            token,
                            ErrorCode::Template,
                            format!("node `{}`, {what}: {}", node.ref_, e.message),
                        )
                    })
                };
                let system = system
                    .as_ref()
                    .map(|s| render(s, "system prompt"))
                    .transpose()?;
                let prompt = render(template, "prompt template")?;
                let branch_index = self.state.tokens[token]
                    .scope
                    .map(|s| self.state.scopes[s].index);
                Ok(Work::Task(
                    TaskPayload::LlmCall {
                        model: model.clone(),
                        system,
                        prompt,
                        produces: produces.clone(),
                        branch_index,
                    },
                    input,
                ))
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
                    return Err(self.node_error(token, ErrorCode::SchemaMismatch, format!("node `{}`: artifact content does not match artifact type `{type_name}` v{type_version}: {}", node.ref_, describe(&violations))));
                }
                Ok(Work::Task(
                    TaskPayload::WriteArtifact {
                        type_name: type_name.clone(),
                        type_version: *type_version,
                        name: name.clone(),
                        content: content.clone(),
                    },
                    Some(content),
                ))
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
                                token,
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
                                token,
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

    pub(super) fn succeed(
        &mut self,
        token: usize,
        attempt: u32,
        result: Value,
        usage: Option<Usage>,
        duration_ms: u64,
    ) {
        // Output mappings are decided before anything is emitted, so a
        // failing mapping fails the node without half its writes.
        let mut writes = Vec::new();
        if !self.node(token).output_mapping.is_empty() {
            let ctx = self.context(token);
            let vars = ctx.vars(Some(&result));
            for (path, e) in &self.node(token).output_mapping {
                let r = e
                    .eval(&vars)
                    .map_err(|err| {
                        self.expr_error(
                            token,
                            &format!("output_mapping.{path} `{}`", e.source()),
                            &err.to_string(),
                        )
                    })
                    .and_then(|v| self.check_write(token, path).map(|_| v));
                match r {
                    Ok(v) => writes.push(Write {
                        path: path.to_string(),
                        value: Some(v),
                    }),
                    Err(error) => {
                        drop(vars);
                        drop(ctx);
                        // The answer arrived and was paid for, even if it
                        // cannot be mapped.
                        return self.fail_node(
                            token,
                            Failure {
                                error,
                                attempt,
                                usage,
                            },
                        );
                    }
                }
            }
        }
        {
            let scope = self.state.tokens[token].scope;
            if self.state.state_in(scope).get("_last_error").is_some() {
                writes.push(Write {
                    path: "state._last_error".into(),
                    value: None,
                });
            }
        }
        let artifact = match &self.node(token).action {
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
            Some(token),
            EventBody::NodeCompleted {
                attempt,
                duration_ms,
                result,
                usage,
            },
        );
        if let Some(a) = artifact {
            self.emit(Some(token), a);
        }
        if !writes.is_empty() {
            self.emit(Some(token), EventBody::ContextUpdated { writes });
        }
        self.route(token, On::Success, attempt);
    }

    pub(super) fn attempt_failed(
        &mut self,
        token: usize,
        attempt: u32,
        mut error: ErrorInfo,
        retry_after_ms: Option<u64>,
        usage: Option<Usage>,
    ) {
        let node = self.node(token);
        error.node = Some(node.ref_.clone());
        error.action = Some(node.action_ref.clone());
        error.attempt = Some(attempt);
        let policy = &node.retry;
        error.retryable = policy.retries(error.code);
        if error.retryable && attempt < policy.max_attempts {
            let delay_ms = policy.delay_ms(attempt, self.jitter(token, attempt), retry_after_ms);
            let not_before = self
                .now
                .saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX));
            self.emit(
                Some(token),
                EventBody::NodeRetrying {
                    attempt,
                    error,
                    usage,
                    delay_ms,
                    not_before,
                },
            );
            self.dispatch(token, attempt + 1, not_before);
        } else {
            self.fail_node(
                token,
                Failure {
                    error,
                    attempt,
                    usage,
                },
            );
        }
    }

    /// A deterministic sample in [-1, 1] from run, token and attempt.
    fn jitter(&self, token: usize, attempt: u32) -> f64 {
        let mut h = Sha256::new();
        h.update(self.state.run_id.as_bytes());
        h.update(self.state.tokens[token].id.as_bytes());
        h.update(attempt.to_le_bytes());
        let b = h.finalize();
        let x = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        (x as f64 / u64::MAX as f64) * 2.0 - 1.0
    }

    /// The node failed for good: record `_last_error` in the token's scope, then route the failure.
    pub(super) fn fail_node(&mut self, token: usize, f: Failure) {
        let mut error = f.error;
        let node = self.node(token);
        error.node.get_or_insert_with(|| node.ref_.clone());
        error.action.get_or_insert_with(|| node.action_ref.clone());
        error.attempt.get_or_insert(f.attempt);
        let last = serde_json::to_value(&error).unwrap_or(Value::Null);
        self.emit(
            Some(token),
            EventBody::ContextUpdated {
                writes: vec![Write {
                    path: "state._last_error".into(),
                    value: Some(last),
                }],
            },
        );
        self.emit(
            Some(token),
            EventBody::NodeFailed {
                attempt: f.attempt,
                error,
                usage: f.usage,
            },
        );
        self.route(token, On::Failure, f.attempt);
    }
}
