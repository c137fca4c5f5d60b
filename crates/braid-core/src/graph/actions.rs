//! Compilation of actions — named ones and those written inline in a node —
//! against the catalog, and the checks of `execution` settings.

use super::catalog::Catalog;
use super::validator::{Validator, is_ident};
use super::{CompiledAction, Env};
use crate::definition::{ActionBody, ActionKind, Bundle, Execution, FromContextOr};
use braid_expr::Schema;
use std::collections::HashMap;

const KIND: &str = "action";

/// What an action may refer to: the bundle, the project and the catalog.
pub(super) struct ActionCompiler<'b> {
    pub(super) bundle: &'b Bundle,
    pub(super) env: &'b Env,
    pub(super) catalog: &'b Catalog<'b>,
}

impl ActionCompiler<'_> {
    /// Compiles every named action: ref → compiled action (`None` when it
    /// cannot be compiled; the problem is recorded).
    pub(super) fn compile_named(
        &self,
        v: &mut Validator,
    ) -> HashMap<String, Option<CompiledAction>> {
        let mut compiled = HashMap::new();
        for a in &self.bundle.actions {
            if let Some(e) = &a.body.execution {
                check_execution(v, "action", &a.ref_, e);
            }
            let action = self.compile(v, &a.ref_, &a.body);
            compiled.insert(a.ref_.clone(), action);
        }
        compiled
    }

    /// Compiles one action body; problems are reported under `action_ref`.
    pub(super) fn compile(
        &self,
        v: &mut Validator,
        action_ref: &str,
        body: &ActionBody,
    ) -> Option<CompiledAction> {
        match &body.kind {
            ActionKind::UpdateContext { updates } => {
                let mut out = Vec::new();
                for (i, u) in updates.iter().enumerate() {
                    let p = v.target(KIND, action_ref, &format!("updates[{i}].path"), &u.path);
                    let e = v.expr(
                        KIND,
                        action_ref,
                        &format!("updates[{i}].expr"),
                        &u.expr,
                        &[],
                    );
                    if let (Some(p), Some(e)) = (p, e) {
                        out.push((p, e));
                    }
                }
                Some(CompiledAction::UpdateContext(out))
            }
            ActionKind::LlmCall { prompt, model } => self.llm_call(v, action_ref, prompt, model),
            ActionKind::WriteArtifact {
                artifact_type,
                name,
                content_mapping,
            } => {
                if !is_ident(name) {
                    v.err(KIND, action_ref, "name", format!("artifact name `{name}` must be an identifier (it becomes artifacts.{name})"));
                }
                let mut content = Vec::new();
                for (field, src) in content_mapping {
                    if let Some(e) = v.expr(
                        KIND,
                        action_ref,
                        &format!("content_mapping.{field}"),
                        src,
                        &[],
                    ) {
                        content.push((field.clone(), e));
                    }
                }
                let Some((version, schema)) = self.catalog.artifact_types.get(artifact_type) else {
                    v.err(KIND, action_ref, "artifact_type", format!("artifact type `{artifact_type}` is neither defined in this bundle nor in the project"));
                    return None;
                };
                let schema = Schema::compile(schema).ok()?;
                Some(CompiledAction::WriteArtifact {
                    type_name: artifact_type.clone(),
                    type_version: *version,
                    schema,
                    name: name.clone(),
                    content,
                })
            }
            ActionKind::WorkflowCall {
                workflow,
                version,
                inherit_artifacts,
                on_failure,
            } => {
                let workflow_expr = self.called_workflow(v, action_ref, workflow);
                let version_expr = match version {
                    Some(FromContextOr::FromContext { from_context }) => {
                        v.expr(KIND, action_ref, "version.from_context", from_context, &[])
                    }
                    Some(FromContextOr::Value(0)) => {
                        v.err(KIND, action_ref, "version", "versions start at 1");
                        None
                    }
                    Some(FromContextOr::Value(n)) if i64::try_from(*n).is_err() => {
                        v.err(
                            KIND,
                            action_ref,
                            "version",
                            "no workflow has that many versions",
                        );
                        None
                    }
                    _ => None,
                };
                Some(CompiledAction::WorkflowCall {
                    workflow: workflow.clone(),
                    workflow_expr,
                    version: version.clone(),
                    version_expr,
                    inherit_artifacts: *inherit_artifacts,
                    on_failure: *on_failure,
                })
            }
        }
    }

    fn llm_call(
        &self,
        v: &mut Validator,
        action_ref: &str,
        prompt: &str,
        model: &str,
    ) -> Option<CompiledAction> {
        let compiled_prompt = self.catalog.prompts.get(prompt).cloned();
        if compiled_prompt.is_none() {
            v.err(
                KIND,
                action_ref,
                "prompt",
                format!("prompt spec `{prompt}` is not defined in this bundle"),
            );
        }
        if !self.bundle.model_profiles.iter().any(|m| m.ref_ == model) {
            v.err(
                KIND,
                action_ref,
                "model",
                format!("model profile `{model}` is not defined in this bundle"),
            );
        }
        let (system, template) = compiled_prompt?;
        let spec = self.bundle.prompt_specs.iter().find(|s| s.ref_ == prompt)?;
        Some(CompiledAction::LlmCall {
            system,
            template: template?,
            produces: spec.produces.clone(),
            model: model.to_string(),
        })
    }

    /// Checks a static workflow name; compiles a `from_context` one.
    fn called_workflow(
        &self,
        v: &mut Validator,
        action_ref: &str,
        workflow: &FromContextOr<String>,
    ) -> Option<braid_expr::Expr> {
        match workflow {
            FromContextOr::Value(name) => {
                if name != &self.bundle.name && !self.env.workflows.contains(name) {
                    v.err(
                        KIND,
                        action_ref,
                        "workflow",
                        format!("workflow `{name}` does not exist in this project: save it first"),
                    );
                }
                None
            }
            FromContextOr::FromContext { from_context } => {
                v.expr(KIND, action_ref, "workflow.from_context", from_context, &[])
            }
        }
    }
}

/// Checks an `execution` block of an action or a node.
pub(super) fn check_execution(v: &mut Validator, kind: &str, ref_: &str, execution: &Execution) {
    if let Some(p) = &execution.retry_policy
        && p.max_attempts == 0
    {
        v.err(
            kind,
            ref_,
            "execution.retry_policy.max_attempts",
            "max_attempts counts the first attempt: it must be at least 1",
        );
    }
    if execution.timeout_ms == Some(0) {
        v.err(
            kind,
            ref_,
            "execution.timeout_ms",
            "timeout_ms must be positive",
        );
    }
    if let Some(problem) =
        crate::definition::usd_problem("execution.max_cost_usd", execution.max_cost_usd)
    {
        v.err(kind, ref_, "execution.max_cost_usd", problem);
    }
}
