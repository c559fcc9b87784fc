//! Events to delivered videos: `reelfarm serve` with its trigger layer, a campaign, events over
//! HTTP, and a real webhook receiver on loopback that checks every signature.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use farm::receiver::{Options, Receiver};

use crate::support::{bin, Proc};

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("run reelfarm");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A raw HTTP/1.1 POST; returns the status and the body.
async fn post(addr: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    post_with(addr, path, key, body, "").await
}

/// Like [`post`], with extra header lines (each ending in CRLF).
async fn post_with(addr: &str, path: &str, key: &str, body: &str, extra: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

fn event(id: &str, customer: &str, consent: bool) -> Value {
    json!({
        "id": id,
        "type": "order_delivered",
        "customer": {"id": customer, "lang": "hi", "consent": consent, "attributes": {"first_name": "Asha"}},
        "occurred_at": chrono_now(),
        "data": {"product": "Masala Chai"}
    })
}

fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // RFC 3339 in UTC from Unix seconds (civil-from-days).
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_to_signed_webhook() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let key = run_ok(&["tenant", "create", "acme", "--data", &data])
        .lines()
        .last()
        .expect("key")
        .trim()
        .to_owned();
    let (_serve, url, http) = serve(&data);
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered");
    run_ok(&[
        "template",
        "push",
        template.to_str().expect("utf-8"),
        "--coordinator",
        &url,
        "--api-key",
        &key,
    ]);

    let hook = Receiver::start(Options {
        fail_first: 1,
        count_only: false,
    })
    .await
    .expect("receiver");
    let campaign = json!({
        "name": "thank-you",
        "event_type": "order_delivered",
        "conditions": [],
        "variants": [{"name": "a", "template": "order-delivered", "weight": 1}],
        "languages": {"supported": ["en", "hi"], "fallback": "en"},
        "tokens": {"first_name": "customer.attributes.first_name", "product": "data.product"},
        "frequency_cap": {"max": 1, "per_seconds": 86400},
        "holdout_percent": 0,
        "destination": {"url": hook.url, "secret_ref": "acme-hooks"}
    });
    let file = dir.path().join("campaign.json");
    std::fs::write(&file, campaign.to_string()).expect("write campaign");
    let out = run_ok(&[
        "campaign",
        "put",
        file.to_str().expect("utf-8"),
        "--coordinator",
        &url,
        "--api-key",
        &key,
    ]);
    assert!(
        out.contains("campaign thank-you version 1 (active)"),
        "{out}"
    );
    hook.set_secret(out.lines().last().expect("secret line").trim());

    // Ingestion: accepted, duplicate, and clear 4xx answers.
    let (status, body) = post(
        &http,
        "/v1/events",
        &key,
        &event("e1", "c1", true).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    let (status, body) = post(
        &http,
        "/v1/events",
        &key,
        &json!({"events": [event("e1", "c1", true), event("e2", "c2", false)]}).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        post(
            &http,
            "/v1/events",
            "rf_wrong",
            &event("e3", "c3", true).to_string()
        )
        .await
        .0,
        401
    );
    assert_eq!(post(&http, "/v1/events", &key, "{not json").await.0, 400);
    let (status, body) = post(
        &http,
        "/v1/events",
        &key,
        &json!({"id": "e4", "type": "order_delivered"}).to_string(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["results"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("customer"),
        "{body}"
    );
    let many: Vec<Value> = (0..501)
        .map(|i| event(&format!("b{i}"), "c", true))
        .collect();
    assert_eq!(
        post(&http, "/v1/events", &key, &Value::Array(many).to_string())
            .await
            .0,
        413
    );
    // Optional request signing with the API key: a good signature passes, a bad one is refused.
    let signed = event("e5", "c1", true).to_string();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let good = format!(
        "x-reelfarm-signature: t={t},{}\r\n",
        trigger::webhook::sign(key.as_bytes(), t, signed.as_bytes())
    );
    let bad = format!(
        "x-reelfarm-signature: t={t},{}\r\n",
        trigger::webhook::sign(b"not the key", t, signed.as_bytes())
    );
    assert_eq!(
        post_with(&http, "/v1/events", &key, &signed, &bad).await.0,
        401
    );
    let (status, body) = post_with(&http, "/v1/events", &key, &signed, &good).await;
    assert_eq!(status, 202, "{body}");

    // The consenting customer's video arrives, signed, after one failed attempt.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let done = hook.received().iter().any(|r| r.answered == 200);
        if done {
            break;
        }
        assert!(Instant::now() < until, "no delivery: {:?}", hook.received());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = hook.received();
    assert_eq!(got.len(), 2, "one 500, then one 200: {got:?}");
    assert!(got.iter().all(|r| r.verified), "every attempt is signed");
    assert_eq!(got[0].id, got[1].id, "retries keep the delivery id");
    let payload = &got[1].body;
    assert_eq!(payload["event"], "render.succeeded");
    assert_eq!(payload["customer_id"], "c1");
    assert_eq!(payload["campaign"], "thank-you");
    assert_eq!(payload["event_id"], "e1");
    assert!(payload["render_id"].as_str().is_some_and(|s| !s.is_empty()));

    // Stats: one event per customer, one suppressed for consent, one delivery.
    let until = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = run_ok(&[
            "campaign",
            "stats",
            "thank-you",
            "--coordinator",
            &url,
            "--api-key",
            &key,
        ]);
        if stats.contains("frequency_cap") || Instant::now() > until {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(stats.contains("suppressed:no_consent 1"), "{stats}");
    // c1's second order (e5) is within the campaign's cap of one video a day.
    assert!(stats.contains("suppressed:frequency_cap 1"), "{stats}");
    assert!(stats.contains("deliveries 1"), "{stats}");
    // An unknown campaign is a clear error.
    let unknown = bin()
        .args([
            "campaign",
            "stats",
            "no-such-campaign",
            "--coordinator",
            &url,
            "--api-key",
            &key,
        ])
        .output()
        .expect("run");
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("campaign `no-such-campaign`") && stderr.contains("NotFound"),
        "{stderr}"
    );
    assert_eq!(
        hook.received().len(),
        2,
        "no second delivery for the duplicate event"
    );
}

/// Starts `reelfarm serve` with one no-op worker and the trigger layer; returns the process, its
/// gRPC URL and its HTTP address.
fn serve(data: &str) -> (Proc, String, String) {
    let mut child = bin()
        .args([
            "serve",
            "--data",
            data,
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--workers",
            "1",
            "--noop-workers",
            "--worker-slots",
            "8",
            "--allow-private-webhooks",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let proc = Proc(child);
    let (mut url, mut http) = (String::new(), String::new());
    while http.is_empty() {
        let line = lines.next().expect("serve output").expect("line");
        if let Some(u) = line.strip_prefix("coordinator listening on ") {
            url = u.to_owned();
        }
        if let Some(h) = line.strip_prefix("HTTP (events, download links) on http://") {
            http = h.to_owned();
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (proc, url, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_dispatches_survive_a_restart() {
    const CUSTOMERS: usize = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let key = run_ok(&["tenant", "create", "acme", "--data", &data])
        .lines()
        .last()
        .expect("key")
        .trim()
        .to_owned();
    let (mut first, url, http) = serve(&data);
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered");
    run_ok(&[
        "template",
        "push",
        template.to_str().expect("utf-8"),
        "--coordinator",
        &url,
        "--api-key",
        &key,
    ]);
    let hook = Receiver::start(Options::default()).await.expect("receiver");
    let campaign = json!({
        "name": "later",
        "event_type": "order_delivered",
        "conditions": [],
        "variants": [{"name": "a", "template": "order-delivered", "weight": 1}],
        "languages": {"supported": ["en", "hi"], "fallback": "en"},
        "tokens": {"first_name": "customer.attributes.first_name"},
        "delay": {"after_seconds": 5},
        "holdout_percent": 0,
        "destination": {"url": hook.url, "secret_ref": "acme-hooks"}
    });
    let file = dir.path().join("campaign.json");
    std::fs::write(&file, campaign.to_string()).expect("write campaign");
    let out = run_ok(&[
        "campaign",
        "put",
        file.to_str().expect("utf-8"),
        "--coordinator",
        &url,
        "--api-key",
        &key,
    ]);
    hook.set_secret(out.lines().last().expect("secret line").trim());

    // Accepted events, then the farm dies at once (kill -9), before any is due.
    let events: Vec<Value> = (0..CUSTOMERS)
        .map(|i| event(&format!("e{i}"), &format!("c{i}"), true))
        .collect();
    let sent = std::time::SystemTime::now();
    let (status, body) = post(
        &http,
        "/v1/events",
        &key,
        &json!({ "events": events }).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"].as_u64(), Some(CUSTOMERS as u64));
    first.0.kill().expect("kill -9 serve");
    let _ = first.0.wait();
    drop(first);

    // Back up on the same data: every accepted event is evaluated, every delayed dispatch fires
    // when due, once.
    let (_second, _url2, _http2) = serve(&data);
    let until = Instant::now() + Duration::from_secs(60);
    while hook.received().len() < CUSTOMERS {
        assert!(
            Instant::now() < until,
            "deliveries: {:?}",
            hook.received().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = sent.elapsed().expect("clock").as_secs_f64();
    assert!(
        waited >= 4.0,
        "the 5 s delay was honoured ({waited:.1} s after the events' time)"
    );
    assert!(
        waited < 9.0,
        "due dispatches fired promptly after the restart ({waited:.1} s)"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = hook.received();
    assert_eq!(
        got.len(),
        CUSTOMERS,
        "one delivery per customer, none twice"
    );
    let mut customers: Vec<String> = got
        .iter()
        .map(|r| r.body["customer_id"].as_str().unwrap_or("").to_owned())
        .collect();
    customers.sort();
    customers.dedup();
    assert_eq!(customers.len(), CUSTOMERS);
    assert!(got
        .iter()
        .all(|r| r.verified && r.body["event"] == "render.succeeded"));
}

/// `tenant key add|list|revoke` on the store of a running farm: the new key works, is listed
/// by id, and once revoked is refused by the very next call while the first key still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused_by_a_running_farm_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let first = run_ok(&["tenant", "create", "acme", "--data", &data])
        .lines()
        .last()
        .expect("key")
        .trim()
        .to_owned();
    let added = run_ok(&["tenant", "key", "add", "acme", "--data", &data]);
    let id = added
        .split_whitespace()
        .nth(3)
        .expect("issued API key <id> …")
        .to_owned();
    let second = added.lines().last().expect("key").trim().to_owned();
    assert!(second.starts_with("rf_"), "{added}");
    let listed = run_ok(&["tenant", "key", "list", "acme", "--data", &data]);
    assert!(listed.contains(&id), "{listed}");
    assert!(listed.contains("2 key(s)"), "{listed}");

    let (_serve, url, _http) = serve(&data);
    let list_templates = |key: &str| {
        bin()
            .args(["template", "list", "--coordinator", &url, "--api-key", key])
            .output()
            .expect("run template list")
    };
    assert!(list_templates(&second).status.success());
    let revoked = run_ok(&["tenant", "key", "revoke", "acme", &id, "--data", &data]);
    assert!(revoked.contains(&id), "{revoked}");
    let refused = list_templates(&second);
    assert!(!refused.status.success(), "a revoked key must be refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown API key"), "{stderr}");
    assert!(list_templates(&first).status.success());

    let again = bin()
        .args(["tenant", "key", "revoke", "acme", &id, "--data", &data])
        .output()
        .expect("run revoke");
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("not found"), "{stderr}");
    let listed = run_ok(&["tenant", "key", "list", "acme", "--data", &data]);
    assert!(
        !listed.contains(&id) && listed.contains("1 key(s)"),
        "{listed}"
    );
}
