//! Prometheus metrics of the coordinator, served at `/metrics`.
//!
//! Labels carry lanes, states, failure classes, stage names and tenant names only; never
//! render ids, recipient values or other tenant data. Tenant names (`[a-z0-9-]{1,64}`) label
//! the `reelfarm_tenant_*` counters: a farm has few tenants, and each adds one series per
//! counter. Other components (the trigger layer, the blob store) add their own metrics to the
//! same registry through [`MetricsExtension`] or [`Metrics::registry_mut`].

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

/// Registers more metrics in the coordinator's registry, beside its own, so that they are
/// served on the same `/metrics` (the trigger layer's, the blob store's).
///
/// The function gets the root registry: names are used as given, so they carry the
/// `reelfarm_` prefix themselves (`reelfarm_events`, not `events`); counters get `_total`
/// added by the encoder. It runs once, when the coordinator builds its metrics; the metrics it
/// registers are handles (cheap clones sharing their values), so the component keeps its own
/// clone and updates it. Labels must stay bounded: enums, tenant or campaign names at most.
/// Set it through `CoordinatorConfig::metrics_extensions`; code that builds the coordinator's
/// [`Metrics`] itself can also call [`Metrics::registry_mut`] before sharing them.
#[derive(Clone)]
pub struct MetricsExtension(pub Arc<dyn Fn(&mut Registry) + Send + Sync>);

impl MetricsExtension {
    /// An extension that runs `register`.
    pub fn new(register: impl Fn(&mut Registry) + Send + Sync + 'static) -> Self {
        MetricsExtension(Arc::new(register))
    }
}

impl std::fmt::Debug for MetricsExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsExtension")
    }
}

/// The labels of `reelfarm_build_info`: the crate version, and the git commit when the build
/// had `REELFARM_GIT_COMMIT` set (nothing is run at build time to find it).
fn build_labels() -> Labels {
    let mut labels = label("version", env!("CARGO_PKG_VERSION"));
    if let Some(commit) = option_env!("REELFARM_GIT_COMMIT") {
        let short: String = commit
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(12)
            .collect();
        if !short.is_empty() {
            labels.push(("git", short));
        }
    }
    labels
}

/// Tenant name label value for a tenant the store could not name (never a tenant's name:
/// those are lowercase letters, digits and dashes).
pub const UNKNOWN_TENANT: &str = "_unknown";

/// Per-tenant counters of renders.
struct TenantCounters {
    submitted: Family<Labels, Counter>,
    succeeded: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    cancelled: Family<Labels, Counter>,
}

/// Every metric the coordinator exports.
pub struct Metrics {
    /// The root registry: the coordinator's own metrics sit under the `reelfarm` prefix,
    /// extensions' at the names they give.
    registry: Registry,
    tenants: TenantCounters,
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
        Metrics::with_extensions(&[])
    }

    /// The coordinator's metrics, plus those `extensions` register.
    pub fn with_extensions(extensions: &[MetricsExtension]) -> Metrics {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("reelfarm");
        let build_info: Family<Labels, Gauge> = Family::default();
        build_info.get_or_create(&build_labels()).set(1);
        registry.register(
            "build_info",
            "Always 1; the labels say which build of reelfarm serves",
            build_info,
        );
        let tenants = TenantCounters {
            submitted: Family::default(),
            succeeded: Family::default(),
            failed: Family::default(),
            cancelled: Family::default(),
        };
        registry.register(
            "tenant_submitted",
            "Renders this coordinator created, by tenant name",
            tenants.submitted.clone(),
        );
        registry.register(
            "tenant_succeeded",
            "Renders that succeeded through this coordinator, by tenant name",
            tenants.succeeded.clone(),
        );
        registry.register(
            "tenant_failed",
            "Renders that failed for good through this coordinator (retries exhausted, \
             deadline passed), by tenant name",
            tenants.failed.clone(),
        );
        registry.register(
            "tenant_cancelled",
            "Renders cancelled through this coordinator, by tenant name",
            tenants.cancelled.clone(),
        );
        let m = Metrics {
            tenants,
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
        for extension in extensions {
            (extension.0)(&mut root);
        }
        Metrics {
            registry: root,
            ..m
        }
    }

    /// The root registry, to add metrics before the coordinator shares these (see
    /// [`MetricsExtension`] for the naming rules).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// `n` renders of the tenant named `tenant` were created.
    pub fn tenant_submitted(&self, tenant: &str, n: u64) {
        self.tenants
            .submitted
            .get_or_create(&label("tenant", tenant))
            .inc_by(n);
    }

    /// A render of the tenant named `tenant` reached the terminal `state` (`succeeded`,
    /// `failed` or `cancelled`; others are not counted).
    pub fn tenant_finished(&self, tenant: &str, state: &str) {
        let family = match state {
            "succeeded" => &self.tenants.succeeded,
            "failed" => &self.tenants.failed,
            "cancelled" => &self.tenants.cancelled,
            _ => return,
        };
        family.get_or_create(&label("tenant", tenant)).inc();
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
        let version = format!(
            "reelfarm_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&version), "{text}");
    }

    #[test]
    fn tenants_are_counted_by_name_and_terminal_state() {
        let m = Metrics::new();
        m.tenant_submitted("acme", 2);
        m.tenant_submitted("globex", 1);
        m.tenant_finished("acme", "succeeded");
        m.tenant_finished("acme", "failed");
        m.tenant_finished("globex", "cancelled");
        m.tenant_finished("globex", "running");
        let text = m.render();
        for line in [
            "reelfarm_tenant_submitted_total{tenant=\"acme\"} 2",
            "reelfarm_tenant_submitted_total{tenant=\"globex\"} 1",
            "reelfarm_tenant_succeeded_total{tenant=\"acme\"} 1",
            "reelfarm_tenant_failed_total{tenant=\"acme\"} 1",
            "reelfarm_tenant_cancelled_total{tenant=\"globex\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(
            !text.contains("tenant_succeeded_total{tenant=\"globex\"}"),
            "{text}"
        );
    }

    #[test]
    fn extensions_register_beside_the_coordinators_metrics() {
        let events: Counter = Counter::default();
        let handle = events.clone();
        let mut m = Metrics::with_extensions(&[MetricsExtension::new(move |r| {
            r.register("reelfarm_test_events", "Test events", handle.clone());
        })]);
        let late: Gauge = Gauge::default();
        m.registry_mut()
            .register("reelfarm_test_late", "Registered later", late.clone());
        events.inc_by(3);
        late.set(7);
        let text = m.render();
        assert!(text.contains("reelfarm_test_events_total 3"), "{text}");
        assert!(text.contains("reelfarm_test_late 7"), "{text}");
        assert!(text.contains("reelfarm_workers 0"), "{text}");
        assert!(!text.contains("reelfarm_reelfarm"), "{text}");
    }
}
