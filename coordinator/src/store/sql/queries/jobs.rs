//! Renders: submission (idempotent per tenant and key), reads and listing, cancellation, the
//! queue's counts, and the row selection and tenant locking of transactions that change
//! several renders.

use std::collections::BTreeSet;

use sqlstore::is_fk_violation;
use sqlstore::row::{get, to_json, to_u64};

use super::{begin, job_from_row, map_err, not_found, Conn, DbRow, TENANT_LOCK};
use crate::model::{Job, JobState, Millis, NewJob};
use crate::store::{JobCursor, QueueStats, StoreError, StoreResult, Submitted};

/// The job a successful [`submit_all`] inserted, without reading it back.
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
        metadata: j.metadata.clone(),
        callback_url: j.callback_url.clone(),
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
        stream_attempt_id: String::new(),
    }
}

pub(super) async fn by_id(c: &mut Conn, id: &str) -> StoreResult<Option<Job>> {
    let row = sqlx::query(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
    row.as_ref().map(job_from_row).transpose()
}

/// Locks the tenant rows of a transaction that changes several renders, in id order, before
/// it changes any (PostgreSQL; the `jobs` trigger then updates rows it already holds).
pub(super) async fn lock_tenants(c: &mut Conn, tenant_ids: &BTreeSet<String>) -> StoreResult<()> {
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

/// A render as selected for a change, with its `failed_attempt_id`.
pub(super) type Selected = (Job, String);

/// Renders with their `failed_attempt_id`, and the set of their tenants.
pub(super) fn jobs_and_tenants(rows: &[DbRow]) -> StoreResult<(Vec<Selected>, BTreeSet<String>)> {
    let mut jobs = Vec::with_capacity(rows.len());
    let mut tenants = BTreeSet::new();
    for row in rows {
        let job = job_from_row(row)?;
        tenants.insert(job.tenant_id.clone());
        jobs.push((job, get(row, "failed_attempt_id")?));
    }
    Ok((jobs, tenants))
}

/// Submits one render on `c` (inside the caller's transaction, or alone).
async fn submit_one(c: &mut Conn, j: &NewJob) -> StoreResult<Submitted> {
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, tenant_id, idempotency_key, request_hash, template_name, \
         template_version, template_digest, lang, tokens_json, preset, lane, state, \
         created_ms, updated_ms, finished_ms, not_before_ms, deadline_ms, attempts, \
         app_failures, infra_failures, lease_epoch, attempt_id, worker_id, \
         lease_expires_ms, progress, stage, failed_attempt_id, warnings_json, \
         metadata_json, callback_url) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12, $12, 0, 0, \
         $13, 0, 0, 0, 0, '', '', 0, 0, '', '', '[]', $14, $15) \
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
    .bind(to_json(&j.metadata)?)
    .bind(&j.callback_url)
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

pub(super) async fn submit_all(c: &mut Conn, jobs: &[NewJob]) -> StoreResult<Vec<Submitted>> {
    if let [j] = jobs {
        // One statement in the common case: no explicit transaction needed.
        return Ok(vec![submit_one(c, j).await?]);
    }
    let mut tx = begin(c).await?;
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        out.push(submit_one(&mut tx, j).await?);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(out)
}

pub(super) async fn cancel(
    c: &mut Conn,
    tenant_id: &str,
    id: &str,
    now: Millis,
) -> StoreResult<Option<Job>> {
    let mut tx = begin(c).await?;
    // Compare-and-set on the state read; another transition in between means read again.
    for _ in 0..8 {
        let Some(job) = by_id(&mut tx, id).await? else {
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

/// A tenant's renders newest first (created_ms desc, then submission order desc), after
/// `cursor`. Renders created in the same millisecond keep the order they were submitted in:
/// the cursor's row is found by id and its `seq` breaks the tie.
pub(super) async fn list(
    c: &mut Conn,
    tenant_id: &str,
    state: Option<JobState>,
    cursor: Option<&JobCursor>,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    let (before_ms, before_id) = match cursor {
        Some(cursor) => (cursor.created_ms, cursor.id.as_str()),
        None => (i64::MAX, ""),
    };
    let rows = sqlx::query(concat!(
        "SELECT ",
        job_cols!(),
        " FROM jobs WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
         AND (created_ms < $3 OR (created_ms = $3 AND seq < COALESCE(\
             (SELECT c.seq FROM jobs c WHERE c.tenant_id = $1 AND c.id = $4), -1))) \
         ORDER BY created_ms DESC, seq DESC LIMIT $5"
    ))
    .bind(tenant_id)
    .bind(state.map(JobState::as_str))
    .bind(before_ms)
    .bind(before_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    rows.iter().map(job_from_row).collect()
}

/// Counts for metrics and backpressure.
pub(super) async fn stats(c: &mut Conn) -> StoreResult<QueueStats> {
    let row = sqlx::query(
        "SELECT \
         (SELECT count(*) FROM jobs WHERE state = 'queued' AND lane = 0) AS q0, \
         (SELECT count(*) FROM jobs WHERE state = 'queued' AND lane = 1) AS q1, \
         (SELECT count(*) FROM jobs WHERE state = 'running') AS running, \
         (SELECT count(*) FROM workers) AS workers, \
         (SELECT CAST(coalesce(sum(slots), 0) AS BIGINT) FROM workers) AS slots",
    )
    .fetch_one(&mut *c)
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
