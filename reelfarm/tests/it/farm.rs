//! The farm as separate processes: `reelfarm serve`, `reelfarm work`, the CLI clients, and
//! failures — a worker killed mid-render, the coordinator killed under load — on both stores.

use std::sync::Arc;
use std::time::Duration;

use proto::v1;

use crate::support::{
    authed, client, free_port, push, submit_retrying, wait_for, Backend, Farm, Proc,
};

async fn worker_killed_mid_render(backend: Backend) {
    let farm = Farm::new(backend).await;
    let key = farm.tenant("acme");
    let (_serve, url) = farm.serve("127.0.0.1:0");
    let mut first = farm.work(&url, "worker-a", &[]);
    push(&url, &key);
    let mut c = client(&url).await;
    let id = submit_retrying(&mut c, &key, "k1", "Priya").await;
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
                let id = submit_retrying(&mut c, &key, &format!("load-{i}"), "Asha").await;
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

/// Sends SIGTERM to `p` and returns its exit status (within 60 s).
fn terminate(p: &mut Proc) -> std::process::ExitStatus {
    let pid = p.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM {pid}");
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = p.0.try_wait().expect("wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < until,
            "still running 60 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Submits one render and waits until it has succeeded.
async fn render_one(url: &str, key: &str, idempotency_key: &str) {
    let mut c = client(url).await;
    let id = submit_retrying(&mut c, key, idempotency_key, "Priya").await;
    let done = wait_for(&mut c, key, &id, Duration::from_secs(240), |r| {
        r.state != v1::RenderState::Queued as i32 && r.state != v1::RenderState::Running as i32
    })
    .await;
    assert_eq!(done.state, v1::RenderState::Succeeded as i32, "{done:?}");
}

/// A worker that has rendered (its GPU opened and used on the runtime's threads) stops with
/// exit status 0 on SIGTERM, as a separate process and inside `serve --workers 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_exit_zero_on_sigterm_after_rendering() {
    let farm = Farm::new(Backend::Sqlite).await;
    let key = farm.tenant("acme");

    let (mut serve, url) = farm.serve("127.0.0.1:0");
    push(&url, &key);
    let mut work = farm.work(&url, "worker-a", &[]);
    render_one(&url, &key, "work").await;
    let status = terminate(&mut work);
    assert_eq!(status.code(), Some(0), "reelfarm work: {status}");
    let status = terminate(&mut serve);
    assert_eq!(status.code(), Some(0), "reelfarm serve: {status}");

    let (mut serve, url) = farm.serve_with("127.0.0.1:0", &["--workers", "1"]);
    render_one(&url, &key, "serve").await;
    let status = terminate(&mut serve);
    assert_eq!(
        status.code(),
        Some(0),
        "reelfarm serve --workers 1: {status}"
    );
}
