//! Runs as OpenTelemetry traces, built from committed events.
//!
//! A span is made once the thing it covers has ended, from the events'
//! timestamps: a run span, a span per node visit (token) under it, and a
//! span per attempt under the visit; a child run's run span sits under the
//! visit of the `workflow_call` node that called it. Ids are derived, not
//! random: the trace id from the root run's id, a span id from (run,
//! token, attempt). So a run recovered by another process continues the
//! same trace, and a child's parent link is known without asking anyone.
//! The SDK takes no span id from a builder, so the ids reach it through
//! [`DerivedIds`], set just before each (synchronous) span build.

use super::AttemptEnd;
use braid_core::definition::ModelProfile;
use braid_core::event::{Event, EventBody, Millis};
use braid_core::graph::{CompiledNode, Graph};
use braid_core::state::RunState;
use braid_store::{RunRecord, Store};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{IdGenerator, SdkTracer, SdkTracerProvider, SpanExporter};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The trace exporter of an engine: give it to [`crate::Options::traces`]
/// and call [`Traces::shutdown`] after the engine's shutdown to flush.
#[derive(Clone)]
pub struct Traces {
    inner: Arc<Inner>,
}

struct Inner {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Live runs of this process → their trace, for their children.
    traces: Mutex<HashMap<String, TraceId>>,
}

impl Traces {
    /// Spans batched to `exporter` on the tokio runtime (call it inside one),
    /// with `service.name` set to `service_name`.
    pub fn new<E: SpanExporter + 'static>(exporter: E, service_name: &str) -> Traces {
        // The async-runtime batch processor: the default one exports from a
        // thread of its own, where an async HTTP client finds no reactor.
        let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_id_generator(DerivedIds)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_string())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("braid");
        Traces {
            inner: Arc::new(Inner {
                provider,
                tracer,
                traces: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Exports every span made so far and stops the exporter.
    pub async fn shutdown(&self) {
        let provider = self.inner.provider.clone();
        // Both block until the export is done: not on a tokio worker.
        let done = tokio::task::spawn_blocking(move || {
            let _ = provider.force_flush();
            provider.shutdown()
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "flushing the trace exporter failed");
        }
    }

    /// The trace of `run`: that of its root run (looked up through its
    /// parents when they are not live here, e.g. after a restart).
    pub(crate) async fn run_trace(&self, store: &dyn Store, run: &RunRecord) -> RunTrace {
        let trace_id = match (&run.parent_run_id, &run.parent_token_id) {
            (Some(parent), Some(_)) => {
                let known = self.known(parent);
                match known {
                    Some(t) => t,
                    None => trace_id(&root_of(store, parent).await),
                }
            }
            _ => trace_id(&run.id),
        };
        self.inner
            .traces
            .lock()
            .expect("traces lock")
            .insert(run.id.clone(), trace_id);
        let parent = match (&run.parent_run_id, &run.parent_token_id) {
            (Some(p), Some(t)) => Some(span_id(p, t, 0)),
            _ => None,
        };
        RunTrace {
            traces: self.clone(),
            trace_id,
            parent,
        }
    }

    fn known(&self, run_id: &str) -> Option<TraceId> {
        self.inner
            .traces
            .lock()
            .expect("traces lock")
            .get(run_id)
            .copied()
    }

    pub(crate) fn forget(&self, run_id: &str) {
        self.inner
            .traces
            .lock()
            .expect("traces lock")
            .remove(run_id);
    }
}

/// The root of `run_id`'s chain of parents, as stored (itself if unknown).
async fn root_of(store: &dyn Store, run_id: &str) -> String {
    let mut id = run_id.to_string();
    for _ in 0..=crate::children::MAX_DEPTH {
        match store.get_run(&id).await {
            Ok(Some(RunRecord {
                parent_run_id: Some(parent),
                ..
            })) => id = parent,
            _ => break,
        }
    }
    id
}

/// The trace id of the run tree rooted at `root`.
fn trace_id(root: &str) -> TraceId {
    let d = Sha256::digest(format!("trace/{root}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d[..16]);
    bytes[15] |= 1; // never the invalid all-zero id
    TraceId::from_bytes(bytes)
}

/// The span id of a run (`token` empty), a visit (`attempt` 0) or an attempt.
fn span_id(run: &str, token: &str, attempt: u32) -> SpanId {
    let d = Sha256::digest(format!("span/{run}/{token}/{attempt}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&d[..8]);
    bytes[7] |= 1;
    SpanId::from_bytes(bytes)
}

thread_local! {
    /// The ids of the span being built on this thread.
    static NEXT_IDS: Cell<(TraceId, SpanId)> = const { Cell::new((TraceId::INVALID, SpanId::INVALID)) };
}

/// Hands the SDK the derived ids of the span being built.
#[derive(Debug)]
struct DerivedIds;

impl IdGenerator for DerivedIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS.with(|ids| ids.get().0)
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS.with(|ids| ids.get().1)
    }
}

fn at(ms: Millis) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// One span to make, already ended.
struct Made {
    name: String,
    span_id: SpanId,
    parent: Option<SpanId>,
    kind: SpanKind,
    start: Millis,
    end: Millis,
    attributes: Vec<KeyValue>,
    error: Option<String>,
}

/// The trace of one run, as its coordinator records it.
pub(crate) struct RunTrace {
    traces: Traces,
    trace_id: TraceId,
    /// The calling visit's span, for a child run.
    parent: Option<SpanId>,
}

impl RunTrace {
    fn make(&self, span: Made) {
        NEXT_IDS.with(|ids| ids.set((self.trace_id, span.span_id)));
        let parent = match span.parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                self.trace_id,
                p,
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let tracer = &self.traces.inner.tracer;
        let mut built = tracer
            .span_builder(span.name)
            .with_kind(span.kind)
            .with_start_time(at(span.start))
            .with_attributes(span.attributes)
            .start_with_context(tracer, &parent);
        if let Some(message) = span.error {
            built.set_status(Status::error(message));
        }
        built.end_with_timestamp(at(span.end.max(span.start)));
    }

    /// The run's span, at its final event.
    pub(super) fn run(&self, run: &RunRecord, started: Millis, e: &Event) {
        let (status, error) = match &e.body {
            EventBody::WorkflowCompleted { .. } => ("completed", None),
            EventBody::WorkflowFailed { error } => {
                ("failed", Some(format!("{}: {}", error.code, error.message)))
            }
            _ => ("cancelled", None),
        };
        self.make(Made {
            name: format!("run {}", run.workflow_name),
            span_id: span_id(&run.id, "", 0),
            parent: self.parent,
            kind: SpanKind::Internal,
            start: started,
            end: e.ts,
            attributes: vec![
                KeyValue::new("braid.run_id", run.id.clone()),
                KeyValue::new("braid.workflow", run.workflow_name.clone()),
                KeyValue::new("braid.version", run.version),
                KeyValue::new("braid.status", status),
            ],
            error,
        });
    }

    /// The spans of the visits that ended in a batch: (token index, end,
    /// failed), the last word for a token winning (routing after a success
    /// can still fail the visit).
    pub(super) fn visits(
        &self,
        run: &RunRecord,
        graph: &Graph,
        state: &RunState,
        ended: &mut Vec<(usize, Millis, bool)>,
    ) {
        let mut last: HashMap<usize, (Millis, bool)> = HashMap::with_capacity(ended.len());
        for (t, end, failed) in ended.drain(..) {
            last.insert(t, (end, failed));
        }
        for (t, (end, failed)) in last {
            let Some(token) = state.tokens.get(t) else {
                continue;
            };
            let node = &graph.nodes[token.node].ref_;
            self.make(Made {
                name: node.clone(),
                span_id: span_id(&run.id, &token.id, 0),
                parent: Some(span_id(&run.id, "", 0)),
                kind: SpanKind::Internal,
                start: token.created_at,
                end,
                attributes: vec![
                    KeyValue::new("braid.run_id", run.id.clone()),
                    KeyValue::new("braid.node", node.clone()),
                    KeyValue::new("braid.token_id", token.id.clone()),
                ],
                error: failed.then(|| format!("node `{node}` failed")),
            });
        }
    }

    /// One attempt's span, under its visit.
    pub(super) fn attempt(
        &self,
        run: &RunRecord,
        node: &CompiledNode,
        profile: Option<&ModelProfile>,
        end: &AttemptEnd<'_>,
    ) {
        let mut attributes = vec![
            KeyValue::new("braid.run_id", run.id.clone()),
            KeyValue::new("braid.node", node.ref_.clone()),
            KeyValue::new("braid.token_id", end.token.to_string()),
            KeyValue::new("braid.attempt", i64::from(end.attempt)),
            KeyValue::new("braid.action.kind", super::kind_name(&node.action)),
            KeyValue::new("braid.outcome", end.outcome),
        ];
        if let Some(p) = profile {
            attributes.push(KeyValue::new("gen_ai.operation.name", "chat"));
            attributes.push(KeyValue::new("gen_ai.provider.name", p.provider.clone()));
            attributes.push(KeyValue::new("gen_ai.request.model", p.model.clone()));
            if let Some(u) = end.usage {
                attributes.push(KeyValue::new(
                    "gen_ai.usage.input_tokens",
                    u.input_tokens as i64,
                ));
                attributes.push(KeyValue::new(
                    "gen_ai.usage.output_tokens",
                    u.output_tokens as i64,
                ));
                if let Some(m) = &u.model {
                    attributes.push(KeyValue::new("gen_ai.response.model", m.clone()));
                }
            }
        }
        if let Some(e) = end.error {
            attributes.push(KeyValue::new("error.type", e.code.as_str()));
        }
        self.make(Made {
            name: format!("{} attempt {}", node.ref_, end.attempt),
            span_id: span_id(&run.id, end.token, end.attempt),
            parent: Some(span_id(&run.id, end.token, 0)),
            kind: if profile.is_some() {
                SpanKind::Client
            } else {
                SpanKind::Internal
            },
            start: end.started,
            end: end.ended,
            attributes,
            error: end.error.map(|e| format!("{}: {}", e.code, e.message)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_stable_and_distinct() {
        assert_eq!(trace_id("run_a"), trace_id("run_a"));
        assert_ne!(trace_id("run_a"), trace_id("run_b"));
        let ids = [
            span_id("run_a", "", 0),
            span_id("run_a", "tk_1", 0),
            span_id("run_a", "tk_1", 1),
            span_id("run_a", "tk_1", 2),
            span_id("run_b", "tk_1", 0),
        ];
        for (i, a) in ids.iter().enumerate() {
            assert_ne!(*a, SpanId::INVALID);
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(span_id("run_a", "tk_1", 1), ids[2]);
    }
}
