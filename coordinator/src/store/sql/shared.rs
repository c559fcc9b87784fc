//! The [`Store`] implementation both backends share, compiled once inside each backend module
//! (see the parent module's docs for the hooks it takes from there).
//!
//! Lock order on PostgreSQL (SQLite has one writer and no row locks): worker rows, then job
//! rows, then tenant rows in id order, then the outbox lock (the last two taken by the `jobs`
//! trigger when a transaction changes one render; locked up front, in that order, when it
//! changes several). Claims wait for at most one tenant row and never for job rows
//! (`SKIP LOCKED`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use async_trait::async_trait;
use sqlx::Row;

use super::{
    begin, map_err, Backend, Conn, Db, DbRow, CLAIM_IN_TRANSACTION, MIGRATION_LOCK, NAME, SCHEMA,
    TENANT_LOCK,
};
use crate::lifecycle::{AfterFailure, LeasePolicy, RetryPolicy};
use crate::model::{
    ArtifactKind, AttemptProgress, Claim, FailureClass, Fence, Job, JobOutput, JobState, Lane,
    Millis, NewJob, NewTemplate, OutputFile, TemplateRecord, TemplateRef, Tenant, WorkerRecord,
};
use crate::store::sql::{
    corrupt, from_json, is_fk_violation, is_unique_violation, to_i64, to_json, to_u32, to_u64,
    truncate_message, SCHEMA_VERSION, UPGRADES,
};
use crate::store::{
    Beat, Completed, Failed, JobCursor, Leftover, OutboxEvent, QueueStats, Store, StoreError,
    StoreResult, Submitted, Swept,
};

type R<T> = StoreResult<T>;

/// Runs `$op` (an expression of the writer connection `$c`) to completion once started, even
/// if the caller stops waiting (`sqlstore`); captures are moved in.
macro_rules! write {
    ($store:expr, |$c:ident| $op:expr) => {
        $store
            .db
            .write(move |$c: &mut Conn| Box::pin(async move { $op.await }))
            .await
    };
}

// ---------------------------------------------------------------------------------------------
// Rows

/// A column of `row`, decoded.
fn get<'r, T>(row: &'r DbRow, column: &str) -> R<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(column)
        .map_err(|e| corrupt(format!("column {column}: {e}")))
}

fn job_from_row(r: &DbRow) -> R<Job> {
    let lane: i64 = get(r, "lane")?;
    let state: String = get(r, "state")?;
    let failure = match get::<Option<String>>(r, "failure_class")? {
        Some(class) => Some((
            class.parse::<FailureClass>().map_err(corrupt)?,
            get::<Option<String>>(r, "failure_message")?.unwrap_or_default(),
        )),
        None => None,
    };
    let attempt_id: String = get(r, "attempt_id")?;
    let output = match get::<Option<String>>(r, "stage_seconds_json")? {
        Some(stages) => Some(JobOutput {
            attempt_id: attempt_id.clone(),
            video: output_file(r, "video_key", "video_bytes", "video_sha256")?,
            poster: output_file(r, "poster_key", "poster_bytes", "poster_sha256")?,
            stage_seconds: from_json(&stages, "stage_seconds_json")?,
        }),
        None => None,
    };
    Ok(Job {
        id: get(r, "id")?,
        tenant_id: get(r, "tenant_id")?,
        idempotency_key: get(r, "idempotency_key")?,
        request_hash: get(r, "request_hash")?,
        template_name: get(r, "template_name")?,
        template_version: to_u32(get(r, "template_version")?, "template_version")?,
        template_digest: get(r, "template_digest")?,
        lang: get(r, "lang")?,
        tokens: from_json(&get::<String>(r, "tokens_json")?, "tokens_json")?,
        preset: get(r, "preset")?,
        lane: Lane::from_i64(lane).ok_or_else(|| corrupt(format!("column lane: {lane}")))?,
        state: state.parse().map_err(corrupt)?,
        created_ms: get(r, "created_ms")?,
        updated_ms: get(r, "updated_ms")?,
        finished_ms: get(r, "finished_ms")?,
        started_ms: get(r, "started_ms")?,
        not_before_ms: get(r, "not_before_ms")?,
        deadline_ms: get(r, "deadline_ms")?,
        attempts: to_u32(get(r, "attempts")?, "attempts")?,
        app_failures: to_u32(get(r, "app_failures")?, "app_failures")?,
        infra_failures: to_u32(get(r, "infra_failures")?, "infra_failures")?,
        lease_epoch: to_u64(get(r, "lease_epoch")?, "lease_epoch")?,
        attempt_id,
        worker_id: get(r, "worker_id")?,
        lease_expires_ms: get(r, "lease_expires_ms")?,
        progress: get::<f64>(r, "progress")? as f32,
        stage: get(r, "stage")?,
        failure,
        warnings: from_json(&get::<String>(r, "warnings_json")?, "warnings_json")?,
        output,
    })
}

/// A committed output file, if the attempt recorded one.
fn output_file(r: &DbRow, key: &str, bytes: &str, sha256: &str) -> R<Option<OutputFile>> {
    let Some(blob_key) = get::<Option<String>>(r, key)? else {
        return Ok(None);
    };
    Ok(Some(OutputFile {
        blob_key,
        bytes: to_u64(get::<Option<i64>>(r, bytes)?.unwrap_or_default(), bytes)?,
        sha256: get::<Option<String>>(r, sha256)?.unwrap_or_default(),
    }))
}

/// The job a successful [`Store::submit`] inserted, without reading it back.
fn new_job(j: &NewJob) -> Job {
    Job {
        id: j.id.clone(),
        tenant_id: j.tenant_id.clone(),
        idempotency_key: j.idempotency_key.clone(),
        request_hash: j.request_hash.clone(),
        template_name: j.template_name.clone(),
        template_version: j.template_version,
        template_digest: j.template_digest.clone(),
        lang: j.lang.clone(),
        tokens: j.tokens.clone(),
        preset: j.preset.clone(),
        lane: j.lane,
        state: JobState::Queued,
        created_ms: j.created_ms,
        updated_ms: j.created_ms,
        finished_ms: 0,
        started_ms: 0,
        not_before_ms: 0,
        deadline_ms: j.deadline_ms,
        attempts: 0,
        app_failures: 0,
        infra_failures: 0,
        lease_epoch: 0,
        attempt_id: String::new(),
        worker_id: String::new(),
        lease_expires_ms: 0,
        progress: 0.0,
        stage: String::new(),
        failure: None,
        warnings: Vec::new(),
        output: None,
    }
}

fn tenant_from_row(r: &DbRow) -> R<Tenant> {
    Ok(Tenant {
        id: get(r, "id")?,
        name: get(r, "name")?,
        max_running: to_u32(get(r, "max_running")?, "max_running")?,
        created_ms: get(r, "created_ms")?,
    })
}

fn template_from_row(r: &DbRow) -> R<TemplateRecord> {
    Ok(TemplateRecord {
        tenant_id: get(r, "tenant_id")?,
        name: get(r, "name")?,
        version: to_u32(get(r, "version")?, "version")?,
        digest: get(r, "digest")?,
        size_bytes: to_u64(get(r, "size_bytes")?, "size_bytes")?,
        manifest_json: get(r, "manifest_json")?,
        blob_key: get(r, "blob_key")?,
        created_ms: get(r, "created_ms")?,
        aliases: Vec::new(),
    })
}

fn worker_from_row(r: &DbRow) -> R<WorkerRecord> {
    Ok(WorkerRecord {
        id: get(r, "id")?,
        name: get(r, "name")?,
        boot_id: get(r, "boot_id")?,
        capabilities_json: get(r, "capabilities_json")?,
        slots: to_u32(get(r, "slots")?, "slots")?,
        registered_ms: get(r, "registered_ms")?,
        last_seen_ms: get(r, "last_seen_ms")?,
        draining: get::<i64>(r, "draining")? != 0,
    })
}

fn stale(f: &Fence) -> StoreError {
    StoreError::StaleFence {
        job_id: f.job_id.clone(),
        attempt_id: f.attempt_id.clone(),
        epoch: f.epoch,
    }
}

fn not_found(what: impl Into<String>) -> StoreError {
    StoreError::NotFound { what: what.into() }
}

// ---------------------------------------------------------------------------------------------
// Statements used by several methods

/// Creates the schema when the database has none (in one transaction).
pub(super) async fn migrate(store: &Backend) -> R<()> {
    write!(store, |c| migrate_on(c))
}

async fn migrate_on(c: &mut Conn) -> R<()> {
    let mut tx = begin(c).await?;
    if let Some(lock) = MIGRATION_LOCK {
        sqlx::query(lock).execute(&mut *tx).await.map_err(map_err)?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    let row =
        sqlx::query("SELECT CAST(coalesce(max(version), 0) AS BIGINT) AS v FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
    let version: i64 = get(&row, "v")?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Database(format!(
            "the database has schema version {version}; this coordinator knows up to \
             {SCHEMA_VERSION}: upgrade the coordinator"
        )));
    }
    if version < 1 {
        // Through `Executor` (a boxed `Send` future): `RawSql::execute` is an `async fn` whose
        // future the compiler cannot prove `Send`, and writes run in tasks.
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(SCHEMA))
            .await
            .map_err(map_err)?;
    }
    for (from, upgrade) in (1..).zip(UPGRADES) {
        if version <= from {
            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(upgrade))
                .await
                .map_err(map_err)?;
        }
    }
    if version < SCHEMA_VERSION {
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(SCHEMA_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)
}

async fn job_by_id(c: &mut Conn, id: &str) -> R<Option<Job>> {
    let row = sqlx::query(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
    row.as_ref().map(job_from_row).transpose()
}

/// Locks the tenant rows of a transaction that changes several renders, in id order, before
/// it changes any (PostgreSQL; the `jobs` trigger then updates rows it already holds).
async fn lock_tenants(c: &mut Conn, tenant_ids: &BTreeSet<String>) -> R<()> {
    if let Some([lock, _]) = TENANT_LOCK {
        for id in tenant_ids {
            sqlx::query(lock)
                .bind(id)
                .fetch_optional(&mut *c)
                .await
                .map_err(map_err)?;
        }
    }
    Ok(())
}

/// Applies a [`RetryPolicy::after_failure`] decision to `job` as loaded (compare-and-set on
/// its attempt, epoch and state). `failed_attempt_id` is stored as the attempt whose failure
/// was reported. None when the row changed meanwhile.
#[allow(clippy::too_many_arguments)]
async fn apply_failure(
    c: &mut Conn,
    job: &Job,
    class: FailureClass,
    message: &str,
    decision: AfterFailure,
    failed_attempt_id: &str,
    now: Millis,
) -> R<Option<Job>> {
    let (state, not_before_ms, finished_ms, app, infra) = match decision {
        AfterFailure::Retry {
            not_before_ms,
            app_failures,
            infra_failures,
        } => (
            JobState::Queued,
            not_before_ms,
            0,
            app_failures,
            infra_failures,
        ),
        AfterFailure::Fail {
            app_failures,
            infra_failures,
        } => (
            JobState::Failed,
            job.not_before_ms,
            now,
            app_failures,
            infra_failures,
        ),
    };
    let row = sqlx::query(concat!(
        "UPDATE jobs SET state = $5, not_before_ms = $6, finished_ms = $7, app_failures = $8, \
         infra_failures = $9, failure_class = $10, failure_message = $11, \
         failed_attempt_id = $12, worker_id = '', lease_expires_ms = 0, updated_ms = $13 \
         WHERE id = $1 AND attempt_id = $2 AND lease_epoch = $3 AND state = $4 RETURNING ",
        job_cols!()
    ))
    .bind(&job.id)
    .bind(&job.attempt_id)
    .bind(to_i64(job.lease_epoch, "lease epoch")?)
    .bind(job.state.as_str())
    .bind(state.as_str())
    .bind(not_before_ms)
    .bind(finished_ms)
    .bind(i64::from(app))
    .bind(i64::from(infra))
    .bind(class.as_str())
    .bind(truncate_message(message))
    .bind(failed_attempt_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    row.as_ref().map(job_from_row).transpose()
}

/// What ending several attempts in one transaction did.
#[derive(Default)]
struct Ended {
    requeued: Vec<String>,
    failed: Vec<String>,
}

impl Ended {
    /// Ends `job` (queued or running, as selected with `failed_attempt_id`) with a failure of
    /// `class`; a row changed meanwhile is left alone. The caller has locked the tenants.
    #[allow(clippy::too_many_arguments)]
    async fn fail(
        &mut self,
        c: &mut Conn,
        (job, failed_attempt_id): &Selected,
        class: FailureClass,
        message: &str,
        retry: &RetryPolicy,
        jitter: f64,
        now: Millis,
    ) -> R<()> {
        let decision = retry.after_failure(job, class, now, jitter);
        // Keep the failed-attempt marker: this failure was not reported by the attempt.
        let updated =
            apply_failure(c, job, class, message, decision, failed_attempt_id, now).await?;
        match updated {
            Some(j) if j.state == JobState::Queued => self.requeued.push(j.id),
            Some(j) => self.failed.push(j.id),
            None => {}
        }
        Ok(())
    }
}

/// A render as selected for a change, with its `failed_attempt_id`.
type Selected = (Job, String);

/// Renders with their `failed_attempt_id`, and the set of their tenants.
fn jobs_and_tenants(rows: &[DbRow]) -> R<(Vec<Selected>, BTreeSet<String>)> {
    let mut jobs = Vec::with_capacity(rows.len());
    let mut tenants = BTreeSet::new();
    for row in rows {
        let job = job_from_row(row)?;
        tenants.insert(job.tenant_id.clone());
        jobs.push((job, get(row, "failed_attempt_id")?));
    }
    Ok((jobs, tenants))
}

async fn aliases_of(c: &mut Conn, tenant_id: &str, name: &str, version: u32) -> R<Vec<String>> {
    let rows = sqlx::query(
        "SELECT alias FROM template_aliases WHERE tenant_id = $1 AND name = $2 AND version = $3 \
         ORDER BY alias",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(i64::from(version))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    rows.iter().map(|r| get(r, "alias")).collect()
}

/// A template row with its aliases filled in.
async fn with_aliases(c: &mut Conn, row: Option<DbRow>) -> R<Option<TemplateRecord>> {
    let Some(row) = row else { return Ok(None) };
    let mut rec = template_from_row(&row)?;
    rec.aliases = aliases_of(c, &rec.tenant_id, &rec.name, rec.version).await?;
    Ok(Some(rec))
}

/// [`Store::insert_template`]: a concurrent insert of the same name can take the version (or
/// digest) first; the second try then sees it.
async fn insert_template_on(c: &mut Conn, new: &NewTemplate) -> R<(TemplateRecord, bool)> {
    for _ in 0..2 {
        if let Some(done) = try_insert_template(c, new).await? {
            return Ok(done);
        }
    }
    Err(StoreError::Unavailable(format!(
        "template {} is being uploaded concurrently; retry",
        new.name
    )))
}

/// One try of [`Store::insert_template`]; None when a concurrent insert won a unique key.
async fn try_insert_template(c: &mut Conn, new: &NewTemplate) -> R<Option<(TemplateRecord, bool)>> {
    let mut tx = begin(c).await?;
    let existing = sqlx::query(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates WHERE tenant_id = $1 AND name = $2 AND digest = $3"
    ))
    .bind(&new.tenant_id)
    .bind(&new.name)
    .bind(&new.digest)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    if let Some(rec) = with_aliases(&mut tx, existing).await? {
        return Ok(Some((rec, false)));
    }
    let row = sqlx::query(
        "SELECT CAST(coalesce(max(version), 0) + 1 AS BIGINT) AS next FROM templates \
         WHERE tenant_id = $1 AND name = $2",
    )
    .bind(&new.tenant_id)
    .bind(&new.name)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    let version = to_u32(get(&row, "next")?, "version")?;
    let inserted = sqlx::query(
        "INSERT INTO templates (tenant_id, name, version, digest, size_bytes, manifest_json, \
         blob_key, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&new.tenant_id)
    .bind(&new.name)
    .bind(i64::from(version))
    .bind(&new.digest)
    .bind(to_i64(new.size_bytes, "template size")?)
    .bind(&new.manifest_json)
    .bind(&new.blob_key)
    .bind(new.created_ms)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Ok(None),
        Err(e) if is_fk_violation(&e) => {
            return Err(not_found(format!("tenant {}", new.tenant_id)))
        }
        Err(e) => return Err(map_err(e)),
    }
    tx.commit().await.map_err(map_err)?;
    Ok(Some((
        TemplateRecord {
            tenant_id: new.tenant_id.clone(),
            name: new.name.clone(),
            version,
            digest: new.digest.clone(),
            size_bytes: new.size_bytes,
            manifest_json: new.manifest_json.clone(),
            blob_key: new.blob_key.clone(),
            created_ms: new.created_ms,
            aliases: Vec::new(),
        },
        true,
    )))
}

/// Claims up to `n` of one tenant's claimable renders in `lane` for `worker_id`, oldest
/// first, one statement each; returns how many.
#[allow(clippy::too_many_arguments)]
async fn claim_from_tenant(
    c: &mut Conn,
    tenant_id: &str,
    lane: Lane,
    n: i64,
    worker_id: &str,
    now: Millis,
    lease: &LeasePolicy,
    out: &mut Vec<Claim>,
) -> R<i64> {
    let expires = now + i64::from(lease.lease_ttl_ms);
    let mut claimed = 0;
    while claimed < n {
        let attempt_id = uuid::Uuid::new_v4().to_string();
        let row = sqlx::query(concat!(
            "UPDATE jobs SET state = 'running', attempt_id = $1, lease_epoch = lease_epoch + 1, \
             attempts = attempts + 1, worker_id = $2, lease_expires_ms = $3, progress = 0, \
             stage = '', updated_ms = $4, started_ms = $4 \
             WHERE state = 'queued' AND id = (SELECT q.id FROM jobs q WHERE q.state = 'queued' \
             AND q.lane = $5 AND q.tenant_id = $6 AND q.not_before_ms <= $4 \
             AND q.deadline_ms > $4 ORDER BY q.seq LIMIT 1",
            skip_locked!(),
            ") RETURNING ",
            job_cols!()
        ))
        .bind(&attempt_id)
        .bind(worker_id)
        .bind(expires)
        .bind(now)
        .bind(lane.as_i64())
        .bind(tenant_id)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { break };
        let job = job_from_row(&row)?;
        let fence = Fence {
            job_id: job.id.clone(),
            attempt_id: job.attempt_id.clone(),
            epoch: job.lease_epoch,
        };
        out.push(Claim { job, fence });
        claimed += 1;
    }
    Ok(claimed)
}

/// A tenant a claim may take work from.
struct Candidate {
    id: String,
    running: i64,
    max_running: i64,
    /// Has claimable work per lane ([`Lane::as_i64`]).
    has_work: [bool; 2],
}

/// Submits one render on `c` (inside the caller's transaction, or alone).
async fn submit_on(c: &mut Conn, j: &NewJob) -> R<Submitted> {
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, tenant_id, idempotency_key, request_hash, template_name, \
         template_version, template_digest, lang, tokens_json, preset, lane, state, \
         created_ms, updated_ms, finished_ms, not_before_ms, deadline_ms, attempts, \
         app_failures, infra_failures, lease_epoch, attempt_id, worker_id, \
         lease_expires_ms, progress, stage, failed_attempt_id, warnings_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12, $12, 0, 0, \
         $13, 0, 0, 0, 0, '', '', 0, 0, '', '', '[]') \
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
    )
    .bind(&j.id)
    .bind(&j.tenant_id)
    .bind(&j.idempotency_key)
    .bind(&j.request_hash)
    .bind(&j.template_name)
    .bind(i64::from(j.template_version))
    .bind(&j.template_digest)
    .bind(&j.lang)
    .bind(to_json(&j.tokens)?)
    .bind(&j.preset)
    .bind(j.lane.as_i64())
    .bind(j.created_ms)
    .bind(j.deadline_ms)
    .execute(&mut *c)
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 1 => return Ok(Submitted::Created(new_job(j))),
        Ok(_) => {}
        Err(e) if is_fk_violation(&e) => return Err(not_found(format!("tenant {}", j.tenant_id))),
        Err(e) => return Err(map_err(e)),
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        job_cols!(),
        " FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2"
    ))
    .bind(&j.tenant_id)
    .bind(&j.idempotency_key)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    let Some(row) = row else {
        // The conflicting row is not visible (it was rolled back meanwhile).
        return Err(StoreError::Unavailable(
            "idempotency key raced with another submit; retry".into(),
        ));
    };
    let existing = job_from_row(&row)?;
    Ok(if existing.request_hash == j.request_hash {
        Submitted::Existing(existing)
    } else {
        Submitted::Conflict {
            existing_id: existing.id,
        }
    })
}

/// The claim algorithm of [`Store::claim`], on `c`.
async fn claim_on(
    c: &mut Conn,
    worker_id: &str,
    max: u32,
    now: Millis,
    lease: &LeasePolicy,
) -> R<Vec<Claim>> {
    // Tenants under their cap with claimable work, fewest running first; none when the
    // worker is unknown or draining.
    let rows = sqlx::query(
        "SELECT t.id, t.running, t.max_running, \
         EXISTS (SELECT 1 FROM jobs j WHERE j.state = 'queued' AND j.lane = 0 \
           AND j.tenant_id = t.id AND j.not_before_ms <= $2 AND j.deadline_ms > $2) \
           AS realtime, \
         EXISTS (SELECT 1 FROM jobs j WHERE j.state = 'queued' AND j.lane = 1 \
           AND j.tenant_id = t.id AND j.not_before_ms <= $2 AND j.deadline_ms > $2) \
           AS bulk \
         FROM tenants t WHERE t.running < t.max_running \
         AND EXISTS (SELECT 1 FROM workers w WHERE w.id = $1 AND w.draining = 0) \
         ORDER BY t.running, t.id",
    )
    .bind(worker_id)
    .bind(now)
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    let mut tenants = rows
        .iter()
        .map(|r| {
            Ok(Candidate {
                id: get(r, "id")?,
                running: get(r, "running")?,
                max_running: get(r, "max_running")?,
                has_work: [get(r, "realtime")?, get(r, "bulk")?],
            })
        })
        .collect::<R<Vec<_>>>()?;
    let mut remaining = i64::from(max);
    let mut claims = Vec::new();
    // PostgreSQL: tenant rows this claim holds.
    let mut locked: HashSet<String> = HashSet::new();
    for lane in Lane::ALL {
        // Counts include what this claim took in the earlier lane.
        tenants.sort_by(|a, b| (a.running, &a.id).cmp(&(b.running, &b.id)));
        for t in tenants.iter_mut() {
            if remaining == 0 {
                break;
            }
            let lane_index = usize::from(lane == Lane::Bulk);
            if !t.has_work[lane_index] || t.running >= t.max_running {
                continue;
            }
            if let Some([wait, skip]) = TENANT_LOCK {
                // Wait for the first tenant row only; skip tenants others hold after
                // that, so claims never wait for each other in a cycle.
                let sql = if locked.is_empty() || locked.contains(&t.id) {
                    wait
                } else {
                    skip
                };
                let row = sqlx::query(sql)
                    .bind(&t.id)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else { continue };
                t.running = get(&row, "running")?;
                t.max_running = get(&row, "max_running")?;
                locked.insert(t.id.clone());
            }
            let n = remaining.min(t.max_running - t.running);
            if n <= 0 {
                continue;
            }
            let got =
                claim_from_tenant(c, &t.id, lane, n, worker_id, now, lease, &mut claims).await?;
            t.running += got;
            remaining -= got;
        }
    }
    Ok(claims)
}

// ---------------------------------------------------------------------------------------------
// Writes: each runs on the writer connection to completion (see `sqlstore`)

async fn create_tenant_on(c: &mut Conn, tenant: &Tenant) -> R<()> {
    let res = sqlx::query(
        "INSERT INTO tenants (id, name, max_running, running, created_ms) \
         VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(&tenant.id)
    .bind(&tenant.name)
    .bind(i64::from(tenant.max_running))
    .bind(tenant.created_ms)
    .execute(&mut *c)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
            what: format!("tenant {}", tenant.name),
        }),
        Err(e) => Err(map_err(e)),
    }
}

async fn add_api_key_on(c: &mut Conn, tenant_id: &str, key_hash: &str, now: Millis) -> R<()> {
    let res =
        sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, created_ms) VALUES ($1, $2, $3)")
            .bind(key_hash)
            .bind(tenant_id)
            .bind(now)
            .execute(&mut *c)
            .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
            what: "api key".into(),
        }),
        Err(e) if is_fk_violation(&e) => Err(not_found(format!("tenant {tenant_id}"))),
        Err(e) => Err(map_err(e)),
    }
}

async fn set_alias_on(
    c: &mut Conn,
    tenant_id: &str,
    name: &str,
    alias: &str,
    version: u32,
) -> R<TemplateRecord> {
    let mut tx = begin(c).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates WHERE tenant_id = $1 AND name = $2 AND version = $3"
    ))
    .bind(tenant_id)
    .bind(name)
    .bind(i64::from(version))
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    let Some(row) = row else {
        return Err(not_found(format!("template {name}@{version}")));
    };
    sqlx::query(
        "INSERT INTO template_aliases (tenant_id, name, alias, version) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, name, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(alias)
    .bind(i64::from(version))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let rec = with_aliases(&mut tx, Some(row))
        .await?
        .ok_or_else(|| corrupt("template vanished"))?;
    tx.commit().await.map_err(map_err)?;
    Ok(rec)
}

async fn submit_all_on(c: &mut Conn, jobs: &[NewJob]) -> R<Vec<Submitted>> {
    if let [j] = jobs {
        // One statement in the common case: no explicit transaction needed.
        return Ok(vec![submit_on(c, j).await?]);
    }
    let mut tx = begin(c).await?;
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        out.push(submit_on(&mut tx, j).await?);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(out)
}

async fn cancel_on(c: &mut Conn, tenant_id: &str, id: &str, now: Millis) -> R<Option<Job>> {
    let mut tx = begin(c).await?;
    // Compare-and-set on the state read; another transition in between means read again.
    for _ in 0..8 {
        let Some(job) = job_by_id(&mut tx, id).await? else {
            return Ok(None);
        };
        if job.tenant_id != tenant_id {
            return Ok(None);
        }
        if job.state.is_terminal() {
            return Ok(Some(job));
        }
        let row = sqlx::query(concat!(
            "UPDATE jobs SET state = 'cancelled', finished_ms = $3, updated_ms = $3, \
             worker_id = '', lease_expires_ms = 0 WHERE id = $1 AND state = $2 RETURNING ",
            job_cols!()
        ))
        .bind(id)
        .bind(job.state.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { continue };
        let cancelled = job_from_row(&row)?;
        tx.commit().await.map_err(map_err)?;
        return Ok(Some(cancelled));
    }
    Err(StoreError::Unavailable(format!(
        "render {id} kept changing during cancel; retry"
    )))
}

async fn register_worker_on(
    c: &mut Conn,
    worker: &WorkerRecord,
    retry: &RetryPolicy,
) -> R<Vec<String>> {
    let now = worker.registered_ms;
    let mut tx = begin(c).await?;
    let res = sqlx::query(
        "INSERT INTO workers (id, name, boot_id, capabilities_json, slots, registered_ms, \
         last_seen_ms, draining) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&worker.id)
    .bind(&worker.name)
    .bind(&worker.boot_id)
    .bind(&worker.capabilities_json)
    .bind(i64::from(worker.slots))
    .bind(worker.registered_ms)
    .bind(worker.last_seen_ms)
    .bind(i64::from(worker.draining))
    .execute(&mut *tx)
    .await;
    match res {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists {
                what: format!("worker {}", worker.id),
            })
        }
        Err(e) => return Err(map_err(e)),
    }
    // Earlier registrations of this name from another boot cannot be running anything.
    let old = sqlx::query(
        "DELETE FROM workers WHERE name = $1 AND boot_id <> $2 AND id <> $3 RETURNING id",
    )
    .bind(&worker.name)
    .bind(&worker.boot_id)
    .bind(&worker.id)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    // Their renders: lock the rows, then their tenants, then change them.
    let mut rows = Vec::new();
    for row in &old {
        let old_id: String = get(row, "id")?;
        rows.extend(
            sqlx::query(concat!(
                "SELECT ",
                job_cols!(),
                " FROM jobs WHERE state = 'running' AND worker_id = $1 ORDER BY id",
                for_update!()
            ))
            .bind(&old_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?,
        );
    }
    let (jobs, tenants) = jobs_and_tenants(&rows)?;
    lock_tenants(&mut tx, &tenants).await?;
    let mut ended = Ended::default();
    let message = format!("worker {} restarted", worker.name);
    for job in &jobs {
        let jitter = rand::random::<f64>();
        ended
            .fail(
                &mut tx,
                job,
                FailureClass::Infrastructure,
                &message,
                retry,
                jitter,
                now,
            )
            .await?;
    }
    tx.commit().await.map_err(map_err)?;
    Ok(ended.requeued)
}

async fn deregister_worker_on(c: &mut Conn, worker_id: &str, now: Millis) -> R<Vec<String>> {
    let mut tx = begin(c).await?;
    sqlx::query("DELETE FROM workers WHERE id = $1")
        .bind(worker_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    // Lock its renders, then their tenants (lock order), then requeue them.
    let rows = sqlx::query(concat!(
        "SELECT tenant_id FROM jobs WHERE state = 'running' AND worker_id = $1 ORDER BY id",
        for_update!()
    ))
    .bind(worker_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let tenants = rows
        .iter()
        .map(|r| get(r, "tenant_id"))
        .collect::<R<BTreeSet<String>>>()?;
    lock_tenants(&mut tx, &tenants).await?;
    // Back to the queue without charging the render: counters stay as they are.
    let rows = sqlx::query(
        "UPDATE jobs SET state = 'queued', not_before_ms = $2, worker_id = '', \
         lease_expires_ms = 0, progress = 0, stage = '', updated_ms = $2 \
         WHERE state = 'running' AND worker_id = $1 RETURNING id",
    )
    .bind(worker_id)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let mut ids = rows
        .iter()
        .map(|r| get(r, "id"))
        .collect::<R<Vec<String>>>()?;
    tx.commit().await.map_err(map_err)?;
    ids.sort();
    Ok(ids)
}

async fn set_draining_on(c: &mut Conn, worker_id: &str, draining: bool) -> R<bool> {
    let done = sqlx::query("UPDATE workers SET draining = $2 WHERE id = $1")
        .bind(worker_id)
        .bind(i64::from(draining))
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected() > 0)
}

async fn claim_up_to_on(
    c: &mut Conn,
    worker_id: &str,
    max: u32,
    now: Millis,
    lease: &LeasePolicy,
) -> R<Vec<Claim>> {
    if max == 0 {
        return Ok(Vec::new());
    }
    if !CLAIM_IN_TRANSACTION {
        return claim_on(c, worker_id, max, now, lease).await;
    }
    let mut tx = begin(c).await?;
    let claims = claim_on(&mut tx, worker_id, max, now, lease).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(claims)
}

async fn heartbeat_on(
    c: &mut Conn,
    worker_id: &str,
    running: &[AttemptProgress],
    now: Millis,
    lease: &LeasePolicy,
) -> R<Beat> {
    let mut tx = begin(c).await?;
    let worker =
        sqlx::query("UPDATE workers SET last_seen_ms = $2 WHERE id = $1 RETURNING draining")
            .bind(worker_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
    let Some(worker) = worker else {
        return Ok(Beat {
            unknown_worker: true,
            draining: false,
            renewed: Vec::new(),
            stop: running.iter().map(|p| p.fence.clone()).collect(),
        });
    };
    let mut beat = Beat {
        draining: get::<i64>(&worker, "draining")? != 0,
        ..Beat::default()
    };
    let expires = now + i64::from(lease.lease_ttl_ms);
    for p in running {
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_ms = $5, progress = $6, stage = $7, \
             updated_ms = $8 WHERE id = $1 AND attempt_id = $2 AND lease_epoch = $3 \
             AND state = 'running' AND worker_id = $4",
        )
        .bind(&p.fence.job_id)
        .bind(&p.fence.attempt_id)
        .bind(to_i64(p.fence.epoch, "lease epoch")?)
        .bind(worker_id)
        .bind(expires)
        .bind(f64::from(p.progress))
        .bind(&p.stage)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            beat.renewed.push(p.fence.clone());
        } else {
            beat.stop.push(p.fence.clone());
        }
    }
    tx.commit().await.map_err(map_err)?;
    Ok(beat)
}

async fn record_output_on(
    c: &mut Conn,
    fence: &Fence,
    artifact: ArtifactKind,
    file: &OutputFile,
) -> R<()> {
    let done = sqlx::query(
        "INSERT INTO outputs (attempt_id, artifact, job_id, blob_key, bytes, sha256) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $3 \
         AND attempt_id = $1 AND lease_epoch = $7 AND state = 'running') \
         ON CONFLICT (attempt_id, artifact) DO UPDATE SET blob_key = excluded.blob_key, \
         bytes = excluded.bytes, sha256 = excluded.sha256",
    )
    .bind(&fence.attempt_id)
    .bind(artifact.as_str())
    .bind(&fence.job_id)
    .bind(&file.blob_key)
    .bind(to_i64(file.bytes, "output size")?)
    .bind(&file.sha256)
    .bind(to_i64(fence.epoch, "lease epoch")?)
    .execute(&mut *c)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(stale(fence));
    }
    Ok(())
}

async fn complete_on(
    c: &mut Conn,
    fence: &Fence,
    warnings: &[String],
    stage_seconds: &BTreeMap<String, f64>,
    now: Millis,
) -> R<Completed> {
    // One statement: the attempt's recorded outputs become the render's, and the `jobs`
    // trigger drops the tenant's running count and writes the outbox row.
    let row = sqlx::query(concat!(
        "UPDATE jobs SET state = 'succeeded', finished_ms = $4, updated_ms = $4, \
         worker_id = '', lease_expires_ms = 0, progress = 1, warnings_json = $5, \
         stage_seconds_json = $6, \
         video_key = (SELECT o.blob_key FROM outputs o \
            WHERE o.attempt_id = $2 AND o.artifact = 'video'), \
         video_bytes = (SELECT o.bytes FROM outputs o \
            WHERE o.attempt_id = $2 AND o.artifact = 'video'), \
         video_sha256 = (SELECT o.sha256 FROM outputs o \
            WHERE o.attempt_id = $2 AND o.artifact = 'video'), \
         poster_key = (SELECT o.blob_key FROM outputs o \
            WHERE o.attempt_id = $2 AND o.artifact = 'poster'), \
         poster_bytes = (SELECT o.bytes FROM outputs o \
            WHERE o.attempt_id = $2 AND o.artifact = 'poster'), \
         poster_sha256 = (SELECT o.sha256 FROM outputs o \
            WHERE o.attempt_id = $2 AND o.artifact = 'poster') \
         WHERE id = $1 AND attempt_id = $2 AND lease_epoch = $3 AND state = 'running' \
         RETURNING ",
        job_cols!()
    ))
    .bind(&fence.job_id)
    .bind(&fence.attempt_id)
    .bind(to_i64(fence.epoch, "lease epoch")?)
    .bind(now)
    .bind(to_json(warnings)?)
    .bind(to_json(stage_seconds)?)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    if let Some(row) = row {
        return Ok(Completed::Committed(job_from_row(&row)?));
    }
    let job = job_by_id(c, &fence.job_id)
        .await?
        .ok_or_else(|| not_found(format!("render {}", fence.job_id)))?;
    if job.state == JobState::Succeeded && job.attempt_id == fence.attempt_id {
        return Ok(Completed::Duplicate(job));
    }
    Err(stale(fence))
}

async fn fail_on(
    c: &mut Conn,
    fence: &Fence,
    class: FailureClass,
    message: &str,
    now: Millis,
    retry: &RetryPolicy,
    jitter: f64,
) -> R<Failed> {
    let mut tx = begin(c).await?;
    let row = sqlx::query(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
        .bind(&fence.job_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
    let Some(row) = row else {
        return Err(not_found(format!("render {}", fence.job_id)));
    };
    let job = job_from_row(&row)?;
    let current = job.state == JobState::Running
        && job.attempt_id == fence.attempt_id
        && job.lease_epoch == fence.epoch;
    if !current {
        let failed_attempt: String = get(&row, "failed_attempt_id")?;
        if failed_attempt == fence.attempt_id {
            return Ok(Failed::Duplicate(job));
        }
        return Err(stale(fence));
    }
    let decision = retry.after_failure(&job, class, now, jitter);
    let updated = apply_failure(
        &mut tx,
        &job,
        class,
        message,
        decision,
        &fence.attempt_id,
        now,
    )
    .await?
    .ok_or_else(|| stale(fence))?;
    tx.commit().await.map_err(map_err)?;
    Ok(match updated.state {
        JobState::Queued => Failed::Requeued(updated),
        _ => Failed::Failed(updated),
    })
}

async fn sweep_on(c: &mut Conn, now: Millis, lease: &LeasePolicy, retry: &RetryPolicy) -> R<Swept> {
    let mut tx = begin(c).await?;
    // Workers first (lock order). Their renders' leases expire on their own.
    let removed = sqlx::query("DELETE FROM workers WHERE last_seen_ms < $1 RETURNING id, name")
        .bind(now - i64::from(lease.lease_ttl_ms))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
    let mut names = BTreeMap::new();
    for row in &removed {
        names.insert(get::<String>(row, "id")?, get::<String>(row, "name")?);
    }
    // Lock every row this sweep changes before changing any (PostgreSQL).
    let past_deadline = sqlx::query(concat!(
        "SELECT ",
        job_cols!(),
        " FROM jobs WHERE state IN ('queued', 'running') AND deadline_ms <= $1 ORDER BY seq",
        skip_locked!()
    ))
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let expired = sqlx::query(concat!(
        "SELECT ",
        job_cols!(),
        ", (SELECT w.name FROM workers w WHERE w.id = jobs.worker_id) AS worker_name \
         FROM jobs WHERE state = 'running' AND lease_expires_ms < $1 AND deadline_ms > $1 \
         ORDER BY seq",
        skip_locked!()
    ))
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let (past_deadline, mut tenants) = jobs_and_tenants(&past_deadline)?;
    for row in &expired {
        let id: String = get(row, "worker_id")?;
        if let Some(name) = get::<Option<String>>(row, "worker_name")? {
            names.insert(id, name);
        }
    }
    let (expired, expired_tenants) = jobs_and_tenants(&expired)?;
    tenants.extend(expired_tenants);
    lock_tenants(&mut tx, &tenants).await?;
    let mut ended = Ended::default();
    for job in &past_deadline {
        ended
            .fail(
                &mut tx,
                job,
                FailureClass::DeadlineExceeded,
                "deadline passed",
                retry,
                1.0,
                now,
            )
            .await?;
    }
    for job in &expired {
        let worker = names.get(&job.0.worker_id).unwrap_or(&job.0.worker_id);
        let message = format!("lease expired on worker {worker}");
        let jitter = rand::random::<f64>();
        ended
            .fail(
                &mut tx,
                job,
                FailureClass::Infrastructure,
                &message,
                retry,
                jitter,
                now,
            )
            .await?;
    }
    tx.commit().await.map_err(map_err)?;
    Ok(Swept {
        requeued: ended.requeued,
        failed: ended.failed,
        workers_removed: u32::try_from(removed.len()).unwrap_or(u32::MAX),
    })
}

#[async_trait]
impl Store for Backend {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn health(&self) -> std::sync::Arc<sqlstore::Health> {
        self.db.health()
    }

    async fn create_tenant(&self, tenant: &Tenant) -> R<()> {
        let tenant = tenant.clone();
        write!(self, |c| create_tenant_on(c, &tenant))
    }

    async fn tenant_by_name(&self, name: &str) -> R<Option<Tenant>> {
        let row =
            sqlx::query("SELECT id, name, max_running, created_ms FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *self.read_conn().await?)
                .await
                .map_err(map_err)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn add_api_key(&self, tenant_id: &str, key_hash: &str, now: Millis) -> R<()> {
        let (tenant_id, key_hash) = (tenant_id.to_owned(), key_hash.to_owned());
        write!(self, |c| add_api_key_on(c, &tenant_id, &key_hash, now))
    }

    async fn tenant_by_key(&self, key_hash: &str) -> R<Option<Tenant>> {
        let row = sqlx::query(
            "SELECT t.id, t.name, t.max_running, t.created_ms FROM api_keys k \
             JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(&mut *self.read_conn().await?)
        .await
        .map_err(map_err)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn insert_template(&self, new: &NewTemplate) -> R<(TemplateRecord, bool)> {
        let new = new.clone();
        write!(self, |c| insert_template_on(c, &new))
    }

    async fn template(&self, tenant_id: &str, r: &TemplateRef) -> R<Option<TemplateRecord>> {
        let mut c = self.read_conn().await?;
        let row = match r {
            TemplateRef::Latest(name) => sqlx::query(concat!(
                "SELECT ",
                template_cols!(),
                " FROM templates WHERE tenant_id = $1 AND name = $2 \
                 ORDER BY version DESC LIMIT 1"
            ))
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(&mut *c)
            .await
            .map_err(map_err)?,
            TemplateRef::Version(name, version) => sqlx::query(concat!(
                "SELECT ",
                template_cols!(),
                " FROM templates WHERE tenant_id = $1 AND name = $2 AND version = $3"
            ))
            .bind(tenant_id)
            .bind(name)
            .bind(i64::from(*version))
            .fetch_optional(&mut *c)
            .await
            .map_err(map_err)?,
            TemplateRef::Alias(name, alias) => sqlx::query(concat!(
                "SELECT ",
                template_cols!(),
                " FROM templates WHERE tenant_id = $1 AND name = $2 AND version = \
                 (SELECT a.version FROM template_aliases a \
                  WHERE a.tenant_id = $1 AND a.name = $2 AND a.alias = $3)"
            ))
            .bind(tenant_id)
            .bind(name)
            .bind(alias)
            .fetch_optional(&mut *c)
            .await
            .map_err(map_err)?,
        };
        with_aliases(&mut c, row).await
    }

    async fn list_templates(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> R<Vec<TemplateRecord>> {
        let mut c = self.read_conn().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            template_cols!(),
            " FROM templates t WHERE tenant_id = $1 AND name > $2 AND version = \
             (SELECT max(m.version) FROM templates m \
              WHERE m.tenant_id = t.tenant_id AND m.name = t.name) \
             ORDER BY name LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await
        .map_err(map_err)?;
        let mut records = rows.iter().map(template_from_row).collect::<R<Vec<_>>>()?;
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            let aliases = sqlx::query(
                "SELECT name, version, alias FROM template_aliases \
                 WHERE tenant_id = $1 AND name >= $2 AND name <= $3 ORDER BY alias",
            )
            .bind(tenant_id)
            .bind(first.name.clone())
            .bind(last.name.clone())
            .fetch_all(&mut *c)
            .await
            .map_err(map_err)?;
            let mut by_version: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
            for row in &aliases {
                by_version
                    .entry((get(row, "name")?, get(row, "version")?))
                    .or_default()
                    .push(get(row, "alias")?);
            }
            for rec in &mut records {
                if let Some(list) = by_version.remove(&(rec.name.clone(), i64::from(rec.version))) {
                    rec.aliases = list;
                }
            }
        }
        Ok(records)
    }

    async fn set_alias(
        &self,
        tenant_id: &str,
        name: &str,
        alias: &str,
        version: u32,
    ) -> R<TemplateRecord> {
        let (tenant_id, name, alias) = (tenant_id.to_owned(), name.to_owned(), alias.to_owned());
        write!(self, |c| set_alias_on(
            c, &tenant_id, &name, &alias, version
        ))
    }

    async fn submit(&self, jobs: &[NewJob]) -> R<Vec<Submitted>> {
        let jobs = jobs.to_vec();
        write!(self, |c| submit_all_on(c, &jobs))
    }

    async fn job(&self, tenant_id: Option<&str>, id: &str) -> R<Option<Job>> {
        let mut c = self.read_conn().await?;
        let job = job_by_id(&mut c, id).await?;
        Ok(job.filter(|j| tenant_id.is_none_or(|t| t == j.tenant_id)))
    }

    async fn list_jobs(
        &self,
        tenant_id: &str,
        state: Option<JobState>,
        cursor: Option<&JobCursor>,
        limit: u32,
    ) -> R<Vec<Job>> {
        let (before_ms, before_id) = match cursor {
            Some(c) => (c.created_ms, c.id.as_str()),
            None => (i64::MAX, ""),
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_cols!(),
            " FROM jobs WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
             AND (created_ms < $3 OR (created_ms = $3 AND id < $4)) \
             ORDER BY created_ms DESC, id DESC LIMIT $5"
        ))
        .bind(tenant_id)
        .bind(state.map(JobState::as_str))
        .bind(before_ms)
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.read_conn().await?)
        .await
        .map_err(map_err)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn cancel(&self, tenant_id: &str, id: &str, now: Millis) -> R<Option<Job>> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        write!(self, |c| cancel_on(c, &tenant_id, &id, now))
    }

    async fn register_worker(&self, worker: &WorkerRecord, retry: &RetryPolicy) -> R<Vec<String>> {
        let (worker, retry) = (worker.clone(), *retry);
        write!(self, |c| register_worker_on(c, &worker, &retry))
    }

    async fn deregister_worker(&self, worker_id: &str, now: Millis) -> R<Vec<String>> {
        let worker_id = worker_id.to_owned();
        write!(self, |c| deregister_worker_on(c, &worker_id, now))
    }

    async fn set_draining(&self, worker_id: &str, draining: bool) -> R<bool> {
        let worker_id = worker_id.to_owned();
        write!(self, |c| set_draining_on(c, &worker_id, draining))
    }

    async fn worker(&self, worker_id: &str) -> R<Option<WorkerRecord>> {
        let row = sqlx::query(
            "SELECT id, name, boot_id, capabilities_json, slots, registered_ms, last_seen_ms, \
             draining FROM workers WHERE id = $1",
        )
        .bind(worker_id)
        .fetch_optional(&mut *self.read_conn().await?)
        .await
        .map_err(map_err)?;
        row.as_ref().map(worker_from_row).transpose()
    }

    async fn claim(
        &self,
        worker_id: &str,
        max: u32,
        now: Millis,
        lease: &LeasePolicy,
    ) -> R<Vec<Claim>> {
        let (worker_id, lease) = (worker_id.to_owned(), *lease);
        write!(self, |c| claim_up_to_on(c, &worker_id, max, now, &lease))
    }

    async fn heartbeat(
        &self,
        worker_id: &str,
        running: &[AttemptProgress],
        now: Millis,
        lease: &LeasePolicy,
    ) -> R<Beat> {
        let (worker_id, running, lease) = (worker_id.to_owned(), running.to_vec(), *lease);
        write!(self, |c| heartbeat_on(c, &worker_id, &running, now, &lease))
    }

    async fn record_output(
        &self,
        fence: &Fence,
        artifact: ArtifactKind,
        file: &OutputFile,
    ) -> R<()> {
        let (fence, file) = (fence.clone(), file.clone());
        write!(self, |c| record_output_on(c, &fence, artifact, &file))
    }

    async fn complete(
        &self,
        fence: &Fence,
        warnings: &[String],
        stage_seconds: &BTreeMap<String, f64>,
        now: Millis,
    ) -> R<Completed> {
        let (fence, warnings, stage_seconds) =
            (fence.clone(), warnings.to_vec(), stage_seconds.clone());
        write!(self, |c| complete_on(
            c,
            &fence,
            &warnings,
            &stage_seconds,
            now
        ))
    }

    async fn fail(
        &self,
        fence: &Fence,
        class: FailureClass,
        message: &str,
        now: Millis,
        retry: &RetryPolicy,
        jitter: f64,
    ) -> R<Failed> {
        let (fence, message, retry) = (fence.clone(), message.to_owned(), *retry);
        write!(self, |c| fail_on(
            c, &fence, class, &message, now, &retry, jitter
        ))
    }

    async fn sweep(&self, now: Millis, lease: &LeasePolicy, retry: &RetryPolicy) -> R<Swept> {
        let (lease, retry) = (*lease, *retry);
        write!(self, |c| sweep_on(c, now, &lease, &retry))
    }

    async fn stats(&self) -> R<QueueStats> {
        let row = sqlx::query(
            "SELECT \
             (SELECT count(*) FROM jobs WHERE state = 'queued' AND lane = 0) AS q0, \
             (SELECT count(*) FROM jobs WHERE state = 'queued' AND lane = 1) AS q1, \
             (SELECT count(*) FROM jobs WHERE state = 'running') AS running, \
             (SELECT count(*) FROM workers) AS workers, \
             (SELECT CAST(coalesce(sum(slots), 0) AS BIGINT) FROM workers) AS slots",
        )
        .fetch_one(&mut *self.read_conn().await?)
        .await
        .map_err(map_err)?;
        Ok(QueueStats {
            queued: [
                to_u64(get(&row, "q0")?, "count")?,
                to_u64(get(&row, "q1")?, "count")?,
            ],
            running: to_u64(get(&row, "running")?, "count")?,
            workers: to_u64(get(&row, "workers")?, "count")?,
            slots: to_u64(get(&row, "slots")?, "slots")?,
        })
    }

    async fn outbox_after(
        &self,
        tenant_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> R<Vec<OutboxEvent>> {
        let rows = sqlx::query(
            "SELECT seq, job_id, tenant_id, state, created_ms FROM outbox WHERE seq > $1 \
             AND ($3 = '' OR tenant_id = $3) ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .bind(tenant_id.unwrap_or(""))
        .fetch_all(&mut *self.read_conn().await?)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEvent {
                    seq: get(r, "seq")?,
                    job_id: get(r, "job_id")?,
                    tenant_id: get(r, "tenant_id")?,
                    state: get::<String>(r, "state")?.parse().map_err(corrupt)?,
                    created_ms: get(r, "created_ms")?,
                })
            })
            .collect()
    }

    async fn cursor(&self, name: &str) -> R<i64> {
        let row = sqlx::query("SELECT seq FROM outbox_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.read_conn().await?)
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| get(&r, "seq")).transpose()?.unwrap_or(0))
    }

    async fn set_cursor(&self, name: &str, seq: i64) -> R<()> {
        let name = name.to_owned();
        write!(self, |c| async move {
            sqlx::query(
                "INSERT INTO outbox_cursors (name, seq) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            )
            .bind(&name)
            .bind(seq)
            .execute(&mut *c)
            .await
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn leftovers_after(&self, after_seq: i64, limit: u32) -> R<(Vec<Leftover>, i64)> {
        let rows = sqlx::query(
            "SELECT o.seq, j.id, j.tenant_id, j.state, j.attempts, j.attempt_id \
             FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE o.seq > $1 \
             ORDER BY o.seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.read_conn().await?)
        .await
        .map_err(map_err)?;
        let mut last = after_seq;
        let mut leftovers = Vec::new();
        for r in &rows {
            last = get(r, "seq")?;
            let state: JobState = get::<String>(r, "state")?.parse().map_err(corrupt)?;
            let attempts = to_u32(get(r, "attempts")?, "attempts")?;
            let succeeded = state == JobState::Succeeded;
            if attempts > u32::from(succeeded) {
                leftovers.push(Leftover {
                    job_id: get(r, "id")?,
                    tenant_id: get(r, "tenant_id")?,
                    keep_attempt: succeeded
                        .then(|| get::<String>(r, "attempt_id"))
                        .transpose()?,
                });
            }
        }
        Ok((leftovers, last))
    }

    async fn forget_outputs(&self, job_id: &str, keep_attempt: Option<&str>) -> R<u64> {
        let (job_id, keep) = (job_id.to_owned(), keep_attempt.unwrap_or("").to_owned());
        write!(self, |c| async move {
            let done = sqlx::query("DELETE FROM outputs WHERE job_id = $1 AND attempt_id <> $2")
                .bind(&job_id)
                .bind(&keep)
                .execute(&mut *c)
                .await
                .map_err(map_err)?;
            Ok(done.rows_affected())
        })
    }
}
