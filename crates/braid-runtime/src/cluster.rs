//! One process of a cluster sharing a PostgreSQL database (SPEC §7,
//! docs/postgres.md): its heartbeat, adoption of the runs of processes that
//! are gone, cancels requested through other processes, and the wake-ups
//! other processes send.
//!
//! Everything here is also done by polling every `heartbeat_ms`; the
//! wake-ups only make it sooner. Correctness does not depend on either:
//! fencing in the store refuses any commit of a run this process lost.

use crate::error::Error;
use crate::options::ClusterOptions;
use crate::recovery;
use crate::shared::Inner;
use crate::telemetry;
use braid_store::Wake;
use futures::StreamExt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Run trees adopted per store call.
const ADOPT_BATCH: u32 = 64;

/// Registers this process, adopts what is waiting for an owner, and starts
/// the heartbeat and the wake-up listener (both stop with the engine).
pub(crate) async fn join(inner: &Arc<Inner>, c: &ClusterOptions) -> Result<(), Error> {
    c.store.register(&c.server_id, c.lease_ms).await?;
    let wakes = c.store.wakes().await?;
    let live = c.store.heartbeat(&c.server_id, c.lease_ms).await?;
    telemetry::servers_live(inner.telemetry.metrics, live);
    inner.limits.set_live(live);
    adopt(inner, c).await?;
    let tick = Arc::new(Notify::new());
    tokio::spawn(heartbeat(Arc::downgrade(inner), c.clone(), tick.clone()));
    tokio::spawn(listen(Arc::downgrade(inner), wakes, tick));
    Ok(())
}

/// Gives this process's runs up at once (SIGTERM): the others adopt them
/// without waiting for the lease to run out.
pub(crate) async fn leave(c: &ClusterOptions) {
    if let Err(e) = c.store.stop(&c.server_id).await {
        tracing::warn!(error = %e, "could not mark this process stopped; its runs move after its lease");
    }
}

/// Adopts run trees until none is left waiting for an owner. Their tasks
/// are held while the runs are rebuilt, then handed to the executors.
async fn adopt(inner: &Arc<Inner>, c: &ClusterOptions) -> Result<(), Error> {
    loop {
        let adopted = c.store.adopt(&c.server_id, ADOPT_BATCH, c.lease_ms).await?;
        if adopted.runs.is_empty() {
            return Ok(());
        }
        tracing::info!(
            runs = adopted.runs.len(),
            "adopting runs of processes that are gone"
        );
        telemetry::runs_adopted(inner.telemetry.metrics, adopted.runs.len());
        recovery::adopt_runs(inner, adopted.runs).await?;
        inner.store.renew_leases(&adopted.held_tasks, 0).await?;
        inner.dispatcher.notify();
    }
}

/// Every `heartbeat_ms`, or sooner when woken: renews the lease, drops the
/// runs lost while this process was not heard from, adopts, and applies
/// cancels requested elsewhere.
async fn heartbeat(inner: Weak<Inner>, c: ClusterOptions, tick: Arc<Notify>) {
    let period = Duration::from_millis(c.heartbeat_ms.max(1));
    let mut last_beat = Instant::now();
    loop {
        // Real time: the heartbeat is the process's, not a run's.
        let _ = tokio::time::timeout(period, tick.notified()).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.dispatcher.is_draining() {
            return;
        }
        match c.store.heartbeat(&c.server_id, c.lease_ms).await {
            Ok(live) => {
                telemetry::servers_live(inner.telemetry.metrics, live);
                // Each live process takes an equal share of every provider limit.
                inner.limits.set_live(live);
                // Unheard of for a lease or more (paused, cut off): others
                // may have adopted runs live here.
                if last_beat.elapsed() >= Duration::from_millis(c.lease_ms as u64) {
                    drop_lost(&inner, &c).await;
                }
                last_beat = Instant::now();
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                continue;
            }
        }
        if let Err(e) = adopt(&inner, &c).await {
            tracing::warn!(error = %e, "adopting runs failed");
        }
        match c.store.cancel_requests(&c.server_id).await {
            Ok(requests) => {
                for r in requests {
                    inner.cancel_run(&r.run_id, &r.reason);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading cancel requests failed"),
        }
    }
}

/// Stops serving the runs live here that another process owns now.
async fn drop_lost(inner: &Arc<Inner>, c: &ClusterOptions) {
    match c.store.lost(&c.server_id, &inner.live_run_ids()).await {
        Ok(lost) => {
            for run in lost {
                tracing::warn!(run = %run, "another process adopted this run while this one was not heard from; dropping it here");
                inner.drop_run(&run);
            }
        }
        Err(e) => tracing::warn!(error = %e, "checking which runs are still owned failed"),
    }
}

/// Turns wake-ups from other processes into local work.
async fn listen(
    inner: Weak<Inner>,
    mut wakes: futures::stream::BoxStream<'static, Wake>,
    tick: Arc<Notify>,
) {
    while let Some(wake) = wakes.next().await {
        let Some(inner) = inner.upgrade() else { return };
        match wake {
            Wake::Runs(ids) => inner.remote_progress(ids),
            Wake::Cancel(_) | Wake::Servers => tick.notify_one(),
            Wake::Reconnected => {
                tick.notify_one();
                inner.remote_progress_all();
            }
        }
    }
}
