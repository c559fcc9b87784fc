//! Tenant administration straight on the job store (the coordinator need not run).

use anyhow::{Context, Result};
use coordinator::store::DynStore;

use crate::secrets::redact;

/// Opens the job store at `url` (`sqlite://PATH` or `postgres://…`).
pub async fn open_store(url: &str) -> Result<DynStore> {
    coordinator::store::open(url)
        .await
        .with_context(|| format!("opening the job store {}", redact(url)))
}

/// A tenant just created: its name, id and first API key (shown once).
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub id: String,
    pub api_key: String,
}

/// Creates tenant `name` allowed `max_running` renders at once, with a first API key.
pub async fn create_tenant(store_url: &str, name: &str, max_running: u32) -> Result<NewTenant> {
    let store = open_store(store_url).await?;
    create_tenant_in(&store, name, max_running).await
}

pub(crate) async fn create_tenant_in(
    store: &DynStore,
    name: &str,
    max_running: u32,
) -> Result<NewTenant> {
    let now = coordinator::Clock::system().now_ms();
    let (tenant, api_key) =
        coordinator::admin::create_tenant(store, name, max_running, now).await?;
    Ok(NewTenant {
        name: tenant.name,
        id: tenant.id,
        api_key,
    })
}

/// The tenant called `name` in the store, or an error naming it.
async fn tenant_named(store: &DynStore, name: &str) -> Result<coordinator::model::Tenant> {
    store
        .tenant_by_name(name)
        .await?
        .with_context(|| format!("no tenant `{name}`"))
}

/// An API key just issued: its id (as listed) and the key itself (shown once).
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub id: String,
    pub api_key: String,
}

/// Issues another API key for tenant `name`.
pub async fn issue_key(store_url: &str, name: &str) -> Result<IssuedKey> {
    let store = open_store(store_url).await?;
    let tenant = tenant_named(&store, name).await?;
    let now = coordinator::Clock::system().now_ms();
    let api_key = coordinator::admin::issue_key(&store, &tenant, now).await?;
    Ok(IssuedKey {
        id: coordinator::admin::key_id(&api_key)?,
        api_key,
    })
}

/// Tenant `name`'s API keys: ids and creation times, oldest first.
pub async fn list_keys(store_url: &str, name: &str) -> Result<Vec<coordinator::model::ApiKeyInfo>> {
    let store = open_store(store_url).await?;
    let tenant = tenant_named(&store, name).await?;
    Ok(store.api_keys(&tenant.id).await?)
}

/// Revokes one of tenant `name`'s API keys (by id or by the key itself); returns its id.
/// Every coordinator on the store refuses it from its next call.
pub async fn revoke_key(store_url: &str, name: &str, id_or_key: &str) -> Result<String> {
    let store = open_store(store_url).await?;
    let tenant = tenant_named(&store, name).await?;
    Ok(coordinator::admin::revoke_key(&store, &tenant, id_or_key).await?)
}
