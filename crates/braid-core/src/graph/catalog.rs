//! The bundle's catalog: refs of every kind, `foreach` item variables,
//! prompt specs, model profiles and artifact types — what actions and
//! nodes refer to by name.

use super::CONTEXT_NAMES;
use super::validator::{Validator, is_ident};
use super::{Env, transition_ref};
use crate::definition::Bundle;
use braid_expr::Template;
use serde_json::Value;
use std::collections::BTreeMap;

/// Compiled prompt specs and the artifact types actions may write.
pub(super) struct Catalog<'b> {
    /// Prompt spec ref → compiled (system, template); `None` when it did not compile.
    pub(super) prompts: BTreeMap<&'b str, (Option<Template>, Option<Template>)>,
    /// The project's artifact types with this bundle's: name → (version, schema).
    pub(super) artifact_types: BTreeMap<String, (i64, Value)>,
}

/// Checks every kind's refs, and collects the `foreach.item_var` names
/// expressions may use.
pub(super) fn check_refs(v: &mut Validator, bundle: &Bundle) {
    v.unique_refs("node", bundle.nodes.iter().map(|n| n.ref_.as_str()));
    v.unique_refs("action", bundle.actions.iter().map(|a| a.ref_.as_str()));
    v.unique_refs(
        "prompt_spec",
        bundle.prompt_specs.iter().map(|a| a.ref_.as_str()),
    );
    v.unique_refs(
        "model_profile",
        bundle.model_profiles.iter().map(|a| a.ref_.as_str()),
    );
    v.unique_refs(
        "artifact_type",
        bundle.artifact_types.iter().map(|a| a.ref_.as_str()),
    );
    v.unique_refs(
        "transition",
        bundle.transitions.iter().filter_map(|t| t.ref_.as_deref()),
    );

    for t in &bundle.transitions {
        if let Some(foreach) = &t.foreach
            && let Some(item_var) = &foreach.item_var
        {
            if !is_ident(item_var)
                || CONTEXT_NAMES.contains(&item_var.as_str())
                || item_var == "result"
            {
                v.err("transition", &transition_ref(t), "foreach.item_var", format!("`{item_var}` is not a usable variable name (an identifier other than input, state, output, artifacts, result, _branch, _loop)"));
            } else if !v.item_vars.contains(item_var) {
                v.item_vars.push(item_var.clone());
            }
        }
    }
}

/// Compiles prompt specs, checks model profiles and resolves artifact types.
pub(super) fn compile_catalog<'b>(v: &mut Validator, bundle: &'b Bundle, env: &Env) -> Catalog<'b> {
    let prompts = compile_prompts(v, bundle);
    check_model_profiles(v, bundle);
    let mut artifact_types: BTreeMap<String, (i64, Value)> = env.artifact_types.clone();
    for a in &bundle.artifact_types {
        if v.schema("artifact_type", &a.ref_, "schema", &a.schema)
            .is_some()
        {
            // The saved version is decided by the store; a changed schema
            // becomes the next version, an unchanged one keeps its number.
            let version = match env.artifact_types.get(&a.ref_) {
                Some((ver, s)) if *s == a.schema => *ver,
                Some((ver, _)) => ver + 1,
                None => 1,
            };
            artifact_types.insert(a.ref_.clone(), (version, a.schema.clone()));
        }
    }
    Catalog {
        prompts,
        artifact_types,
    }
}

fn compile_prompts<'b>(
    v: &mut Validator,
    bundle: &'b Bundle,
) -> BTreeMap<&'b str, (Option<Template>, Option<Template>)> {
    let mut prompts = BTreeMap::new();
    for p in &bundle.prompt_specs {
        let system = p.system.as_ref().and_then(|s| match Template::compile(s) {
            Ok(t) => Some(t),
            Err(e) => {
                v.err("prompt_spec", &p.ref_, "system", e.message);
                None
            }
        });
        let template = match Template::compile(&p.template) {
            Ok(t) => Some(t),
            Err(e) => {
                v.err("prompt_spec", &p.ref_, "template", e.message);
                None
            }
        };
        if let Some(s) = &p.produces
            && v.schema("prompt_spec", &p.ref_, "produces", s).is_some()
            && s.get("type").and_then(Value::as_str) != Some("object")
        {
            v.err(
                "prompt_spec",
                &p.ref_,
                "produces",
                "structured output must be an object schema (`type: object`)",
            );
        }
        prompts.insert(p.ref_.as_str(), (system, template));
    }
    prompts
}

fn check_model_profiles(v: &mut Validator, bundle: &Bundle) {
    for m in &bundle.model_profiles {
        if !["openai", "anthropic", "openai_compatible", "scripted"].contains(&m.provider.as_str())
        {
            v.err(
                "model_profile",
                &m.ref_,
                "provider",
                format!(
                    "unknown provider `{}`: use openai, anthropic, openai_compatible or scripted",
                    m.provider
                ),
            );
        }
        if m.provider == "openai_compatible" && m.base_url.is_none() {
            v.err(
                "model_profile",
                &m.ref_,
                "base_url",
                "openai_compatible needs a base_url (e.g. http://localhost:11434/v1)",
            );
        }
        if m.provider == "scripted" && m.script.is_none() {
            v.err(
                "model_profile",
                &m.ref_,
                "script",
                "the scripted provider needs a script",
            );
        }
        if m.max_concurrency == Some(0) {
            v.err(
                "model_profile",
                &m.ref_,
                "max_concurrency",
                "max_concurrency must be at least 1",
            );
        }
        let rate = m.rate_limit.unwrap_or_default();
        for (field, value) in [
            ("rate_limit.requests_per_minute", rate.requests_per_minute),
            ("rate_limit.tokens_per_minute", rate.tokens_per_minute),
        ] {
            if value == Some(0) {
                v.err(
                    "model_profile",
                    &m.ref_,
                    field,
                    format!("{field} must be at least 1 (leave it out for no limit)"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::definition::Bundle;
    use crate::graph::{Env, compile};

    #[test]
    fn zero_limits_of_a_model_profile_name_their_field() {
        let bundle = Bundle::parse(
            r#"
name: w
initial_node: a
nodes:
  - { ref: a, action: { kind: llm_call, prompt: p, model: m } }
prompt_specs:
  - { ref: p, template: hi }
model_profiles:
  - { ref: m, provider: openai, model: x, max_concurrency: 0, rate_limit: { requests_per_minute: 0, tokens_per_minute: 0 } }
"#,
        )
        .unwrap();
        let errors = compile(&bundle, &Env::default())
            .map(drop)
            .expect_err("invalid");
        let fields: Vec<(&str, &str, &str)> = errors
            .iter()
            .map(|e| (e.kind.as_str(), e.ref_.as_str(), e.field.as_str()))
            .collect();
        for field in [
            "max_concurrency",
            "rate_limit.requests_per_minute",
            "rate_limit.tokens_per_minute",
        ] {
            assert!(
                fields.contains(&("model_profile", "m", field)),
                "{field} missing: {errors:?}"
            );
        }
        // A negative limit is not even a number of the right type.
        let negative = Bundle::parse(
            "name: w\ninitial_node: a\nnodes: []\nmodel_profiles:\n  - { ref: m, provider: openai, model: x, rate_limit: { requests_per_minute: -5 } }\n",
        );
        let message = format!("{:?}", negative.map(drop).expect_err("refused"));
        assert!(message.contains("rate_limit"), "{message}");
    }
}

#[cfg(test)]
mod budget_tests {
    use crate::definition::{Bundle, Limits};
    use crate::graph::{Env, compile};

    #[test]
    fn budgets_out_of_range_name_their_field() {
        for bad in [-0.01, f64::NAN, f64::INFINITY] {
            let limits = Limits {
                max_cost_usd: Some(bad),
                ..Limits::default()
            };
            let problems = limits.problems();
            assert_eq!(problems.len(), 1, "{bad}");
            assert_eq!(problems[0].0, "limits.max_cost_usd");
        }
        let fine = Limits {
            max_cost_usd: Some(0.0),
            max_llm_tokens: Some(0),
            ..Limits::default()
        };
        assert!(fine.problems().is_empty());
        let over = fine.overridden_by(Some(Limits {
            max_cost_usd: Some(2.5),
            ..Limits::default()
        }));
        assert_eq!(
            (over.max_cost_usd, over.max_llm_tokens),
            (Some(2.5), Some(0))
        );

        let bundle = Bundle::parse(
            r#"
name: w
initial_node: a
limits: { max_cost_usd: -1, max_llm_tokens: 10 }
nodes:
  - { ref: a, action: { kind: llm_call, prompt: p, model: m, execution: { max_cost_usd: -2 } }, execution: { max_cost_usd: -3 } }
prompt_specs:
  - { ref: p, template: hi }
model_profiles:
  - { ref: m, provider: openai, model: x }
"#,
        )
        .unwrap();
        let errors = compile(&bundle, &Env::default())
            .map(drop)
            .expect_err("invalid");
        let fields: Vec<(&str, &str, &str)> = errors
            .iter()
            .map(|e| (e.kind.as_str(), e.ref_.as_str(), e.field.as_str()))
            .collect();
        assert!(
            fields.contains(&("workflow", "w", "limits.max_cost_usd")),
            "{errors:?}"
        );
        // The node's own and its inline action's are both reported on the node.
        let on_node = fields
            .iter()
            .filter(|f| **f == ("node", "a", "execution.max_cost_usd"))
            .count();
        assert_eq!(on_node, 2, "{errors:?}");
        // A node's budget replaces its action's.
        let bundle = Bundle::parse(
            "name: w\ninitial_node: a\nnodes:\n  - { ref: a, action: { kind: llm_call, prompt: p, model: m, execution: { max_cost_usd: 2 } }, execution: { max_cost_usd: 0.5 } }\n  - { ref: b, action: { kind: llm_call, prompt: p, model: m, execution: { max_cost_usd: 2 } } }\ntransitions:\n  - { from: a, to: b }\nprompt_specs:\n  - { ref: p, template: hi }\nmodel_profiles:\n  - { ref: m, provider: openai, model: x }\n",
        )
        .unwrap();
        let graph = compile(&bundle, &Env::default()).expect("valid").graph;
        let budgets: Vec<Option<f64>> = graph.nodes.iter().map(|n| n.max_cost_usd).collect();
        assert_eq!(budgets, [Some(0.5), Some(2.0)]);
    }
}
