//! Structured conditions: the editor's form of a transition condition,
//! compiled to CEL source.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A condition built in the editor rather than typed as CEL. Its JSON form is
/// tagged by `type`:
///
/// ```json
/// {"type": "comparison", "field": "state.score", "op": ">=", "value": 0.8}
/// {"type": "comparison", "field": "state.a", "op": "==", "other_field": "state.b"}
/// {"type": "exists", "field": "state.answer"}
/// {"type": "exists", "field": "state.answer", "negated": true}
/// {"type": "in_set", "field": "state.vote", "values": ["A", "B"]}
/// {"type": "array_length", "field": "state.votes", "op": ">=", "value": 2}
/// {"type": "and", "conditions": [ … ]}
/// {"type": "or", "conditions": [ … ]}
/// ```
///
/// `field` and `other_field` are dotted paths of identifiers (`state.a.b`);
/// `op` is one of `>`, `<`, `==`, `!=`, `>=`, `<=`. Unknown fields are
/// rejected.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Structured {
    /// `field op value` or `field op other_field`: exactly one of `value` (any
    /// JSON literal, `null` included) and `other_field`.
    Comparison {
        /// Dotted path of the field compared.
        field: String,
        /// `>`, `<`, `==`, `!=`, `>=` or `<=`.
        op: String,
        /// The JSON literal compared with (`null` included).
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        value: Option<Value>,
        /// Dotted path of the field compared with, instead of `value`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        other_field: Option<String>,
    },
    /// The field is present (`has()` on every step of the path), or with
    /// `negated` absent. The path needs at least two segments (`state.x`).
    Exists {
        /// Dotted path of the field (at least two segments).
        field: String,
        /// `true`: the field is absent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        negated: bool,
    },
    /// The field's value is one of `values`.
    InSet {
        /// Dotted path of the field.
        field: String,
        /// The JSON literals it may equal.
        values: Vec<Value>,
    },
    /// `size(field) op value`.
    ArrayLength {
        /// Dotted path of the list.
        field: String,
        /// `>`, `<`, `==`, `!=`, `>=` or `<=`.
        op: String,
        /// The length compared with.
        value: i64,
    },
    /// Every condition holds; an empty list is `true`.
    And {
        /// The conditions.
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        conditions: Vec<Structured>,
    },
    /// Some condition holds; an empty list is `false`.
    Or {
        /// The conditions.
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        conditions: Vec<Structured>,
    },
}

/// A field that is present deserializes to `Some`, `null` included, so that
/// `"value": null` compares with `null` rather than meaning "no value".
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

const OPS: &[&str] = &[">", "<", "==", "!=", ">=", "<="];

/// CEL's reserved words, which can't name a field in a dotted path.
const RESERVED: &[&str] = &[
    "false",
    "in",
    "null",
    "true",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

impl Structured {
    /// The condition as CEL source. Errors name the problem: an unknown
    /// operator, a malformed field path, both or neither of `value` and
    /// `other_field`, an `exists` on a single-segment path.
    pub fn to_cel(&self) -> Result<String, String> {
        let mut out = String::new();
        self.write_cel(&mut out)?;
        Ok(out)
    }

    fn write_cel(&self, out: &mut String) -> Result<(), String> {
        match self {
            Structured::Comparison {
                field,
                op,
                value,
                other_field,
            } => {
                check_path(field)?;
                check_op(op)?;
                out.push_str(field);
                out.push(' ');
                out.push_str(op);
                out.push(' ');
                match (value, other_field) {
                    (Some(value), None) => write_literal(value, out)?,
                    (None, Some(other)) => {
                        check_path(other)?;
                        out.push_str(other);
                    }
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "comparison on `{field}` has both `value` and `other_field`; give one"
                        ));
                    }
                    (None, None) => {
                        return Err(format!(
                            "comparison on `{field}` needs a `value` or an `other_field`"
                        ));
                    }
                }
            }
            Structured::Exists { field, negated } => {
                check_path(field)?;
                let segments: Vec<&str> = field.split('.').collect();
                if segments.len() < 2 {
                    return Err(format!(
                        "`exists` needs a path of at least two segments, such as `state.x`; got `{field}`"
                    ));
                }
                // has() on every step: `has(a.b.c)` alone fails when `a.b` is
                // missing, it does not answer false.
                let tests: Vec<String> = (2..=segments.len())
                    .map(|n| format!("has({})", segments[..n].join(".")))
                    .collect();
                match (negated, tests.len()) {
                    (false, _) => out.push_str(&tests.join(" && ")),
                    (true, 1) => {
                        out.push('!');
                        out.push_str(&tests[0]);
                    }
                    (true, _) => {
                        out.push_str("!(");
                        out.push_str(&tests.join(" && "));
                        out.push(')');
                    }
                }
            }
            Structured::InSet { field, values } => {
                check_path(field)?;
                out.push_str(field);
                out.push_str(" in [");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_literal(value, out)?;
                }
                out.push(']');
            }
            Structured::ArrayLength { field, op, value } => {
                check_path(field)?;
                check_op(op)?;
                out.push_str(&format!("size({field}) {op} {value}"));
            }
            Structured::And { conditions } => write_junction(conditions, "&&", "true", out)?,
            Structured::Or { conditions } => write_junction(conditions, "||", "false", out)?,
        }
        Ok(())
    }
}

fn write_junction(
    conditions: &[Structured],
    op: &str,
    empty: &str,
    out: &mut String,
) -> Result<(), String> {
    match conditions {
        [] => out.push_str(empty),
        [only] => only.write_cel(out)?,
        many => {
            for (i, condition) in many.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                    out.push_str(op);
                    out.push(' ');
                }
                out.push('(');
                condition.write_cel(out)?;
                out.push(')');
            }
        }
    }
    Ok(())
}

fn check_op(op: &str) -> Result<(), String> {
    if OPS.contains(&op) {
        Ok(())
    } else {
        Err(format!(
            "unknown operator `{op}`; expected one of {}",
            OPS.join(" ")
        ))
    }
}

/// Checks that `path` is identifiers joined by dots.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("field path is empty".to_owned());
    }
    for segment in path.split('.') {
        if !is_identifier(segment) {
            return Err(format!(
                "field path `{path}`: `{segment}` is not an identifier \
                 (letters, digits and `_`, not starting with a digit)"
            ));
        }
        if RESERVED.contains(&segment) {
            return Err(format!(
                "field path `{path}`: `{segment}` is a reserved word in CEL"
            ));
        }
    }
    Ok(())
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes `value` as a CEL literal.
fn write_literal(value: &Value, out: &mut String) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&format!("{u}u"));
            } else {
                let f = n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| format!("number {n} has no CEL form"))?;
                // `{:?}` always writes a fraction or an exponent (`1.0`, `1e300`),
                // which keeps the literal a double.
                out.push_str(&format!("{f:?}"));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_literal(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_literal(v, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Writes `s` as a double-quoted CEL string literal.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Expr, Vars};
    use serde_json::json;

    fn parse(v: Value) -> Structured {
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn cel(v: Value) -> String {
        parse(v).to_cel().unwrap()
    }

    /// Compiles the condition and evaluates it against `state`.
    fn holds(condition: Value, state: &Value) -> bool {
        let source = cel(condition);
        let expr = Expr::compile(&source, &["state"]).unwrap_or_else(|e| panic!("{e}"));
        expr.eval_bool(&Vars::new().with("state", state))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn each_variant_compiles_to_cel_that_evaluates() {
        let state = json!({
            "score": 0.9, "count": 3, "name": "a \"quoted\" \\ name\n", "votes": ["A", "B"],
            "a": {"b": {"c": 1}}, "limit": 3, "none": null, "flag": true
        });
        // comparison with literals and with another field
        assert_eq!(
            cel(json!({"type": "comparison", "field": "state.score", "op": ">=", "value": 0.8})),
            "state.score >= 0.8"
        );
        assert!(holds(
            json!({"type": "comparison", "field": "state.score", "op": ">=", "value": 0.8}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.count", "op": "==", "value": 3}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.count", "op": "<", "value": 3.5}),
            &state
        ));
        assert!(!holds(
            json!({"type": "comparison", "field": "state.count", "op": "!=", "value": 3}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.count", "op": ">", "value": -1}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.count", "op": "<", "value": 18446744073709551615u64}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.name", "op": "==", "value": "a \"quoted\" \\ name\n"}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.none", "op": "==", "value": null}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.flag", "op": "==", "value": true}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.votes", "op": "==", "value": ["A", "B"]}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.a.b", "op": "==", "value": {"c": 1}}),
            &state
        ));
        assert!(holds(
            json!({"type": "comparison", "field": "state.count", "op": "<=", "other_field": "state.limit"}),
            &state
        ));
        assert_eq!(
            cel(
                json!({"type": "comparison", "field": "state.count", "op": "<=", "other_field": "state.limit"})
            ),
            "state.count <= state.limit"
        );
        // control characters and unicode survive
        let odd = "tab\there \u{1} é 😀 '";
        assert!(holds(
            json!({"type": "comparison", "field": "state.s", "op": "==", "value": odd}),
            &json!({"s": odd})
        ));

        // exists: has() on every step, so a missing parent is false, not an error
        assert_eq!(
            cel(json!({"type": "exists", "field": "state.a"})),
            "has(state.a)"
        );
        assert_eq!(
            cel(json!({"type": "exists", "field": "state.a.b.c"})),
            "has(state.a) && has(state.a.b) && has(state.a.b.c)"
        );
        assert_eq!(
            cel(json!({"type": "exists", "field": "state.a", "negated": true})),
            "!has(state.a)"
        );
        assert!(holds(
            json!({"type": "exists", "field": "state.a.b.c"}),
            &state
        ));
        assert!(!holds(
            json!({"type": "exists", "field": "state.x.y.z"}),
            &state
        ));
        assert!(holds(
            json!({"type": "exists", "field": "state.x.y", "negated": true}),
            &state
        ));
        assert!(!holds(
            json!({"type": "exists", "field": "state.a.b", "negated": true}),
            &state
        ));

        // in_set
        assert_eq!(
            cel(json!({"type": "in_set", "field": "state.votes", "values": []})),
            "state.votes in []"
        );
        assert!(holds(
            json!({"type": "in_set", "field": "state.count", "values": [1, 2, 3]}),
            &state
        ));
        assert!(!holds(
            json!({"type": "in_set", "field": "state.name", "values": ["x", "y"]}),
            &state
        ));

        // array_length
        assert_eq!(
            cel(json!({"type": "array_length", "field": "state.votes", "op": ">=", "value": 2})),
            "size(state.votes) >= 2"
        );
        assert!(holds(
            json!({"type": "array_length", "field": "state.votes", "op": "==", "value": 2}),
            &state
        ));
        assert!(!holds(
            json!({"type": "array_length", "field": "state.votes", "op": ">", "value": 2}),
            &state
        ));

        // and / or, nested, empty
        let both = json!({"type": "and", "conditions": [
            {"type": "comparison", "field": "state.count", "op": ">", "value": 1},
            {"type": "or", "conditions": [
                {"type": "exists", "field": "state.missing"},
                {"type": "in_set", "field": "state.count", "values": [3]}
            ]}
        ]});
        assert_eq!(
            cel(both.clone()),
            "(state.count > 1) && ((has(state.missing)) || (state.count in [3]))"
        );
        assert!(holds(both, &state));
        assert_eq!(cel(json!({"type": "and", "conditions": []})), "true");
        assert_eq!(cel(json!({"type": "or", "conditions": []})), "false");
        assert_eq!(
            cel(json!({"type": "or", "conditions": [{"type": "exists", "field": "state.a"}]})),
            "has(state.a)"
        );
        assert!(!holds(json!({"type": "or", "conditions": []}), &state));
    }

    #[test]
    fn invalid_conditions_are_rejected() {
        let bad = |v: Value| parse(v).to_cel().unwrap_err();
        assert!(
            bad(json!({"type": "comparison", "field": "state.x", "op": "=~", "value": 1}))
                .contains("`=~`")
        );
        assert!(
            bad(json!({"type": "comparison", "field": "state.x", "op": "=="}))
                .contains("needs a `value`")
        );
        assert!(bad(json!({"type": "comparison", "field": "state.x", "op": "==", "value": 1, "other_field": "state.y"})).contains("both"));
        assert!(bad(json!({"type": "comparison", "field": "state.x", "op": "==", "other_field": "state.y z"})).contains("state.y z"));
        assert!(
            bad(json!({"type": "comparison", "field": "state..x", "op": "==", "value": 1}))
                .contains("identifier")
        );
        assert!(
            bad(
                json!({"type": "comparison", "field": "state.x) || (true", "op": "==", "value": 1})
            )
            .contains("identifier")
        );
        assert!(
            bad(json!({"type": "comparison", "field": "", "op": "==", "value": 1}))
                .contains("empty")
        );
        assert!(
            bad(json!({"type": "comparison", "field": "state.1x", "op": "==", "value": 1}))
                .contains("identifier")
        );
        assert!(
            bad(json!({"type": "comparison", "field": "state.in", "op": "==", "value": 1}))
                .contains("reserved")
        );
        assert!(bad(json!({"type": "exists", "field": "state"})).contains("two segments"));
        assert!(
            bad(json!({"type": "array_length", "field": "state.x", "op": "<>", "value": 1}))
                .contains("<>")
        );
        assert!(
            bad(json!({"type": "and", "conditions": [{"type": "exists", "field": "x"}]}))
                .contains("two segments")
        );

        // the JSON shape is strict
        for v in [
            json!({"type": "comparison", "field": "state.x", "op": "==", "value": 1, "extra": 1}),
            json!({"type": "nope", "field": "state.x"}),
            json!({"field": "state.x"}),
            json!({"type": "in_set", "field": "state.x"}),
            json!({"type": "array_length", "field": "state.x", "op": "==", "value": 1.5}),
        ] {
            assert!(
                serde_json::from_value::<Structured>(v.clone()).is_err(),
                "{v}"
            );
        }
    }

    #[test]
    fn json_shape_round_trips() {
        for v in [
            json!({"type": "comparison", "field": "state.x", "op": "==", "value": null}),
            json!({"type": "comparison", "field": "state.x", "op": "==", "other_field": "state.y"}),
            json!({"type": "exists", "field": "state.x"}),
            json!({"type": "exists", "field": "state.x", "negated": true}),
            json!({"type": "in_set", "field": "state.x", "values": [1, "a"]}),
            json!({"type": "array_length", "field": "state.x", "op": ">", "value": 0}),
            json!({"type": "or", "conditions": [{"type": "and", "conditions": []}]}),
        ] {
            let parsed = parse(v.clone());
            assert_eq!(serde_json::to_value(&parsed).unwrap(), v);
        }
        // `"value": null` is a null literal, an absent value is none
        assert_eq!(
            parse(json!({"type": "comparison", "field": "state.x", "op": "==", "value": null})),
            Structured::Comparison {
                field: "state.x".into(),
                op: "==".into(),
                value: Some(Value::Null),
                other_field: None
            }
        );
        assert_eq!(
            cel(json!({"type": "comparison", "field": "state.x", "op": "!=", "value": null})),
            "state.x != null"
        );
    }
}
