//! `GET /api/runs/{id}/tokens/{token_id}`: the node inspector's record of
//! one visit, folded from that token's events (read by the store as one
//! range of the run's events) with large fields put back in place.

use crate::AppState;
use crate::convert;
use crate::error::ApiError;
use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use braid_api::{AttemptDetail, BranchInfo, ErrorBody, LlmCallDetail, RunError, TokenDetail};
use braid_core::event::{ErrorInfo, Event, EventBody, LlmExchange, Millis, Usage};
use braid_store::TokenRecord;
use std::collections::BTreeMap;

/// One node visit with every attempt: input, result, writes, timings, the
/// LLM requests with their rendered messages and raw responses.
#[utoipa::path(
    get, path = "/api/runs/{id}/tokens/{token_id}", tag = "runs",
    operation_id = "get_run_token",
    params(
        ("id" = String, Path, description = "Run id (`run_…`)"),
        ("token_id" = String, Path, description = "Token id (`tk_…`)"),
    ),
    responses(
        (status = 200, description = "The visit, folded from its events", body = TokenDetail),
        (status = 404, description = "`NOT_FOUND`: unknown run or token", body = ErrorBody),
    )
)]
pub async fn get_token(
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<Json<TokenDetail>, ApiError> {
    let store = state.engine.store();
    if store.get_run(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("run `{id}` does not exist")));
    }
    let history = store.token_history(&id, &token_id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "token `{token_id}` does not exist in run `{id}`; GET /api/runs/{id}/tokens lists them"
        ))
    })?;
    let mut events = Vec::with_capacity(history.events.len());
    for e in history.events {
        let mut payload = e.payload;
        braid_runtime::restore_payload(store.as_ref(), &id, e.seq, &e.kind, &mut payload).await?;
        let body = EventBody::from_parts(&e.kind, payload).map_err(|err| {
            ApiError::internal(format!("event {id}#{}: unreadable payload: {err}", e.seq))
        })?;
        events.push(Event {
            seq: e.seq as u64,
            ts: e.ts,
            token_id: e.token_id,
            node: e.node,
            body,
        });
    }
    Ok(Json(fold(&history.token, &events)))
}

/// The inspector's record of a token from its row and its events, in seq
/// order. Pure. Timings (docs/api.md): `queued_at` is when the core queued
/// the attempt (`node_started` of attempt 1, else the previous attempt's
/// `node_retrying`); `started_at` is when the request began waiting for a
/// provider slot (`sent_at − wait_ms`) for an LLM call, else the attempt's
/// `node_started`; `ended_at` is its outcome event; `duration_ms` is the
/// executor's measure (`node_completed`, else the request's), else
/// `ended_at − started_at`.
pub fn fold(token: &TokenRecord, events: &[Event]) -> TokenDetail {
    let mut d = TokenDetail {
        id: token.id.clone(),
        node: token.node.clone(),
        status: token.status.clone(),
        parent_token_id: token.parent_token_id.clone(),
        sibling_set: token.sibling_set.clone(),
        branch: None,
        input: None,
        result: None,
        writes: Vec::new(),
        attempts: Vec::new(),
        child_run_id: None,
        usage: convert::usage_totals(&token.usage),
        first_seq: token.first_seq.or(events.first().map(|e| e.seq as i64)),
        last_seq: token.last_seq.or(events.last().map(|e| e.seq as i64)),
    };
    // Queue time of the next attempt, set by the outcome that scheduled it.
    let mut next_queued: Option<Millis> = None;
    // Each attempt's start, for the durations the events do not carry.
    let mut started: BTreeMap<u32, Millis> = BTreeMap::new();
    for e in events {
        match &e.body {
            EventBody::TokenSpawned {
                index, total, item, ..
            } => {
                d.branch = Some(BranchInfo {
                    index: *index,
                    total: *total,
                    item: item.clone(),
                });
            }
            EventBody::NodeStarted { attempt, input, .. } => {
                if d.input.is_none() {
                    d.input = input.clone();
                }
                let a = attempt_mut(&mut d.attempts, *attempt);
                a.queued_at = a.queued_at.take().or(next_queued.take().map(convert::time));
                a.queued_at.get_or_insert_with(|| convert::time(e.ts));
                a.started_at = Some(convert::time(e.ts));
                started.insert(*attempt, e.ts);
            }
            EventBody::LlmRequest(x) => {
                let a = attempt_mut(&mut d.attempts, x.attempt);
                let start = x.sent_at - x.wait_ms as i64;
                a.started_at = Some(convert::time(start));
                started.insert(x.attempt, start);
                a.wait_ms = Some(x.wait_ms);
                a.duration_ms = Some(x.duration_ms);
                a.llm = Some(llm_detail(x));
            }
            EventBody::NodeCompleted {
                attempt,
                duration_ms,
                result,
                ..
            } => {
                let start = started.get(attempt).copied();
                let a = ended(&mut d.attempts, *attempt, e, start, "completed", None);
                a.duration_ms = Some(*duration_ms);
                d.result = Some(result.clone());
            }
            EventBody::NodeRetrying {
                attempt,
                error,
                usage,
                ..
            } => {
                next_queued = Some(e.ts);
                let start = started.get(attempt).copied();
                let a = ended(&mut d.attempts, *attempt, e, start, "retrying", Some(error));
                fill_usage(a, usage.as_ref());
            }
            EventBody::NodeFailed {
                attempt,
                error,
                usage,
            } => {
                let start = started.get(attempt).copied();
                let a = ended(&mut d.attempts, *attempt, e, start, "failed", Some(error));
                fill_usage(a, usage.as_ref());
            }
            EventBody::ContextUpdated { writes } => {
                d.writes.extend(writes.iter().map(|w| w.path.clone()));
            }
            EventBody::ArtifactCreated { name, .. } => d.writes.push(format!("artifacts.{name}")),
            EventBody::SubworkflowStarted { child_run_id, .. } => {
                d.child_run_id = Some(child_run_id.clone());
            }
            _ => {}
        }
    }
    let unfinished = match token.status.as_str() {
        "cancelled" | "merged" => token.status.as_str(),
        _ => "running",
    };
    for a in &mut d.attempts {
        if a.outcome.is_empty() {
            a.outcome = unfinished.to_string();
        }
    }
    d
}

/// The attempt's entry, created (in attempt order) when first seen.
fn attempt_mut(attempts: &mut Vec<AttemptDetail>, attempt: u32) -> &mut AttemptDetail {
    let i = match attempts.iter().position(|a| a.attempt == attempt) {
        Some(i) => i,
        None => {
            attempts.push(AttemptDetail {
                attempt,
                queued_at: None,
                started_at: None,
                ended_at: None,
                duration_ms: None,
                wait_ms: None,
                outcome: String::new(),
                error: None,
                llm: None,
            });
            attempts.sort_by_key(|a| a.attempt);
            attempts
                .iter()
                .position(|a| a.attempt == attempt)
                .expect("just added")
        }
    };
    &mut attempts[i]
}

/// Records an attempt's outcome event.
fn ended<'a>(
    attempts: &'a mut Vec<AttemptDetail>,
    attempt: u32,
    e: &Event,
    start: Option<Millis>,
    outcome: &str,
    error: Option<&ErrorInfo>,
) -> &'a mut AttemptDetail {
    let a = attempt_mut(attempts, attempt);
    a.ended_at = Some(convert::time(e.ts));
    a.outcome = outcome.to_string();
    a.error = error.map(run_error);
    if a.duration_ms.is_none()
        && let Some(start) = start
    {
        a.duration_ms = Some(e.ts.saturating_sub(start).max(0) as u64);
    }
    a
}

/// A failed attempt's usage, when its `llm_request` did not carry it.
fn fill_usage(a: &mut AttemptDetail, usage: Option<&Usage>) {
    if let (Some(llm), Some(u)) = (a.llm.as_mut(), usage)
        && llm.input_tokens + llm.output_tokens == 0
        && llm.cost_usd == 0.0
    {
        llm.input_tokens = u.input_tokens;
        llm.output_tokens = u.output_tokens;
        llm.cost_usd = u.cost_usd;
    }
}

fn llm_detail(x: &LlmExchange) -> LlmCallDetail {
    let usage = x.usage.clone().unwrap_or_default();
    LlmCallDetail {
        provider: x.provider.clone(),
        model: x.model.clone(),
        request_id: x.request_id.clone(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_usd: usage.cost_usd,
        messages: x.messages.clone(),
        response: x.response.clone(),
    }
}

fn run_error(e: &ErrorInfo) -> RunError {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| RunError {
            code: e.code,
            message: e.message.clone(),
            node: e.node.clone(),
            action: e.action.clone(),
            attempt: e.attempt,
            retryable: e.retryable,
            cause: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_api::ErrorCode;
    use braid_core::event::{RequestError, Write};
    use serde_json::json;

    fn ev(seq: u64, ts: Millis, body: EventBody) -> Event {
        Event {
            seq,
            ts,
            token_id: Some("tk_2".into()),
            node: Some("judge".into()),
            body,
        }
    }

    fn exchange(attempt: u32, sent_at: Millis, error: Option<ErrorCode>) -> EventBody {
        EventBody::LlmRequest(Box::new(LlmExchange {
            attempt,
            provider: "openai".into(),
            model: "m".into(),
            request_id: Some(format!("req_{attempt}")),
            sent_at,
            wait_ms: 5,
            duration_ms: 20,
            messages: json!([{ "role": "user", "content": "hi" }]),
            response: error.is_none().then(|| json!({ "ok": attempt })),
            error: error.map(|code| RequestError {
                code,
                message: "m".into(),
            }),
            usage: Some(Usage {
                input_tokens: 10,
                output_tokens: 2,
                cost_usd: 0.5,
                ..Usage::default()
            }),
        }))
    }

    fn record(status: &str) -> TokenRecord {
        TokenRecord {
            run_id: "run_1".into(),
            seq: 2,
            id: "tk_2".into(),
            node: "judge".into(),
            status: status.into(),
            parent_token_id: Some("tk_1".into()),
            sibling_set: None,
            branch_index: None,
            attempts: 2,
            created_at: 0,
            started_at: None,
            ended_at: None,
            usage: Default::default(),
            first_seq: None,
            last_seq: None,
        }
    }

    #[test]
    fn attempts_and_their_timings_are_folded_from_the_events() {
        let timeout = ErrorInfo::new(ErrorCode::Timeout, "slow");
        let events = [
            ev(
                3,
                1_000,
                EventBody::NodeStarted {
                    attempt: 1,
                    action: "a".into(),
                    input_digest: "d".into(),
                    input: Some(json!({ "x": 1 })),
                },
            ),
            ev(4, 1_100, exchange(1, 1_050, Some(ErrorCode::Timeout))),
            ev(
                5,
                1_100,
                EventBody::NodeRetrying {
                    attempt: 1,
                    error: timeout,
                    usage: None,
                    delay_ms: 100,
                    not_before: 1_200,
                },
            ),
            ev(
                6,
                1_200,
                EventBody::NodeStarted {
                    attempt: 2,
                    action: "a".into(),
                    input_digest: String::new(),
                    input: None,
                },
            ),
            ev(7, 1_300, exchange(2, 1_210, None)),
            ev(
                8,
                1_300,
                EventBody::NodeCompleted {
                    attempt: 2,
                    duration_ms: 95,
                    result: json!({ "v": 2 }),
                    usage: None,
                },
            ),
            ev(
                9,
                1_300,
                EventBody::ContextUpdated {
                    writes: vec![Write {
                        path: "state.v".into(),
                        value: Some(json!(2)),
                    }],
                },
            ),
        ];
        let d = fold(&record("completed"), &events);
        assert_eq!(d.input, Some(json!({ "x": 1 })), "attempt 1's input");
        assert_eq!(d.result, Some(json!({ "v": 2 })));
        assert_eq!(d.writes, ["state.v"]);
        assert_eq!((d.first_seq, d.last_seq), (Some(3), Some(9)));
        let t = |ms| Some(convert::time(ms));
        let [a1, a2] = d.attempts.as_slice() else {
            panic!("two attempts: {:?}", d.attempts)
        };
        assert_eq!(
            (a1.outcome.as_str(), a2.outcome.as_str()),
            ("retrying", "completed")
        );
        assert_eq!(
            (&a1.queued_at, &a1.started_at, &a1.ended_at),
            (&t(1_000), &t(1_045), &t(1_100)),
            "started = sent_at − wait_ms"
        );
        assert_eq!(a1.duration_ms, Some(20), "the request's duration");
        assert_eq!(
            (&a2.queued_at, &a2.started_at, &a2.ended_at),
            (&t(1_100), &t(1_205), &t(1_300)),
            "a retry is queued by the failure before it"
        );
        assert_eq!(a2.duration_ms, Some(95), "the executor's measure");
        assert_eq!((a1.wait_ms, a2.wait_ms), (Some(5), Some(5)));
        assert_eq!(a1.error.as_ref().map(|e| e.code), Some(ErrorCode::Timeout));
        let llm = a1.llm.as_ref().unwrap();
        assert_eq!(
            (llm.input_tokens, llm.output_tokens, llm.cost_usd),
            (10, 2, 0.5)
        );
        assert_eq!(llm.response, None, "no answer arrived");
        assert_eq!(a2.llm.as_ref().unwrap().response, Some(json!({ "ok": 2 })));

        // Cut off by a cancellation: the attempt without an outcome says so.
        let d = fold(&record("cancelled"), &events[..4]);
        assert_eq!(d.attempts[1].outcome, "cancelled");
        assert_eq!(d.attempts[1].ended_at, None);
        assert_eq!(
            fold(&record("running"), &events[..4]).attempts[1].outcome,
            "running"
        );
    }
}
