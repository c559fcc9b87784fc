//! Domain types of the job store: tenants, templates, renders (jobs), attempts and workers.
//!
//! Times are Unix epoch milliseconds ([`Millis`]). These types never leak prost types; the
//! gRPC services convert at their edge.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Unix epoch milliseconds.
pub use sqlstore::row::Millis;

/// Priority lane: real-time work is claimed before bulk work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    Realtime,
    Bulk,
}

impl Lane {
    /// Both lanes, in claim order.
    pub const ALL: [Lane; 2] = [Lane::Realtime, Lane::Bulk];

    /// Stored form: 0 real-time, 1 bulk.
    pub fn as_i64(self) -> i64 {
        match self {
            Lane::Realtime => 0,
            Lane::Bulk => 1,
        }
    }

    pub fn from_i64(v: i64) -> Option<Lane> {
        match v {
            0 => Some(Lane::Realtime),
            1 => Some(Lane::Bulk),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lane::Realtime => "realtime",
            Lane::Bulk => "bulk",
        }
    }
}

/// Where a render is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => return Err(format!("unknown job state `{other}`")),
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt failed; decides the retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The request cannot render as given. Never retried.
    InvalidInput,
    /// May pass on another try; budget [`RetryPolicy::app_attempts`](crate::lifecycle::RetryPolicy).
    Application,
    /// Lost lease, crash, drain, blob store down; separate budget.
    Infrastructure,
    /// The render's deadline passed. Terminal.
    DeadlineExceeded,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::InvalidInput => "invalid_input",
            FailureClass::Application => "application",
            FailureClass::Infrastructure => "infrastructure",
            FailureClass::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

impl FromStr for FailureClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "invalid_input" => FailureClass::InvalidInput,
            "application" => FailureClass::Application,
            "infrastructure" => FailureClass::Infrastructure,
            "deadline_exceeded" => FailureClass::DeadlineExceeded,
            other => return Err(format!("unknown failure class `{other}`")),
        })
    }
}

/// A tenant: the unit of isolation, fairness and authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: String,
    /// Unique, `[a-z0-9-]{1,64}`.
    pub name: String,
    /// Cap on this tenant's renders running at once.
    pub max_running: u32,
    pub created_ms: Millis,
}

/// Hex digits of a key's SHA-256 that name it in listings and revocations: the key itself is
/// never stored, and 64 bits tell a tenant's keys apart.
pub const API_KEY_ID_CHARS: usize = 16;

/// One of a tenant's API keys, as an operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    /// The first [`API_KEY_ID_CHARS`] hex digits of the key's SHA-256.
    pub id: String,
    pub created_ms: Millis,
}

impl ApiKeyInfo {
    /// The id of the key whose SHA-256 (lowercase hex) is `hash`.
    pub fn id_of_hash(hash: &str) -> &str {
        hash.get(..API_KEY_ID_CHARS).unwrap_or(hash)
    }
}

/// How a request names a template version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    /// The newest version.
    Latest(String),
    /// `name@7`.
    Version(String, u32),
    /// `name@live`.
    Alias(String, String),
}

impl TemplateRef {
    pub fn name(&self) -> &str {
        match self {
            TemplateRef::Latest(n) | TemplateRef::Version(n, _) | TemplateRef::Alias(n, _) => n,
        }
    }
}

/// A stored, immutable template version.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRecord {
    pub tenant_id: String,
    pub name: String,
    /// 1, 2, 3, … per (tenant, name).
    pub version: u32,
    /// Lowercase hex SHA-256 of the bundle archive.
    pub digest: String,
    pub size_bytes: u64,
    /// `template.json` as uploaded (UTF-8 JSON).
    pub manifest_json: String,
    /// Object-store key of the archive.
    pub blob_key: String,
    pub created_ms: Millis,
    /// Aliases that point at this version, sorted.
    pub aliases: Vec<String>,
}

/// A template version to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    pub tenant_id: String,
    pub name: String,
    pub digest: String,
    pub size_bytes: u64,
    pub manifest_json: String,
    pub blob_key: String,
    pub created_ms: Millis,
}

/// A render to queue. The coordinator has validated it against its template version.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// A fresh UUID.
    pub id: String,
    pub tenant_id: String,
    pub idempotency_key: String,
    /// Lowercase hex SHA-256 of the canonical request; same key + different hash = conflict.
    pub request_hash: String,
    pub template_name: String,
    pub template_version: u32,
    pub template_digest: String,
    pub lang: String,
    /// Sanitized token values.
    pub tokens: BTreeMap<String, String>,
    /// Preset name as render-core parses it (`720p`, `1080p`, `whatsapp`).
    pub preset: String,
    pub lane: Lane,
    pub created_ms: Millis,
    pub deadline_ms: Millis,
    /// The client's labels, stored and returned as given.
    pub metadata: BTreeMap<String, String>,
    /// Where the render's completion webhook goes; empty when none.
    pub callback_url: String,
}

/// The committed output of a succeeded render.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobOutput {
    /// The attempt whose files are canonical.
    pub attempt_id: String,
    pub video: Option<OutputFile>,
    pub poster: Option<OutputFile>,
    pub stage_seconds: BTreeMap<String, f64>,
}

/// One stored output file of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFile {
    pub blob_key: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Which output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    Video,
    Poster,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Video => "video",
            ArtifactKind::Poster => "poster",
        }
    }
}

impl FromStr for ArtifactKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "video" => Ok(ArtifactKind::Video),
            "poster" => Ok(ArtifactKind::Poster),
            other => Err(format!("unknown artifact `{other}`")),
        }
    }
}

/// A render as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub tenant_id: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub template_name: String,
    pub template_version: u32,
    pub template_digest: String,
    pub lang: String,
    pub tokens: BTreeMap<String, String>,
    pub preset: String,
    pub lane: Lane,
    /// The client's labels, as submitted.
    pub metadata: BTreeMap<String, String>,
    /// Where the render's completion webhook goes; empty when none.
    pub callback_url: String,
    pub state: JobState,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    /// 0 until terminal.
    pub finished_ms: Millis,
    /// When the current (or last) attempt was claimed; 0 before the first claim.
    pub started_ms: Millis,
    /// Not claimable before this time (retry backoff); 0 = now.
    pub not_before_ms: Millis,
    pub deadline_ms: Millis,
    /// Attempts started.
    pub attempts: u32,
    pub app_failures: u32,
    pub infra_failures: u32,
    /// Bumped at every claim.
    pub lease_epoch: u64,
    /// The current (or last) attempt; empty before the first claim.
    pub attempt_id: String,
    /// Worker holding the lease; empty when none.
    pub worker_id: String,
    /// 0 when not running.
    pub lease_expires_ms: Millis,
    pub progress: f32,
    pub stage: String,
    /// Last failure (class, message), kept while a retry is queued and when failed.
    pub failure: Option<(FailureClass, String)>,
    pub warnings: Vec<String>,
    /// Set when succeeded.
    pub output: Option<JobOutput>,
    /// The attempt that published its live stream's first playlist last (`PublishStream`);
    /// empty when none did. The render has a stream when this is its current (or winning)
    /// attempt.
    pub stream_attempt_id: String,
}

/// Every worker write names the attempt it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    pub job_id: String,
    pub attempt_id: String,
    pub epoch: u64,
}

/// A job handed to a worker by [`Store::claim`](crate::store::Store::claim).
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub job: Job,
    pub fence: Fence,
}

/// A registered worker process.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRecord {
    /// Server-assigned (UUID), one per registration.
    pub id: String,
    pub name: String,
    pub boot_id: String,
    /// Capabilities as JSON, for operators.
    pub capabilities_json: String,
    pub slots: u32,
    pub registered_ms: Millis,
    pub last_seen_ms: Millis,
    /// The coordinator asks it to finish running work and leave.
    pub draining: bool,
}

/// Progress a worker reports for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptProgress {
    pub fence: Fence,
    pub progress: f32,
    pub stage: String,
}
