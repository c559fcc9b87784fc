//! worker: the render worker process, as a library the `reelfarm work` command runs.
//!
//! A worker pulls work from a coordinator over `reelfarm.v1.WorkerService` (see
//! `proto/reelfarm/v1/worker.proto`) and renders it with render-core:
//!
//! 1. **Register** with a fresh boot id and its capabilities (GPU adapter, encoders, slots),
//!    retrying with backoff until the coordinator answers.
//! 2. **Acquire** up to one assignment per free slot with 20 s long-polls, while not draining.
//! 3. Per assignment, in its own task (`attempt`): fetch the template bundle unless cached
//!    by digest (`cache`), smart-render the MP4 on a blocking thread with a pooled
//!    `render_core::Renderer` — segments from the worker's segment cache, else from the farm's
//!    (FetchSegment), else rendered by the process-wide encoder pool and shared (StoreSegment);
//!    the finished prefix published as a live HLS stream (PublishStream, `segments`) — render a
//!    JPEG poster (`render`), upload both in 1 MiB chunks
//!    (`upload`), then **Complete** — or **Fail** with a failure class. Every write carries
//!    the attempt's fence (render id, attempt id, lease epoch).
//! 4. **Heartbeat** (`session`) renews the leases of running attempts, stops the ones the
//!    coordinator names, and carries drain and re-register requests back.
//! 5. On the shutdown signal or a drain request: acquire nothing more, let running attempts
//!    finish for at most [`WorkerConfig::drain_timeout`] (or until a second signal, see
//!    [`run_with_force`]), give back the ones still running, **Deregister** (the coordinator
//!    requeues what was given back), return.
//!
//! **Invariants:**
//! - A stopped attempt (named in a heartbeat's `stop`, or self-fenced) is never Completed or
//!   Failed: its render stops at the next frame and its output is deleted.
//! - Self-fence: an attempt without a successful renewal for the lease TTL less 10 s (less a
//!   third of a short TTL), measured from the renewal's send time, is stopped and discarded.
//! - FAILED_PRECONDITION or NOT_FOUND on a write means the attempt is someone else's now: its
//!   work is discarded, never retried. UNAVAILABLE and other transient failures retry the
//!   same (idempotent) call.
//! - Recipient token values never appear in logs, spans or failure messages.
//!
//! Probes ([`WorkerConfig::metrics_addr`]): `/healthz` answers 200 while the process runs;
//! `/readyz` answers 200 once registered, while in contact with the coordinator and not
//! draining, else 503 saying why.
//!
//! Metrics ([`WorkerConfig::metrics_addr`]): `reelfarm_worker_attempts_total{outcome}`,
//! `reelfarm_worker_stage_seconds{stage}` (with `first_playable`: acquire to the first
//! published stream segment), `reelfarm_worker_slots_busy`, `reelfarm_worker_slots`,
//! `reelfarm_worker_segment_cache_{hits_total{source},misses_total,corrupt_total,
//! evictions_total,read_bytes_total,written_bytes_total,bytes,entries}`,
//! `reelfarm_worker_encoders`.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let mut config = worker::WorkerConfig::new(
//!     "http://coordinator:7070",
//!     "join-token",
//!     "/var/cache/reelfarm",
//! );
//! config.slots = 2;
//! let gpu = worker::Gpu::new();
//! worker::run(config, gpu.clone(), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! // After the runtime has shut down: destroy the GPU devices last.
//! gpu.close();
//! # Ok(())
//! # }
//! ```

mod attempt;
mod cache;
mod client;
mod config;
mod error;
mod health;
mod metrics;
mod render;
mod running;
mod runtime;
mod segments;
mod session;
mod upload;

pub use config::{
    default_name, ConfigError, WorkerConfig, DEFAULT_DRAIN_TIMEOUT, DEFAULT_SEGMENT_CACHE_BYTES,
    MAX_NAME_CHARS, MAX_SLOTS,
};
pub use render::Gpu;
pub use runtime::{run, run_with_force, ACQUIRE_WAIT_MS};

use runtime::Shared;
