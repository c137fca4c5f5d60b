//! Definitions: bundles ↔ normalized rows (one row per node, transition,
//! action …, so that they can be written by hand with SQL), workflows,
//! projects and artifact types.
//!
//! `rows` turns a bundle into rows, `save` writes them in one transaction,
//! `load` rebuilds a bundle from them, `listings` answers the project-level
//! queries.

mod listings;
mod load;
mod rows;
mod save;

pub(crate) use listings::{artifact_types, list_workflows, project_id, workflow_names};
pub(crate) use load::{get_def, load_def, resolve_def};
pub(crate) use save::save_bundle;
