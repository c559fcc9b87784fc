//! The job store: one trait, two backends (SQLite embedded, PostgreSQL shared), one test suite.
//!
//! Rows in the database are the single source of truth: jobs, attempts' fences, leases,
//! per-tenant running counts, template versions and aliases, workers, the outbox. Every
//! transition is one transaction and a compare-and-set on `(job id, attempt id, lease epoch,
//! state)`; a write for an attempt that is not current fails with [`StoreError::StaleFence`].
//!
//! Backends run the shared decisions of [`crate::lifecycle`] inside their transactions.

mod sql;

use async_trait::async_trait;

use crate::lifecycle::{LeasePolicy, RetryPolicy};
use crate::model::{
    ApiKeyInfo, ArtifactKind, AttemptProgress, Claim, FailureClass, Fence, Job, JobState, Millis,
    NewJob, NewTemplate, OutputFile, TemplateRecord, TemplateRef, Tenant, WorkerRecord,
};

pub use sql::{PostgresStore, SqliteStore};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name is taken (tenant name).
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    /// A write named an attempt that is no longer the render's current one, or a render that
    /// is not running.
    #[error("attempt {attempt_id} of render {job_id} (epoch {epoch}) is not current")]
    StaleFence {
        job_id: String,
        attempt_id: String,
        epoch: u64,
    },
    /// The thing a write needs does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The database is busy or unreachable; the outcome is unknown and the call may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else from the database (a bug or a corrupt row).
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlstore::Error> for StoreError {
    fn from(e: sqlstore::Error) -> Self {
        match e {
            sqlstore::Error::Unavailable(m) => StoreError::Unavailable(m),
            sqlstore::Error::Database(m) => StoreError::Database(m),
        }
    }
}

/// Result of submitting one render.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// A new render was queued.
    Created(Job),
    /// The key was known with the same request hash: the existing render.
    Existing(Job),
    /// The key was known with a different request hash.
    Conflict { existing_id: String },
}

/// Result of completing an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Completed {
    /// The attempt's outputs are now the render's; the render succeeded.
    Committed(Job),
    /// This attempt had already completed the render: nothing changed.
    Duplicate(Job),
}

/// Result of failing an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Failed {
    /// Back in the queue (not before `job.not_before_ms`).
    Requeued(Job),
    /// Terminal failure.
    Failed(Job),
    /// This attempt had already been failed: nothing changed.
    Duplicate(Job),
}

/// Result of a heartbeat.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Beat {
    /// The worker id is unknown (or was released): it must register again.
    pub unknown_worker: bool,
    /// Asked to drain.
    pub draining: bool,
    /// Leases renewed until `now + lease_ttl_ms`.
    pub renewed: Vec<Fence>,
    /// Attempts that are not current any more (cancelled, failed over, past deadline).
    pub stop: Vec<Fence>,
}

/// What a sweep of expired leases and deadlines did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Swept {
    /// Running renders whose lease ran out, put back in the queue.
    pub requeued: Vec<String>,
    /// Renders failed: deadline passed, or infrastructure budget used up.
    pub failed: Vec<String>,
    /// Workers not seen for a lease TTL, removed.
    pub workers_removed: u32,
}

/// Counts for metrics and backpressure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueStats {
    /// Queued renders per lane, indexed by [`Lane::as_i64`](crate::model::Lane::as_i64).
    pub queued: [u64; 2],
    pub running: u64,
    pub workers: u64,
    /// Sum of registered workers' slots.
    pub slots: u64,
}

/// Page cursor for [`Store::list_jobs`]: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    pub created_ms: Millis,
    pub id: String,
}

/// One row of the delivery outbox: a render reached a terminal state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Monotonic per store.
    pub seq: i64,
    pub job_id: String,
    pub tenant_id: String,
    pub state: JobState,
    pub created_ms: Millis,
}

/// A finished render whose attempts may have left files that are not its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftover {
    pub job_id: String,
    pub tenant_id: String,
    /// The attempt whose files are the render's output (a succeeded render's); every other
    /// attempt's files are leftovers.
    pub keep_attempt: Option<String>,
}

/// The job store. All methods are one transaction each.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Backend name for logs and metrics (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// What the store's writer has had to repair (exported as a metric).
    fn health(&self) -> std::sync::Arc<sqlstore::Health>;

    // ---- tenants and API keys ----

    /// Creates a tenant; [`StoreError::AlreadyExists`] when the name is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>>;
    /// Stores an API key's hash (lowercase hex SHA-256 of the secret) for a tenant.
    async fn add_api_key(&self, tenant_id: &str, key_hash: &str, now: Millis) -> StoreResult<()>;
    /// The tenant whose key hashes to `key_hash`.
    async fn tenant_by_key(&self, key_hash: &str) -> StoreResult<Option<Tenant>>;
    async fn tenant_by_id(&self, id: &str) -> StoreResult<Option<Tenant>>;
    /// The tenant's API keys (ids and creation times; the keys themselves are not stored).
    async fn api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyInfo>>;
    /// Deletes the tenant's key with id `id`; how many keys went (0: none had that id).
    async fn revoke_api_key(&self, tenant_id: &str, id: &str) -> StoreResult<u64>;

    // ---- templates ----

    /// Stores a new version (`max(version) + 1` for the tenant and name) and returns it with
    /// `true`; when the same digest is already stored for the tenant and name, returns that
    /// version and `false`.
    async fn insert_template(&self, new: &NewTemplate) -> StoreResult<(TemplateRecord, bool)>;
    async fn template(
        &self,
        tenant_id: &str,
        r: &TemplateRef,
    ) -> StoreResult<Option<TemplateRecord>>;
    /// Newest version of each template name, ordered by name, names after `after`.
    async fn list_templates(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<TemplateRecord>>;
    /// Points `alias` of `name` at `version` (creates or moves it); NotFound if the version
    /// does not exist.
    async fn set_alias(
        &self,
        tenant_id: &str,
        name: &str,
        alias: &str,
        version: u32,
    ) -> StoreResult<TemplateRecord>;

    // ---- submission and reads ----

    /// Submits renders in one transaction, in order; each is looked up by (tenant,
    /// idempotency key) first. A unique index on that pair backs it.
    async fn submit(&self, jobs: &[NewJob]) -> StoreResult<Vec<Submitted>>;
    /// A render, only if it belongs to `tenant_id` (any tenant when `None`).
    async fn job(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<Job>>;
    /// A tenant's renders newest first (created_ms desc, then submission order desc), after `cursor`.
    async fn list_jobs(
        &self,
        tenant_id: &str,
        state: Option<JobState>,
        cursor: Option<&JobCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// Cancels a queued or running render (running: its lease is dropped so the worker's next
    /// heartbeat stops it). A terminal render is returned unchanged. None if not found.
    async fn cancel(&self, tenant_id: &str, id: &str, now: Millis) -> StoreResult<Option<Job>>;

    // ---- workers ----

    /// Registers a worker process. Renders still leased to earlier registrations of the same
    /// `name` with another `boot_id` are requeued at once (an infrastructure failure each) and
    /// those registrations removed. Returns the requeued render ids.
    async fn register_worker(
        &self,
        worker: &WorkerRecord,
        retry: &RetryPolicy,
    ) -> StoreResult<Vec<String>>;
    /// Removes a worker; its running renders go back to the queue without charging a retry.
    async fn deregister_worker(&self, worker_id: &str, now: Millis) -> StoreResult<Vec<String>>;
    /// Asks a worker to drain (finish, then leave).
    async fn set_draining(&self, worker_id: &str, draining: bool) -> StoreResult<bool>;
    async fn worker(&self, worker_id: &str) -> StoreResult<Option<WorkerRecord>>;

    /// Claims up to `max` queued renders for `worker_id`: real-time lane first; within a lane
    /// tenants with the fewest running renders first, never above a tenant's `max_running`;
    /// FIFO within a tenant; only renders with `not_before_ms <= now` and `deadline_ms > now`.
    /// Each claim mints a new attempt id, bumps the lease epoch, counts an attempt and sets the
    /// lease to `now + lease_ttl_ms`. Empty when the worker is unknown or draining.
    async fn claim(
        &self,
        worker_id: &str,
        max: u32,
        now: Millis,
        lease: &LeasePolicy,
    ) -> StoreResult<Vec<Claim>>;
    /// Renews the leases of the listed attempts that are still current and held by this worker
    /// (recording their progress); lists the others to stop. Updates the worker's last-seen.
    async fn heartbeat(
        &self,
        worker_id: &str,
        running: &[AttemptProgress],
        now: Millis,
        lease: &LeasePolicy,
    ) -> StoreResult<Beat>;
    /// Records an uploaded output file of a current attempt (replacing an earlier upload of the
    /// same artifact by the same attempt). StaleFence if the attempt is not current.
    async fn record_output(
        &self,
        fence: &Fence,
        artifact: ArtifactKind,
        file: &OutputFile,
    ) -> StoreResult<()>;
    /// Records that a current attempt has published its live stream's playlist (the render's
    /// stream is that attempt's from now on). Idempotent; StaleFence if the attempt is not
    /// current.
    async fn set_stream(&self, fence: &Fence) -> StoreResult<()>;
    /// Commits a current attempt: the render succeeds with the attempt's recorded outputs,
    /// the tenant's running count drops, and an outbox event is written, in one transaction.
    /// Completing an attempt that already completed the render is a Duplicate; any other
    /// non-current attempt is StaleFence.
    async fn complete(
        &self,
        fence: &Fence,
        warnings: &[String],
        stage_seconds: &std::collections::BTreeMap<String, f64>,
        now: Millis,
    ) -> StoreResult<Completed>;
    /// Fails a current attempt; [`RetryPolicy::after_failure`] decides requeue or failure
    /// (`jitter` in [0, 1]). A terminal failure writes an outbox event.
    #[allow(clippy::too_many_arguments)]
    async fn fail(
        &self,
        fence: &Fence,
        class: FailureClass,
        message: &str,
        now: Millis,
        retry: &RetryPolicy,
        jitter: f64,
    ) -> StoreResult<Failed>;
    /// Requeues running renders whose lease expired before `now` (an infrastructure failure
    /// each, failing those over budget), fails queued or running renders whose deadline
    /// passed, and removes workers not seen since `now - lease_ttl_ms` (their renders'
    /// leases expire on their own).
    async fn sweep(
        &self,
        now: Millis,
        lease: &LeasePolicy,
        retry: &RetryPolicy,
    ) -> StoreResult<Swept>;

    // ---- operators ----

    async fn stats(&self) -> StoreResult<QueueStats>;
    /// Answers when the database does (readiness probes).
    async fn ping(&self) -> StoreResult<()>;
    /// Outbox events after `after_seq`, oldest first; one tenant's only when `tenant_id` is set.
    async fn outbox_after(
        &self,
        tenant_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// [`Store::outbox_after`] restricted to renders submitted with a callback URL.
    async fn callback_outbox_after(
        &self,
        tenant_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>>;

    // ---- output cleanup ----

    /// A named position in the outbox (0 at first).
    async fn cursor(&self, name: &str) -> StoreResult<i64>;
    /// Moves a named position in the outbox.
    async fn set_cursor(&self, name: &str, seq: i64) -> StoreResult<()>;
    /// Of the next `limit` outbox rows after `after_seq`, the renders that may have files of
    /// losing attempts (more than one attempt, or failed or cancelled after one), and the seq
    /// of the last row looked at (`after_seq` when there was none).
    async fn leftovers_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Leftover>, i64)>;
    /// Forgets the recorded outputs of a render's attempts other than `keep_attempt`; returns
    /// how many rows went.
    async fn forget_outputs(&self, job_id: &str, keep_attempt: Option<&str>) -> StoreResult<u64>;
}

/// A shareable store.
pub type DynStore = std::sync::Arc<dyn Store>;

/// Opens a store from a URL: `sqlite://PATH` (created if missing) or `postgres://…`.
pub async fn open(url: &str) -> StoreResult<DynStore> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported store URL `{url}`: use sqlite://PATH or postgres://USER:PASS@HOST/DB"
        )))
    }
}
