//! The farm as separate processes: `reelfarm serve`, `reelfarm work`, the CLI clients, and
//! failures — a worker killed mid-render, the coordinator killed under load — on both stores.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator::store::{DynStore, PostgresStore};
use proto::v1;
use proto::v1::render_service_client::RenderServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reelfarm"));
    c.env("NODEVICE_SELECT", "1")
        .env_remove("REELFARM_API_KEY")
        .env_remove("REELFARM_STORE");
    c
}

fn demo_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered")
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A data folder and, for PostgreSQL, a fresh schema: the `--store` arguments to pass.
struct Farm {
    dir: tempfile::TempDir,
    store_url: String,
}

impl Farm {
    async fn new(backend: Backend) -> Farm {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("farm.db").display()),
            Backend::Postgres => {
                let base = std::env::var("REELFARM_TEST_POSTGRES_URL").unwrap_or_else(|_| {
                    "postgres://reelfarm:reelfarm@127.0.0.1:5432/reelfarm_test".to_owned()
                });
                let schema = format!("farm_{}", coordinator::auth::random_hex(6));
                // Creates the schema and its tables.
                let store = PostgresStore::connect_with_schema(&base, &schema)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {base}: {e}; run scripts/postgres-up")
                    });
                store.close().await;
                format!("{base}?options=-c%20search_path%3D{schema}")
            }
        };
        Farm { dir, store_url }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn tenant(&self, name: &str) -> String {
        let out = bin()
            .args(["tenant", "create", name, "--data"])
            .arg(self.data())
            .args(["--store", &self.store_url])
            .output()
            .expect("run tenant create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.lines().last().expect("key line").trim().to_owned()
    }

    /// Starts `reelfarm serve` and returns it with its URL.
    fn serve(&self, listen: &str) -> (Proc, String) {
        let mut child = bin()
            .args([
                "serve",
                "--listen",
                listen,
                "--http-listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(self.data())
            .args([
                "--store",
                &self.store_url,
                "--lease-ttl-ms",
                "3000",
                "--heartbeat-ms",
                "500",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("serve prints its URL");
        // Keep reading so the server never writes to a closed pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        let url = line
            .trim()
            .strip_prefix("coordinator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line `{line}`"))
            .to_owned();
        (Proc(child), url)
    }

    fn work(&self, url: &str, name: &str, extra: &[&str]) -> Proc {
        let child = bin()
            .args([
                "work",
                "--coordinator",
                url,
                "--name",
                name,
                "--join-token-file",
            ])
            .arg(self.data().join("join-token"))
            .arg("--cache")
            .arg(self.data().join(name))
            .args(extra)
            .spawn()
            .expect("start worker");
        Proc(child)
    }

    async fn store(&self) -> DynStore {
        coordinator::store::open(&self.store_url)
            .await
            .expect("open store")
    }
}

fn authed<T>(key: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {key}")).expect("ascii"),
    );
    req
}

fn push(url: &str, key: &str) {
    let out = bin()
        .args(["template", "push"])
        .arg(demo_template())
        .args(["--coordinator", url, "--api-key", key])
        .output()
        .expect("push");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spec(name: &str) -> v1::RenderSpec {
    v1::RenderSpec {
        template: "order-delivered".into(),
        lang: "en".into(),
        tokens: [("first_name".to_owned(), name.to_owned())]
            .into_iter()
            .collect(),
        preset: v1::Preset::Preset720p as i32,
        lane: v1::Lane::Realtime as i32,
        deadline_s: 0,
    }
}

async fn client(url: &str) -> RenderServiceClient<Channel> {
    let channel = Channel::from_shared(url.to_owned())
        .expect("url")
        .connect_lazy();
    RenderServiceClient::new(channel)
}

async fn wait_for(
    c: &mut RenderServiceClient<Channel>,
    key: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&v1::Render) -> bool,
) -> v1::Render {
    let until = Instant::now() + within;
    loop {
        if let Ok(r) = c
            .get_render(authed(key, v1::GetRenderRequest { id: id.into() }))
            .await
        {
            let r = r.into_inner();
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < until, "timed out; render is {r:?}");
        }
        assert!(Instant::now() < until, "timed out waiting for render {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn worker_killed_mid_render(backend: Backend) {
    let farm = Farm::new(backend).await;
    let key = farm.tenant("acme");
    let (_serve, url) = farm.serve("127.0.0.1:0");
    let mut first = farm.work(&url, "worker-a", &[]);
    push(&url, &key);
    let mut c = client(&url).await;
    let id = c
        .submit_render(authed(
            &key,
            v1::SubmitRenderRequest {
                idempotency_key: "k1".into(),
                spec: Some(spec("Priya")),
            },
        ))
        .await
        .expect("submit")
        .into_inner()
        .render
        .expect("render")
        .id;
    // Kill the worker once it is visibly rendering.
    wait_for(&mut c, &key, &id, Duration::from_secs(120), |r| {
        r.state == v1::RenderState::Running as i32 && r.stage == "render" && r.progress > 0.05
    })
    .await;
    first.0.kill().expect("kill -9 worker a");
    let _ = first.0.wait();
    let _second = farm.work(&url, "worker-b", &[]);
    let done = wait_for(&mut c, &key, &id, Duration::from_secs(180), |r| {
        matches!(
            v1::RenderState::try_from(r.state),
            Ok(v1::RenderState::Succeeded | v1::RenderState::Failed | v1::RenderState::Cancelled)
        )
    })
    .await;
    assert_eq!(done.state, v1::RenderState::Succeeded as i32, "{done:?}");
    assert_eq!(done.attempts, 2, "the second worker took over");
    let out = done.output.expect("output");
    assert!(out.video_bytes > 10_000 && out.poster_bytes > 1_000);
    // The video is the committed one, whole.
    let mut dl = c
        .download_render(authed(
            &key,
            v1::DownloadRenderRequest {
                id: id.clone(),
                artifact: v1::Artifact::Video as i32,
            },
        ))
        .await
        .expect("download")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = dl.message().await.expect("chunk") {
        bytes.extend_from_slice(&chunk.data);
    }
    assert_eq!(bytes.len() as u64, out.video_bytes);
    assert_eq!(&bytes[4..8], b"ftyp");
    let store = farm.store().await;
    let job = store.job(None, &id).await.expect("job").expect("exists");
    assert_eq!(
        job.infra_failures, 1,
        "the lost lease counts as an infrastructure failure"
    );
    assert_eq!(job.app_failures, 0);
    assert_eq!(job.output.expect("output").attempt_id, job.attempt_id);
    let events = store.outbox_after(None, 0, 1000).await.expect("outbox");
    assert_eq!(
        events.iter().filter(|e| e.job_id == id).count(),
        1,
        "committed once"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn coordinator_restart_under_load(backend: Backend) {
    const JOBS: usize = 400;
    let farm = Farm::new(backend).await;
    let key = farm.tenant("acme");
    let listen = format!("127.0.0.1:{}", free_port());
    let (mut serve, url) = farm.serve(&listen);
    let _worker = farm.work(&url, "noop", &["--noop", "--slots", "16"]);
    push(&url, &key);

    let submitted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let url = url.clone();
        let key = key.clone();
        let submitted = submitted.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = client(&url).await;
            let mut ids = Vec::new();
            for i in (t..JOBS).step_by(8) {
                let req = v1::SubmitRenderRequest {
                    idempotency_key: format!("load-{i}"),
                    spec: Some(spec("Asha")),
                };
                // Retry the same key until the coordinator answers: safe by idempotency.
                let id = loop {
                    match c.submit_render(authed(&key, req.clone())).await {
                        Ok(r) => break r.into_inner().render.expect("render").id,
                        Err(s) => {
                            assert!(
                                matches!(
                                    s.code(),
                                    tonic::Code::Unavailable
                                        | tonic::Code::Unknown
                                        | tonic::Code::Cancelled
                                        | tonic::Code::Internal
                                ),
                                "unexpected {s:?}"
                            );
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                };
                submitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ids.push((i, id));
            }
            ids
        }));
    }
    // Kill the coordinator mid-stream, then bring it back on the same address and data.
    while submitted.load(std::sync::atomic::Ordering::SeqCst) < JOBS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.0.kill().expect("kill -9 coordinator");
    let _ = serve.0.wait();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_serve2, url2) = farm.serve(&listen);
    assert_eq!(url, url2);

    let mut ids = std::collections::BTreeMap::new();
    for t in tasks {
        for (i, id) in t.await.expect("client task") {
            ids.insert(i, id);
        }
    }
    assert_eq!(ids.len(), JOBS);
    let mut c = client(&url).await;
    for id in ids.values() {
        wait_for(&mut c, &key, id, Duration::from_secs(60), |r| {
            r.state == v1::RenderState::Succeeded as i32
        })
        .await;
    }
    // Nothing lost, nothing duplicated: one render per key, each committed once.
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_renders(authed(
                &key,
                v1::ListRendersRequest {
                    page_size: 1000,
                    page_token: token.clone(),
                    state: 0,
                },
            ))
            .await
            .expect("list")
            .into_inner();
        listed.extend(page.renders);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed.len(), JOBS, "one render per idempotency key");
    assert!(listed
        .iter()
        .all(|r| r.state == v1::RenderState::Succeeded as i32));
    let store = farm.store().await;
    let events = store.outbox_after(None, 0, 10_000).await.expect("outbox");
    let mut per_job = std::collections::HashMap::new();
    for e in &events {
        *per_job.entry(e.job_id.clone()).or_insert(0) += 1;
    }
    assert_eq!(per_job.len(), JOBS);
    assert!(
        per_job.values().all(|&n| n == 1),
        "each render committed once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_killed_mid_render() {
    worker_killed_mid_render(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_worker_killed_mid_render() {
    worker_killed_mid_render(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_coordinator_restart_under_load() {
    coordinator_restart_under_load(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_coordinator_restart_under_load() {
    coordinator_restart_under_load(Backend::Postgres).await
}
