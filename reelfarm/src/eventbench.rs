//! `reelfarm bench events --rate R --seconds S [--batch B]`: an open-loop load generator for
//! event ingestion (`POST /v1/events`).
//!
//! Requests are sent on a fixed schedule, `R / B` a second evenly spaced for `S` seconds, each
//! in its own task over a pool of keep-alive HTTP/1.1 connections (a new connection is opened
//! whenever none is idle, so a request never waits for another's answer). The latency of a
//! request runs from its *scheduled* send time to the complete answer: a request sent late
//! (the client was busy) carries its delay, so stalls are not hidden (no coordinated omission).
//!
//! The generator runs on its own thread with a single-threaded runtime and speaks HTTP/1.1
//! directly over `TcpStream` (no client library), so the client costs little of the CPU it
//! shares with the farm.
//!
//! Without `--http`, a farm is started in this process: a coordinator on SQLite in a temporary
//! folder (or `--store`), the trigger layer on the same kind of store, two no-op workers of 64
//! slots, the demo template and a campaign that matches every event and delivers to a webhook
//! receiver on loopback. Every event is then evaluated, dispatched, "rendered" and delivered
//! while ingestion is measured, and the time the trigger needs to catch up is reported.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use proto::v1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::EventBenchArgs;
use crate::client::{status_error, Farm};
use crate::farm::runtime;

/// Most connections the generator opens (each costs two descriptors when the farm is local).
const MAX_CONNECTIONS: usize = 2_000;
/// Connections opened before the first scheduled request.
const PREOPEN_CONNECTIONS: usize = 8;
/// Longest wait for the trigger to catch up after the last answer.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Largest answer head accepted.
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Largest answer body accepted.
const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Campaign of the local farm.
const CAMPAIGN: &str = "bench";

/// Where the events go.
#[derive(Debug, Clone)]
struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// Value of the Host header.
    host: String,
    api_key: String,
}

impl Target {
    fn parse(url: &str, api_key: String) -> Result<Target> {
        let rest = match url.strip_prefix("http://") {
            Some(r) => r,
            None if url.starts_with("https://") => bail!(
                "--http {url}: the generator speaks plain HTTP/1.1; point it at the farm's HTTP \
                 port (or a plain-HTTP listener of the proxy)"
            ),
            None => bail!("--http {url}: expected http://host:port"),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            bail!("--http {url}: no host");
        }
        let addr = if authority.starts_with('[') {
            if authority.contains("]:") {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            }
        } else if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            addr,
            host: authority.to_owned(),
            api_key,
        })
    }

    /// The complete request for `body`.
    fn request(&self, body: &str) -> Vec<u8> {
        let mut r = format!(
            "POST /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            self.api_key,
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body.as_bytes());
        r
    }
}

/// What the schedule looks like.
#[derive(Debug, Clone)]
struct Plan {
    /// Requests to send.
    requests: u64,
    /// Events per request.
    batch: u32,
    /// Time between two scheduled sends.
    interval: Duration,
    /// Prefix of the event ids (unique per run).
    run_id: String,
}

impl Plan {
    fn new(args: &EventBenchArgs) -> Result<Plan> {
        if args.rate == 0 || args.seconds == 0 {
            bail!("--rate and --seconds must be at least 1");
        }
        if args.batch == 0 || args.batch as usize > trigger::ingest::MAX_BATCH {
            bail!(
                "--batch must be 1 to {} events per request",
                trigger::ingest::MAX_BATCH
            );
        }
        let events = u64::from(args.rate) * u64::from(args.seconds);
        let requests = events.div_ceil(u64::from(args.batch));
        let interval = Duration::from_secs_f64(f64::from(args.batch) / f64::from(args.rate));
        Ok(Plan {
            requests,
            batch: args.batch,
            interval,
            run_id: format!("evb-{}", coordinator::auth::random_hex(6)),
        })
    }

    /// The body of request `i`: one event, or `{"events":[...]}` for batches.
    fn body(&self, i: u64) -> String {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let one = |n: u64, out: &mut String| {
            use std::fmt::Write as _;
            let lang = if n.is_multiple_of(2) { "hi" } else { "en" };
            let _ = write!(
                out,
                "{{\"id\":\"{}-{n}\",\"type\":\"order_delivered\",\"customer\":{{\"id\":\"c{}\",\
                 \"lang\":\"{lang}\",\"consent\":true,\"attributes\":{{\"first_name\":\"Asha\"}}}},\
                 \"occurred_at\":\"{now}\",\"data\":{{\"product\":\"Masala Chai\"}}}}",
                self.run_id,
                n % 100_000
            );
        };
        let mut out = String::with_capacity(260 * self.batch as usize + 16);
        if self.batch == 1 {
            one(i, &mut out);
        } else {
            out.push_str("{\"events\":[");
            for k in 0..u64::from(self.batch) {
                if k > 0 {
                    out.push(',');
                }
                one(i * u64::from(self.batch) + k, &mut out);
            }
            out.push_str("]}");
        }
        out
    }
}

/// One keep-alive connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One parsed answer.
#[derive(Debug, Clone, Copy, Default)]
struct Answer {
    status: u16,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    /// The server asked to close the connection.
    close: bool,
}

/// Why an exchange failed, and whether anything of an answer arrived.
struct ExchangeError {
    error: anyhow::Error,
    got_bytes: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The number after `"key":` in a JSON text (the answer's counters), 0 when absent.
fn json_count(body: &[u8], key: &str) -> u64 {
    let needle = format!("\"{key}\"");
    let Some(p) = find(body, needle.as_bytes()) else {
        return 0;
    };
    let rest = &body[p + needle.len()..];
    let digits: String = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == b':')
        .take_while(|b| b.is_ascii_digit())
        .map(|b| *b as char)
        .collect();
    digits.parse().unwrap_or(0)
}

impl Conn {
    async fn open(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Reads more bytes into the buffer; fails on end of stream.
    async fn fill(&mut self) -> Result<()> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// Sends one request and reads its whole answer.
    async fn exchange(&mut self, request: &[u8]) -> Result<Answer, ExchangeError> {
        let fail = |error: anyhow::Error, got_bytes: bool| ExchangeError { error, got_bytes };
        self.buf.clear();
        if let Err(e) = self.stream.write_all(request).await {
            return Err(fail(e.into(), false));
        }
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(fail(anyhow::anyhow!("answer head too long"), true));
            }
            let had = !self.buf.is_empty();
            if let Err(e) = self.fill().await {
                return Err(fail(e, had));
            }
        };
        let (mut answer, length, chunked) = match parse_head(&self.buf[..head_end]) {
            Ok(h) => h,
            Err(e) => return Err(fail(e, true)),
        };
        let body: Vec<u8> = if let Some(len) = length {
            if len > MAX_ANSWER_BYTES {
                return Err(fail(anyhow::anyhow!("answer body too long"), true));
            }
            while self.buf.len() < head_end + len {
                if let Err(e) = self.fill().await {
                    return Err(fail(e, true));
                }
            }
            self.buf[head_end..head_end + len].to_vec()
        } else if chunked {
            match self.read_chunked(head_end).await {
                Ok(b) => b,
                Err(e) => return Err(fail(e, true)),
            }
        } else {
            // Delimited by the end of the connection.
            answer.close = true;
            loop {
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) => break,
                    Ok(_) if self.buf.len() <= MAX_ANSWER_BYTES => {}
                    Ok(_) => return Err(fail(anyhow::anyhow!("answer body too long"), true)),
                    Err(e) => return Err(fail(e.into(), true)),
                }
            }
            self.buf[head_end..].to_vec()
        };
        answer.accepted = json_count(&body, "accepted");
        answer.duplicates = json_count(&body, "duplicates");
        answer.rejected = json_count(&body, "rejected");
        Ok(answer)
    }

    /// Decodes a chunked body that starts at `at` in the buffer.
    async fn read_chunked(&mut self, mut at: usize) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = find(&self.buf[at..], b"\r\n") {
                    break at + p;
                }
                self.fill().await?;
            };
            let line = std::str::from_utf8(&self.buf[at..line_end])?;
            let size_hex = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .with_context(|| format!("bad chunk size `{size_hex}`"))?;
            at = line_end + 2;
            if size == 0 {
                // Trailers (none expected), then the final CRLF.
                loop {
                    if let Some(p) = find(&self.buf[at..], b"\r\n") {
                        if p == 0 {
                            return Ok(body);
                        }
                        at += p + 2;
                        continue;
                    }
                    self.fill().await?;
                }
            }
            if body.len() + size > MAX_ANSWER_BYTES {
                bail!("answer body too long");
            }
            while self.buf.len() < at + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }
}

/// Status, Content-Length, chunked; `close` when the server ends the connection.
fn parse_head(head: &[u8]) -> Result<(Answer, Option<usize>, bool)> {
    let text = std::str::from_utf8(head).context("answer head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x answer: `{}`", status_line.trim());
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line `{}`", status_line.trim()))?;
    let mut answer = Answer {
        status,
        close: version == "HTTP/1.0",
        ..Answer::default()
    };
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                answer.close = true;
            } else if v.contains("keep-alive") {
                answer.close = false;
            }
        }
    }
    if chunked {
        length = None;
    }
    Ok((answer, length, chunked))
}

/// Idle keep-alive connections (last in, first out) and a cap on how many exist.
struct Pool {
    addr: String,
    idle: Mutex<Vec<Conn>>,
    slots: Arc<tokio::sync::Semaphore>,
    opened: AtomicU64,
    busy: AtomicU64,
    peak_busy: AtomicU64,
}

impl Pool {
    fn take(&self) -> Option<Conn> {
        self.idle.lock().ok().and_then(|mut v| v.pop())
    }

    fn give(&self, conn: Conn) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(conn);
        }
    }

    async fn open(&self) -> Result<Conn> {
        let c = Conn::open(&self.addr).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(c)
    }
}

/// One request as measured.
#[derive(Debug, Clone)]
struct Sample {
    /// Scheduled send time, from the start of the schedule.
    scheduled: Duration,
    /// Scheduled send time → request written to the socket.
    send_delay: Duration,
    /// Scheduled send time → complete answer (or the error).
    latency: Duration,
    /// Request written (last attempt) → complete answer: what the server and the network took.
    service: Duration,
    outcome: Result<Answer, String>,
}

/// Sends one request (retrying once on a fresh connection when a reused one turns out to be
/// closed before any answer arrived; the event ids make the retry harmless).
async fn send_one(pool: &Pool, request: &[u8]) -> (Result<Answer, String>, Option<Instant>) {
    let Ok(_permit) = pool.slots.acquire().await else {
        return (Err("connection pool closed".to_owned()), None);
    };
    let busy = pool.busy.fetch_add(1, Ordering::Relaxed) + 1;
    pool.peak_busy.fetch_max(busy, Ordering::Relaxed);
    let result = async {
        let (mut conn, mut reused) = match pool.take() {
            Some(c) => (c, true),
            None => match pool.open().await {
                Ok(c) => (c, false),
                Err(e) => return (Err(format!("{e:#}")), None),
            },
        };
        loop {
            let sent = Instant::now();
            match conn.exchange(request).await {
                Ok(answer) => {
                    if !answer.close {
                        pool.give(conn);
                    }
                    return (Ok(answer), Some(sent));
                }
                Err(e) if reused && !e.got_bytes => {
                    reused = false;
                    conn = match pool.open().await {
                        Ok(c) => c,
                        Err(e) => return (Err(format!("{e:#}")), Some(sent)),
                    };
                }
                Err(e) => return (Err(format!("{:#}", e.error)), Some(sent)),
            }
        }
    }
    .await;
    pool.busy.fetch_sub(1, Ordering::Relaxed);
    result
}

/// What the generator measured.
struct Generated {
    samples: Vec<Sample>,
    /// Schedule start → last answer.
    wall: Duration,
    connections: u64,
    peak_in_flight: u64,
    /// Events accepted by the probe request before the schedule.
    probe_accepted: u64,
}

/// Runs the schedule against `target` (call on a runtime of its own).
async fn generate(
    target: Target,
    plan: Plan,
    bar: Option<indicatif::ProgressBar>,
) -> Result<Generated> {
    let pool = Arc::new(Pool {
        addr: target.addr.clone(),
        idle: Mutex::new(Vec::new()),
        slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        opened: AtomicU64::new(0),
        busy: AtomicU64::new(0),
        peak_busy: AtomicU64::new(0),
    });
    // A probe: checks the key and the answer before the schedule starts.
    let probe_plan = Plan {
        run_id: format!("{}-probe", plan.run_id),
        ..plan.clone()
    };
    let (probe, _) = send_one(&pool, &target.request(&probe_plan.body(0))).await;
    let probe = probe.map_err(|e| anyhow::anyhow!("POST /v1/events at {}: {e}", target.addr))?;
    if probe.status != 202 {
        bail!(
            "POST /v1/events at {} answered {} (expected 202): check --api-key",
            target.addr,
            probe.status
        );
    }
    let probe_accepted = probe.accepted;
    // Idle connections ready before the first send.
    let mut ready = Vec::new();
    for _ in 0..PREOPEN_CONNECTIONS {
        ready.push(pool.open().await?);
    }
    for c in ready {
        pool.give(c);
    }

    let samples = Arc::new(Mutex::new(Vec::with_capacity(plan.requests as usize)));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now() + Duration::from_millis(20);
    let interval_ns = plan.interval.as_nanos();
    for i in 0..plan.requests {
        let offset = Duration::from_nanos((interval_ns * u128::from(i)) as u64);
        let at = start + offset;
        if Instant::now() < at {
            tokio::time::sleep_until(at.into()).await;
        }
        // Built at the send time (its occurred_at is "now"), outside the measured span.
        let request = target.request(&plan.body(i));
        let pool = pool.clone();
        let samples = samples.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let (outcome, sent) = send_one(&pool, &request).await;
            let done = Instant::now();
            let sample = Sample {
                scheduled: offset,
                send_delay: sent.unwrap_or(done).saturating_duration_since(at),
                latency: done.saturating_duration_since(at),
                service: done.saturating_duration_since(sent.unwrap_or(done)),
                outcome,
            };
            if let Ok(mut s) = samples.lock() {
                s.push(sample);
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let wall = start.elapsed();
    let samples = std::mem::take(&mut *samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok(Generated {
        samples,
        wall,
        connections: pool.opened.load(Ordering::Relaxed),
        peak_in_flight: pool.peak_busy.load(Ordering::Relaxed),
        probe_accepted,
    })
}

/// A farm started inside this process for the benchmark.
struct LocalFarm {
    running: coordinator::Running,
    trigger_task: tokio::task::JoinHandle<()>,
    stop_trigger: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    stop_workers: tokio::sync::watch::Sender<bool>,
    receiver: tokio::task::JoinHandle<()>,
    delivered: Arc<AtomicU64>,
    farm: Farm,
    _dir: tempfile::TempDir,
}

/// Number of no-op workers and slots of each in the local farm.
const WORKERS: u32 = 2;
const SLOTS: u32 = 64;

/// A webhook receiver on loopback that answers 200 to every delivery.
async fn start_receiver() -> Result<(String, Arc<AtomicU64>, tokio::task::JoinHandle<()>)> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the webhook receiver")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("error: webhook receiver: {e}");
        }
    });
    Ok((format!("http://{addr}/hook"), count, task))
}

async fn start_local(args: &EventBenchArgs) -> Result<(Target, LocalFarm)> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let (store_url, trigger_url) = match &args.store {
        Some(url) => (url.clone(), url.clone()),
        None => (
            format!("sqlite://{}", dir.path().join("bench.db").display()),
            format!("sqlite://{}", dir.path().join("trigger.db").display()),
        ),
    };
    let store = coordinator::store::open(&store_url)
        .await
        .context("opening the job store")?;
    let token = coordinator::auth::random_hex(16);
    let mut config = coordinator::CoordinatorConfig::new(
        "127.0.0.1:0".parse()?,
        dir.path().join("blobs").display().to_string(),
        token.clone(),
    );
    config.http_listen = Some("127.0.0.1:0".parse()?);
    let webhook_key = coordinator::auth::random_hex(32).into_bytes();
    let trigger = crate::dispatch::Trigger::open(&trigger_url, store.clone(), webhook_key).await?;
    trigger.attach(&mut config);
    let now = coordinator::Clock::system().now_ms();
    let tenant_name = format!("evbench-{}", coordinator::auth::random_hex(4));
    let (_, key) = coordinator::admin::create_tenant(&store, &tenant_name, 1_000_000, now).await?;
    let running = coordinator::start(config, store).await?;
    let http = running
        .http_addr
        .context("the coordinator did not open its HTTP endpoint")?;
    let (stop_trigger, trigger_rx) = tokio::sync::watch::channel(false);
    let trigger_task = trigger.spawn(running.addr, true, trigger_rx)?;
    let url = format!("http://{}", running.addr);
    let (stop_workers, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for i in 0..WORKERS {
        let mut wc = worker::WorkerConfig::new(
            url.clone(),
            token.clone(),
            dir.path().join(format!("worker-{i}")),
        );
        wc.name = format!("evbench-noop-{i}");
        wc.slots = SLOTS;
        wc.noop = true;
        let mut rx = stop_rx.clone();
        workers.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = worker::run(wc, worker::Gpu::new(), stop).await {
                eprintln!("error: bench worker {i}: {e:#}");
            }
        }));
    }
    let (hook, delivered, receiver) = start_receiver().await?;
    let mut farm = Farm::connect_with(&url, &key, None).await?;
    farm.push_template(&crate::commands::default_template(), &[])
        .await
        .context("pushing the demo template")?;
    let campaign = serde_json::json!({
        "name": CAMPAIGN,
        "event_type": "order_delivered",
        "conditions": [],
        "variants": [{"name": "a", "template": "order-delivered", "weight": 1}],
        "languages": {"supported": ["en", "hi"], "fallback": "en"},
        "tokens": {"first_name": "customer.attributes.first_name", "product": "data.product"},
        "holdout_percent": 0,
        "destination": {"url": hook, "secret_ref": "bench"},
    });
    farm.triggers
        .put_campaign(v1::PutCampaignRequest {
            definition_json: campaign.to_string(),
        })
        .await
        .map_err(status_error)
        .context("creating the benchmark campaign")?;
    Ok((
        Target {
            addr: http.to_string(),
            host: http.to_string(),
            api_key: key,
        },
        LocalFarm {
            running,
            trigger_task,
            stop_trigger,
            workers,
            stop_workers,
            receiver,
            delivered,
            farm,
            _dir: dir,
        },
    ))
}

impl LocalFarm {
    async fn stop(self) -> Result<()> {
        let _ = self.stop_trigger.send(true);
        let _ = self.trigger_task.await;
        let _ = self.stop_workers.send(true);
        for w in self.workers {
            let _ = w.await;
        }
        self.receiver.abort();
        self.running.shutdown().await
    }

    /// The campaign's counters summed over its variants: events (evaluated), renders
    /// (submitted), deliveries (webhooks answered 2xx).
    async fn counts(&mut self) -> Result<Counts> {
        let stats = self
            .farm
            .triggers
            .get_campaign_stats(v1::GetCampaignStatsRequest {
                name: CAMPAIGN.to_owned(),
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let mut c = Counts::default();
        for counters in stats.variants.values() {
            let get = |k: &str| counters.counts.get(k).copied().unwrap_or(0);
            c.evaluated += get("events");
            c.renders += get("renders");
            c.deliveries += get("deliveries");
        }
        Ok(c)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    evaluated: u64,
    renders: u64,
    deliveries: u64,
}

/// How the trigger kept up: counters sampled once a second while sending, and how long after
/// the last answer each stage had handled every event.
#[derive(Debug, Default)]
struct Backlog {
    /// (seconds since the schedule started, counts).
    timeline: Vec<(f64, Counts)>,
    /// Counts at the last answer.
    at_end: Counts,
    /// Seconds after the last answer until every accepted event was evaluated / submitted as a
    /// render / delivered; None when not reached within the limit.
    evaluated_after: Option<f64>,
    renders_after: Option<f64>,
    deliveries_after: Option<f64>,
    /// Counts when the wait ended.
    final_counts: Counts,
    waited: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Debug, Clone, Copy, Default)]
struct Dist {
    p50: f64,
    p95: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

impl Dist {
    fn of(mut values: Vec<f64>) -> Dist {
        values.sort_by(|a, b| a.total_cmp(b));
        Dist {
            p50: percentile(&values, 50.0),
            p95: percentile(&values, 95.0),
            p99: percentile(&values, 99.0),
            p999: percentile(&values, 99.9),
            max: values.last().copied().unwrap_or(0.0),
            mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "p50": self.p50, "p95": self.p95, "p99": self.p99, "p99_9": self.p999,
            "max": self.max, "mean": self.mean,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: EventBenchArgs) -> Result<()> {
    let plan = Plan::new(&args)?;
    runtime()?.block_on(async move {
        let (target, mut local) = match &args.http {
            Some(url) => {
                let key = args
                    .api_key
                    .clone()
                    .context("--http needs a tenant API key: --api-key or REELFARM_API_KEY")?;
                (Target::parse(url, key)?, None)
            }
            None => {
                let (t, farm) = start_local(&args).await?;
                (t, Some(farm))
            }
        };
        let bar = indicatif::ProgressBar::new(plan.requests);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "requests [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }

        // The generator: its own thread and single-threaded runtime.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let gen_target = target.clone();
        let gen_plan = plan.clone();
        let gen_bar = bar.clone();
        let started = Instant::now();
        std::thread::Builder::new()
            .name("event-generator".to_owned())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the generator's runtime")
                    .and_then(|rt| rt.block_on(generate(gen_target, gen_plan, Some(gen_bar))));
                let _ = done_tx.send(result);
            })
            .context("starting the generator thread")?;

        // Meanwhile: the trigger's counters once a second.
        let mut backlog = Backlog::default();
        let mut done_rx = done_rx;
        let generated = loop {
            tokio::select! {
                r = &mut done_rx => break r.context("the generator thread ended early")??,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if let Some(l) = local.as_mut() {
                        if let Ok(c) = l.counts().await {
                            backlog.timeline.push((started.elapsed().as_secs_f64(), c));
                        }
                    }
                }
            }
        };
        bar.finish_and_clear();
        let accepted: u64 = generated.probe_accepted
            + generated
                .samples
                .iter()
                .filter_map(|s| s.outcome.as_ref().ok())
                .map(|a| a.accepted)
                .sum::<u64>();

        let mut delivered_to_receiver = None;
        if let Some(l) = local.as_mut() {
            let wait_bar = indicatif::ProgressBar::new(accepted);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "trigger catching up [{bar:40}] {pos}/{len} delivered, {msg}",
            ) {
                wait_bar.set_style(style.progress_chars("=> "));
            }
            let t0 = Instant::now();
            backlog.at_end = l.counts().await.unwrap_or_default();
            loop {
                let c = l.counts().await?;
                let t = t0.elapsed().as_secs_f64();
                if backlog.evaluated_after.is_none() && c.evaluated >= accepted {
                    backlog.evaluated_after = Some(t);
                }
                if backlog.renders_after.is_none() && c.renders >= accepted {
                    backlog.renders_after = Some(t);
                }
                if backlog.deliveries_after.is_none() && c.deliveries >= accepted {
                    backlog.deliveries_after = Some(t);
                }
                backlog.final_counts = c;
                backlog.waited = t;
                wait_bar.set_position(c.deliveries);
                wait_bar.set_message(format!("{} evaluated, {} renders", c.evaluated, c.renders));
                if backlog.deliveries_after.is_some() || t0.elapsed() > DRAIN_LIMIT {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            wait_bar.finish_and_clear();
            delivered_to_receiver = Some(l.delivered.load(Ordering::Relaxed));
        }
        if let Some(l) = local {
            l.stop().await?;
        }
        report(
            &args,
            &plan,
            &target,
            &generated,
            accepted,
            &backlog,
            delivered_to_receiver,
        )
    })
}

fn report(
    args: &EventBenchArgs,
    plan: &Plan,
    target: &Target,
    g: &Generated,
    accepted_total: u64,
    backlog: &Backlog,
    delivered_to_receiver: Option<u64>,
) -> Result<()> {
    let local = args.http.is_none();
    let store_kind = if args
        .store
        .as_deref()
        .is_some_and(|s| s.starts_with("postgres"))
    {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let farm = match &args.http {
        Some(url) => url.clone(),
        None => format!(
            "local: coordinator and trigger on {store_kind}, {WORKERS} no-op workers x {SLOTS} \
             slots, campaign `{CAMPAIGN}` delivering to a receiver on loopback"
        ),
    };
    let requests = g.samples.len() as u64;
    let answered: Vec<&Answer> = g
        .samples
        .iter()
        .filter_map(|s| s.outcome.as_ref().ok())
        .collect();
    let ok = answered.iter().filter(|a| a.status == 202).count() as u64;
    let non_202 = answered.len() as u64 - ok;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for a in answered.iter().filter(|a| a.status != 202) {
        *statuses.entry(a.status).or_default() += 1;
    }
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for s in &g.samples {
        if let Err(e) = &s.outcome {
            *errors.entry(e.clone()).or_default() += 1;
        }
    }
    let error_count: u64 = errors.values().sum();
    let accepted: u64 = answered.iter().map(|a| a.accepted).sum();
    let duplicates: u64 = answered.iter().map(|a| a.duplicates).sum();
    let rejected: u64 = answered.iter().map(|a| a.rejected).sum();
    let wall = g.wall.as_secs_f64();
    let offered = f64::from(args.rate);
    let achieved = accepted as f64 / wall.max(1e-9);
    let planned_span = plan.interval.as_secs_f64() * plan.requests as f64;

    // Latency over the 202 answers; every request (errors included) for the send delay.
    let latency = Dist::of(
        g.samples
            .iter()
            .filter(|s| matches!(&s.outcome, Ok(a) if a.status == 202))
            .map(|s| ms(s.latency))
            .collect(),
    );
    let latency_all = Dist::of(g.samples.iter().map(|s| ms(s.latency)).collect());
    let send_delay = Dist::of(g.samples.iter().map(|s| ms(s.send_delay)).collect());
    let service = Dist::of(
        g.samples
            .iter()
            .filter(|s| matches!(&s.outcome, Ok(a) if a.status == 202))
            .map(|s| ms(s.service))
            .collect(),
    );
    // Per second of the schedule: requests, p99 and max latency.
    let mut seconds: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for s in &g.samples {
        seconds
            .entry(s.scheduled.as_secs())
            .or_default()
            .push(ms(s.latency));
    }
    let per_second: Vec<(u64, usize, Dist)> = seconds
        .into_iter()
        .map(|(sec, v)| (sec, v.len(), Dist::of(v)))
        .collect();
    let worst_second = per_second
        .iter()
        .max_by(|a, b| a.2.p99.total_cmp(&b.2.p99))
        .map(|(s, n, d)| (*s, *n, *d));

    println!("farm:        {farm}");
    println!("target:      POST http://{}/v1/events", target.addr);
    println!(
        "offered:     {offered:.0} events/s = {:.1} requests/s x {} event{} for {} s ({} requests)",
        offered / f64::from(plan.batch),
        plan.batch,
        if plan.batch == 1 { "" } else { "s" },
        args.seconds,
        plan.requests
    );
    println!(
        "achieved:    {achieved:.1} events/s accepted ({accepted} in {wall:.2} s, schedule {planned_span:.2} s)"
    );
    println!(
        "answers:     {ok} x 202 of {requests} requests; {non_202} other answer{}, {error_count} error{}; \
         events {accepted} accepted, {duplicates} duplicate, {rejected} rejected",
        if statuses.is_empty() {
            if non_202 == 1 { "" } else { "s" }.to_owned()
        } else {
            format!(
                " ({})",
                statuses
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        if error_count == 1 { "" } else { "s" }
    );
    for (e, n) in errors.iter().take(5) {
        println!("  error x{n}: {e}");
    }
    println!(
        "connections: {} opened, at most {} request{} in flight",
        g.connections,
        g.peak_in_flight,
        if g.peak_in_flight == 1 { "" } else { "s" }
    );
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "latency (ms)", "p50", "p95", "p99", "p99.9", "max", "mean"
    );
    for (name, d) in [
        ("scheduled send -> 202 answer", latency),
        ("  written -> 202 answer (server)", service),
        ("  scheduled send -> written (client)", send_delay),
    ] {
        println!(
            "{name:<40} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            d.p50, d.p95, d.p99, d.p999, d.max, d.mean
        );
    }
    if let Some((sec, n, d)) = worst_second {
        println!(
            "worst second: {sec} ({n} requests): p99 {:.2} ms, max {:.2} ms",
            d.p99, d.max
        );
    }
    let fmt_after = |v: Option<f64>| match v {
        Some(s) => format!("+{s:.1} s"),
        None => format!("not within {:.0} s", backlog.waited),
    };
    if local {
        println!(
            "trigger:     at the last answer {} of {accepted_total} events evaluated, {} renders submitted, {} delivered",
            backlog.at_end.evaluated, backlog.at_end.renders, backlog.at_end.deliveries
        );
        println!(
            "             all evaluated {}, all renders submitted {}, all delivered {}",
            fmt_after(backlog.evaluated_after),
            fmt_after(backlog.renders_after),
            fmt_after(backlog.deliveries_after)
        );
        if backlog.deliveries_after.is_none() {
            println!(
                "             when the wait ended: {} evaluated, {} renders, {} delivered",
                backlog.final_counts.evaluated,
                backlog.final_counts.renders,
                backlog.final_counts.deliveries
            );
        }
        if let Some((rate_e, rate_r, rate_d)) = steady_rates(&backlog.timeline) {
            println!(
                "             while sending: {rate_e:.0} evaluated/s, {rate_r:.0} renders/s, {rate_d:.0} deliveries/s"
            );
        }
    }

    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "farm": farm,
            "target": format!("http://{}/v1/events", target.addr),
            "offered_events_per_s": offered,
            "batch": plan.batch,
            "seconds": args.seconds,
            "requests": requests,
            "answers_202": ok,
            "non_202": non_202,
            "statuses": statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "errors": error_count,
            "error_messages": errors,
            "events": {"accepted": accepted, "duplicates": duplicates, "rejected": rejected},
            "wall_s": wall,
            "achieved_events_per_s": achieved,
            "connections": g.connections,
            "peak_in_flight": g.peak_in_flight,
            "latency_ms": latency.json(),
            "latency_all_requests_ms": latency_all.json(),
            "send_delay_ms": send_delay.json(),
            "written_to_answer_ms": service.json(),
            "per_second": per_second.iter().map(|(s, n, d)| serde_json::json!({
                "second": s, "requests": n, "p50_ms": d.p50, "p99_ms": d.p99, "max_ms": d.max,
            })).collect::<Vec<_>>(),
            "trigger": if local {
                serde_json::json!({
                    "events_expected": accepted_total,
                    "at_last_answer": counts_json(backlog.at_end),
                    "evaluated_after_s": backlog.evaluated_after,
                    "renders_after_s": backlog.renders_after,
                    "deliveries_after_s": backlog.deliveries_after,
                    "when_wait_ended": counts_json(backlog.final_counts),
                    "waited_s": backlog.waited,
                    "webhooks_received": delivered_to_receiver,
                    "timeline": backlog.timeline.iter().map(|(t, c)| serde_json::json!({
                        "t_s": t, "evaluated": c.evaluated, "renders": c.renders, "deliveries": c.deliveries,
                    })).collect::<Vec<_>>(),
                })
            } else {
                serde_json::Value::Null
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("--json {}: cannot write", path.display()))?;
    }
    if ok == 0 {
        bail!("no request was answered 202");
    }
    Ok(())
}

fn counts_json(c: Counts) -> serde_json::Value {
    serde_json::json!({"evaluated": c.evaluated, "renders": c.renders, "deliveries": c.deliveries})
}

/// Rates of the three counters between the first and the last sample taken while sending.
fn steady_rates(timeline: &[(f64, Counts)]) -> Option<(f64, f64, f64)> {
    let (t0, a) = timeline.first()?;
    let (t1, b) = timeline.last()?;
    let dt = t1 - t0;
    if dt < 1.0 {
        return None;
    }
    Some((
        (b.evaluated - a.evaluated) as f64 / dt,
        (b.renders - a.renders) as f64 / dt,
        (b.deliveries - a.deliveries) as f64 / dt,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_counts() {
        let (a, len, chunked) = parse_head(
            b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n",
        )
        .expect("head");
        assert_eq!(a.status, 202);
        assert_eq!(len, Some(42));
        assert!(!chunked && !a.close);
        let (a, len, chunked) = parse_head(
            b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .expect("head");
        assert_eq!((a.status, len, chunked, a.close), (503, None, true, true));
        let body = br#"{"accepted":3,"duplicates": 1,"rejected":0,"results":[]}"#;
        assert_eq!(json_count(body, "accepted"), 3);
        assert_eq!(json_count(body, "duplicates"), 1);
        assert_eq!(json_count(body, "rejected"), 0);
    }

    #[test]
    fn bodies_are_valid_events() {
        let plan = Plan {
            requests: 2,
            batch: 3,
            interval: Duration::from_millis(3),
            run_id: "t".to_owned(),
        };
        let v: serde_json::Value = serde_json::from_str(&plan.body(1)).expect("json");
        let events = v["events"].as_array().expect("events");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["id"], "t-3");
        for e in events {
            trigger::Event::from_json(&e.to_string()).expect("a valid event");
        }
        let single = Plan { batch: 1, ..plan };
        trigger::Event::from_json(&single.body(7)).expect("a valid event");
    }

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:7601/", "k".to_owned()).expect("url");
        assert_eq!(t.addr, "127.0.0.1:7601");
        let t = Target::parse("http://farm.example", "k".to_owned()).expect("url");
        assert_eq!(t.addr, "farm.example:80");
        assert!(Target::parse("https://farm.example", "k".to_owned()).is_err());
    }

    #[tokio::test]
    async fn chunked_answers_are_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n\
                      6\r\n{\"acce\r\n8\r\npted\":7}\r\n0\r\n\r\n",
                )
                .await;
        });
        let mut c = Conn::open(&addr).await.expect("connect");
        let a = c.exchange(b"POST / HTTP/1.1\r\n\r\n").await;
        let a = a.map_err(|e| e.error).expect("answer");
        assert_eq!((a.status, a.accepted), (202, 7));
    }
}
