//! Prometheus metrics of the worker, served as OpenMetrics text at `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

fn stage_histogram() -> Histogram {
    // 10 ms .. ~5.5 min.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// The worker's metrics and the registry that exposes them.
pub(crate) struct Metrics {
    registry: Registry,
    attempts: Family<OutcomeLabels, Counter>,
    stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram>,
    slots_busy: Gauge,
}

impl Metrics {
    pub(crate) fn new(slots: u32) -> Self {
        let mut registry = Registry::default();
        let attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reelfarm_worker_attempts",
            "Attempts this worker finished, by outcome: completed, failed, stopped (by the \
             coordinator) or discarded (stale, or self-fenced)",
            attempts.clone(),
        );
        let stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(stage_histogram);
        registry.register(
            "reelfarm_worker_stage_seconds",
            "Seconds per attempt stage (fetch_template, render, poster, upload, and render-core's \
             own stages)",
            stage_seconds.clone(),
        );
        let slots_busy = Gauge::default();
        registry.register(
            "reelfarm_worker_slots_busy",
            "Slots running an attempt",
            slots_busy.clone(),
        );
        let slots_gauge: Gauge = Gauge::default();
        slots_gauge.set(i64::from(slots));
        registry.register(
            "reelfarm_worker_slots",
            "Attempts this worker runs at once",
            slots_gauge,
        );
        Metrics {
            registry,
            attempts,
            stage_seconds,
            slots_busy,
        }
    }

    /// One attempt ended with `outcome` (`completed`, `failed`, `stopped`, `discarded`).
    pub(crate) fn attempt(&self, outcome: &'static str) {
        self.attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub(crate) fn stage(&self, stage: &str, seconds: f64) {
        self.stage_seconds
            .get_or_create(&StageLabels {
                stage: stage.to_owned(),
            })
            .observe(seconds);
    }

    /// Marks a slot busy until the guard drops.
    pub(crate) fn busy_slot(self: &Arc<Self>) -> BusySlot {
        self.slots_busy.inc();
        BusySlot(Arc::clone(self))
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A slot counted in `reelfarm_worker_slots_busy`.
pub(crate) struct BusySlot(Arc<Metrics>);

impl Drop for BusySlot {
    fn drop(&mut self) {
        self.0.slots_busy.dec();
    }
}

/// Seconds of a duration, for stage maps and histograms.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

/// Serves `/metrics` on `listener` until `stop` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_names() {
        let m = Arc::new(Metrics::new(4));
        m.attempt("completed");
        m.stage("render", 1.5);
        let busy = m.busy_slot();
        let text = m.render();
        assert!(
            text.contains("reelfarm_worker_attempts_total{outcome=\"completed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("reelfarm_worker_stage_seconds_count{stage=\"render\"} 1"),
            "{text}"
        );
        assert!(text.contains("reelfarm_worker_slots_busy 1"), "{text}");
        assert!(text.contains("reelfarm_worker_slots 4"), "{text}");
        drop(busy);
        assert!(m.render().contains("reelfarm_worker_slots_busy 0"));
    }
}
