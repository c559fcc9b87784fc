//! Assembles and runs the coordinator: gRPC services (with health and reflection), background
//! sweeps, metrics endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use proto::v1::render_service_server::RenderServiceServer;
use proto::v1::template_service_server::TemplateServiceServer;
use proto::v1::worker_service_server::WorkerServiceServer;
use tokio::sync::watch;

use crate::blobs::Blobs;
use crate::clock::Clock;
use crate::metrics::{Metrics, MetricsExtension};
use crate::service::{RenderApi, Settings, Shared, TemplateApi, WorkerApi};
use crate::store::DynStore;

/// How long a stopping coordinator lets the calls in flight finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Largest gRPC message accepted (upload chunks are 1 MiB; batch responses can be larger).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Largest message of the services that stream files in chunks (a chunk of at most
/// [`proto::CHUNK_BYTES`] and its framing).
const MAX_CHUNK_MESSAGE_BYTES: usize = proto::CHUNK_BYTES + (64 << 10);

/// Everything the coordinator needs to start.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// gRPC listen address (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Blob store: a folder path, `file:///path` or `s3://bucket/prefix`.
    pub blobs_url: String,
    /// Secret that workers present to join.
    pub join_token: String,
    /// Secret of trusted in-farm services (the trigger layer) that act for any tenant named in
    /// an `x-reelfarm-tenant` header. None: no such services.
    pub service_token: Option<String>,
    pub settings: Settings,
    /// TLS certificate chain and private key (PEM); plain HTTP/2 when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where to serve `/metrics`; none when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// Public HTTP endpoint: signed download links, plus `http_routes`. None when absent.
    pub http_listen: Option<SocketAddr>,
    /// Base of download links as clients reach the HTTP endpoint (e.g. behind a proxy);
    /// default `http://<bound address>`.
    pub public_url: Option<String>,
    /// Key that signs download links; links outlive a restart only if it is kept.
    pub url_key: Vec<u8>,
    /// More routes to serve on the public HTTP endpoint (event ingestion).
    pub http_routes: Option<axum::Router>,
    /// Adds more gRPC services beside the coordinator's (the trigger layer's).
    pub grpc_extension: Option<GrpcExtension>,
    /// How often expired leases and deadlines are swept.
    pub sweep_interval: Duration,
    /// After start, leases are not expired for this long, so workers that could not reach a
    /// restarting coordinator get to heartbeat first (default: lease TTL + one heartbeat).
    pub start_grace: Option<Duration>,
    /// More stores whose writer repairs `/metrics` reports beside the job store's, by name
    /// (the trigger store).
    pub store_health: Vec<(&'static str, Arc<sqlstore::Health>)>,
    /// More metrics served on `/metrics` (the trigger layer's); see [`MetricsExtension`].
    pub metrics_extensions: Vec<MetricsExtension>,
}

impl CoordinatorConfig {
    /// Defaults for a coordinator on `listen` with blobs in `blobs_url`.
    pub fn new(
        listen: SocketAddr,
        blobs_url: impl Into<String>,
        join_token: impl Into<String>,
    ) -> Self {
        CoordinatorConfig {
            listen,
            blobs_url: blobs_url.into(),
            join_token: join_token.into(),
            service_token: None,
            settings: Settings::default(),
            tls: None,
            metrics_listen: None,
            http_listen: None,
            public_url: None,
            url_key: crate::auth::random_hex(32).into_bytes(),
            http_routes: None,
            grpc_extension: None,
            sweep_interval: Duration::from_secs(1),
            start_grace: None,
            store_health: Vec::new(),
            metrics_extensions: Vec::new(),
        }
    }
}

/// A function that adds gRPC services to the coordinator's routes.
#[derive(Clone)]
pub struct GrpcExtension(
    pub Arc<dyn Fn(tonic::service::Routes) -> tonic::service::Routes + Send + Sync>,
);

impl std::fmt::Debug for GrpcExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcExtension")
    }
}

/// A running coordinator.
#[derive(Debug)]
pub struct Running {
    /// The bound gRPC address.
    pub addr: SocketAddr,
    /// The bound metrics address, if any.
    pub metrics_addr: Option<SocketAddr>,
    /// The bound public HTTP address, if any.
    pub http_addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting calls, answers long-polls and ends watch streams at once, finishes the
    /// other calls in flight (for at most [`SHUTDOWN_GRACE`]) and waits for the server to end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shared.close();
        let _ = self.stop.send(true);
        let mut task = self.task;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(ended) => ended.context("coordinator task panicked")?,
            Err(_) => {
                tracing::warn!(
                    grace_s = SHUTDOWN_GRACE.as_secs(),
                    "calls still in flight after the shutdown grace; closing their connections"
                );
                task.abort();
                Ok(())
            }
        }
    }

    /// Waits until the server ends (it ends on its own only on error).
    pub async fn wait(self) -> anyhow::Result<()> {
        let Running { task, stop, .. } = self;
        let result = task.await.context("coordinator task panicked")?;
        drop(stop);
        result
    }

    /// A handle that stops the server when sent `true`.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Starts the coordinator on `store`.
pub async fn start(config: CoordinatorConfig, store: DynStore) -> anyhow::Result<Running> {
    start_with_clock(config, store, Clock::system()).await
}

/// Starts the coordinator with an explicit clock (tests pause tokio time).
pub async fn start_with_clock(
    config: CoordinatorConfig,
    store: DynStore,
    clock: Clock,
) -> anyhow::Result<Running> {
    let blobs = Blobs::open(&config.blobs_url)?;
    // Fail at start, in one line, rather than at the first upload.
    blobs.check().await?;
    let mut metrics = Metrics::with_extensions(&config.metrics_extensions);
    blobs.register_metrics(metrics.registry_mut().sub_registry_with_prefix("reelfarm"));
    let metrics = Arc::new(metrics);
    metrics.watch_store("jobs", store.health());
    for (name, health) in &config.store_health {
        metrics.watch_store(name, Arc::clone(health));
    }
    let http_listener = match config.http_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the HTTP endpoint on {addr}"))?,
        ),
        None => None,
    };
    let http_addr = match &http_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let downloads = http_addr.map(|addr| {
        let base = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        crate::links::UrlSigner::new(&config.url_key, base)
    });
    let auth = crate::auth::Authenticator::new(
        store.clone(),
        &config.join_token,
        config.service_token.as_deref(),
    );
    let shared = Arc::new(Shared::new(
        store,
        blobs,
        auth,
        clock,
        config.settings.clone(),
        metrics.clone(),
        downloads,
    ));
    let (stop, stop_rx) = watch::channel(false);

    if let Some(listener) = http_listener {
        let mut app = crate::http::router(shared.clone());
        if let Some(extra) = config.http_routes.clone() {
            app = app.merge(extra);
        }
        let shutdown = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "HTTP endpoint stopped");
            }
        });
    }

    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(
            crate::metrics::serve(addr, metrics.clone(), stopped(stop_rx.clone()))
                .await
                .with_context(|| format!("binding the metrics endpoint on {addr}"))?,
        ),
        None => None,
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the gRPC endpoint on {}", config.listen))?;
    let addr = listener.local_addr()?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RenderServiceServer<RenderApi>>().await;
    health
        .set_serving::<TemplateServiceServer<TemplateApi>>()
        .await;
    health.set_serving::<WorkerServiceServer<WorkerApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .tcp_nodelay(true)
        .layer(crate::oversized::layer());
    if let Some((cert, key)) = &config.tls {
        let cert_pem = std::fs::read(cert)
            .with_context(|| format!("reading TLS certificate {}", cert.display()))?;
        let key_pem =
            std::fs::read(key).with_context(|| format!("reading TLS key {}", key.display()))?;
        let identity = tonic::transport::Identity::from_pem(cert_pem, key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .context("configuring TLS")?;
    }
    let mut routes = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        .add_service(
            RenderServiceServer::new(RenderApi::new(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            TemplateServiceServer::new(TemplateApi::new(shared.clone()))
                .max_decoding_message_size(MAX_CHUNK_MESSAGE_BYTES),
        )
        .add_service(
            WorkerServiceServer::new(WorkerApi::new(shared.clone()))
                .max_decoding_message_size(MAX_CHUNK_MESSAGE_BYTES),
        );
    if let Some(extend) = &config.grpc_extension {
        routes = (extend.0)(routes);
    }
    let router = builder.add_routes(routes);

    let grace = config.start_grace.unwrap_or_else(|| {
        let lease = config.settings.lease;
        Duration::from_millis(u64::from(lease.lease_ttl_ms) + u64::from(lease.heartbeat_ms))
    });
    tokio::spawn(background(
        shared.clone(),
        config.sweep_interval,
        grace,
        stop_rx.clone(),
    ));
    tokio::spawn(crate::cleanup::run(shared.clone(), stop_rx.clone()));

    // Small request/answer messages: without TCP_NODELAY, Nagle's algorithm and delayed ACKs
    // hold answers back for tens of milliseconds.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop_rx2 = stop_rx.clone();
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, stopped(stop_rx2))
            .await
            .context("gRPC server failed")
    });
    tracing::debug!(%addr, store = shared.store.backend(), tls = config.tls.is_some(), "coordinator listening");
    Ok(Running {
        addr,
        metrics_addr,
        http_addr,
        shared,
        stop,
        task,
    })
}

/// Periodic work: queue gauges and backpressure every 250 ms, lease and deadline sweeps.
async fn background(
    shared: Arc<Shared>,
    sweep_every: Duration,
    grace: Duration,
    stop: watch::Receiver<bool>,
) {
    let started_ms = shared.now();
    let grace_ms = grace.as_millis() as i64;
    let mut stats_tick = tokio::time::interval(Duration::from_millis(250));
    stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sweep_tick = tokio::time::interval(sweep_every);
    sweep_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stop_fut = stopped(stop);
    tokio::pin!(stop_fut);
    // Since when reading the store has failed.
    let mut store_lost: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = &mut stop_fut => return,
            _ = stats_tick.tick() => {
                match shared.store.stats().await {
                    Ok(s) => {
                        if let Some(since) = store_lost.take() {
                            tracing::info!(after_s = since.elapsed().as_secs_f64(), "the job store answers again");
                        }
                        shared.set_queued(s.queued);
                        shared.metrics.set_queue(s.queued, s.running, s.workers, s.slots);
                    }
                    // One line when the store goes away and one when it is back, not four a
                    // second.
                    Err(e) if store_lost.is_none() => {
                        store_lost = Some(std::time::Instant::now());
                        tracing::warn!(error = %e, "lost the job store; retrying until it answers");
                    }
                    Err(e) => tracing::debug!(error = %e, "the job store is still unreachable"),
                }
            }
            _ = sweep_tick.tick() => {
                let now = shared.now();
                if now - started_ms < grace_ms {
                    continue;
                }
                match shared.store.sweep(now, &shared.settings.lease, &shared.settings.retry).await {
                    Ok(swept) => {
                        if !swept.requeued.is_empty() || !swept.failed.is_empty() {
                            tracing::warn!(requeued = swept.requeued.len(), failed = swept.failed.len(), "swept expired leases and deadlines");
                            shared.metrics.lease_expired(swept.requeued.len() as u64);
                            shared.count_swept_failures(&swept.failed).await;
                            for id in swept.requeued.iter().chain(&swept.failed) {
                                shared.changed(id);
                            }
                            shared.work_ready.notify_waiters();
                        }
                    }
                    Err(e) if store_lost.is_none() => tracing::warn!(error = %e, "sweeping leases failed"),
                    Err(e) => tracing::debug!(error = %e, "sweeping leases failed"),
                }
            }
        }
    }
}
