//! A leased work queue: the claim, complete, retry and give-up transitions that dispatches
//! and deliveries share, written once for any table with the queue's columns.
//!
//! A queue's rows have a key column, `state` (`pending` until completed or given up),
//! `due_ms`, `lease_until_ms`, `attempts`, `last_error`, `updated_ms` and `tenant, campaign,
//! variant` (for counters). A claim leases due rows for a while (`lease_until_ms`), so a
//! claimer that dies lets them come due again; every transition is a compare-and-set on
//! `state = 'pending'` and drops the lease.

use sqlstore::write_op;

use super::{begin, map_err, transition, write_one, Backend, Conn, Db, DbRow};
use crate::store::{Millis, StoreResult};

/// The statements of a leased queue over a table, and how its rows read as `T`; made by
/// `leased_queue!`, which writes the SQL from the table's names.
pub(super) struct LeasedQueue<T> {
    /// Leases due rows: `$1` now, `$2` the lease's end, `$3` how many; returns `T`'s columns.
    pub(super) claim: &'static str,
    /// Completes a pending row: `$1` key, `$2` the result column's value, `$3` now; returns
    /// `tenant, campaign, variant`.
    pub(super) complete: &'static str,
    /// A failed try: `$1` key, `$2` when the next is due, `$3` the error.
    pub(super) retry: &'static str,
    /// Gives up on a pending row: `$1` key, `$2` the error, `$3` now; returns `tenant,
    /// campaign, variant`.
    pub(super) give_up: &'static str,
    /// The counter of the campaign that a completion bumps.
    pub(super) completed: &'static str,
    /// The counter of the campaign that a give-up bumps.
    pub(super) given_up: &'static str,
    /// A row as returned by the claim.
    pub(super) from_row: fn(&DbRow) -> StoreResult<T>,
    /// The order claims are returned in: due time, then key.
    pub(super) order: fn(&T) -> (Millis, &str),
}

/// A [`LeasedQueue`] over `table` keyed by `key`: claims return the columns `columns!()`; a
/// completion sets state `done` and column `result` and bumps `completed`; a give-up sets state
/// `gave_up` and bumps `given_up`.
macro_rules! leased_queue {
    (
        table: $table:literal,
        key: $key:literal,
        columns: $columns:ident,
        done: $done:literal,
        result: $result:literal,
        completed: $completed:literal,
        gave_up: $gave_up:literal,
        given_up: $given_up:literal,
        from_row: $from_row:expr,
        order: $order:expr $(,)?
    ) => {
        LeasedQueue {
            claim: concat!(
                "WITH due AS MATERIALIZED (SELECT ",
                $key,
                " FROM ",
                $table,
                " WHERE state = 'pending' AND due_ms <= $1 AND lease_until_ms <= $1 \
                 ORDER BY due_ms, ",
                $key,
                " LIMIT $3",
                skip_locked!(),
                ") UPDATE ",
                $table,
                " SET lease_until_ms = $2 WHERE state = 'pending' AND ",
                $key,
                " IN (SELECT ",
                $key,
                " FROM due) RETURNING ",
                $columns!()
            ),
            complete: concat!(
                "UPDATE ",
                $table,
                " SET state = '",
                $done,
                "', ",
                $result,
                " = $2, lease_until_ms = 0, updated_ms = $3 WHERE ",
                $key,
                " = $1 AND state = 'pending' RETURNING tenant, campaign, variant"
            ),
            retry: concat!(
                "UPDATE ",
                $table,
                " SET due_ms = $2, attempts = attempts + 1, \
                 lease_until_ms = 0, last_error = $3 WHERE ",
                $key,
                " = $1 AND state = 'pending'"
            ),
            give_up: concat!(
                "UPDATE ",
                $table,
                " SET state = '",
                $gave_up,
                "', last_error = $2, \
                 lease_until_ms = 0, updated_ms = $3 WHERE ",
                $key,
                " = $1 AND state = 'pending' RETURNING tenant, campaign, variant"
            ),
            completed: $completed,
            given_up: $given_up,
            from_row: $from_row,
            order: $order,
        }
    };
}

impl<T: Send + 'static> LeasedQueue<T> {
    /// Leases up to `limit` pending rows due at `now` (not leased, or lease expired) until
    /// `now + lease_ms`, earliest due first, in one transaction on the writer. The selection
    /// is materialized: PostgreSQL could otherwise evaluate a `LIMIT … SKIP LOCKED` subquery
    /// more than once and lease more rows than asked for.
    pub(super) async fn claim(
        &'static self,
        store: &Backend,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<T>> {
        write_op!(store.db, |c| self.claim_on(c, now, limit, lease_ms))
    }

    async fn claim_on(
        &self,
        c: &mut Conn,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<T>> {
        let mut tx = begin(c).await?;
        let rows = sqlx::query(self.claim)
            .bind(now)
            .bind(now.saturating_add(lease_ms))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut due = rows
            .iter()
            .map(self.from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        due.sort_by(|a, b| (self.order)(a).cmp(&(self.order)(b)));
        Ok(due)
    }

    /// A pending row is done with `result` in its result column (the `completed` counter).
    /// False if it is not pending.
    pub(super) async fn complete<V>(
        &self,
        store: &Backend,
        key: &str,
        result: V,
        now: Millis,
    ) -> StoreResult<bool>
    where
        V: sqlx::Encode<'static, Db> + sqlx::Type<Db> + Send + 'static,
    {
        let q = sqlx::query(self.complete)
            .bind(key.to_owned())
            .bind(result)
            .bind(now);
        transition(store, q, self.completed).await
    }

    /// A try failed; the next is due at `next_ms` (attempts + 1, lease dropped). False if the
    /// row is not pending.
    pub(super) async fn retry(
        &self,
        store: &Backend,
        key: &str,
        next_ms: Millis,
        error: &str,
    ) -> StoreResult<bool> {
        let q = sqlx::query(self.retry)
            .bind(key.to_owned())
            .bind(next_ms)
            .bind(sqlstore::row::truncate_message(error));
        write_one(store, q).await
    }

    /// Gives up on a pending row (the `given_up` counter). False if it is not pending.
    pub(super) async fn give_up(
        &self,
        store: &Backend,
        key: &str,
        error: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let q = sqlx::query(self.give_up)
            .bind(key.to_owned())
            .bind(sqlstore::row::truncate_message(error))
            .bind(now);
        transition(store, q, self.given_up).await
    }
}
