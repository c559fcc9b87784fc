//! Signed webhook delivery: finished (or failed) renders are POSTed to a brand's endpoint.
//!
//! This module is the network edge of the crate: it signs payloads, checks destinations,
//! sends one attempt, and computes the retry schedule. Queueing, persistence of attempts
//! and the dead-letter list are the caller's job.
//!
//! # The request
//!
//! Every delivery is an HTTP `POST` of a JSON [`DeliveryPayload`] with these headers:
//!
//! | header              | value                                                        |
//! |---------------------|--------------------------------------------------------------|
//! | `webhook-id`        | the delivery id; **the same on every retry** — dedupe on it  |
//! | `webhook-timestamp` | when this attempt was signed, Unix seconds (decimal)         |
//! | `webhook-signature` | `v1=<hex>`, possibly several separated by spaces (see below) |
//! | `content-type`      | `application/json`                                           |
//! | `user-agent`        | `reelfarm/<version>`                                         |
//!
//! Each attempt is signed afresh, so `webhook-timestamp` (and therefore the signature)
//! changes between retries while `webhook-id` and the body do not.
//!
//! # Verifying a delivery (for receivers)
//!
//! With the endpoint's shared secret `secret` (the raw bytes of the secret string):
//!
//! 1. Read `webhook-timestamp` as a decimal integer `t` and the **raw** request body bytes
//!    `body` (verify before any JSON parsing or re-serialisation: one changed byte breaks the
//!    signature).
//! 2. Reject the request if `|now − t| > 300` seconds (replay protection; the tolerance is
//!    yours to choose, 5 minutes is typical).
//! 3. Compute `expected = lowercase_hex(HMAC-SHA256(key = secret, message = t + "." + body))`,
//!    where `t` is the header's decimal text exactly as received and `"."` is one ASCII full stop.
//! 4. Split `webhook-signature` on spaces. Each entry is `<version>=<signature>`; ignore
//!    versions other than `v1`. Accept the request if **any** `v1` signature equals
//!    `expected`, compared in constant time. Several entries appear while a secret is being
//!    rotated (one per active secret).
//! 5. Deduplicate on `webhook-id`: a delivery may arrive more than once (e.g. when your
//!    `2xx` answer was lost), always with the same id.
//!
//! Answer `2xx` quickly (within 10 seconds) once the delivery is stored. [`sign`] and
//! [`verify`] implement exactly this recipe; [`verify_request`] does steps 1 to 4 from the
//! request's headers (looked up by the names [`HEADER_TIMESTAMP`] and [`HEADER_SIGNATURE`]) and
//! raw body.
//!
//! # Answers and retries
//!
//! [`Sender::send`] makes one attempt and classifies it as an [`Attempt`]:
//!
//! - `2xx` → [`Attempt::Delivered`].
//! - `408`, `425`, `429`, `5xx`, timeouts, connection and DNS errors → [`Attempt::Retry`]; on
//!   `429` and `503` a `Retry-After` header (seconds or HTTP date) is returned, capped at
//!   [`MAX_DELAY`].
//! - any other status (other `4xx` including `410 Gone`, and `3xx`: redirects are never
//!   followed) and refused destinations → [`Attempt::Permanent`].
//!
//! The caller waits [`next_attempt_delay`] (or the `retry_after` hint, whichever is longer)
//! between attempts, and moves the delivery to the dead-letter list once [`MAX_ATTEMPTS`]
//! attempts have failed.
//!
//! # Destination safety (SSRF)
//!
//! Webhook URLs are supplied by tenants, so the farm must not be usable to reach its own
//! network. [`check_destination`] validates a URL when it is configured (http/https only,
//! no credentials, every resolved address public; see [`forbidden_reason`]). Because DNS
//! answers can change between that check and the delivery (DNS rebinding), [`Sender`]
//! enforces the same rule **at connection time**: its HTTP client uses a resolver that
//! resolves the host, refuses the whole name if any address is not public, and connects only
//! to the addresses it checked; IP-literal hosts are checked before sending. The client
//! ignores proxy environment variables (a proxy would connect on our behalf, unchecked) and
//! never follows redirects (a redirect could point anywhere). Tests and local demos set
//! `allow_private` to reach loopback receivers.
//!
//! Neither the secret nor the request body is ever logged or put into an error message.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
pub use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Header carrying the delivery id (stable across retries).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the signing time, Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the `v1=<hex>` signature(s).
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The `user-agent` sent with every delivery: `reelfarm/<crate version>`.
pub const USER_AGENT_VALUE: &str = concat!("reelfarm/", env!("CARGO_PKG_VERSION"));
/// Recommended tolerance for [`verify`]'s timestamp check, in seconds (5 minutes).
pub const DEFAULT_TOLERANCE_S: i64 = 300;

/// Attempts after which a delivery goes to the dead-letter list (the caller's job).
pub const MAX_ATTEMPTS: u32 = 12;
/// Base delay of the retry schedule: the wait after the first failed attempt.
pub const BASE_DELAY: Duration = Duration::from_secs(5);
/// Longest wait between two attempts (also the cap on a receiver's `Retry-After`).
pub const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Default connect timeout of [`Sender`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total timeout of one attempt (connect, send, response headers and body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many bytes of a response body are read; the rest is discarded.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// At most this many characters of a non-2xx response body are quoted in an error.
const ERROR_SNIPPET_CHARS: usize = 200;

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------

/// SHA-256 block size: HMAC keys are padded (or first hashed) to this length.
const SHA256_BLOCK: usize = 64;

/// HMAC-SHA256 keyed with `secret`, per RFC 2104: a key longer than the block is hashed
/// first, a shorter one is zero-padded. (Identical to `Hmac::new_from_slice`, without its
/// never-taken error path.)
fn keyed(secret: &[u8]) -> HmacSha256 {
    let mut block = [0u8; SHA256_BLOCK];
    if secret.len() > SHA256_BLOCK {
        let digest = Sha256::digest(secret);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as KeyInit>::new(&block.into())
}

/// The MAC of `"<timestamp>.<body>"` under `secret`, ready to finalize or verify.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = keyed(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value for `body` signed at `timestamp` (Unix seconds):
/// `v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
///
/// To sign with several secrets during a rotation, join the values with a space.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1={}", hex::encode(tag))
}

/// Why [`verify`] rejected a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The `webhook-signature` header is absent or empty.
    #[error("missing webhook-signature header")]
    Missing,
    /// The `webhook-timestamp` header is absent or not a decimal integer (only
    /// [`verify_request`], which reads the headers itself, reports this).
    #[error("missing or malformed webhook-timestamp header")]
    Timestamp,
    /// The header is not a space-separated list of `<version>=<signature>` entries with at
    /// least one well-formed `v1` signature (64 hex digits).
    #[error("malformed webhook-signature header: {0}")]
    Malformed(String),
    /// No `v1` signature matches the body, timestamp and secret.
    #[error("signature mismatch: no v1 signature matches this body, timestamp and secret")]
    Mismatch,
    /// The timestamp is more than the tolerance in the past (possible replay).
    #[error("timestamp too old: signed at {timestamp}, now {now}, tolerance {tolerance_s} s")]
    TooOld {
        /// The `webhook-timestamp` value.
        timestamp: i64,
        /// The verifier's current time.
        now: i64,
        /// The accepted clock difference, seconds.
        tolerance_s: i64,
    },
    /// The timestamp is more than the tolerance in the future (clock skew or forgery).
    #[error(
        "timestamp in the future: signed at {timestamp}, now {now}, tolerance {tolerance_s} s"
    )]
    InFuture {
        /// The `webhook-timestamp` value.
        timestamp: i64,
        /// The verifier's current time.
        now: i64,
        /// The accepted clock difference, seconds.
        tolerance_s: i64,
    },
}

/// Verifies a `webhook-signature` header value (the receiver's side of [`sign`]).
///
/// Checks, in order: the header is present and well formed (space-separated
/// `<version>=<signature>` entries; versions other than `v1` are ignored, every `v1` entry
/// must be 64 hex digits, and at least one must be present); `timestamp` is within
/// `tolerance_s` seconds of `now` in either direction; and at least one `v1` signature
/// matches, compared in constant time (several are sent while a secret is rotated).
///
/// `timestamp` is the `webhook-timestamp` header parsed as an integer and `body` the raw
/// request body.
pub fn verify(
    secret: &[u8],
    header_value: &str,
    timestamp: i64,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    if header_value.trim().is_empty() {
        return Err(VerifyError::Missing);
    }
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for entry in header_value.split_ascii_whitespace() {
        let Some((version, value)) = entry.split_once('=') else {
            return Err(VerifyError::Malformed(
                "expected space-separated `v1=<hex>` entries".to_string(),
            ));
        };
        if version != "v1" {
            continue;
        }
        match hex::decode(value) {
            Ok(bytes) if bytes.len() == 32 => candidates.push(bytes),
            _ => {
                return Err(VerifyError::Malformed(
                    "a v1 signature must be 64 hex digits".to_string(),
                ))
            }
        }
    }
    if candidates.is_empty() {
        return Err(VerifyError::Malformed("no v1 signature".to_string()));
    }

    let tolerance_s = tolerance_s.max(0);
    if now.saturating_sub(timestamp) > tolerance_s {
        return Err(VerifyError::TooOld {
            timestamp,
            now,
            tolerance_s,
        });
    }
    if timestamp.saturating_sub(now) > tolerance_s {
        return Err(VerifyError::InFuture {
            timestamp,
            now,
            tolerance_s,
        });
    }

    let base = mac(secret, &timestamp.to_string(), body);
    if candidates
        .iter()
        .any(|candidate| base.clone().verify_slice(candidate).is_ok())
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Verifies a received delivery from its headers and raw body: reads [`HEADER_SIGNATURE`] and
/// [`HEADER_TIMESTAMP`] with `header` (a lookup by header name, e.g.
/// `|name| headers.get(name).and_then(|v| v.to_str().ok())`) and applies [`verify`] with the
/// timestamp parsed as a decimal integer.
///
/// A missing or empty signature is [`VerifyError::Missing`], a missing or non-numeric timestamp
/// [`VerifyError::Timestamp`]; the rest is [`verify`]'s. `now` and `tolerance_s` are as there
/// ([`DEFAULT_TOLERANCE_S`] is a sound tolerance).
pub fn verify_request<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secret: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let signature = header(HEADER_SIGNATURE).unwrap_or("");
    if signature.trim().is_empty() {
        return Err(VerifyError::Missing);
    }
    let timestamp = header(HEADER_TIMESTAMP)
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(VerifyError::Timestamp)?;
    verify(secret, signature, timestamp, body, now, tolerance_s)
}

// ---------------------------------------------------------------------------------------
// Destinations
// ---------------------------------------------------------------------------------------

pub use proto::destination::{check_destination, forbidden_reason, DestinationError};
use proto::destination::{parse_destination, resolve_checked};

/// The [`Sender`]'s DNS resolver: resolves with the system resolver and refuses names with a
/// non-public address, so the client connects only to checked addresses.
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port.
            let addrs = resolve_checked(&host, 0, allow_private).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

// ---------------------------------------------------------------------------------------
// Payload
// ---------------------------------------------------------------------------------------

/// What happened to the render a delivery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryEvent {
    /// The video is ready: `video_url` (and usually `poster_url`) are set.
    #[serde(rename = "render.succeeded")]
    RenderSucceeded,
    /// The render failed for good: `failure` says why.
    #[serde(rename = "render.failed")]
    RenderFailed,
}

/// The JSON body of a delivery (snake_case keys; absent optional values are `null`).
///
/// Timestamps serialise as RFC 3339 in UTC, e.g. `"2025-03-01T09:30:00Z"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPayload {
    /// The delivery id, also sent as `webhook-id`.
    pub delivery_id: String,
    /// `render.succeeded` or `render.failed`.
    pub event: DeliveryEvent,
    /// When the render finished (or failed).
    pub occurred_at: DateTime<Utc>,
    /// The brand (tenant) the delivery belongs to.
    pub tenant: String,
    /// The campaign that dispatched the render; empty for a render's own callback
    /// (`RenderSpec.callback_url`), as are `variant`, `customer_id` and `event_id`.
    pub campaign: String,
    /// The campaign variant that was rendered.
    pub variant: String,
    /// The brand's customer id.
    pub customer_id: String,
    /// The id of the business event that triggered the campaign.
    pub event_id: String,
    /// The render job id.
    pub render_id: String,
    /// The render's final state: `succeeded`, `failed` or `cancelled` (a cancelled render is
    /// reported as `render.failed`).
    pub state: String,
    /// The render's metadata as submitted (`RenderSpec.metadata`); empty for campaign renders.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Signed URL of the video (`render.succeeded`).
    pub video_url: Option<String>,
    /// Signed URL of the poster image (`render.succeeded`).
    pub poster_url: Option<String>,
    /// When `video_url` and `poster_url` stop working.
    pub url_expires_at: Option<DateTime<Utc>>,
    /// Why the render failed (`render.failed`).
    pub failure: Option<String>,
}

impl DeliveryPayload {
    /// The request body: this payload as compact JSON.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

// ---------------------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------------------

/// The wait after failed attempt number `attempt` (1-based) before the next one:
/// `min(1 h, 5 s · 2^(attempt − 1))`, multiplied by `jitter`.
///
/// `jitter` should be drawn uniformly from `[0.5, 1.0]` per delivery attempt (it spreads
/// retries of many deliveries failing together); values outside are clamped to that range
/// and NaN counts as `1.0`. `attempt` 0 counts as 1. Without jitter the schedule is 5 s,
/// 10 s, 20 s, … 2560 s, then 1 h; all [`MAX_ATTEMPTS`] attempts span at most about 2 h 25 min.
pub fn next_attempt_delay(attempt: u32, jitter: f64) -> Duration {
    backoff_delay(BASE_DELAY, MAX_DELAY, attempt, jitter)
}

/// [`next_attempt_delay`] with another base and cap: `min(max, base · 2^(attempt − 1))`
/// scaled by `jitter` clamped to `[0.5, 1.0]` (for tests and tuning).
pub fn backoff_delay(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(63);
    let factor = 1u64 << exponent;
    let raw = u32::try_from(factor)
        .ok()
        .and_then(|f| base.checked_mul(f))
        .unwrap_or(max);
    let jitter = if jitter.is_nan() {
        1.0
    } else {
        jitter.clamp(0.5, 1.0)
    };
    let capped = raw.min(max);
    Duration::try_from_secs_f64(capped.as_secs_f64() * jitter).unwrap_or(capped)
}

// ---------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------

/// One delivery to attempt. Its `Debug` output never shows the secret or the body.
#[derive(Clone)]
pub struct Outgoing {
    /// The delivery id (`webhook-id`): the same for every attempt.
    pub id: String,
    /// The endpoint URL.
    pub url: String,
    /// The endpoint's signing secret.
    pub secret: Vec<u8>,
    /// The JSON body, e.g. from [`DeliveryPayload::to_body`].
    pub body: Vec<u8>,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered `2xx`.
    Delivered {
        /// The status code.
        status: u16,
    },
    /// A transient failure: try again after [`next_attempt_delay`] (or `retry_after`, if
    /// longer) unless [`MAX_ATTEMPTS`] is reached.
    Retry {
        /// The status code, if the receiver answered (`408`, `425`, `429`, `5xx`).
        status: Option<u16>,
        /// What went wrong (never contains the secret or the body).
        error: String,
        /// The receiver's `Retry-After` on `429`/`503`, capped at [`MAX_DELAY`].
        retry_after: Option<Duration>,
    },
    /// Retrying will not help: the receiver refused the delivery or the destination is not
    /// allowed. Goes to the dead-letter list.
    Permanent {
        /// The status code, if the receiver answered.
        status: Option<u16>,
        /// What went wrong (never contains the secret or the body).
        error: String,
    },
}

/// Settings of a [`Sender`].
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Connect timeout (default [`CONNECT_TIMEOUT`], 5 s).
    pub connect_timeout: Duration,
    /// Total timeout of one attempt (default [`REQUEST_TIMEOUT`], 10 s).
    pub timeout: Duration,
    /// Allow loopback, private and other non-public destinations (tests, local demos).
    pub allow_private: bool,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            timeout: REQUEST_TIMEOUT,
            allow_private: false,
        }
    }
}

/// Could not build the HTTP client of a [`Sender`].
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct SenderBuildError(#[from] reqwest::Error);

/// Sends webhook deliveries: one reusable HTTP client (rustls, HTTP/1.1, connection pool),
/// no redirects, no proxies, the destination check of [`check_destination`] enforced at
/// connection time, response bodies read up to [`MAX_RESPONSE_BYTES`].
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// A sender with the default settings: 5 s connect timeout, 10 s total, public
    /// destinations only.
    pub fn new() -> Result<Self, SenderBuildError> {
        Self::with_config(SenderConfig::default())
    }

    /// A sender with the given settings.
    pub fn with_config(config: SenderConfig) -> Result<Self, SenderBuildError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT_VALUE)
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                allow_private: config.allow_private,
            }))
            .build()?;
        Ok(Self {
            client,
            allow_private: config.allow_private,
        })
    }

    /// Makes one attempt to deliver `d`, signed with the current time, and classifies the
    /// outcome (see the [module documentation](self#answers-and-retries)). Never panics and
    /// never returns an error: every failure is an [`Attempt`].
    pub async fn send(&self, d: &Outgoing) -> Attempt {
        let (url, host) = match parse_destination(&d.url) {
            Ok(ok) => ok,
            Err(e) => return permanent(None, e.to_string()),
        };
        // Names are checked by the resolver at connect time; IP literals never reach it.
        if !self.allow_private {
            if let Ok(ip) = host.parse::<IpAddr>() {
                if let Some(reason) = forbidden_reason(&ip) {
                    let e = DestinationError::Forbidden {
                        host,
                        addr: ip,
                        reason,
                    };
                    return permanent(None, e.to_string());
                }
            }
        }

        let timestamp = unix_now();
        let signature = sign(&d.secret, timestamp, &d.body);
        let request = self
            .client
            .post(url)
            .header(HEADER_ID, d.id.as_str())
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(d.body.clone());

        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return classify_error(e),
        };
        let status = response.status().as_u16();
        let retry_after = if status == 429 || status == 503 {
            retry_after(response.headers())
        } else {
            None
        };

        // Read (at most MAX_RESPONSE_BYTES of) the body so the connection can be reused and
        // an error can quote the start of it.
        let mut bytes = Vec::new();
        while bytes.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - bytes.len();
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(response);

        if (200..300).contains(&status) {
            return Attempt::Delivered { status };
        }
        let error = status_error(status, &bytes);
        if matches!(status, 408 | 425 | 429) || (500..600).contains(&status) {
            Attempt::Retry {
                status: Some(status),
                error,
                retry_after,
            }
        } else {
            permanent(Some(status), error)
        }
    }
}

/// The current time in Unix seconds (0 if the clock is before 1970).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn permanent(status: Option<u16>, error: String) -> Attempt {
    Attempt::Permanent { status, error }
}

/// `HTTP 503 Service Unavailable: <start of the body>`, the body sanitised and shortened.
fn status_error(status: u16, body: &[u8]) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut error = format!("HTTP {status} {reason}").trim_end().to_string();
    if (300..400).contains(&status) {
        error.push_str(" (redirects are not followed: configure the final URL)");
    }
    let text = String::from_utf8_lossy(body);
    let snippet: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_SNIPPET_CHARS)
        .collect();
    let snippet = snippet.trim();
    if !snippet.is_empty() {
        error.push_str(": ");
        error.push_str(snippet);
        if text.chars().count() > ERROR_SNIPPET_CHARS {
            error.push('…');
        }
    }
    error
}

/// A `Retry-After` header as a duration: delay-seconds or an HTTP date, capped at
/// [`MAX_DELAY`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        let seconds = at.timestamp().saturating_sub(unix_now()).max(0);
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    };
    Some(delay.min(MAX_DELAY))
}

/// Classifies a transport error: a refused destination is permanent, anything else
/// (timeouts, connection refused/reset, DNS failures) is worth retrying. The URL is
/// stripped from the message.
fn classify_error(e: reqwest::Error) -> Attempt {
    let timeout = e.is_timeout();
    let connect = e.is_connect();
    let e = e.without_url();
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(dest) = err.downcast_ref::<DestinationError>() {
            if matches!(dest, DestinationError::Forbidden { .. }) {
                return permanent(None, dest.to_string());
            }
            return Attempt::Retry {
                status: None,
                error: dest.to_string(),
                retry_after: None,
            };
        }
        source = err.source();
    }
    let kind = if timeout {
        "timed out"
    } else if connect {
        "connection failed"
    } else {
        "request failed"
    };
    Attempt::Retry {
        status: None,
        error: format!("{kind}: {}", error_chain(&e)),
        retry_after: None,
    }
}

/// `error: cause: cause …`, skipping causes already contained in the previous message.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let msg = err.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = err.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn keyed_matches_new_from_slice() {
        for len in [0usize, 1, 32, 63, 64, 65, 200] {
            let secret: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut a = keyed(&secret);
            let mut b = <HmacSha256 as Mac>::new_from_slice(&secret).expect("any key length");
            a.update(b"message");
            b.update(b"message");
            assert_eq!(
                a.finalize().into_bytes(),
                b.finalize().into_bytes(),
                "{len}"
            );
        }
    }

    #[test]
    fn embedded_ipv4_is_judged() {
        assert_eq!(forbidden_reason(&ip("::ffff:127.0.0.1")), Some("loopback"));
        assert_eq!(forbidden_reason(&ip("64:ff9b::a00:1")), Some("private"));
        assert_eq!(forbidden_reason(&ip("64:ff9b::808:808")), None);
        assert_eq!(
            forbidden_reason(&ip("100.127.255.255")),
            Some("shared (CGNAT)")
        );
        assert_eq!(forbidden_reason(&ip("100.128.0.1")), None);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h), Some(MAX_DELAY));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_extremes() {
        assert_eq!(
            backoff_delay(Duration::MAX, Duration::MAX, 64, 1.0),
            Duration::MAX
        );
        assert_eq!(next_attempt_delay(u32::MAX, f64::NAN), MAX_DELAY);
    }
}
