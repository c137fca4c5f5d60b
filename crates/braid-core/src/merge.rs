//! Fan-in merging (docs/definitions.md): how a [`MergeStrategy`] combines the
//! values the arrived members of a sibling set contribute. Pure policy: the
//! machine gathers the contributions and writes the result.

use crate::definition::MergeStrategy;
use serde_json::{Map, Value};

/// One arrived member's value for a merge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution<'v> {
    /// The member's index in its sibling set.
    pub branch_index: u64,
    /// Its place in the order of arrivals (0 = first); only `last_wins` reads it.
    pub arrival: usize,
    /// The value at the merge's `source` in the member's `_branch.output`.
    pub value: &'v Value,
}

impl MergeStrategy {
    /// Combines `contributions` (in any order: they are taken in
    /// branch-index order, and only `last_wins` depends on arrival order).
    /// No contribution gives the strategy's empty value (`[]`, `{}` or
    /// `null`). A value the strategy cannot combine gives the reason, which
    /// the join reports as `MERGE_ERROR`.
    pub fn combine(self, contributions: &[Contribution<'_>]) -> Result<Value, String> {
        if self == MergeStrategy::LastWins {
            return Ok(contributions
                .iter()
                .max_by_key(|c| c.arrival)
                .map(|c| c.value.clone())
                .unwrap_or(Value::Null));
        }
        let mut by_index = contributions.to_vec();
        by_index.sort_by_key(|c| c.branch_index);
        Ok(match self {
            MergeStrategy::Append => {
                let mut out = Vec::with_capacity(by_index.len());
                for c in by_index {
                    match c.value {
                        Value::Array(items) => out.extend(items.iter().cloned()),
                        other => out.push(other.clone()),
                    }
                }
                Value::Array(out)
            }
            MergeStrategy::Collect => {
                Value::Array(by_index.into_iter().map(|c| c.value.clone()).collect())
            }
            MergeStrategy::MergeObject => {
                let mut out = Map::new();
                for c in by_index {
                    let Value::Object(fields) = c.value else {
                        return Err(format!(
                            "merge_object needs objects, but branch {} has {}",
                            c.branch_index,
                            type_name(c.value)
                        ));
                    };
                    out.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                Value::Object(out)
            }
            MergeStrategy::KeyedByBranch => Value::Object(
                by_index
                    .into_iter()
                    .map(|c| (c.branch_index.to_string(), c.value.clone()))
                    .collect(),
            ),
            MergeStrategy::LastWins => unreachable!("handled above"),
        })
    }

    /// The strategy's name in definitions and events.
    pub fn name(self) -> &'static str {
        match self {
            MergeStrategy::Append => "append",
            MergeStrategy::Collect => "collect",
            MergeStrategy::MergeObject => "merge_object",
            MergeStrategy::KeyedByBranch => "keyed_by_branch",
            MergeStrategy::LastWins => "last_wins",
        }
    }
}

/// How errors name the JSON type of a value ("a list", "an object", …).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ALL: [MergeStrategy; 5] = [
        MergeStrategy::Append,
        MergeStrategy::Collect,
        MergeStrategy::MergeObject,
        MergeStrategy::KeyedByBranch,
        MergeStrategy::LastWins,
    ];

    /// Contributions from `(branch_index, value)` pairs, arriving in the order given.
    fn arrived(values: &[(u64, Value)]) -> Vec<Contribution<'_>> {
        values
            .iter()
            .enumerate()
            .map(|(arrival, (branch_index, value))| Contribution {
                branch_index: *branch_index,
                arrival,
                value,
            })
            .collect()
    }

    #[test]
    fn each_strategy_combines_in_branch_index_order() {
        // Branch 2 arrives first, branch 0 last; branch 1 contributed nothing.
        let values = [
            (2, json!({ "a": 2, "c": 2 })),
            (0, json!({ "a": 0, "b": 0 })),
        ];
        let members = arrived(&values);
        use MergeStrategy::*;
        assert_eq!(
            Collect.combine(&members),
            Ok(json!([{ "a": 0, "b": 0 }, { "a": 2, "c": 2 }]))
        );
        assert_eq!(
            MergeObject.combine(&members),
            Ok(json!({ "a": 2, "b": 0, "c": 2 })),
            "higher index wins"
        );
        assert_eq!(
            KeyedByBranch.combine(&members),
            Ok(json!({ "0": { "a": 0, "b": 0 }, "2": { "a": 2, "c": 2 } }))
        );
        assert_eq!(
            LastWins.combine(&members),
            Ok(json!({ "a": 0, "b": 0 })),
            "the latest arrival, whatever its index"
        );

        // Append flattens lists one level and keeps other values whole.
        let values = [(1, json!([3, [4]])), (0, json!("x")), (2, json!([]))];
        assert_eq!(Append.combine(&arrived(&values)), Ok(json!(["x", 3, [4]])));
        assert_eq!(
            Collect.combine(&arrived(&values)),
            Ok(json!(["x", [3, [4]], []]))
        );

        // merge_object refuses a non-object, naming the first such branch by index.
        let values = [(3, json!([1])), (1, json!(5)), (0, json!({}))];
        assert_eq!(
            MergeObject.combine(&arrived(&values)),
            Err("merge_object needs objects, but branch 1 has a number".to_string())
        );

        // Nothing arrived: each strategy's empty value.
        assert_eq!(Append.combine(&[]), Ok(json!([])));
        assert_eq!(Collect.combine(&[]), Ok(json!([])));
        assert_eq!(MergeObject.combine(&[]), Ok(json!({})));
        assert_eq!(KeyedByBranch.combine(&[]), Ok(json!({})));
        assert_eq!(LastWins.combine(&[]), Ok(Value::Null));

        let names: Vec<&str> = ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "append",
                "collect",
                "merge_object",
                "keyed_by_branch",
                "last_wins"
            ]
        );
        for s in ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.name()));
        }
    }

    fn member_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        prop_oneof![
            leaf.clone(),
            prop::collection::vec(leaf.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", leaf, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    }

    /// Members with distinct branch indexes (some missing), and two arrival orders.
    fn members_and_orders() -> impl Strategy<Value = (Vec<(u64, Value)>, Vec<usize>, Vec<usize>)> {
        prop::collection::btree_map(0u64..12, member_value(), 0..7).prop_flat_map(|m| {
            let members: Vec<(u64, Value)> = m.into_iter().collect();
            let order: Vec<usize> = (0..members.len()).collect();
            (
                Just(members),
                Just(order.clone()).prop_shuffle(),
                Just(order).prop_shuffle(),
            )
        })
    }

    fn in_order(members: &[(u64, Value)], order: &[usize]) -> Vec<(u64, Value)> {
        order.iter().map(|&k| members[k].clone()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn only_last_wins_depends_on_arrival_order((members, first, second) in members_and_orders()) {
            let first = in_order(&members, &first);
            let second = in_order(&members, &second);
            for strategy in ALL {
                let a = strategy.combine(&arrived(&first));
                let b = strategy.combine(&arrived(&second));
                if strategy == MergeStrategy::LastWins {
                    prop_assert_eq!(a, Ok(first.last().map(|m| m.1.clone()).unwrap_or(Value::Null)));
                    prop_assert_eq!(b, Ok(second.last().map(|m| m.1.clone()).unwrap_or(Value::Null)));
                } else {
                    prop_assert_eq!(&a, &b, "{} depends on arrival order", strategy.name());
                    let collected = MergeStrategy::Collect.combine(&arrived(&first)).unwrap();
                    prop_assert_eq!(collected.as_array().map(Vec::len), Some(members.len()));
                }
            }
        }
    }
}
