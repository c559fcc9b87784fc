//! Events: ingestion (deduplicated per tenant by event id), the processing queue, what
//! campaigns did with each event (holdouts, dispatches, counters), the customer touches that
//! frequency caps count, and the per-tenant cursors over the render events.

use std::collections::HashSet;

use sqlstore::row::{from_json, get, to_json};
use sqlx::QueryBuilder;

use super::counters::{add_counters, bump, Counters};
use super::{begin, map_err, write_one, Backend, Conn, Db};
use crate::store::{Ingested, Millis, Outcome, StoreResult};
use crate::Event;

/// Rows per multi-row `INSERT` (5 parameters each, far below either backend's limit).
const INSERT_CHUNK: usize = 500;

/// Stores a batch of events in one transaction; says for each whether it was new.
pub(super) async fn ingest(
    c: &mut Conn,
    tenant: &str,
    events: &[(Event, String)],
    now: Millis,
) -> StoreResult<Vec<Ingested>> {
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

/// Up to `limit` events not processed yet, oldest first: tenant, event sequence number, event.
pub(super) async fn next(c: &mut Conn, limit: u32) -> StoreResult<Vec<(String, i64, Event)>> {
    let rows = sqlx::query(
        "SELECT seq, tenant, event_json FROM events WHERE processed_ms IS NULL \
         ORDER BY seq LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                get(r, "tenant")?,
                get(r, "seq")?,
                from_json(&get::<String, _>(r, "event_json")?, "event_json")?,
            ))
        })
        .collect()
}

/// Marks an event processed and records what each campaign did with it, in one transaction;
/// false when it was processed already or is unknown.
pub(super) async fn record_outcomes(
    c: &mut Conn,
    tenant: &str,
    event_seq: i64,
    outcomes: &[Outcome],
    now: Millis,
) -> StoreResult<bool> {
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

/// Counts, records and inserts what campaigns did with one event (inside its transaction).
async fn apply_outcomes(
    c: &mut Conn,
    tenant: &str,
    outcomes: &[Outcome],
    now: Millis,
    counters: &mut Counters,
) -> StoreResult<()> {
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

/// Times of the customer's dispatches scheduled at or after `since_ms`, oldest first.
pub(super) async fn touches(
    c: &mut Conn,
    tenant: &str,
    customer_id: &str,
    since_ms: Millis,
) -> StoreResult<Vec<Millis>> {
    let rows = sqlx::query(
        "SELECT scheduled_ms FROM dispatches \
         WHERE tenant = $1 AND customer_id = $2 AND scheduled_ms >= $3 ORDER BY scheduled_ms",
    )
    .bind(tenant)
    .bind(customer_id)
    .bind(since_ms)
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| get(r, "scheduled_ms"))
        .collect::<Result<_, _>>()?)
}

/// Whether a customer is in a campaign's holdout group as recorded.
pub(super) async fn is_held_out(
    c: &mut Conn,
    tenant: &str,
    campaign: &str,
    customer_id: &str,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT 1 AS one FROM holdouts \
         WHERE tenant = $1 AND campaign = $2 AND customer_id = $3",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(customer_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    Ok(row.is_some())
}

/// The last render-event sequence number handled for a tenant (0 at first).
pub(super) async fn cursor(c: &mut Conn, tenant: &str) -> StoreResult<i64> {
    let row = sqlx::query("SELECT seq FROM cursors WHERE tenant = $1")
        .bind(tenant)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(row.map(|r| get(&r, "seq")).transpose()?.unwrap_or(0))
}

/// Moves a tenant's render-event cursor.
pub(super) async fn set_cursor(store: &Backend, tenant: &str, seq: i64) -> StoreResult<()> {
    let q = sqlx::query(
        "INSERT INTO cursors (tenant, seq) VALUES ($1, $2) \
         ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq",
    )
    .bind(tenant.to_owned())
    .bind(seq);
    write_one(store, q).await.map(drop)
}
