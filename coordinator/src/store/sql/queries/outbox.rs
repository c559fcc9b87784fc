//! The outbox of finished renders (written by the `jobs` trigger), its named positions, and
//! the output cleanup that follows it.

use sqlstore::row::{corrupt, get, to_u32};

use super::{map_err, Conn};
use crate::model::JobState;
use crate::store::{Leftover, OutboxEvent, StoreResult};

/// Outbox events after `after_seq`, oldest first; one tenant's only when `tenant_id` is set,
/// only those of renders with a callback URL when `callbacks_only` is.
pub(super) async fn after(
    c: &mut Conn,
    tenant_id: Option<&str>,
    after_seq: i64,
    limit: u32,
    callbacks_only: bool,
) -> StoreResult<Vec<OutboxEvent>> {
    let rows = if callbacks_only {
        sqlx::query(
            "SELECT o.seq, o.job_id, o.tenant_id, o.state, o.created_ms \
             FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE o.seq > $1 \
             AND ($3 = '' OR o.tenant_id = $3) AND j.callback_url <> '' ORDER BY o.seq LIMIT $2",
        )
    } else {
        sqlx::query(
            "SELECT seq, job_id, tenant_id, state, created_ms FROM outbox WHERE seq > $1 \
             AND ($3 = '' OR tenant_id = $3) ORDER BY seq LIMIT $2",
        )
    }
    .bind(after_seq)
    .bind(i64::from(limit))
    .bind(tenant_id.unwrap_or(""))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok(OutboxEvent {
                seq: get(r, "seq")?,
                job_id: get(r, "job_id")?,
                tenant_id: get(r, "tenant_id")?,
                state: get::<String, _>(r, "state")?.parse().map_err(corrupt)?,
                created_ms: get(r, "created_ms")?,
            })
        })
        .collect()
}

/// A named position in the outbox (0 at first).
pub(super) async fn cursor(c: &mut Conn, name: &str) -> StoreResult<i64> {
    let row = sqlx::query("SELECT seq FROM outbox_cursors WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(row.map(|r| get(&r, "seq")).transpose()?.unwrap_or(0))
}

/// Moves a named position in the outbox.
pub(super) async fn set_cursor(c: &mut Conn, name: &str, seq: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_cursors (name, seq) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
    )
    .bind(name)
    .bind(seq)
    .execute(&mut *c)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Of the next `limit` outbox rows after `after_seq`, the renders that may have files of
/// losing attempts, and the seq of the last row looked at (`after_seq` when there was none).
pub(super) async fn leftovers_after(
    c: &mut Conn,
    after_seq: i64,
    limit: u32,
) -> StoreResult<(Vec<Leftover>, i64)> {
    let rows = sqlx::query(
        "SELECT o.seq, j.id, j.tenant_id, j.state, j.attempts, j.attempt_id \
         FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE o.seq > $1 \
         ORDER BY o.seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    let mut last = after_seq;
    let mut leftovers = Vec::new();
    for r in &rows {
        last = get(r, "seq")?;
        let state: JobState = get::<String, _>(r, "state")?.parse().map_err(corrupt)?;
        let attempts = to_u32(get(r, "attempts")?, "attempts")?;
        let succeeded = state == JobState::Succeeded;
        // More than one attempt, or failed or cancelled after one: some attempt lost.
        if attempts > u32::from(succeeded) {
            leftovers.push(Leftover {
                job_id: get(r, "id")?,
                tenant_id: get(r, "tenant_id")?,
                keep_attempt: succeeded
                    .then(|| get::<String, _>(r, "attempt_id"))
                    .transpose()?,
            });
        }
    }
    Ok((leftovers, last))
}

/// Forgets the recorded outputs of a render's attempts other than `keep` (`""`: all of them);
/// returns how many rows went.
pub(super) async fn forget_outputs(c: &mut Conn, job_id: &str, keep: &str) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM outputs WHERE job_id = $1 AND attempt_id <> $2")
        .bind(job_id)
        .bind(keep)
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected())
}
