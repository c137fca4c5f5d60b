//! WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold (1,000 pages): that commit then also copies the WAL into the
//! database file and fsyncs it, so every few large commits one takes several
//! times longer. The writer connection turns it off
//! (`wal_autocheckpoint=0`) and this task, on a connection of its own, runs
//! `PRAGMA wal_checkpoint(PASSIVE)` once enough has been written. A passive
//! checkpoint runs beside the writer and readers; once the whole log is
//! copied the next commit starts the WAL file over, so it stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{Notify, oneshot};

/// Bytes written (estimated) after which a checkpoint runs: about SQLite's
/// own threshold of 1,000 pages of 4 KiB.
pub(crate) const CHECKPOINT_BYTES: u64 = 4 << 20;

/// Shared between the store (which counts) and the task (which checkpoints).
#[derive(Default)]
pub(crate) struct Signal {
    written: AtomicU64,
    due: Notify,
}

impl Signal {
    /// Counts a commit's bytes; wakes the task past the threshold.
    pub(crate) fn wrote(&self, bytes: u64) {
        let before = self.written.fetch_add(bytes, Ordering::Relaxed);
        if before < CHECKPOINT_BYTES && before + bytes >= CHECKPOINT_BYTES {
            self.due.notify_one();
        }
    }
}

/// The running task; [`Checkpointer::stop`] ends it and closes its connection.
pub(crate) struct Checkpointer {
    pub(crate) signal: Arc<Signal>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn start(mut conn: SqliteConnection) -> Checkpointer {
        let signal = Arc::new(Signal::default());
        let (stop, mut stopped) = oneshot::channel();
        let s = signal.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = s.due.notified() => {}
                }
                s.written.store(0, Ordering::Relaxed);
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying after more writes");
                }
            }
            let _ = conn.close().await;
        });
        Checkpointer {
            signal,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Ends the task and waits for its connection to close.
    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
