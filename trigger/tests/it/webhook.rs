//! Webhook signing, destination checks and sending, against a real axum receiver on loopback.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use trigger::webhook::{
    backoff_delay, check_destination, next_attempt_delay, sign, verify, verify_request, Attempt,
    DeliveryEvent, DeliveryPayload, DestinationError, Outgoing, Sender, SenderConfig, VerifyError,
    DEFAULT_TOLERANCE_S, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_ATTEMPTS,
    MAX_RESPONSE_BYTES,
};

const SECRET: &[u8] = b"whsec_test_3f9a";
const BODY: &[u8] = br#"{"delivery_id":"dlv-1","event":"render.succeeded"}"#;
const T: i64 = 1_740_800_000;

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit i64")
}

// ---------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------

#[test]
fn sign_verify_round_trip() {
    let header = sign(SECRET, T, BODY);
    assert!(header.starts_with("v1="), "{header}");
    assert_eq!(header.len(), 3 + 64);
    assert_eq!(verify(SECRET, &header, T, BODY, T, 300), Ok(()));
    // Within the tolerance on both sides.
    assert_eq!(verify(SECRET, &header, T, BODY, T + 300, 300), Ok(()));
    assert_eq!(verify(SECRET, &header, T, BODY, T - 300, 300), Ok(()));
    // Deterministic, and it is exactly HMAC-SHA256 over "<t>.<body>" (the documented recipe).
    assert_eq!(header, sign(SECRET, T, BODY));
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("hmac key");
    mac.update(format!("{T}.").as_bytes());
    mac.update(BODY);
    assert_eq!(
        header,
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    );
}

#[test]
fn tampered_body_and_wrong_secret_mismatch() {
    let header = sign(SECRET, T, BODY);
    let mut tampered = BODY.to_vec();
    tampered[3] ^= 1;
    assert_eq!(
        verify(SECRET, &header, T, &tampered, T, 300),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify(b"another secret", &header, T, BODY, T, 300),
        Err(VerifyError::Mismatch)
    );
    // The timestamp is signed too: replaying the signature with a fresh timestamp fails.
    assert_eq!(
        verify(SECRET, &header, T + 1, BODY, T + 1, 300),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn old_and_future_timestamps_rejected() {
    let header = sign(SECRET, T, BODY);
    let old = verify(SECRET, &header, T, BODY, T + 301, 300);
    assert_eq!(
        old,
        Err(VerifyError::TooOld {
            timestamp: T,
            now: T + 301,
            tolerance_s: 300
        })
    );
    let message = old.expect_err("too old").to_string();
    assert!(message.contains("too old"), "{message}");
    let future = verify(SECRET, &header, T, BODY, T - 301, 300);
    assert!(
        matches!(future, Err(VerifyError::InFuture { .. })),
        "{future:?}"
    );
    assert!(future
        .expect_err("future")
        .to_string()
        .contains("in the future"));
    // Extreme values do not overflow.
    assert!(matches!(
        verify(SECRET, &header, i64::MIN, BODY, i64::MAX, 300),
        Err(VerifyError::TooOld { .. })
    ));
    assert!(matches!(
        verify(SECRET, &header, i64::MAX, BODY, i64::MIN, 300),
        Err(VerifyError::InFuture { .. })
    ));
}

#[test]
fn missing_and_malformed_headers() {
    assert_eq!(
        verify(SECRET, "", T, BODY, T, 300),
        Err(VerifyError::Missing)
    );
    assert_eq!(
        verify(SECRET, "   ", T, BODY, T, 300),
        Err(VerifyError::Missing)
    );
    for bad in [
        "abcdef",
        "v1=nothex",
        "v1=abcd",
        "v2=0123",
        "sha256=deadbeef",
        &format!("v1={}", "g".repeat(64)),
    ] {
        let got = verify(SECRET, bad, T, BODY, T, 300);
        assert!(
            matches!(got, Err(VerifyError::Malformed(_))),
            "{bad}: {got:?}"
        );
        assert!(got.expect_err(bad).to_string().starts_with("malformed"));
    }
}

#[test]
fn rotation_accepts_any_listed_signature() {
    let old_secret = b"old secret";
    let new_secret = b"new secret";
    let both = format!(
        "{} {}",
        sign(old_secret, T, BODY),
        sign(new_secret, T, BODY)
    );
    assert_eq!(verify(old_secret, &both, T, BODY, T, 300), Ok(()));
    assert_eq!(verify(new_secret, &both, T, BODY, T, 300), Ok(()));
    assert_eq!(
        verify(b"third", &both, T, BODY, T, 300),
        Err(VerifyError::Mismatch)
    );
    // Unknown versions are ignored as long as a v1 entry is present.
    let with_future = format!("v2=whatever {}", sign(new_secret, T, BODY));
    assert_eq!(verify(new_secret, &with_future, T, BODY, T, 300), Ok(()));
}

/// A receiver's header lookup that knows only the timestamp and signature headers.
fn lookup<'h>(ts: Option<&'h str>, sig: Option<&'h str>) -> impl Fn(&str) -> Option<&'h str> {
    move |name| match name {
        HEADER_TIMESTAMP => ts,
        HEADER_SIGNATURE => sig,
        _ => None,
    }
}

#[test]
fn verify_request_reads_the_headers_by_name() {
    let signature = sign(SECRET, T, BODY);
    let timestamp = T.to_string();
    let (ts, sig) = (timestamp.as_str(), signature.as_str());
    assert_eq!(
        verify_request(lookup(Some(ts), Some(sig)), BODY, SECRET, T, 300),
        Ok(())
    );
    assert_eq!(
        verify_request(lookup(Some(ts), Some(sig)), b"other", SECRET, T, 300),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify_request(lookup(Some(ts), None), BODY, SECRET, T, 300),
        Err(VerifyError::Missing)
    );
    assert_eq!(
        verify_request(lookup(None, Some(sig)), BODY, SECRET, T, 300),
        Err(VerifyError::Timestamp)
    );
    assert_eq!(
        verify_request(lookup(Some("soon"), Some(sig)), BODY, SECRET, T, 300),
        Err(VerifyError::Timestamp)
    );
    assert!(matches!(
        verify_request(lookup(Some(ts), Some(sig)), BODY, SECRET, T + 301, 300),
        Err(VerifyError::TooOld { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------------------

#[test]
fn backoff_schedule() {
    let s = Duration::from_secs;
    assert_eq!(next_attempt_delay(1, 1.0), s(5));
    assert_eq!(next_attempt_delay(2, 1.0), s(10));
    assert_eq!(next_attempt_delay(3, 1.0), s(20));
    assert_eq!(next_attempt_delay(10, 1.0), s(2560));
    assert_eq!(next_attempt_delay(11, 1.0), s(3600));
    assert_eq!(next_attempt_delay(MAX_ATTEMPTS, 1.0), s(3600));
    assert_eq!(next_attempt_delay(1000, 1.0), s(3600));
    assert_eq!(next_attempt_delay(0, 1.0), s(5));
    // Jitter scales and is clamped to [0.5, 1.0].
    assert_eq!(next_attempt_delay(2, 0.5), s(5));
    assert_eq!(next_attempt_delay(2, 0.75), Duration::from_millis(7500));
    assert_eq!(next_attempt_delay(2, 0.1), s(5));
    assert_eq!(next_attempt_delay(2, 7.0), s(10));
    assert_eq!(next_attempt_delay(12, 0.5), s(1800));
    assert_eq!(MAX_ATTEMPTS, 12);
}

// ---------------------------------------------------------------------------------------
// A receiver on loopback
// ---------------------------------------------------------------------------------------

/// One scripted answer of the receiver.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }
}

/// A request as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    headers: HeaderMap,
    body: Vec<u8>,
    verified: Result<(), VerifyError>,
}

#[derive(Default)]
struct ReceiverState {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    /// Starts a receiver that answers from `script` in order, then `200 OK`.
    async fn start(script: Vec<Reply>) -> Self {
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.into()),
            seen: Mutex::default(),
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve receiver");
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }
}

/// Records the request, verifies it as a brand would, answers from the script.
async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verified = verify_request(
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        &body,
        SECRET,
        unix_now(),
        DEFAULT_TOLERANCE_S,
    );
    state.seen.lock().expect("seen lock").push(Seen {
        headers: headers.clone(),
        body: body.to_vec(),
        verified: verified.clone(),
    });
    let reply = state
        .script
        .lock()
        .expect("script lock")
        .pop_front()
        .unwrap_or_else(|| Reply::status(if verified.is_ok() { 200 } else { 401 }));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

fn local_sender() -> Sender {
    Sender::with_config(SenderConfig {
        allow_private: true,
        ..SenderConfig::default()
    })
    .expect("sender")
}

fn payload() -> DeliveryPayload {
    DeliveryPayload {
        delivery_id: "dlv-42".into(),
        event: DeliveryEvent::RenderSucceeded,
        occurred_at: "2025-03-01T09:30:00Z".parse().expect("time"),
        tenant: "acme".into(),
        campaign: "thanks".into(),
        variant: "a".into(),
        customer_id: "c-1".into(),
        event_id: "evt-1".into(),
        render_id: "r-9".into(),
        state: "succeeded".into(),
        metadata: [("order_id".to_owned(), "4711".to_owned())].into(),
        video_url: Some("https://cdn.example.com/v.mp4?sig=x".into()),
        poster_url: Some("https://cdn.example.com/p.jpg?sig=x".into()),
        url_expires_at: Some("2025-03-08T09:30:00Z".parse().expect("time")),
        failure: None,
    }
}

fn outgoing(url: String) -> Outgoing {
    Outgoing {
        id: "dlv-42".into(),
        url,
        secret: SECRET.to_vec(),
        body: payload().to_body().expect("payload json"),
    }
}

// ---------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn delivered_with_verifiable_signature_and_headers() {
    let receiver = Receiver::start(Vec::new()).await;
    let d = outgoing(receiver.url());
    let attempt = local_sender().send(&d).await;
    assert_eq!(attempt, Attempt::Delivered { status: 200 });

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.verified, Ok(()));
    assert_eq!(req.body, d.body);
    let h = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(verify_request(h, &req.body, SECRET, unix_now(), 5), Ok(()));
    assert_eq!(h(HEADER_ID), Some("dlv-42"));
    assert_eq!(h("content-type"), Some("application/json"));
    assert_eq!(
        h("user-agent"),
        Some(concat!("reelfarm/", env!("CARGO_PKG_VERSION")))
    );
    // Exactly one signature, the one `sign` makes: nothing else rides along in the header.
    let ts: i64 = h(HEADER_TIMESTAMP)
        .expect("timestamp header")
        .parse()
        .expect("numeric timestamp");
    assert_eq!(
        h(HEADER_SIGNATURE),
        Some(sign(SECRET, ts, &d.body).as_str())
    );

    // The payload's JSON shape: snake_case keys, dotted event names, RFC 3339 times, nulls.
    let json: serde_json::Value = serde_json::from_slice(&req.body).expect("json body");
    assert_eq!(json["event"], "render.succeeded");
    assert_eq!(json["delivery_id"], "dlv-42");
    assert_eq!(json["customer_id"], "c-1");
    assert_eq!(json["occurred_at"], "2025-03-01T09:30:00Z");
    assert_eq!(json["url_expires_at"], "2025-03-08T09:30:00Z");
    assert!(json["failure"].is_null());
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "delivery_id",
        "event",
        "occurred_at",
        "tenant",
        "campaign",
        "variant",
        "customer_id",
        "event_id",
        "render_id",
        "state",
        "metadata",
        "video_url",
        "poster_url",
        "url_expires_at",
        "failure",
    ] {
        assert!(keys.contains(&key), "missing {key} in {keys:?}");
    }
    assert_eq!(keys.len(), 15);
    assert_eq!(json["metadata"]["order_id"], "4711");
    let back: DeliveryPayload = serde_json::from_slice(&req.body).expect("round trip");
    assert_eq!(back, payload());
    let failed = serde_json::to_value(DeliveryEvent::RenderFailed).expect("json");
    assert_eq!(failed, "render.failed");
}

#[tokio::test]
async fn wrong_secret_is_refused_by_the_receiver() {
    let receiver = Receiver::start(Vec::new()).await;
    let mut d = outgoing(receiver.url());
    d.secret = b"not the shared secret".to_vec();
    let attempt = local_sender().send(&d).await;
    assert!(
        matches!(
            attempt,
            Attempt::Permanent {
                status: Some(401),
                ..
            }
        ),
        "{attempt:?}"
    );
    assert_eq!(receiver.seen()[0].verified, Err(VerifyError::Mismatch));
}

#[tokio::test]
async fn retries_until_delivered_with_a_stable_id() {
    let receiver = Receiver::start(vec![Reply::status(500); 3]).await;
    let sender = local_sender();
    let d = outgoing(receiver.url());
    let base = Duration::from_millis(2);
    let max = Duration::from_millis(20);

    let mut delivered_on = None;
    for attempt in 1..=MAX_ATTEMPTS {
        match sender.send(&d).await {
            Attempt::Delivered { status } => {
                assert_eq!(status, 200);
                delivered_on = Some(attempt);
                break;
            }
            Attempt::Retry {
                status,
                error,
                retry_after,
            } => {
                assert_eq!(status, Some(500));
                assert!(error.contains("500"), "{error}");
                assert_eq!(retry_after, None);
                tokio::time::sleep(backoff_delay(base, max, attempt, 0.75)).await;
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    assert_eq!(delivered_on, Some(4));

    let seen = receiver.seen();
    assert_eq!(seen.len(), 4);
    for req in &seen {
        assert_eq!(
            req.headers.get("webhook-id").and_then(|v| v.to_str().ok()),
            Some("dlv-42")
        );
        assert_eq!(req.verified, Ok(()));
        assert_eq!(req.body, d.body);
    }
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let mut reply = Reply::status(429);
    reply.headers.push(("retry-after", "2"));
    let receiver = Receiver::start(vec![reply]).await;
    let attempt = local_sender().send(&outgoing(receiver.url())).await;
    match attempt {
        Attempt::Retry {
            status,
            retry_after,
            error,
        } => {
            assert_eq!(status, Some(429));
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
            assert!(error.contains("429 Too Many Requests"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn statuses_are_classified() {
    let mut unavailable = Reply::status(503);
    unavailable.headers.push(("retry-after", "30"));
    let mut redirect = Reply::status(302);
    redirect
        .headers
        .push(("location", "http://127.0.0.1:1/elsewhere"));
    let mut gone = Reply::status(410);
    gone.body = b"endpoint\ndeleted".to_vec();
    let script = vec![
        Reply::status(404),
        gone,
        Reply::status(400),
        redirect,
        Reply::status(408),
        Reply::status(425),
        unavailable,
        Reply::status(502),
        Reply::status(204),
    ];
    let receiver = Receiver::start(script).await;
    let sender = local_sender();
    let d = outgoing(receiver.url());

    let mut got = Vec::new();
    for _ in 0..9 {
        got.push(sender.send(&d).await);
    }
    let permanent = |a: &Attempt| match a {
        Attempt::Permanent { status, error } => (*status, error.clone()),
        other => panic!("expected Permanent, got {other:?}"),
    };
    let retry = |a: &Attempt| match a {
        Attempt::Retry {
            status,
            retry_after,
            ..
        } => (*status, *retry_after),
        other => panic!("expected Retry, got {other:?}"),
    };
    assert_eq!(permanent(&got[0]).0, Some(404));
    let (status, error) = permanent(&got[1]);
    assert_eq!(status, Some(410));
    assert_eq!(error, "HTTP 410 Gone: endpoint deleted");
    assert_eq!(permanent(&got[2]).0, Some(400));
    let (status, error) = permanent(&got[3]);
    assert_eq!(status, Some(302));
    assert!(error.contains("redirects are not followed"), "{error}");
    assert_eq!(retry(&got[4]), (Some(408), None));
    assert_eq!(retry(&got[5]), (Some(425), None));
    assert_eq!(retry(&got[6]), (Some(503), Some(Duration::from_secs(30))));
    assert_eq!(retry(&got[7]), (Some(502), None));
    assert_eq!(got[8], Attempt::Delivered { status: 204 });
    // The redirect was not followed: the receiver saw exactly the nine attempts.
    assert_eq!(receiver.seen().len(), 9);
}

#[tokio::test]
async fn large_error_bodies_are_capped() {
    let mut reply = Reply::status(500);
    reply.body = vec![b'x'; 4 * MAX_RESPONSE_BYTES];
    let receiver = Receiver::start(vec![reply]).await;
    let attempt = local_sender().send(&outgoing(receiver.url())).await;
    match attempt {
        Attempt::Retry { status, error, .. } => {
            assert_eq!(status, Some(500));
            assert!(error.len() < 300, "{} bytes", error.len());
            assert!(error.ends_with('…'), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slow_receiver_times_out_as_retry() {
    let mut slow = Reply::status(200);
    slow.delay = Duration::from_secs(5);
    let receiver = Receiver::start(vec![slow]).await;
    let sender = Sender::with_config(SenderConfig {
        connect_timeout: Duration::from_millis(200),
        timeout: Duration::from_millis(300),
        allow_private: true,
    })
    .expect("sender");
    let started = Instant::now();
    let attempt = sender.send(&outgoing(receiver.url())).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match attempt {
        Attempt::Retry { status, error, .. } => {
            assert_eq!(status, None);
            assert!(error.starts_with("timed out"), "{error}");
            assert!(!error.contains("127.0.0.1"), "URL leaked: {error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connection_refused_is_retry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let attempt = local_sender()
        .send(&outgoing(format!("http://{addr}/hook")))
        .await;
    match attempt {
        Attempt::Retry { status, error, .. } => {
            assert_eq!(status, None);
            assert!(error.starts_with("connection failed"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn public_only_sender_refuses_private_destinations() {
    let receiver = Receiver::start(Vec::new()).await;
    let sender = Sender::new().expect("sender");
    // An IP literal is checked before sending ...
    let attempt = sender.send(&outgoing(receiver.url())).await;
    match &attempt {
        Attempt::Permanent { status, error } => {
            assert_eq!(*status, None);
            assert!(error.contains("loopback"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // ... and a name is checked by the resolver when connecting.
    let by_name = format!("http://localhost:{}/hook", receiver.addr.port());
    let attempt = sender.send(&outgoing(by_name)).await;
    match &attempt {
        Attempt::Permanent { status, error } => {
            assert_eq!(*status, None);
            assert!(error.contains("loopback"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // Bad URLs are permanent too.
    let attempt = sender.send(&outgoing("ftp://example.com/x".into())).await;
    assert!(
        matches!(attempt, Attempt::Permanent { status: None, .. }),
        "{attempt:?}"
    );
    assert!(receiver.seen().is_empty());
}

#[test]
fn outgoing_debug_hides_secret_and_body() {
    let d = outgoing("https://hooks.example.com/x".into());
    let debug = format!("{d:?}");
    assert!(!debug.contains("whsec"), "{debug}");
    assert!(!debug.contains("render.succeeded"), "{debug}");
    assert!(debug.contains("dlv-42"), "{debug}");
}

// ---------------------------------------------------------------------------------------
// Destinations
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn check_destination_refuses_non_public_hosts() {
    let cases = [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://172.16.0.1/hook", "private"),
        ("http://192.168.1.10/hook", "private"),
        ("http://[fd12:3456::1]/hook", "unique-local"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::]/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://100.64.0.1/hook", "CGNAT"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
    ];
    for (url, reason) in cases {
        let refused = check_destination(url, false).await;
        match &refused {
            Err(e @ DestinationError::Forbidden { .. }) => {
                assert!(e.to_string().contains(reason), "{url}: {e}");
            }
            other => panic!("{url}: {other:?}"),
        }
        let allowed = check_destination(url, true).await;
        assert!(allowed.is_ok(), "{url} with allow_private: {allowed:?}");
    }
    // Public addresses pass without allow_private.
    for url in [
        "https://8.8.8.8/hook",
        "https://[2001:4860:4860::8888]:8443/x",
    ] {
        let ok = check_destination(url, false).await.expect(url);
        assert_eq!(ok.as_str(), url);
    }
}

#[tokio::test]
async fn check_destination_refuses_bad_urls() {
    for allow_private in [false, true] {
        assert!(matches!(
            check_destination("ftp://8.8.8.8/hook", allow_private).await,
            Err(DestinationError::Scheme(s)) if s == "ftp"
        ));
        assert_eq!(
            check_destination("http://user:pw@8.8.8.8/hook", allow_private).await,
            Err(DestinationError::Credentials)
        );
        assert_eq!(
            check_destination("https://user@8.8.8.8/hook", allow_private).await,
            Err(DestinationError::Credentials)
        );
        assert!(matches!(
            check_destination("not a url", allow_private).await,
            Err(DestinationError::InvalidUrl(_))
        ));
        assert!(matches!(
            check_destination("file:///etc/passwd", allow_private).await,
            Err(DestinationError::Scheme(_))
        ));
    }
}
