//! The engine's sources of time and ids, injectable so tests control them.
//!
//! Every wait that is about the engine's notion of time (a retry's
//! not-before, a run's or a node's deadline) goes through [`Clock`]; waits
//! that only bound real IO (shutdown grace, a caller's long-poll) stay on
//! tokio's timer.

use futures::future::BoxFuture;
use std::time::Duration;

/// A source of time, injectable for tests.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Microseconds since the Unix epoch (precise waits for short retry
    /// delays). Defaults to [`Clock::now_ms`] in microseconds.
    fn now_us(&self) -> i64 {
        self.now_ms().saturating_mul(1000)
    }

    /// Waits until this clock reads `deadline_us` (µs since the epoch).
    /// The default sleeps on tokio's timer for the time this clock says is
    /// left, once; a test clock that is moved by hand overrides it to wake
    /// its sleepers when it is moved.
    fn sleep_until_us(&self, deadline_us: i64) -> BoxFuture<'_, ()> {
        let left = deadline_us.saturating_sub(self.now_us());
        Box::pin(async move {
            if left > 0 {
                tokio::time::sleep(Duration::from_micros(left as u64)).await;
            }
        })
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn now_us(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
}

/// `start_ms + ms`, saturating: a `timeout_ms` may come from a request (any u64).
pub(crate) fn deadline_after(start_ms: i64, ms: u64) -> i64 {
    start_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A source of ids, injectable for tests.
pub trait IdGen: Send + Sync {
    /// A new unique id with the given prefix (`run` → `run_…`).
    fn id(&self, prefix: &str) -> String;
}

/// Time-ordered UUID v7 ids.
pub struct UuidIds;

impl IdGen for UuidIds {
    fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
    }
}
