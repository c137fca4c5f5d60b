//! Group commit: one writer task that turns the write batches of many
//! coordinators into one transaction (one fsync) and answers each caller
//! only once its writes are durable.

use braid_store::{RunStore, WriteOp};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<(), String>>;

/// Handle to the commit task.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<(Vec<WriteOp>, Reply)>,
}

/// How many queued requests at most go into one transaction.
const MAX_BATCH_REQUESTS: usize = 1024;

impl Committer {
    pub(crate) fn start(store: Arc<dyn RunStore>) -> Committer {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<WriteOp>, Reply)>();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while rx.recv_many(&mut buf, MAX_BATCH_REQUESTS).await > 0 {
                let mut ops = Vec::new();
                let mut replies = Vec::with_capacity(buf.len());
                for (o, r) in buf.drain(..) {
                    ops.extend(o);
                    replies.push(r);
                }
                let result = store.commit(ops).await.map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, "group commit failed");
                }
                for r in replies {
                    let _ = r.send(result.clone());
                }
            }
        });
        Committer { tx }
    }

    /// Writes `ops` durably (together with whatever else is queued).
    pub(crate) async fn commit(&self, ops: Vec<WriteOp>) -> Result<(), String> {
        if ops.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((ops, tx))
            .map_err(|_| "the commit task has stopped".to_string())?;
        rx.await
            .map_err(|_| "the commit task has stopped".to_string())?
    }
}
