//! Glue between the coordinator and the trigger layer when they run in one process: tenant
//! keys checked against the coordinator's store, the trigger's HTTP and gRPC routes served by
//! the coordinator, and the trigger's background work calling the coordinator over gRPC with a
//! service token.

use std::sync::Arc;

use anyhow::{Context, Result};
use coordinator::store::DynStore;
use coordinator::CoordinatorConfig;
use proto::v1;
use trigger::ingest::{Ingest, TenantKeys};
use trigger::metrics::TriggerMetrics;
use trigger::store::DynTriggerStore;

/// Tenant API keys as the coordinator stores them (hashed).
struct CoordinatorKeys(DynStore);

#[async_trait::async_trait]
impl TenantKeys for CoordinatorKeys {
    async fn tenant_for_key(&self, api_key: &str) -> Option<String> {
        let hash = coordinator::auth::hash_secret(api_key);
        match self.0.tenant_by_key(&hash).await {
            Ok(t) => t.map(|t| t.name),
            Err(e) => {
                tracing::warn!(error = %e, "checking an API key failed");
                None
            }
        }
    }
}

/// The trigger layer, ready to attach to a coordinator.
pub struct Trigger {
    /// The trigger's store.
    pub store: DynTriggerStore,
    ingest: Ingest,
    metrics: TriggerMetrics,
    webhook_key: Vec<u8>,
    service_token: String,
}

impl Trigger {
    /// Opens the trigger store at `url` and checks keys against `coordinator_store`.
    pub async fn open(
        url: &str,
        coordinator_store: DynStore,
        webhook_key: Vec<u8>,
    ) -> Result<Trigger> {
        let store = trigger::store::open(url)
            .await
            .context("opening the trigger store")?;
        let metrics = TriggerMetrics::new();
        let ingest = Ingest {
            store: store.clone(),
            keys: Arc::new(CoordinatorKeys(coordinator_store)),
            new_events: Arc::new(tokio::sync::Notify::new()),
            metrics: metrics.clone(),
        };
        Ok(Trigger {
            store,
            ingest,
            metrics,
            webhook_key,
            service_token: format!("rfs_{}", crate::secrets::random_hex(32)),
        })
    }

    /// Serves `POST /v1/events` and the TriggerService with the coordinator, adds the
    /// trigger's metrics to its `/metrics`, and lets the trigger act for tenants.
    pub fn attach(&self, config: &mut CoordinatorConfig) {
        config.service_token = Some(self.service_token.clone());
        config.store_health.push(("trigger", self.store.health()));
        let metrics = self.metrics.clone();
        config
            .metrics_extensions
            .push(coordinator::metrics::MetricsExtension::new(
                move |registry| metrics.register(registry),
            ));
        config.http_routes = Some(trigger::ingest::router(
            self.ingest.clone(),
            Arc::new(self.webhook_key.clone()),
        ));
        let api = trigger::service::TriggerApi {
            ingest: self.ingest.clone(),
            webhook_key: Arc::new(self.webhook_key.clone()),
        };
        config.grpc_extension = Some(coordinator::GrpcExtension(Arc::new(move |routes| {
            routes.add_service(v1::trigger_service_server::TriggerServiceServer::new(
                api.clone(),
            ))
        })));
    }

    /// Starts the background work against the coordinator at `grpc_addr`.
    pub fn spawn(
        &self,
        grpc_addr: std::net::SocketAddr,
        allow_private_destinations: bool,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<tokio::task::JoinHandle<()>> {
        let channel = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
            .context("coordinator address")?
            .tcp_nodelay(true)
            .connect_lazy();
        let cfg = trigger::runtime::RuntimeConfig {
            channel,
            service_token: self.service_token.clone(),
            webhook_key: self.webhook_key.clone(),
            allow_private_destinations,
            link_ttl_s: 7 * 24 * 3600,
            preset: v1::Preset::Whatsapp,
            metrics: self.metrics.clone(),
        };
        Ok(tokio::spawn(trigger::runtime::run(
            self.store.clone(),
            cfg,
            self.ingest.new_events.clone(),
            stop,
        )))
    }
}
