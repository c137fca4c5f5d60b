//! Prompt templates: Handlebars without HTML escaping, in strict mode, with
//! objects and lists rendered as JSON.

use std::fmt;
use std::sync::Arc;

use handlebars::template::{Parameter, Template as HbTemplate, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, Path, RenderContext, RenderError,
    RenderErrorReason,
};
use serde_json::Value;

/// The name the one template of a [`Template`]'s registry is registered under.
const NAME: &str = "prompt";

/// The helper every `{{path}}` is rewritten to call, so that values render as
/// [`Template`] documents.
const VALUE_HELPER: &str = "__braid_value";

/// The helpers Handlebars registers: `{{name}}` calls one of them rather than
/// rendering a value.
const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte",
    "and", "or", "not", "len",
];

/// A template that failed to compile or to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// What went wrong, with the line and column where known.
    pub message: String,
}

impl TemplateError {
    fn new(message: impl Into<String>) -> Self {
        TemplateError {
            message: message.into(),
        }
    }
}

/// A compiled Handlebars prompt template. Cloning is cheap.
///
/// - No HTML escaping: `<`, `&`, `"` render as they are.
/// - Strict: rendering a missing variable (`{{state.nope}}`) is an error naming
///   it. Block helpers still test for presence: `{{#if state.nope}}` is false.
/// - `{{value}}` renders a string as it is, a number or bool as JSON, `null`
///   as nothing, and an object or a list as compact JSON (`{"a":1}`, `[1,2]`).
///   (Values returned by helpers, such as `{{lookup …}}`, render the
///   Handlebars way.)
/// - Partials and decorators are not supported.
#[derive(Clone)]
pub struct Template {
    registry: Arc<Handlebars<'static>>,
    source: Arc<str>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl Template {
    /// Compiles `source`; syntax errors are reported here, at save time.
    pub fn compile(source: &str) -> Result<Template, TemplateError> {
        let mut template = HbTemplate::compile(source).map_err(|e| {
            let at = match e.pos() {
                Some((line, column)) => format!(" at line {line}, column {column}"),
                None => String::new(),
            };
            TemplateError::new(format!("template syntax error{at}: {}", e.reason()))
        })?;
        rewrite(&mut template.elements)?;
        template.name = Some(NAME.to_owned());

        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper(VALUE_HELPER, Box::new(render_value));
        registry.register_template(NAME, template);
        Ok(Template {
            registry: Arc::new(registry),
            source: source.into(),
        })
    }

    /// The source the template was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template with `data` (copied once: see
    /// [`Template::render_owned`] to avoid it).
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_owned(data.clone())
    }

    /// Renders the template with `data`, taking ownership of it.
    pub fn render_owned(&self, data: Value) -> Result<String, TemplateError> {
        self.registry
            .render_with_context(NAME, &Context::from(data))
            .map_err(describe_render_error)
    }
}

/// Rewrites every `{{path}}` and `{{{path}}}` to `{{__braid_value path}}`,
/// inside blocks too, and rejects partials and decorators.
fn rewrite(elements: &mut [TemplateElement]) -> Result<(), TemplateError> {
    for element in elements {
        match element {
            TemplateElement::Expression(ht) | TemplateElement::HtmlExpression(ht) => {
                let is_value = !ht.block
                    && ht.params.is_empty()
                    && ht.hash.is_empty()
                    && matches!(&ht.name, Parameter::Path(path) if !BUILTIN_HELPERS.contains(&path_raw(path)));
                if is_value {
                    let path =
                        std::mem::replace(&mut ht.name, Parameter::Name(VALUE_HELPER.into()));
                    ht.params.push(path);
                }
            }
            TemplateElement::HelperBlock(ht) => {
                if let Some(t) = &mut ht.template {
                    rewrite(&mut t.elements)?;
                }
                if let Some(t) = &mut ht.inverse {
                    rewrite(&mut t.elements)?;
                }
            }
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                return Err(TemplateError::new(
                    "partials (`{{> name}}`) are not supported in prompt templates",
                ));
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                return Err(TemplateError::new(
                    "decorators (`{{* name}}`) are not supported in prompt templates",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn path_raw(path: &Path) -> &str {
    match path {
        Path::Relative((_, raw)) | Path::Local((_, _, raw)) => raw,
    }
}

/// `{{__braid_value path}}`: the value at `path`, strings raw, objects and
/// lists as compact JSON; a missing value is an error naming `path`.
fn render_value(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let Some(param) = h.param(0) else {
        return Err(RenderErrorReason::ParamNotFoundForIndex(VALUE_HELPER, 0).into());
    };
    if param.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(param.relative_path().cloned()).into());
    }
    match param.value() {
        Value::String(s) => out.write(s)?,
        Value::Null => {}
        Value::Bool(b) => out.write(if *b { "true" } else { "false" })?,
        Value::Number(n) => out.write(&n.to_string())?,
        other => out.write(&other.to_string())?,
    }
    Ok(())
}

fn describe_render_error(e: RenderError) -> TemplateError {
    let at = match (e.line_no, e.column_no) {
        (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
        _ => String::new(),
    };
    let message = match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            format!("variable `{path}` is missing{at}")
        }
        RenderErrorReason::MissingVariable(None) => format!("a variable is missing{at}"),
        other => format!("{other}{at}"),
    };
    TemplateError::new(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, data: &Value) -> Result<String, String> {
        Template::compile(source)
            .map_err(|e| format!("compile: {}", e.message))?
            .render(data)
            .map_err(|e| e.message)
    }

    #[test]
    fn renders_values_raw_and_structures_as_json() {
        let data = json!({
            "state": {"question": "Is 1 < 2 & \"3\" > 'x'?", "n": 3, "f": 0.5, "ok": true, "none": null,
                      "obj": {"a": [1, "x"], "b": {"c": null}}, "list": ["x", "y"], "people": [{"name": "Ada"}, {"name": "Alan"}]},
            "_branch": {"index": 2, "total": 3},
        });
        let out = |source: &str| render(source, &data).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(out("Q: {{state.question}}"), "Q: Is 1 < 2 & \"3\" > 'x'?");
        assert_eq!(out("Q: {{{state.question}}}"), "Q: Is 1 < 2 & \"3\" > 'x'?");
        assert_eq!(
            out("judge {{_branch.index}} of {{_branch.total}}"),
            "judge 2 of 3"
        );
        assert_eq!(
            out("{{state.n}} {{state.f}} {{state.ok}} [{{state.none}}]"),
            "3 0.5 true []"
        );
        assert_eq!(out("{{state.obj}}"), r#"{"a":[1,"x"],"b":{"c":null}}"#);
        assert_eq!(out("{{state.list}}"), r#"["x","y"]"#);
        assert_eq!(out("{{state.obj.a}}"), r#"[1,"x"]"#);
        assert_eq!(out("{{state.list.[1]}}"), "y");
        assert_eq!(
            out("{{#each state.people}}{{@index}}:{{name}};{{/each}}"),
            "0:Ada;1:Alan;"
        );
        assert_eq!(
            out("{{#each state.people}}{{this}}|{{/each}}"),
            r#"{"name":"Ada"}|{"name":"Alan"}|"#
        );
        assert_eq!(
            out("{{#each state.list}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}"),
            "x, y"
        );
        assert_eq!(out("{{#with state.obj}}{{b}}{{/with}}"), r#"{"c":null}"#);
        // presence tests don't trip strict mode
        assert_eq!(out("{{#if state.missing}}yes{{else}}no{{/if}}"), "no");
        assert_eq!(out("{{#if state.ok}}yes {{state.n}}{{/if}}"), "yes 3");
        assert_eq!(out("{{#if (eq state.n 3)}}three{{/if}}"), "three");
        assert_eq!(out("{{len state.list}}"), "2");
        assert_eq!(
            out("no variables <b>&amp;</b>"),
            "no variables <b>&amp;</b>"
        );
        assert_eq!(out(r"\{{state.n}}"), "{{state.n}}");

        // rendering an owned value gives the same
        let t = Template::compile("{{a}}").unwrap();
        assert_eq!(t.render_owned(json!({"a": [1]})).unwrap(), "[1]");
        assert_eq!(t.source(), "{{a}}");
        let clone = t.clone();
        std::thread::spawn(move || clone.render(&json!({"a": "x"})).unwrap())
            .join()
            .unwrap();
    }

    #[test]
    fn missing_variables_and_bad_syntax_are_errors() {
        let data = json!({"state": {"question": "q", "people": [{"name": "Ada"}, {}]}});
        let e = render("Q: {{state.answer}}", &data).unwrap_err();
        assert!(e.contains("`state.answer`") && e.contains("missing"), "{e}");
        let e = render("{{nope}}", &data).unwrap_err();
        assert!(e.contains("`nope`"), "{e}");
        let e = render("{{{state.nope}}}", &data).unwrap_err();
        assert!(e.contains("`state.nope`"), "{e}");
        let e = render("{{#each state.people}}{{name}} {{/each}}", &data).unwrap_err();
        assert!(e.contains("`name`"), "{e}");
        let e = render("{{#each state.nothing}}x{{/each}}", &data).unwrap_err();
        assert!(e.contains("state.nothing"), "{e}");

        for bad in [
            "{{#if x}}unclosed",
            "{{state.question",
            "{{#each}}{{/if}}",
            "{{> partial}}",
            "{{*inline}}",
        ] {
            let e = Template::compile(bad).unwrap_err();
            assert!(!e.message.is_empty(), "{bad}");
        }
        let e = Template::compile("line one\n{{#if x}}").unwrap_err();
        assert!(e.message.contains("syntax error"), "{}", e.message);
        assert!(
            Template::compile("{{> partial}}")
                .unwrap_err()
                .message
                .contains("partials")
        );
    }
}
