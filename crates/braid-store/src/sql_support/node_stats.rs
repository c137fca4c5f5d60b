//! The run view's per-node statistics ([`NodeStats`]) from the rows of a
//! backend's grouping query.
//!
//! The backend groups the run's token rows by (node, status, duration) in
//! SQL, one row per group, ordered by the node's position in the graph and
//! then status, with one row without a group for a node never visited.
//! Durations are whole milliseconds, so the groups of one node are a
//! histogram of its durations and the median is read from them here,
//! without ranking every token row in SQL.

use crate::{NodeStats, UsageTotals};

/// One row of the grouping query.
pub struct NodeStatsRow {
    /// The node's ref.
    pub node: String,
    /// `None` for a node without a visit (the query's NULL status).
    pub group: Option<VisitGroup>,
}

/// The visits of one node with one status and one duration, summed.
pub struct VisitGroup {
    pub status: String,
    /// `ended_at - started_at` in ms; `None` for visits without both.
    pub duration: Option<i64>,
    /// Token rows in the group.
    pub visits: u64,
    pub attempts: u64,
    /// `sum(max(attempts - 1, 0))`.
    pub retries: u64,
    pub usage: UsageTotals,
}

/// One [`NodeStats`] per node, in the rows' order; a node's rows must be
/// consecutive.
pub fn node_stats(rows: Vec<NodeStatsRow>) -> Vec<NodeStats> {
    let mut stats: Vec<NodeStats> = Vec::new();
    // The current node's durations: (ms, visits).
    let mut durations: Vec<(u64, u64)> = Vec::new();
    for NodeStatsRow { node, group } in rows {
        if stats.last().is_none_or(|s| s.node != node) {
            if let Some(done) = stats.last_mut() {
                done.duration_median_ms = median(&mut durations);
            }
            durations.clear();
            stats.push(NodeStats {
                node,
                visits: Vec::new(),
                attempts: 0,
                retries: 0,
                failures: 0,
                duration_sum_ms: 0,
                duration_median_ms: None,
                duration_max_ms: None,
                usage: UsageTotals::default(),
            });
        }
        let s = stats.last_mut().expect("pushed above");
        let Some(g) = group else {
            continue;
        };
        if g.status == "failed" {
            s.failures += g.visits;
        }
        match s.visits.last_mut() {
            Some((last, count)) if *last == g.status => *count += g.visits,
            _ => s.visits.push((g.status, g.visits)),
        }
        s.attempts += g.attempts;
        s.retries += g.retries;
        if let Some(d) = g.duration {
            let d = d.max(0) as u64;
            s.duration_sum_ms += d * g.visits;
            s.duration_max_ms = s.duration_max_ms.max(Some(d));
            durations.push((d, g.visits));
        }
        s.usage.llm_calls += g.usage.llm_calls;
        s.usage.input_tokens += g.usage.input_tokens;
        s.usage.output_tokens += g.usage.output_tokens;
        s.usage.cost_usd += g.usage.cost_usd;
    }
    if let Some(done) = stats.last_mut() {
        done.duration_median_ms = median(&mut durations);
    }
    stats
}

/// The median of a histogram of durations (the mean of the two middle
/// values for an even count); `None` when it is empty.
fn median(histogram: &mut [(u64, u64)]) -> Option<f64> {
    histogram.sort_unstable();
    let total: u64 = histogram.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    // 1-based positions of the middle value(s).
    let (low, high) = (total.div_ceil(2), total / 2 + 1);
    let at = |position: u64| {
        let mut seen = 0;
        histogram
            .iter()
            .find(|(_, n)| {
                seen += n;
                seen >= position
            })
            .map(|(d, _)| *d as f64)
    };
    Some((at(low)? + at(high)?) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_a_histogram_is_its_middle_value() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [(7, 1)]), Some(7.0));
        // 1, 2, 2, 9: the mean of the two middle values.
        assert_eq!(median(&mut [(9, 1), (2, 2), (1, 1)]), Some(2.0));
        // 1, 3, 3, 3, 10, 10: positions 3 and 4 are both 3.
        assert_eq!(median(&mut [(10, 2), (1, 1), (3, 3)]), Some(3.0));
        // 4, 8: an even count across two groups.
        assert_eq!(median(&mut [(8, 1), (4, 1)]), Some(6.0));
    }
}
