//! The validator every compilation phase reports to: it collects
//! [`DefinitionError`]s (so that a bundle's problems are all reported at
//! once) and compiles the expressions, schemas and target paths the phases
//! meet, recording a problem instead of failing.

use super::{CONTEXT_NAMES, DefinitionError};
use braid_expr::{Expr, Schema, TargetPath};
use serde_json::Value;
use std::collections::BTreeSet;

/// The problems found so far, and the names an expression may use.
pub(super) struct Validator {
    /// Every problem, in the order it was found.
    pub(super) errors: Vec<DefinitionError>,
    /// Context names every expression sees.
    names: Vec<&'static str>,
    /// `foreach.item_var` names declared anywhere in the bundle.
    pub(super) item_vars: Vec<String>,
}

impl Validator {
    pub(super) fn new() -> Self {
        Validator {
            errors: Vec::new(),
            names: CONTEXT_NAMES.to_vec(),
            item_vars: Vec::new(),
        }
    }

    /// Records one problem.
    pub(super) fn err(&mut self, kind: &str, ref_: &str, field: &str, message: impl Into<String>) {
        self.errors.push(DefinitionError {
            kind: kind.into(),
            ref_: ref_.into(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn names(&self, extra: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = self.names.iter().map(|s| s.to_string()).collect();
        names.extend(self.item_vars.iter().cloned());
        names.extend(extra.iter().map(|s| s.to_string()));
        names
    }

    /// Compiles a CEL expression that may use the context names, the item
    /// variables and `extra`.
    pub(super) fn expr(
        &mut self,
        kind: &str,
        ref_: &str,
        field: &str,
        src: &str,
        extra: &[&str],
    ) -> Option<Expr> {
        let names = self.names(extra);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match Expr::compile(src, &names) {
            Ok(e) => Some(e),
            Err(e) => {
                self.err(kind, ref_, field, e.message);
                None
            }
        }
    }

    pub(super) fn schema(
        &mut self,
        kind: &str,
        ref_: &str,
        field: &str,
        schema: &Value,
    ) -> Option<Schema> {
        match Schema::compile(schema) {
            Ok(s) => Some(s),
            Err(e) => {
                self.err(kind, ref_, field, format!("not a valid JSON Schema: {e}"));
                None
            }
        }
    }

    /// Parses a path an action writes; `artifacts.*` is not writable.
    pub(super) fn target(
        &mut self,
        kind: &str,
        ref_: &str,
        field: &str,
        path: &str,
    ) -> Option<TargetPath> {
        match TargetPath::parse(path) {
            Ok(p) if p.root == braid_expr::PathRoot::Artifacts => {
                self.err(kind, ref_, field, format!("`{path}`: artifacts.* is written by write_artifact only; write state.*, output.* or _branch.output.*"));
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                self.err(kind, ref_, field, e);
                None
            }
        }
    }

    /// Refs of one kind must be snake_case and unique.
    pub(super) fn unique_refs<'a>(&mut self, kind: &str, refs: impl Iterator<Item = &'a str>) {
        let mut seen = BTreeSet::new();
        for r in refs {
            if !is_snake(r) {
                self.err(
                    kind,
                    r,
                    "ref",
                    format!("ref `{r}` must be snake_case (a-z, 0-9, _; starting with a letter)"),
                );
            }
            if !seen.insert(r) {
                self.err(
                    kind,
                    r,
                    "ref",
                    format!("duplicate {kind} ref `{r}`: refs must be unique within their kind"),
                );
            }
        }
    }
}

fn is_snake(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
