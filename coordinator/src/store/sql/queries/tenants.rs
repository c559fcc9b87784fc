//! Tenants and their API keys: creation, and the lookups that authenticate requests.

use sqlstore::{is_fk_violation, is_unique_violation};

use sqlstore::row::get;

use super::{map_err, not_found, tenant_from_row, Conn};
use crate::model::{ApiKeyInfo, Millis, Tenant, API_KEY_ID_CHARS};
use crate::store::{StoreError, StoreResult};

pub(super) async fn create(c: &mut Conn, tenant: &Tenant) -> StoreResult<()> {
    let res = sqlx::query(
        "INSERT INTO tenants (id, name, max_running, running, created_ms) \
         VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(&tenant.id)
    .bind(&tenant.name)
    .bind(i64::from(tenant.max_running))
    .bind(tenant.created_ms)
    .execute(&mut *c)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
            what: format!("tenant {}", tenant.name),
        }),
        Err(e) => Err(map_err(e)),
    }
}

pub(super) async fn add_api_key(
    c: &mut Conn,
    tenant_id: &str,
    key_hash: &str,
    now: Millis,
) -> StoreResult<()> {
    let res =
        sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, created_ms) VALUES ($1, $2, $3)")
            .bind(key_hash)
            .bind(tenant_id)
            .bind(now)
            .execute(&mut *c)
            .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
            what: "api key".into(),
        }),
        Err(e) if is_fk_violation(&e) => Err(not_found(format!("tenant {tenant_id}"))),
        Err(e) => Err(map_err(e)),
    }
}

pub(super) async fn by_name(c: &mut Conn, name: &str) -> StoreResult<Option<Tenant>> {
    let row = sqlx::query("SELECT id, name, max_running, created_ms FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
    row.as_ref().map(tenant_from_row).transpose()
}

pub(super) async fn by_id(c: &mut Conn, id: &str) -> StoreResult<Option<Tenant>> {
    let row = sqlx::query("SELECT id, name, max_running, created_ms FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?;
    row.as_ref().map(tenant_from_row).transpose()
}

/// A tenant's API keys, oldest first, each named by its id (the first
/// [`crate::model::API_KEY_ID_CHARS`] hex digits of its hash).
pub(super) async fn api_keys(c: &mut Conn, tenant_id: &str) -> StoreResult<Vec<ApiKeyInfo>> {
    let rows = sqlx::query(
        "SELECT key_hash, created_ms FROM api_keys WHERE tenant_id = $1 \
         ORDER BY created_ms, key_hash",
    )
    .bind(tenant_id)
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            let hash: String = get(r, "key_hash")?;
            Ok(ApiKeyInfo {
                id: ApiKeyInfo::id_of_hash(&hash).to_owned(),
                created_ms: get(r, "created_ms")?,
            })
        })
        .collect()
}

/// Deletes the tenant's keys whose id is `id`; how many went.
pub(super) async fn revoke_api_key(c: &mut Conn, tenant_id: &str, id: &str) -> StoreResult<u64> {
    let done =
        sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1 AND substr(key_hash, 1, $3) = $2")
            .bind(tenant_id)
            .bind(id)
            .bind(API_KEY_ID_CHARS as i32)
            .execute(&mut *c)
            .await
            .map_err(map_err)?;
    Ok(done.rows_affected())
}

/// The tenant whose key hashes to `key_hash`.
pub(super) async fn by_key(c: &mut Conn, key_hash: &str) -> StoreResult<Option<Tenant>> {
    let row = sqlx::query(
        "SELECT t.id, t.name, t.max_running, t.created_ms FROM api_keys k \
         JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1",
    )
    .bind(key_hash)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    row.as_ref().map(tenant_from_row).transpose()
}
