//! [`RunStatus`] and [`TokenStatus`] (docs/definitions.md), as stored, served and shown.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that is not one of the statuses it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus {
    /// What was given.
    pub given: String,
    /// The names that are accepted, for the message.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown status `{}`; expected one of: {}",
            self.given,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownStatus {}

/// Declares a status enum with its snake_case names in one place.
macro_rules! statuses {
    ($(#[doc = $tdoc:literal])+ $ty:ident { $( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, ended: $ended:literal; )+ }) => {
        $(#[doc = $tdoc])+
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $ty {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl $ty {
            /// Every status, in lifecycle order.
            pub const ALL: &'static [$ty] = &[ $( $ty::$variant, )+ ];
            const NAMES: &'static [&'static str] = &[ $( $name, )+ ];

            /// The name as stored and served, e.g. `"running"`.
            pub const fn as_str(self) -> &'static str {
                match self { $( $ty::$variant => $name, )+ }
            }

            /// True once nothing more happens to it.
            pub const fn is_ended(self) -> bool {
                match self { $( $ty::$variant => $ended, )+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL.iter().copied().find(|st| st.as_str() == s).ok_or_else(|| UnknownStatus {
                    given: s.to_string(),
                    expected: $ty::NAMES,
                })
            }
        }
    };
}

statuses! {
    /// A run's lifecycle: `running`, then exactly one of the three ended
    /// statuses, decided once.
    RunStatus {
        /// Live: at least one token is live, or the run has not ended yet.
        Running = "running", ended: false;
        /// Ended with an output.
        Completed = "completed", ended: true;
        /// Ended with an error (`run.error`).
        Failed = "failed", ended: true;
        /// Ended by request (or with its cancelled parent).
        Cancelled = "cancelled", ended: true;
    }
}

statuses! {
    /// A token's lifecycle (one visit of one node). Live: `pending`,
    /// `running`, `retry_wait`, `waiting_join`, `waiting_child`; ended: the rest.
    TokenStatus {
        /// Created, its node not yet started.
        Pending = "pending", ended: false;
        /// An attempt is dispatched or running.
        Running = "running", ended: false;
        /// Waiting for the next attempt (a durable not-before time).
        RetryWait = "retry_wait", ended: false;
        /// Arrived at a join, waiting for its siblings.
        WaitingJoin = "waiting_join", ended: false;
        /// Waiting for a child run.
        WaitingChild = "waiting_child", ended: false;
        /// Its node succeeded.
        Completed = "completed", ended: true;
        /// Its node failed.
        Failed = "failed", ended: true;
        /// Cancelled.
        Cancelled = "cancelled", ended: true;
        /// Merged by a join.
        Merged = "merged", ended: true;
    }
}

impl TokenStatus {
    /// True while the token still counts towards its run (not ended).
    pub const fn is_live(self) -> bool {
        !self.is_ended()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_know_when_they_ended() {
        for &s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for &s in TokenStatus::ALL {
            assert_eq!(s.as_str().parse::<TokenStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        let ended: Vec<_> = RunStatus::ALL
            .iter()
            .filter(|s| s.is_ended())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(ended, ["completed", "failed", "cancelled"]);
        let live: Vec<_> = TokenStatus::ALL
            .iter()
            .filter(|s| s.is_live())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            live,
            [
                "pending",
                "running",
                "retry_wait",
                "waiting_join",
                "waiting_child"
            ]
        );
        assert_eq!(
            "done".parse::<RunStatus>().unwrap_err().to_string(),
            "unknown status `done`; expected one of: running, completed, failed, cancelled"
        );
    }
}
