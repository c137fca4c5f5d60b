//! Group commit: one writer task that turns the write batches of many
//! coordinators into one transaction (one fsync) and answers each caller
//! only once its writes are durable.
//!
//! Every request gets a [`Ticket`]. A request may name tickets it depends
//! on: it is then written only if they were written too, in the same
//! transaction or an earlier one. Requests are written in the order they
//! were submitted, so a dependency submitted before its dependent is never
//! behind it. This lets one run act on another run's writes before they
//! are durable (a parent starts its child, a child tells its parent it
//! ended) without ever making the dependent durable alone: a chain of
//! nested runs costs one or two fsyncs instead of one per level.

use crate::telemetry;
use braid_store::{RunStore, WriteOp};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The number of a commit request, in submission order.
pub(crate) type Ticket = u64;

/// How a request ended: `Ok` once durable.
pub(crate) type Outcome = Result<(), CommitError>;

/// Why a request was not written. Every request of a failed transaction
/// gets the same error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CommitError {
    /// The transaction was refused because this run's epoch moved on:
    /// another process adopted it (scale-out fencing). Its coordinator
    /// drops the run; the other runs of the batch go on from the database.
    Fenced(String),
    /// Anything else (the store failed, a dependency was not written).
    Failed(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::Fenced(run) => write!(
                f,
                "run {run} is owned by another process now; its commit was refused"
            ),
            CommitError::Failed(m) => f.write_str(m),
        }
    }
}

struct Request {
    ticket: Ticket,
    ops: Vec<WriteOp>,
    after: Vec<Ticket>,
    reply: oneshot::Sender<Outcome>,
}

/// Handle to the commit task.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<Request>,
    next: Arc<AtomicU64>,
}

/// How many queued requests at most go into one transaction.
const MAX_BATCH_REQUESTS: usize = 1024;

impl Committer {
    /// `metrics`: time each transaction and count the events it writes.
    pub(crate) fn start(store: Arc<dyn RunStore>, metrics: bool) -> Committer {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            // Tickets whose writes were not made (rare: a failing store).
            let mut failed: HashSet<Ticket> = HashSet::new();
            while rx.recv_many(&mut buf, MAX_BATCH_REQUESTS).await > 0 {
                let mut ops = Vec::new();
                let mut replies = Vec::with_capacity(buf.len());
                let mut tickets = Vec::with_capacity(buf.len());
                for r in buf.drain(..) {
                    if let Some(t) = r.after.iter().find(|t| failed.contains(t)) {
                        failed.insert(r.ticket);
                        let _ = r.reply.send(Err(CommitError::Failed(format!(
                            "a write this one depends on (commit {t}) failed"
                        ))));
                        continue;
                    }
                    ops.extend(r.ops);
                    replies.push(r.reply);
                    tickets.push(r.ticket);
                }
                let result = if ops.is_empty() {
                    Ok(())
                } else {
                    let events = if metrics { written_events(&ops) } else { 0 };
                    let started = Instant::now();
                    let r = store.commit(ops).await.map_err(|e| match e {
                        braid_store::Error::Fenced(run) => CommitError::Fenced(run),
                        e => CommitError::Failed(e.to_string()),
                    });
                    if r.is_ok() {
                        telemetry::store_committed(metrics, started.elapsed(), events);
                    }
                    r
                };
                if let Err(e) = &result {
                    match e {
                        CommitError::Fenced(_) => {
                            tracing::warn!(error = %e, "group commit refused")
                        }
                        CommitError::Failed(_) => {
                            tracing::error!(error = %e, "group commit failed")
                        }
                    }
                    failed.extend(tickets);
                }
                for r in replies {
                    let _ = r.send(result.clone());
                }
            }
        });
        Committer {
            tx,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Queues `ops`, to be written with whatever else is queued and only
    /// if every ticket in `after` is written too. The receiver answers once
    /// they are durable (or not written).
    pub(crate) fn submit(
        &self,
        ops: Vec<WriteOp>,
        after: Vec<Ticket>,
    ) -> (Ticket, oneshot::Receiver<Outcome>) {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(r)) = self.tx.send(Request {
            ticket,
            ops,
            after,
            reply,
        }) {
            let _ = r.reply.send(Err(CommitError::Failed(
                "the commit task has stopped".into(),
            )));
        }
        (ticket, rx)
    }

    /// Waits for a submitted request.
    pub(crate) async fn done(rx: &mut oneshot::Receiver<Outcome>) -> Outcome {
        rx.await
            .map_err(|_| CommitError::Failed("the commit task has stopped".into()))?
    }

    /// Writes `ops` durably (together with whatever else is queued).
    pub(crate) async fn commit(&self, ops: Vec<WriteOp>) -> Outcome {
        if ops.is_empty() {
            return Ok(());
        }
        Self::done(&mut self.submit(ops, Vec::new()).1).await
    }
}

/// The events a transaction appends.
fn written_events(ops: &[WriteOp]) -> usize {
    ops.iter()
        .map(|o| match o {
            WriteOp::AppendEvents(rows) => rows.len(),
            _ => 0,
        })
        .sum()
}
