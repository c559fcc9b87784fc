//! Per-campaign, per-variant counters: the increments a transaction collects, written in one
//! statement at its end, and the stats read back.
//!
//! On PostgreSQL, counters are upserted in key order at the end of each transaction, so two
//! transactions never lock the same counters in opposite orders.

use std::collections::BTreeMap;

use sqlstore::row::{get, to_u64};
use sqlx::QueryBuilder;

use super::{map_err, Conn, Db, DbRow};
use crate::store::{Stats, StoreResult, ANY_VARIANT};

/// Counter increments of one transaction: (campaign, variant, counter) → increment.
pub(super) type Counters = BTreeMap<(String, String, String), i64>;

/// Counts one more `counter` for `campaign` under `variant` (`*` when unknown).
pub(super) fn bump(counters: &mut Counters, campaign: &str, variant: Option<&str>, counter: &str) {
    let key = (
        campaign.to_owned(),
        variant.unwrap_or(ANY_VARIANT).to_owned(),
        counter.to_owned(),
    );
    *counters.entry(key).or_insert(0) += 1;
}

/// Adds `counters` to a tenant's stats, in one statement (rows in key order).
pub(super) async fn add_counters(
    c: &mut Conn,
    tenant: &str,
    counters: &Counters,
) -> StoreResult<()> {
    if counters.is_empty() {
        return Ok(());
    }
    let mut q =
        QueryBuilder::<Db>::new("INSERT INTO stats (tenant, campaign, variant, counter, value) ");
    q.push_values(counters, |mut b, ((campaign, variant, counter), n)| {
        b.push_bind(tenant)
            .push_bind(campaign)
            .push_bind(variant)
            .push_bind(counter)
            .push_bind(*n);
    });
    q.push(
        " ON CONFLICT (tenant, campaign, variant, counter) \
         DO UPDATE SET value = stats.value + excluded.value",
    );
    q.build().execute(&mut *c).await.map_err(map_err)?;
    Ok(())
}

/// Bumps one counter of the row a transition returned (`tenant`, `campaign`, `variant`).
pub(super) async fn bump_returned(c: &mut Conn, row: &DbRow, counter: &str) -> StoreResult<()> {
    let tenant: String = get(row, "tenant")?;
    let campaign: String = get(row, "campaign")?;
    let variant: String = get(row, "variant")?;
    let mut counters = Counters::new();
    bump(&mut counters, &campaign, Some(&variant), counter);
    add_counters(c, &tenant, &counters).await
}

/// A campaign's counters per variant (`*` for those of no known variant).
pub(super) async fn stats(c: &mut Conn, tenant: &str, campaign: &str) -> StoreResult<Stats> {
    let rows = sqlx::query(
        "SELECT variant, counter, value FROM stats WHERE tenant = $1 AND campaign = $2",
    )
    .bind(tenant)
    .bind(campaign)
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    let mut stats = Stats::new();
    for r in &rows {
        let value = to_u64(get(r, "value")?, "value")?;
        stats
            .entry(get(r, "variant")?)
            .or_default()
            .insert(get(r, "counter")?, value);
    }
    Ok(stats)
}
