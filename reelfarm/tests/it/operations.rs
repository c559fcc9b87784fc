//! What operators rely on: fail-fast starts with one clear line, JSON logs with the startup
//! line, the worker's probes, and its drain deadline and second signal.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use proto::v1;

use crate::support::*;

/// Waits for `p` to exit, at most `within`; its exit status, or `None` if it still runs.
fn exit_within(p: &mut Proc, within: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = p.0.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(p: &Proc, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &p.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{name}");
}

/// Runs `serve` with `args` and `env`, expecting it to give up at start: a non-zero exit
/// within 5 s (it must not retry for minutes), with one `error:` line that names `what` and
/// nothing else on stderr but log lines.
fn serve_refuses_to_start(args: &[&str], env: &[(&str, &str)], what: &str) -> String {
    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = bin();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ])
    .args(["--join-token", "rfj_test", "--data"])
    .arg(data.path())
    .args(args)
    .envs(env.iter().copied())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut p = Proc(cmd.spawn().expect("start serve"));
    let status = exit_within(&mut p, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("serve with {what} unreachable still runs after 5 s"));
    assert!(!status.success(), "serve started without {what}: {status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut p.0.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    // Log lines are JSON objects (stderr is not a terminal); everything else is the error.
    let plain: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim_start().starts_with('{'))
        .collect();
    assert_eq!(plain.len(), 1, "expected one error line:\n{stderr}");
    let line = plain[0];
    assert!(
        line.starts_with("error: ") && line.contains(what),
        "the error line should name the {what}: {line}"
    );
    line.to_owned()
}

#[test]
fn serve_gives_up_at_once_with_one_line_when_its_stores_are_unreachable() {
    // Nothing listens on port 1.
    let line = serve_refuses_to_start(
        &["--store", "postgres://reelfarm:secret@127.0.0.1:1/reelfarm"],
        &[],
        "job store",
    );
    assert!(!line.contains("secret"), "the password leaked: {line}");
    serve_refuses_to_start(
        &["--blobs", "s3://renders/farm"],
        &[
            ("AWS_ENDPOINT", "http://127.0.0.1:1"),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "reelfarm"),
            ("AWS_SECRET_ACCESS_KEY", "reelfarm-secret"),
            ("AWS_REGION", "us-east-1"),
        ],
        "blob store",
    );
}

/// Reads JSON log lines from `reader` until one whose message is `message`.
fn log_line(reader: &mut impl BufRead, message: &str) -> serde_json::Value {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "stderr ended before the `{message}` line");
        assert!(
            !line.contains('\u{1b}'),
            "colour codes in a log that is not a terminal: {line:?}"
        );
        // Drivers write their own lines (Mesa warns that lavapipe is not conformant).
        if !line.starts_with('{') {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if value["message"] == message {
            return value;
        }
    }
}

async fn get(url: &str) -> (u16, String) {
    let answer = reqwest::get(url).await.expect("GET");
    let status = answer.status().as_u16();
    (status, answer.text().await.expect("body"))
}

/// Polls `url` until it answers `status`.
async fn until_status(url: &str, status: u16) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(answer) = reqwest::get(url).await {
            if answer.status().as_u16() == status {
                return answer.text().await.expect("body");
            }
        }
        assert!(Instant::now() < until, "{url} never answered {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real worker (GPU opened on lavapipe here) logs JSON when stderr is not a terminal, with
/// one startup line naming its adapter and saying it is a software rasterizer; its probes
/// answer; and it says when it loses the coordinator and when it has it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_logs_json_with_its_adapter_and_the_lost_coordinator() {
    let farm = Farm::new(Backend::Sqlite).await;
    let _key = farm.tenant("acme");
    let port = free_port();
    let (serve, url) = farm.serve(&format!("127.0.0.1:{port}"));
    let metrics_port = free_port();
    let mut work = Proc(
        bin()
            .args(["work", "--coordinator", &url, "--name", "json-worker"])
            .arg("--join-token-file")
            .arg(farm.data().join("join-token"))
            .arg("--cache")
            .arg(farm.data().join("json-worker"))
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .env_remove("REELFARM_LOG")
            .env_remove("REELFARM_LOG_FORMAT")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start worker"),
    );
    let mut stderr = BufReader::new(work.0.stderr.take().expect("stderr"));
    let start = log_line(&mut stderr, "worker starting");
    assert_eq!(start["level"], "INFO", "{start}");
    let adapter = start["adapter"].as_str().expect("adapter");
    assert!(!adapter.is_empty(), "{start}");
    assert!(
        adapter.contains("llvmpipe") || start["software_rendering"] == false,
        "{start}"
    );
    if adapter.contains("llvmpipe") {
        assert_eq!(start["software_rendering"], true, "{start}");
    }
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"), "{start}");
    assert_eq!(start["slots"], 1, "{start}");
    assert_eq!(start["name"], "json-worker", "{start}");
    log_line(&mut stderr, "registered");

    let probes = format!("http://127.0.0.1:{metrics_port}");
    assert_eq!(get(&format!("{probes}/healthz")).await.0, 200);
    until_status(&format!("{probes}/readyz"), 200).await;

    // The coordinator goes away: one warning, /readyz turns 503; back: one info line.
    drop(serve);
    let lost = log_line(
        &mut stderr,
        "cannot reach the coordinator; retrying until it answers",
    );
    assert_eq!(lost["level"], "WARN", "{lost}");
    let why = until_status(&format!("{probes}/readyz"), 503).await;
    assert!(why.contains("coordinator unreachable"), "{why}");
    let (_serve, _) = farm.serve(&format!("127.0.0.1:{port}"));
    log_line(&mut stderr, "reached the coordinator again");
    until_status(&format!("{probes}/readyz"), 200).await;
    // Keep draining stderr so the worker never blocks on a full pipe.
    std::thread::spawn(move || for _ in stderr.lines() {});
    signal(&work, "TERM");
    let status = exit_within(&mut work, Duration::from_secs(60)).expect("worker exits");
    assert!(status.success(), "{status}");
}

/// A worker told to stop lets its render go on until the drain deadline, then gives it back
/// (the render is queued again, not failed) and exits 0; with a long deadline, a second
/// signal does the same at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_and_second_signal_give_renders_back() {
    let farm = Farm::new(Backend::Sqlite).await;
    let key = farm.tenant("acme");
    let (_serve, url) = farm.serve("127.0.0.1:0");
    push(&url, &key);
    let mut c = client(&url).await;

    for (case, drain_timeout) in [("deadline", "1"), ("second-signal", "600")] {
        let metrics_port = free_port();
        // Each noop render holds its slot for ten minutes.
        let mut work = farm.work(
            &url,
            &format!("drain-{case}"),
            &[
                "--noop",
                "--noop-ms",
                "600000",
                "--drain-timeout",
                drain_timeout,
                "--metrics-listen",
                &format!("127.0.0.1:{metrics_port}"),
            ],
        );
        let id = submit_retrying(&mut c, &key, case, "Priya").await;
        wait_for(&mut c, &key, &id, Duration::from_secs(60), |r| {
            r.state == v1::RenderState::Running as i32
        })
        .await;
        let probes = format!("http://127.0.0.1:{metrics_port}");
        until_status(&format!("{probes}/readyz"), 200).await;

        signal(&work, "TERM");
        if case == "second-signal" {
            // Draining: not ready, still running its render.
            let why = until_status(&format!("{probes}/readyz"), 503).await;
            assert!(why.contains("draining"), "{why}");
            assert!(
                exit_within(&mut work, Duration::from_secs(1)).is_none(),
                "the worker left before its render ended or a second signal came"
            );
            signal(&work, "TERM");
        }
        let status = exit_within(&mut work, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{case}: the worker did not exit"));
        assert!(status.success(), "{case}: {status}");
        let r = wait_for(&mut c, &key, &id, Duration::from_secs(30), |r| {
            r.state != v1::RenderState::Running as i32
        })
        .await;
        assert_eq!(
            r.state,
            v1::RenderState::Queued as i32,
            "{case}: the render should be queued again: {r:?}"
        );
        // Cancel it so the next case's worker takes its own render.
        c.cancel_render(authed(&key, v1::CancelRenderRequest { id: id.clone() }))
            .await
            .expect("cancel");
    }
}
