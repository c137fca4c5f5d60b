//! W2 with one live WebSocket client attached (`braid-bench --live`): the
//! engine is served by `braid-server` in this process, a tokio-tungstenite
//! client follows `/api/runs/{id}/live` from the moment the run starts, and
//! the result says how long the run took, when the client had seen its
//! `end`, and how many events it received against how many were stored.

use crate::workloads::{Bench, Workload};
use anyhow::{Context, bail};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What one live run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveResult {
    /// Always W2.
    pub workload: Workload,
    /// Branches.
    pub size: u64,
    /// `start_run` until the engine reported the run ended (s), as in `--one`.
    pub run_s: f64,
    /// `start_run` until the client read the `end` frame (s).
    pub client_end_s: f64,
    /// Events stored for the run.
    pub events_stored: u64,
    /// Events the client received (each seq once, in order: checked).
    pub events_received: u64,
    /// `events` frames received.
    pub frames: u64,
    /// Peak resident memory of the process (KiB).
    pub vmhwm_kib: Option<u64>,
}

/// What the client saw.
struct Followed {
    events: u64,
    frames: u64,
    ended: Instant,
}

/// Runs W2 `size` once untimed, then once timed with a live client attached.
pub async fn measure(size: u64, db_parent: &Path) -> anyhow::Result<LiveResult> {
    let bench = Bench::prepare(Workload::W2, size, db_parent).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(braid_server::serve(
        listener,
        braid_server::AppState::new(bench.engine.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    bench.run().await.context("the warm-up run")?;

    let started = bench.start().await?;
    let t0 = started.t0;
    let url = format!("ws://{addr}/api/runs/{}/live", started.id);
    let client = tokio::spawn(follow(url));
    let sample = bench.finish(started).await?;
    let followed = client.await??;
    let result = LiveResult {
        workload: Workload::W2,
        size,
        run_s: sample.secs,
        client_end_s: followed.ended.duration_since(t0).as_secs_f64(),
        events_stored: sample.events,
        events_received: followed.events,
        frames: followed.frames,
        vmhwm_kib: crate::workloads::vmhwm_kib(),
    };
    let _ = stop.send(());
    serving.await??;
    bench.shutdown().await;
    if result.events_received != result.events_stored {
        bail!(
            "the client received {} events, {} are stored",
            result.events_received,
            result.events_stored
        );
    }
    Ok(result)
}

/// A live frame as this client reads it: its `type` and each event's `seq`,
/// which is all the check needs. A plain struct, not an internally tagged
/// enum: serde would buffer a tagged frame's every payload as a tree before
/// looking at the tag, and this client would measure its own JSON parsing on
/// the same two cores as the run. Skipped fields are scanned, not built.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<Seq>,
}

#[derive(Deserialize)]
struct Seq {
    seq: i64,
}

/// Reads a run's live stream to its `end`, checking that seqs follow 1, 2, 3 …
async fn follow(url: String) -> anyhow::Result<Followed> {
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let (mut events, mut frames) = (0u64, 0u64);
    while let Some(msg) = socket.next().await {
        let Message::Text(text) = msg? else { continue };
        let frame: Frame = serde_json::from_str(text.as_str())?;
        match frame.kind.as_str() {
            "events" => {
                frames += 1;
                for e in frame.events {
                    if e.seq as u64 != events + 1 {
                        bail!("received seq {} after {events}", e.seq);
                    }
                    events += 1;
                }
            }
            "end" => {
                return Ok(Followed {
                    events,
                    frames,
                    ended: Instant::now(),
                });
            }
            other => bail!("unexpected frame type {other:?}"),
        }
    }
    bail!("the stream closed before `end` after {events} events")
}
