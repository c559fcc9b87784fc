//! Prometheus metrics of the worker, served as OpenMetrics text at `/metrics`.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
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
use render_core::gpu::AdapterSummary;
use render_core::segments::{CacheStats, SegmentCache};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// One series per worker: its name and GPU adapter (the adapter's name is one value per
/// worker, so the label set stays bounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerInfoLabels {
    name: String,
    adapter: String,
    backend: String,
    device_type: String,
    software: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// The segment cache's figures, copied from its own counters at each scrape.
struct SegmentMetrics {
    hits: Family<SourceLabels, Counter>,
    misses: Counter,
    corrupt: Counter,
    evictions: Counter,
    read_bytes: Counter,
    written_bytes: Counter,
    bytes: Gauge,
    entries: Gauge,
    /// The cache, once the worker has opened it, and its counters as last copied.
    cache: OnceLock<Arc<SegmentCache>>,
    synced: Mutex<CacheStats>,
}

impl SegmentMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = SegmentMetrics {
            hits: Family::default(),
            misses: Counter::default(),
            corrupt: Counter::default(),
            evictions: Counter::default(),
            read_bytes: Counter::default(),
            written_bytes: Counter::default(),
            bytes: Gauge::default(),
            entries: Gauge::default(),
            cache: OnceLock::new(),
            synced: Mutex::new(CacheStats::default()),
        };
        let r = registry.sub_registry_with_prefix("reelfarm_worker_segment_cache");
        r.register(
            "hits",
            "Segments found in the cache, by source: local (this worker's disk) or shared (the              farm's store)",
            m.hits.clone(),
        );
        r.register(
            "misses",
            "Segments found nowhere, so rendered",
            m.misses.clone(),
        );
        r.register(
            "corrupt",
            "Cache entries that could not be read back and were rendered again",
            m.corrupt.clone(),
        );
        r.register(
            "evictions",
            "Entries removed to stay under the size limit",
            m.evictions.clone(),
        );
        r.register(
            "read_bytes",
            "Bytes of segments read from the cache",
            m.read_bytes.clone(),
        );
        r.register(
            "written_bytes",
            "Bytes of segments written to local disk",
            m.written_bytes.clone(),
        );
        r.register("bytes", "Bytes on local disk", m.bytes.clone());
        r.register("entries", "Segments on local disk", m.entries.clone());
        m
    }

    /// Copies the cache's counters into the metrics.
    fn sync(&self) {
        let Some(cache) = self.cache.get() else {
            return;
        };
        let now = cache.stats();
        let mut last = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        let up = |c: &Counter, new: u64, old: u64| {
            c.inc_by(new.saturating_sub(old));
        };
        up(
            &self.hits.get_or_create(&SourceLabels { source: "local" }),
            now.local_hits,
            last.local_hits,
        );
        up(
            &self.hits.get_or_create(&SourceLabels { source: "shared" }),
            now.shared_hits,
            last.shared_hits,
        );
        up(&self.misses, now.misses, last.misses);
        up(&self.corrupt, now.corrupt, last.corrupt);
        up(&self.evictions, now.evictions, last.evictions);
        up(&self.read_bytes, now.bytes_read, last.bytes_read);
        up(&self.written_bytes, now.bytes_written, last.bytes_written);
        self.bytes.set(now.bytes_stored as i64);
        self.entries.set(now.entries as i64);
        *last = now;
    }
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
    encoders: Gauge,
    segments: SegmentMetrics,
    info: Family<WorkerInfoLabels, Gauge>,
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
        let encoders = Gauge::default();
        registry.register(
            "reelfarm_worker_encoders",
            "Segment encoders that run at once, shared by the slots",
            encoders.clone(),
        );
        let segments = SegmentMetrics::register(&mut registry);
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "reelfarm_build_info",
            "Always 1; the labels say which build of reelfarm runs",
            build_info,
        );
        let info = Family::<WorkerInfoLabels, Gauge>::default();
        registry.register(
            "reelfarm_worker_info",
            "Always 1, once the GPU is open; the labels name the worker and its GPU adapter \
             (adapter \"none\" on a no-op worker; software=\"true\": a CPU rasterizer such as \
             llvmpipe, slow)",
            info.clone(),
        );
        Metrics {
            info,
            registry,
            attempts,
            stage_seconds,
            slots_busy,
            encoders,
            segments,
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

    /// Reports the worker's name and GPU adapter (`None`: a no-op worker, adapter `none`).
    pub(crate) fn set_worker_info(&self, name: &str, adapter: Option<&AdapterSummary>) {
        let labels = match adapter {
            Some(a) => WorkerInfoLabels {
                name: name.to_owned(),
                adapter: a.name.clone(),
                backend: a.backend.to_ascii_lowercase(),
                device_type: a.device_type_label(),
                software: if a.is_software() { "true" } else { "false" },
            },
            None => WorkerInfoLabels {
                name: name.to_owned(),
                adapter: "none".to_owned(),
                backend: "none".to_owned(),
                device_type: "none".to_owned(),
                software: "false",
            },
        };
        self.info.clear();
        self.info.get_or_create(&labels).set(1);
    }

    /// Reports the encoder pool's size.
    pub(crate) fn set_encoders(&self, n: usize) {
        self.encoders.set(n as i64);
    }

    /// Reports `cache`'s figures from now on.
    pub(crate) fn watch_segment_cache(&self, cache: Arc<SegmentCache>) {
        let _ = self.segments.cache.set(cache);
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn render(&self) -> String {
        self.segments.sync();
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

/// Serves `/metrics`, and the probes of `health`, on `listener` until `stop` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<crate::health::Health>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
        .merge(crate::health::routes(health));
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
        assert!(
            text.contains("reelfarm_worker_segment_cache_misses_total 0"),
            "{text}"
        );
        drop(busy);
        assert!(m.render().contains("reelfarm_worker_slots_busy 0"));
        let version = format!(
            "reelfarm_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&version), "{text}");
        assert!(
            !text.contains("reelfarm_worker_info{"),
            "no info before the GPU: {text}"
        );
    }

    fn adapter(name: &str, device_type: &str) -> AdapterSummary {
        AdapterSummary {
            name: name.to_owned(),
            backend: "Vulkan".to_owned(),
            device_type: device_type.to_owned(),
            driver: "test".to_owned(),
        }
    }

    #[test]
    fn worker_info_names_the_adapter_and_whether_it_is_software() {
        let m = Metrics::new(1);
        m.set_worker_info("gpu-1", Some(&adapter("NVIDIA H200", "DiscreteGpu")));
        let text = m.render();
        assert!(
            text.contains(
                "reelfarm_worker_info{name=\"gpu-1\",adapter=\"NVIDIA H200\",backend=\"vulkan\",\
                 device_type=\"discrete_gpu\",software=\"false\"} 1"
            ),
            "{text}"
        );
        // Set again (a second start): one series, the latest.
        m.set_worker_info(
            "cpu-1",
            Some(&adapter("llvmpipe (LLVM 15.0.6, 256 bits)", "Cpu")),
        );
        let text = m.render();
        assert!(
            text.contains(
                "reelfarm_worker_info{name=\"cpu-1\",adapter=\"llvmpipe (LLVM 15.0.6, 256 bits)\",\
                 backend=\"vulkan\",device_type=\"cpu\",software=\"true\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("NVIDIA"), "{text}");
        // A software rasterizer that wgpu does not call a CPU is still software.
        m.set_worker_info("sw", Some(&adapter("SwiftShader Device", "Other")));
        assert!(m.render().contains("software=\"true\""));
        m.set_worker_info("noop-1", None);
        assert!(m.render().contains(
            "reelfarm_worker_info{name=\"noop-1\",adapter=\"none\",backend=\"none\",\
             device_type=\"none\",software=\"false\"} 1"
        ));
    }
}
