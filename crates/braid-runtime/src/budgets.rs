//! Budgets (SPEC §5): what the LLM calls of each live run tree have spent,
//! in memory, and the check an attempt makes before it sends its request.
//!
//! A run's spending is its own finished attempts plus its descendants'
//! (decision 70 in docs/decisions.md). An attempt's usage is recorded here
//! when its response arrives, before its concurrency slot is released; the
//! next attempt checks after it got its slot and rate-limit tokens, so with
//! one slot no call starts on a spent budget. Nothing is estimated or
//! reserved: calls in flight at once may overshoot by what they cost.
//!
//! A run tree lives in one process (the owner of its root, on PostgreSQL),
//! so its ledger is this process's. A run adopted after a restart or from
//! a process that is gone is seeded from what the store recorded: its usage
//! total over its descendants, and the cost of its live visits.

use braid_core::definition::Limits;
use braid_core::event::Usage;
use std::collections::HashMap;
use std::sync::Mutex;

/// The ledgers of the live runs of this process, by run id.
#[derive(Default)]
pub(crate) struct Budgets {
    runs: Mutex<HashMap<String, Ledger>>,
}

/// One live run's budget and spending.
#[derive(Debug, Default)]
struct Ledger {
    parent: Option<String>,
    max_cost_usd: Option<f64>,
    max_llm_tokens: Option<u64>,
    /// Spent by the run and its descendants.
    cost_usd: f64,
    llm_tokens: u64,
    /// Token id → cost of that visit's attempts, for nodes with
    /// `execution.max_cost_usd`.
    visits: HashMap<String, f64>,
}

/// What a run starts with: the store's record of its spending (zero for a
/// new run).
#[derive(Debug, Default, Clone)]
pub(crate) struct Seed {
    /// The run's and its descendants' cost so far.
    pub(crate) cost_usd: f64,
    /// The run's and its descendants' LLM tokens so far.
    pub(crate) llm_tokens: u64,
    /// Live visits of nodes with a budget: token id → their cost so far.
    pub(crate) visits: Vec<(String, f64)>,
}

impl Budgets {
    /// Opens the ledger of a live run. A run already open here (a
    /// coordinator replaced after a reload) keeps what it has spent: this
    /// process saw every attempt since it was opened.
    pub(crate) fn open(&self, run_id: &str, parent: Option<&str>, limits: &Limits, seed: Seed) {
        let mut runs = self.runs.lock().expect("budgets lock");
        let ledger = runs.entry(run_id.to_string()).or_insert_with(|| Ledger {
            cost_usd: seed.cost_usd,
            llm_tokens: seed.llm_tokens,
            visits: seed.visits.into_iter().collect(),
            ..Ledger::default()
        });
        ledger.parent = parent.map(str::to_string);
        ledger.max_cost_usd = limits.max_cost_usd;
        ledger.max_llm_tokens = limits.max_llm_tokens;
    }

    /// The run has ended or left this process. Its spending stays in its
    /// ancestors'.
    pub(crate) fn close(&self, run_id: &str) {
        self.runs.lock().expect("budgets lock").remove(run_id);
    }

    /// A child's limits: its definition's, each budget no larger than what
    /// is left of the parent's (and so of every ancestor's).
    pub(crate) fn child_limits(&self, parent: &str, own: Limits) -> Limits {
        let runs = self.runs.lock().expect("budgets lock");
        let (mut cost, mut tokens) = (None::<f64>, None::<u64>);
        for (_, ledger) in chain(&runs, parent) {
            if let Some(max) = ledger.max_cost_usd {
                let left = (max - ledger.cost_usd).max(0.0);
                cost = Some(cost.map_or(left, |c| c.min(left)));
            }
            if let Some(max) = ledger.max_llm_tokens {
                let left = max.saturating_sub(ledger.llm_tokens);
                tokens = Some(tokens.map_or(left, |t| t.min(left)));
            }
        }
        Limits {
            max_cost_usd: min_of(own.max_cost_usd, cost, f64::min),
            max_llm_tokens: min_of(own.max_llm_tokens, tokens, u64::min),
            ..own
        }
    }

    /// Records the usage of an attempt whose response arrived: in its run,
    /// every ancestor, and, when its node has a budget, its visit.
    pub(crate) fn record(&self, run_id: &str, token_id: &str, node_budget: bool, usage: &Usage) {
        let tokens = usage.input_tokens + usage.output_tokens;
        if tokens == 0 && usage.cost_usd == 0.0 {
            return;
        }
        let mut runs = self.runs.lock().expect("budgets lock");
        if node_budget && let Some(ledger) = runs.get_mut(run_id) {
            *ledger.visits.entry(token_id.to_string()).or_default() += usage.cost_usd;
        }
        let mut next = Some(run_id.to_string());
        let mut depth = 0;
        while let Some(id) = next.take() {
            let Some(ledger) = runs.get_mut(&id) else {
                break;
            };
            ledger.cost_usd += usage.cost_usd;
            ledger.llm_tokens += tokens;
            depth += 1;
            if depth <= MAX_CHAIN {
                next = ledger.parent.clone();
            }
        }
    }

    /// The first budget an attempt of `token_id` (a visit of `node`) would
    /// break by sending its request, if any: its node's for this visit,
    /// then its run's, then each ancestor's, at or over its limit.
    pub(crate) fn check(
        &self,
        run_id: &str,
        token_id: &str,
        node: &str,
        node_budget: Option<f64>,
    ) -> Option<Exceeded> {
        let runs = self.runs.lock().expect("budgets lock");
        if let Some(max) = node_budget {
            let spent = runs
                .get(run_id)
                .and_then(|l| l.visits.get(token_id))
                .copied()
                .unwrap_or(0.0);
            if spent >= max {
                return Some(Exceeded {
                    budget: format!("execution.max_cost_usd of node {node}"),
                    spent: usd(spent),
                    limit: usd(max),
                });
            }
        }
        for (owner, ledger) in chain(&runs, run_id) {
            let whose = if owner == run_id {
                format!("run {owner}")
            } else {
                format!("run {owner} (an ancestor of run {run_id})")
            };
            if let Some(max) = ledger.max_cost_usd
                && ledger.cost_usd >= max
            {
                return Some(Exceeded {
                    budget: format!("limits.max_cost_usd of {whose}"),
                    spent: usd(ledger.cost_usd),
                    limit: usd(max),
                });
            }
            if let Some(max) = ledger.max_llm_tokens
                && ledger.llm_tokens >= max
            {
                return Some(Exceeded {
                    budget: format!("limits.max_llm_tokens of {whose}"),
                    spent: format!("{} tokens", ledger.llm_tokens),
                    limit: format!("{max} tokens"),
                });
            }
        }
        None
    }
}

/// Runs nest at most 32 deep (`MAX_DEPTH`); a longer chain is a cycle.
const MAX_CHAIN: usize = 64;

/// The ledgers of a run and its ancestors live here, nearest first.
fn chain<'a>(runs: &'a HashMap<String, Ledger>, run_id: &'a str) -> Vec<(&'a str, &'a Ledger)> {
    let mut out = Vec::new();
    let mut next = runs.get_key_value(run_id);
    while let Some((id, ledger)) = next {
        out.push((id.as_str(), ledger));
        if out.len() > MAX_CHAIN {
            break;
        }
        next = ledger.parent.as_deref().and_then(|p| runs.get_key_value(p));
    }
    out
}

fn min_of<T: Copy>(a: Option<T>, b: Option<T>, min: fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(min(a, b)),
        (a, b) => a.or(b),
    }
}

/// An amount in USD as a user reads it: up to six decimals, no float noise.
fn usd(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} USD")
}

/// A budget an attempt found spent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exceeded {
    /// Which budget: `limits.max_cost_usd of run run_…`, `execution.max_cost_usd of node n`.
    pub(crate) budget: String,
    /// How much is spent, with its unit.
    pub(crate) spent: String,
    /// The limit, with its unit.
    pub(crate) limit: String,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "budget exceeded: {} is spent ({} spent of {}); the call was not sent. Raise the limit, or route `on: failure` (e.g. to a cheaper model)",
            self.budget, self.spent, self.limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cost: f64, tokens: u64) -> Usage {
        Usage {
            input_tokens: tokens,
            cost_usd: cost,
            ..Usage::default()
        }
    }

    #[test]
    fn spending_reaches_every_ancestor_and_children_get_what_is_left() {
        let b = Budgets::default();
        let root = Limits {
            max_cost_usd: Some(1.0),
            ..Limits::default()
        };
        b.open("run_a", None, &root, Seed::default());
        b.record("run_a", "tk_1", false, &usage(0.25, 10));
        let child = b.child_limits(
            "run_a",
            Limits {
                max_cost_usd: Some(2.0),
                max_llm_tokens: Some(100),
                ..Limits::default()
            },
        );
        assert_eq!(child.max_cost_usd, Some(0.75));
        assert_eq!(child.max_llm_tokens, Some(100));
        b.open("run_b", Some("run_a"), &child, Seed::default());
        b.record("run_b", "tk_1", false, &usage(0.5, 10));
        assert_eq!(b.check("run_b", "tk_2", "n", None), None);
        // The parent spends the rest: the child is stopped by its ancestor.
        b.record("run_a", "tk_2", false, &usage(0.25, 10));
        let e = b.check("run_b", "tk_2", "n", None).expect("spent");
        assert_eq!(
            e.budget,
            "limits.max_cost_usd of run run_a (an ancestor of run run_b)"
        );
        assert_eq!((e.spent.as_str(), e.limit.as_str()), ("1 USD", "1 USD"));
        b.close("run_b");
        assert!(b.check("run_b", "tk_4", "n", None).is_none());
    }

    #[test]
    fn a_visit_has_its_own_budget_and_a_seed_counts() {
        let b = Budgets::default();
        let seed = Seed {
            cost_usd: 0.1,
            llm_tokens: 5,
            visits: vec![("tk_7".into(), 0.1)],
        };
        let limits = Limits {
            max_llm_tokens: Some(20),
            ..Limits::default()
        };
        b.open("run_a", None, &limits, seed);
        let e = b.check("run_a", "tk_7", "judge", Some(0.1)).expect("spent");
        assert_eq!(e.budget, "execution.max_cost_usd of node judge");
        assert_eq!(e.spent, "0.1 USD");
        assert!(b.check("run_a", "tk_8", "judge", Some(0.1)).is_none());
        b.record("run_a", "tk_8", true, &usage(0.05, 15));
        let e = b.check("run_a", "tk_9", "judge", Some(0.1)).expect("spent");
        assert_eq!(e.budget, "limits.max_llm_tokens of run run_a");
        assert_eq!(
            (e.spent.as_str(), e.limit.as_str()),
            ("20 tokens", "20 tokens")
        );
        // Reopening (a reload) keeps what was spent here.
        b.open("run_a", None, &Limits::default(), Seed::default());
        assert!(b.check("run_a", "tk_8", "judge", Some(0.05)).is_some());
    }
}
