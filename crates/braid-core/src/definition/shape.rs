//! Shape problems of a bundle: every field that is missing, unknown, of the
//! wrong type or an unknown enum value, each named by its path
//! (`nodes[2].action.kind`) and the object it belongs to.
//!
//! serde stops at the first problem, so a whole-bundle deserialize cannot
//! list them all. This walks the generic value object by object and field by
//! field instead, deserializing each field on its own: one problem per field
//! at most, every field checked. It runs only after the whole-bundle
//! deserialize failed, so it decides nothing about what is accepted.

use super::{
    Condition, EarlyComplete, Execution, FanIn, FanOut, Foreach, FromContextOr, Limits, Loop,
    Merge, On, OnChildFailure, Position, RateLimit, SpawnCount, Update,
};
use crate::graph::DefinitionError;
use crate::merge::type_name;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How one field's value is checked.
enum Shape {
    /// Deserialized as one serde type: the first problem inside it is reported.
    Typed(fn(Value) -> Result<(), (String, String)>),
    /// A list of objects, each checked field by field.
    ListOf(&'static Object),
    /// A node's action: a ref (string) or an inline action.
    ActionRef,
}

/// One field of an object.
pub(super) struct Field {
    pub(super) name: &'static str,
    required: bool,
    shape: Shape,
}

/// An object kind (`node`, `transition`, …) and its fields.
struct Object {
    kind: &'static str,
    fields: &'static [Field],
}

/// Deserializes `value` as `T`; on failure the path inside `value` and the message.
fn typed<T: DeserializeOwned>(value: Value) -> Result<(), (String, String)> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map(drop)
        .map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            (path, e.inner().to_string())
        })
}

const fn req(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        required: true,
        shape,
    }
}

const fn opt(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        required: false,
        shape,
    }
}

const TEXT: Shape = Shape::Typed(typed::<String>);
const OPT_TEXT: Shape = Shape::Typed(typed::<Option<String>>);
const ANY: Shape = Shape::Typed(typed::<Option<Value>>);
const MAPPING: Shape = Shape::Typed(typed::<BTreeMap<String, String>>);
const EXECUTION: Shape = Shape::Typed(typed::<Option<Execution>>);

static WORKFLOW: Object = Object {
    kind: "workflow",
    fields: &[
        req("name", TEXT),
        opt("description", OPT_TEXT),
        opt("input_schema", ANY),
        opt("output_schema", ANY),
        req("initial_node", TEXT),
        req("nodes", Shape::ListOf(&NODE)),
        opt("transitions", Shape::ListOf(&TRANSITION)),
        opt("output_mapping", MAPPING),
        opt("limits", Shape::Typed(typed::<Option<Limits>>)),
        opt("actions", Shape::ListOf(&ACTION)),
        opt("prompt_specs", Shape::ListOf(&PROMPT_SPEC)),
        opt("model_profiles", Shape::ListOf(&MODEL_PROFILE)),
        opt("artifact_types", Shape::ListOf(&ARTIFACT_TYPE)),
        opt("layout", Shape::Typed(typed::<BTreeMap<String, Position>>)),
    ],
};

static NODE: Object = Object {
    kind: "node",
    fields: &[
        req("ref", TEXT),
        opt("name", OPT_TEXT),
        req("action", Shape::ActionRef),
        opt("input_mapping", MAPPING),
        opt("output_mapping", MAPPING),
        opt("fan_out", Shape::Typed(typed::<FanOut>)),
        opt("fan_in", Shape::Typed(typed::<Option<FanIn>>)),
        opt("joins", OPT_TEXT),
        opt("merge", Shape::Typed(typed::<Option<Merge>>)),
        opt(
            "on_early_complete",
            Shape::Typed(typed::<Option<EarlyComplete>>),
        ),
        opt("execution", EXECUTION),
    ],
};

static TRANSITION: Object = Object {
    kind: "transition",
    fields: &[
        opt("ref", OPT_TEXT),
        req("from", TEXT),
        req("to", TEXT),
        opt("priority", Shape::Typed(typed::<i64>)),
        opt("condition", Shape::Typed(typed::<Option<Condition>>)),
        opt("on", Shape::Typed(typed::<On>)),
        opt("spawn_count", Shape::Typed(typed::<Option<SpawnCount>>)),
        opt("foreach", Shape::Typed(typed::<Option<Foreach>>)),
        opt("loop", Shape::Typed(typed::<Option<Loop>>)),
    ],
};

/// A bundle-level action: `ref` besides the action's own fields.
static ACTION: Object = Object {
    kind: "action",
    fields: &[req("ref", TEXT)],
};

static PROMPT_SPEC: Object = Object {
    kind: "prompt_spec",
    fields: &[
        req("ref", TEXT),
        opt("system", OPT_TEXT),
        req("template", TEXT),
        opt("produces", ANY),
    ],
};

static MODEL_PROFILE: Object = Object {
    kind: "model_profile",
    fields: &[
        req("ref", TEXT),
        req("provider", TEXT),
        req("model", TEXT),
        opt("base_url", OPT_TEXT),
        opt("api_key_env", OPT_TEXT),
        opt("parameters", Shape::Typed(typed::<Map<String, Value>>)),
        opt("max_concurrency", Shape::Typed(typed::<Option<u32>>)),
        opt("rate_limit", Shape::Typed(typed::<Option<RateLimit>>)),
        opt(
            "cost_per_1k_input_tokens",
            Shape::Typed(typed::<Option<f64>>),
        ),
        opt(
            "cost_per_1k_output_tokens",
            Shape::Typed(typed::<Option<f64>>),
        ),
        opt("script", ANY),
    ],
};

static ARTIFACT_TYPE: Object = Object {
    kind: "artifact_type",
    fields: &[
        req("ref", TEXT),
        req("schema", Shape::Typed(typed::<Value>)),
    ],
};

/// Fields every action has, whatever its kind (`kind` is checked apart).
static ACTION_COMMON: [Field; 1] = [opt("execution", EXECUTION)];

/// The action kinds of docs/definitions.md and their own fields.
static ACTION_KINDS: [(&str, &[Field]); 4] = [
    (
        "update_context",
        &[opt("updates", Shape::Typed(typed::<Vec<Update>>))],
    ),
    ("llm_call", &[req("prompt", TEXT), req("model", TEXT)]),
    (
        "write_artifact",
        &[
            req("artifact_type", TEXT),
            req("name", TEXT),
            opt("content_mapping", MAPPING),
        ],
    ),
    (
        "workflow_call",
        &[
            req("workflow", Shape::Typed(typed::<FromContextOr<String>>)),
            opt("version", Shape::Typed(typed::<Option<FromContextOr<u64>>>)),
            opt("inherit_artifacts", Shape::Typed(typed::<bool>)),
            opt("on_failure", Shape::Typed(typed::<OnChildFailure>)),
        ],
    ),
];

/// The own fields of an action kind, `None` for an unknown kind.
pub(super) fn kind_fields(kind: &str) -> Option<&'static [Field]> {
    ACTION_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, fields)| *fields)
}

/// Every shape problem of a bundle document (empty when the walk finds none).
pub(super) fn problems(bundle: &Value) -> Vec<DefinitionError> {
    let mut out = Problems::default();
    let Value::Object(map) = bundle else {
        out.push(
            "workflow",
            String::new(),
            "",
            format!(
                "a workflow bundle must be an object (a JSON object or YAML mapping), got {}",
                type_name(bundle)
            ),
        );
        return out.0;
    };
    let name = map.get("name").and_then(Value::as_str).unwrap_or_default();
    out.object(map, &WORKFLOW, name, "");
    out.0
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<DefinitionError>);

impl Problems {
    fn push(&mut self, kind: &str, ref_: String, path: &str, message: String) {
        self.0.push(DefinitionError {
            kind: kind.into(),
            ref_,
            field: path.into(),
            message,
        });
    }

    /// Checks `map` against `object`'s fields and then `extra` ones; keys
    /// that none of them names are unknown.
    fn object(&mut self, map: &Map<String, Value>, object: &Object, ref_: &str, path: &str) {
        self.fields(map, object.kind, object.fields, ref_, path);
        if object.kind == "action" {
            return self.action(map, true, ref_, path);
        }
        let known: Vec<&str> = object.fields.iter().map(|f| f.name).collect();
        self.unknown_keys(map, object.kind, &known, ref_, path);
    }

    fn fields(
        &mut self,
        map: &Map<String, Value>,
        kind: &str,
        fields: &[Field],
        ref_: &str,
        path: &str,
    ) {
        for field in fields {
            let at = join(path, field.name);
            match map.get(field.name) {
                None if field.required => self.push(
                    kind,
                    ref_.into(),
                    &at,
                    format!("missing field `{}`", field.name),
                ),
                None => {}
                Some(value) => self.value(value, &field.shape, kind, ref_, &at),
            }
        }
    }

    fn value(&mut self, value: &Value, shape: &Shape, kind: &str, ref_: &str, at: &str) {
        match shape {
            Shape::Typed(check) => {
                if let Err((inner, message)) = check(value.clone()) {
                    self.push(kind, ref_.into(), &join(at, &inner), message);
                }
            }
            Shape::ListOf(object) => self.list(value, object, at, kind, ref_),
            Shape::ActionRef => match value {
                Value::String(_) => {}
                Value::Object(m) => self.action(m, false, &format!("{ref_}.action"), at),
                other => self.push(
                    kind,
                    ref_.into(),
                    at,
                    format!(
                        "expected an action ref (string) or an inline action (object), got {}",
                        type_name(other)
                    ),
                ),
            },
        }
    }

    fn list(&mut self, value: &Value, object: &Object, at: &str, kind: &str, ref_: &str) {
        let Value::Array(items) = value else {
            let message = format!("expected a list, got {}", type_name(value));
            return self.push(kind, ref_.into(), at, message);
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{at}[{i}]");
            let Value::Object(m) = item else {
                self.push(
                    object.kind,
                    item_path.clone(),
                    &item_path,
                    format!("expected an object, got {}", type_name(item)),
                );
                continue;
            };
            let item_ref = object_ref(object.kind, m, &item_path);
            self.object(m, object, &item_ref, &item_path);
        }
    }

    /// An action object: its `kind`, the kind's fields, and unknown keys.
    fn action(&mut self, map: &Map<String, Value>, with_ref: bool, ref_: &str, path: &str) {
        self.fields(map, "action", &ACTION_COMMON, ref_, path);
        let at = join(path, "kind");
        let kind = map.get("kind");
        let Some(own) = kind.and_then(Value::as_str).and_then(kind_fields) else {
            let message = match kind {
                None => "missing field `kind`".to_string(),
                Some(k) => format!(
                    "unknown action kind {}, expected one of {}",
                    k.as_str()
                        .map_or_else(|| type_name(k).to_string(), |s| format!("`{s}`")),
                    quoted(ACTION_KINDS.iter().map(|(k, _)| *k))
                ),
            };
            // The kind's own fields cannot be told from unknown ones.
            return self.push("action", ref_.into(), &at, message);
        };
        self.fields(map, "action", own, ref_, path);
        let mut known = vec!["kind"];
        if with_ref {
            known.push("ref");
        }
        known.extend(ACTION_COMMON.iter().chain(own).map(|f| f.name));
        self.unknown_keys(map, "action", &known, ref_, path);
    }

    fn unknown_keys(
        &mut self,
        map: &Map<String, Value>,
        kind: &str,
        known: &[&str],
        ref_: &str,
        path: &str,
    ) {
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            self.push(
                kind,
                ref_.into(),
                &join(path, key),
                format!(
                    "unknown field `{key}`, expected one of {}",
                    quoted(known.iter().copied())
                ),
            );
        }
    }
}

/// The ref a problem names: the object's own, `from->to` for a transition
/// without one, else its path.
fn object_ref(kind: &str, map: &Map<String, Value>, path: &str) -> String {
    if let Some(r) = map.get("ref").and_then(Value::as_str) {
        return r.to_string();
    }
    let end = |k: &str| map.get(k).and_then(Value::as_str);
    match (kind, end("from"), end("to")) {
        ("transition", Some(from), Some(to)) => format!("{from}->{to}"),
        _ => path.to_string(),
    }
}

/// `a` + `b` as a path: `nodes[0]` + `ref` is `nodes[0].ref`, `x` + `[1]` is `x[1]`.
fn join(a: &str, b: &str) -> String {
    match (a, b) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) if b.starts_with('[') => format!("{a}{b}"),
        (a, b) => format!("{a}.{b}"),
    }
}

fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
