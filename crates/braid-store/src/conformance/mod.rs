//! The storage conformance suite: the behaviour every backend of the
//! storage traits must show, whatever its SQL.
//!
//! Each case is an `async fn(&dyn Store)` that takes a **fresh, empty**
//! store (migrated, with only the `default` project) and panics on the
//! first broken guarantee. A backend runs them all from one integration
//! test file with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! // crates/braid-store-<backend>/tests/conformance.rs
//! async fn fresh() -> (TempDir, SqliteStore) { … }
//! braid_store::conformance_tests!(fresh);
//! ```
//!
//! which makes one `#[tokio::test]` per case, named after it, so a failure
//! names the broken guarantee. Backend-specific behaviour (files,
//! migrations, pragmas, WAL) is tested in the backend's own crate; the
//! [`fixtures`] are public for that.

mod artifacts;
mod definitions;
pub mod fixtures;
mod queue;
mod runs;
mod view;

pub use artifacts::artifacts_are_idempotent_and_listed_newest_first;
pub use definitions::{
    artifact_types_get_a_new_version_only_when_their_schema_changes,
    experiments_take_the_next_number_but_are_never_the_latest,
    layout_is_kept_with_its_version_but_is_not_content, project_settings_and_versions_resolve,
    rich_bundle_round_trips_and_keeps_its_version,
    the_default_project_exists_and_unknown_projects_are_not_found,
    workflows_list_by_name_with_cursors,
};
pub use queue::{
    enqueue_ack_and_drop_keep_their_order_in_a_batch, queued_tasks_of_cancelled_tokens_are_dropped,
    released_leases_make_tasks_claimable_at_once, tasks_are_claimed_leased_redelivered_and_acked,
};
pub use runs::{
    a_batch_with_a_duplicate_event_seq_writes_nothing,
    a_commit_under_a_stale_epoch_is_fenced_and_writes_nothing,
    events_are_appended_in_batches_and_read_in_order, forked_from_is_stored_and_listed,
    only_the_latest_snapshot_is_kept, results_are_stored_out_of_line,
    runs_are_created_updated_and_read_back, runs_list_newest_first_with_filters_and_cursors,
    token_history_reads_one_tokens_events, token_usage_is_kept_and_summed_over_the_run_tree,
    tokens_upsert_and_page_in_creation_order,
};
pub use view::{
    events_and_tokens_are_filtered_in_the_store, node_stats_aggregate_every_node_of_the_graph,
    sibling_sets_upsert_and_count_members_by_latest_token,
};

/// One `#[tokio::test]` per conformance case, in the calling test crate
/// (which needs `tokio` with the `macros` and `rt` features).
///
/// `$fresh` is an `async fn() -> (Guard, S)` with `S:`
/// [`Store`](crate::Store): a new empty store per case, and whatever must
/// outlive it (a temporary directory, a database to drop), kept until the
/// case ends.
///
/// `optional: $fresh`, with `$fresh` returning `Option<(Guard, S)>`, is for
/// a backend whose server may be missing on a developer's machine: `None`
/// ends the case early (the backend's `$fresh` says why, and decides
/// whether that is allowed: under CI it must panic instead).
#[macro_export]
macro_rules! conformance_tests {
    (optional: $fresh:path) => {
        $crate::conformance_tests!(@all $fresh; optional);
    };
    ($fresh:path) => {
        $crate::conformance_tests!(@all $fresh; required);
    };
    (@all $fresh:path; $mode:ident) => {
        $crate::conformance_tests!(@cases $fresh; $mode;
            rich_bundle_round_trips_and_keeps_its_version,
            layout_is_kept_with_its_version_but_is_not_content,
            artifact_types_get_a_new_version_only_when_their_schema_changes,
            workflows_list_by_name_with_cursors,
            the_default_project_exists_and_unknown_projects_are_not_found,
            project_settings_and_versions_resolve,
            runs_are_created_updated_and_read_back,
            a_batch_with_a_duplicate_event_seq_writes_nothing,
            a_commit_under_a_stale_epoch_is_fenced_and_writes_nothing,
            events_are_appended_in_batches_and_read_in_order,
            tokens_upsert_and_page_in_creation_order,
            token_history_reads_one_tokens_events,
            only_the_latest_snapshot_is_kept,
            runs_list_newest_first_with_filters_and_cursors,
            results_are_stored_out_of_line,
            token_usage_is_kept_and_summed_over_the_run_tree,
            tasks_are_claimed_leased_redelivered_and_acked,
            enqueue_ack_and_drop_keep_their_order_in_a_batch,
            queued_tasks_of_cancelled_tokens_are_dropped,
            released_leases_make_tasks_claimable_at_once,
            artifacts_are_idempotent_and_listed_newest_first,
            node_stats_aggregate_every_node_of_the_graph,
            sibling_sets_upsert_and_count_members_by_latest_token,
            events_and_tokens_are_filtered_in_the_store,
            experiments_take_the_next_number_but_are_never_the_latest,
            forked_from_is_stored_and_listed,
        );
    };
    (@cases $fresh:path; required; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let (_guard, store) = $fresh().await;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
    (@cases $fresh:path; optional; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let Some((_guard, store)) = $fresh().await else {
                    return;
                };
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}
