//! A fake coordinator: an in-memory WorkerService on `127.0.0.1:0` that hands out queued
//! assignments, records every call, and misbehaves on request.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::Stream;
use proto::v1::worker_service_server::{WorkerService, WorkerServiceServer};
use proto::v1::{
    publish_stream_request, store_segment_request, upload_output_request, AcquireRequest,
    AcquireResponse, Assignment, AttemptRef, Chunk, CompleteRequest, CompleteResponse,
    DeregisterRequest, DeregisterResponse, FailRequest, FailResponse, FetchSegmentRequest,
    FetchTemplateRequest, HeartbeatRequest, HeartbeatResponse, Lane, Preset, PublishStreamRequest,
    PublishStreamResponse, RegisterRequest, RegisterResponse, StoreSegmentRequest,
    StoreSegmentResponse, UploadOutputHeader, UploadOutputRequest, UploadOutputResponse,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

/// The join token the fake accepts.
pub const TOKEN: &str = "test-token";

/// The demo template.
pub fn demo_template() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets/templates/order-delivered"
    ))
}

/// Test certificates: `ca.pem` (a test CA), `server.pem` and `server.key` (signed by it, for
/// IP 127.0.0.1 and `localhost`). Test-only; never trust them elsewhere.
pub fn tls_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/tls"))
}

/// How the fake behaves; tests change it while the worker runs.
#[derive(Debug)]
pub struct Behavior {
    pub heartbeat_ms: u32,
    pub lease_ttl_ms: u32,
    /// Archives FetchTemplate serves, by digest.
    pub archives: HashMap<String, Vec<u8>>,
    /// FetchTemplate never sends anything.
    pub fetch_hangs: bool,
    /// Heartbeat answers UNAVAILABLE.
    pub heartbeat_fails: bool,
    /// Complete takes this long to answer.
    pub complete_delay: Duration,
    /// Attempt ids whose Complete is answered FAILED_PRECONDITION.
    pub reject_complete: HashSet<String>,
    /// Attempt ids heartbeats answer `stop` for.
    pub stop: HashSet<String>,
    /// Heartbeats answer `drain`.
    pub drain: bool,
    /// The next heartbeat answers `reregister` (then this goes back to false).
    pub reregister_once: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            heartbeat_ms: 200,
            lease_ttl_ms: 30_000,
            archives: HashMap::new(),
            fetch_hangs: false,
            heartbeat_fails: false,
            complete_delay: Duration::ZERO,
            reject_complete: HashSet::new(),
            stop: HashSet::new(),
            drain: false,
            reregister_once: false,
        }
    }
}

/// One stored upload.
#[derive(Debug, Clone)]
pub struct Upload {
    pub header: UploadOutputHeader,
    pub data: Vec<u8>,
    pub largest_chunk: usize,
}

/// Every call the fake got.
#[derive(Debug, Default)]
pub struct Log {
    pub registers: Vec<RegisterRequest>,
    pub acquires: Vec<AcquireRequest>,
    pub heartbeats: Vec<HeartbeatRequest>,
    pub fetches: Vec<FetchTemplateRequest>,
    pub uploads: Vec<Upload>,
    /// Every Complete call, answered or refused.
    pub complete_calls: Vec<CompleteRequest>,
    /// Complete calls answered OK.
    pub completes: Vec<CompleteRequest>,
    pub fails: Vec<FailRequest>,
    pub deregisters: Vec<String>,
    /// Calls without the right bearer token.
    pub unauthenticated: usize,
    /// FetchSegment keys asked for.
    pub segment_fetches: Vec<String>,
    /// The segment store: StoreSegment bodies by key.
    pub segments: HashMap<String, Vec<u8>>,
    /// PublishStream calls: file name and body, in order.
    pub publishes: Vec<(String, Vec<u8>)>,
    /// Ordered notable events: `complete-start:<id>`, `complete:<id>`, `fetch-dropped`,
    /// `deregister`.
    pub events: Vec<String>,
}

impl Log {
    /// Completes (answered OK) of `attempt_id`.
    pub fn completed(&self, attempt_id: &str) -> usize {
        self.completes
            .iter()
            .filter(|c| c.attempt.as_ref().map(|a| a.attempt_id.as_str()) == Some(attempt_id))
            .count()
    }
}

pub struct Fake {
    pub behavior: Mutex<Behavior>,
    log: Mutex<Log>,
    queue: Mutex<VecDeque<Assignment>>,
    /// Digest of each attempt handed out, for FetchTemplate.
    digests: Mutex<HashMap<String, String>>,
    work: Notify,
    /// Worker ids told to register again: their Acquires answer NOT_FOUND.
    forgotten: Mutex<HashSet<String>>,
    next_epoch: AtomicU64,
    workers: AtomicU64,
}

impl Fake {
    /// Starts a fake on `127.0.0.1:0`; returns it and its `http://` URL.
    pub async fn start(behavior: Behavior) -> (Arc<Fake>, String) {
        Fake::start_with(behavior, false, loopback_any()).await
    }

    /// Starts a fake on `addr` (plain HTTP).
    pub async fn start_at(behavior: Behavior, addr: SocketAddr) -> (Arc<Fake>, String) {
        Fake::start_with(behavior, false, addr).await
    }

    /// Starts a fake serving TLS with the certificate in `tests/it/tls/` (a test CA's
    /// certificate for 127.0.0.1, valid until 2126); returns it and its `https://` URL.
    pub async fn start_tls(behavior: Behavior) -> (Arc<Fake>, String) {
        Fake::start_with(behavior, true, loopback_any()).await
    }

    async fn start_with(behavior: Behavior, tls: bool, addr: SocketAddr) -> (Arc<Fake>, String) {
        let fake = Arc::new(Fake {
            behavior: Mutex::new(behavior),
            log: Mutex::new(Log::default()),
            queue: Mutex::new(VecDeque::new()),
            digests: Mutex::new(HashMap::new()),
            work: Notify::new(),
            forgotten: Mutex::new(HashSet::new()),
            next_epoch: AtomicU64::new(1),
            workers: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = WorkerServiceServer::new(Service(Arc::clone(&fake)));
        let mut server = tonic::transport::Server::builder();
        if tls {
            let identity = tonic::transport::Identity::from_pem(
                std::fs::read(tls_dir().join("server.pem")).expect("server.pem"),
                std::fs::read(tls_dir().join("server.key")).expect("server.key"),
            );
            server = server
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .expect("server TLS");
        }
        tokio::spawn(
            server
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let scheme = if tls { "https" } else { "http" };
        (fake, format!("{scheme}://{addr}"))
    }

    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().expect("log")
    }

    pub fn behave(&self) -> MutexGuard<'_, Behavior> {
        self.behavior.lock().expect("behavior")
    }

    /// A new assignment of the demo template (digest `digest`) for one recipient.
    pub fn assignment(&self, digest: &str, tokens: &[(&str, &str)]) -> Assignment {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        Assignment {
            attempt: Some(AttemptRef {
                render_id: format!("render-{epoch}"),
                attempt_id: uuid::Uuid::new_v4().to_string(),
                lease_epoch: epoch,
            }),
            template_name: "order-delivered".to_owned(),
            template_version: 1,
            template_digest: digest.to_owned(),
            lang: "en".to_owned(),
            tokens: tokens
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            preset: Preset::Preset720p as i32,
            lane: Lane::Realtime as i32,
            lease_expires_unix_ms: 0,
            deadline_unix_ms: 0,
            attempt_number: 1,
        }
    }

    /// Queues `assignment` for the next Acquire.
    pub fn push(&self, assignment: Assignment) {
        if let Some(a) = &assignment.attempt {
            self.digests
                .lock()
                .expect("digests")
                .insert(a.attempt_id.clone(), assignment.template_digest.clone());
        }
        self.queue.lock().expect("queue").push_back(assignment);
        self.work.notify_waiters();
    }

    /// Waits until `cond` holds for the log, polling; panics after `timeout`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&Log) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond(&self.log()) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; log: {:#?}",
                    summary(&self.log())
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn record(&self, f: impl FnOnce(&mut Log)) {
        f(&mut self.log());
    }

    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let ok = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {TOKEN}"));
        if ok {
            Ok(())
        } else {
            self.record(|l| l.unauthenticated += 1);
            Err(Status::unauthenticated("bad join token"))
        }
    }
}

/// A short view of the log for failure messages (uploads without their bytes).
fn summary(log: &Log) -> String {
    format!(
        "registers={} acquires={} heartbeats={} (last: {:?}) fetches={} uploads={:?} complete_calls={} completes={} fails={:?} deregisters={:?} events={:?}",
        log.registers.len(),
        log.acquires.len(),
        log.heartbeats.len(),
        log.heartbeats.last(),
        log.fetches.len(),
        log.uploads.iter().map(|u| (u.header.artifact, u.data.len())).collect::<Vec<_>>(),
        log.complete_calls.len(),
        log.completes.len(),
        log.fails,
        log.deregisters,
        log.events,
    )
}

/// A FetchTemplate stream that records when the worker dropped it.
struct Watched<S> {
    inner: S,
    fake: Arc<Fake>,
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.fake
            .record(|l| l.events.push("fetch-dropped".to_owned()));
    }
}

impl<S: Stream + Unpin> Stream for Watched<S> {
    type Item = S::Item;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// The gRPC face of a [`Fake`].
struct Service(Arc<Fake>);

impl std::ops::Deref for Service {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.0
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl WorkerService for Service {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        self.check(&request)?;
        let n = self.workers.fetch_add(1, Ordering::Relaxed) + 1;
        let (heartbeat, ttl) = {
            let b = self.behave();
            (b.heartbeat_ms, b.lease_ttl_ms)
        };
        self.record(|l| l.registers.push(request.into_inner()));
        Ok(Response::new(RegisterResponse {
            worker_id: format!("w-{n}"),
            heartbeat_interval_ms: heartbeat,
            lease_ttl_ms: ttl,
        }))
    }

    async fn acquire(
        &self,
        request: Request<AcquireRequest>,
    ) -> Result<Response<AcquireResponse>, Status> {
        self.check(&request)?;
        let request = request.into_inner();
        self.record(|l| l.acquires.push(request.clone()));
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(u64::from(request.wait_ms.min(20_000)));
        loop {
            let notified = self.work.notified();
            if self
                .forgotten
                .lock()
                .expect("forgotten")
                .contains(&request.worker_id)
            {
                return Err(Status::not_found("unknown worker"));
            }
            {
                let mut queue = self.queue.lock().expect("queue");
                let n = (request.max_assignments as usize).min(queue.len());
                if n > 0 {
                    let assignments = queue.drain(..n).collect();
                    return Ok(Response::new(AcquireResponse { assignments }));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Response::new(AcquireResponse::default()));
            }
        }
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.check(&request)?;
        let request = request.into_inner();
        let (fails, stop_ids, drain, reregister) = {
            let mut b = self.behave();
            let reregister = std::mem::take(&mut b.reregister_once);
            (b.heartbeat_fails, b.stop.clone(), b.drain, reregister)
        };
        if fails {
            return Err(Status::unavailable("heartbeats are failing"));
        }
        if reregister {
            self.forgotten
                .lock()
                .expect("forgotten")
                .insert(request.worker_id.clone());
        }
        let mut renewed = Vec::new();
        let mut stop = Vec::new();
        for p in &request.running {
            if let Some(a) = &p.attempt {
                if stop_ids.contains(&a.attempt_id) {
                    stop.push(a.clone());
                } else {
                    renewed.push(a.clone());
                }
            }
        }
        self.record(|l| l.heartbeats.push(request));
        Ok(Response::new(HeartbeatResponse {
            renewed,
            stop,
            lease_expires_unix_ms: 0,
            drain,
            reregister,
        }))
    }

    type FetchTemplateStream = ChunkStream;

    async fn fetch_template(
        &self,
        request: Request<FetchTemplateRequest>,
    ) -> Result<Response<Self::FetchTemplateStream>, Status> {
        self.check(&request)?;
        let request = request.into_inner();
        let attempt_id = request
            .attempt
            .as_ref()
            .map(|a| a.attempt_id.clone())
            .unwrap_or_default();
        self.record(|l| l.fetches.push(request));
        let digest = self
            .digests
            .lock()
            .expect("digests")
            .get(&attempt_id)
            .cloned()
            .ok_or_else(|| Status::failed_precondition("unknown attempt"))?;
        let (hangs, archive) = {
            let b = self.behave();
            (b.fetch_hangs, b.archives.get(&digest).cloned())
        };
        if hangs {
            let stream = Watched {
                inner: futures::stream::pending::<Result<Chunk, Status>>(),
                fake: Arc::clone(&self.0),
            };
            return Ok(Response::new(Box::pin(stream)));
        }
        let archive = archive.ok_or_else(|| Status::not_found("no such template"))?;
        let chunks: Vec<Result<Chunk, Status>> = archive
            .chunks(proto::CHUNK_BYTES)
            .map(|c| Ok(Chunk { data: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    type FetchSegmentStream = ChunkStream;

    async fn fetch_segment(
        &self,
        request: Request<FetchSegmentRequest>,
    ) -> Result<Response<Self::FetchSegmentStream>, Status> {
        self.check(&request)?;
        let key = request.into_inner().key;
        let found = {
            let mut log = self.log();
            log.segment_fetches.push(key.clone());
            log.segments.get(&key).cloned()
        };
        let data = found.ok_or_else(|| Status::not_found("no such segment"))?;
        let chunks: Vec<Result<Chunk, Status>> = data
            .chunks(proto::CHUNK_BYTES)
            .map(|c| Ok(Chunk { data: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn store_segment(
        &self,
        request: Request<Streaming<StoreSegmentRequest>>,
    ) -> Result<Response<StoreSegmentResponse>, Status> {
        self.check(&request)?;
        let mut stream = request.into_inner();
        let key = match stream.message().await?.and_then(|m| m.part) {
            Some(store_segment_request::Part::Header(h)) => h.key,
            _ => return Err(Status::invalid_argument("the header comes first")),
        };
        let mut data = Vec::new();
        while let Some(message) = stream.message().await? {
            if let Some(store_segment_request::Part::Chunk(c)) = message.part {
                data.extend_from_slice(&c);
            }
        }
        let stored = self.log().segments.insert(key, data).is_none();
        Ok(Response::new(StoreSegmentResponse { stored }))
    }

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishStreamRequest>>,
    ) -> Result<Response<PublishStreamResponse>, Status> {
        self.check(&request)?;
        let mut stream = request.into_inner();
        let name = match stream.message().await?.and_then(|m| m.part) {
            Some(publish_stream_request::Part::Header(h)) => h.name,
            _ => return Err(Status::invalid_argument("the header comes first")),
        };
        let mut data = Vec::new();
        while let Some(message) = stream.message().await? {
            if let Some(publish_stream_request::Part::Chunk(c)) = message.part {
                data.extend_from_slice(&c);
            }
        }
        self.record(|l| l.publishes.push((name, data)));
        Ok(Response::new(PublishStreamResponse {}))
    }

    async fn upload_output(
        &self,
        request: Request<Streaming<UploadOutputRequest>>,
    ) -> Result<Response<UploadOutputResponse>, Status> {
        self.check(&request)?;
        let mut stream = request.into_inner();
        let header = match stream.message().await?.and_then(|m| m.part) {
            Some(upload_output_request::Part::Header(h)) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be the header",
                ))
            }
        };
        let mut data = Vec::new();
        let mut largest_chunk = 0;
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(upload_output_request::Part::Chunk(c)) => {
                    largest_chunk = largest_chunk.max(c.len());
                    data.extend_from_slice(&c);
                }
                _ => return Err(Status::invalid_argument("only chunks after the header")),
            }
        }
        let response = UploadOutputResponse {
            size_bytes: data.len() as u64,
            sha256: hex::encode(Sha256::digest(&data)),
        };
        self.record(|l| {
            l.uploads.push(Upload {
                header,
                data,
                largest_chunk,
            })
        });
        Ok(Response::new(response))
    }

    async fn complete(
        &self,
        request: Request<CompleteRequest>,
    ) -> Result<Response<CompleteResponse>, Status> {
        self.check(&request)?;
        let request = request.into_inner();
        let id = request
            .attempt
            .as_ref()
            .map(|a| a.attempt_id.clone())
            .unwrap_or_default();
        self.record(|l| {
            l.complete_calls.push(request.clone());
            l.events.push(format!("complete-start:{id}"));
        });
        let (delay, reject) = {
            let b = self.behave();
            (b.complete_delay, b.reject_complete.contains(&id))
        };
        tokio::time::sleep(delay).await;
        if reject {
            return Err(Status::failed_precondition("stale attempt"));
        }
        self.record(|l| {
            l.completes.push(request);
            l.events.push(format!("complete:{id}"));
        });
        Ok(Response::new(CompleteResponse { duplicate: false }))
    }

    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<FailResponse>, Status> {
        self.check(&request)?;
        let request = request.into_inner();
        self.record(|l| l.fails.push(request));
        Ok(Response::new(FailResponse {
            will_retry: false,
            duplicate: false,
        }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        self.check(&request)?;
        let worker_id = request.into_inner().worker_id;
        self.record(|l| {
            l.deregisters.push(worker_id);
            l.events.push("deregister".to_owned());
        });
        Ok(Response::new(DeregisterResponse {}))
    }
}

/// A worker running against a fake.
pub struct TestWorker {
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
    pub cache: tempfile::TempDir,
}

impl TestWorker {
    /// Starts `worker::run` against `url`.
    pub fn start(url: &str, noop: bool, slots: u32, metrics: Option<SocketAddr>) -> TestWorker {
        TestWorker::start_with(url, |config| {
            config.noop = noop;
            config.slots = slots;
            config.metrics_addr = metrics;
        })
    }

    /// Starts `worker::run` against `url` with the test defaults changed by `configure`.
    pub fn start_with(url: &str, configure: impl FnOnce(&mut worker::WorkerConfig)) -> TestWorker {
        init_logs();
        let cache = tempfile::tempdir().expect("cache dir");
        let mut config = worker::WorkerConfig::new(url, TOKEN, cache.path());
        config.name = "test-worker".to_owned();
        configure(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(worker::run(config, worker::Gpu::new(), async move {
            let _ = rx.await;
        }));
        TestWorker {
            shutdown: Some(tx),
            handle,
            cache,
        }
    }

    pub fn cache_path(&self) -> &Path {
        self.cache.path()
    }

    /// Sends the shutdown signal.
    pub fn signal(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for `run` to return (after [`TestWorker::signal`] or a drain).
    pub async fn join(self, timeout: Duration) -> anyhow::Result<()> {
        let _keep = self.shutdown;
        tokio::time::timeout(timeout, self.handle)
            .await
            .expect("the worker returns in time")
            .expect("the worker task does not panic")
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn stop(mut self, timeout: Duration) -> anyhow::Result<()> {
        self.signal();
        self.join(timeout).await
    }
}

/// Logs to the test output (shown for failing tests); `RUST_LOG` overrides the filter.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("worker=debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A free loopback port for the metrics endpoint.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// `GET /metrics` over plain HTTP/1.1.
pub async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    body
}

/// The demo template packed as an archive, and its digest.
pub fn demo_archive() -> (Vec<u8>, String) {
    let archive = template::pack_dir(&demo_template()).expect("pack the demo template");
    let digest = hex::encode(Sha256::digest(&archive));
    (archive, digest)
}
