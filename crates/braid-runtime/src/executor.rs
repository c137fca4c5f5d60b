//! The executor pool: takes tasks handed over through the
//! [`crate::dispatch::Dispatcher`] or claimed from the durable queue, runs
//! one attempt of an action under its timeout, renews leases while it runs,
//! and sends the result to the run's coordinator as an inbox message (which
//! acks the task in the same commit that records the result).

use crate::attempt::{AttemptError, LlmRecorder};
use crate::dispatch::{Handed, TaskEnvelope};
use crate::inbox::Msg;
use crate::limits::{DEFAULT_MAX_CONCURRENCY, Declared, Endpoint, EndpointKey, Permit};
use crate::options::Options;
use crate::shared::Inner;
use crate::telemetry;
use braid_core::definition::ModelProfile;
use braid_core::event::{LlmExchange, Usage};
use braid_core::machine::{Input, Outcome, TaskPayload};
use braid_expr::Schema;
use braid_llm::{LlmProvider, LlmRequest, Parameters, ProviderConfig, ProviderKind};
use braid_store::{ArtifactRecord, TaskRecord, WriteOp};
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

type ProviderSlot = (Arc<dyn LlmProvider>, Arc<Endpoint>);

/// What the pool keeps for running actions: the HTTP client, provider
/// adapters and compiled `produces` schemas. Worker slots and the attempts
/// in flight are the [`crate::dispatch::Dispatcher`]'s.
pub(crate) struct Executor {
    poll_ms: u64,
    http: reqwest::Client,
    /// (version id, model profile ref) → adapter and its endpoint's limiter
    /// (shared with every other profile of the same endpoint).
    providers: Mutex<HashMap<(String, String), ProviderSlot>>,
    schemas: Mutex<HashMap<String, Schema>>,
}

impl Executor {
    pub(crate) fn new(opts: &Options, http: reqwest::Client) -> Executor {
        Executor {
            poll_ms: opts.poll_ms,
            http,
            providers: Mutex::new(HashMap::new()),
            schemas: Mutex::new(HashMap::new()),
        }
    }
}

/// Starts the pool: the claim loop, the lease renewer, and the receiver of
/// the tasks coordinators hand over directly.
pub(crate) fn spawn(
    inner: &Arc<Inner>,
    executor: Executor,
    mut handed: mpsc::UnboundedReceiver<Handed>,
) {
    let ex = Arc::new(executor);
    let weak = Arc::downgrade(inner);
    let pool = ex.clone();
    tokio::spawn(async move {
        while let Some((task, permit)) = handed.recv().await {
            let Some(inner) = weak.upgrade() else { return };
            launch(&inner, &pool, task, permit);
        }
    });
    spawn_claim_loop(inner, ex);
    spawn_lease_renewer(inner);
}

/// Claims due tasks while worker slots are free; sleeps until the next
/// task is due (at most `poll_ms`) or a coordinator queues one.
fn spawn_claim_loop(inner: &Arc<Inner>, ex: Arc<Executor>) {
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let slots = &inner.dispatcher;
            if slots.is_draining() {
                return;
            }
            let free = slots.free_workers().min(1000) as u32;
            let now = inner.clock.now_ms();
            let claimed = if free > 0 {
                match inner.store.claim_tasks(now, slots.lease_ms(), free).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(error = %e, "claiming tasks failed");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            let got = claimed.len() as u32;
            for task in claimed {
                start_task(&inner, &ex, task).await;
            }
            if got == free && free > 0 {
                continue; // maybe more ready
            }
            let wait = match inner.store.next_task_due().await {
                Ok(Some(due)) => (due - inner.clock.now_ms()).clamp(0, ex.poll_ms as i64) as u64,
                _ => ex.poll_ms,
            };
            let wake = inner.dispatcher.wake();
            drop(inner);
            // Real time: this only bounds how late the loop looks again
            // (a coordinator's queued task wakes it at once).
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
        }
    });
}

/// Renews the leases of the attempts in flight, three times per lease.
fn spawn_lease_renewer(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    // Real time: a lease protects a running attempt from redelivery by
    // another process, which reads the wall clock.
    let period = Duration::from_millis((inner.dispatcher.lease_ms() / 3).max(10) as u64);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(inner) = weak.upgrade() else { return };
            let ids = inner.dispatcher.inflight_task_ids();
            if !ids.is_empty() {
                let until = inner.clock.now_ms() + inner.dispatcher.lease_ms();
                if let Err(e) = inner.store.renew_leases(&ids, until).await {
                    tracing::warn!(error = %e, "renewing task leases failed");
                }
            }
        }
    });
}

async fn start_task(inner: &Arc<Inner>, ex: &Arc<Executor>, task: TaskRecord) {
    if inner.dispatcher.is_running(&task) {
        // Our own attempt, still going: the claim only renewed its lease.
        // Starting it twice would send the same request twice.
        return;
    }
    let Some(permit) = inner.dispatcher.acquire_worker().await else {
        return;
    };
    launch(inner, ex, task, permit);
}

/// Runs a task on a reserved worker slot.
fn launch(inner: &Arc<Inner>, ex: &Arc<Executor>, task: TaskRecord, permit: OwnedSemaphorePermit) {
    let (inner2, ex) = (inner.clone(), ex.clone());
    let key = (task.run_id.clone(), task.token_id.clone());
    let task_id = task.id.clone();
    inner.dispatcher.track(key, task_id, move || {
        tokio::spawn(async move {
            let _permit = permit;
            execute(&inner2, &ex, task).await;
        })
        .abort_handle()
    });
}

async fn execute(inner: &Arc<Inner>, ex: &Executor, task: TaskRecord) {
    // A task handed over before its not-before (a short retry delay).
    let queued = telemetry::TaskQueued::new(inner.telemetry.metrics);
    wait_until(inner, task.not_before).await;
    queued.started(inner.clock.now_ms() - task.not_before);
    let attempt = task.attempt as u32;
    let envelope = match TaskEnvelope::deserialize(&task.payload) {
        Ok(e) => e,
        Err(e) => {
            let error =
                AttemptError::Internal(format!("task {} has an unreadable payload: {e}", task.id));
            return deliver(inner, &task, error.into_outcome(0));
        }
    };
    if attempt > 1 {
        inner.send(
            &task.run_id,
            Msg::Input(
                Input::TaskStarted {
                    token: task.token_id.clone(),
                    attempt,
                },
                None,
            ),
        );
    }
    // The provider's limits are waited for before the timeout starts: a
    // call queued behind others has not begun (SPEC §4).
    let admitted = match admit(inner, ex, &envelope).await {
        Ok(a) => a,
        Err(AttemptError::NotStarted) => return release(inner, &task).await,
        Err(error) => return deliver(inner, &task, error.into_outcome(0)),
    };
    // Real time, not the engine's clock: `timeout_ms` bounds the call
    // itself (an IO timeout that aborts the request), and `duration_ms`
    // reports how long the call really took.
    let started = Instant::now();
    // Set once a request has gone to a provider: a call cut off by the
    // timeout was sent, and is counted as a request (and recorded).
    let llm = LlmRecorder::default();
    let work = run_action(inner, ex, &task, &envelope, admitted, &llm);
    let result = match envelope.timeout_ms {
        Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), work).await {
            Ok(r) => r,
            Err(_) => Err(AttemptError::Timeout {
                node: envelope.node.clone(),
                attempt,
                ms,
                sent: llm.is_sent(),
            }),
        },
        None => work.await,
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut outcome = match result {
        Ok((result, usage)) => Outcome::Success {
            result,
            usage,
            duration_ms,
            llm: None,
        },
        Err(AttemptError::NotStarted) => return release(inner, &task).await,
        Err(error) => error.into_outcome(duration_ms),
    };
    llm.finish(&mut outcome);
    deliver(inner, &task, outcome);
}

/// Below this, the end of a wait is slept on a blocking thread (the OS
/// timer is precise to tens of µs); tokio's timer rounds each sleep up to
/// its next millisecond tick.
const FINE_WAIT_US: i64 = 1_500;

/// Waits until `not_before` (ms since the epoch) on the engine's clock,
/// within tens of µs rather than tokio's millisecond ticks: a retry delay
/// of 10 ms is 10 ms, not 11–12. The clock waits for all but the last
/// [`FINE_WAIT_US`]; the rest, left by the clock, is slept on a blocking
/// thread.
async fn wait_until(inner: &Arc<Inner>, not_before: i64) {
    let deadline_us = not_before.saturating_mul(1000);
    inner.clock.sleep_until_us(deadline_us - FINE_WAIT_US).await;
    let rest = deadline_us - inner.clock.now_us();
    if rest > 0 {
        let rest = Duration::from_micros(rest as u64);
        if tokio::task::spawn_blocking(move || std::thread::sleep(rest))
            .await
            .is_err()
        {
            tokio::time::sleep(rest).await;
        }
    }
}

fn deliver(inner: &Arc<Inner>, task: &TaskRecord, outcome: Outcome) {
    inner.dispatcher.forget(task);
    let msg = Msg::TaskResult {
        task_id: task.id.clone(),
        input: Input::TaskResult {
            token: task.token_id.clone(),
            attempt: task.attempt as u32,
            outcome,
        },
    };
    if !inner.send(&task.run_id, msg) {
        // The run is not live here. Ack only if it has ended (nothing waits
        // for the result); a running run that this process does not drive
        // needs the task again: leave it queued.
        let inner = inner.clone();
        let (id, run_id) = (task.id.clone(), task.run_id.clone());
        tokio::spawn(async move {
            match inner.store.get_run(&run_id).await {
                // In a cluster the run moved to (or is being rebuilt by) a
                // process that will claim the task again: hand it back now
                // rather than make it wait out this claim's lease.
                Ok(Some(r))
                    if r.status == braid_store::RunStatus::Running && inner.cluster.is_some() =>
                {
                    tracing::info!(run = %run_id, task = %id, "a result for a run that is not live in this process; the task goes back to the queue");
                    let _ = inner.store.renew_leases(std::slice::from_ref(&id), 0).await;
                }
                Ok(Some(r)) if r.status == braid_store::RunStatus::Running => {
                    tracing::warn!(run = %run_id, task = %id, "a result for a run that is not live in this process; the task stays queued");
                }
                Ok(_) => {
                    let _ = inner.committer.commit(vec![WriteOp::AckTask(id)]).await;
                }
                Err(e) => {
                    tracing::warn!(run = %run_id, task = %id, error = %e, "cannot read the run of a result; the task stays queued");
                }
            }
        });
    }
}

type ActionResult = Result<(Value, Option<Usage>), AttemptError>;

/// Gives a task that did not begin back to the queue.
async fn release(inner: &Arc<Inner>, task: &TaskRecord) {
    inner.dispatcher.forget(task);
    if let Err(e) = inner
        .store
        .renew_leases(std::slice::from_ref(&task.id), 0)
        .await
    {
        tracing::warn!(task = %task.id, error = %e, "releasing the lease of a task that did not start failed");
    }
}

/// An LLM call that has its provider's slot and rate-limit tokens.
struct Admitted {
    provider: Arc<dyn LlmProvider>,
    profile: ModelProfile,
    permit: Permit,
}

/// For an `llm_call`, waits for its endpoint's limits, unless the drain
/// starts first: a graceful shutdown finishes the calls in flight, it does
/// not start new ones. Nothing to wait for other actions.
async fn admit(
    inner: &Arc<Inner>,
    ex: &Executor,
    env: &TaskEnvelope,
) -> Result<Option<Admitted>, AttemptError> {
    let TaskPayload::LlmCall {
        model,
        system,
        prompt,
        ..
    } = &env.payload
    else {
        return Ok(None);
    };
    let (provider, endpoint, profile) = provider_for(inner, ex, &env.def_id, model).await?;
    let tokens = estimate_tokens(system.as_deref().unwrap_or("")) + estimate_tokens(prompt);
    let mut drained = inner.dispatcher.drained();
    let permit = tokio::select! {
        biased;
        _ = drained.wait_for(|d| *d) => return Err(AttemptError::NotStarted),
        permit = inner.limits.acquire(&endpoint, tokens) => permit,
    };
    telemetry::limiter_waited(inner.telemetry.metrics, &profile, permit.waited());
    Ok(Some(Admitted {
        provider,
        profile,
        permit,
    }))
}

/// A prompt's tokens before the provider counts them: about four
/// characters a token for English text; the provider's reported usage
/// corrects the tokens bucket afterwards.
fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

async fn run_action(
    inner: &Arc<Inner>,
    ex: &Executor,
    task: &TaskRecord,
    env: &TaskEnvelope,
    admitted: Option<Admitted>,
    llm: &LlmRecorder,
) -> ActionResult {
    match &env.payload {
        TaskPayload::LlmCall {
            model,
            system,
            prompt,
            produces,
            branch_index,
        } => {
            let Some(Admitted {
                provider,
                profile,
                mut permit,
            }) = admitted
            else {
                return Err(AttemptError::Internal(format!(
                    "llm_call with model profile `{model}` ran without its limits"
                )));
            };
            if let Some(spent) = spent_budget(inner, task, env, &mut permit) {
                return Err(AttemptError::BudgetExceeded(spent));
            }
            let node_budget = env.max_cost_usd;
            let parameters: Parameters =
                serde_json::from_value(Value::Object(profile.parameters.clone()))
                    .unwrap_or_default();
            let req = LlmRequest {
                model: profile.model.clone(),
                system: system.clone(),
                prompt: prompt.clone(),
                output_schema: produces.clone(),
                parameters,
                branch_index: *branch_index,
                attempt: task.attempt as u32,
            };
            let started = Instant::now();
            llm.sent(LlmExchange {
                attempt: req.attempt,
                provider: profile.provider.clone(),
                model: profile.model.clone(),
                request_id: None,
                sent_at: inner.clock.now_ms(),
                wait_ms: permit.waited().as_millis() as u64,
                duration_ms: 0,
                messages: req.messages(),
                response: None,
                error: None,
                usage: None,
            });
            let priced = |reported: braid_llm::Usage| Usage {
                input_tokens: reported.input_tokens,
                output_tokens: reported.output_tokens,
                cost_usd: reported.input_tokens as f64 / 1000.0
                    * profile.cost_per_1k_input_tokens.unwrap_or(0.0)
                    + reported.output_tokens as f64 / 1000.0
                        * profile.cost_per_1k_output_tokens.unwrap_or(0.0),
                latency_ms: started.elapsed().as_millis() as u64,
                request_id: None,
                model: None,
            };
            let answer = provider.call(&req).await;
            let used = match &answer {
                Ok(resp) => Some(resp.usage),
                Err(error) => error.usage,
            };
            if let Some(used) = used {
                permit.settle(used.input_tokens + used.output_tokens);
                // Recorded before the slot goes back: the next call on
                // this slot sees what this one cost.
                let cost = priced(used);
                let budgets = &inner.budgets;
                budgets.record(&task.run_id, &task.token_id, node_budget.is_some(), &cost);
            }
            drop(permit);
            let mut resp = answer.map_err(|mut error| {
                llm.answered(
                    error.response.take(),
                    error.request_id.as_deref().map(str::to_string),
                );
                AttemptError::Provider {
                    usage: priced(error.usage.unwrap_or_default()),
                    error,
                }
            })?;
            llm.answered(Some(resp.raw.take()), resp.request_id.clone());
            let usage = Usage {
                request_id: resp.request_id.clone(),
                model: Some(resp.model.clone()),
                ..priced(resp.usage)
            };
            if let Some(schema) = produces {
                let compiled = ex.schema(env, schema).map_err(AttemptError::Internal)?;
                if let Err(v) = compiled.validate(&resp.output) {
                    let detail = braid_expr::SchemaViolation::describe_all(&v);
                    return Err(AttemptError::SchemaMismatch {
                        message: format!(
                            "model `{}` answered {} which does not match the prompt's `produces` schema: {}",
                            profile.model,
                            truncate(&resp.text, 200),
                            detail
                        ),
                        usage,
                    });
                }
            }
            Ok((resp.output, Some(usage)))
        }
        TaskPayload::WriteArtifact {
            type_name,
            type_version,
            name,
            content,
        } => {
            let record = ArtifactRecord {
                id: inner.ids.id("art"),
                project_id: env.project_id.clone(),
                type_name: type_name.clone(),
                type_version: *type_version,
                name: name.clone(),
                content: content.clone(),
                run_id: task.run_id.clone(),
                node: env.node.clone(),
                // One artifact per token visit, whatever the deliveries and attempts.
                idempotency_key: format!("{}/{}", task.run_id, task.token_id),
                created_at: inner.clock.now_ms(),
            };
            let id = inner.store.put_artifact(&record).await.map_err(|e| {
                AttemptError::ArtifactStore(format!("storing artifact `{name}` failed: {e}"))
            })?;
            Ok((json!({ "artifact_id": id }), None))
        }
    }
}

async fn provider_for(
    inner: &Arc<Inner>,
    ex: &Executor,
    def_id: &str,
    model: &str,
) -> Result<(Arc<dyn LlmProvider>, Arc<Endpoint>, ModelProfile), AttemptError> {
    let graph = inner
        .definitions
        .graph(def_id)
        .await
        .map_err(|e| AttemptError::Internal(format!("loading definition {def_id}: {e}")))?;
    let profile = graph.model_profiles.get(model).cloned().ok_or_else(|| {
        AttemptError::Misconfigured(format!("model profile `{model}` is not defined"))
    })?;
    let key = (def_id.to_string(), model.to_string());
    if let Some((p, s)) = ex.providers.lock().expect("providers lock").get(&key) {
        return Ok((p.clone(), s.clone(), profile));
    }
    let kind: ProviderKind = serde_json::from_value(Value::String(profile.provider.clone()))
        .map_err(|_| {
            AttemptError::Misconfigured(format!("unknown provider `{}`", profile.provider))
        })?;
    let key_var = profile.api_key_env.clone().or(match kind {
        ProviderKind::Openai => Some("OPENAI_API_KEY".into()),
        ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY".into()),
        _ => None,
    });
    let api_key = key_var
        .as_deref()
        .and_then(|v| std::env::var(v).ok())
        .filter(|k| !k.is_empty());
    let config = ProviderConfig {
        provider: kind,
        model: profile.model.clone(),
        base_url: profile.base_url.clone(),
        api_key,
        script: profile.script.clone(),
    };
    let provider =
        braid_llm::provider(config, ex.http.clone()).map_err(AttemptError::ProviderSetup)?;
    let endpoint = EndpointKey {
        provider: profile.provider.clone(),
        base_url: crate::limits::normalize_base_url(
            profile
                .base_url
                .as_deref()
                .or(kind.default_base_url())
                .unwrap_or(""),
        ),
        model: profile.model.clone(),
        key_env: key_var,
    };
    let rate = profile.rate_limit.unwrap_or_default();
    let declared = Declared {
        max_concurrency: Some(profile.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY)),
        requests_per_minute: rate.requests_per_minute,
        tokens_per_minute: rate.tokens_per_minute,
    };
    // Declared once per (version, profile): the endpoint keeps the smallest
    // limits of every profile that uses it.
    let limiter = inner.limits.endpoint(&endpoint, declared);
    // Two first calls may race here: the first entry wins.
    let (provider, limiter) = ex
        .providers
        .lock()
        .expect("providers lock")
        .entry(key)
        .or_insert((provider, limiter))
        .clone();
    Ok((provider, limiter, profile))
}

/// With its slot and rate-limit tokens, an LLM attempt checks the budgets
/// against the attempts that have finished (SPEC §5): one found spent fails
/// it before anything is sent. The message of the spent budget, if any.
fn spent_budget(
    inner: &Inner,
    task: &TaskRecord,
    env: &TaskEnvelope,
    permit: &mut Permit,
) -> Option<String> {
    let node_budget = env.max_cost_usd;
    let exceeded = inner
        .budgets
        .check(&task.run_id, &task.token_id, &env.node, node_budget)?;
    permit.settle(0); // nothing was sent: the estimate goes back
    Some(exceeded.to_string())
}

impl Executor {
    /// The compiled `produces` schema of a node's prompt (cached).
    fn schema(&self, env: &TaskEnvelope, schema: &Value) -> Result<Schema, String> {
        let key = format!("{}/{}", env.def_id, env.node);
        let mut cache = self.schemas.lock().expect("schemas lock");
        if let Some(s) = cache.get(&key) {
            return Ok(s.clone());
        }
        let s = Schema::compile(schema)?;
        cache.insert(key, s.clone());
        Ok(s)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
