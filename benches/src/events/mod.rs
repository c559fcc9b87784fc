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

use farm::receiver::{self, Receiver};
use farm::secrets::random_hex;
use farm::{status_error, FarmSpec, LocalFarm, TenantClient, Workers};

mod http1;
mod report;

use http1::{Answer, Pool};
use report::report;

/// The load to generate, and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// Events a second.
    pub rate: u32,
    /// Seconds of load.
    pub seconds: u32,
    /// Events per request.
    pub batch: u32,
    /// A running farm's HTTP base URL; `None`: a local farm in this process.
    pub http: Option<String>,
    /// The tenant API key for `http`.
    pub api_key: Option<String>,
    /// Store of the local farm (job and trigger stores); `None`: SQLite in a temporary folder.
    pub store: Option<String>,
    /// Where to write the figures as JSON.
    pub json: Option<std::path::PathBuf>,
}

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
    fn new(args: &Config) -> Result<Plan> {
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
            run_id: format!("evb-{}", random_hex(6)),
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

/// A farm started inside this process for the benchmark, with its webhook receiver.
struct Local {
    farm: LocalFarm,
    client: TenantClient,
    receiver: Receiver,
    _dir: tempfile::TempDir,
}

/// Number of no-op workers and slots of each in the local farm.
const WORKERS: u32 = 2;
const SLOTS: u32 = 64;

async fn start_local(args: &Config) -> Result<(Target, Local)> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let (store_url, trigger_url) = match &args.store {
        Some(url) => (url.clone(), url.clone()),
        None => (
            format!("sqlite://{}", dir.path().join("bench.db").display()),
            format!("sqlite://{}", dir.path().join("trigger.db").display()),
        ),
    };
    let mut spec = FarmSpec::new(dir.path())
        .with_local_trigger(trigger_url)
        .with_tenant(format!("evbench-{}", random_hex(4)), 1_000_000);
    spec.store_url = Some(store_url);
    spec.workers = Workers {
        count: WORKERS,
        slots: SLOTS,
        noop: true,
        name_prefix: "evbench-noop".to_owned(),
    };
    let farm = LocalFarm::start(spec, farm::Gpu::new()).await?;
    let http = farm
        .http_addr
        .context("the coordinator did not open its HTTP endpoint")?;
    let receiver = Receiver::start(receiver::Options {
        fail_first: 0,
        count_only: true,
    })
    .await?;
    let mut client = farm.client().await?;
    client
        .push_template(&crate::default_template(), &[])
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
        "destination": {"url": receiver.url, "secret_ref": "bench"},
    });
    let put = client
        .triggers
        .put_campaign(v1::PutCampaignRequest {
            definition_json: campaign.to_string(),
        })
        .await
        .map_err(status_error)
        .context("creating the benchmark campaign")?
        .into_inner();
    receiver.set_secret(&put.webhook_secret);
    Ok((
        Target {
            addr: http.to_string(),
            host: http.to_string(),
            api_key: farm.api_key()?.to_owned(),
        },
        Local {
            farm,
            client,
            receiver,
            _dir: dir,
        },
    ))
}

impl Local {
    /// The campaign's counters summed over its variants: events (evaluated), renders
    /// (submitted), deliveries (webhooks answered 2xx).
    async fn counts(&mut self) -> Result<Counts> {
        let stats = self
            .client
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the benchmark and prints (and optionally writes) its report.
pub fn run(args: &Config) -> Result<()> {
    let plan = Plan::new(args)?;
    farm::runtime()?.block_on(async move {
        let (target, mut local) = match &args.http {
            Some(url) => {
                let key = args
                    .api_key
                    .clone()
                    .context("--http needs a tenant API key: --api-key or REELFARM_API_KEY")?;
                (Target::parse(url, key)?, None)
            }
            None => {
                let (t, local) = start_local(args).await?;
                (t, Some(local))
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
            delivered_to_receiver = Some(l.receiver.accepted());
        }
        if let Some(l) = local {
            l.farm.stop().await?;
        }
        report(
            args,
            &plan,
            &target,
            &generated,
            accepted,
            &backlog,
            delivered_to_receiver,
        )
    })
}
