//! Provider limits (SPEC §4 "Provider limits are shared"): concurrency,
//! requests per minute and tokens per minute belong to an endpoint
//! (provider, base URL, model, key variable), not to one workflow version.
//! Every model profile of that endpoint, in every run and version of this
//! process, draws from one [`Endpoint`]; where profiles and the server
//! configuration declare different limits, the smallest holds. On a
//! cluster each live process takes an equal share of every limit
//! ([`Limits::set_live`]), so the processes together stay within it.
//!
//! Concurrency is a tokio semaphore. The rate limits are token buckets of
//! our own ([`Bucket`]), not governor's: their size changes while calls are
//! waiting (a profile declaring a smaller limit, a process joining) and the
//! tokens bucket is corrected by the usage the provider reports, neither of
//! which governor's fixed quota and non-refundable cells allow
//! (docs/decisions.md 69).
//!
//! A call reserves its bucket tokens first (the bucket may go below zero: the
//! reservation says how long to wait, so waiting calls are served in order),
//! then waits out the reservation, then takes a concurrency slot. All of it
//! happens before the attempt's timeout starts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// `max_concurrency` of a model profile that does not set one.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 16;

/// How much later than its token a call that had to wait for one goes. The
/// provider's bucket counts from when requests *arrive*, a little after our
/// reservations (connection set-up, scheduling), so while it sat full it
/// lost some refill ours counted: a call sent at the very instant its token
/// is due here would find the provider's bucket a fraction of a token short
/// and earn a 429. A constant delay on waiting calls costs no throughput
/// (the next reservation is not pushed back).
pub const SEND_MARGIN: Duration = Duration::from_millis(50);

/// What a limit is shared by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointKey {
    /// `openai`, `anthropic`, `openai_compatible`, `scripted`.
    pub provider: String,
    /// The profile's `base_url`, else the provider's default, without a
    /// trailing `/` (empty when the provider has none).
    pub base_url: String,
    /// The provider's model name.
    pub model: String,
    /// The environment variable holding the key: two keys are two quotas.
    pub key_env: Option<String>,
}

/// Limits declared for an endpoint by a profile or the configuration;
/// `None` is no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    /// Calls in flight.
    pub max_concurrency: Option<u32>,
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Prompt and completion tokens per minute.
    pub tokens_per_minute: Option<u32>,
}

impl Declared {
    /// The smaller of each limit.
    pub fn min(self, other: Declared) -> Declared {
        fn least(a: Option<u32>, b: Option<u32>) -> Option<u32> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Declared {
            max_concurrency: least(self.max_concurrency, other.max_concurrency),
            requests_per_minute: least(self.requests_per_minute, other.requests_per_minute),
            tokens_per_minute: least(self.tokens_per_minute, other.tokens_per_minute),
        }
    }
}

/// One `[[llm.endpoints]]` entry of the server configuration. It applies to
/// every key variable of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointLimit {
    /// The provider name.
    pub provider: String,
    /// `None`: the provider's default base URL.
    pub base_url: Option<String>,
    /// The provider's model name.
    pub model: String,
    /// The limits.
    pub limits: Declared,
}

/// A base URL as endpoints are compared: without a trailing `/`.
pub fn normalize_base_url(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// Every endpoint's limiter in this process, and the number of live
/// processes that share each limit.
pub struct Limits {
    config: Vec<EndpointLimit>,
    endpoints: Mutex<HashMap<EndpointKey, Arc<Endpoint>>>,
    live: AtomicU64,
}

impl Limits {
    /// The limiters, with the configuration's `[[llm.endpoints]]`. Alone
    /// until [`Limits::set_live`] says otherwise.
    pub fn new(config: Vec<EndpointLimit>) -> Limits {
        Limits {
            config,
            endpoints: Mutex::new(HashMap::new()),
            live: AtomicU64::new(1),
        }
    }

    /// The number of live processes sharing every limit (at least 1); each
    /// endpoint resizes at its next call.
    pub fn set_live(&self, processes: u64) {
        self.live.store(processes.max(1), Ordering::Relaxed);
    }

    /// See [`Limits::set_live`].
    pub fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// The limiter of `key`, which now also holds `declared` (a profile's
    /// limits): created on first use with the configuration's limits for it.
    pub fn endpoint(&self, key: &EndpointKey, declared: Declared) -> Arc<Endpoint> {
        let mut endpoints = self.endpoints.lock().expect("endpoints lock");
        let endpoint = endpoints.entry(key.clone()).or_insert_with(|| {
            let configured = self
                .config
                .iter()
                .filter(|c| {
                    c.provider == key.provider
                        && c.model == key.model
                        && c.base_url
                            .as_deref()
                            .map_or(String::new(), normalize_base_url)
                            == key.base_url
                })
                .fold(declared, |d, c| d.min(c.limits));
            Arc::new(Endpoint::new(configured, self.live()))
        });
        endpoint.declare(declared);
        endpoint.clone()
    }

    /// Waits for `endpoint`'s bucket tokens (one request, `tokens` estimated
    /// prompt tokens) and then for a concurrency slot. Cancel-safe: dropped
    /// before it resolves, it gives its reservation back.
    pub async fn acquire(&self, endpoint: &Arc<Endpoint>, tokens: u64) -> Permit {
        let start = Instant::now();
        let drawn = endpoint.reserve(self.live(), tokens as f64, start);
        let mut reservation = Reservation {
            endpoint,
            drawn,
            armed: true,
        };
        let slots = endpoint.slots.clone();
        // The common case, with no clock read: tokens and a slot at once.
        let (slot, waited) = match slots.clone().try_acquire_owned() {
            Ok(slot) if drawn.wait.is_zero() => (slot, Duration::ZERO),
            free => {
                drop(free);
                if !drawn.wait.is_zero() {
                    tokio::time::sleep_until(start + drawn.wait + SEND_MARGIN).await;
                }
                let slot = slots
                    .acquire_owned()
                    .await
                    .expect("an endpoint's semaphore is never closed");
                (slot, start.elapsed())
            }
        };
        reservation.armed = false;
        Permit {
            endpoint: endpoint.clone(),
            slot: Some(slot),
            tokens: drawn.tokens,
            waited,
        }
    }
}

/// The limiter of one endpoint.
pub struct Endpoint {
    slots: Arc<Semaphore>,
    /// Slots to forget as they come back, after the limit shrank while they
    /// were taken.
    owed: AtomicUsize,
    state: Mutex<State>,
}

struct State {
    declared: Declared,
    /// The process count the sizes below are the share of.
    live: u64,
    /// Slots the semaphore stands for (taken, free and owed).
    slots: usize,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

/// What one call reserved.
#[derive(Clone, Copy)]
struct Drawn {
    tokens: f64,
    wait: Duration,
}

impl Endpoint {
    fn new(declared: Declared, live: u64) -> Endpoint {
        let endpoint = Endpoint {
            slots: Arc::new(Semaphore::new(0)),
            owed: AtomicUsize::new(0),
            state: Mutex::new(State {
                declared,
                live: 0,
                slots: 0,
                requests: None,
                tokens: None,
            }),
        };
        endpoint.resize(&mut endpoint.state.lock().expect("endpoint lock"), live);
        endpoint
    }

    /// The limits in force for the whole cluster (this process has its share).
    pub fn declared(&self) -> Declared {
        self.state.lock().expect("endpoint lock").declared
    }

    /// Lowers the limits to `declared` where it is smaller.
    fn declare(&self, declared: Declared) {
        let mut state = self.state.lock().expect("endpoint lock");
        let least = state.declared.min(declared);
        if least != state.declared {
            state.declared = least;
            let live = state.live;
            self.resize(&mut state, live);
        }
    }

    /// Sizes the semaphore and the buckets to this process's share.
    fn resize(&self, state: &mut State, live: u64) {
        let now = Instant::now();
        state.live = live;
        let d = state.declared;
        let limit = d.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY) as u64;
        let share = (limit / live).max(1) as usize;
        if share > state.slots {
            let mut more = share - state.slots;
            // Slots still owed need not be forgotten any more.
            while more > 0
                && self
                    .owed
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| o.checked_sub(1))
                    .is_ok()
            {
                more -= 1;
            }
            self.slots.add_permits(more);
        } else if share < state.slots {
            let fewer = state.slots - share;
            let forgotten = self.slots.forget_permits(fewer);
            self.owed.fetch_add(fewer - forgotten, Ordering::AcqRel);
        }
        state.slots = share;
        let bucket = |bucket: &mut Option<Bucket>, per_minute: Option<u32>| match per_minute {
            None => *bucket = None,
            Some(r) => {
                let capacity = r as f64 / live as f64;
                match bucket {
                    Some(b) => b.resize(capacity, now),
                    None => *bucket = Some(Bucket::full(capacity, now)),
                }
            }
        };
        bucket(&mut state.requests, d.requests_per_minute);
        bucket(&mut state.tokens, d.tokens_per_minute);
    }

    /// Takes one request and `tokens` from the buckets now; says how long
    /// to wait before the call may go.
    fn reserve(&self, live: u64, tokens: f64, now: Instant) -> Drawn {
        let mut state = self.state.lock().expect("endpoint lock");
        if state.live != live {
            self.resize(&mut state, live);
        }
        let mut wait = Duration::ZERO;
        if let Some(b) = &mut state.requests {
            wait = wait.max(b.take(1.0, now));
        }
        let tokens = match &mut state.tokens {
            Some(b) => {
                // A prompt larger than the whole bucket waits for a full
                // bucket, not forever.
                let tokens = tokens.min(b.capacity);
                wait = wait.max(b.take(tokens, now));
                tokens
            }
            None => 0.0,
        };
        Drawn { tokens, wait }
    }

    /// Gives back what a call that never went out reserved.
    fn refund(&self, drawn: Drawn) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("endpoint lock");
        if let Some(b) = &mut state.requests {
            b.put(1.0, now);
        }
        if let Some(b) = &mut state.tokens {
            b.put(drawn.tokens, now);
        }
    }

    /// Replaces a call's estimated tokens by those it really used.
    fn correct(&self, estimated: f64, used: f64) {
        let now = Instant::now();
        if let Some(b) = &mut self.state.lock().expect("endpoint lock").tokens {
            b.put(estimated - used, now);
        }
    }

    /// Slots free now (for tests and the benchmark).
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }
}

/// A reservation not yet turned into a [`Permit`]: refunded if dropped.
struct Reservation<'a> {
    endpoint: &'a Endpoint,
    drawn: Drawn,
    armed: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.endpoint.refund(self.drawn);
        }
    }
}

/// A call's right to go: a concurrency slot (released on drop) and the
/// tokens it drew.
pub struct Permit {
    endpoint: Arc<Endpoint>,
    slot: Option<OwnedSemaphorePermit>,
    tokens: f64,
    waited: Duration,
}

impl Permit {
    /// How long the call waited for its slot and tokens.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The provider reported `used` tokens (prompt and completion): the
    /// tokens bucket is charged that instead of the estimate.
    pub fn settle(&mut self, used: u64) {
        let estimated = std::mem::take(&mut self.tokens);
        self.endpoint.correct(estimated, used as f64);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let owed = &self.endpoint.owed;
        if owed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| o.checked_sub(1))
            .is_ok()
        {
            // The limit shrank while this slot was out: it does not come back.
            slot.forget();
        }
    }
}

/// A token bucket: `capacity` tokens, full at start, refilled continuously
/// at `capacity / 60` per second. Its level may go below zero: those are
/// tokens reserved by calls still waiting.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    capacity: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn full(capacity: f64, now: Instant) -> Bucket {
        Bucket {
            capacity,
            level: capacity,
            at: now,
        }
    }

    fn per_second(&self) -> f64 {
        self.capacity / 60.0
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * self.per_second()).min(self.capacity);
        self.at = self.at.max(now);
    }

    /// Takes `n` tokens; the wait until the bucket has refilled them.
    pub(crate) fn take(&mut self, n: f64, now: Instant) -> Duration {
        self.refill(now);
        self.level -= n;
        if self.level >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.level / self.per_second())
        }
    }

    /// Puts `n` tokens back (or takes `-n` more), never above capacity.
    fn put(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.level = (self.level + n).min(self.capacity);
    }

    fn resize(&mut self, capacity: f64, now: Instant) {
        self.refill(now);
        self.capacity = capacity;
        self.level = self.level.min(capacity);
    }
}

#[cfg(test)]
mod tests;
