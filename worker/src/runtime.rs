//! The worker's main loop: start up, register, acquire work into free slots until draining,
//! then let running attempts finish and deregister.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::v1::{AcquireRequest, Capabilities, DeregisterRequest, RegisterRequest};
use render_core::segments::{EncoderPool, SegmentCache};
use render_core::Renderer;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tonic::Code;
use tracing::{error, info, warn};

use crate::cache::TemplateCache;
use crate::client::{self, Client};
use crate::health::Health;
use crate::metrics::{self, Metrics};
use crate::render::Gpu;
use crate::running::{RunningSet, StopReason};
use crate::segments::CoordinatorSegments;
use crate::session::{self, Session};
use crate::{attempt, WorkerConfig};

/// Longest wait of one Acquire long-poll, in milliseconds (the protocol's maximum).
pub const ACQUIRE_WAIT_MS: u32 = 20_000;

/// Pause after a failed Acquire.
const ACQUIRE_RETRY: Duration = Duration::from_secs(1);

/// How long Deregister is retried while the coordinator is away.
const DEREGISTER_RETRY_FOR: Duration = Duration::from_secs(10);

/// Video encoders this worker offers.
const ENCODERS: [&str; 1] = ["libx264"];

/// State every task of the worker shares.
pub(crate) struct Shared {
    pub(crate) config: WorkerConfig,
    pub(crate) client: Client,
    /// Sent again, unchanged, when the worker registers again.
    pub(crate) register_request: RegisterRequest,
    pub(crate) session: RwLock<Session>,
    /// Held while registering again, so only one task does it.
    pub(crate) register_lock: tokio::sync::Mutex<()>,
    pub(crate) running: Arc<RunningSet>,
    /// True once the worker drains: it acquires nothing more.
    pub(crate) draining: watch::Sender<bool>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) gpu: Gpu,
    pub(crate) templates: TemplateCache,
    /// `<cache>/work`: one folder per attempt.
    pub(crate) work_dir: PathBuf,
    /// Encoded segments, backed by the farm's store; `None` when turned off.
    pub(crate) segments: Option<Arc<SegmentCache>>,
    /// The segment encoders every slot shares.
    pub(crate) encoders: EncoderPool,
    /// Readiness and the state of the link to the coordinator.
    pub(crate) health: Arc<Health>,
}

impl Shared {
    /// The current registration.
    pub(crate) fn session(&self) -> Session {
        self.session
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops acquiring work; running attempts go on. Idempotent.
    pub(crate) fn start_drain(&self, why: &str) {
        let started = self.draining.send_if_modified(|draining| {
            let was = *draining;
            *draining = true;
            !was
        });
        if started {
            self.health.set_draining();
            info!(
                running = self.running.len(),
                "{why}: draining (acquiring no more work, finishing running attempts)"
            );
        }
    }
}

/// Runs a worker until `shutdown` resolves or the coordinator asks it to drain, then lets the
/// running attempts finish for at most [`WorkerConfig::drain_timeout`], gives back the ones
/// still running, deregisters (the coordinator requeues what was given back) and returns.
///
/// Registers with the coordinator (retrying with backoff while it is not reachable), then
/// acquires up to `slots` assignments at a time with 20 s long-polls and runs each in its own
/// task: fetch the template bundle (cached by digest), render on a blocking thread, render a
/// poster, upload both, Complete — or Fail with a failure class. A heartbeat renews the leases;
/// attempts the coordinator stops are cancelled and never reported, and every render stops by
/// itself when no heartbeat has succeeded for the lease TTL less 10 s (self-fence).
///
/// Renderers come from and go back to `gpu`, which outlives the call: the caller destroys them
/// with [`Gpu::close`] once its runtime has shut down (see [`Gpu`] for why the order matters).
/// The worker's own tasks (heartbeat, self-fence, attempts, metrics) have all ended when this
/// returns.
///
/// Fails on an invalid configuration, a cache folder or metrics address that cannot be used,
/// no usable GPU (unless `noop`), or a coordinator that refuses the registration (for example
/// a wrong join token).
pub async fn run(
    config: WorkerConfig,
    gpu: Gpu,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_force(config, gpu, shutdown, std::future::pending()).await
}

/// Like [`run`], and once draining, `force` resolving (a second shutdown signal, say) gives
/// back the running attempts at once instead of waiting for them or the drain deadline.
pub async fn run_with_force(
    config: WorkerConfig,
    gpu: Gpu,
    shutdown: impl Future<Output = ()>,
    force: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.validate()?;
    let templates_dir = config.cache_dir.join("templates");
    let work_dir = config.cache_dir.join("work");
    for dir in [&templates_dir, &work_dir] {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    }

    let metrics = Arc::new(Metrics::new(config.slots));
    let health = Arc::new(Health::default());
    let (metrics_stop, metrics_stopped) = watch::channel(false);
    let metrics_server = match config.metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?;
            let mut stopped = metrics_stopped;
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let bound = listener.local_addr().unwrap_or(addr);
            let server = tokio::spawn(metrics::serve(
                listener,
                Arc::clone(&metrics),
                Arc::clone(&health),
                stop,
            ));
            Some((bound, server))
        }
        None => None,
    };

    let (gpu_adapter, gpu_backend, software) = if config.noop {
        (String::new(), String::new(), false)
    } else {
        // Open the first renderer now: a machine without a usable GPU fails at start, not at
        // its first job. It serves the first slot.
        let renderer = tokio::task::spawn_blocking(Renderer::new)
            .await
            .context("opening the GPU renderer panicked")?
            .context("cannot open the GPU renderer")?;
        let adapter = renderer.adapter_summary().clone();
        metrics.set_worker_info(&config.name, Some(&adapter));
        gpu.put(renderer);
        let software = adapter.is_software();
        (adapter.name, adapter.backend, software)
    };
    if config.noop {
        metrics.set_worker_info(&config.name, None);
    }
    let register_request = RegisterRequest {
        name: config.name.clone(),
        boot_id: uuid::Uuid::new_v4().to_string(),
        capabilities: Some(Capabilities {
            gpu_adapter,
            gpu_backend,
            encoders: ENCODERS.iter().map(|e| (*e).to_owned()).collect(),
            slots: config.slots,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            noop: config.noop,
        }),
    };
    let client = client::connect(&config).await?;

    let mut shutdown = std::pin::pin!(shutdown);
    let capabilities = register_request.capabilities.clone().unwrap_or_default();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        name = %config.name,
        boot_id = %register_request.boot_id,
        adapter = if config.noop { "none (noop)" } else { capabilities.gpu_adapter.as_str() },
        backend = %capabilities.gpu_backend,
        software_rendering = software,
        slots = config.slots,
        encoders = match config.encoders { 0 => EncoderPool::default_size(), n => n },
        coordinator = %config.coordinator,
        cache = %config.cache_dir.display(),
        metrics_listen = %metrics_server
            .as_ref()
            .map(|(addr, _)| addr.to_string())
            .unwrap_or_else(|| "off".to_owned()),
        drain_timeout_s = config.drain_timeout.as_secs(),
        "worker starting"
    );
    if software {
        warn!(
            adapter = %capabilities.gpu_adapter,
            "rendering on a software rasterizer (no GPU found or usable): renders will be slow"
        );
    }
    let response = tokio::select! {
        response = session::register(&client, &register_request, &health) => response?,
        () = shutdown.as_mut() => {
            info!("shut down before registering");
            let _ = metrics_stop.send(true);
            return Ok(());
        }
    };
    let session = Session::new(response, 1);
    health.set_registered(true);
    info!(
        worker_id = %session.worker_id,
        heartbeat_ms = session.heartbeat.as_millis() as u64,
        lease_ttl_ms = session.lease_ttl.as_millis() as u64,
        "registered"
    );

    let local_segments = if config.segment_cache_bytes > 0 && !config.noop {
        let dir = config.cache_dir.join("segments");
        Some(
            SegmentCache::open(&dir, config.segment_cache_bytes)
                .with_context(|| format!("cannot open the segment cache {}", dir.display()))?,
        )
    } else {
        None
    };
    let encoders = EncoderPool::new(match config.encoders {
        0 => EncoderPool::default_size(),
        n => n,
    });
    metrics.set_encoders(encoders.size());
    let handle = tokio::runtime::Handle::current();
    let shared = Arc::new_cyclic(|weak| Shared {
        segments: local_segments.map(|cache| {
            Arc::new(cache.with_shared(Arc::new(CoordinatorSegments {
                shared: weak.clone(),
                handle,
            })))
        }),
        encoders,
        templates: TemplateCache::new(templates_dir),
        work_dir,
        client,
        register_request,
        session: RwLock::new(session),
        register_lock: tokio::sync::Mutex::new(()),
        running: Arc::new(RunningSet::default()),
        draining: watch::Sender::new(false),
        metrics,
        gpu,
        config,
        health,
    });
    if let Some(cache) = &shared.segments {
        shared.metrics.watch_segment_cache(Arc::clone(cache));
    }
    let heartbeat = tokio::spawn(session::heartbeat_loop(Arc::clone(&shared)));
    let fence = tokio::spawn(session::fence_loop(Arc::clone(&shared)));

    let mut tasks = JoinSet::new();
    acquire_loop(&shared, &mut tasks, shutdown.as_mut()).await;

    // Draining: heartbeats go on while the running attempts finish, until the deadline or
    // `force`; then the rest are given back (they stop at their next frame or transfer, and
    // Deregister below hands them to the farm again).
    let deadline = tokio::time::sleep(shared.config.drain_timeout);
    let mut deadline = std::pin::pin!(deadline);
    let mut force = std::pin::pin!(force);
    let mut given_back = false;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Err(e)) => error!("an attempt task ended abnormally: {e}"),
                Some(Ok(())) => {}
                None => break,
            },
            () = deadline.as_mut(), if !given_back => {
                given_back = true;
                give_back(&shared, "the drain deadline passed");
            }
            () = force.as_mut(), if !given_back => {
                given_back = true;
                give_back(&shared, "a second shutdown signal came");
            }
        }
    }
    // Stop the background tasks and wait until they are gone, so that nothing of this worker
    // runs (or holds its state) once it returns.
    heartbeat.abort();
    fence.abort();
    for task in [heartbeat, fence] {
        if let Err(e) = task.await {
            if !e.is_cancelled() {
                error!("a background task of the worker ended abnormally: {e}");
            }
        }
    }
    deregister(&shared).await;
    let _ = metrics_stop.send(true);
    if let Some((_, server)) = metrics_server {
        match server.await {
            Ok(Err(e)) => warn!("the metrics server failed: {e}"),
            Err(e) => warn!("the metrics server ended abnormally: {e}"),
            Ok(Ok(())) => {}
        }
    }
    info!("worker stopped");
    Ok(())
}

/// Stops every running attempt so that Deregister hands it back to the farm.
fn give_back(shared: &Shared, why: &str) {
    let running = shared.running.snapshot();
    if running.is_empty() {
        return;
    }
    warn!(
        running = running.len(),
        "{why}: giving the running renders back to the farm to be rendered again"
    );
    for r in running {
        r.stop(StopReason::GivenBack);
    }
}

/// Acquires work into free slots until the worker drains (`shutdown`, or the coordinator says
/// so). Each assignment runs in its own task in `tasks`, holding a slot permit.
async fn acquire_loop(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<()>,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) {
    let slots = Arc::new(Semaphore::new(shared.config.slots as usize));
    let mut draining = shared.draining.subscribe();
    loop {
        while let Some(joined) = tasks.try_join_next() {
            if let Err(e) = joined {
                error!("an attempt task ended abnormally: {e}");
            }
        }
        if *draining.borrow_and_update() {
            return;
        }
        // Wait for a free slot, then take every other free one.
        let first = tokio::select! {
            biased;
            () = shutdown.as_mut() => {
                shared.start_drain("shutdown signal");
                return;
            }
            _ = draining.wait_for(|d| *d) => return,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let mut permits = vec![first];
        while let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
            permits.push(permit);
        }

        let session = shared.session();
        let request = AcquireRequest {
            worker_id: session.worker_id.clone(),
            max_assignments: u32::try_from(permits.len()).unwrap_or(u32::MAX),
            wait_ms: ACQUIRE_WAIT_MS,
        };
        let limit = Duration::from_millis(u64::from(ACQUIRE_WAIT_MS)) + client::UNARY_TIMEOUT;
        let mut c = shared.client.clone();
        let result = tokio::select! {
            biased;
            // Dropping the call cancels the long-poll; anything it would have returned is
            // handed on when this worker deregisters (or when the lease runs out).
            () = shutdown.as_mut() => {
                shared.start_drain("shutdown signal");
                return;
            }
            _ = draining.wait_for(|d| *d) => return,
            result = client::with_deadline(limit, c.acquire(client::request(request, limit))) => result,
        };
        match result {
            Ok(response) => {
                shared.health.link_ok();
                // The lease of each assignment starts when the coordinator claimed it, which is
                // after the long-poll was sent (possibly 20 s earlier) and just before the answer
                // arrived. Anchoring the self-fence at the arrival is safe as long as the answer
                // took less than the fence margin (10 s, or a third of the lease) to arrive;
                // anchoring at the send time would fence off work that waited in a long-poll.
                let received = Instant::now();
                let assignments = response.into_inner().assignments;
                if shared.session().generation != session.generation {
                    // Registered again meanwhile: the coordinator has given up everything leased
                    // to the old registration, these too.
                    if !assignments.is_empty() {
                        info!(
                            discarded = assignments.len(),
                            "assignments acquired under the previous registration discarded"
                        );
                    }
                    continue;
                }
                if assignments.len() > permits.len() {
                    warn!(
                        asked = permits.len(),
                        got = assignments.len(),
                        "the coordinator returned more assignments than free slots; running them all"
                    );
                }
                for assignment in assignments {
                    let permit = permits.pop();
                    tasks.spawn(attempt::run(
                        Arc::clone(shared),
                        assignment,
                        permit,
                        received,
                        session.worker_id.clone(),
                        session.generation,
                    ));
                }
                // Unused permits drop here and free their slots.
            }
            Err(status) if status.code() == Code::NotFound => {
                drop(permits);
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => {
                        shared.start_drain("shutdown signal");
                        return;
                    }
                    () = session::reregister(shared, session.generation) => {}
                }
            }
            Err(status) => {
                drop(permits);
                if client::is_transient(&status) {
                    shared.health.link_lost("Acquire", &status);
                } else {
                    warn!(
                        code = ?status.code(),
                        detail = status.message(),
                        "Acquire failed; retrying in {ACQUIRE_RETRY:?}"
                    );
                }
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => {
                        shared.start_drain("shutdown signal");
                        return;
                    }
                    _ = draining.wait_for(|d| *d) => return,
                    () = tokio::time::sleep(ACQUIRE_RETRY) => {}
                }
            }
        }
    }
}

/// Tells the coordinator this worker is leaving, retrying briefly while it is away.
async fn deregister(shared: &Shared) {
    let worker_id = shared.session().worker_id;
    let started = Instant::now();
    let mut backoff = client::Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
    loop {
        let mut c = shared.client.clone();
        let request = DeregisterRequest {
            worker_id: worker_id.clone(),
        };
        let result = client::with_deadline(
            client::UNARY_TIMEOUT,
            c.deregister(client::request(request, client::UNARY_TIMEOUT)),
        )
        .await;
        match result {
            Ok(_) => {
                info!(worker_id = %worker_id, "deregistered");
                return;
            }
            Err(status)
                if client::is_transient(&status) && started.elapsed() < DEREGISTER_RETRY_FOR =>
            {
                let delay = backoff.after(&status);
                warn!(code = ?status.code(), detail = status.message(), ?delay, "Deregister failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(status) => {
                warn!(
                    code = ?status.code(),
                    detail = status.message(),
                    "Deregister failed; the coordinator will expire this worker instead"
                );
                return;
            }
        }
    }
}
