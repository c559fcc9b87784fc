//! The attempts this worker is working on: their progress for heartbeats, when their lease was
//! last renewed (for self-fencing), and the stop signal the render loop and transfers watch.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use proto::v1::{AttemptProgress, AttemptRef};
use tokio::sync::watch;

/// Why an attempt stopped before it could report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The coordinator listed it in a heartbeat's `stop` (cancelled, past its deadline, or
    /// handed on).
    Coordinator,
    /// No successful heartbeat for too long: its lease may have run out (self-fence).
    LeaseLost,
    /// The coordinator forgot this worker; it registered again and its attempts are gone.
    Reregistered,
    /// The worker is shutting down and could not wait any longer (the drain deadline passed,
    /// or a second shutdown signal came): the attempt goes back to the farm when the worker
    /// deregisters.
    GivenBack,
}

impl StopReason {
    /// The `outcome` label of the attempts metric.
    pub(crate) fn outcome(self) -> &'static str {
        match self {
            StopReason::Coordinator => "stopped",
            StopReason::LeaseLost | StopReason::Reregistered => "discarded",
            StopReason::GivenBack => "given_back",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Coordinator => "the coordinator asked to stop it",
            StopReason::LeaseLost => {
                "no successful heartbeat within the lease's safety window (self-fenced)"
            }
            StopReason::Reregistered => "the worker had to register again",
            StopReason::GivenBack => {
                "the worker is shutting down and gives it back to the farm to render again"
            }
        })
    }
}

/// Where an attempt is, as heartbeats report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Stage {
    FetchTemplate = 0,
    Render = 1,
    Poster = 2,
    Upload = 3,
}

impl Stage {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::FetchTemplate => "fetch_template",
            Stage::Render => "render",
            Stage::Poster => "poster",
            Stage::Upload => "upload",
        }
    }

    fn from_u8(v: u8) -> Stage {
        match v {
            0 => Stage::FetchTemplate,
            1 => Stage::Render,
            2 => Stage::Poster,
            _ => Stage::Upload,
        }
    }
}

/// Share of the whole attempt done when a stage starts; rendering spans most of it.
const RENDER_START: f32 = 0.05;
const RENDER_END: f32 = 0.9;
const UPLOAD_START: f32 = 0.95;

/// One attempt in progress.
pub(crate) struct Running {
    /// The fence every write carries.
    pub(crate) attempt: AttemptRef,
    /// The registration it was acquired under.
    pub(crate) worker_id: String,
    pub(crate) generation: u64,
    /// Send time of the Acquire that handed it out.
    pub(crate) acquired_at: Instant,
    stage: AtomicU8,
    /// f32 bits of the overall progress, 0..=1.
    progress: AtomicU32,
    /// Send time of the last call that renewed the lease (the Acquire, then heartbeats).
    renewed_at: Mutex<Instant>,
    /// Set once; checked per frame by the render loop.
    cancelled: AtomicBool,
    stop: watch::Sender<Option<StopReason>>,
}

impl Running {
    pub(crate) fn new(
        attempt: AttemptRef,
        worker_id: String,
        generation: u64,
        acquired_at: Instant,
    ) -> Self {
        Running {
            attempt,
            worker_id,
            generation,
            acquired_at,
            stage: AtomicU8::new(Stage::FetchTemplate as u8),
            progress: AtomicU32::new(0f32.to_bits()),
            renewed_at: Mutex::new(acquired_at),
            cancelled: AtomicBool::new(false),
            stop: watch::Sender::new(None),
        }
    }

    pub(crate) fn attempt_id(&self) -> &str {
        &self.attempt.attempt_id
    }

    /// Enters `stage`, at its starting share of the progress.
    pub(crate) fn set_stage(&self, stage: Stage) {
        let progress = match stage {
            Stage::FetchTemplate => 0.0,
            Stage::Render => RENDER_START,
            Stage::Poster => RENDER_END,
            Stage::Upload => UPLOAD_START,
        };
        self.stage.store(stage as u8, Ordering::Relaxed);
        self.progress.store(progress.to_bits(), Ordering::Relaxed);
    }

    /// Render progress: `done` of `total` frames.
    pub(crate) fn set_render_progress(&self, done: u64, total: u64) {
        let share = if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).clamp(0.0, 1.0) as f32
        };
        let p = RENDER_START + share * (RENDER_END - RENDER_START);
        self.progress.store(p.to_bits(), Ordering::Relaxed);
    }

    /// The heartbeat entry.
    pub(crate) fn progress(&self) -> AttemptProgress {
        AttemptProgress {
            attempt: Some(self.attempt.clone()),
            progress: f32::from_bits(self.progress.load(Ordering::Relaxed)),
            stage: Stage::from_u8(self.stage.load(Ordering::Relaxed))
                .name()
                .to_owned(),
        }
    }

    /// A heartbeat sent at `sent` that listed this attempt succeeded.
    pub(crate) fn renewed(&self, sent: Instant) {
        let mut at = self
            .renewed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if sent > *at {
            *at = sent;
        }
    }

    /// Send time of the last renewal.
    pub(crate) fn renewed_at(&self) -> Instant {
        *self
            .renewed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the attempt (the first reason wins). Returns whether this call stopped it.
    pub(crate) fn stop(&self, reason: StopReason) -> bool {
        self.cancelled.store(true, Ordering::Relaxed);
        self.stop.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        })
    }

    /// Cheap check for the render loop.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Why it was stopped, if it was.
    pub(crate) fn stopped(&self) -> Option<StopReason> {
        *self.stop.borrow()
    }

    /// Resolves once the attempt is stopped.
    pub(crate) async fn wait_stopped(&self) -> StopReason {
        let mut rx = self.stop.subscribe();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => *reason,
            // The sender lives as long as `self`; unreachable, but never resolve spuriously.
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

/// The attempts in progress, by attempt id.
#[derive(Default)]
pub(crate) struct RunningSet {
    map: Mutex<HashMap<String, Arc<Running>>>,
}

impl RunningSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Running>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tracks `running` until the returned guard drops.
    pub(crate) fn track(self: &Arc<Self>, running: Arc<Running>) -> Tracked {
        self.lock()
            .insert(running.attempt_id().to_owned(), Arc::clone(&running));
        Tracked {
            set: Arc::clone(self),
            running,
        }
    }

    /// Every attempt in progress.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Running>> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Keeps an attempt in its [`RunningSet`] while alive.
pub(crate) struct Tracked {
    set: Arc<RunningSet>,
    pub(crate) running: Arc<Running>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.set.lock().remove(self.running.attempt_id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Running {
        let attempt = AttemptRef {
            render_id: "r".into(),
            attempt_id: "a".into(),
            lease_epoch: 3,
        };
        Running::new(attempt, "w".into(), 1, Instant::now())
    }

    #[test]
    fn progress_runs_through_the_stages() {
        let r = running();
        assert_eq!(r.progress().stage, "fetch_template");
        assert_eq!(r.progress().progress, 0.0);
        r.set_stage(Stage::Render);
        r.set_render_progress(50, 100);
        let p = r.progress();
        assert_eq!(p.stage, "render");
        assert!(p.progress > RENDER_START && p.progress < RENDER_END);
        r.set_stage(Stage::Upload);
        assert_eq!(r.progress().stage, "upload");
        assert_eq!(r.progress().attempt.map(|a| a.lease_epoch), Some(3));
    }

    #[test]
    fn first_stop_reason_wins() {
        let r = running();
        assert!(!r.is_cancelled());
        assert!(r.stop(StopReason::Coordinator));
        assert!(!r.stop(StopReason::LeaseLost));
        assert!(r.is_cancelled());
        assert_eq!(r.stopped(), Some(StopReason::Coordinator));
    }

    #[tokio::test]
    async fn tracked_entries_leave_the_set() {
        let set = Arc::new(RunningSet::default());
        let guard = set.track(Arc::new(running()));
        assert_eq!(set.len(), 1);
        guard.running.stop(StopReason::LeaseLost);
        assert_eq!(guard.running.wait_stopped().await, StopReason::LeaseLost);
        drop(guard);
        assert_eq!(set.len(), 0);
    }
}
