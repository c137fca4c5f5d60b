//! Definitions, projects and artifact types ([`DefinitionStore`](crate::DefinitionStore)).

use braid_core::definition::Bundle;
use serde_json::{Value, json};

use super::fixtures::{bundle, rich_bundle, save_tiny, tiny_bundle};
use crate::{Error, ProjectSettings, Store};

/// A bundle using every field reads back equal; unchanged canonical content
/// keeps its version, any change makes N+1.
pub async fn rich_bundle_round_trips_and_keeps_its_version(store: &dyn Store) {
    let original = bundle(rich_bundle());

    let first = store
        .save_bundle("proj_default", &original, 100)
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.version, 1);
    assert!(first.workflow_id.starts_with("wf_") && first.def_id.starts_with("def_"));

    let stored = store
        .get_def("proj_default", "everything", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bundle, original);
    assert_eq!(stored.bundle.canonical(), original.canonical());
    assert_eq!((stored.version, stored.created_at), (1, 100));
    assert_eq!(
        (stored.workflow_id.as_str(), stored.def_id.as_str()),
        (first.workflow_id.as_str(), first.def_id.as_str())
    );
    assert_eq!(stored.project_id, "proj_default");
    assert_eq!(stored.name, "everything");

    // Saving what was read back (and the original again) keeps version 1.
    let again = store
        .save_bundle("proj_default", &stored.bundle, 200)
        .await
        .unwrap();
    assert_eq!(
        again,
        crate::SaveOutcome {
            created: false,
            ..first.clone()
        }
    );
    let same = store
        .save_bundle("proj_default", &original, 300)
        .await
        .unwrap();
    assert!(!same.created);

    // Key order and the YAML form do not matter either.
    let yaml_like: Bundle =
        Bundle::parse(&serde_json::to_string_pretty(&rich_bundle()).unwrap()).unwrap();
    assert!(
        !store
            .save_bundle("proj_default", &yaml_like, 300)
            .await
            .unwrap()
            .created
    );

    // A content change makes version 2; version 1 stays readable.
    let mut changed = original.clone();
    changed.prompt_specs[0].template.push_str(" Answer A or B.");
    let second = store
        .save_bundle("proj_default", &changed, 400)
        .await
        .unwrap();
    assert!(second.created);
    assert_eq!(second.version, 2);
    assert_eq!(second.workflow_id, first.workflow_id);
    assert_ne!(second.def_id, first.def_id);

    let latest = store
        .get_def("proj_default", &first.workflow_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.version, &latest.bundle), (2, &changed));
    let v1 = store
        .get_def("proj_default", "everything", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.bundle, original);
    let by_id = store.get_def_by_id(&second.def_id).await.unwrap().unwrap();
    assert_eq!(by_id.bundle, changed);
    assert!(
        store
            .get_def("proj_default", "everything", Some(3))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_def("proj_default", "nope", None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_def_by_id("def_nope").await.unwrap().is_none());

    // Going back to the first content is a change too (N+1, not a revert).
    let third = store
        .save_bundle("proj_default", &original, 500)
        .await
        .unwrap();
    assert_eq!((third.created, third.version), (true, 3));
}

/// Artifact types are project-wide and versioned by schema.
pub async fn artifact_types_get_a_new_version_only_when_their_schema_changes(store: &dyn Store) {
    let with_type = |name: &str, schema: Value| {
        bundle(json!({
            "name": name,
            "initial_node": "w",
            "nodes": [ { "ref": "w", "action": { "kind": "write_artifact", "artifact_type": "report", "name": "r" } } ],
            "artifact_types": [ { "ref": "report", "schema": schema } ]
        }))
    };
    let s1 = json!({ "type": "object" });
    let s2 = json!({ "type": "object", "required": ["x"] });

    store
        .save_bundle("proj_default", &with_type("a", s1.clone()), 1)
        .await
        .unwrap();
    let types = store.artifact_types("proj_default").await.unwrap();
    assert_eq!(types.len(), 1);
    assert_eq!(
        (types[0].name.as_str(), types[0].version, &types[0].schema),
        ("report", 1, &s1)
    );
    assert!(types[0].id.starts_with("at_"));

    // Another workflow defining the same schema reuses version 1.
    store
        .save_bundle("proj_default", &with_type("b", s1.clone()), 2)
        .await
        .unwrap();
    assert_eq!(
        store.artifact_types("proj_default").await.unwrap()[0].version,
        1
    );

    // A changed schema makes version 2, and bundles read back show the latest schema.
    let out = store
        .save_bundle("proj_default", &with_type("a", s2.clone()), 3)
        .await
        .unwrap();
    assert_eq!(out.version, 2);
    let types = store.artifact_types("proj_default").await.unwrap();
    assert_eq!(
        (types.len(), types[0].version, &types[0].schema),
        (1, 2, &s2)
    );
    let a = store
        .get_def("proj_default", "a", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.bundle.artifact_types[0].schema, s2);
}

/// Workflow listings page by name; limits are clamped.
pub async fn workflows_list_by_name_with_cursors(store: &dyn Store) {
    for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
        save_tiny(store, name).await;
    }
    let mut changed = tiny_bundle("bravo");
    changed.description = Some("v2".into());
    store
        .save_bundle("proj_default", &changed, 2)
        .await
        .unwrap();

    let p1 = store.list_workflows("proj_default", None, 2).await.unwrap();
    assert_eq!(
        p1.items.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "bravo"]
    );
    assert_eq!(p1.items[1].latest_version, 2);
    assert_eq!(p1.items[0].latest_version, 1);
    let p2 = store
        .list_workflows("proj_default", p1.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(
        p2.items.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["charlie", "delta"]
    );
    let p3 = store
        .list_workflows("proj_default", p2.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(
        p3.items.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["echo"]
    );
    assert!(p3.next_cursor.is_none());

    // Limits are clamped, never an error.
    assert_eq!(
        store
            .list_workflows("proj_default", None, 0)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let all = store
        .list_workflows("proj_default", None, u32::MAX)
        .await
        .unwrap();
    assert_eq!((all.items.len(), all.next_cursor), (5, None));

    assert_eq!(
        store.workflow_names("proj_default").await.unwrap(),
        ["alpha", "bravo", "charlie", "delta", "echo"]
    );
    assert!(store.workflow_names("proj_other").await.unwrap().is_empty());
}

/// `default` always exists; unknown projects are `NotFound`.
pub async fn the_default_project_exists_and_unknown_projects_are_not_found(store: &dyn Store) {
    assert_eq!(store.project_id("default").await.unwrap(), "proj_default");
    assert_eq!(
        store.project_id("proj_default").await.unwrap(),
        "proj_default"
    );
    assert!(matches!(
        store.project_id("nope").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.save_bundle("proj_nope", &tiny_bundle("x"), 1).await,
        Err(Error::NotFound(_))
    ));
}

/// Project settings default to the engine's; a version resolves to its row
/// id by workflow name or id.
pub async fn project_settings_and_versions_resolve(store: &dyn Store) {
    assert_eq!(
        store.project_settings("proj_default").await.unwrap(),
        ProjectSettings::default()
    );
    assert!(matches!(
        store.project_settings("proj_nope").await,
        Err(Error::NotFound(_))
    ));
    let v1 = save_tiny(store, "wf").await;
    let mut changed = tiny_bundle("wf");
    changed.description = Some("v2".into());
    let v2 = store
        .save_bundle("proj_default", &changed, 2)
        .await
        .unwrap();
    let resolve = |name: String, version| async move {
        store
            .resolve_def("proj_default", &name, version)
            .await
            .unwrap()
    };
    assert_eq!(resolve("wf".into(), None).await, Some(v2.def_id.clone()));
    assert_eq!(
        resolve(v1.workflow_id.clone(), Some(1)).await,
        Some(v1.def_id)
    );
    assert_eq!(resolve("wf".into(), Some(3)).await, None);
    assert_eq!(resolve("nope".into(), None).await, None);
    assert!(
        store
            .resolve_def("proj_other", "wf", None)
            .await
            .unwrap()
            .is_none()
    );
}

/// The editor's `layout` is kept with its version but is not content: a
/// save that changes only the layout keeps the version and replaces its
/// layout; a save without one keeps the stored layout; a content change
/// makes N+1 with its own layout, the older version keeping its own.
pub async fn layout_is_kept_with_its_version_but_is_not_content(store: &dyn Store) {
    let at = |layout: Value| {
        let mut b = tiny_bundle("laid_out");
        b.layout = serde_json::from_value(layout).unwrap();
        b
    };
    let read = |version: i64| async move {
        store
            .get_def("proj_default", "laid_out", Some(version))
            .await
            .unwrap()
            .unwrap()
            .bundle
    };
    let first = store
        .save_bundle(
            "proj_default",
            &at(json!({ "only": { "x": 1.5, "y": 2.0 } })),
            1,
        )
        .await
        .unwrap();
    assert!(first.created);
    let moved = at(json!({ "only": { "x": 300.0, "y": -4.25 } }));
    let again = store.save_bundle("proj_default", &moved, 2).await.unwrap();
    assert_eq!((again.created, again.version), (false, 1));
    assert_eq!(again.def_id, first.def_id);
    assert_eq!(read(1).await, moved);
    // A bundle without a layout (a file written by hand) keeps the stored one.
    let bare = store
        .save_bundle("proj_default", &tiny_bundle("laid_out"), 3)
        .await
        .unwrap();
    assert_eq!((bare.created, bare.version), (false, 1));
    assert_eq!(read(1).await.layout, moved.layout);

    let mut changed = at(json!({ "only": { "x": 7.0, "y": 8.0 } }));
    changed.description = Some("changed".into());
    let second = store
        .save_bundle("proj_default", &changed, 4)
        .await
        .unwrap();
    assert_eq!((second.created, second.version), (true, 2));
    assert_eq!(read(2).await, changed);
    assert_eq!(read(1).await, moved, "version 1 keeps its own layout");
}

/// A fork's target ([`DefinitionStore::save_experiment`](crate::DefinitionStore::save_experiment)):
/// content equal to any stored version reuses it; new content gets the next
/// number marked `experiment`, which is never the latest; an ordinary save
/// after it compares with the latest and numbers after every version.
pub async fn experiments_take_the_next_number_but_are_never_the_latest(store: &dyn Store) {
    let v1 = tiny_bundle("exp");
    let mut v2 = tiny_bundle("exp");
    v2.description = Some("an experiment".into());
    let mut v3 = tiny_bundle("exp");
    v3.description = Some("ordinary".into());

    let first = store.save_bundle("proj_default", &v1, 10).await.unwrap();
    // Equal to version 1: version 1 is reused, nothing is created.
    let same = store
        .save_experiment("proj_default", &v1, 20)
        .await
        .unwrap();
    assert_eq!(
        (same.version, same.created, &same.def_id),
        (1, false, &first.def_id)
    );

    let exp = store
        .save_experiment("proj_default", &v2, 30)
        .await
        .unwrap();
    assert_eq!((exp.version, exp.created), (2, true));
    let again = store
        .save_experiment("proj_default", &v2, 40)
        .await
        .unwrap();
    assert_eq!(
        (again.version, again.created, &again.def_id),
        (2, false, &exp.def_id)
    );

    let stored = store
        .get_def("proj_default", "exp", Some(2))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.experiment);
    assert_eq!(stored.bundle, v2);
    let latest = store
        .get_def("proj_default", "exp", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.version, latest.experiment), (1, false));
    assert_eq!(
        store
            .resolve_def("proj_default", "exp", None)
            .await
            .unwrap(),
        Some(first.def_id.clone())
    );
    let listed = store
        .list_workflows("proj_default", None, 10)
        .await
        .unwrap();
    let item = listed.items.iter().find(|w| w.name == "exp").unwrap();
    assert_eq!(item.latest_version, 1);

    // An ordinary save of the experiment's content is compared with the
    // latest (version 1), so it is new: version 3, not an experiment.
    let plain = store.save_bundle("proj_default", &v2, 50).await.unwrap();
    assert_eq!((plain.version, plain.created), (3, true));
    let mid = store.save_bundle("proj_default", &v3, 60).await.unwrap();
    assert_eq!((mid.version, mid.created), (4, true));
    let latest = store
        .get_def("proj_default", "exp", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.version, latest.experiment), (4, false));
    // An experiment equal to an older ordinary version reuses it.
    let old = store
        .save_experiment("proj_default", &v1, 70)
        .await
        .unwrap();
    assert_eq!((old.version, old.created), (1, false));
}
