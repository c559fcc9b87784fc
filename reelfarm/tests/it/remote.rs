//! The integrator's commands against a farm of separate processes: `template list`,
//! `render list|get|cancel|watch|callback-secret`, `submit --wait --metadata --callback-url`,
//! and `bench --tokens`.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::{bin, demo_template, Backend, Farm, Proc};

/// A farm (SQLite) with one tenant and the demo template uploaded, served by `reelfarm serve`
/// with `serve_args`.
struct Tenant {
    _farm: Farm,
    _serve: Proc,
    url: String,
    key: String,
}

impl Tenant {
    async fn start(serve_args: &[&str]) -> Tenant {
        let farm = Farm::new(Backend::Sqlite).await;
        let key = farm.tenant("acme");
        let (serve, url) = farm.serve_with("127.0.0.1:0", serve_args);
        // Uploaded straight through the client: `template push` and its deep checks have tests
        // of their own.
        let mut client = farm::TenantClient::connect(&url, &key, None)
            .await
            .expect("connect");
        client
            .push_template(&demo_template(), &["live".to_owned()])
            .await
            .expect("upload the demo template");
        Tenant {
            _farm: farm,
            _serve: serve,
            url,
            key,
        }
    }

    /// Runs the binary as this tenant of this farm.
    fn run(&self, args: &[&str]) -> Output {
        bin()
            .env("REELFARM_COORDINATOR", &self.url)
            .env("REELFARM_API_KEY", &self.key)
            .args(args)
            .output()
            .expect("run reelfarm")
    }

    /// Runs the binary, expects success, and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the binary with `--json` added, expects success, and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let stdout = self.ok(&args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{stdout}"))
    }

    /// Submits the first demo recipient with `extra` arguments; returns the render id.
    fn submit(&self, tokens: &Path, extra: &[&str]) -> String {
        let mut args = vec![
            "submit",
            "--template",
            "order-delivered@live",
            "--lang",
            "en",
            "--tokens",
            tokens.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        let stdout = self.ok(&args);
        // `queued render ID (order-delivered@1, en), key cli-…`
        let line = stdout
            .lines()
            .find(|l| l.starts_with("queued render ") || l.starts_with("existing render "))
            .unwrap_or_else(|| panic!("no submission line in:\n{stdout}"));
        line.split_whitespace().nth(2).expect("id").to_owned()
    }
}

fn tokens_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tokens.json");
    std::fs::write(&path, r#"{"first_name": "Priya"}"#).expect("tokens");
    path
}

/// A farm without workers keeps its renders queued: they are listed, cancelled, and then
/// say so everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_renders_listed_cancelled_and_watched() {
    let t = Tenant::start(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens_file(dir.path());

    let table = t.ok(&["template", "list"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("order-delivered "))
        .unwrap_or_else(|| panic!("no order-delivered row in:\n{table}"));
    assert!(row.contains("live") && row.contains("en,hi"), "{row}");
    let templates = t.json(&["template", "list"]);
    assert_eq!(templates[0]["name"], "order-delivered");
    assert_eq!(templates[0]["version"], 1);
    assert_eq!(templates[0]["aliases"][0], "live");
    assert!(templates[0]["languages"]
        .as_array()
        .expect("languages")
        .contains(&Value::from("ta")));

    let first = t.submit(&tokens, &[]);
    let second = t.submit(&tokens, &["--lane", "bulk"]);
    let table = t.ok(&["render", "list"]);
    assert!(table.contains(&first) && table.contains(&second), "{table}");
    let listed = t.json(&["render", "list", "--state", "queued"]);
    let ids: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    assert_eq!(listed[0]["state"], "queued");
    assert_eq!(listed[0]["lane"], "bulk");
    let newest = t.json(&["render", "list", "--limit", "1"]);
    assert_eq!(newest.as_array().expect("array").len(), 1);
    assert_eq!(newest[0]["id"], second.as_str());
    assert_eq!(
        t.ok(&["render", "list", "--state", "succeeded"]).trim(),
        "no renders"
    );

    let cancelled = t.ok(&["render", "cancel", &first]);
    assert!(
        cancelled.contains(&format!("render {first}: cancelled")),
        "{cancelled}"
    );
    let shown = t.ok(&["render", "get", &first]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("state:") && l.ends_with("cancelled")),
        "{shown}"
    );
    assert!(shown.contains("first_name=Priya"), "tokens shown: {shown}");
    let got = t.json(&["render", "get", &first]);
    assert_eq!(got["state"], "cancelled");
    assert_eq!(got["id"], first.as_str());
    assert_eq!(got["template"], "order-delivered");
    assert_eq!(got["preset"], "720p");
    assert!(got["finished"].is_string(), "{got}");
    // Cancelling again changes nothing and says so.
    let again = t.json(&["render", "cancel", &first]);
    assert_eq!(again["state"], "cancelled");
    assert_eq!(
        t.json(&["render", "list", "--state", "cancelled"])[0]["id"],
        first.as_str()
    );

    let watched = t.run(&["render", "watch", &first]);
    assert!(
        !watched.status.success(),
        "watching a cancelled render fails"
    );
    assert_eq!(String::from_utf8_lossy(&watched.stdout).trim(), "cancelled");
    let stderr = String::from_utf8_lossy(&watched.stderr);
    assert!(
        stderr.contains(&format!("render {first} was cancelled")),
        "{stderr}"
    );

    // Listing follows page tokens: pages of two give the renders one page gives.
    let mut client = farm::TenantClient::connect(&t.url, &t.key, None)
        .await
        .expect("connect");
    for i in 0..3 {
        client
            .renders
            .submit_render(proto::v1::SubmitRenderRequest {
                idempotency_key: format!("page-{i}"),
                spec: Some(crate::support::spec("Asha")),
            })
            .await
            .expect("submit");
    }
    let ids = |renders: Vec<proto::v1::Render>| -> Vec<String> {
        renders.into_iter().map(|r| r.id).collect()
    };
    let whole = ids(client.list_renders(None, 100).await.expect("one page"));
    assert_eq!(whole.len(), 5);
    assert_eq!(whole[3..], [second.clone(), first.clone()], "newest first");
    let paged = ids(client
        .list_renders_in_pages(None, 100, 2)
        .await
        .expect("pages of 2"));
    assert_eq!(paged, whole, "three pages, to the end");
    let head = ids(client
        .list_renders_in_pages(None, 3, 2)
        .await
        .expect("a limit across pages"));
    assert_eq!(head, whole[..3]);
    let queued = ids(client
        .list_renders_in_pages(Some(proto::v1::RenderState::Queued), 100, 1)
        .await
        .expect("queued, one by one"));
    assert_eq!(queued.len(), 4, "all but the cancelled one");
    assert!(!queued.contains(&first));
    let listed = t.json(&["render", "list", "--limit", "4"]);
    assert_eq!(listed.as_array().expect("array").len(), 4);

    let missing = t.run(&["render", "get", "00000000-0000-0000-0000-000000000000"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("NotFound") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// With (no-op) workers, `submit --wait` shows progress on stderr and `render watch` exits 0
/// once the render succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_waits_with_progress_and_watch_succeeds() {
    let t = Tenant::start(&["--workers", "1", "--noop-workers"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens_file(dir.path());
    let out = t.run(&[
        "submit",
        "--template",
        "order-delivered",
        "--lang",
        "hi",
        "--tokens",
        tokens.to_str().expect("utf-8 path"),
        "--wait",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.lines().any(|l| l.contains("succeeded in")),
        "{stdout}"
    );
    // Not a terminal: one line per change, the last one the terminal state.
    assert!(!stderr.contains('\r'), "{stderr:?}");
    assert!(stderr.lines().any(|l| l == "succeeded"), "{stderr}");
    let id = stdout
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("render id")
        .to_owned();

    let watched = t.run(&["render", "watch", &id]);
    assert!(watched.status.success(), "{watched:?}");
    assert_eq!(
        String::from_utf8_lossy(&watched.stdout).lines().last(),
        Some("succeeded")
    );
    let done = t.json(&["render", "watch", &id]);
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["lang"], "hi");
    assert!(done["output"]["video_sha256"].is_string(), "{done}");
    let cancel = t.ok(&["render", "cancel", &id]);
    assert!(
        cancel.contains("not cancelled: it had already succeeded"),
        "{cancel}"
    );
}

/// `submit --metadata --callback-url` are stored with the render and shown by `render get`;
/// `render callback-secret` prints the tenant's callback secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_callback_url_come_back() {
    let t = Tenant::start(&["--allow-private-webhooks"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens_file(dir.path());
    let id = t.submit(
        &tokens,
        &[
            "--metadata",
            "order=4711",
            "--metadata",
            "note=a=b",
            "--callback-url",
            "http://127.0.0.1:9/hooks/reelfarm",
        ],
    );
    let got = t.json(&["render", "get", &id]);
    assert_eq!(got["metadata"]["order"], "4711", "{got}");
    assert_eq!(got["metadata"]["note"], "a=b", "{got}");
    assert_eq!(got["callback_url"], "http://127.0.0.1:9/hooks/reelfarm");
    let shown = t.ok(&["render", "get", &id]);
    assert!(shown.contains("note=a=b, order=4711"), "{shown}");
    assert!(
        shown.contains("callback:  http://127.0.0.1:9/hooks/reelfarm"),
        "{shown}"
    );

    let secret = t.ok(&["render", "callback-secret"]);
    let secret = secret.trim();
    let hex = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{secret}"
    );
    assert_eq!(
        t.json(&["render", "callback-secret"])["secret"],
        secret,
        "stable"
    );

    let bad = t.run(&[
        "submit",
        "--template",
        "order-delivered",
        "--metadata",
        "order",
    ]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--metadata") && stderr.contains("KEY=VALUE"),
        "{stderr}"
    );
}

/// `bench --tokens` renders any recipients file in turn, and names the entry of a bad one.
#[test]
fn bench_takes_a_recipients_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people = dir.path().join("people.json");
    let bench = |extra: &[&str]| {
        bin()
            .args([
                "bench",
                "--jobs",
                "6",
                "--concurrency",
                "2",
                "--workers",
                "1",
            ])
            .arg("--tokens")
            .arg(&people)
            .args(extra)
            .output()
            .expect("run bench")
    };

    std::fs::write(
        &people,
        r#"[{"lang": "hi", "tokens": {"first_name": "Priya"}},
            {"lang": "ta", "tokens": {"first_name": "Priya"}},
            {"lang": "en", "tokens": {"first_name": ["Rahul"]}}]"#,
    )
    .expect("write");
    let out = bench(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&people.display().to_string())
            && stderr.contains("entry 2")
            && stderr.contains("first_name")
            && stderr.contains("an array"),
        "{stderr}"
    );

    std::fs::write(&people, r#"{"first_name": "Priya"}"#).expect("write");
    let stderr = String::from_utf8_lossy(&bench(&[]).stderr).into_owned();
    assert!(stderr.contains("expected a JSON array"), "{stderr}");

    let out = bench(&["--recipients", "3"]);
    assert!(!out.status.success(), "--tokens and --recipients conflict");

    // The demo's own recipients.json, against a local farm of no-op workers.
    std::fs::copy(demo_template().join("recipients.json"), &people).expect("copy");
    let out = bench(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("recipients:"))
        .unwrap_or_else(|| panic!("no recipients line in:\n{stdout}"));
    assert!(line.contains("from") && line.contains("in turn"), "{line}");
    assert!(stdout.contains("renders:     6 (6 succeeded)"), "{stdout}");

    // A template folder is pushed first, and its own sample recipients fill the renders.
    let out = bin()
        .args([
            "bench",
            "--jobs",
            "2",
            "--concurrency",
            "1",
            "--workers",
            "1",
            "--lang",
            "ta",
        ])
        .arg("--template")
        .arg(demo_template())
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("pushed") && stderr.contains("as order-delivered@1"),
        "{stderr}"
    );
    assert!(stdout.contains("renders:     2 (2 succeeded)"), "{stdout}");
    assert!(stdout.contains("order-delivered@1 (ta, 720p)"), "{stdout}");
}
