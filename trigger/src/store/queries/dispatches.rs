//! Dispatches: renders a campaign scheduled, a leased queue (see `queue`) from pending to
//! submitted or failed, and the lookup of a dispatch by the render it became.

use serde::Deserialize;
use sqlstore::row::{corrupt, from_json, get, to_u32};

use super::queue::LeasedQueue;
use super::{map_err, Conn, DbRow};
use crate::store::{DispatchRecord, DueDispatch, StoreResult};
use crate::Destination;

/// The columns of `dispatches` that make a [`DueDispatch`].
macro_rules! due_cols {
    () => {
        "key, tenant, campaign, version, variant, customer_id, event_id, template, lang, \
         tokens_json, due_ms, attempts"
    };
}

fn due_from_row(r: &DbRow) -> StoreResult<DueDispatch> {
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
        tokens: from_json(&get::<String, _>(r, "tokens_json")?, "tokens_json")?,
        due_ms: get(r, "due_ms")?,
        attempts: to_u32(get(r, "attempts")?, "attempts")?,
    })
}

/// Pending dispatches: due at their scheduled time, then at each retry; submitted as a render
/// (counter `renders`) or failed for good (counter `failures`).
pub(super) static DISPATCHES: LeasedQueue<DueDispatch> = leased_queue! {
    table: "dispatches",
    key: "key",
    columns: due_cols,
    done: "submitted",
    result: "render_id",
    completed: "renders",
    gave_up: "failed",
    given_up: "failures",
    from_row: due_from_row,
    order: |d| (d.due_ms, &d.key),
};

/// Just the destination of a stored campaign definition.
#[derive(Deserialize)]
struct DestinationOnly {
    destination: Destination,
}

/// The dispatch that became render `render_id` of `tenant`: found by the render id once
/// [`dispatch_submitted`](crate::store::TriggerStore::dispatch_submitted) stored it, and before
/// that by the idempotency key the dispatch was submitted with (`key`), since a render can end
/// before the answer to its submission is recorded.
pub(super) async fn of_render(
    c: &mut Conn,
    tenant: &str,
    render_id: &str,
    key: &str,
) -> StoreResult<Option<DispatchRecord>> {
    let row = sqlx::query(
        "SELECT d.key, d.tenant, d.campaign, d.version, d.variant, d.customer_id, \
         d.event_id, d.state, v.campaign_json FROM dispatches d \
         LEFT JOIN campaign_versions v \
         ON v.tenant = d.tenant AND v.name = d.campaign AND v.version = d.version \
         WHERE d.tenant = $1 AND (d.render_id = $2 OR (d.key = $3 AND d.render_id IS NULL))",
    )
    .bind(tenant)
    .bind(render_id)
    .bind(key)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    let Some(r) = row else { return Ok(None) };
    let key: String = get(&r, "key")?;
    let name: String = get(&r, "campaign")?;
    let version = to_u32(get(&r, "version")?, "version")?;
    let Some(json) = get::<Option<String>, _>(&r, "campaign_json")? else {
        return Err(corrupt(format!(
            "dispatch {key}: version {version} of campaign {name} is not stored"
        ))
        .into());
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
        render_id: render_id.to_owned(),
        state: get(&r, "state")?,
        destination: campaign.destination,
    }))
}
