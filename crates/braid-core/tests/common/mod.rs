//! Shared harness: a run driven through the pure core, checked after every
//! step (contiguous seq, ends once, replay equals live).
#![allow(dead_code)]

use braid_core::definition::{Bundle, Limits};
use braid_core::event::{ErrorInfo, Event};
use braid_core::graph::{self, Env, Graph};
use braid_core::machine;
use braid_core::protocol::{Command, Dispatch, Input, Outcome, Step};
use braid_core::state::RunState;
use serde_json::Value;

pub fn graph(yaml: &str) -> Graph {
    let bundle = Bundle::parse(yaml).expect("bundle parses");
    match graph::compile(&bundle, &Env::default()) {
        Ok(c) => c.graph,
        Err(errors) => panic!("invalid: {errors:#?}"),
    }
}

/// A run under test: every step is checked against a rebuild from events.
pub struct Run {
    pub g: Graph,
    pub st: RunState,
    pub log: Vec<Event>,
    pub now: i64,
    /// Events per step ([`machine::apply_bounded`]); unbounded by default.
    pub budget: usize,
}

impl Run {
    pub fn new(yaml: &str) -> Run {
        Run {
            g: graph(yaml),
            st: RunState::new("run_test"),
            log: Vec::new(),
            now: 1_000,
            budget: usize::MAX,
        }
    }

    pub fn apply(&mut self, input: Input) -> Step {
        self.now += 10;
        // A snapshot taken before the step, serialized as it is stored.
        let snapshot: RunState =
            serde_json::from_value(serde_json::to_value(&self.st).unwrap()).unwrap();
        let step = machine::apply_bounded(&mut self.st, &self.g, input, self.now, self.budget);
        let from_snapshot = snapshot.replay(&self.g, &step.events);
        assert_eq!(from_snapshot, self.st, "snapshot + tail must equal live");
        self.log.extend(step.events.iter().cloned());
        // Invariants after every step: contiguous seq, replay equals live,
        // no event after the final one.
        for (i, e) in self.log.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "seq must be contiguous");
        }
        let finals = self.log.iter().filter(|e| e.body.is_final()).count();
        assert!(finals <= 1, "a run ends exactly once");
        if finals == 1 {
            assert!(
                self.log.last().unwrap().body.is_final(),
                "no event follows the final one"
            );
        }
        assert_eq!(
            RunState::rebuild("run_test", &self.g, &self.log),
            self.st,
            "replay must equal live"
        );
        step
    }

    pub fn start(&mut self, input: Value) -> Step {
        self.apply(Input::Start {
            input,
            limits: Limits::default(),
            artifacts: None,
        })
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.log.iter().map(|e| e.body.kind()).collect()
    }
}

pub fn dispatches(step: &Step) -> Vec<Dispatch> {
    step.commands
        .iter()
        .filter_map(|c| match c {
            Command::Dispatch(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

pub fn ok(result: Value) -> Outcome {
    Outcome::Success {
        result,
        usage: None,
        duration_ms: 5,
        llm: None,
    }
}

pub fn fail(code: &str) -> Outcome {
    Outcome::Failure {
        error: ErrorInfo::new(
            code.parse().expect("a known code"),
            format!("{code} from test"),
        ),
        retry_after_ms: None,
        duration_ms: 5,
        usage: None,
        llm: None,
    }
}
