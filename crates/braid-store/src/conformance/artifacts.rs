//! Artifacts ([`ArtifactStore`](crate::ArtifactStore)).

use super::fixtures::artifact;
use crate::{ArtifactFilter, Store};

/// Artifact writes are idempotent by key; listings are newest first with filters.
pub async fn artifacts_are_idempotent_and_listed_newest_first(store: &dyn Store) {
    let first = artifact("art_1", "run_1/tok_1", "report", "run_1", 10);
    assert_eq!(store.put_artifact(&first).await.unwrap(), "art_1");
    // A re-delivered write with a new id returns the stored artifact's id.
    let retry = artifact("art_1b", "run_1/tok_1", "report", "run_1", 11);
    assert_eq!(store.put_artifact(&retry).await.unwrap(), "art_1");
    assert!(store.get_artifact("art_1b").await.unwrap().is_none());
    assert_eq!(store.get_artifact("art_1").await.unwrap().unwrap(), first);

    for i in 2..=6 {
        let ty = if i % 2 == 0 { "report" } else { "note" };
        let run = if i <= 4 { "run_1" } else { "run_2" };
        store
            .put_artifact(&artifact(
                &format!("art_{i}"),
                &format!("{run}/tok_{i}"),
                ty,
                run,
                10 + i / 2,
            ))
            .await
            .unwrap();
    }
    let all = store
        .list_artifacts(&ArtifactFilter::default(), None, 100)
        .await
        .unwrap();
    let ids: Vec<_> = all.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["art_6", "art_5", "art_4", "art_3", "art_2", "art_1"]);

    let p1 = store
        .list_artifacts(&ArtifactFilter::default(), None, 4)
        .await
        .unwrap();
    let p2 = store
        .list_artifacts(&ArtifactFilter::default(), p1.next_cursor.as_deref(), 4)
        .await
        .unwrap();
    assert_eq!(p1.items.len() + p2.items.len(), 6);
    assert_eq!(p2.items.last().unwrap().id, "art_1");
    assert!(p2.next_cursor.is_none());

    let reports = ArtifactFilter {
        type_name: Some("report".into()),
        project_id: Some("proj_default".into()),
        ..Default::default()
    };
    let ids = artifact_ids(store, &reports).await;
    assert_eq!(ids, ["art_6", "art_4", "art_2", "art_1"]);
    let run2 = ArtifactFilter {
        run_id: Some("run_2".into()),
        ..Default::default()
    };
    let ids = artifact_ids(store, &run2).await;
    assert_eq!(ids, ["art_6", "art_5"]);
    let other = ArtifactFilter {
        project_id: Some("proj_other".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_artifacts(&other, None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store
            .list_artifacts(&ArtifactFilter::default(), None, 0)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// The ids of the artifacts `filter` lists (first page of 100).
async fn artifact_ids(store: &dyn Store, filter: &ArtifactFilter) -> Vec<String> {
    store
        .list_artifacts(filter, None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.id)
        .collect()
}
