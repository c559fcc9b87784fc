//! Workers: registration (which fails over what an earlier boot of the same worker left
//! running), deregistration, draining and lookup.

use std::collections::BTreeSet;

use sqlstore::is_unique_violation;
use sqlstore::row::get;

use super::attempts::fail_all;
use super::jobs::{jobs_and_tenants, lock_tenants};
use super::{begin, map_err, worker_from_row, Conn};
use crate::lifecycle::RetryPolicy;
use crate::model::{FailureClass, Millis, WorkerRecord};
use crate::store::{StoreError, StoreResult};

/// [`Store::register_worker`](crate::store::Store::register_worker).
pub(super) async fn register(
    c: &mut Conn,
    worker: &WorkerRecord,
    retry: &RetryPolicy,
) -> StoreResult<Vec<String>> {
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
    let message = format!("worker {} restarted", worker.name);
    let ended = fail_all(
        &mut tx,
        &jobs,
        FailureClass::Infrastructure,
        |_| message.clone(),
        rand::random::<f64>,
        retry,
        now,
    )
    .await?;
    tx.commit().await.map_err(map_err)?;
    Ok(ended.requeued)
}

/// Removes a worker; its running renders go back to the queue without charging a retry.
pub(super) async fn deregister(
    c: &mut Conn,
    worker_id: &str,
    now: Millis,
) -> StoreResult<Vec<String>> {
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
        .collect::<Result<BTreeSet<String>, _>>()?;
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
        .collect::<Result<Vec<String>, _>>()?;
    tx.commit().await.map_err(map_err)?;
    ids.sort();
    Ok(ids)
}

pub(super) async fn set_draining(
    c: &mut Conn,
    worker_id: &str,
    draining: bool,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE workers SET draining = $2 WHERE id = $1")
        .bind(worker_id)
        .bind(i64::from(draining))
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn by_id(c: &mut Conn, worker_id: &str) -> StoreResult<Option<WorkerRecord>> {
    let row = sqlx::query(
        "SELECT id, name, boot_id, capabilities_json, slots, registered_ms, last_seen_ms, \
         draining FROM workers WHERE id = $1",
    )
    .bind(worker_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    row.as_ref().map(worker_from_row).transpose()
}
