//! The [`TriggerStore`] implementation both backends share, compiled once inside each backend
//! module, which supplies: `Db`, `Conn`, `DbRow`, `Backend` (the sqlx types and the store
//! type), `NAME`, `SCHEMA`, `skip_locked!()` (the claim's row-lock suffix), `read_conn`, `begin`
//! and `map_err` (which errors mean "busy, retry"). This module holds the migration, the
//! transitions several aggregates use, and [`TriggerStore`] as thin calls into one file per
//! aggregate, where the SQL is.
//!
//! SQL is written once with `$N` placeholders, which sqlx accepts on both backends. Several
//! rows are written with one multi-row statement (events of a batch, counters of a
//! transaction). Writes run on the writer connection to completion once started
//! (`sqlstore::write_op!`), so each write takes owned copies of its arguments.

// First, on its own: the queues below use the `leased_queue!` macro it defines.
#[macro_use]
mod queue;

mod campaigns;
mod counters;
mod deliveries;
mod dispatches;
mod events;

use async_trait::async_trait;
use sqlstore::write_op;

use super::{begin, map_err, Backend, Conn, Db, DbRow, NAME, SCHEMA};
use crate::store::{
    Delivery, DispatchRecord, DueDispatch, Ingested, Millis, NewDelivery, Outcome, Stats,
    StoreResult, TriggerStore,
};
use crate::{Campaign, Event};
use deliveries::DELIVERIES;
use dispatches::DISPATCHES;

/// Creates the schema when the database has none (in one transaction).
pub(super) async fn migrate(store: &Backend) -> StoreResult<()> {
    Ok(store.db.migrate(crate::store::migrations(SCHEMA)).await?)
}

// ---------------------------------------------------------------------------------------------
// Statements used by several aggregates

/// A statement whose arguments it owns, so that it can move into a writer task.
type OwnedQuery = sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments<'static>>;

/// A state transition of one row that bumps a counter of its campaign when it happens: runs
/// `query` (which must return `tenant, campaign, variant`) and the counter in one transaction.
async fn transition(
    store: &Backend,
    query: OwnedQuery,
    counter: &'static str,
) -> StoreResult<bool> {
    write_op!(store.db, |c| transition_on(c, query, counter))
}

async fn transition_on(c: &mut Conn, query: OwnedQuery, counter: &str) -> StoreResult<bool> {
    let mut tx = begin(c).await?;
    let Some(row) = query.fetch_optional(&mut *tx).await.map_err(map_err)? else {
        return Ok(false);
    };
    counters::bump_returned(&mut tx, &row, counter).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(true)
}

/// Runs one statement on the writer (its own transaction); true when it changed a row.
async fn write_one(store: &Backend, query: OwnedQuery) -> StoreResult<bool> {
    write_op!(store.db, |c| async move {
        let done = query.execute(&mut *c).await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    })
}

// ---------------------------------------------------------------------------------------------
// The trait: arguments are copied for writes (they move into the writer) and passed through.

#[async_trait]
impl TriggerStore for Backend {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn health(&self) -> std::sync::Arc<sqlstore::Health> {
        self.db.health()
    }

    async fn put_campaign(
        &self,
        tenant: &str,
        campaign: &Campaign,
        now: Millis,
    ) -> StoreResult<u32> {
        let (tenant, campaign) = (tenant.to_owned(), campaign.clone());
        write_op!(self.db, |c| campaigns::put(c, &tenant, &campaign, now))
    }

    async fn campaign(&self, tenant: &str, name: &str) -> StoreResult<Option<(u32, Campaign)>> {
        campaigns::find(&mut *self.read_conn().await?, tenant, name).await
    }

    async fn list_campaigns(&self, tenant: &str) -> StoreResult<Vec<(String, u32)>> {
        campaigns::list(&mut *self.read_conn().await?, tenant).await
    }

    async fn set_campaign_active(
        &self,
        tenant: &str,
        name: &str,
        active: bool,
    ) -> StoreResult<bool> {
        campaigns::set_active(self, tenant, name, active).await
    }

    async fn campaign_active(&self, tenant: &str, name: &str) -> StoreResult<Option<bool>> {
        campaigns::is_active(&mut *self.read_conn().await?, tenant, name).await
    }

    async fn active_campaigns_for(
        &self,
        tenant: &str,
        event_type: &str,
    ) -> StoreResult<Vec<(String, u32, Campaign)>> {
        campaigns::active_for(&mut *self.read_conn().await?, tenant, event_type).await
    }

    async fn ingest(
        &self,
        tenant: &str,
        events: &[(Event, String)],
        now: Millis,
    ) -> StoreResult<Vec<Ingested>> {
        let (tenant, events) = (tenant.to_owned(), events.to_vec());
        write_op!(self.db, |c| events::ingest(c, &tenant, &events, now))
    }

    async fn next_events(&self, limit: u32) -> StoreResult<Vec<(String, i64, Event)>> {
        events::next(&mut *self.read_conn().await?, limit).await
    }

    async fn record_outcomes(
        &self,
        tenant: &str,
        event_seq: i64,
        outcomes: &[Outcome],
        now: Millis,
    ) -> StoreResult<bool> {
        let (tenant, outcomes) = (tenant.to_owned(), outcomes.to_vec());
        write_op!(self.db, |c| events::record_outcomes(
            c, &tenant, event_seq, &outcomes, now
        ))
    }

    async fn touches(
        &self,
        tenant: &str,
        customer_id: &str,
        since_ms: Millis,
    ) -> StoreResult<Vec<Millis>> {
        events::touches(&mut *self.read_conn().await?, tenant, customer_id, since_ms).await
    }

    async fn is_held_out(
        &self,
        tenant: &str,
        campaign: &str,
        customer_id: &str,
    ) -> StoreResult<bool> {
        events::is_held_out(&mut *self.read_conn().await?, tenant, campaign, customer_id).await
    }

    async fn claim_due_dispatches(
        &self,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<DueDispatch>> {
        DISPATCHES.claim(self, now, limit, lease_ms).await
    }

    async fn dispatch_submitted(
        &self,
        key: &str,
        render_id: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        DISPATCHES
            .complete(self, key, render_id.to_owned(), now)
            .await
    }

    async fn dispatch_retry(&self, key: &str, next_ms: Millis, error: &str) -> StoreResult<bool> {
        DISPATCHES.retry(self, key, next_ms, error).await
    }

    async fn dispatch_failed(&self, key: &str, error: &str, now: Millis) -> StoreResult<bool> {
        DISPATCHES.give_up(self, key, error, now).await
    }

    async fn dispatch_of_render(
        &self,
        tenant: &str,
        render_id: &str,
        key: &str,
    ) -> StoreResult<Option<DispatchRecord>> {
        dispatches::of_render(&mut *self.read_conn().await?, tenant, render_id, key).await
    }

    async fn cursor(&self, tenant: &str) -> StoreResult<i64> {
        events::cursor(&mut *self.read_conn().await?, tenant).await
    }

    async fn set_cursor(&self, tenant: &str, seq: i64) -> StoreResult<()> {
        events::set_cursor(self, tenant, seq).await
    }

    async fn tenants_with_campaigns(&self) -> StoreResult<Vec<String>> {
        campaigns::tenants_with_campaigns(&mut *self.read_conn().await?).await
    }

    async fn enqueue_delivery(&self, delivery: &NewDelivery) -> StoreResult<bool> {
        deliveries::enqueue(self, delivery).await
    }

    async fn claim_due_deliveries(
        &self,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<Delivery>> {
        DELIVERIES.claim(self, now, limit, lease_ms).await
    }

    async fn delivery_done(&self, id: &str, now: Millis, status_code: u16) -> StoreResult<bool> {
        DELIVERIES
            .complete(self, id, i64::from(status_code), now)
            .await
    }

    async fn delivery_retry(&self, id: &str, next_ms: Millis, error: &str) -> StoreResult<bool> {
        DELIVERIES.retry(self, id, next_ms, error).await
    }

    async fn delivery_dead(&self, id: &str, error: &str, now: Millis) -> StoreResult<bool> {
        DELIVERIES.give_up(self, id, error, now).await
    }

    async fn delivery(&self, id: &str) -> StoreResult<Option<Delivery>> {
        deliveries::by_id(&mut *self.read_conn().await?, id).await
    }

    async fn dead_letters(&self, tenant: &str, limit: u32) -> StoreResult<Vec<Delivery>> {
        deliveries::dead_letters(&mut *self.read_conn().await?, tenant, limit).await
    }

    async fn replay_dead_letter(&self, tenant: &str, id: &str, now: Millis) -> StoreResult<bool> {
        deliveries::replay_dead_letter(self, tenant, id, now).await
    }

    async fn stats(&self, tenant: &str, campaign: &str) -> StoreResult<Stats> {
        counters::stats(&mut *self.read_conn().await?, tenant, campaign).await
    }
}
