//! Retry policy as data (docs/definitions.md), with a pure delay function.

use braid_types::ErrorCode;
use serde::{Deserialize, Serialize};

/// `retry_policy: { max_attempts, backoff, initial_delay_ms, max_delay_ms, retryable_errors }`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (default 1: no retry).
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// How the delay grows.
    #[serde(default)]
    pub backoff: Backoff,
    /// Base delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_ms: Option<u64>,
    /// Cap of the computed delay (not of a provider's `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    /// Codes that are retried; by default those whose
    /// `ErrorCode::retryable_by_default` is true. A name that is not a
    /// code is a shape error at save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable_errors: Option<Vec<ErrorCode>>,
}

fn one() -> u32 {
    1
}

/// Delay growth.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// No delay.
    #[default]
    None,
    /// `initial × n`.
    Linear,
    /// `initial × 2^(n-1)`.
    Exponential,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::None,
            initial_delay_ms: None,
            max_delay_ms: None,
            retryable_errors: None,
        }
    }
}

impl RetryPolicy {
    /// Whether `code` may be retried under this policy. `BUDGET_EXCEEDED`
    /// never is: a spent budget stays spent.
    pub fn retries(&self, code: ErrorCode) -> bool {
        if code == ErrorCode::BudgetExceeded {
            return false;
        }
        match &self.retryable_errors {
            Some(list) => list.contains(&code),
            None => code.retryable_by_default(),
        }
    }

    /// Delay before attempt `n + 1` after attempt `n` (1-based) failed,
    /// before jitter and before any `Retry-After`.
    pub fn base_delay_ms(&self, n: u32) -> u64 {
        let initial = self.initial_delay_ms.unwrap_or(0);
        let raw = match self.backoff {
            Backoff::None => 0,
            Backoff::Linear => initial.saturating_mul(u64::from(n)),
            Backoff::Exponential => {
                let shift = n.saturating_sub(1).min(63);
                initial.saturating_mul(1u64 << shift)
            }
        };
        match self.max_delay_ms {
            Some(cap) => raw.min(cap),
            None => raw,
        }
    }

    /// The delay before attempt `n + 1`: the base delay with jitter uniform
    /// in ±10 % (`jitter` in `[-1, 1]` is the caller's random sample, so this
    /// stays pure), replaced by `retry_after_ms` when that is longer (a
    /// provider's `Retry-After` is never capped: retrying sooner only earns
    /// another 429).
    pub fn delay_ms(&self, n: u32, jitter: f64, retry_after_ms: Option<u64>) -> u64 {
        let base = self.base_delay_ms(n) as f64;
        let j = jitter.clamp(-1.0, 1.0) * 0.1;
        let mut jittered = (base * (1.0 + j)).round().max(0.0) as u64;
        // The cap is a hard bound: jitter never pushes past it.
        if let Some(cap) = self.max_delay_ms {
            jittered = jittered.min(cap);
        }
        match retry_after_ms {
            Some(ra) if ra > jittered => ra,
            _ => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, initial: u64, cap: Option<u64>) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff,
            initial_delay_ms: Some(initial),
            max_delay_ms: cap,
            retryable_errors: None,
        }
    }

    #[test]
    fn delays_follow_backoff_and_cap() {
        let none = policy(Backoff::None, 100, None);
        assert_eq!(
            (1..=3).map(|n| none.base_delay_ms(n)).collect::<Vec<_>>(),
            [0, 0, 0]
        );
        let lin = policy(Backoff::Linear, 100, None);
        assert_eq!(
            (1..=3).map(|n| lin.base_delay_ms(n)).collect::<Vec<_>>(),
            [100, 200, 300]
        );
        let exp = policy(Backoff::Exponential, 100, Some(350));
        assert_eq!(
            (1..=4).map(|n| exp.base_delay_ms(n)).collect::<Vec<_>>(),
            [100, 200, 350, 350]
        );
        // Huge attempt numbers saturate instead of overflowing.
        let exp = policy(Backoff::Exponential, u64::MAX / 2, None);
        assert_eq!(exp.base_delay_ms(200), u64::MAX);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_retry_after_wins_when_longer() {
        let capped = policy(Backoff::Linear, 1000, Some(1000));
        assert_eq!(
            capped.delay_ms(3, 1.0, None),
            1000,
            "jitter never exceeds the cap"
        );
        let p = policy(Backoff::Linear, 1000, Some(1500));
        for i in -10..=10 {
            let d = p.delay_ms(1, f64::from(i) / 10.0, None);
            assert!((900..=1100).contains(&d), "{d}");
        }
        assert_eq!(p.delay_ms(1, 0.0, None), 1000);
        assert_eq!(p.delay_ms(1, 5.0, None), 1100, "jitter sample is clamped");
        // Retry-After longer than the computed delay replaces it, uncapped.
        assert_eq!(p.delay_ms(2, 0.0, Some(60_000)), 60_000);
        // Shorter Retry-After does not shorten the delay.
        assert_eq!(p.delay_ms(2, 0.0, Some(10)), 1500);
    }

    #[test]
    fn retryable_codes_default_and_override() {
        let mut p = RetryPolicy::default();
        assert!(p.retries(ErrorCode::Unavailable) && p.retries(ErrorCode::Timeout));
        assert!(!p.retries(ErrorCode::InvalidRequest) && !p.retries(ErrorCode::Auth));
        p.retryable_errors = Some(vec![ErrorCode::SchemaMismatch]);
        assert!(p.retries(ErrorCode::SchemaMismatch) && !p.retries(ErrorCode::Unavailable));
    }
}
