//! The [`TriggerStore`] implementation both backends share, compiled once inside each backend
//! module, which supplies: `Db`, `Conn`, `DbRow`, `Backend` (the sqlx types and the store
//! type), `NAME`, `SCHEMA`, `MIGRATION_LOCK`, `skip_locked!()` (the claim's row-lock suffix),
//! `write` (an operation on the writer, run to completion), `read_conn`, `begin` and `map_err`
//! (which errors mean "busy, retry").
//!
//! SQL is written once with `$N` placeholders, which sqlx accepts on both backends. Several
//! rows are written with one multi-row statement (events of a batch, counters of a
//! transaction). On PostgreSQL, counters are upserted in key order at the end of each
//! transaction, so two transactions never lock the same counters in opposite orders.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use serde::Deserialize;
use sqlx::{QueryBuilder, Row};

use super::{begin, map_err, Backend, Conn, Db, DbRow, MIGRATION_LOCK, NAME, SCHEMA};
use crate::store::{
    corrupt, from_json, to_json, to_u32, truncate_message, Delivery, DispatchRecord, DueDispatch,
    Ingested, Millis, NewDelivery, Outcome, Stats, StoreError, StoreResult, TriggerStore,
    ANY_VARIANT, SCHEMA_VERSION,
};
use crate::{Campaign, Destination, Event};

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

/// Rows per multi-row `INSERT` (5 parameters each, far below either backend's limit).
const INSERT_CHUNK: usize = 500;

/// The columns of `dispatches` that make a [`DueDispatch`].
macro_rules! due_cols {
    () => {
        "key, tenant, campaign, version, variant, customer_id, event_id, template, lang, \
         tokens_json, due_ms, attempts"
    };
}

/// The columns of `deliveries` that make a [`Delivery`].
macro_rules! delivery_cols {
    () => {
        "id, dispatch_key, tenant, campaign, variant, kind, url, payload_json, state, attempts, \
         due_ms, last_error, status_code, created_ms, updated_ms"
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

fn due_from_row(r: &DbRow) -> R<DueDispatch> {
    Ok(DueDispatch {
        key: get(r, "key")?,
        tenant: get(r, "tenant")?,
        campaign: get(r, "campaign")?,
        version: to_u32(get(r, "version")?, "version")?,
        variant: get(r, "variant")?,
        customer_id: get(r, "customer_id")?,
        event_id: get(r, "event_id")?,
        template: get(r, "template")?,
        lang: get(r, "lang")?,
        tokens: from_json(&get::<String>(r, "tokens_json")?, "tokens_json")?,
        due_ms: get(r, "due_ms")?,
        attempts: to_u32(get(r, "attempts")?, "attempts")?,
    })
}

fn delivery_from_row(r: &DbRow) -> R<Delivery> {
    let status: i64 = get(r, "status_code")?;
    Ok(Delivery {
        id: get(r, "id")?,
        dispatch_key: get(r, "dispatch_key")?,
        tenant: get(r, "tenant")?,
        campaign: get(r, "campaign")?,
        variant: get(r, "variant")?,
        kind: get(r, "kind")?,
        url: get(r, "url")?,
        payload_json: get(r, "payload_json")?,
        state: get(r, "state")?,
        attempts: to_u32(get(r, "attempts")?, "attempts")?,
        due_ms: get(r, "due_ms")?,
        last_error: get(r, "last_error")?,
        status_code: u16::try_from(status)
            .map_err(|_| corrupt(format!("column status_code: {status} is out of range")))?,
        created_ms: get(r, "created_ms")?,
        updated_ms: get(r, "updated_ms")?,
    })
}

/// Just the destination of a stored campaign definition.
#[derive(Deserialize)]
struct DestinationOnly {
    destination: Destination,
}

// ---------------------------------------------------------------------------------------------
// Statements used by several methods

/// Counter increments of one transaction: (campaign, variant, counter) → increment.
type Counters = BTreeMap<(String, String, String), i64>;

fn bump(counters: &mut Counters, campaign: &str, variant: Option<&str>, counter: &str) {
    let key = (
        campaign.to_owned(),
        variant.unwrap_or(ANY_VARIANT).to_owned(),
        counter.to_owned(),
    );
    *counters.entry(key).or_insert(0) += 1;
}

/// Adds `counters` to a tenant's stats, in one statement (rows in key order).
async fn add_counters(c: &mut Conn, tenant: &str, counters: &Counters) -> R<()> {
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
async fn bump_returned(c: &mut Conn, row: &DbRow, counter: &str) -> R<()> {
    let tenant: String = get(row, "tenant")?;
    let campaign: String = get(row, "campaign")?;
    let variant: String = get(row, "variant")?;
    let mut counters = Counters::new();
    bump(&mut counters, &campaign, Some(&variant), counter);
    add_counters(c, &tenant, &counters).await
}

/// A statement whose arguments it owns, so that it can move into a writer task.
type OwnedQuery = sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments<'static>>;

/// A state transition of one row that bumps a counter of its campaign when it happens: runs
/// `query` (which must return `tenant, campaign, variant`) and the counter in one transaction.
async fn transition(store: &Backend, query: OwnedQuery, counter: &'static str) -> R<bool> {
    write!(store, |c| transition_on(c, query, counter))
}

async fn transition_on(c: &mut Conn, query: OwnedQuery, counter: &str) -> R<bool> {
    let mut tx = begin(c).await?;
    let Some(row) = query.fetch_optional(&mut *tx).await.map_err(map_err)? else {
        return Ok(false);
    };
    bump_returned(&mut tx, &row, counter).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(true)
}

/// Runs one statement on the writer (its own transaction); true when it changed a row.
async fn write_one(store: &Backend, query: OwnedQuery) -> R<bool> {
    write!(store, |c| async move {
        let done = query.execute(&mut *c).await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    })
}

/// Creates the schema when the database has none (in one transaction).
pub(super) async fn migrate(store: &Backend) -> R<()> {
    write!(store, |c| migrate_on(c))
}

async fn migrate_on(c: &mut Conn) -> R<()> {
    let mut tx = begin(c).await?;
    if let Some(lock) = MIGRATION_LOCK {
        sqlx::query(lock).execute(&mut *tx).await.map_err(map_err)?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS trigger_schema_version (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    let row = sqlx::query(
        "SELECT CAST(coalesce(max(version), 0) AS BIGINT) AS v FROM trigger_schema_version",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    let version: i64 = get(&row, "v")?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Database(format!(
            "the database has trigger schema version {version}; this build knows up to \
             {SCHEMA_VERSION}: upgrade"
        )));
    }
    if version < 1 {
        // Through `Executor` (a boxed `Send` future): `RawSql::execute` is an `async fn` whose
        // future the compiler cannot prove `Send`.
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(SCHEMA))
            .await
            .map_err(map_err)?;
        sqlx::query("INSERT INTO trigger_schema_version (version) VALUES ($1)")
            .bind(SCHEMA_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)
}

/// Counts, records and inserts what campaigns did with one event (inside its transaction).
async fn apply_outcomes(
    c: &mut Conn,
    tenant: &str,
    outcomes: &[Outcome],
    now: Millis,
    counters: &mut Counters,
) -> R<()> {
    for outcome in outcomes {
        match outcome {
            Outcome::NotMatched { .. } => {}
            Outcome::Suppressed {
                campaign,
                variant,
                reason,
                ..
            } => {
                bump(counters, campaign, variant.as_deref(), "events");
                bump(
                    counters,
                    campaign,
                    variant.as_deref(),
                    &format!("suppressed:{reason}"),
                );
            }
            Outcome::Holdout {
                campaign,
                version,
                customer_id,
            } => {
                sqlx::query(
                    "INSERT INTO holdouts (tenant, campaign, customer_id, version, created_ms) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(tenant)
                .bind(campaign)
                .bind(customer_id)
                .bind(i64::from(*version))
                .bind(now)
                .execute(&mut *c)
                .await
                .map_err(map_err)?;
                bump(counters, campaign, None, "events");
                bump(counters, campaign, None, "suppressed:holdout");
            }
            Outcome::Dispatch {
                campaign,
                version,
                customer_id,
                event_id,
                dispatch: d,
            } => {
                let at = d.at.timestamp_millis();
                let inserted = sqlx::query(
                    "INSERT INTO dispatches (key, tenant, campaign, version, variant, \
                     customer_id, event_id, template, lang, tokens_json, scheduled_ms, due_ms, \
                     state, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 'pending', $12, \
                     $12) ON CONFLICT (key) DO NOTHING",
                )
                .bind(&d.idempotency_key)
                .bind(tenant)
                .bind(campaign)
                .bind(i64::from(*version))
                .bind(&d.variant)
                .bind(customer_id)
                .bind(event_id)
                .bind(&d.template)
                .bind(&d.lang)
                .bind(to_json(&d.tokens)?)
                .bind(at)
                .bind(now)
                .execute(&mut *c)
                .await
                .map_err(map_err)?
                .rows_affected();
                let variant = Some(d.variant.as_str());
                bump(counters, campaign, variant, "events");
                let counter = if inserted > 0 {
                    "scheduled"
                } else {
                    "suppressed:duplicate"
                };
                bump(counters, campaign, variant, counter);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writes: each runs on the writer connection to completion (see `sqlstore`)

async fn put_campaign_on(c: &mut Conn, tenant: &str, campaign: &Campaign, now: Millis) -> R<u32> {
    let json = to_json(campaign)?;
    let mut tx = begin(c).await?;
    // The upsert locks the campaign's row (PostgreSQL), so concurrent puts get distinct
    // versions.
    let row = sqlx::query(
        "INSERT INTO campaigns (tenant, name, version, event_type, active) \
         VALUES ($1, $2, 1, $3, $4) ON CONFLICT (tenant, name) \
         DO UPDATE SET version = campaigns.version + 1, event_type = excluded.event_type \
         RETURNING version",
    )
    .bind(tenant)
    .bind(&campaign.name)
    .bind(&campaign.event_type)
    .bind(true)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    let version: i64 = get(&row, "version")?;
    sqlx::query(
        "INSERT INTO campaign_versions (tenant, name, version, campaign_json, created_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant)
    .bind(&campaign.name)
    .bind(version)
    .bind(json)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    to_u32(version, "version")
}

async fn ingest_on(
    c: &mut Conn,
    tenant: &str,
    events: &[(Event, String)],
    now: Millis,
) -> R<Vec<Ingested>> {
    // First occurrence of each id in the batch, with its canonical JSON.
    let mut seen = HashSet::with_capacity(events.len());
    let mut first = Vec::with_capacity(events.len());
    let mut rows = Vec::with_capacity(events.len());
    for (event, raw) in events {
        let is_first = seen.insert(event.id.as_str());
        first.push(is_first);
        if is_first {
            rows.push((event.id.as_str(), raw.as_str(), to_json(event)?));
        }
    }
    let mut inserted: HashSet<String> = HashSet::with_capacity(rows.len());
    if !rows.is_empty() {
        let mut tx = begin(c).await?;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO events (tenant, event_id, raw_json, event_json, received_ms) ",
            );
            q.push_values(chunk, |mut b, (id, raw, json)| {
                b.push_bind(tenant)
                    .push_bind(*id)
                    .push_bind(*raw)
                    .push_bind(json.as_str())
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (tenant, event_id) DO NOTHING RETURNING event_id");
            for row in q.build().fetch_all(&mut *tx).await.map_err(map_err)? {
                inserted.insert(get(&row, "event_id")?);
            }
        }
        tx.commit().await.map_err(map_err)?;
    }
    Ok(events
        .iter()
        .zip(first)
        .map(|((event, _), is_first)| {
            if is_first && inserted.contains(&event.id) {
                Ingested::Accepted
            } else {
                Ingested::Duplicate
            }
        })
        .collect())
}

async fn record_outcomes_on(
    c: &mut Conn,
    tenant: &str,
    event_seq: i64,
    outcomes: &[Outcome],
    now: Millis,
) -> R<bool> {
    let mut tx = begin(c).await?;
    // Marking the event first makes a concurrent second application (PostgreSQL) wait for
    // this one and then find the event processed.
    let marked = sqlx::query(
        "UPDATE events SET processed_ms = $3 \
         WHERE seq = $1 AND tenant = $2 AND processed_ms IS NULL",
    )
    .bind(event_seq)
    .bind(tenant)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?
    .rows_affected();
    if marked == 0 {
        return Ok(false);
    }
    let mut counters = Counters::new();
    apply_outcomes(&mut tx, tenant, outcomes, now, &mut counters).await?;
    add_counters(&mut tx, tenant, &counters).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(true)
}

async fn claim_due_dispatches_on(
    c: &mut Conn,
    now: Millis,
    limit: u32,
    lease_ms: i64,
) -> R<Vec<DueDispatch>> {
    let mut tx = begin(c).await?;
    // The selection is materialized: PostgreSQL could otherwise evaluate a `LIMIT … SKIP
    // LOCKED` subquery more than once and lease more rows than asked for.
    let rows = sqlx::query(concat!(
        "WITH due AS MATERIALIZED (SELECT key FROM dispatches WHERE state = 'pending' \
         AND due_ms <= $1 AND lease_until_ms <= $1 ORDER BY due_ms, key LIMIT $3",
        skip_locked!(),
        ") UPDATE dispatches SET lease_until_ms = $2 WHERE state = 'pending' \
         AND key IN (SELECT key FROM due) RETURNING ",
        due_cols!()
    ))
    .bind(now)
    .bind(now.saturating_add(lease_ms))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    let mut due = rows.iter().map(due_from_row).collect::<R<Vec<_>>>()?;
    due.sort_by(|a, b| (a.due_ms, &a.key).cmp(&(b.due_ms, &b.key)));
    Ok(due)
}

async fn claim_due_deliveries_on(
    c: &mut Conn,
    now: Millis,
    limit: u32,
    lease_ms: i64,
) -> R<Vec<Delivery>> {
    let mut tx = begin(c).await?;
    let rows = sqlx::query(concat!(
        "WITH due AS MATERIALIZED (SELECT id FROM deliveries WHERE state = 'pending' \
         AND due_ms <= $1 AND lease_until_ms <= $1 ORDER BY due_ms, id LIMIT $3",
        skip_locked!(),
        ") UPDATE deliveries SET lease_until_ms = $2 WHERE state = 'pending' \
         AND id IN (SELECT id FROM due) RETURNING ",
        delivery_cols!()
    ))
    .bind(now)
    .bind(now.saturating_add(lease_ms))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    let mut due = rows.iter().map(delivery_from_row).collect::<R<Vec<_>>>()?;
    due.sort_by(|a, b| (a.due_ms, &a.id).cmp(&(b.due_ms, &b.id)));
    Ok(due)
}

#[async_trait]
impl TriggerStore for Backend {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn health(&self) -> std::sync::Arc<sqlstore::Health> {
        self.db.health()
    }

    async fn put_campaign(&self, tenant: &str, campaign: &Campaign, now: Millis) -> R<u32> {
        let (tenant, campaign) = (tenant.to_owned(), campaign.clone());
        write!(self, |c| put_campaign_on(c, &tenant, &campaign, now))
    }

    async fn campaign(&self, tenant: &str, name: &str) -> R<Option<(u32, Campaign)>> {
        let mut conn = self.read_conn().await?;
        let row = sqlx::query(
            "SELECT v.version, v.campaign_json FROM campaigns c JOIN campaign_versions v \
             ON v.tenant = c.tenant AND v.name = c.name AND v.version = c.version \
             WHERE c.tenant = $1 AND c.name = $2",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((
            to_u32(get(&row, "version")?, "version")?,
            from_json(&get::<String>(&row, "campaign_json")?, "campaign_json")?,
        )))
    }

    async fn list_campaigns(&self, tenant: &str) -> R<Vec<(String, u32)>> {
        let mut conn = self.read_conn().await?;
        let rows =
            sqlx::query("SELECT name, version FROM campaigns WHERE tenant = $1 ORDER BY name")
                .bind(tenant)
                .fetch_all(&mut *conn)
                .await
                .map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((get(r, "name")?, to_u32(get(r, "version")?, "version")?)))
            .collect()
    }

    async fn set_campaign_active(&self, tenant: &str, name: &str, active: bool) -> R<bool> {
        let q = sqlx::query("UPDATE campaigns SET active = $3 WHERE tenant = $1 AND name = $2")
            .bind(tenant.to_owned())
            .bind(name.to_owned())
            .bind(active);
        write_one(self, q).await
    }

    async fn campaign_active(&self, tenant: &str, name: &str) -> R<Option<bool>> {
        let mut conn = self.read_conn().await?;
        let row = sqlx::query("SELECT active FROM campaigns WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
        row.map(|r| get(&r, "active")).transpose()
    }

    async fn active_campaigns_for(
        &self,
        tenant: &str,
        event_type: &str,
    ) -> R<Vec<(String, u32, Campaign)>> {
        let mut conn = self.read_conn().await?;
        let rows = sqlx::query(
            "SELECT c.name, v.version, v.campaign_json FROM campaigns c JOIN campaign_versions v \
             ON v.tenant = c.tenant AND v.name = c.name AND v.version = c.version \
             WHERE c.tenant = $1 AND c.event_type = $2 AND c.active = $3 ORDER BY c.name",
        )
        .bind(tenant)
        .bind(event_type)
        .bind(true)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    get(r, "name")?,
                    to_u32(get(r, "version")?, "version")?,
                    from_json(&get::<String>(r, "campaign_json")?, "campaign_json")?,
                ))
            })
            .collect()
    }

    async fn ingest(
        &self,
        tenant: &str,
        events: &[(Event, String)],
        now: Millis,
    ) -> R<Vec<Ingested>> {
        let (tenant, events) = (tenant.to_owned(), events.to_vec());
        write!(self, |c| ingest_on(c, &tenant, &events, now))
    }

    async fn next_events(&self, limit: u32) -> R<Vec<(String, i64, Event)>> {
        let mut conn = self.read_conn().await?;
        let rows = sqlx::query(
            "SELECT seq, tenant, event_json FROM events WHERE processed_ms IS NULL \
             ORDER BY seq LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    get(r, "tenant")?,
                    get(r, "seq")?,
                    from_json(&get::<String>(r, "event_json")?, "event_json")?,
                ))
            })
            .collect()
    }

    async fn record_outcomes(
        &self,
        tenant: &str,
        event_seq: i64,
        outcomes: &[Outcome],
        now: Millis,
    ) -> R<bool> {
        let (tenant, outcomes) = (tenant.to_owned(), outcomes.to_vec());
        write!(self, |c| record_outcomes_on(
            c, &tenant, event_seq, &outcomes, now
        ))
    }

    async fn touches(&self, tenant: &str, customer_id: &str, since_ms: Millis) -> R<Vec<Millis>> {
        let mut conn = self.read_conn().await?;
        let rows = sqlx::query(
            "SELECT scheduled_ms FROM dispatches \
             WHERE tenant = $1 AND customer_id = $2 AND scheduled_ms >= $3 ORDER BY scheduled_ms",
        )
        .bind(tenant)
        .bind(customer_id)
        .bind(since_ms)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| get(r, "scheduled_ms")).collect()
    }

    async fn is_held_out(&self, tenant: &str, campaign: &str, customer_id: &str) -> R<bool> {
        let mut conn = self.read_conn().await?;
        let row = sqlx::query(
            "SELECT 1 AS one FROM holdouts \
             WHERE tenant = $1 AND campaign = $2 AND customer_id = $3",
        )
        .bind(tenant)
        .bind(campaign)
        .bind(customer_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn claim_due_dispatches(
        &self,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> R<Vec<DueDispatch>> {
        write!(self, |c| claim_due_dispatches_on(c, now, limit, lease_ms))
    }

    async fn dispatch_submitted(&self, key: &str, render_id: &str, now: Millis) -> R<bool> {
        let q = sqlx::query(
            "UPDATE dispatches SET state = 'submitted', render_id = $2, lease_until_ms = 0, \
             updated_ms = $3 WHERE key = $1 AND state = 'pending' \
             RETURNING tenant, campaign, variant",
        )
        .bind(key.to_owned())
        .bind(render_id.to_owned())
        .bind(now);
        transition(self, q, "renders").await
    }

    async fn dispatch_retry(&self, key: &str, next_ms: Millis, error: &str) -> R<bool> {
        let q = sqlx::query(
            "UPDATE dispatches SET due_ms = $2, attempts = attempts + 1, lease_until_ms = 0, \
             last_error = $3 WHERE key = $1 AND state = 'pending'",
        )
        .bind(key.to_owned())
        .bind(next_ms)
        .bind(truncate_message(error));
        write_one(self, q).await
    }

    async fn dispatch_failed(&self, key: &str, error: &str, now: Millis) -> R<bool> {
        let q = sqlx::query(
            "UPDATE dispatches SET state = 'failed', last_error = $2, lease_until_ms = 0, \
             updated_ms = $3 WHERE key = $1 AND state = 'pending' \
             RETURNING tenant, campaign, variant",
        )
        .bind(key.to_owned())
        .bind(truncate_message(error))
        .bind(now);
        transition(self, q, "failures").await
    }

    async fn dispatch_by_render(&self, render_id: &str) -> R<Option<DispatchRecord>> {
        let mut conn = self.read_conn().await?;
        let row = sqlx::query(
            "SELECT d.key, d.tenant, d.campaign, d.version, d.variant, d.customer_id, \
             d.event_id, d.render_id, d.state, v.campaign_json FROM dispatches d \
             LEFT JOIN campaign_versions v \
             ON v.tenant = d.tenant AND v.name = d.campaign AND v.version = d.version \
             WHERE d.render_id = $1",
        )
        .bind(render_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let Some(r) = row else { return Ok(None) };
        let key: String = get(&r, "key")?;
        let name: String = get(&r, "campaign")?;
        let version = to_u32(get(&r, "version")?, "version")?;
        let Some(json) = get::<Option<String>>(&r, "campaign_json")? else {
            return Err(corrupt(format!(
                "dispatch {key}: version {version} of campaign {name} is not stored"
            )));
        };
        let campaign: DestinationOnly = from_json(&json, "campaign_json")?;
        Ok(Some(DispatchRecord {
            key,
            tenant: get(&r, "tenant")?,
            campaign: name,
            version,
            variant: get(&r, "variant")?,
            customer_id: get(&r, "customer_id")?,
            event_id: get(&r, "event_id")?,
            render_id: get(&r, "render_id")?,
            state: get(&r, "state")?,
            destination: campaign.destination,
        }))
    }

    async fn cursor(&self, tenant: &str) -> R<i64> {
        let mut conn = self.read_conn().await?;
        let row = sqlx::query("SELECT seq FROM cursors WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| get(&r, "seq")).transpose()?.unwrap_or(0))
    }

    async fn set_cursor(&self, tenant: &str, seq: i64) -> R<()> {
        let q = sqlx::query(
            "INSERT INTO cursors (tenant, seq) VALUES ($1, $2) \
             ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq",
        )
        .bind(tenant.to_owned())
        .bind(seq);
        write_one(self, q).await.map(drop)
    }

    async fn tenants_with_campaigns(&self) -> R<Vec<String>> {
        let mut conn = self.read_conn().await?;
        let rows = sqlx::query("SELECT DISTINCT tenant FROM campaigns ORDER BY tenant")
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| get(r, "tenant")).collect()
    }

    async fn enqueue_delivery(&self, d: &NewDelivery) -> R<bool> {
        let q = sqlx::query(
            "INSERT INTO deliveries (id, dispatch_key, tenant, campaign, variant, kind, url, \
             payload_json, state, due_ms, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $9) \
             ON CONFLICT DO NOTHING",
        )
        .bind(d.id.clone())
        .bind(d.dispatch_key.clone())
        .bind(d.tenant.clone())
        .bind(d.campaign.clone())
        .bind(d.variant.clone())
        .bind(d.kind.clone())
        .bind(d.url.clone())
        .bind(d.payload_json.clone())
        .bind(d.now);
        write_one(self, q).await
    }

    async fn claim_due_deliveries(
        &self,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> R<Vec<Delivery>> {
        write!(self, |c| claim_due_deliveries_on(c, now, limit, lease_ms))
    }

    async fn delivery_done(&self, id: &str, now: Millis, status_code: u16) -> R<bool> {
        let q = sqlx::query(
            "UPDATE deliveries SET state = 'done', status_code = $3, lease_until_ms = 0, \
             updated_ms = $2 WHERE id = $1 AND state = 'pending' \
             RETURNING tenant, campaign, variant",
        )
        .bind(id.to_owned())
        .bind(now)
        .bind(i64::from(status_code));
        transition(self, q, "deliveries").await
    }

    async fn delivery_retry(&self, id: &str, next_ms: Millis, error: &str) -> R<bool> {
        let q = sqlx::query(
            "UPDATE deliveries SET due_ms = $2, attempts = attempts + 1, lease_until_ms = 0, \
             last_error = $3 WHERE id = $1 AND state = 'pending'",
        )
        .bind(id.to_owned())
        .bind(next_ms)
        .bind(truncate_message(error));
        write_one(self, q).await
    }

    async fn delivery_dead(&self, id: &str, error: &str, now: Millis) -> R<bool> {
        let q = sqlx::query(
            "UPDATE deliveries SET state = 'dead', last_error = $2, lease_until_ms = 0, \
             updated_ms = $3 WHERE id = $1 AND state = 'pending' \
             RETURNING tenant, campaign, variant",
        )
        .bind(id.to_owned())
        .bind(truncate_message(error))
        .bind(now);
        transition(self, q, "delivery_failures").await
    }

    async fn delivery(&self, id: &str) -> R<Option<Delivery>> {
        let mut conn = self.read_conn().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_cols!(),
            " FROM deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    async fn dead_letters(&self, tenant: &str, limit: u32) -> R<Vec<Delivery>> {
        let mut conn = self.read_conn().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_cols!(),
            " FROM deliveries WHERE tenant = $1 AND state = 'dead' \
             ORDER BY updated_ms DESC, id LIMIT $2"
        ))
        .bind(tenant)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn replay_dead_letter(&self, tenant: &str, id: &str, now: Millis) -> R<bool> {
        let q = sqlx::query(
            "UPDATE deliveries SET state = 'pending', attempts = 0, due_ms = $3, \
             lease_until_ms = 0, updated_ms = $3 \
             WHERE tenant = $1 AND id = $2 AND state = 'dead'",
        )
        .bind(tenant.to_owned())
        .bind(id.to_owned())
        .bind(now);
        write_one(self, q).await
    }

    async fn stats(&self, tenant: &str, campaign: &str) -> R<Stats> {
        let mut conn = self.read_conn().await?;
        let rows = sqlx::query(
            "SELECT variant, counter, value FROM stats WHERE tenant = $1 AND campaign = $2",
        )
        .bind(tenant)
        .bind(campaign)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        let mut stats = Stats::new();
        for r in &rows {
            let value: i64 = get(r, "value")?;
            let value = u64::try_from(value)
                .map_err(|_| corrupt(format!("column value: {value} is out of range")))?;
            stats
                .entry(get(r, "variant")?)
                .or_default()
                .insert(get(r, "counter")?, value);
        }
        Ok(stats)
    }
}
