//! `reelfarm.v1.TriggerService`: ingestion and campaign management over gRPC.
//!
//! Errors become statuses in one place, the crate's `status` module: store calls use `?`, and
//! request errors are built as its `ApiError`.

use std::sync::Arc;

use proto::auth::bearer_token;
use proto::v1;
use proto::v1::trigger_service_server::TriggerService;
use tonic::{Request, Response, Status};

use crate::ingest::{EventResult, Ingest, MAX_BATCH};
use crate::runtime::{callback_secret, webhook_secret};
use crate::status::ApiError;
use crate::Campaign;

/// The TriggerService implementation.
#[derive(Clone)]
pub struct TriggerApi {
    pub ingest: Ingest,
    pub webhook_key: Arc<Vec<u8>>,
}

impl TriggerApi {
    async fn tenant<T>(&self, req: &Request<T>) -> Result<String, Status> {
        let key = bearer_token(req.metadata()).ok_or(ApiError::Unauthenticated(
            "missing `authorization: Bearer <key>` metadata",
        ))?;
        Ok(self
            .ingest
            .keys
            .tenant_for_key(key)
            .await
            .ok_or(ApiError::Unauthenticated("unknown API key"))?)
    }

    fn version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
        active: bool,
        c: &Campaign,
    ) -> Result<v1::CampaignVersion, Status> {
        Ok(v1::CampaignVersion {
            name: name.to_owned(),
            version,
            active,
            definition_json: serde_json::to_string(c)
                .map_err(|e| ApiError::Internal(format!("encoding campaign `{name}`: {e}")))?,
            webhook_secret: webhook_secret(&self.webhook_key, tenant, &c.destination.secret_ref),
        })
    }
}

#[tonic::async_trait]
impl TriggerService for TriggerApi {
    async fn get_callback_secret(
        &self,
        request: Request<v1::GetCallbackSecretRequest>,
    ) -> Result<Response<v1::CallbackSecret>, Status> {
        let tenant = self.tenant(&request).await?;
        Ok(Response::new(v1::CallbackSecret {
            secret: callback_secret(&self.webhook_key, &tenant),
        }))
    }

    async fn ingest_events(
        &self,
        request: Request<v1::IngestEventsRequest>,
    ) -> Result<Response<v1::IngestEventsResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let events = request.into_inner().events_json;
        if events.is_empty() {
            return Err(ApiError::invalid("events_json", "no events").into());
        }
        if events.len() > MAX_BATCH {
            return Err(ApiError::invalid(
                "events_json",
                format!("{} events, at most {MAX_BATCH}", events.len()),
            )
            .into());
        }
        let now = chrono::Utc::now().timestamp_millis();
        let results = self.ingest.ingest(&tenant, events, now).await?;
        Ok(Response::new(v1::IngestEventsResponse {
            results: results
                .into_iter()
                .map(|r| match r {
                    EventResult::Accepted { id } => v1::IngestResult {
                        id,
                        outcome: Some(v1::ingest_result::Outcome::Accepted(true)),
                    },
                    EventResult::Duplicate { id } => v1::IngestResult {
                        id,
                        outcome: Some(v1::ingest_result::Outcome::Duplicate(true)),
                    },
                    EventResult::Rejected { id, error } => v1::IngestResult {
                        id,
                        outcome: Some(v1::ingest_result::Outcome::Error(error)),
                    },
                })
                .collect(),
        }))
    }

    async fn put_campaign(
        &self,
        request: Request<v1::PutCampaignRequest>,
    ) -> Result<Response<v1::CampaignVersion>, Status> {
        let tenant = self.tenant(&request).await?;
        let campaign = Campaign::from_json(&request.get_ref().definition_json)
            .map_err(|e| ApiError::invalid("definition_json", e.to_string()))?;
        let now = chrono::Utc::now().timestamp_millis();
        let version = self
            .ingest
            .store
            .put_campaign(&tenant, &campaign, now)
            .await?;
        Ok(Response::new(self.version(
            &tenant,
            &campaign.name,
            version,
            true,
            &campaign,
        )?))
    }

    async fn get_campaign(
        &self,
        request: Request<v1::GetCampaignRequest>,
    ) -> Result<Response<v1::CampaignVersion>, Status> {
        let tenant = self.tenant(&request).await?;
        let name = &request.get_ref().name;
        let (version, campaign) = self
            .ingest
            .store
            .campaign(&tenant, name)
            .await?
            .ok_or_else(|| ApiError::campaign_not_found(name))?;
        let active = self.is_active(&tenant, name).await?;
        Ok(Response::new(
            self.version(&tenant, name, version, active, &campaign)?,
        ))
    }

    async fn list_campaigns(
        &self,
        request: Request<v1::ListCampaignsRequest>,
    ) -> Result<Response<v1::ListCampaignsResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let mut campaigns = Vec::new();
        for (name, _) in self.ingest.store.list_campaigns(&tenant).await? {
            if let Some((version, c)) = self.ingest.store.campaign(&tenant, &name).await? {
                let active = self.is_active(&tenant, &name).await?;
                campaigns.push(self.version(&tenant, &name, version, active, &c)?);
            }
        }
        Ok(Response::new(v1::ListCampaignsResponse { campaigns }))
    }

    async fn set_campaign_active(
        &self,
        request: Request<v1::SetCampaignActiveRequest>,
    ) -> Result<Response<v1::CampaignVersion>, Status> {
        let tenant = self.tenant(&request).await?;
        let req = request.into_inner();
        if !self
            .ingest
            .store
            .set_campaign_active(&tenant, &req.name, req.active)
            .await?
        {
            return Err(ApiError::campaign_not_found(&req.name).into());
        }
        let (version, c) = self
            .ingest
            .store
            .campaign(&tenant, &req.name)
            .await?
            .ok_or_else(|| ApiError::NotFound("campaign".to_owned()))?;
        Ok(Response::new(
            self.version(&tenant, &req.name, version, req.active, &c)?,
        ))
    }

    async fn get_campaign_stats(
        &self,
        request: Request<v1::GetCampaignStatsRequest>,
    ) -> Result<Response<v1::CampaignStats>, Status> {
        let tenant = self.tenant(&request).await?;
        let name = request.into_inner().name;
        if self.ingest.store.campaign(&tenant, &name).await?.is_none() {
            return Err(ApiError::campaign_not_found(&name).into());
        }
        let stats = self.ingest.store.stats(&tenant, &name).await?;
        Ok(Response::new(v1::CampaignStats {
            name,
            variants: stats
                .into_iter()
                .map(|(variant, counts)| (variant, v1::Counters { counts }))
                .collect(),
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let limit = match request.get_ref().limit {
            0 => 100,
            n @ 1..=1000 => n,
            _ => return Err(ApiError::invalid("limit", "at most 1000").into()),
        };
        let dead = self.ingest.store.dead_letters(&tenant, limit).await?;
        Ok(Response::new(v1::ListDeadLettersResponse {
            dead_letters: dead
                .into_iter()
                .map(|d| v1::DeadLetter {
                    id: d.id,
                    campaign: d.campaign,
                    kind: d.kind,
                    url: d.url,
                    attempts: d.attempts,
                    last_error: d.last_error,
                })
                .collect(),
        }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<v1::ReplayDeadLetterRequest>,
    ) -> Result<Response<v1::ReplayDeadLetterResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let replayed = self
            .ingest
            .store
            .replay_dead_letter(&tenant, &request.get_ref().id, now)
            .await?;
        Ok(Response::new(v1::ReplayDeadLetterResponse { replayed }))
    }
}

impl TriggerApi {
    async fn is_active(&self, tenant: &str, name: &str) -> Result<bool, Status> {
        Ok(self
            .ingest
            .store
            .campaign_active(tenant, name)
            .await?
            .unwrap_or(false))
    }
}
