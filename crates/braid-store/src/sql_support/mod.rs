//! For backends: the parts of a SQL backend that do not depend on its SQL
//! dialect or its driver, shared by `braid-store-sqlite` and
//! `braid-store-postgres` so that they are written once.
//!
//! Everything here is plain Rust over the store's records, the definition
//! model and `serde_json`: no SQL text, no driver types. What a backend
//! keeps to itself (decision 67) is the SQL, the binding of parameters and
//! the reading of columns from its driver's rows; it reads columns into the
//! plain row structs of [`bundle_rows`] (or the records of this crate) and
//! hands them to the functions here.
//!
//! | module | what |
//! |---|---|
//! | [`json`] | JSON text columns: writing, parsing with errors that name the column, enum names, lenient columns |
//! | [`page`] | page sizes and the cursors of newest-first lists |
//! | [`batch`] | multi-row statements: chunk sizes, one row per key for an upsert |
//! | [`bundle_rows`] | a bundle as one row per action, node, transition, prompt spec and model profile |
//! | [`bundle_load`] | those rows back into a bundle, naming the definition, object and column on bad data |
//! | [`write_ops`] | a commit's write ops grouped by table |
//! | [`node_stats`] | per-node statistics of the run view from grouped token rows |
//!
//! These are not a storage contract (that is the traits and the conformance
//! suite): they may change with the backends that use them.

pub mod batch;
pub mod bundle_load;
pub mod bundle_rows;
pub mod json;
pub mod node_stats;
pub mod page;
pub mod write_ops;
