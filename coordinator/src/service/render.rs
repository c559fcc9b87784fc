//! RenderService: submit, follow, cancel, list and download renders.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use proto::v1;
use proto::v1::render_service_server::RenderService;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{artifact_from_proto, page_size, state_from_proto};
use super::submit::prepare;
use super::transfer::chunked;
use super::Shared;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::model::{ArtifactKind, Job, JobState, Tenant};
use crate::store::{JobCursor, Submitted};

/// Most requests in one SubmitRenders stream.
pub const MAX_BATCH: usize = 10_000;
/// Requests stored per transaction in a SubmitRenders stream.
const STORE_BATCH: usize = 500;

/// The RenderService implementation.
#[derive(Debug, Clone)]
pub struct RenderApi {
    shared: Arc<Shared>,
}

impl RenderApi {
    pub fn new(shared: Arc<Shared>) -> RenderApi {
        RenderApi { shared }
    }

    async fn tenant<T>(&self, req: &Request<T>) -> Result<Tenant, ApiError> {
        self.shared.auth.tenant(req.metadata()).await
    }

    async fn job(&self, tenant: &Tenant, id: &str) -> Result<Job, ApiError> {
        if id.is_empty() {
            return Err(ApiError::invalid("id", "required"));
        }
        self.shared
            .store
            .job(Some(&tenant.id), id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("render `{}`", short(id))))
    }

    /// Stores prepared jobs (one transaction) and returns per-job results.
    async fn store_batch(
        &self,
        jobs: Vec<crate::model::NewJob>,
    ) -> Result<Vec<Submitted>, ApiError> {
        let results = self.shared.store.submit(&jobs).await?;
        let mut created = [0u64; 2];
        // Per tenant id (a batch is one tenant's, so this holds one entry).
        let mut by_tenant: HashMap<&str, u64> = HashMap::new();
        for (job, r) in jobs.iter().zip(&results) {
            if matches!(r, Submitted::Created(_)) {
                created[job.lane.as_i64() as usize] += 1;
                *by_tenant.entry(job.tenant_id.as_str()).or_default() += 1;
            }
        }
        for (tenant_id, n) in by_tenant {
            let name = self.shared.tenant_label(tenant_id).await;
            self.shared.metrics.tenant_submitted(&name, n);
        }
        for lane in crate::model::Lane::ALL {
            let n = created[lane.as_i64() as usize];
            if n > 0 {
                self.shared.metrics.submitted(lane.name(), n);
            }
        }
        if created.iter().any(|&n| n > 0) {
            self.shared.work_ready.notify_waiters();
        }
        Ok(results)
    }
}

/// A render as the API shows it, with its live stream's link.
fn render_proto(shared: &Shared, job: &Job, with_tokens: bool) -> v1::Render {
    v1::Render {
        stream_url: super::stream::stream_url(shared, job),
        ..super::convert::render_to_proto(job, with_tokens)
    }
}

/// Ids in messages are the caller's input: keep them short and printable.
fn short(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

fn conflict(key: &str, existing: &str) -> ApiError {
    ApiError::AlreadyExists(format!(
        "idempotency key `{}` was used for another request (render {existing})",
        short(key)
    ))
}

/// The unary calls as plain functions of an authenticated tenant and a wire request: the gRPC
/// methods and the HTTP/JSON API ([`crate::rest`]) both run these, so validation, idempotency
/// and admission are one code path.
impl RenderApi {
    /// SubmitRender: validates the request against its template version, admits it to its
    /// lane and stores it under the tenant's idempotency key.
    pub async fn submit(
        &self,
        tenant: &Tenant,
        req: v1::SubmitRenderRequest,
    ) -> Result<v1::SubmitRenderResponse, ApiError> {
        let job = prepare(&self.shared, tenant, &req).await?;
        self.shared.admit(job.lane, 1)?;
        let mut results = self.store_batch(vec![job]).await?;
        let (render, created) = match results.pop() {
            Some(Submitted::Created(job)) => (job, true),
            Some(Submitted::Existing(job)) => (job, false),
            Some(Submitted::Conflict { existing_id }) => {
                return Err(conflict(&req.idempotency_key, &existing_id))
            }
            None => return Err(ApiError::Internal("store returned no result".into())),
        };
        Ok(v1::SubmitRenderResponse {
            render: Some(render_proto(&self.shared, &render, false)),
            created,
        })
    }

    /// GetRender: one of the tenant's renders, with its tokens.
    pub async fn get(
        &self,
        tenant: &Tenant,
        req: v1::GetRenderRequest,
    ) -> Result<v1::Render, ApiError> {
        let job = self.job(tenant, &req.id).await?;
        Ok(render_proto(&self.shared, &job, true))
    }

    /// CancelRender: cancels a render that has not finished; a finished one is returned as is.
    pub async fn cancel(
        &self,
        tenant: &Tenant,
        req: v1::CancelRenderRequest,
    ) -> Result<v1::Render, ApiError> {
        let id = &req.id;
        if id.is_empty() {
            return Err(ApiError::invalid("id", "required"));
        }
        let now = self.shared.now();
        let job = self
            .shared
            .store
            .cancel(&tenant.id, id, now)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("render `{}`", short(id))))?;
        if job.state == JobState::Cancelled && job.finished_ms == now {
            self.shared.count_finished(&job, "cancelled", now).await;
        }
        self.shared.changed(&job.id);
        Ok(render_proto(&self.shared, &job, true))
    }

    /// ListRenders: the tenant's renders, newest first, a page at a time (without tokens).
    pub async fn list(
        &self,
        tenant: &Tenant,
        req: v1::ListRendersRequest,
    ) -> Result<v1::ListRendersResponse, ApiError> {
        let limit = page_size(req.page_size, "page_size")?;
        let state = state_from_proto(req.state, "state")?;
        let cursor = parse_cursor(&req.page_token)?;
        let jobs = self
            .shared
            .store
            .list_jobs(&tenant.id, state, cursor.as_ref(), limit)
            .await?;
        let next_page_token = match jobs.last() {
            Some(last) if jobs.len() == limit as usize => {
                format!("{}:{}", last.created_ms, last.id)
            }
            _ => String::new(),
        };
        Ok(v1::ListRendersResponse {
            renders: jobs
                .iter()
                .map(|j| render_proto(&self.shared, j, false))
                .collect(),
            next_page_token,
        })
    }
}

pub(super) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl RenderService for RenderApi {
    async fn submit_render(
        &self,
        request: Request<v1::SubmitRenderRequest>,
    ) -> Result<Response<v1::SubmitRenderResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        Ok(Response::new(
            self.submit(&tenant, request.into_inner()).await?,
        ))
    }

    async fn submit_renders(
        &self,
        request: Request<Streaming<v1::SubmitRenderRequest>>,
    ) -> Result<Response<v1::SubmitRendersResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let mut stream = request.into_inner();
        let mut results: Vec<v1::SubmitResult> = Vec::new();
        // Prepared jobs waiting to be stored, with the index of their result slot.
        let mut pending: Vec<(usize, crate::model::NewJob)> = Vec::new();
        let error_result = |key: String, e: ApiError| v1::SubmitResult {
            idempotency_key: key,
            outcome: Some(v1::submit_result::Outcome::Error(v1::SubmitError {
                code: e.code() as i32,
                message: e.to_string(),
            })),
            created: false,
        };
        while let Some(req) = stream.message().await? {
            if results.len() >= MAX_BATCH {
                return Err(ApiError::invalid(
                    "requests",
                    format!("at most {MAX_BATCH} requests per stream; open another stream"),
                )
                .into());
            }
            let key = req.idempotency_key.clone();
            let prepared = match prepare(&self.shared, &tenant, &req).await {
                Ok(job) => self.shared.admit(job.lane, 1).map(|_| job),
                Err(e) => Err(e),
            };
            match prepared {
                Ok(job) => {
                    pending.push((results.len(), job));
                    results.push(v1::SubmitResult {
                        idempotency_key: key,
                        outcome: None,
                        created: false,
                    });
                }
                Err(e) => results.push(error_result(key, e)),
            }
            if pending.len() >= STORE_BATCH {
                self.flush(&mut pending, &mut results).await?;
            }
        }
        self.flush(&mut pending, &mut results).await?;
        Ok(Response::new(v1::SubmitRendersResponse { results }))
    }

    async fn get_render(
        &self,
        request: Request<v1::GetRenderRequest>,
    ) -> Result<Response<v1::Render>, Status> {
        let tenant = self.tenant(&request).await?;
        Ok(Response::new(
            self.get(&tenant, request.into_inner()).await?,
        ))
    }

    type WatchRenderStream = BoxStream<v1::Render>;

    async fn watch_render(
        &self,
        request: Request<v1::WatchRenderRequest>,
    ) -> Result<Response<Self::WatchRenderStream>, Status> {
        let tenant = self.tenant(&request).await?;
        let id = request.into_inner().id;
        // Subscribe before the first read so no change falls between them.
        let mut changes = self.shared.changes.subscribe();
        let first = self.job(&tenant, &id).await?;
        let shared = self.shared.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut last = first;
            if tx
                .send(Ok(render_proto(&shared, &last, true)))
                .await
                .is_err()
            {
                return;
            }
            while !last.state.is_terminal() {
                // A local change wakes us at once; work done through another coordinator is
                // seen by the periodic re-read.
                let wait = async {
                    loop {
                        match changes.recv().await {
                            Ok(changed) if *changed == *last.id => return,
                            Ok(_) => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await
                            }
                        }
                    }
                };
                tokio::select! {
                    _ = wait => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = tx.closed() => return,
                    () = shared.closed() => {
                        let _ = tx.send(Err(shutting_down())).await;
                        return;
                    }
                }
                let job = match shared.store.job(Some(&tenant.id), &last.id).await {
                    Ok(Some(job)) => job,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                        return;
                    }
                };
                let moved = job.state != last.state
                    || job.stage != last.stage
                    || (job.progress - last.progress).abs() >= 0.01
                    || job.attempts != last.attempts
                    || job.stream_attempt_id != last.stream_attempt_id;
                if moved {
                    if tx
                        .send(Ok(render_proto(&shared, &job, true)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    last = job;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn cancel_render(
        &self,
        request: Request<v1::CancelRenderRequest>,
    ) -> Result<Response<v1::Render>, Status> {
        let tenant = self.tenant(&request).await?;
        Ok(Response::new(
            self.cancel(&tenant, request.into_inner()).await?,
        ))
    }

    async fn list_renders(
        &self,
        request: Request<v1::ListRendersRequest>,
    ) -> Result<Response<v1::ListRendersResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        Ok(Response::new(
            self.list(&tenant, request.into_inner()).await?,
        ))
    }

    type DownloadRenderStream = BoxStream<v1::Chunk>;

    async fn download_render(
        &self,
        request: Request<v1::DownloadRenderRequest>,
    ) -> Result<Response<Self::DownloadRenderStream>, Status> {
        let tenant = self.tenant(&request).await?;
        let req = request.into_inner();
        let artifact = artifact_from_proto(req.artifact, "artifact")?;
        let job = self.job(&tenant, &req.id).await?;
        if job.state != JobState::Succeeded {
            return Err(ApiError::FailedPrecondition(format!(
                "render {} is {}, not succeeded",
                job.id, job.state
            ))
            .into());
        }
        let file = job.output.as_ref().and_then(|o| match artifact {
            ArtifactKind::Video => o.video.as_ref(),
            ArtifactKind::Poster => o.poster.as_ref(),
        });
        let file = file.ok_or_else(|| {
            ApiError::NotFound(format!("{} of render {}", artifact.as_str(), job.id))
        })?;
        let stream = self
            .shared
            .blobs
            .get_stream(&file.blob_key)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        Ok(Response::new(chunked(stream)))
    }

    async fn create_download_url(
        &self,
        request: Request<v1::CreateDownloadUrlRequest>,
    ) -> Result<Response<v1::DownloadUrl>, Status> {
        let tenant = self.tenant(&request).await?;
        let req = request.into_inner();
        let artifact = artifact_from_proto(req.artifact, "artifact")?;
        let ttl_s = match req.ttl_s {
            0 => Self::DEFAULT_LINK_TTL_S,
            t if t <= Self::MAX_LINK_TTL_S => t,
            _ => {
                return Err(ApiError::invalid(
                    "ttl_s",
                    format!("at most {} seconds", Self::MAX_LINK_TTL_S),
                )
                .into())
            }
        };
        let signer = self.shared.downloads.as_ref().ok_or_else(|| {
            ApiError::FailedPrecondition(
                "this coordinator serves no HTTP downloads (start it with an HTTP listener)".into(),
            )
        })?;
        let job = self.job(&tenant, &req.id).await?;
        let has_file = job.output.as_ref().is_some_and(|o| match artifact {
            ArtifactKind::Video => o.video.is_some(),
            ArtifactKind::Poster => o.poster.is_some(),
        });
        if job.state != JobState::Succeeded || !has_file {
            return Err(ApiError::FailedPrecondition(format!(
                "render {} is {} and has no {} to link to",
                job.id,
                job.state,
                artifact.as_str()
            ))
            .into());
        }
        let expires_unix_ms = self.shared.now() + i64::from(ttl_s) * 1000;
        Ok(Response::new(v1::DownloadUrl {
            url: signer.url(&job.id, artifact, expires_unix_ms),
            expires_unix_ms,
        }))
    }

    type WatchRenderEventsStream = BoxStream<v1::RenderEvent>;

    async fn watch_render_events(
        &self,
        request: Request<v1::WatchRenderEventsRequest>,
    ) -> Result<Response<Self::WatchRenderEventsStream>, Status> {
        let caller = self.shared.auth.caller(request.metadata()).await?;
        let req = request.into_inner();
        let mut after = req.after_seq.max(0);
        let callbacks_only = req.callbacks_only;
        // A tenant sees its own renders; the farm's service, with no tenant named, every
        // tenant's renders that carry a callback (the callback deliveries it makes).
        let tenant_id = match caller {
            Caller::Tenant(t) => Some(t.id),
            Caller::Service if callbacks_only => None,
            Caller::Service => {
                return Err(ApiError::invalid(
                    "callbacks_only",
                    "the service token without x-reelfarm-tenant watches callbacks only",
                )
                .into())
            }
        };
        let shared = self.shared.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let mut changes = shared.changes.subscribe();
            let mut names: HashMap<String, String> = HashMap::new();
            loop {
                let events = if callbacks_only {
                    shared
                        .store
                        .callback_outbox_after(tenant_id.as_deref(), after, 500)
                        .await
                } else {
                    shared
                        .store
                        .outbox_after(tenant_id.as_deref(), after, 500)
                        .await
                };
                let events = match events {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                        return;
                    }
                };
                let full_page = events.len() == 500;
                for e in events {
                    after = e.seq;
                    let job = match shared.store.job(Some(&e.tenant_id), &e.job_id).await {
                        Ok(Some(job)) => job,
                        Ok(None) => continue,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                            return;
                        }
                    };
                    let tenant = match names.get(&e.tenant_id) {
                        Some(name) => name.clone(),
                        None => match shared.store.tenant_by_id(&e.tenant_id).await {
                            Ok(Some(t)) => {
                                names.insert(e.tenant_id.clone(), t.name.clone());
                                t.name
                            }
                            Ok(None) => continue,
                            Err(e) => {
                                let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                                return;
                            }
                        },
                    };
                    let event = v1::RenderEvent {
                        seq: e.seq,
                        render: Some(render_proto(&shared, &job, false)),
                        tenant,
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                if full_page {
                    continue;
                }
                // Wait for a local change, or look again in a while (events committed by
                // another coordinator sharing the database).
                tokio::select! {
                    _ = changes.recv() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = tx.closed() => return,
                    () = shared.closed() => {
                        let _ = tx.send(Err(shutting_down())).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

impl RenderApi {
    /// Longest-lived download link, and the default.
    const MAX_LINK_TTL_S: u32 = 7 * 24 * 3600;
    const DEFAULT_LINK_TTL_S: u32 = 3600;

    async fn flush(
        &self,
        pending: &mut Vec<(usize, crate::model::NewJob)>,
        results: &mut [v1::SubmitResult],
    ) -> Result<(), ApiError> {
        if pending.is_empty() {
            return Ok(());
        }
        let (slots, jobs): (Vec<usize>, Vec<_>) = pending.drain(..).unzip();
        let stored = self.store_batch(jobs).await?;
        for (slot, outcome) in slots.into_iter().zip(stored) {
            let r = &mut results[slot];
            match outcome {
                Submitted::Created(job) => {
                    r.outcome = Some(v1::submit_result::Outcome::RenderId(job.id));
                    r.created = true;
                }
                Submitted::Existing(job) => {
                    r.outcome = Some(v1::submit_result::Outcome::RenderId(job.id));
                }
                Submitted::Conflict { existing_id } => {
                    let e = conflict(&r.idempotency_key, &existing_id);
                    r.outcome = Some(v1::submit_result::Outcome::Error(v1::SubmitError {
                        code: e.code() as i32,
                        message: e.to_string(),
                    }));
                }
            }
        }
        Ok(())
    }
}

fn parse_cursor(token: &str) -> Result<Option<JobCursor>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid("page_token", "not a token from a previous page");
    let (ms, id) = token.split_once(':').ok_or_else(bad)?;
    Ok(Some(JobCursor {
        created_ms: ms.parse().map_err(|_| bad())?,
        id: id.to_owned(),
    }))
}

/// Ends a watch stream when the coordinator stops; clients watch again (through another
/// coordinator, or this one once restarted).
fn shutting_down() -> Status {
    Status::unavailable("the coordinator is shutting down; watch again")
}
