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

/// Issues another API key for tenant `name`.
pub async fn issue_key(store_url: &str, name: &str) -> Result<String> {
    let store = open_store(store_url).await?;
    let tenant = store
        .tenant_by_name(name)
        .await?
        .with_context(|| format!("no tenant `{name}`"))?;
    let now = coordinator::Clock::system().now_ms();
    Ok(coordinator::admin::issue_key(&store, &tenant, now).await?)
}
