//! One local farm: the job store, an optional tenant, the coordinator, the trigger layer and
//! in-process workers, started from a plain [`FarmSpec`] and stopped in one order.
//!
//! `reelfarm serve`, the demo, the benchmarks and the tests all start their farm here. Stopping
//! goes outside in: the trigger first (it submits renders and calls the coordinator), then the
//! workers (each drains: running renders finish or are handed back), then the coordinator.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use worker::Gpu;

use crate::admin::{create_tenant_in, open_store, NewTenant};
use crate::client::TenantClient;
use crate::trigger::Trigger;

/// What a local farm is made of. [`FarmSpec::new`] gives a plain-HTTP farm on loopback ports
/// chosen by the system, with SQLite files and blobs in `data`, no trigger, no workers.
#[derive(Debug, Clone)]
pub struct FarmSpec {
    /// Data folder: the SQLite files, blobs and worker caches live here unless set otherwise.
    pub data: PathBuf,
    /// Job store URL; `None`: `sqlite://DATA/reelfarm.db`.
    pub store_url: Option<String>,
    /// Blob store (folder or `s3://` URL); `None`: `DATA/blobs`.
    pub blobs: Option<String>,
    /// gRPC address.
    pub listen: SocketAddr,
    /// Public HTTP address (events, signed download links); `None`: not served.
    pub http_listen: Option<SocketAddr>,
    /// Prometheus metrics address; `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Base URL of signed download links, when the HTTP address is not what clients see.
    pub public_url: Option<String>,
    /// TLS certificate and key files (PEM) for gRPC.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The token workers join with.
    pub join_token: String,
    /// Key of signed download links; `None`: the coordinator's default (a random key).
    pub url_key: Option<Vec<u8>>,
    /// Heartbeat interval and lease lifetime (ms); `None`: the coordinator's defaults.
    pub lease_ms: Option<(u32, u32)>,
    /// The trigger layer; `None`: not run.
    pub trigger: Option<TriggerSpec>,
    /// Workers run inside this process.
    pub workers: Workers,
    /// A tenant created at start (its API key is [`LocalFarm::api_key`]).
    pub tenant: Option<TenantSpec>,
}

/// The trigger layer of a local farm.
#[derive(Debug, Clone)]
pub struct TriggerSpec {
    /// Trigger store URL (`sqlite://PATH` or `postgres://…`).
    pub store_url: String,
    /// Key the per-campaign webhook secrets are derived from.
    pub webhook_key: Vec<u8>,
    /// Whether webhooks may go to loopback and private addresses (tests, demos).
    pub allow_private_destinations: bool,
}

/// In-process workers of a local farm.
#[derive(Debug, Clone)]
pub struct Workers {
    /// How many.
    pub count: u32,
    /// Renders each runs at once.
    pub slots: u32,
    /// No-op workers: they "render" without a GPU (coordinator benchmarks).
    pub noop: bool,
    /// Names are `{name_prefix}-{i}`.
    pub name_prefix: String,
}

/// A tenant created when the farm starts.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    /// Tenant name.
    pub name: String,
    /// Renders it may have running at once.
    pub max_running: u32,
}

impl FarmSpec {
    /// A farm on loopback (gRPC and HTTP on system-chosen ports) keeping everything in `data`,
    /// with a random join token, no trigger, no workers and no tenant.
    pub fn new(data: impl Into<PathBuf>) -> FarmSpec {
        FarmSpec {
            data: data.into(),
            store_url: None,
            blobs: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            metrics_listen: None,
            public_url: None,
            tls: None,
            join_token: format!("rfj_{}", crate::secrets::random_hex(24)),
            url_key: None,
            lease_ms: None,
            trigger: None,
            workers: Workers {
                count: 0,
                slots: 1,
                noop: false,
                name_prefix: "inproc".to_owned(),
            },
            tenant: None,
        }
    }

    /// Runs the trigger layer on `store_url` with a random webhook key, webhooks allowed to
    /// loopback.
    pub fn with_local_trigger(mut self, store_url: String) -> FarmSpec {
        self.trigger = Some(TriggerSpec {
            store_url,
            webhook_key: crate::secrets::random_hex(32).into_bytes(),
            allow_private_destinations: true,
        });
        self
    }

    /// Creates tenant `name` at start.
    pub fn with_tenant(mut self, name: impl Into<String>, max_running: u32) -> FarmSpec {
        self.tenant = Some(TenantSpec {
            name: name.into(),
            max_running,
        });
        self
    }

    /// The job store URL: given, or SQLite in the data folder.
    pub fn store_url(&self) -> String {
        self.store_url
            .clone()
            .unwrap_or_else(|| default_store_url(&self.data))
    }
}

/// The job store of a data folder when none is named: SQLite, `DATA/reelfarm.db`.
pub fn default_store_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("reelfarm.db").display())
}

/// The trigger store of a data folder when none is named: SQLite, `DATA/trigger.db`.
pub fn default_trigger_store_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("trigger.db").display())
}

/// A running local farm. Stop it with [`LocalFarm::stop`]; dropping it stops nothing in order.
pub struct LocalFarm {
    /// The coordinator's gRPC URL (`http://` or `https://`).
    pub url: String,
    /// The bound gRPC address.
    pub addr: SocketAddr,
    /// The bound HTTP address, if served.
    pub http_addr: Option<SocketAddr>,
    /// The bound metrics address, if served.
    pub metrics_addr: Option<SocketAddr>,
    /// The tenant created at start, with its API key.
    pub tenant: Option<NewTenant>,
    running: coordinator::Running,
    trigger: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    workers: Vec<JoinHandle<()>>,
    stop_workers: watch::Sender<bool>,
}

impl LocalFarm {
    /// Starts the farm `spec` describes; in-process workers take their renderers from `gpu`.
    pub async fn start(spec: FarmSpec, gpu: Gpu) -> Result<LocalFarm> {
        std::fs::create_dir_all(&spec.data)
            .with_context(|| format!("cannot create data folder {}", spec.data.display()))?;
        let store = open_store(&spec.store_url()).await?;
        let tenant = match &spec.tenant {
            Some(t) => Some(create_tenant_in(&store, &t.name, t.max_running).await?),
            None => None,
        };
        let blobs = spec
            .blobs
            .clone()
            .unwrap_or_else(|| spec.data.join("blobs").display().to_string());
        let mut config =
            coordinator::CoordinatorConfig::new(spec.listen, blobs, spec.join_token.clone());
        if let Some((heartbeat_ms, lease_ttl_ms)) = spec.lease_ms {
            config.settings = coordinator::Settings {
                lease: coordinator::lifecycle::LeasePolicy {
                    heartbeat_ms: heartbeat_ms.max(100),
                    lease_ttl_ms: lease_ttl_ms.max(heartbeat_ms.saturating_mul(2)),
                },
                ..coordinator::Settings::default()
            };
        }
        config.metrics_listen = spec.metrics_listen;
        config.http_listen = spec.http_listen;
        config.public_url = spec.public_url.clone();
        if let Some(key) = &spec.url_key {
            config.url_key = key.clone();
        }
        config.tls = spec.tls.clone();
        let trigger = match &spec.trigger {
            Some(t) => {
                let trigger =
                    Trigger::open(&t.store_url, store.clone(), t.webhook_key.clone()).await?;
                trigger.attach(&mut config);
                // The trigger delivers render callbacks when its background work runs (below:
                // over plain gRPC only).
                if spec.tls.is_none() {
                    config.settings.callbacks = if t.allow_private_destinations {
                        coordinator::Callbacks::AnyAddress
                    } else {
                        coordinator::Callbacks::Public
                    };
                }
                Some((trigger, t.allow_private_destinations))
            }
            None => None,
        };
        let running = coordinator::start(config, store).await?;
        let scheme = if spec.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", running.addr);

        let trigger = match trigger {
            // The trigger's background work calls the coordinator over plain gRPC.
            Some((t, allow_private)) if spec.tls.is_none() => {
                let (stop, rx) = watch::channel(false);
                Some((stop, t.spawn(running.addr, allow_private, rx)?))
            }
            _ => None,
        };

        let (stop_workers, stop_rx) = watch::channel(false);
        let mut workers = Vec::new();
        for i in 0..spec.workers.count {
            let mut wc = worker::WorkerConfig::new(
                url.clone(),
                spec.join_token.clone(),
                spec.data.join(format!("worker-{i}")),
            );
            wc.name = format!("{}-{i}", spec.workers.name_prefix);
            wc.slots = spec.workers.slots.max(1);
            wc.noop = spec.workers.noop;
            let mut rx = stop_rx.clone();
            let gpu = gpu.clone();
            workers.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = worker::run(wc, gpu, stop).await {
                    // Not `eprintln!`: a closed stderr must not take the farm down.
                    use std::io::Write as _;
                    let _ = writeln!(std::io::stderr(), "error: in-process worker {i}: {e:#}");
                }
            }));
        }
        Ok(LocalFarm {
            url,
            addr: running.addr,
            http_addr: running.http_addr,
            metrics_addr: running.metrics_addr,
            tenant,
            running,
            trigger,
            workers,
            stop_workers,
        })
    }

    /// Whether the trigger layer's background work runs (it needs plain gRPC).
    pub fn trigger_running(&self) -> bool {
        self.trigger.is_some()
    }

    /// The API key of the tenant created at start.
    pub fn api_key(&self) -> Result<&str> {
        self.tenant
            .as_ref()
            .map(|t| t.api_key.as_str())
            .context("this farm was started without a tenant")
    }

    /// `http://host:port` of the HTTP endpoint.
    pub fn http_base(&self) -> Result<String> {
        let addr = self
            .http_addr
            .context("this farm was started without its HTTP endpoint")?;
        Ok(format!("http://{addr}"))
    }

    /// A client of the tenant created at start.
    pub async fn client(&self) -> Result<TenantClient> {
        TenantClient::connect(&self.url, self.api_key()?, None).await
    }

    /// Stops the farm: the trigger, then the workers (each drains), then the coordinator.
    pub async fn stop(self) -> Result<()> {
        if let Some((stop, task)) = self.trigger {
            let _ = stop.send(true);
            let _ = task.await;
            tracing::debug!("trigger stopped");
        }
        let _ = self.stop_workers.send(true);
        for w in self.workers {
            let _ = w.await;
        }
        tracing::debug!("in-process workers stopped");
        let stopped = self.running.shutdown().await;
        tracing::debug!("coordinator stopped");
        stopped
    }
}
