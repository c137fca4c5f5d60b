//! JSON Schema validation, compiled once.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A compiled JSON Schema: draft 2020-12 unless its `$schema` names another
/// draft. Remote `$ref`s are not fetched (a schema that needs one is
/// rejected). Cloning is cheap.
#[derive(Clone)]
pub struct Schema {
    validator: Arc<jsonschema::Validator>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

/// One way an instance fails its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaViolation {
    /// JSON Pointer to the offending part of the instance: `""` for the
    /// instance itself, `/items/0/name` inside it.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl SchemaViolation {
    /// Every violation on one line: `/path: message; /other: message`
    /// (`/` for the instance itself).
    pub fn describe_all(violations: &[SchemaViolation]) -> String {
        violations
            .iter()
            .map(|v| {
                let path = if v.path.is_empty() { "/" } else { &v.path };
                format!("{path}: {}", v.message)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Schema {
    /// Compiles `schema`; an invalid schema is an error saying why and where.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        let validator = jsonschema::validator_for(schema).map_err(|e| {
            let at = e.instance_path().as_str();
            if at.is_empty() {
                format!("invalid JSON Schema: {e}")
            } else {
                format!("invalid JSON Schema at {at}: {e}")
            }
        })?;
        Ok(Schema {
            validator: Arc::new(validator),
        })
    }

    /// Whether `value` is valid, without collecting the violations.
    pub fn is_valid(&self, value: &Value) -> bool {
        self.validator.is_valid(value)
    }

    /// Validates `value`, reporting every violation.
    pub fn validate(&self, value: &Value) -> Result<(), Vec<SchemaViolation>> {
        if self.validator.is_valid(value) {
            return Ok(());
        }
        let violations: Vec<SchemaViolation> = self
            .validator
            .iter_errors(value)
            .map(|e| SchemaViolation {
                path: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
            })
            .collect();
        if violations.is_empty() {
            // `is_valid` and `iter_errors` disagreeing would be a bug in the
            // validator; still never report an invalid value as valid.
            return Err(vec![SchemaViolation {
                path: String::new(),
                message: "the value does not match the schema".to_owned(),
            }]);
        }
        Err(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_instances_and_reports_every_violation() {
        let schema = Schema::compile(&json!({
            "type": "object",
            "required": ["vote", "reasons"],
            "properties": {
                "vote": {"type": "string", "enum": ["A", "B"]},
                "reasons": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "meta": {"$ref": "#/$defs/meta"}
            },
            "$defs": {"meta": {"type": "object", "properties": {"score": {"type": "number"}}}},
            "additionalProperties": false
        }))
        .unwrap();
        assert_eq!(
            schema.validate(&json!({"vote": "A", "reasons": ["x"]})),
            Ok(())
        );
        assert!(schema.is_valid(&json!({"vote": "B", "reasons": ["x"], "meta": {"score": 1}})));

        let violations = schema
            .validate(
                &json!({"vote": "C", "reasons": ["x", 2], "meta": {"score": "high"}, "extra": 1}),
            )
            .unwrap_err();
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        for expected in ["/vote", "/reasons/1", "/meta/score", ""] {
            assert!(paths.contains(&expected), "{expected} not in {paths:?}");
        }
        assert!(violations.iter().all(|v| !v.message.is_empty()));
        let root = schema.validate(&json!([])).unwrap_err();
        assert_eq!(root.len(), 1);
        assert_eq!(root[0].path, "");
        assert!(root[0].message.contains("object"), "{}", root[0].message);
        let missing = schema.validate(&json!({"vote": "A"})).unwrap_err();
        assert!(missing[0].message.contains("reasons"), "{:?}", missing);
        assert_eq!(
            serde_json::to_value(&missing[0]).unwrap()["path"],
            json!("")
        );
        assert_eq!(
            SchemaViolation {
                path: "/a".into(),
                message: "bad".into()
            }
            .to_string(),
            "/a: bad"
        );

        // booleans are schemas too; clones share the compiled validator
        let anything = Schema::compile(&json!(true)).unwrap();
        assert_eq!(anything.clone().validate(&json!({"x": [1]})), Ok(()));
        assert!(
            Schema::compile(&json!(false))
                .unwrap()
                .validate(&json!(1))
                .is_err()
        );
    }

    #[test]
    fn honours_the_draft_and_rejects_invalid_schemas() {
        // 2020-12 by default: prefixItems is a keyword
        let tuple = Schema::compile(&json!({"prefixItems": [{"type": "integer"}], "items": false}))
            .unwrap();
        assert!(tuple.validate(&json!([1])).is_ok());
        assert!(tuple.validate(&json!([1, 2])).is_err());
        // draft 7 by $schema: `items` as a list is the tuple form
        let draft7 = Schema::compile(&json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "items": [{"type": "integer"}],
            "additionalItems": false
        }))
        .unwrap();
        assert!(draft7.validate(&json!([1])).is_ok());
        assert!(draft7.validate(&json!([1, 2])).is_err());

        for bad in [
            json!({"type": "strnig"}),
            json!({"type": 12}),
            json!({"required": "x"}),
            json!({"minimum": "zero"}),
            json!(42),
            json!({"$ref": "#/$defs/missing"}),
            json!({"$ref": "https://example.com/schema.json"}),
        ] {
            let e = Schema::compile(&bad).unwrap_err();
            assert!(e.starts_with("invalid JSON Schema"), "{bad}: {e}");
        }
    }
}
