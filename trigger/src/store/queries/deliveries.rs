//! Deliveries: the webhook outbox, a leased queue (see `queue`) from pending to done or dead,
//! with dead letters kept for inspection and replay.

use sqlstore::row::{corrupt, get, to_u32};

use super::queue::LeasedQueue;
use super::{map_err, write_one, Backend, Conn, DbRow};
use crate::store::{Delivery, Millis, NewDelivery, StoreResult};

/// The columns of `deliveries` that make a [`Delivery`].
macro_rules! delivery_cols {
    () => {
        "id, dispatch_key, tenant, campaign, variant, kind, url, payload_json, state, attempts, \
         due_ms, last_error, status_code, created_ms, updated_ms"
    };
}

fn delivery_from_row(r: &DbRow) -> StoreResult<Delivery> {
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

/// Pending deliveries: due at once, then at each retry; done with an HTTP status (counter
/// `deliveries`) or dead letters (counter `delivery_failures`).
pub(super) static DELIVERIES: LeasedQueue<Delivery> = leased_queue! {
    table: "deliveries",
    key: "id",
    columns: delivery_cols,
    done: "done",
    result: "status_code",
    completed: "deliveries",
    gave_up: "dead",
    given_up: "delivery_failures",
    from_row: delivery_from_row,
    order: |d| (d.due_ms, &d.id),
};

/// Enqueues a delivery, due at once; false when the dispatch already has one of this kind,
/// or the id is taken.
pub(super) async fn enqueue(store: &Backend, d: &NewDelivery) -> StoreResult<bool> {
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
    write_one(store, q).await
}

/// A delivery by id.
pub(super) async fn by_id(c: &mut Conn, id: &str) -> StoreResult<Option<Delivery>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_cols!(),
        " FROM deliveries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    row.as_ref().map(delivery_from_row).transpose()
}

/// A tenant's dead letters, most recent first.
pub(super) async fn dead_letters(
    c: &mut Conn,
    tenant: &str,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_cols!(),
        " FROM deliveries WHERE tenant = $1 AND state = 'dead' \
         ORDER BY updated_ms DESC, id LIMIT $2"
    ))
    .bind(tenant)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    rows.iter().map(delivery_from_row).collect()
}

/// Puts a dead letter back in the queue, due at `now`, attempts reset; false if there is no
/// such dead letter.
pub(super) async fn replay_dead_letter(
    store: &Backend,
    tenant: &str,
    id: &str,
    now: Millis,
) -> StoreResult<bool> {
    let q = sqlx::query(
        "UPDATE deliveries SET state = 'pending', attempts = 0, due_ms = $3, \
         lease_until_ms = 0, updated_ms = $3 \
         WHERE tenant = $1 AND id = $2 AND state = 'dead'",
    )
    .bind(tenant.to_owned())
    .bind(id.to_owned())
    .bind(now);
    write_one(store, q).await
}
