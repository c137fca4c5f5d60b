//! Store records → API bodies.

use braid_api as api;
use braid_store::{ArtifactRecord, EventRecord, Millis, RunRecord, TokenRecord, WorkflowSummary};
use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

/// Milliseconds since the epoch → RFC 3339 UTC with milliseconds.
pub fn time(ms: Millis) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_time(ms: Option<Millis>) -> Option<String> {
    ms.map(time)
}

fn workflow(r: &RunRecord) -> api::WorkflowRef {
    api::WorkflowRef {
        id: r.workflow_id.clone(),
        name: r.workflow_name.clone(),
        version: r.version,
    }
}

/// The stored error, read leniently: a row written by an older version
/// still shows its code and message.
fn error(r: &RunRecord) -> Option<api::RunError> {
    let v = r.error.as_ref()?;
    Some(serde_json::from_value(v.clone()).unwrap_or_else(|_| {
        api::RunError {
            code: v
                .get("code")
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok())
                .unwrap_or(api::ErrorCode::Internal),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            node: None,
            action: None,
            attempt: None,
            retryable: false,
            cause: None,
        }
    }))
}

/// The API form of a store's usage totals.
pub fn usage_totals(u: &braid_store::UsageTotals) -> api::RunUsage {
    api::RunUsage {
        llm_calls: u.llm_calls,
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cost_usd: u.cost_usd,
    }
}

fn usage(r: &RunRecord) -> api::RunUsage {
    serde_json::from_value(r.usage.clone()).unwrap_or_default()
}

fn context(r: &RunRecord) -> api::RunContext {
    let part = |name: &str| match r.context.get(name) {
        Some(v) if !v.is_null() => v.clone(),
        _ => Value::Object(Map::new()),
    };
    api::RunContext {
        input: part("input"),
        state: part("state"),
        output: part("output"),
        artifacts: part("artifacts"),
    }
}

/// The full run body; `usage_total` is summed by the store over the run's tree.
pub fn run(r: &RunRecord, children: Vec<String>, usage_total: api::RunUsage) -> api::Run {
    api::Run {
        id: r.id.clone(),
        project_id: r.project_id.clone(),
        workflow: workflow(r),
        status: r.status,
        context: context(r),
        error: error(r),
        usage: usage(r),
        usage_total,
        limits: serde_json::from_value(r.limits.clone()).unwrap_or_default(),
        parent_run_id: r.parent_run_id.clone(),
        parent_token_id: r.parent_token_id.clone(),
        forked_from: forked_from(r),
        children,
        last_seq: r.last_seq,
        created_at: time(r.created_at),
        started_at: opt_time(r.started_at),
        ended_at: opt_time(r.ended_at),
    }
}

/// A run in a listing.
pub fn run_summary(r: &RunRecord) -> api::RunSummary {
    api::RunSummary {
        id: r.id.clone(),
        project_id: r.project_id.clone(),
        workflow: workflow(r),
        status: r.status,
        error: error(r),
        usage: usage(r),
        parent_run_id: r.parent_run_id.clone(),
        forked_from: forked_from(r),
        created_at: time(r.created_at),
        started_at: opt_time(r.started_at),
        ended_at: opt_time(r.ended_at),
    }
}

fn forked_from(r: &RunRecord) -> Option<api::ForkedFrom> {
    r.forked_from.as_ref().map(|f| api::ForkedFrom {
        run_id: f.run_id.clone(),
        seq: f.seq,
    })
}

/// A token.
pub fn token(t: TokenRecord) -> api::Token {
    api::Token {
        id: t.id,
        node: t.node,
        status: t.status,
        parent_token_id: t.parent_token_id,
        sibling_set: t.sibling_set,
        branch_index: t.branch_index,
        attempts: t.attempts,
        created_at: time(t.created_at),
        started_at: opt_time(t.started_at),
        ended_at: opt_time(t.ended_at),
    }
}

/// An event envelope.
pub fn event(e: EventRecord) -> api::Event {
    api::Event {
        run_id: e.run_id,
        seq: e.seq,
        kind: e.kind,
        ts: time(e.ts),
        token_id: e.token_id,
        node: e.node,
        payload: e.payload,
    }
}

/// An artifact.
pub fn artifact(a: ArtifactRecord) -> api::Artifact {
    api::Artifact {
        id: a.id,
        project_id: a.project_id,
        type_name: a.type_name,
        type_version: a.type_version,
        name: a.name,
        content: a.content,
        created_by_workflow_run_id: a.run_id,
        created_by_node: a.node,
        created_at: time(a.created_at),
    }
}

/// A workflow in a listing.
pub fn workflow_summary(w: WorkflowSummary) -> api::WorkflowSummary {
    api::WorkflowSummary {
        id: w.id,
        name: w.name,
        latest_version: w.latest_version,
        created_at: time(w.created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_millis() {
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(1_767_225_600_125), "2026-01-01T00:00:00.125Z");
    }
}
