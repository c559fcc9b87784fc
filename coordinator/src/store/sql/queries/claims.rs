//! Claims: handing queued renders to a worker, real-time lane first, fairest tenant first,
//! within each tenant's cap.

use std::collections::HashSet;

use sqlstore::row::get;

use super::{begin, job_from_row, map_err, Conn, CLAIM_IN_TRANSACTION, TENANT_LOCK};
use crate::lifecycle::LeasePolicy;
use crate::model::{Claim, Fence, Lane, Millis};
use crate::store::StoreResult;

/// [`Store::claim`](crate::store::Store::claim): in one transaction where the backend needs one
/// (`CLAIM_IN_TRANSACTION`).
pub(super) async fn claim_up_to(
    c: &mut Conn,
    worker_id: &str,
    max: u32,
    now: Millis,
    lease: &LeasePolicy,
) -> StoreResult<Vec<Claim>> {
    if max == 0 {
        return Ok(Vec::new());
    }
    if !CLAIM_IN_TRANSACTION {
        return claim(c, worker_id, max, now, lease).await;
    }
    let mut tx = begin(c).await?;
    let claims = claim(&mut tx, worker_id, max, now, lease).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(claims)
}

/// A tenant a claim may take work from.
struct Candidate {
    id: String,
    running: i64,
    max_running: i64,
    /// Has claimable work per lane ([`Lane::as_i64`]).
    has_work: [bool; 2],
}

/// The claim algorithm of [`Store::claim`](crate::store::Store::claim), on `c`.
async fn claim(
    c: &mut Conn,
    worker_id: &str,
    max: u32,
    now: Millis,
    lease: &LeasePolicy,
) -> StoreResult<Vec<Claim>> {
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
        .collect::<StoreResult<Vec<_>>>()?;
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
) -> StoreResult<i64> {
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
