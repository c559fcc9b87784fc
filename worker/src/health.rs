//! The worker's health as probes and operators see it: `/healthz` (the process is up) and
//! `/readyz` (registered with a coordinator, in contact with it, and not draining), served
//! beside `/metrics`; and one log line when the coordinator is lost and one when it is back,
//! however many calls fail in between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tracing::{info, warn};

/// What `/readyz` answers, and the lost/regained log lines.
#[derive(Debug, Default)]
pub(crate) struct Health {
    registered: AtomicBool,
    draining: AtomicBool,
    /// Since when calls to the coordinator have failed; `None` while in contact.
    lost_since: Mutex<Option<Instant>>,
}

impl Health {
    pub(crate) fn set_registered(&self, registered: bool) {
        self.registered.store(registered, Ordering::Relaxed);
    }

    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// A call to the coordinator failed for a reason that retrying may fix (`call`: which one,
    /// `why`: the status). Logs a warning the first time only.
    pub(crate) fn link_lost(&self, call: &str, why: &tonic::Status) {
        let mut since = self
            .lost_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if since.is_none() {
            *since = Some(Instant::now());
            warn!(
                call,
                code = ?why.code(),
                detail = why.message(),
                "cannot reach the coordinator; retrying until it answers"
            );
        } else {
            tracing::debug!(call, code = ?why.code(), detail = why.message(), "the coordinator is still unreachable");
        }
    }

    /// A call to the coordinator succeeded. Logs the reconnection if it had been lost.
    pub(crate) fn link_ok(&self) {
        let mut since = self
            .lost_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(lost) = since.take() {
            info!(
                after_s = lost.elapsed().as_secs_f64(),
                "reached the coordinator again"
            );
        }
    }

    /// `None` when ready, else why not.
    pub(crate) fn not_ready(&self) -> Option<String> {
        if self.draining.load(Ordering::Relaxed) {
            return Some("draining".to_owned());
        }
        if !self.registered.load(Ordering::Relaxed) {
            return Some("not registered with a coordinator".to_owned());
        }
        let since = *self
            .lost_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        since.map(|lost| format!("coordinator unreachable for {} s", lost.elapsed().as_secs()))
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<Arc<Health>>) -> (StatusCode, String) {
    match health.not_ready() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// `/healthz` and `/readyz`.
pub(crate) fn routes(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_registered_in_contact_and_not_draining() {
        let h = Health::default();
        assert_eq!(
            h.not_ready().as_deref(),
            Some("not registered with a coordinator")
        );
        h.set_registered(true);
        assert_eq!(h.not_ready(), None);
        h.link_lost(
            "Heartbeat",
            &tonic::Status::unavailable("connection refused"),
        );
        assert!(h
            .not_ready()
            .expect("lost")
            .starts_with("coordinator unreachable"));
        h.link_ok();
        assert_eq!(h.not_ready(), None);
        h.set_draining();
        assert_eq!(h.not_ready().as_deref(), Some("draining"));
    }
}
