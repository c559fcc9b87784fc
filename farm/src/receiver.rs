//! A brand's webhook endpoint on loopback: it verifies every delivery's signature with the
//! campaign's secret, answers as told, and keeps what it received. The demo, the event
//! benchmark and the tests receive their webhooks here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use trigger::webhook;

/// Deliveries older or newer than this (seconds) are rejected as replays.
pub const TOLERANCE_S: i64 = webhook::DEFAULT_TOLERANCE_S;

/// How the receiver behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Answer 500 to the first this many deliveries (to exercise retries), then 200 to every
    /// verified one (401 to the others).
    pub fail_first: usize,
    /// Keep only counts, not the deliveries (for load).
    pub count_only: bool,
}

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `webhook-id` header: stable across retries of one delivery.
    pub id: String,
    /// Whether its signature verified with the secret set at the time.
    pub verified: bool,
    /// Why it did not verify.
    pub rejection: Option<String>,
    /// The body as JSON (null when it is not JSON).
    pub body: serde_json::Value,
    /// The status the receiver answered.
    pub answered: u16,
}

struct Shared {
    options: Options,
    secret: Mutex<String>,
    log: Mutex<Vec<Received>>,
    calls: AtomicU64,
    accepted: AtomicU64,
    changed: tokio::sync::Notify,
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    /// Where to point a campaign's destination.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts a receiver on a loopback port at `/hooks/reelfarm`.
    pub async fn start(options: Options) -> Result<Receiver> {
        let shared = Arc::new(Shared {
            options,
            secret: Mutex::new(String::new()),
            log: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        });
        let state = shared.clone();
        let app = axum::Router::new().route(
            "/hooks/reelfarm",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { state.receive(&headers, &body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the webhook receiver")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("webhook receiver: {e}");
            }
        });
        Ok(Receiver {
            url: format!("http://{addr}/hooks/reelfarm"),
            shared,
            task,
        })
    }

    /// Sets the secret deliveries are verified with (the campaign's webhook secret).
    pub fn set_secret(&self, secret: &str) {
        *self
            .shared
            .secret
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = secret.to_owned();
    }

    /// Deliveries answered 2xx so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Everything received so far, in order (empty with [`Options::count_only`]).
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `n` deliveries were received (whatever the answer), for at most `within`;
    /// what was received by then.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            if self.shared.calls.load(Ordering::Relaxed) >= n as u64 {
                return Ok(self.received());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!(
                    "{} of {n} webhooks within {} s",
                    self.shared.calls.load(Ordering::Relaxed),
                    within.as_secs()
                );
            }
        }
    }
}

impl Shared {
    fn receive(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let secret = self
            .secret
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let rejection = verify(headers, body, secret.as_bytes(), now).err();
        let n = self.calls.load(Ordering::Relaxed) as usize;
        let answered = if n < self.options.fail_first {
            500
        } else if rejection.is_none() {
            200
        } else {
            401
        };
        if !self.options.count_only {
            self.log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Received {
                    id: header(headers, webhook::HEADER_ID)
                        .unwrap_or_default()
                        .to_owned(),
                    verified: rejection.is_none(),
                    rejection,
                    body: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
                    answered,
                });
        }
        if answered == 200 {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
        StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a delivery's signature headers against `secret`.
fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
    now: i64,
) -> std::result::Result<(), String> {
    webhook::verify_request(|name| header(headers, name), body, secret, now, TOLERANCE_S)
        .map_err(|e| e.to_string())
}

/// Downloads a signed link (`http://` or `https://`): its content type and bytes.
pub async fn fetch(url: &str) -> Result<(String, Vec<u8>)> {
    let answer = reqwest::get(url)
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = answer.status();
    if !status.is_success() {
        bail!("the signed link answered {status}");
    }
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = answer
        .bytes()
        .await
        .with_context(|| format!("GET {url}: reading the body"))?;
    Ok((content_type, bytes.to_vec()))
}
