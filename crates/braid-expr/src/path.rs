//! Context paths: where a mapping or an `update_context` writes, and what a
//! merge reads.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::structured::is_identifier;

/// The part of the context a [`TargetPath`] writes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathRoot {
    /// `state.…`
    State,
    /// `output.…`
    Output,
    /// `_branch.output.…` (inside a branch)
    BranchOutput,
    /// `artifacts.…`
    Artifacts,
}

impl PathRoot {
    /// The root as written in a path: `state`, `output`, `_branch.output`,
    /// `artifacts`.
    pub fn as_str(self) -> &'static str {
        match self {
            PathRoot::State => "state",
            PathRoot::Output => "output",
            PathRoot::BranchOutput => "_branch.output",
            PathRoot::Artifacts => "artifacts",
        }
    }
}

impl fmt::Display for PathRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A target path such as `state.a.b`, `output.x`, `_branch.output.x` or
/// `artifacts.report`: a root and at least one segment. Segments are
/// identifiers (`[A-Za-z_][A-Za-z0-9_]*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetPath {
    pub root: PathRoot,
    pub segments: Vec<String>,
}

const ALLOWED_ROOTS: &str = "`state.…`, `output.…`, `_branch.output.…` or `artifacts.…`";

impl TargetPath {
    /// Parses a target path. Rejects `input.…` (the input is immutable),
    /// unknown roots, a root without a segment, and empty or non-identifier
    /// segments.
    pub fn parse(path: &str) -> Result<TargetPath, String> {
        let mut parts = path.split('.');
        let first = parts.next().unwrap_or_default();
        let root = match first {
            "state" => PathRoot::State,
            "output" => PathRoot::Output,
            "artifacts" => PathRoot::Artifacts,
            "_branch" => match parts.next() {
                Some("output") => PathRoot::BranchOutput,
                _ => {
                    return Err(format!(
                        "cannot write `{path}`: inside `_branch` only `_branch.output.…` is writable"
                    ));
                }
            },
            "input" => {
                return Err(format!(
                    "cannot write `{path}`: the run input is read-only; write {ALLOWED_ROOTS}"
                ));
            }
            "" => return Err(format!("path `{path}` is empty or starts with a dot")),
            other => {
                return Err(format!(
                    "cannot write `{path}`: unknown root `{other}`; a path is {ALLOWED_ROOTS}"
                ));
            }
        };
        let segments: Vec<String> = parts.map(str::to_owned).collect();
        if segments.is_empty() {
            return Err(format!(
                "path `{path}` names no field: write e.g. `{root}.x`, not `{root}` itself"
            ));
        }
        for segment in &segments {
            if segment.is_empty() {
                return Err(format!("path `{path}` has an empty segment"));
            }
            if !is_identifier(segment) {
                return Err(format!(
                    "path `{path}`: segment `{segment}` is not an identifier \
                     (letters, digits and `_`, not starting with a digit)"
                ));
            }
        }
        Ok(TargetPath { root, segments })
    }
}

impl FromStr for TargetPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetPath::parse(s)
    }
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_str())?;
        for segment in &self.segments {
            write!(f, ".{segment}")?;
        }
        Ok(())
    }
}

/// Sets `value` at `segments` inside `target`, creating the missing
/// intermediate objects (a `null` counts as missing). An intermediate that
/// exists but is not an object (a list, a string, …) is an error naming the
/// path: it is never overwritten. Empty `segments` replace `target` itself.
pub fn set_path(target: &mut Value, segments: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = segments.split_last() else {
        *target = value;
        return Ok(());
    };
    let mut current = target;
    for (i, segment) in parents.iter().enumerate() {
        let map = as_object(current, &segments[..i])?;
        current = map
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    as_object(current, parents)?.insert(last.clone(), value);
    Ok(())
}

/// `v` as an object to write into: `null` becomes `{}`; anything else that is
/// not an object is an error naming `at`.
fn as_object<'v>(v: &'v mut Value, at: &[String]) -> Result<&'v mut Map<String, Value>, String> {
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    let kind = kind_of(v);
    v.as_object_mut().ok_or_else(|| {
        let at = if at.is_empty() {
            "the root".to_owned()
        } else {
            format!("`{}`", at.join("."))
        };
        format!("cannot set a field inside {at}: it is {kind}, not an object")
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads the dotted path `path` (`a.b.c`) inside `v`; `*` is `v` itself. A
/// segment indexes an object by key, or a list by position (`items.0`).
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path == "*" {
        return Some(v);
    }
    if path.is_empty() {
        return None;
    }
    path.split('.')
        .try_fold(v, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_target_paths_and_rejects_the_rest() {
        let p = TargetPath::parse("state.a.b").unwrap();
        assert_eq!(p.root, PathRoot::State);
        assert_eq!(p.segments, vec!["a", "b"]);
        assert_eq!(p.to_string(), "state.a.b");
        for (path, root, segments) in [
            ("output.x", PathRoot::Output, vec!["x"]),
            ("_branch.output.x.y", PathRoot::BranchOutput, vec!["x", "y"]),
            ("artifacts.report", PathRoot::Artifacts, vec!["report"]),
            ("state._private9", PathRoot::State, vec!["_private9"]),
        ] {
            let parsed: TargetPath = path.parse().unwrap();
            assert_eq!(parsed.root, root);
            assert_eq!(parsed.segments, segments);
            assert_eq!(parsed.to_string(), path);
        }

        let err = |path: &str| TargetPath::parse(path).unwrap_err();
        assert!(err("input.question").contains("read-only"));
        assert!(err("input").contains("read-only"));
        assert!(err("foo.bar").contains("unknown root `foo`"));
        assert!(err("foo.bar").contains("`_branch.output.…`"));
        assert!(err("state").contains("names no field"));
        assert!(err("_branch.output").contains("names no field"));
        assert!(err("_branch.index").contains("_branch.output"));
        assert!(err("_branch").contains("_branch.output"));
        assert!(err("state..a").contains("empty segment"));
        assert!(err("state.a.").contains("empty segment"));
        assert!(err("").contains("empty"));
        assert!(err(".state").contains("empty"));
        assert!(err("state.a b").contains("not an identifier"));
        assert!(err("state.0").contains("not an identifier"));
        assert!(err("State.a").contains("unknown root"));
    }

    #[test]
    fn set_path_creates_intermediates_and_refuses_to_clobber() {
        let mut v = json!({});
        let seg = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        set_path(&mut v, &seg("a.b.c"), json!(1)).unwrap();
        set_path(&mut v, &seg("a.b.d"), json!([2])).unwrap();
        set_path(&mut v, &seg("x"), json!("y")).unwrap();
        assert_eq!(v, json!({"a": {"b": {"c": 1, "d": [2]}}, "x": "y"}));
        // replacing a leaf of any kind is fine
        set_path(&mut v, &seg("a.b.d"), json!({"e": null})).unwrap();
        set_path(&mut v, &seg("x"), json!(3)).unwrap();
        assert_eq!(v, json!({"a": {"b": {"c": 1, "d": {"e": null}}}, "x": 3}));
        // null intermediates and a null root count as missing
        set_path(&mut v, &seg("a.b.d.e.f"), json!(true)).unwrap();
        assert_eq!(v["a"]["b"]["d"], json!({"e": {"f": true}}));
        let mut null = Value::Null;
        set_path(&mut null, &seg("k"), json!(1)).unwrap();
        assert_eq!(null, json!({"k": 1}));

        // never write through a non-object
        let before = json!({"list": [1, 2], "s": "text", "n": {"m": 5}});
        let mut v = before.clone();
        let e = set_path(&mut v, &seg("list.x"), json!(1)).unwrap_err();
        assert!(e.contains("`list`") && e.contains("a list"), "{e}");
        let e = set_path(&mut v, &seg("s.x.y"), json!(1)).unwrap_err();
        assert!(e.contains("`s`") && e.contains("a string"), "{e}");
        let e = set_path(&mut v, &seg("n.m.z"), json!(1)).unwrap_err();
        assert!(e.contains("`n.m`") && e.contains("a number"), "{e}");
        let mut scalar = json!(7);
        assert!(
            set_path(&mut scalar, &seg("a"), json!(1))
                .unwrap_err()
                .contains("the root")
        );
        assert_eq!(v, before, "a failed write changes nothing");

        // no segments: the whole value
        let mut whole = json!({"old": 1});
        set_path(&mut whole, &[], json!([1])).unwrap();
        assert_eq!(whole, json!([1]));
    }

    #[test]
    fn get_path_reads_dotted_paths() {
        let v = json!({"a": {"b": {"c": 1}}, "list": [{"x": "first"}, 2], "n": null});
        assert_eq!(get_path(&v, "*"), Some(&v));
        assert_eq!(get_path(&v, "a.b.c"), Some(&json!(1)));
        assert_eq!(get_path(&v, "a.b"), Some(&json!({"c": 1})));
        assert_eq!(get_path(&v, "list.0.x"), Some(&json!("first")));
        assert_eq!(get_path(&v, "list.1"), Some(&json!(2)));
        assert_eq!(get_path(&v, "n"), Some(&Value::Null));
        for missing in ["", "z", "a.z", "a.b.c.d", "list.2", "list.x", "n.x", "a..b"] {
            assert_eq!(get_path(&v, missing), None, "{missing}");
        }
    }
}
