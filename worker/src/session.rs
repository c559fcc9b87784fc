//! The worker's registration with the coordinator: Register (and again when the coordinator
//! forgets it), the heartbeat that renews leases and carries stop and drain back, and the
//! self-fence that stops renders whose leases may have run out.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use proto::v1::{HeartbeatRequest, RegisterRequest, RegisterResponse};
use tonic::Code;
use tracing::{error, info, warn};

use crate::client::{self, Backoff, Client};
use crate::health::Health;
use crate::running::StopReason;
use crate::Shared;

/// Heartbeat interval when the coordinator gives none.
const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(5000);
/// Lease TTL when the coordinator gives none.
const DEFAULT_LEASE_TTL: Duration = Duration::from_millis(30_000);
/// Safety margin of the self-fence: stop this long before a lease could run out.
const FENCE_MARGIN: Duration = Duration::from_secs(10);
/// How often the self-fence looks at the running attempts.
const FENCE_TICK: Duration = Duration::from_millis(100);

/// The current registration.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) worker_id: String,
    pub(crate) heartbeat: Duration,
    pub(crate) lease_ttl: Duration,
    /// Bumped at each registration of this process.
    pub(crate) generation: u64,
}

impl Session {
    pub(crate) fn new(response: RegisterResponse, generation: u64) -> Self {
        let ms = |v: u32, default: Duration| {
            if v == 0 {
                default
            } else {
                Duration::from_millis(u64::from(v))
            }
        };
        Session {
            worker_id: response.worker_id,
            heartbeat: ms(response.heartbeat_interval_ms, DEFAULT_HEARTBEAT)
                .max(Duration::from_millis(50)),
            lease_ttl: ms(response.lease_ttl_ms, DEFAULT_LEASE_TTL),
            generation,
        }
    }

    /// How long an attempt may go without a successful renewal before it is stopped: the lease
    /// TTL less 10 s, or less a third of it for short leases.
    pub(crate) fn fence_window(&self) -> Duration {
        fence_window(self.lease_ttl)
    }
}

pub(crate) fn fence_window(lease_ttl: Duration) -> Duration {
    lease_ttl.saturating_sub(FENCE_MARGIN.min(lease_ttl / 3))
}

/// Registers, retrying with backoff while the coordinator cannot be reached. Fails on an
/// answer that retrying will not change (a rejected token, an invalid request).
pub(crate) async fn register(
    client: &Client,
    request: &RegisterRequest,
    health: &Health,
) -> anyhow::Result<RegisterResponse> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let mut tries = 0u32;
    loop {
        tries += 1;
        let mut c = client.clone();
        let result = client::with_deadline(
            client::UNARY_TIMEOUT,
            c.register(client::request(request.clone(), client::UNARY_TIMEOUT)),
        )
        .await;
        match result {
            Ok(response) => {
                health.link_ok();
                return Ok(response.into_inner());
            }
            Err(status) if client::is_transient(&status) => {
                let delay = backoff.after(&status);
                health.link_lost("Register", &status);
                tracing::debug!(tries, ?delay, "registering again after a pause");
                tokio::time::sleep(delay).await;
            }
            Err(status) => {
                anyhow::bail!(
                    "the coordinator refused to register this worker: {:?}: {}",
                    status.code(),
                    status.message()
                )
            }
        }
    }
}

/// Registers again after the coordinator forgot this worker (its registration expired). Every
/// attempt of the old registration is stopped: the coordinator has handed them on. Does
/// nothing if another task already did it since `seen_generation`.
pub(crate) async fn reregister(shared: &Shared, seen_generation: u64) {
    let _guard = shared.register_lock.lock().await;
    if shared.session().generation != seen_generation {
        return;
    }
    warn!(
        "the coordinator no longer knows this worker; stopping its attempts and registering again"
    );
    for running in shared.running.snapshot() {
        if running.generation <= seen_generation {
            running.stop(StopReason::Reregistered);
        }
    }
    loop {
        match register(&shared.client, &shared.register_request, &shared.health).await {
            Ok(response) => {
                let session = Session::new(response, seen_generation + 1);
                info!(worker_id = %session.worker_id, "registered again");
                *shared
                    .session
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = session;
                return;
            }
            Err(e) => {
                error!("cannot register again: {e:#}; retrying in 10 s");
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }
    }
}

/// Heartbeats every interval until aborted: renews the running attempts' leases, stops those
/// the coordinator names, starts draining or registers again when told to.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>) {
    let mut next = Instant::now() + shared.session().heartbeat;
    loop {
        tokio::time::sleep_until(next.into()).await;
        let session = shared.session();
        let running = shared.running.snapshot();
        let request = HeartbeatRequest {
            worker_id: session.worker_id.clone(),
            running: running.iter().map(|r| r.progress()).collect(),
        };
        let sent = Instant::now();
        next = sent + session.heartbeat;
        let mut c = shared.client.clone();
        let timeout = client::UNARY_TIMEOUT.min(session.fence_window().max(Duration::from_secs(1)));
        let result =
            client::with_deadline(timeout, c.heartbeat(client::request(request, timeout))).await;
        match result {
            Ok(response) => {
                shared.health.link_ok();
                let response = response.into_inner();
                let stop: HashSet<&str> = response
                    .stop
                    .iter()
                    .map(|a| a.attempt_id.as_str())
                    .collect();
                for r in &running {
                    if r.generation != session.generation {
                        continue;
                    }
                    if stop.contains(r.attempt_id()) {
                        if r.stop(StopReason::Coordinator) {
                            info!(render_id = %r.attempt.render_id, attempt = %r.attempt.attempt_id, "the coordinator stopped this attempt");
                        }
                    } else {
                        r.renewed(sent);
                    }
                }
                if response.drain {
                    shared.start_drain("the coordinator asked this worker to drain");
                }
                if response.reregister {
                    reregister(&shared, session.generation).await;
                    next = Instant::now() + shared.session().heartbeat;
                }
            }
            Err(status) if status.code() == Code::NotFound => {
                reregister(&shared, session.generation).await;
                next = Instant::now() + shared.session().heartbeat;
            }
            Err(status) if client::is_transient(&status) => {
                shared.health.link_lost("Heartbeat", &status);
            }
            Err(status) => {
                warn!(
                    code = ?status.code(),
                    detail = status.message(),
                    running = running.len(),
                    "heartbeat failed"
                );
            }
        }
    }
}

/// Stops every attempt whose lease has not been renewed within the fence window, measured from
/// the send time of its last successful renewal: by then the coordinator may have handed it
/// on. Runs until aborted.
pub(crate) async fn fence_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(FENCE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let window = shared.session().fence_window();
        for r in shared.running.snapshot() {
            let silent = r.renewed_at().elapsed();
            if silent >= window && r.stop(StopReason::LeaseLost) {
                warn!(
                    render_id = %r.attempt.render_id,
                    attempt = %r.attempt.attempt_id,
                    silent_s = silent.as_secs_f64(),
                    window_s = window.as_secs_f64(),
                    "no successful heartbeat within the lease's safety window; stopping the attempt and discarding its work"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_window_keeps_a_margin() {
        assert_eq!(
            fence_window(Duration::from_secs(30)),
            Duration::from_secs(20)
        );
        assert_eq!(fence_window(Duration::from_secs(3)), Duration::from_secs(2));
        assert_eq!(fence_window(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn session_defaults() {
        let s = Session::new(
            RegisterResponse {
                worker_id: "w".into(),
                heartbeat_interval_ms: 0,
                lease_ttl_ms: 0,
            },
            1,
        );
        assert_eq!(s.heartbeat, DEFAULT_HEARTBEAT);
        assert_eq!(s.lease_ttl, DEFAULT_LEASE_TTL);
        assert_eq!(s.fence_window(), Duration::from_secs(20));
    }
}
