//! The gRPC channel to the coordinator: TLS, the bearer token on every call, deadlines, and
//! which failures are worth retrying.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use proto::auth::{Bearer, RETRY_AFTER_MS};
use proto::v1::worker_service_client::WorkerServiceClient;
use rand::Rng as _;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::WorkerConfig;

/// The WorkerService client every task clones (cheap: the channel is shared).
/// Every call carries `authorization: Bearer <join token>`.
pub(crate) type Client = WorkerServiceClient<InterceptedService<Channel, Bearer>>;

/// Deadline of a unary call (research/farms.md 10.3).
pub(crate) const UNARY_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline of a whole streamed transfer (a template bundle, an output file).
pub(crate) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

/// A client for `config.coordinator`. Connects lazily: a coordinator that is not up yet makes
/// calls fail with UNAVAILABLE, which callers retry.
pub(crate) async fn connect(config: &WorkerConfig) -> anyhow::Result<Client> {
    let bearer = Bearer::new(&config.join_token)
        .map_err(|_| anyhow::anyhow!("the join token is not a valid header value"))?;
    let mut endpoint = Endpoint::from_shared(config.coordinator.clone())
        .with_context(|| format!("coordinator URL `{}`", config.coordinator))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10));
    if config.coordinator.starts_with("https://") {
        let tls = match &config.tls_ca {
            Some(path) => {
                let pem = tokio::fs::read(path)
                    .await
                    .with_context(|| format!("cannot read TLS CA file {}", path.display()))?;
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint
            .tls_config(tls)
            .context("cannot set up TLS for the coordinator")?;
    }
    let channel = endpoint.connect_lazy();
    Ok(WorkerServiceClient::with_interceptor(channel, bearer)
        // A chunk is at most CHUNK_BYTES; leave room for framing.
        .max_decoding_message_size(proto::CHUNK_BYTES + 64 * 1024))
}

/// Runs a call with a client-side deadline (also sent to the server as `grpc-timeout` by the
/// caller); a call that runs past it fails with DEADLINE_EXCEEDED.
pub(crate) async fn with_deadline<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer from the coordinator within {limit:?}"
        ))),
    }
}

/// A request with its `grpc-timeout` set.
pub(crate) fn request<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Failures where the outcome is unknown or the coordinator is briefly away: retry the same
/// call (every mutating call is idempotent). Transport errors surface as UNAVAILABLE or
/// UNKNOWN.
pub(crate) fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Cancelled
    )
}

/// The attempt is no longer this worker's (a newer epoch holds it, or it is gone): discard.
pub(crate) fn is_stale(status: &Status) -> bool {
    matches!(status.code(), Code::FailedPrecondition | Code::NotFound)
}

/// The coordinator's retry advice (`retry-after-ms` trailer of RESOURCE_EXHAUSTED), if any.
pub(crate) fn retry_after(status: &Status) -> Option<Duration> {
    let value = status.metadata().get(RETRY_AFTER_MS)?.to_str().ok()?;
    value.parse::<u64>().ok().map(Duration::from_millis)
}

/// Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling up to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff { next: initial, max }
    }

    /// The delay before the next try.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let factor = rand::rng().random_range(0.5..=1.0);
        d.mul_f64(factor)
    }

    /// The delay before the next try, or the coordinator's advice when it gave one.
    pub(crate) fn after(&mut self, status: &Status) -> Duration {
        let own = self.next_delay();
        retry_after(status).map_or(own, |advice| advice.min(Duration::from_secs(60)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    #[test]
    fn classifies_statuses() {
        assert!(is_transient(&Status::unavailable("down")));
        assert!(is_transient(&Status::deadline_exceeded("slow")));
        assert!(!is_transient(&Status::failed_precondition("stale")));
        assert!(is_stale(&Status::failed_precondition("stale")));
        assert!(is_stale(&Status::not_found("gone")));
        assert!(!is_stale(&Status::invalid_argument("bad")));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_max() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        let bounds = [100, 200, 400, 400, 400];
        for (d, hi) in delays.iter().zip(bounds) {
            let hi = Duration::from_millis(hi);
            assert!(
                *d <= hi && *d >= hi / 2,
                "{d:?} not in [{:?}, {hi:?}]",
                hi / 2
            );
        }
    }

    #[test]
    fn honours_retry_advice() {
        let mut status = Status::resource_exhausted("busy");
        status
            .metadata_mut()
            .insert(RETRY_AFTER_MS, MetadataValue::from_static("1500"));
        assert_eq!(retry_after(&status), Some(Duration::from_millis(1500)));
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(10));
        assert_eq!(b.after(&status), Duration::from_millis(1500));
    }
}
