//! Tenants and their API keys: creation, and the lookups that authenticate requests.

use sqlstore::{is_fk_violation, is_unique_violation};

use super::{map_err, not_found, tenant_from_row, Conn};
use crate::model::{Millis, Tenant};
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
