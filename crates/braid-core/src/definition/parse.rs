//! Reading a bundle (docs/definitions.md): the one parser that files (`braid
//! validate`, `run`, `demo`) and HTTP bodies go through, so a document means
//! the same thing everywhere.
//!
//! Text becomes a generic value first, which tells "not JSON or YAML at all"
//! ([`ParseError::Malformed`]) from "a document of the wrong shape"
//! ([`ParseError::Shape`], every problem with its path).

use super::{Bundle, shape};
use crate::graph::DefinitionError;
use serde_json::Value;

/// Reading a bundle failed before validation could start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Empty, or neither JSON nor YAML (the message says where it broke).
    #[error("{0}")]
    Malformed(String),
    /// A JSON or YAML document that is not a bundle: every problem, each
    /// naming its path from the document's root in `field`.
    #[error("{}", describe(.0))]
    Shape(Vec<DefinitionError>),
}

fn describe(problems: &[DefinitionError]) -> String {
    let listed: Vec<String> = problems
        .iter()
        .map(|p| format!("`{}`: {}", p.field, p.message))
        .collect();
    format!("invalid bundle: {}", listed.join("; "))
}

/// The syntax a bundle is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// JSON.
    Json,
    /// YAML 1.2: only `true`/`false` are booleans, `yes`/`no`/`on`/`off` are strings.
    Yaml,
}

impl Syntax {
    /// JSON when the text starts with `{`, else YAML.
    pub fn sniff(text: &str) -> Syntax {
        if text.trim_start().starts_with('{') {
            Syntax::Json
        } else {
            Syntax::Yaml
        }
    }
}

impl Bundle {
    /// Parses a JSON or YAML document, telling them apart by [`Syntax::sniff`].
    pub fn parse(text: &str) -> Result<Bundle, ParseError> {
        Bundle::parse_as(text, Syntax::sniff(text))
    }

    /// Parses a document written in `syntax` (a YAML body sent as JSON is a
    /// JSON error, not silently YAML).
    pub fn parse_as(text: &str, syntax: Syntax) -> Result<Bundle, ParseError> {
        if text.trim().is_empty() {
            return Err(ParseError::Malformed(
                "the bundle is empty: write a workflow bundle as JSON or YAML".into(),
            ));
        }
        Bundle::from_value(parse_document(text, syntax)?)
    }

    /// Reads a bundle from an already parsed document. A wrong shape lists
    /// every problem with its path (`nodes[2].merge.strategy`).
    pub fn from_value(value: Value) -> Result<Bundle, ParseError> {
        // The whole-bundle deserialize decides; the walk only explains a refusal.
        let first = match serde_path_to_error::deserialize(&value) {
            Ok(bundle) => return Ok(bundle),
            Err(e) => e,
        };
        let problems = shape::problems(&value);
        if !problems.is_empty() {
            return Err(ParseError::Shape(problems));
        }
        let path = first.path().to_string();
        Err(ParseError::Shape(vec![DefinitionError {
            kind: "workflow".into(),
            ref_: value["name"].as_str().unwrap_or_default().into(),
            field: if path == "." { String::new() } else { path },
            message: first.into_inner().to_string(),
        }]))
    }
}

/// Reads a JSON or YAML (1.2) document into a generic value, as bundles
/// are read: also for other documents users write next to them (a fork's
/// changes file).
pub fn parse_document(text: &str, syntax: Syntax) -> Result<Value, ParseError> {
    Ok(match syntax {
        Syntax::Json => serde_json::from_str(text)
            .map_err(|e| ParseError::Malformed(format!("invalid JSON: {e}")))?,
        Syntax::Yaml => {
            // YAML 1.1 would read `description: yes` as a boolean.
            let options = serde_saphyr::options! { strict_booleans: true };
            serde_saphyr::from_str_with_options(text, options)
                .map_err(|e| ParseError::Malformed(format!("invalid YAML: {e}")))?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(kind, ref, field)` of every problem, and whether each message mentions `word`.
    fn shape_problems(text: &str) -> Vec<(String, String, String, String)> {
        match Bundle::parse(text) {
            Err(ParseError::Shape(ps)) => ps
                .into_iter()
                .map(|p| (p.kind, p.ref_, p.field, p.message))
                .collect(),
            other => panic!("expected shape problems, got {other:?}"),
        }
    }

    #[test]
    fn every_shape_problem_is_listed_with_its_path_and_object() {
        let problems = shape_problems(
            "initial_node: a
nodes:
  - ref: a
    action: { kind: update_contxt }
    fan_in: yes
  - ref: b
    action: { kind: llm_call, prompt: p, model: m, temperature: 1 }
    merge: { source: x, target: state.x, strategy: zip }
  - { action: c }
transitions:
  - { from: a, to: b, priority: high }
actions:
  - { ref: c, kind: workflow_call, workflow: w, inherit_artifacts: on }
nodez: []
",
        );
        let at = |field: &str| {
            problems
                .iter()
                .find(|p| p.2 == field)
                .unwrap_or_else(|| panic!("no problem at {field}: {problems:#?}"))
        };
        assert_eq!(at("name").0, "workflow");
        assert!(at("nodez").3.contains("unknown field `nodez`"));
        let kind = at("nodes[0].action.kind");
        assert_eq!((kind.0.as_str(), kind.1.as_str()), ("action", "a.action"));
        assert!(kind.3.contains("`update_contxt`") && kind.3.contains("`update_context`"));
        // YAML 1.2: `yes` and `on` are strings, so a boolean field refuses them.
        assert_eq!(at("nodes[0].fan_in").1, "a");
        assert!(at("actions[0].inherit_artifacts").3.contains("\"on\""));
        assert!(at("nodes[1].action.temperature").3.contains("`prompt`"));
        assert!(at("nodes[1].merge.strategy").3.contains("`zip`"));
        assert_eq!(
            at("nodes[2].ref").1,
            "nodes[2]",
            "no ref: the path stands in"
        );
        assert_eq!(at("transitions[0].priority").1, "a->b");
        assert_eq!(problems.len(), 9, "{problems:#?}");
    }

    #[test]
    fn syntax_errors_are_malformed_and_yaml_words_are_strings() {
        for (text, start) in [
            ("{ \"name\": ", "invalid JSON"),
            ("name: [unclosed", "invalid YAML"),
            ("  \n", "the bundle is empty"),
        ] {
            match Bundle::parse(text) {
                Err(ParseError::Malformed(m)) => assert!(m.starts_with(start), "{m}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let e = Bundle::parse_as("name: x\n", Syntax::Json).unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON"), "{e}");
        let not_object = shape_problems("- 1\n- 2\n");
        assert_eq!(not_object.len(), 1);
        assert!(not_object[0].3.contains("got a list"), "{not_object:?}");

        let b = Bundle::parse(
            "name: no\ndescription: yes\ninitial_node: on\nnodes:\n  - { ref: on, name: off, action: { kind: update_context } }\n",
        )
        .unwrap();
        assert_eq!(
            (
                b.name.as_str(),
                b.description.as_deref(),
                b.initial_node.as_str()
            ),
            ("no", Some("yes"), "on")
        );
        assert_eq!(b.nodes[0].name.as_deref(), Some("off"));
    }

    /// A bundle that sets every field, as serde writes it.
    const EVERY_FIELD: &str = r#"
name: full
description: d
input_schema: { type: object }
output_schema: { type: object }
initial_node: a
limits: { timeout_ms: 1, max_run_tokens: 2 }
output_mapping: { x: "1" }
nodes:
  - ref: a
    name: A
    action: { kind: update_context, updates: [ { path: state.x, expr: "1" } ], execution: { timeout_ms: 5 } }
    input_mapping: { y: "1" }
    output_mapping: { state.z: "1" }
    fan_out: all
    execution: { timeout_ms: 5 }
  - { ref: b, action: call }
  - ref: j
    action: write
    fan_in: { m_of_n: 1 }
    joins: a
    merge: { source: "*", target: state.all, strategy: collect }
    on_early_complete: abandon
  - { ref: l, action: { kind: llm_call, prompt: p, model: m } }
transitions:
  - { ref: t, from: a, to: b, priority: 1, condition: "true", on: always, spawn_count: 2 }
  - { from: a, to: j, foreach: { collection: "[1]", item_var: i } }
  - { ref: back, from: b, to: a, loop: { max_iterations: 2 } }
actions:
  - { ref: call, kind: workflow_call, workflow: { from_context: "'w'" }, version: 1, inherit_artifacts: true, on_failure: catch }
  - { ref: write, kind: write_artifact, artifact_type: doc, name: d, content_mapping: { t: "1" } }
prompt_specs:
  - { ref: p, system: s, template: t, produces: { type: object } }
model_profiles:
  - { ref: m, provider: scripted, model: x, base_url: "http://x", api_key_env: K, parameters: { temperature: 0 }, max_concurrency: 1, rate_limit: { requests_per_minute: 60, tokens_per_minute: 1000 }, cost_per_1k_input_tokens: 0.1, cost_per_1k_output_tokens: 0.2, script: [] }
artifact_types:
  - { ref: doc, schema: { type: object } }
"#;

    #[test]
    fn the_walk_knows_every_field_serde_knows() {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
        let mut texts = vec![EVERY_FIELD.to_string()];
        for entry in std::fs::read_dir(examples).unwrap() {
            texts.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        for text in texts {
            let bundle = Bundle::parse(&text).expect("parses");
            let mut value = serde_json::to_value(&bundle).unwrap();
            value["bogus"] = Value::Bool(true);
            match Bundle::from_value(value) {
                Err(ParseError::Shape(ps)) => {
                    let fields: Vec<&str> = ps.iter().map(|p| p.field.as_str()).collect();
                    assert_eq!(fields, ["bogus"], "{}: {ps:#?}", bundle.name);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
