//! Attempts: what a worker reports about the renders it runs (heartbeats with progress,
//! uploaded outputs, completion, failure), and the failure of several renders at once when
//! their worker is gone.

use std::collections::BTreeMap;

use sqlstore::row::{get, to_i64, to_json, truncate_message};

use super::jobs::{by_id, Selected};
use super::{begin, job_from_row, map_err, not_found, stale, Conn};
use crate::lifecycle::{AfterFailure, LeasePolicy, RetryPolicy};
use crate::model::{
    ArtifactKind, AttemptProgress, FailureClass, Fence, Job, JobState, Millis, OutputFile,
};
use crate::store::{Beat, Completed, Failed, StoreResult};

/// [`Store::heartbeat`](crate::store::Store::heartbeat).
pub(super) async fn heartbeat(
    c: &mut Conn,
    worker_id: &str,
    running: &[AttemptProgress],
    now: Millis,
    lease: &LeasePolicy,
) -> StoreResult<Beat> {
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
        draining: get::<i64, _>(&worker, "draining")? != 0,
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

/// [`Store::set_stream`](crate::store::Store::set_stream).
pub(super) async fn set_stream(c: &mut Conn, fence: &Fence) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE jobs SET stream_attempt_id = $2 WHERE id = $1 AND attempt_id = $2 \
         AND lease_epoch = $3 AND state = 'running'",
    )
    .bind(&fence.job_id)
    .bind(&fence.attempt_id)
    .bind(to_i64(fence.epoch, "lease epoch")?)
    .execute(&mut *c)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(stale(fence));
    }
    Ok(())
}

/// [`Store::record_output`](crate::store::Store::record_output).
pub(super) async fn record_output(
    c: &mut Conn,
    fence: &Fence,
    artifact: ArtifactKind,
    file: &OutputFile,
) -> StoreResult<()> {
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

/// [`Store::complete`](crate::store::Store::complete).
pub(super) async fn complete(
    c: &mut Conn,
    fence: &Fence,
    warnings: &[String],
    stage_seconds: &BTreeMap<String, f64>,
    now: Millis,
) -> StoreResult<Completed> {
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
    let job = by_id(c, &fence.job_id)
        .await?
        .ok_or_else(|| not_found(format!("render {}", fence.job_id)))?;
    if job.state == JobState::Succeeded && job.attempt_id == fence.attempt_id {
        return Ok(Completed::Duplicate(job));
    }
    Err(stale(fence))
}

/// [`Store::fail`](crate::store::Store::fail).
pub(super) async fn fail(
    c: &mut Conn,
    fence: &Fence,
    class: FailureClass,
    message: &str,
    now: Millis,
    retry: &RetryPolicy,
    jitter: f64,
) -> StoreResult<Failed> {
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
) -> StoreResult<Option<Job>> {
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
pub(super) struct Ended {
    pub(super) requeued: Vec<String>,
    pub(super) failed: Vec<String>,
}

impl Ended {
    /// Adds what `more` did after what this did.
    pub(super) fn append(&mut self, mut more: Ended) {
        self.requeued.append(&mut more.requeued);
        self.failed.append(&mut more.failed);
    }
}

/// Ends each of `jobs` (queued or running, as selected with their `failed_attempt_id`) with a
/// failure of `class` and the message `message_of` gives for it, the retry decision drawing
/// its jitter from `jitter`; a row changed meanwhile is left alone. The caller has locked the
/// renders, then their tenants (lock order).
pub(super) async fn fail_all(
    c: &mut Conn,
    jobs: &[Selected],
    class: FailureClass,
    message_of: impl Fn(&Job) -> String,
    jitter: fn() -> f64,
    retry: &RetryPolicy,
    now: Millis,
) -> StoreResult<Ended> {
    let mut ended = Ended::default();
    for (job, failed_attempt_id) in jobs {
        let message = message_of(job);
        let decision = retry.after_failure(job, class, now, jitter());
        // Keep the failed-attempt marker: this failure was not reported by the attempt.
        let updated =
            apply_failure(c, job, class, &message, decision, failed_attempt_id, now).await?;
        match updated {
            Some(j) if j.state == JobState::Queued => ended.requeued.push(j.id),
            Some(j) => ended.failed.push(j.id),
            None => {}
        }
    }
    Ok(ended)
}
