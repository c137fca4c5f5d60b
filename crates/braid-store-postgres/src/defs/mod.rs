//! Definitions: bundles ↔ normalized rows (one row per node, transition,
//! action …, so that they can be written by hand with SQL), workflows,
//! projects and artifact types.
//!
//! `save` writes a bundle's rows (`braid_store::sql_support::bundle_rows`)
//! in one transaction, `load` reads them back and rebuilds the bundle with
//! `braid_store::sql_support::bundle_load`, `listings` answers the
//! project-level queries. The conversions are shared with the other
//! backend; the SQL is this crate's.

mod listings;
mod load;
mod save;

pub(crate) use listings::{artifact_types, list_workflows, project_id, workflow_names};
pub(crate) use load::{get_def, load_def, resolve_def};
pub(crate) use save::save_bundle;
