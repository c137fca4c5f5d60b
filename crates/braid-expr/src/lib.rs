//! Braid's expression layer: pure functions, no IO.
//!
//! - [`Expr`]: CEL expressions (conditions, mappings, `update_context`),
//!   compiled and checked at save time, evaluated against JSON [`Vars`].
//! - [`Structured`]: the editor's structured conditions, compiled to CEL.
//! - [`Template`]: Handlebars prompt templates (no HTML escaping, strict,
//!   objects and lists rendered as JSON).
//! - [`Schema`]: JSON Schema validation (draft 2020-12 by default).
//! - [`TargetPath`], [`set_path`], [`get_path`]: context paths.
//!
//! Everything here compiles once and is cheap to clone and share between
//! threads (`Send + Sync`).

pub mod cel_expr;
pub mod path;
pub mod schema;
pub mod structured;
pub mod template;

pub use cel_expr::{
    Expr, ExprError, MAX_AST_DEPTH, MAX_DEPTH, MAX_LEN, Vars, cel_to_json, json_to_cel,
};
pub use path::{PathRoot, TargetPath, get_path, set_path};
pub use schema::{Schema, SchemaViolation};
pub use structured::Structured;
pub use template::{Template, TemplateError};

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}

    #[test]
    fn compiled_values_are_shareable() {
        assert_send_sync::<crate::Expr>();
        assert_send_sync::<crate::Template>();
        assert_send_sync::<crate::Schema>();
        assert_send_sync::<crate::ExprError>();
        assert_send_sync::<crate::TemplateError>();
        assert_send_sync::<crate::TargetPath>();
        assert_send_sync::<crate::Structured>();
    }
}
