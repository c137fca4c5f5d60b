//! What an expression sees from one token ([`TokenContext`]), where a token may
//! write, and the inline `update_context` action.

use super::Machine;
use crate::event::{ErrorInfo, EventBody, Write};
use crate::graph::CompiledAction;
use braid_expr::{PathRoot, TargetPath, Vars};
use braid_types::ErrorCode;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// The data an expression sees from one token: its scope's view of the
/// context. Borrowed from the state; copied only when writes must be seen
/// by later expressions of the same action.
pub(super) struct TokenContext<'s> {
    input: &'s Value,
    state: Cow<'s, Value>,
    output: Cow<'s, Value>,
    pub(super) artifacts: Cow<'s, Value>,
    loops: Value,
    branch: Option<Value>,
    item: Option<(&'s str, &'s Value)>,
}

impl<'s> TokenContext<'s> {
    pub(super) fn vars<'v>(&'v self, result: Option<&'v Value>) -> Vars<'v> {
        let mut v = Vars::new()
            .with("input", self.input)
            .with("state", &self.state)
            .with("output", &self.output)
            .with("artifacts", &self.artifacts)
            .with("_loop", &self.loops);
        if let Some(b) = &self.branch {
            v = v.with("_branch", b);
        }
        if let Some((name, item)) = self.item {
            v = v.with(name, item);
        }
        if let Some(r) = result {
            v = v.with("result", r);
        }
        v
    }

    /// Makes a write visible to the following expressions.
    fn apply(&mut self, path: &TargetPath, value: &Value) {
        let _ = match path.root {
            PathRoot::State | PathRoot::BranchOutput => {
                if let Some(Value::Object(b)) = &mut self.branch
                    && let Some(out) = b.get_mut("output")
                {
                    let _ = braid_expr::set_path(out, &path.segments, value.clone());
                }
                braid_expr::set_path(self.state.to_mut(), &path.segments, value.clone())
            }
            PathRoot::Output => {
                braid_expr::set_path(self.output.to_mut(), &path.segments, value.clone())
            }
            PathRoot::Artifacts => {
                braid_expr::set_path(self.artifacts.to_mut(), &path.segments, value.clone())
            }
        };
    }

    /// The template data of a prompt: the context plus the node's input mapping.
    pub(super) fn template_data(&self, args: Map<String, Value>) -> Value {
        let mut m = Map::new();
        m.insert("input".into(), self.input.clone());
        m.insert("state".into(), self.state.as_ref().clone());
        m.insert("output".into(), self.output.as_ref().clone());
        m.insert("artifacts".into(), self.artifacts.as_ref().clone());
        m.insert("_loop".into(), self.loops.clone());
        if let Some(b) = &self.branch {
            m.insert("_branch".into(), b.clone());
        }
        if let Some((name, item)) = self.item {
            m.insert(name.into(), item.clone());
        }
        m.extend(args);
        Value::Object(m)
    }
}

impl Machine<'_> {
    pub(super) fn context(&self, token: usize) -> TokenContext<'_> {
        let scope = self.state.tokens[token].scope;
        TokenContext {
            input: &self.state.context.input,
            state: Cow::Borrowed(self.state.state_in(scope)),
            output: Cow::Borrowed(&self.state.context.output),
            artifacts: Cow::Borrowed(self.state.artifacts_in(scope)),
            loops: Value::Object(
                self.state.tokens[token]
                    .loops
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
            branch: self.state.branch_value(self.graph, scope),
            item: self.state.item_var_in(scope),
        }
    }

    /// Checks that `token` may write at `path`.
    pub(super) fn check_write(&self, token: usize, path: &TargetPath) -> Result<(), ErrorInfo> {
        let in_branch = self.state.tokens[token].scope.is_some();
        match path.root {
            PathRoot::Output if in_branch => Err(self.node_error(token, ErrorCode::BranchOutputWrite, format!("node `{}` writes `{path}` inside a branch: branches write their own output (`state.*` or `_branch.output.*`), merged by a join; write `output.*` after the join", self.node(token).ref_))),
            PathRoot::BranchOutput if !in_branch => Err(self.node_error(token, ErrorCode::BranchOutputWrite, format!("node `{}` writes `{path}` outside any branch", self.node(token).ref_))),
            _ => Ok(()),
        }
    }

    /// Runs an `update_context` action: each update sees the previous ones.
    pub(super) fn update_context(&mut self, token: usize) -> Result<Value, ErrorInfo> {
        let CompiledAction::UpdateContext(updates) = &self.node(token).action else {
            unreachable!()
        };
        let mut result = Map::new();
        let mut writes = Vec::with_capacity(updates.len());
        {
            let mut ctx = self.context(token);
            for (n, (path, e)) in updates.iter().enumerate() {
                let v = e.eval(&ctx.vars(None)).map_err(|err| {
                    self.expr_error(
                        token,
                        &format!("update `{path}` = `{}`", e.source()),
                        &err.to_string(),
                    )
                })?;
                self.check_write(token, path)?;
                if n + 1 < updates.len() {
                    ctx.apply(path, &v);
                }
                result.insert(path.to_string(), v.clone());
                writes.push(Write {
                    path: path.to_string(),
                    value: Some(v),
                });
            }
        }
        if !writes.is_empty() {
            self.emit(Some(token), EventBody::ContextUpdated { writes });
        }
        Ok(Value::Object(result))
    }
}
