//! Operator actions done directly on the store: creating tenants and their API keys.

use crate::auth::{generate_api_key, hash_secret, API_KEY_PREFIX};
use crate::error::ApiError;
use crate::model::{ApiKeyInfo, Millis, Tenant, API_KEY_ID_CHARS};
use crate::service::valid_tenant_name;
use crate::store::{DynStore, StoreError};

/// Default cap on a tenant's renders running at once.
pub const DEFAULT_MAX_RUNNING: u32 = 1_000;

/// Creates tenant `name` and returns it with its first API key (shown once; only its hash is
/// stored).
pub async fn create_tenant(
    store: &DynStore,
    name: &str,
    max_running: u32,
    now: Millis,
) -> Result<(Tenant, String), ApiError> {
    if !valid_tenant_name(name) {
        return Err(ApiError::invalid(
            "name",
            "tenant names are 1 to 64 of a-z, 0-9 and -",
        ));
    }
    if max_running == 0 {
        return Err(ApiError::invalid("max_running", "must be at least 1"));
    }
    let tenant = Tenant {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        max_running,
        created_ms: now,
    };
    store.create_tenant(&tenant).await.map_err(|e| match e {
        StoreError::AlreadyExists { .. } => {
            ApiError::AlreadyExists(format!("tenant `{name}` already exists"))
        }
        other => other.into(),
    })?;
    let key = issue_key(store, &tenant, now).await?;
    Ok((tenant, key))
}

/// Issues another API key for an existing tenant.
pub async fn issue_key(store: &DynStore, tenant: &Tenant, now: Millis) -> Result<String, ApiError> {
    let key = generate_api_key();
    store
        .add_api_key(&tenant.id, &hash_secret(&key), now)
        .await?;
    Ok(key)
}

/// The id an operator names a key by: a key id as listed (16 hex digits), or the key itself
/// (whose hash gives the id).
pub fn key_id(id_or_key: &str) -> Result<String, ApiError> {
    let id = id_or_key.trim();
    if id.starts_with(API_KEY_PREFIX) {
        return Ok(ApiKeyInfo::id_of_hash(&hash_secret(id)).to_owned());
    }
    if id.len() == API_KEY_ID_CHARS && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(id.to_ascii_lowercase());
    }
    Err(ApiError::invalid(
        "key",
        format!(
            "name a key by its id ({API_KEY_ID_CHARS} hex digits, as `tenant key list` shows) \
             or by the key itself (`{API_KEY_PREFIX}…`)"
        ),
    ))
}

/// Revokes one of `tenant`'s API keys, by id or by the key itself. The key is refused from the
/// next call on: keys are checked against the store on every call, never cached.
pub async fn revoke_key(
    store: &DynStore,
    tenant: &Tenant,
    id_or_key: &str,
) -> Result<String, ApiError> {
    let id = key_id(id_or_key)?;
    match store.revoke_api_key(&tenant.id, &id).await? {
        0 => Err(ApiError::NotFound(format!(
            "API key {id} of tenant `{}`",
            tenant.name
        ))),
        _ => Ok(id),
    }
}
