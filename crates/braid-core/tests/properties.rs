//! Property tests of the token algebra: random graphs of tasks, fan-outs and
//! joins, driven with random completion orders, failures and duplicate
//! deliveries. Invariants: every token ends exactly once, each join fires at
//! most once per sibling set (exactly once when the run completes), the run
//! ends exactly once, nothing is stuck, and replay equals live (checked by the
//! harness after every step, from events alone and from snapshot + tail).

mod common;

use braid_core::definition::Bundle;
use braid_core::event::EventBody;
use braid_core::graph::{self, Env};
use braid_core::machine;
use braid_core::protocol::{Command, Dispatch, Input, Outcome};
use braid_core::state::{RunState, RunStatus};
use common::Run;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
enum Block {
    Pure,
    Llm,
    Seq(Box<Block>, Box<Block>),
    Fan {
        n: u64,
        body: Box<Block>,
        fan_in: u8,
        m: u64,
        strategy: u8,
        early: u8,
    },
}

fn block() -> impl Strategy<Value = Block> {
    let leaf = prop_oneof![Just(Block::Pure), Just(Block::Llm)];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Block::Seq(Box::new(a), Box::new(b))),
            (0u64..4, inner, 0u8..3, 1u64..4, 0u8..4, 0u8..3).prop_map(
                |(n, body, fan_in, m, strategy, early)| Block::Fan {
                    n,
                    body: Box::new(body),
                    fan_in,
                    m,
                    strategy,
                    early
                }
            ),
        ]
    })
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Value>,
    transitions: Vec<Value>,
}

impl Builder {
    fn node(&mut self, mut v: Value) -> String {
        let r = format!("n{}", self.nodes.len());
        v["ref"] = json!(r);
        self.nodes.push(v);
        r
    }

    /// Returns (entry, exit) node refs.
    fn build(&mut self, b: &Block) -> (String, String) {
        match b {
            Block::Pure => {
                let k = self.nodes.len();
                let r = self.node(json!({ "action": { "kind": "update_context", "updates": [ { "path": "state.v", "expr": format!("{k}") } ] } }));
                (r.clone(), r)
            }
            Block::Llm => {
                let r = self
                    .node(json!({ "action": "call", "output_mapping": { "state.v": "result.v" } }));
                (r.clone(), r)
            }
            Block::Seq(a, b) => {
                let (a_in, a_out) = self.build(a);
                let (b_in, b_out) = self.build(b);
                self.transitions.push(json!({ "from": a_out, "to": b_in }));
                (a_in, b_out)
            }
            Block::Fan {
                n,
                body,
                fan_in,
                m,
                strategy,
                early,
            } => {
                let f = self.node(json!({ "action": { "kind": "update_context" } }));
                let (b_in, b_out) = self.build(body);
                let fan_in = match (fan_in, n) {
                    (_, 0) | (0, _) => json!("all"),
                    (1, _) => json!("any"),
                    _ => json!({ "m_of_n": (*m).min(*n) }),
                };
                let strategy =
                    ["append", "collect", "keyed_by_branch", "last_wins"][*strategy as usize];
                let early = ["cancel", "abandon", "allow_late_merge"][*early as usize];
                let j = self.node(json!({
                    "action": { "kind": "update_context" }, "fan_in": fan_in, "joins": f, "on_early_complete": early,
                    "merge": { "source": "v", "target": "state.v", "strategy": strategy },
                }));
                self.transitions
                    .push(json!({ "from": f, "to": b_in, "spawn_count": n }));
                self.transitions.push(json!({ "from": b_out, "to": j }));
                (f, j)
            }
        }
    }
}

fn bundle_yaml(b: &Block) -> String {
    let mut builder = Builder::default();
    let (entry, _) = builder.build(b);
    let bundle = json!({
        "name": "prop", "initial_node": entry, "nodes": builder.nodes, "transitions": builder.transitions,
        "actions": [ { "ref": "call", "kind": "llm_call", "prompt": "p", "model": "m" } ],
        "prompt_specs": [ { "ref": "p", "template": "x" } ],
        "model_profiles": [ { "ref": "m", "provider": "scripted", "model": "s", "script": { "responses": ["x"] } } ],
    });
    serde_json::to_string(&bundle).unwrap()
}

/// Token statuses never change once ended; returns each token's end count.
fn check_token_lifecycles(run: &Run) {
    let mut st = RunState::new("run_test");
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    for e in &run.log {
        let before: Vec<_> = st.tokens.iter().map(|t| t.status).collect();
        st.apply_event(&run.g, e);
        for (i, t) in st.tokens.iter().enumerate() {
            if let Some(b) = before.get(i) {
                if !b.is_live() {
                    assert_eq!(
                        *b, t.status,
                        "token {} changed after it ended (event {:?})",
                        t.id, e.body
                    );
                } else if !t.status.is_live() {
                    *ends.entry(t.id.clone()).or_default() += 1;
                }
            } else if !t.status.is_live() {
                *ends.entry(t.id.clone()).or_default() += 1;
            }
        }
    }
    for t in &st.tokens {
        assert!(
            !t.status.is_live(),
            "token {} still live after the run ended",
            t.id
        );
        assert_eq!(
            ends.get(&t.id),
            Some(&1),
            "token {} must end exactly once",
            t.id
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_and_orders_keep_the_invariants(b in block(), choices in prop::collection::vec(any::<u32>(), 200), fail_mask in any::<u64>(), budget in prop_oneof![Just(usize::MAX), 1usize..6]) {
        let yaml = bundle_yaml(&b);
        let bundle = Bundle::parse(&yaml).unwrap();
        prop_assume!(graph::compile(&bundle, &Env::default()).is_ok());
        let mut run = Run::new(&yaml);
        // A small budget cuts steps anywhere; results and Continue then
        // arrive in any interleaving.
        run.budget = budget;
        let step = run.start(json!({}));
        let mut pending: Vec<Dispatch> = dispatches(&step.commands);
        let mut more = machine::has_pending(&run.st);
        let mut delivered: Vec<Input> = Vec::new();
        let mut k = 0usize;
        let mut guard = 0;
        while run.st.status == Some(RunStatus::Running) {
            guard += 1;
            prop_assert!(guard < 10_000, "no progress");
            prop_assert!(!pending.is_empty() || more, "run is stuck: running with nothing in flight");
            let c = choices[k % choices.len()] as usize;
            k += 1;
            let input = if more && (pending.is_empty() || c.is_multiple_of(3)) {
                Input::Continue
            } else if c.is_multiple_of(5) && !delivered.is_empty() {
                delivered[c / 5 % delivered.len()].clone() // duplicate delivery
            } else {
                let d = pending.remove(c % pending.len());
                let fail = (fail_mask >> (k % 64)) & 1 == 1 && c.is_multiple_of(7);
                let outcome = if fail {
                    Outcome::Failure { error: braid_core::event::ErrorInfo::new(braid_types::ErrorCode::InvalidRequest, "x"), retry_after_ms: None, duration_ms: 1, usage: None, llm: None }
                } else {
                    Outcome::Success { result: json!({ "v": c % 100 }), usage: None, duration_ms: 1, llm: None }
                };
                Input::TaskResult { token: d.token.clone(), attempt: d.attempt, outcome }
            };
            if input != Input::Continue {
                delivered.push(input.clone());
            }
            let step = run.apply(input);
            prop_assert!(!step.more || machine::has_pending(&run.st), "a step cut short leaves pending tokens");
            more = machine::has_pending(&run.st);
            pending.extend(dispatches(&step.commands));
        }
        // Results still in flight after the end are ignored.
        for d in pending {
            let step = run.apply(Input::TaskResult { token: d.token, attempt: d.attempt, outcome: Outcome::Success { result: json!({ "v": 1 }), usage: None, duration_ms: 1, llm: None } });
            prop_assert!(step.events.is_empty());
        }
        check_token_lifecycles(&run);
        let mut fired: BTreeMap<String, usize> = BTreeMap::new();
        for e in &run.log {
            if let EventBody::FanInCompleted { sibling_set, .. } = &e.body {
                *fired.entry(sibling_set.clone()).or_default() += 1;
            }
        }
        prop_assert!(fired.values().all(|&n| n == 1), "a join fired twice: {:?}", fired);
        if run.st.status == Some(RunStatus::Completed) {
            // Every joined set fired, unless it lived in a branch left behind
            // by an `abandon` join or cancelled by a `cancel` join.
            let st = &run.st;
            let abandoned = |mut scope: Option<usize>| {
                while let Some(s) = scope {
                    if st.scopes[s].abandoned {
                        return true;
                    }
                    scope = st.scopes[s].parent;
                }
                false
            };
            let joined: BTreeSet<String> = st
                .sets
                .iter()
                .filter(|s| {
                    let origin = st.tokens[s.origin].scope;
                    run.g.joined_by[s.fan_out_node].is_some() && !abandoned(origin) && !st.in_cancelled_branch(origin)
                })
                .map(|s| s.id.clone())
                .collect();
            for s in joined {
                prop_assert_eq!(fired.get(&s), Some(&1), "set {} never fired", s);
            }
        }
    }
}

fn dispatches(commands: &[Command]) -> Vec<Dispatch> {
    commands
        .iter()
        .filter_map(|c| {
            if let Command::Dispatch(d) = c {
                Some(d.clone())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn merges_do_not_depend_on_arrival_order() {
    // Every permutation of three arrivals gives the same merge (except last_wins).
    for strategy in ["append", "collect", "keyed_by_branch"] {
        let mut results = BTreeSet::new();
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let b = Block::Fan {
                n: 3,
                body: Box::new(Block::Llm),
                fan_in: 0,
                m: 3,
                strategy: ["append", "collect", "keyed_by_branch"]
                    .iter()
                    .position(|s| *s == strategy)
                    .unwrap() as u8,
                early: 0,
            };
            let mut run = Run::new(&bundle_yaml(&b));
            let step = run.start(json!({}));
            let ds = dispatches(&step.commands);
            for i in order {
                run.apply(Input::TaskResult {
                    token: ds[i].token.clone(),
                    attempt: 1,
                    outcome: Outcome::Success {
                        result: json!({ "v": [i * 10] }),
                        usage: None,
                        duration_ms: 1,
                        llm: None,
                    },
                });
            }
            assert_eq!(
                run.st.status,
                Some(RunStatus::Completed),
                "{strategy} {order:?}"
            );
            let merged = run.st.context.state["v"].to_string();
            for part in ["0", "10", "20"] {
                assert!(
                    merged.contains(part),
                    "{strategy} {order:?}: branch {part} missing from {merged}"
                );
            }
            results.insert(merged);
        }
        assert_eq!(results.len(), 1, "{strategy}: {results:?}");
    }
}
