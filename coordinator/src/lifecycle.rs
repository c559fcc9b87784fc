//! The render state machine's decisions, as pure functions shared by every store backend.
//!
//! ```text
//! queued ──claim──► running ──complete──► succeeded
//!   ▲                  │ ──fail / lease lost / worker restart──► queued (backoff) | failed
//!   └──────────────────┘ ──cancel──► cancelled        queued|running ──deadline──► failed
//! ```
//! Stores run these inside the transaction that applies the transition, so every backend
//! retries, backs off and gives up the same way.

use crate::model::{FailureClass, Job, Millis};

/// Lease timing (DESIGN.md "Jobs"): heartbeat 5 s, lease 30 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeasePolicy {
    pub heartbeat_ms: u32,
    pub lease_ttl_ms: u32,
}

impl Default for LeasePolicy {
    fn default() -> Self {
        LeasePolicy {
            heartbeat_ms: 5_000,
            lease_ttl_ms: 30_000,
        }
    }
}

/// Retry budgets and backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all before an application failure is final.
    pub app_attempts: u32,
    /// Infrastructure failures (lost lease, crash) tolerated before the render fails.
    pub infra_attempts: u32,
    /// Backoff `min(cap, base·2ⁿ)` with full jitter.
    pub backoff_base_ms: u32,
    pub backoff_cap_ms: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            app_attempts: 3,
            infra_attempts: 5,
            backoff_base_ms: 2_000,
            backoff_cap_ms: 300_000,
        }
    }
}

/// What happens to a render after one of its attempts failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterFailure {
    /// Back to the queue, claimable from `not_before_ms`; the counters to store.
    Retry {
        not_before_ms: Millis,
        app_failures: u32,
        infra_failures: u32,
    },
    /// Terminal failure with these counters.
    Fail {
        app_failures: u32,
        infra_failures: u32,
    },
}

impl RetryPolicy {
    /// Backoff before retry number `n` (1 for the first retry): `min(cap, base·2ⁿ⁻¹)` scaled
    /// by `jitter` in `[0, 1]` (full jitter: callers pass a uniform random number; tests pass
    /// 1.0 for the upper bound).
    pub fn backoff_ms(&self, n: u32, jitter: f64) -> Millis {
        let exp = n.saturating_sub(1).min(20);
        let raw = u64::from(self.backoff_base_ms).saturating_mul(1u64 << exp);
        let capped = raw.min(u64::from(self.backoff_cap_ms));
        (capped as f64 * jitter.clamp(0.0, 1.0)).round() as Millis
    }

    /// Decides the fate of `job` after an attempt failed with `class` at `now`.
    pub fn after_failure(
        &self,
        job: &Job,
        class: FailureClass,
        now: Millis,
        jitter: f64,
    ) -> AfterFailure {
        let mut app = job.app_failures;
        let mut infra = job.infra_failures;
        let retry = match class {
            FailureClass::InvalidInput | FailureClass::DeadlineExceeded => false,
            FailureClass::Application => {
                app += 1;
                app < self.app_attempts
            }
            FailureClass::Infrastructure => {
                infra += 1;
                infra <= self.infra_attempts
            }
        };
        if !retry || now >= job.deadline_ms {
            return AfterFailure::Fail {
                app_failures: app,
                infra_failures: infra,
            };
        }
        let not_before_ms = now + self.backoff_ms(app + infra, jitter);
        AfterFailure::Retry {
            not_before_ms: not_before_ms.min(job.deadline_ms),
            app_failures: app,
            infra_failures: infra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobState, Lane};

    fn job(app: u32, infra: u32) -> Job {
        Job {
            id: "j".into(),
            tenant_id: "t".into(),
            idempotency_key: "k".into(),
            request_hash: String::new(),
            template_name: "x".into(),
            template_version: 1,
            template_digest: String::new(),
            lang: "en".into(),
            tokens: Default::default(),
            metadata: Default::default(),
            callback_url: String::new(),
            preset: "720p".into(),
            lane: Lane::Realtime,
            state: JobState::Running,
            created_ms: 0,
            updated_ms: 0,
            finished_ms: 0,
            started_ms: 0,
            not_before_ms: 0,
            deadline_ms: 1_000_000_000,
            attempts: app + infra + 1,
            app_failures: app,
            infra_failures: infra,
            lease_epoch: 1,
            attempt_id: "a".into(),
            worker_id: "w".into(),
            lease_expires_ms: 0,
            progress: 0.0,
            stage: String::new(),
            failure: None,
            warnings: vec![],
            output: None,
            stream_attempt_id: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ms(1, 1.0), 2_000);
        assert_eq!(p.backoff_ms(2, 1.0), 4_000);
        assert_eq!(p.backoff_ms(8, 1.0), 256_000);
        assert_eq!(p.backoff_ms(9, 1.0), 300_000);
        assert_eq!(p.backoff_ms(40, 1.0), 300_000);
        assert_eq!(p.backoff_ms(3, 0.5), 4_000);
    }

    #[test]
    fn application_failures_retry_twice_then_fail() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.after_failure(&job(0, 0), FailureClass::Application, 10, 1.0),
            AfterFailure::Retry {
                not_before_ms: 2_010,
                app_failures: 1,
                infra_failures: 0
            }
        ));
        assert!(matches!(
            p.after_failure(&job(1, 0), FailureClass::Application, 10, 1.0),
            AfterFailure::Retry {
                app_failures: 2,
                ..
            }
        ));
        assert!(matches!(
            p.after_failure(&job(2, 0), FailureClass::Application, 10, 1.0),
            AfterFailure::Fail {
                app_failures: 3,
                ..
            }
        ));
    }

    #[test]
    fn infrastructure_budget_is_separate() {
        let p = RetryPolicy::default();
        // Two application failures do not use up the infrastructure budget.
        assert!(matches!(
            p.after_failure(&job(2, 4), FailureClass::Infrastructure, 0, 1.0),
            AfterFailure::Retry {
                app_failures: 2,
                infra_failures: 5,
                ..
            }
        ));
        assert!(matches!(
            p.after_failure(&job(0, 5), FailureClass::Infrastructure, 0, 1.0),
            AfterFailure::Fail {
                infra_failures: 6,
                ..
            }
        ));
    }

    #[test]
    fn invalid_input_and_deadline_never_retry() {
        let p = RetryPolicy::default();
        for class in [FailureClass::InvalidInput, FailureClass::DeadlineExceeded] {
            assert!(matches!(
                p.after_failure(&job(0, 0), class, 0, 1.0),
                AfterFailure::Fail { .. }
            ));
        }
        let mut late = job(0, 0);
        late.deadline_ms = 5;
        assert!(matches!(
            p.after_failure(&late, FailureClass::Application, 5, 1.0),
            AfterFailure::Fail { .. }
        ));
    }
}
