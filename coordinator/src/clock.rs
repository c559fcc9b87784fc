//! The coordinator's clock: wall-clock milliseconds, or a manual clock for tests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::Millis;

/// Unix epoch milliseconds for leases, deadlines and timestamps.
///
/// [`Clock::system`] is wall time at start plus tokio time elapsed since, so it follows
/// `tokio::time::pause`/`advance` in tests and does not jump with later NTP steps.
/// [`Clock::manual`] moves only when told to ([`Clock::advance`]).
#[derive(Debug, Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    System {
        base_ms: Millis,
        start: tokio::time::Instant,
    },
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// Starts at the current wall time.
    pub fn system() -> Clock {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        Clock {
            source: Source::System {
                base_ms,
                start: tokio::time::Instant::now(),
            },
        }
    }

    /// A clock standing at `at_ms` until advanced.
    pub fn manual(at_ms: Millis) -> Clock {
        Clock {
            source: Source::Manual(Arc::new(AtomicI64::new(at_ms))),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, ms: Millis) {
        if let Source::Manual(now) = &self.source {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> Millis {
        match &self.source {
            Source::System { base_ms, start } => base_ms + start.elapsed().as_millis() as Millis,
            Source::Manual(now) => now.load(Ordering::SeqCst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = Clock::manual(1_000);
        let shared = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        shared.advance(500);
        assert_eq!(c.now_ms(), 1_500);
    }

    #[tokio::test(start_paused = true)]
    async fn system_clock_follows_tokio_time() {
        let c = Clock::system();
        let t0 = c.now_ms();
        tokio::time::advance(std::time::Duration::from_secs(31)).await;
        assert_eq!(c.now_ms() - t0, 31_000);
    }
}
