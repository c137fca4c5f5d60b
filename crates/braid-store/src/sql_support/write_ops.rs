//! The write ops of one [`RunStore::commit`](crate::RunStore::commit),
//! grouped by table so that each group can be written with few statements.

use crate::{NewEvent, RunRecord, SiblingSetRecord, TaskRecord, TokenRecord, UsageTotals, WriteOp};

/// The ops of a batch, grouped by table. Groups touch different tables and
/// depend on each other only through the run rows (foreign keys), which are
/// written first, so applying group by group is equivalent to applying the
/// ops in order; within a group the order is kept.
#[derive(Default)]
pub struct Batch {
    pub runs: Vec<RunOp>,
    pub events: Vec<NewEvent>,
    pub tokens: Vec<TokenRecord>,
    pub sibling_sets: Vec<SiblingSetRecord>,
    /// In their order: an ack may follow the enqueue of the same task.
    pub tasks: Vec<TaskOp>,
    /// `(run_id, seq, state)`.
    pub snapshots: Vec<(String, i64, String)>,
    /// `(id, run_id, token_id, attempt, payload)`.
    pub results: Vec<(String, String, String, i64, String)>,
}

/// A run row to write.
pub enum RunOp {
    Create(RunRecord),
    Update(RunRecord),
}

/// A change to the task queue.
pub enum TaskOp {
    /// Consecutive [`WriteOp::EnqueueTask`]s.
    Enqueue(Vec<TaskRecord>),
    /// Consecutive [`WriteOp::AckTask`]s.
    Ack(Vec<String>),
    /// Every queued task of a run.
    DropRun(String),
    /// Every queued task of these tokens of one run.
    DropTokens(String, Vec<String>),
}

impl Batch {
    /// Groups `ops`, keeping their order within each group.
    pub fn new(ops: Vec<WriteOp>) -> Batch {
        let mut b = Batch::default();
        for op in ops {
            match op {
                WriteOp::CreateRun(r) => b.runs.push(RunOp::Create(r)),
                WriteOp::UpdateRun(r) => b.runs.push(RunOp::Update(r)),
                // Usually one of each per commit: moved, not copied.
                WriteOp::AppendEvents(e) if b.events.is_empty() => b.events = e,
                WriteOp::AppendEvents(mut e) => b.events.append(&mut e),
                WriteOp::UpsertTokens(t) if b.tokens.is_empty() => b.tokens = t,
                WriteOp::UpsertTokens(mut t) => b.tokens.append(&mut t),
                WriteOp::UpsertSiblingSets(mut s) => b.sibling_sets.append(&mut s),
                // Consecutive enqueues and acks are merged into one statement each.
                WriteOp::EnqueueTask(t) => match b.tasks.last_mut() {
                    Some(TaskOp::Enqueue(v)) => v.push(t),
                    _ => b.tasks.push(TaskOp::Enqueue(vec![t])),
                },
                WriteOp::AckTask(id) => match b.tasks.last_mut() {
                    Some(TaskOp::Ack(v)) => v.push(id),
                    _ => b.tasks.push(TaskOp::Ack(vec![id])),
                },
                WriteOp::DropRunTasks(run) => b.tasks.push(TaskOp::DropRun(run)),
                WriteOp::DropTokenTasks { run_id, tokens } => {
                    b.tasks.push(TaskOp::DropTokens(run_id, tokens));
                }
                WriteOp::Snapshot { run_id, seq, state } => b.snapshots.push((run_id, seq, state)),
                WriteOp::PutResult {
                    id,
                    run_id,
                    token_id,
                    attempt,
                    payload,
                } => b.results.push((id, run_id, token_id, attempt, payload)),
            }
        }
        b
    }
}

/// `(run_id, seq, usage)` of the token rows whose ledger columns are to
/// be written. Only the visits that spent something (LLM calls) are:
/// most token rows of a fan-out never do, and four more columns in
/// every upsert cost a pure W2 a few per cent. A row's usage only grows
/// with an event on that token, which rewrites the row.
pub fn spent(tokens: &[TokenRecord]) -> Vec<(String, i64, UsageTotals)> {
    tokens
        .iter()
        .filter(|t| !t.usage.is_zero())
        .map(|t| (t.run_id.clone(), t.seq, t.usage))
        .collect()
}
