//! Chaos on loopback: a coordinator process and three worker processes with short leases,
//! renders submitted by clients that retry on the same keys, workers killed with SIGKILL every
//! second or so and the coordinator killed and restarted twice. Every render whose submission
//! was acknowledged ends succeeded and committed once, and the acknowledged ids are exactly the
//! store's, on both stores.
//!
//! A test binary of its own: cargo runs test binaries one after another, so this load does not
//! slow the other farm tests down past their time limits.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coordinator::store::DynStore;

// The farm tests' helpers; this binary uses some of them.
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

use support::{client, free_port, push, submit_retrying, Backend, Farm, Proc};

/// Renders submitted.
const RENDERS: usize = 300;
/// Clients submitting at once, each retrying a key until it is acknowledged.
const CLIENTS: usize = 8;
/// Worker processes alive at any time.
const WORKERS: usize = 3;
/// How long a no-op render holds its slot and lease.
const RENDER_MS: &str = "400";

/// A small deterministic generator: the test prints its seed, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn start_worker(farm: &Farm, url: &str, name: &str) -> Proc {
    // Errors only: a coordinator that is away makes every worker warn many times a second.
    farm.work_logging(
        url,
        name,
        &["--noop", "--noop-ms", RENDER_MS, "--slots", "4"],
        "error",
    )
}

async fn chaos(backend: Backend) {
    let started = Instant::now();
    let seed = std::env::var("REELFARM_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("chaos seed {seed} (REELFARM_CHAOS_SEED replays it)");
    let mut rng = Lcg(seed);

    let farm = Farm::new(backend).await;
    let key = farm.tenant("acme");
    let listen = format!("127.0.0.1:{}", free_port());
    let (mut serve, url) = farm.serve(&listen);
    push(&url, &key);
    let mut generation = 0;
    let mut workers: Vec<Proc> = (0..WORKERS)
        .map(|i| start_worker(&farm, &url, &format!("w{i}-0")))
        .collect();

    // Clients: each key is retried until acknowledged; every acknowledgement of a key must
    // name the same render.
    let acked: Arc<Mutex<BTreeMap<usize, String>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let (url, key, acked, done) = (url.clone(), key.clone(), acked.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = client(&url).await;
            for i in (t..RENDERS).step_by(CLIENTS) {
                let id = submit_retrying(&mut c, &key, &format!("chaos-{i}"), "Asha").await;
                let previous = acked.lock().expect("lock").insert(i, id.clone());
                assert!(
                    previous.is_none_or(|p| p == id),
                    "key chaos-{i} acknowledged as two renders"
                );
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    // Chaos until every render has finished: a worker killed every 0.3–1 s and restarted (the
    // same name, or a new one whose old leases must expire), and the coordinator killed and
    // restarted on the same address twice: once while clients submit, once while the farm
    // renders.
    let store = farm.store().await;
    let mut restarts = 0;
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let submitted = done.load(Ordering::SeqCst);
        let finished = finished(&store, &acked).await;
        let due = match restarts {
            0 => submitted >= RENDERS / 3,
            1 => submitted == RENDERS && finished >= RENDERS / 2,
            _ => false,
        };
        if due {
            serve.0.kill().expect("kill -9 coordinator");
            let _ = serve.0.wait();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (again, url2) = farm.serve(&listen);
            assert_eq!(url, url2);
            serve = again;
            restarts += 1;
        }
        if submitted == RENDERS && finished == RENDERS && restarts == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished after 240 s: {submitted} of {RENDERS} acknowledged, {finished} finished"
        );
        tokio::time::sleep(Duration::from_millis(300 + rng.below(700) as u64)).await;
        let victim = rng.below(WORKERS);
        workers[victim].0.kill().expect("kill -9 worker");
        let _ = workers[victim].0.wait();
        kills += 1;
        generation += usize::from(rng.below(2) == 0);
        workers[victim] = start_worker(&farm, &url, &format!("w{victim}-{generation}"));
    }
    for t in tasks {
        t.await.expect("client task");
    }

    // The acknowledged renders are exactly the store's; each succeeded and was committed once.
    let acked = acked.lock().expect("lock").clone();
    assert_eq!(acked.len(), RENDERS);
    let tenant = store
        .tenant_by_name("acme")
        .await
        .expect("tenant")
        .expect("exists");
    let jobs = store
        .list_jobs(&tenant.id, None, None, 10_000)
        .await
        .expect("list");
    let mut stored: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let mut acked_ids: Vec<&str> = acked.values().map(String::as_str).collect();
    stored.sort_unstable();
    acked_ids.sort_unstable();
    assert_eq!(
        stored, acked_ids,
        "acknowledged renders and stored renders differ"
    );
    for j in &jobs {
        assert_eq!(
            j.state,
            coordinator::model::JobState::Succeeded,
            "render {} ({}) is {:?}",
            j.id,
            j.idempotency_key,
            j.state
        );
        let output = j.output.as_ref().expect("output");
        assert_eq!(
            output.attempt_id, j.attempt_id,
            "the committed attempt's output"
        );
    }
    let events = store.outbox_after(None, 0, 100_000).await.expect("outbox");
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for e in &events {
        *per_job.entry(e.job_id.as_str()).or_default() += 1;
    }
    assert_eq!(per_job.len(), RENDERS);
    assert!(
        per_job.values().all(|&n| n == 1),
        "each render committed once"
    );
    let retried = jobs.iter().filter(|j| j.attempts > 1).count();
    eprintln!(
        "chaos ({backend:?}): {RENDERS} renders, {kills} workers killed, {restarts} coordinator restarts, \
         {retried} renders took more than one attempt, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(serve);
    drop(workers);
}

/// How many acknowledged renders have finished.
async fn finished(store: &DynStore, acked: &Mutex<BTreeMap<usize, String>>) -> usize {
    let ids: Vec<String> = acked.lock().expect("lock").values().cloned().collect();
    let mut n = 0;
    for id in ids {
        if let Ok(Some(j)) = store.job(None, &id).await {
            n += usize::from(j.state.is_terminal());
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_chaos_loses_nothing() {
    chaos(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_chaos_loses_nothing() {
    chaos(Backend::Postgres).await
}
