//! What a worker process needs to know: where the coordinator is, how to authenticate, how many
//! renders to run at once and where to keep its files.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Most renders one worker may run at once (the protocol's limit on `Capabilities.slots`).
pub const MAX_SLOTS: u32 = 64;

/// Longest worker name the coordinator accepts, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// Configuration of one worker process. Build it with [`WorkerConfig::new`], adjust the public
/// fields, and hand it to [`crate::run`], which checks it with [`WorkerConfig::validate`] first.
///
/// `Debug` never shows the join token.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Coordinator URL: `http://host:port` or `https://host:port`.
    pub coordinator: String,
    /// The farm's join token, sent as `authorization: Bearer <token>` on every call. Visible
    /// ASCII; never logged.
    pub join_token: String,
    /// Stable name of this worker, 1..=128 characters. Default: [`default_name`].
    pub name: String,
    /// Renders run at once, 1..=64. Default 1. Each slot gets its own GPU renderer.
    pub slots: u32,
    /// Completes every assignment at once without fetching, rendering or uploading anything
    /// (benchmarks of the coordinator alone). Default false.
    pub noop: bool,
    /// With `noop`, how long each assignment holds its slot and lease (heartbeating, stoppable)
    /// before it completes, as a render would: for failure tests that kill workers mid-render.
    /// Default zero.
    pub noop_time: std::time::Duration,
    /// Folder for the worker's files: template bundles unpacked under `templates/<digest>/`
    /// (kept as a cache) and each attempt's outputs under `work/<attempt_id>/` (removed when the
    /// attempt ends). Workers may share it: attempt ids are unique and bundles unpack
    /// atomically.
    pub cache_dir: PathBuf,
    /// PEM file of the certificate authority to trust for an `https://` coordinator. `None`
    /// trusts the system's roots. Only valid with `https://`.
    pub tls_ca: Option<PathBuf>,
    /// Address to serve Prometheus metrics on, at `/metrics`. `None` serves none.
    pub metrics_addr: Option<SocketAddr>,
    /// Size limit in bytes of the segment cache under `<cache_dir>/segments` (least recently
    /// used segments go first); 0 turns the cache off (and with it the farm-wide sharing).
    /// Default [`DEFAULT_SEGMENT_CACHE_BYTES`].
    pub segment_cache_bytes: u64,
    /// Segment encoders running at once, shared by all slots; 0: one per CPU core (the
    /// default).
    pub encoders: usize,
    /// Once draining, how long running attempts may go on before the worker gives them back
    /// to the farm (they are requeued) and exits. Default [`DEFAULT_DRAIN_TIMEOUT`].
    pub drain_timeout: std::time::Duration,
}

/// The default [`WorkerConfig::drain_timeout`]: 15 minutes, longer than any render should
/// take.
pub const DEFAULT_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(900);

/// The default size limit of a worker's segment cache: 4 GiB (a W1 segment at 1080p is about
/// 0.3 MB, so some 13,000 segments).
pub const DEFAULT_SEGMENT_CACHE_BYTES: u64 = 4 << 30;

impl WorkerConfig {
    /// A configuration with the defaults: [`default_name`], one slot, rendering for real, no
    /// TLS CA file, no metrics endpoint.
    pub fn new(
        coordinator: impl Into<String>,
        join_token: impl Into<String>,
        cache_dir: impl Into<PathBuf>,
    ) -> Self {
        WorkerConfig {
            coordinator: coordinator.into(),
            join_token: join_token.into(),
            name: default_name(),
            slots: 1,
            noop: false,
            noop_time: std::time::Duration::ZERO,
            cache_dir: cache_dir.into(),
            tls_ca: None,
            metrics_addr: None,
            segment_cache_bytes: DEFAULT_SEGMENT_CACHE_BYTES,
            encoders: 0,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// Checks every field and reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let url = self.coordinator.as_str();
        let https = url.starts_with("https://");
        if !(https || url.starts_with("http://")) {
            problems.push(format!(
                "coordinator URL `{url}` must start with http:// or https://"
            ));
        } else if url.parse::<tonic::transport::Uri>().is_err() || url.ends_with("://") {
            problems.push(format!("coordinator URL `{url}` is not a valid URL"));
        }
        if self.join_token.is_empty() {
            problems.push("join token is empty".to_owned());
        } else if !self.join_token.bytes().all(|b| b.is_ascii_graphic()) {
            // Do not echo the token.
            problems.push(
                "join token must be visible ASCII (no spaces or control characters)".to_owned(),
            );
        }
        let name_chars = self.name.chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS {
            problems.push(format!(
                "worker name is {name_chars} characters; expected 1..={MAX_NAME_CHARS}"
            ));
        }
        if !(1..=MAX_SLOTS).contains(&self.slots) {
            problems.push(format!("slots {} out of range 1..={MAX_SLOTS}", self.slots));
        }
        if self.encoders > 1024 {
            problems.push(format!("encoders {} out of range 0..=1024", self.encoders));
        }
        if self.cache_dir.as_os_str().is_empty() {
            problems.push("cache folder is empty".to_owned());
        }
        if self.tls_ca.is_some() && !https {
            problems.push(format!(
                "a TLS CA certificate is given but the coordinator URL `{url}` is not https://"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("coordinator", &self.coordinator)
            .field("join_token", &"<redacted>")
            .field("name", &self.name)
            .field("slots", &self.slots)
            .field("noop", &self.noop)
            .field("noop_time", &self.noop_time)
            .field("cache_dir", &self.cache_dir)
            .field("tls_ca", &self.tls_ca)
            .field("metrics_addr", &self.metrics_addr)
            .field("segment_cache_bytes", &self.segment_cache_bytes)
            .field("encoders", &self.encoders)
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
}

/// A [`WorkerConfig`] that cannot work, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid worker configuration: {}", problems.join("; "))]
pub struct ConfigError {
    /// One sentence per problem.
    pub problems: Vec<String>,
}

/// `<host name>-<process id>`: unique per process on a machine, recognizable in the
/// coordinator's listings. Truncated to [`MAX_NAME_CHARS`].
pub fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let suffix = format!("-{}", std::process::id());
    let keep = MAX_NAME_CHARS.saturating_sub(suffix.len());
    let mut name: String = host.chars().take(keep).collect();
    name.push_str(&suffix);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = WorkerConfig::new("http://127.0.0.1:7070", "secret", "/tmp/cache");
        assert_eq!(c.slots, 1);
        assert!(!c.noop);
        c.validate().expect("valid");
        assert!(!c.name.is_empty() && c.name.chars().count() <= MAX_NAME_CHARS);
    }

    #[test]
    fn lists_every_problem_and_hides_the_token() {
        let mut c = WorkerConfig::new("ftp://x", "has space", "");
        c.slots = 0;
        c.name = String::new();
        c.tls_ca = Some("/ca.pem".into());
        let err = c.validate().expect_err("invalid");
        assert_eq!(err.problems.len(), 6, "{err}");
        let text = err.to_string();
        assert!(!text.contains("has space"), "{text}");
        assert!(!format!("{c:?}").contains("has space"));
    }
}
