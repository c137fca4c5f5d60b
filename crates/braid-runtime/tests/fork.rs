//! Forking a run: the copied history is not paid for again, the new run
//! goes on live on the target version, experiments never become the
//! latest version, and replay equals live for the forked run.

mod common;

use braid_core::fork::ForkPoint;
use braid_runtime::{Error, ForkChanges, ForkSpec, Options};
use braid_store::{RunRecord, RunStatus};
use braid_testkit::{answer_by_prompt, last_prompt, research_pipeline};
use common::*;
use serde_json::json;
use std::time::Duration;

async fn provider() -> MockLlm {
    MockLlm::start(|_, body| answer_by_prompt(body)).await
}

/// An engine that snapshots often, so that forked runs are checked from a
/// snapshot plus a tail too.
async fn snapshotting() -> TestEngine {
    engine_with(Options {
        snapshot_every_events: 4,
        ..Options::default()
    })
    .await
}

async fn wait(t: &TestEngine, id: &str) -> RunRecord {
    let run = t
        .engine
        .wait(id, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    t.assert_replay_matches(&run).await;
    run
}

fn summary_change() -> ForkChanges {
    ForkChanges {
        prompt_specs: vec![
            json!({ "ref": "summary_p", "template": "Briefly summarize {{state.sections}}" }),
        ],
        ..ForkChanges::default()
    }
}

fn at(node: &str, changes: ForkChanges, version: Option<i64>) -> ForkSpec {
    ForkSpec {
        from: ForkPoint::Node(node.into()),
        changes,
        version,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_at_the_summary_with_a_new_prompt_calls_the_provider_once_on_an_experiment() {
    let mock = provider().await;
    let t = snapshotting().await;
    t.save(&research_pipeline(&mock.url)).await;
    let source = t.run("research", json!({ "topic": "tides" })).await;
    assert_eq!(source.status, RunStatus::Completed, "{:?}", source.error);
    assert_eq!(mock.requests().len(), 7);

    let forked = t
        .engine
        .fork_run(&source.id, at("summary", summary_change(), None))
        .await
        .unwrap();
    assert_eq!(
        forked.version, 2,
        "the changed version is saved as version 2"
    );
    let run = wait(&t, &forked.run_id).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 8, "exactly one new request");
    assert!(
        last_prompt(&requests[7]).starts_with("Briefly summarize"),
        "{}",
        last_prompt(&requests[7])
    );

    // Only the summary differs.
    assert_eq!(run.context["state"], source.context["state"]);
    assert_eq!(run.context["output"]["count"], json!(5));
    assert_eq!(
        run.context["output"]["count"],
        source.context["output"]["count"]
    );
    assert_ne!(
        run.context["output"]["summary"],
        source.context["output"]["summary"]
    );
    assert_eq!(
        run.usage["llm_calls"],
        json!(1),
        "only its own attempts count"
    );
    assert_eq!(source.usage["llm_calls"], json!(7));
    let snapshot = t.engine.store().latest_snapshot(&run.id).await.unwrap();
    assert!(
        snapshot.is_some_and(|(seq, _)| seq > 0),
        "the fork was checked from a snapshot plus its tail too"
    );
    let from = run.forked_from.clone().expect("forked_from");
    assert_eq!(from.run_id, source.id);
    assert_eq!(run.version, 2);

    // The history is the source's up to the summary's start, renumbered
    // from 1, then `workflow_forked`.
    let events = t.events(&run.id).await;
    let source_events = t.events(&source.id).await;
    let copied = from.seq as usize;
    assert_eq!(source_events[copied].kind, "node_started");
    assert_eq!(source_events[copied].node.as_deref(), Some("summary"));
    for (e, s) in events.iter().zip(&source_events).take(copied) {
        assert_eq!(
            (e.seq, &e.kind, &e.token_id, &e.payload),
            (s.seq, &s.kind, &s.token_id, &s.payload)
        );
    }
    assert_eq!(events[copied].kind, "workflow_forked");
    assert_eq!(
        events[copied].payload,
        json!({ "from_run_id": source.id, "from_seq": copied, "version": 2 })
    );

    // The experiment is not the latest version: a run with no version uses 1.
    let plain = t.run("research", json!({ "topic": "tides" })).await;
    assert_eq!(plain.version, 1);
    let store = t.engine.store();
    let v2 = store
        .get_def(&t.project, "research", Some(2))
        .await
        .unwrap()
        .unwrap();
    assert!(v2.experiment);
    let latest = store
        .get_def(&t.project, "research", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.version, latest.experiment), (1, false));

    // The same fork again reuses version 2.
    let again = t
        .engine
        .fork_run(&source.id, at("summary", summary_change(), None))
        .await
        .unwrap();
    assert_eq!(again.version, 2);
    wait(&t, &again.run_id).await;
    assert!(
        store
            .get_def(&t.project, "research", Some(3))
            .await
            .unwrap()
            .is_none()
    );
    // An ordinary save after an experiment takes the next number.
    let changed = research_pipeline(&mock.url).replace("Outline {{", "Plan {{");
    t.save(&changed).await;
    let latest = store
        .get_def(&t.project, "research", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.version, latest.experiment), (3, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_at_the_sections_runs_them_and_the_summary_again_but_not_the_outline() {
    let mock = provider().await;
    let t = snapshotting().await;
    t.save(&research_pipeline(&mock.url)).await;
    let source = t.run("research", json!({ "topic": "tides" })).await;
    assert_eq!(mock.requests().len(), 7);

    let forked = t
        .engine
        .fork_run(&source.id, at("section", ForkChanges::default(), None))
        .await
        .unwrap();
    assert_eq!(forked.version, 1, "no changes: the source's version");
    let run = wait(&t, &forked.run_id).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 13, "five sections and the summary again");
    let new: Vec<String> = requests[7..].iter().map(last_prompt).collect();
    assert!(new.iter().all(|p| !p.starts_with("Outline")), "{new:?}");
    assert_eq!(new.iter().filter(|p| p.starts_with("Section")).count(), 5);
    assert_eq!(
        run.context, source.context,
        "the same answers give the same run"
    );
    assert_eq!(run.usage["llm_calls"], json!(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_by_seq_never_splits_a_step_and_in_flight_visits_start_again() {
    let mock = provider().await;
    let t = snapshotting().await;
    t.save(&research_pipeline(&mock.url)).await;
    let source = t.run("research", json!({ "topic": "tides" })).await;
    let events = t.events(&source.id).await;
    // The seq of the third section's start: the fork copies everything
    // before the fourth start, so the three started sections are in
    // flight at the fork point and start again at attempt 1.
    let starts: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "node_started" && e.node.as_deref() == Some("section"))
        .map(|e| e.seq)
        .collect();
    let forked = t
        .engine
        .fork_run(
            &source.id,
            ForkSpec {
                from: ForkPoint::Seq(starts[2] as u64),
                changes: ForkChanges::default(),
                version: None,
            },
        )
        .await
        .unwrap();
    let run = wait(&t, &forked.run_id).await;
    assert_eq!(run.forked_from.as_ref().unwrap().seq, starts[2]);
    assert_eq!(mock.requests().len(), 13);
    let mine = t.events(&run.id).await;
    let restarts = mine
        .iter()
        .skip(starts[2] as usize)
        .filter(|e| e.kind == "node_started" && e.node.as_deref() == Some("section"))
        .count();
    assert_eq!(restarts, 5);
    assert!(
        mine.iter()
            .filter(|e| e.kind == "node_started")
            .all(|e| e.payload["attempt"] == json!(1))
    );
    assert_eq!(run.context, source.context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_is_refused_when_the_target_lacks_the_join_or_the_request_does_not_fit() {
    let mock = provider().await;
    let t = engine().await;
    t.save(&research_pipeline(&mock.url)).await;
    let source = t.run("research", json!({ "topic": "tides" })).await;
    // Version 2: the sections go straight to the summary; no join.
    let no_join = research_pipeline(&mock.url).replace(
        "  - { from: section, to: join }\n  - { from: join, to: summary }\n",
        "  - { from: section, to: summary }\n",
    );
    let start = no_join.find("  - ref: join").unwrap();
    let end = no_join.find("  - ref: summary").unwrap();
    let no_join = format!("{}{}", &no_join[..start], &no_join[end..]);
    t.save(&no_join).await;

    // With changes too: the changed target is checked before it is saved.
    for (node, changes) in [
        ("summary", ForkChanges::default()),
        ("section", ForkChanges::default()),
        ("summary", summary_change()),
    ] {
        match t
            .engine
            .fork_run(&source.id, at(node, changes, Some(2)))
            .await
        {
            Err(Error::ForkIncompatible(missing)) => {
                assert!(
                    missing.iter().any(|m| m.contains("`join`")),
                    "{node}: {missing:?}"
                )
            }
            other => panic!("{node}: {other:?}"),
        }
    }
    let field = |r: Result<_, Error>| match r {
        Err(Error::InvalidRequest { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let fork = |spec| t.engine.fork_run(&source.id, spec);
    assert_eq!(
        field(fork(at("nowhere", ForkChanges::default(), None)).await),
        "from.node"
    );
    let seq = |n| ForkSpec {
        from: ForkPoint::Seq(n),
        changes: ForkChanges::default(),
        version: None,
    };
    assert_eq!(field(fork(seq(0)).await), "from.seq");
    assert_eq!(field(fork(seq(10_000)).await), "from.seq");
    assert_eq!(
        field(fork(at("summary", ForkChanges::default(), Some(9))).await),
        "version"
    );
    let unknown = ForkChanges {
        model_profiles: vec![json!({ "ref": "nope", "provider": "openai", "model": "x" })],
        ..ForkChanges::default()
    };
    assert_eq!(
        field(fork(at("summary", unknown, None)).await),
        "changes.model_profiles[0].ref"
    );
    let bad = ForkChanges {
        prompt_specs: vec![json!({ "ref": "summary_p", "template": "{{state.x" })],
        ..ForkChanges::default()
    };
    assert!(matches!(
        fork(at("summary", bad, None)).await,
        Err(Error::InvalidDefinition(_))
    ));
    assert!(matches!(
        t.engine
            .fork_run("run_missing", at("summary", ForkChanges::default(), None))
            .await,
        Err(Error::NotFound(_))
    ));
    // Nothing was written: no run besides the source, no version 3.
    let runs = t
        .engine
        .store()
        .list_runs(&Default::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    assert!(
        t.engine
            .store()
            .get_def(&t.project, "research", Some(3))
            .await
            .unwrap()
            .is_none()
    );
}
