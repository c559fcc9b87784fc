//! The sweep: workers gone silent, leases run out and deadlines passed.

use std::collections::BTreeMap;

use sqlstore::row::get;

use super::attempts::fail_all;
use super::jobs::{jobs_and_tenants, lock_tenants};
use super::{begin, map_err, Conn};
use crate::lifecycle::{LeasePolicy, RetryPolicy};
use crate::model::{FailureClass, Job, Millis};
use crate::store::{StoreResult, Swept};

/// [`Store::sweep`](crate::store::Store::sweep).
pub(super) async fn sweep(
    c: &mut Conn,
    now: Millis,
    lease: &LeasePolicy,
    retry: &RetryPolicy,
) -> StoreResult<Swept> {
    let mut tx = begin(c).await?;
    // Workers first (lock order). Their renders' leases expire on their own.
    let removed = sqlx::query("DELETE FROM workers WHERE last_seen_ms < $1 RETURNING id, name")
        .bind(now - i64::from(lease.lease_ttl_ms))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
    let mut names = BTreeMap::new();
    for row in &removed {
        names.insert(get::<String, _>(row, "id")?, get::<String, _>(row, "name")?);
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
        if let Some(name) = get::<Option<String>, _>(row, "worker_name")? {
            names.insert(id, name);
        }
    }
    let (expired, expired_tenants) = jobs_and_tenants(&expired)?;
    tenants.extend(expired_tenants);
    lock_tenants(&mut tx, &tenants).await?;
    // A deadline is final: no jitter needed, the decision is a terminal failure.
    let mut ended = fail_all(
        &mut tx,
        &past_deadline,
        FailureClass::DeadlineExceeded,
        |_| "deadline passed".to_owned(),
        || 1.0,
        retry,
        now,
    )
    .await?;
    let lease_expired = |job: &Job| {
        let worker = names.get(&job.worker_id).unwrap_or(&job.worker_id);
        format!("lease expired on worker {worker}")
    };
    ended.append(
        fail_all(
            &mut tx,
            &expired,
            FailureClass::Infrastructure,
            lease_expired,
            rand::random::<f64>,
            retry,
            now,
        )
        .await?,
    );
    tx.commit().await.map_err(map_err)?;
    Ok(Swept {
        requeued: ended.requeued,
        failed: ended.failed,
        workers_removed: u32::try_from(removed.len()).unwrap_or(u32::MAX),
    })
}
