//! The gRPC services and the state they share.

mod convert;
mod render;
mod segments;
mod stream;
mod submit;
mod templates;
mod transfer;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use template::Manifest;
use tokio::sync::{broadcast, Notify};

use crate::auth::Authenticator;
use crate::blobs::Blobs;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::lifecycle::{LeasePolicy, RetryPolicy};
use crate::metrics::Metrics;
use crate::model::{Lane, Millis, TemplateRecord};
use crate::store::DynStore;

pub use render::RenderApi;
pub use stream::valid_name as valid_stream_name;
pub use templates::TemplateApi;
pub use worker::WorkerApi;

/// Tunables of the coordinator's services.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lease: LeasePolicy,
    pub retry: RetryPolicy,
    /// Most renders waiting per lane (indexed by [`Lane::as_i64`]); a submission beyond it gets
    /// RESOURCE_EXHAUSTED.
    pub max_queued: [u64; 2],
    /// Longest `wait_ms` honoured on Acquire.
    pub max_acquire_wait_ms: u32,
    /// How often a waiting Acquire looks at the store even without a local wake-up (work
    /// submitted through another coordinator, retries whose backoff ended).
    pub acquire_poll_ms: u64,
    /// Whether renders may ask for a completion callback, and where it may point.
    pub callbacks: Callbacks,
}

/// Whether a render's `callback_url` is accepted. Callbacks are delivered by the trigger layer
/// (it follows the coordinator's outbox), so a coordinator running without it refuses them
/// rather than accepting a webhook nobody will send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callbacks {
    /// No deliverer: a `callback_url` is refused.
    Refused,
    /// Delivered to public addresses only (the host is resolved at submission and again when
    /// the webhook connects).
    Public,
    /// Delivered to any address, loopback and private networks included (tests, local demos).
    AnyAddress,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lease: LeasePolicy::default(),
            retry: RetryPolicy::default(),
            max_queued: [100_000, 10_000_000],
            max_acquire_wait_ms: 20_000,
            acquire_poll_ms: 1_000,
            callbacks: Callbacks::Refused,
        }
    }
}

/// State shared by the services.
pub struct Shared {
    pub store: DynStore,
    pub blobs: Blobs,
    pub auth: Authenticator,
    pub clock: Clock,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Woken when work may have become claimable.
    pub work_ready: Notify,
    /// Ids of renders that changed (for WatchRender).
    pub changes: broadcast::Sender<Arc<str>>,
    /// Turns true when the coordinator stops: long-polls answer and watch streams end at once,
    /// so that the server's graceful shutdown does not wait for them.
    closing: tokio::sync::watch::Sender<bool>,
    manifests: Mutex<HashMap<(String, String, u32), Arc<Manifest>>>,
    /// Queue depth per lane as last read from the store, plus local submissions since.
    queued: Mutex<[u64; 2]>,
    /// Workers in no-op mode (their completions carry no files).
    noop_workers: Mutex<HashMap<String, bool>>,
    /// Tenant names by id, for the per-tenant metrics (names never change).
    tenant_names: Mutex<HashMap<String, Arc<str>>>,
    /// Signs download links; none when no HTTP endpoint serves them.
    pub downloads: Option<crate::links::UrlSigner>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store.backend())
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Starts stopping: see [`Shared::closed`].
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Shared::close`] has been called.
    pub async fn closed(&self) {
        let mut closing = self.closing.subscribe();
        let _ = closing.wait_for(|c| *c).await;
    }

    pub fn new(
        store: DynStore,
        blobs: Blobs,
        auth: Authenticator,
        clock: Clock,
        settings: Settings,
        metrics: Arc<Metrics>,
        downloads: Option<crate::links::UrlSigner>,
    ) -> Shared {
        let (changes, _) = broadcast::channel(4096);
        Shared {
            auth,
            store,
            blobs,
            clock,
            settings,
            metrics,
            work_ready: Notify::new(),
            changes,
            closing: tokio::sync::watch::Sender::new(false),
            manifests: Mutex::new(HashMap::new()),
            queued: Mutex::new([0, 0]),
            noop_workers: Mutex::new(HashMap::new()),
            tenant_names: Mutex::new(HashMap::new()),
            downloads,
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Tells watchers that a render changed.
    pub fn changed(&self, id: &str) {
        let _ = self.changes.send(Arc::from(id));
    }

    /// The parsed manifest of a stored template version (parsed once, then cached).
    pub fn manifest(&self, record: &TemplateRecord) -> Result<Arc<Manifest>, ApiError> {
        let key = (
            record.tenant_id.clone(),
            record.name.clone(),
            record.version,
        );
        if let Some(m) = self
            .manifests
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(m);
        }
        let manifest = Manifest::from_json(record.manifest_json.as_bytes()).map_err(|e| {
            ApiError::Internal(format!(
                "stored manifest of {}@{} does not parse: {e}",
                record.name, record.version
            ))
        })?;
        let manifest = Arc::new(manifest);
        if let Ok(mut cache) = self.manifests.lock() {
            if cache.len() > 4096 {
                cache.clear();
            }
            cache.insert(key, manifest.clone());
        }
        Ok(manifest)
    }

    /// Refreshes the queue depth used for backpressure (called periodically).
    pub fn set_queued(&self, queued: [u64; 2]) {
        if let Ok(mut q) = self.queued.lock() {
            *q = queued;
        }
    }

    /// Reserves room for `n` more renders in `lane`, or answers RESOURCE_EXHAUSTED.
    pub fn admit(&self, lane: Lane, n: u64) -> Result<(), ApiError> {
        let i = lane.as_i64() as usize;
        let cap = self.settings.max_queued[i];
        let mut q = self
            .queued
            .lock()
            .map_err(|_| ApiError::Internal("queue gauge poisoned".into()))?;
        if q[i] + n > cap {
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "the {} lane is full ({} renders waiting, limit {cap})",
                    lane.name(),
                    q[i]
                ),
                retry_after_ms: 1_000,
            });
        }
        q[i] += n;
        Ok(())
    }

    pub fn set_noop(&self, worker_id: &str, noop: bool) {
        if let Ok(mut m) = self.noop_workers.lock() {
            m.insert(worker_id.to_owned(), noop);
        }
    }

    /// Whether a worker registered in no-op mode (reads the store on a cache miss).
    pub async fn is_noop(&self, worker_id: &str) -> Result<bool, ApiError> {
        if let Some(v) = self
            .noop_workers
            .lock()
            .ok()
            .and_then(|m| m.get(worker_id).copied())
        {
            return Ok(v);
        }
        let noop = match self.store.worker(worker_id).await? {
            Some(w) => serde_json::from_str::<serde_json::Value>(&w.capabilities_json)
                .ok()
                .and_then(|v| v.get("noop").and_then(|n| n.as_bool()))
                .unwrap_or(false),
            None => false,
        };
        self.set_noop(worker_id, noop);
        Ok(noop)
    }
}

/// Per-tenant metrics: the tenant's name by id, cached; renders are counted under their
/// tenant's name.
impl Shared {
    /// Remembers a tenant's name (from an authenticated call, so no store read is needed).
    pub fn remember_tenant(&self, tenant: &crate::model::Tenant) {
        if let Ok(mut names) = self.tenant_names.lock() {
            if !names.contains_key(&tenant.id) {
                names.insert(tenant.id.clone(), Arc::from(tenant.name.as_str()));
            }
        }
    }

    /// The name of the tenant with id `tenant_id` for metric labels: cached, else read from
    /// the store; [`crate::metrics::UNKNOWN_TENANT`] if the store cannot say.
    pub async fn tenant_label(&self, tenant_id: &str) -> Arc<str> {
        if let Some(name) = self
            .tenant_names
            .lock()
            .ok()
            .and_then(|m| m.get(tenant_id).cloned())
        {
            return name;
        }
        match self.store.tenant_by_id(tenant_id).await {
            Ok(Some(tenant)) => {
                self.remember_tenant(&tenant);
                Arc::from(tenant.name.as_str())
            }
            Ok(None) => Arc::from(crate::metrics::UNKNOWN_TENANT),
            Err(e) => {
                tracing::warn!(error = %e, "reading a tenant's name for metrics failed");
                Arc::from(crate::metrics::UNKNOWN_TENANT)
            }
        }
    }

    /// Counts a render that reached the terminal `state` (`succeeded`, `failed`,
    /// `cancelled`) in the totals and under its tenant.
    pub async fn count_finished(&self, job: &crate::model::Job, state: &str, now: Millis) {
        self.metrics
            .finished(state, (now - job.created_ms).max(0) as f64 / 1000.0);
        let tenant = self.tenant_label(&job.tenant_id).await;
        self.metrics.tenant_finished(&tenant, state);
    }

    /// Counts the renders a sweep failed (deadline passed, or the retry budget used up when
    /// a lease ran out).
    pub async fn count_swept_failures(&self, ids: &[String]) {
        let now = self.now();
        for id in ids {
            match self.store.job(None, id).await {
                Ok(Some(job)) if job.state == crate::model::JobState::Failed => {
                    let at = if job.finished_ms > 0 {
                        job.finished_ms
                    } else {
                        now
                    };
                    self.count_finished(&job, "failed", at).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reading a swept render for metrics failed"),
            }
        }
    }
}

/// Tenant names follow template names: `[a-z0-9-]{1,64}`.
pub fn valid_tenant_name(name: &str) -> bool {
    convert::valid_name(name)
}
