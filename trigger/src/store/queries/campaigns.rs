//! Campaigns: versions (every put is a new one), activation, and the lookups that match
//! events to them.

use sqlstore::row::{from_json, get, to_json, to_u32};

use super::{begin, map_err, write_one, Backend, Conn};
use crate::store::{Millis, StoreResult};
use crate::Campaign;

/// Stores a new version of `campaign` and returns it (previous version + 1, from 1).
pub(super) async fn put(
    c: &mut Conn,
    tenant: &str,
    campaign: &Campaign,
    now: Millis,
) -> StoreResult<u32> {
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
    Ok(to_u32(version, "version")?)
}

/// The newest version of a campaign.
pub(super) async fn find(
    c: &mut Conn,
    tenant: &str,
    name: &str,
) -> StoreResult<Option<(u32, Campaign)>> {
    let row = sqlx::query(
        "SELECT v.version, v.campaign_json FROM campaigns c JOIN campaign_versions v \
         ON v.tenant = c.tenant AND v.name = c.name AND v.version = c.version \
         WHERE c.tenant = $1 AND c.name = $2",
    )
    .bind(tenant)
    .bind(name)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((
        to_u32(get(&row, "version")?, "version")?,
        from_json(&get::<String, _>(&row, "campaign_json")?, "campaign_json")?,
    )))
}

/// Every campaign of a tenant with its newest version, by name.
pub(super) async fn list(c: &mut Conn, tenant: &str) -> StoreResult<Vec<(String, u32)>> {
    let rows = sqlx::query("SELECT name, version FROM campaigns WHERE tenant = $1 ORDER BY name")
        .bind(tenant)
        .fetch_all(&mut *c)
        .await
        .map_err(map_err)?;
    rows.iter()
        .map(|r| Ok((get(r, "name")?, to_u32(get(r, "version")?, "version")?)))
        .collect()
}

/// Activates or pauses a campaign; false if unknown.
pub(super) async fn set_active(
    store: &Backend,
    tenant: &str,
    name: &str,
    active: bool,
) -> StoreResult<bool> {
    let q = sqlx::query("UPDATE campaigns SET active = $3 WHERE tenant = $1 AND name = $2")
        .bind(tenant.to_owned())
        .bind(name.to_owned())
        .bind(active);
    write_one(store, q).await
}

/// Whether a campaign is active; None if unknown.
pub(super) async fn is_active(c: &mut Conn, tenant: &str, name: &str) -> StoreResult<Option<bool>> {
    let row = sqlx::query("SELECT active FROM campaigns WHERE tenant = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(row.map(|r| get(&r, "active")).transpose()?)
}

/// The active campaigns of a tenant reacting to `event_type`: name, newest version,
/// definition, by name.
pub(super) async fn active_for(
    c: &mut Conn,
    tenant: &str,
    event_type: &str,
) -> StoreResult<Vec<(String, u32, Campaign)>> {
    let rows = sqlx::query(
        "SELECT c.name, v.version, v.campaign_json FROM campaigns c JOIN campaign_versions v \
         ON v.tenant = c.tenant AND v.name = c.name AND v.version = c.version \
         WHERE c.tenant = $1 AND c.event_type = $2 AND c.active = $3 ORDER BY c.name",
    )
    .bind(tenant)
    .bind(event_type)
    .bind(true)
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                get(r, "name")?,
                to_u32(get(r, "version")?, "version")?,
                from_json(&get::<String, _>(r, "campaign_json")?, "campaign_json")?,
            ))
        })
        .collect()
}

/// Tenants with at least one campaign (active or not), by name.
pub(super) async fn tenants_with_campaigns(c: &mut Conn) -> StoreResult<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT tenant FROM campaigns ORDER BY tenant")
        .fetch_all(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| get(r, "tenant"))
        .collect::<Result<_, _>>()?)
}
