//! Operator actions done directly on the store: creating tenants and their API keys.

use crate::auth::{generate_api_key, hash_secret};
use crate::error::ApiError;
use crate::model::{Millis, Tenant};
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
