//! Prometheus metrics of the coordinator, served at `/metrics`.
//!
//! Labels carry lanes, states, failure classes and stage names only; never tenant data or
//! recipient values.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn label(key: &'static str, value: impl Into<String>) -> Labels {
    vec![(key, value.into())]
}

/// Every metric the coordinator exports.
pub struct Metrics {
    registry: Registry,
    queue_depth: Family<Labels, Gauge>,
    running: Gauge,
    workers: Gauge,
    worker_slots: Gauge,
    utilization: Gauge<f64, std::sync::atomic::AtomicU64>,
    submitted: Family<Labels, Counter>,
    finished: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    stale_writes: Counter,
    lease_expiries: Counter,
    leftovers_deleted: Counter,
    submit_to_acquire: Family<Labels, Histogram>,
    submit_to_finish: Family<Labels, Histogram>,
    stage_seconds: Family<Labels, Histogram>,
    store_repairs: Family<Labels, Gauge>,
    /// Stores whose writer repairs are reported, by name.
    stores: std::sync::Mutex<Vec<(&'static str, Arc<sqlstore::Health>)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("reelfarm");
        let m = Metrics {
            queue_depth: Family::default(),
            running: Gauge::default(),
            workers: Gauge::default(),
            worker_slots: Gauge::default(),
            utilization: Gauge::default(),
            submitted: Family::default(),
            finished: Family::default(),
            failures: Family::default(),
            stale_writes: Counter::default(),
            lease_expiries: Counter::default(),
            leftovers_deleted: Counter::default(),
            submit_to_acquire: Family::new_with_constructor(latency_histogram),
            submit_to_finish: Family::new_with_constructor(latency_histogram),
            stage_seconds: Family::new_with_constructor(latency_histogram),
            store_repairs: Family::default(),
            stores: std::sync::Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "queue_depth",
            "Renders waiting, by lane",
            m.queue_depth.clone(),
        );
        registry.register(
            "renders_running",
            "Renders being rendered",
            m.running.clone(),
        );
        registry.register("workers", "Registered workers", m.workers.clone());
        registry.register(
            "worker_slots",
            "Render slots of registered workers",
            m.worker_slots.clone(),
        );
        registry.register(
            "worker_utilization",
            "Running renders over worker slots (0..1)",
            m.utilization.clone(),
        );
        registry.register(
            "renders_submitted",
            "Renders queued, by lane",
            m.submitted.clone(),
        );
        registry.register(
            "renders_finished",
            "Renders that reached a terminal state, by state",
            m.finished.clone(),
        );
        registry.register(
            "attempt_failures",
            "Failed attempts, by failure class",
            m.failures.clone(),
        );
        registry.register(
            "stale_writes",
            "Worker writes refused because their attempt was not current",
            m.stale_writes.clone(),
        );
        registry.register(
            "lease_expiries",
            "Leases that ran out (worker lost)",
            m.lease_expiries.clone(),
        );
        registry.register(
            "leftover_files_deleted",
            "Files of losing attempts deleted after their render finished",
            m.leftovers_deleted.clone(),
        );
        registry.register(
            "submit_to_acquire_seconds",
            "Time from submission to a worker acquiring the render, by lane",
            m.submit_to_acquire.clone(),
        );
        registry.register(
            "submit_to_finish_seconds",
            "Time from submission to a terminal state, by state",
            m.submit_to_finish.clone(),
        );
        registry.register(
            "stage_seconds",
            "Seconds per render stage reported by workers, by stage",
            m.stage_seconds.clone(),
        );
        registry.register(
            "store_writer_repairs",
            "Times a store's writer connection was found inside a transaction it did not open \
             and was rolled back, since start, by store (0 unless something is wrong)",
            m.store_repairs.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Reports the writer repairs of the store named `name`.
    pub fn watch_store(&self, name: &'static str, health: Arc<sqlstore::Health>) {
        self.stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name, health));
    }

    pub fn set_queue(&self, queued: [u64; 2], running: u64, workers: u64, slots: u64) {
        for lane in crate::model::Lane::ALL {
            self.queue_depth
                .get_or_create(&label("lane", lane.name()))
                .set(queued[lane.as_i64() as usize] as i64);
        }
        self.running.set(running as i64);
        self.workers.set(workers as i64);
        self.worker_slots.set(slots as i64);
        let util = if slots == 0 {
            0.0
        } else {
            running as f64 / slots as f64
        };
        self.utilization.set(util);
    }

    pub fn submitted(&self, lane: &str, n: u64) {
        self.submitted.get_or_create(&label("lane", lane)).inc_by(n);
    }

    pub fn acquired(&self, lane: &str, wait_s: f64) {
        self.submit_to_acquire
            .get_or_create(&label("lane", lane))
            .observe(wait_s);
    }

    pub fn finished(&self, state: &str, total_s: f64) {
        self.finished.get_or_create(&label("state", state)).inc();
        self.submit_to_finish
            .get_or_create(&label("state", state))
            .observe(total_s);
    }

    pub fn failure(&self, class: &str) {
        self.failures.get_or_create(&label("class", class)).inc();
    }

    pub fn stale_write(&self) {
        self.stale_writes.inc();
    }

    pub fn lease_expired(&self, n: u64) {
        self.lease_expiries.inc_by(n);
    }

    pub fn leftovers_deleted(&self, files: u64) {
        self.leftovers_deleted.inc_by(files);
    }

    pub fn stage(&self, stage: &str, seconds: f64) {
        // Stage names come from workers: keep the label set bounded.
        let stage: String = stage
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(32)
            .collect();
        self.stage_seconds
            .get_or_create(&label("stage", stage))
            .observe(seconds);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        for (name, health) in self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            self.store_repairs
                .get_or_create(&label("store", *name))
                .set(i64::try_from(health.repairs()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_metrics() {
        let m = Metrics::new();
        m.set_queue([3, 5], 2, 1, 4);
        m.submitted("bulk", 5);
        m.acquired("realtime", 0.004);
        m.stage("render", 1.5);
        let text = m.render();
        assert!(
            text.contains("reelfarm_queue_depth{lane=\"bulk\"} 5"),
            "{text}"
        );
        assert!(text.contains("reelfarm_worker_utilization 0.5"), "{text}");
        assert!(
            text.contains("reelfarm_submit_to_acquire_seconds_count{lane=\"realtime\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("reelfarm_stage_seconds_sum{stage=\"render\"} 1.5"),
            "{text}"
        );
    }
}
