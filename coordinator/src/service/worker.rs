//! WorkerService: registration, long-poll acquisition, leases, outputs and completion.

use std::sync::Arc;
use std::time::Duration;

use proto::v1;
use proto::v1::worker_service_server::WorkerService;
use rand::Rng;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{
    artifact_from_proto, class_from_proto, fence_from_proto, fence_to_proto, lane_to_proto,
    preset_to_proto,
};
use super::transfer::{self, chunked};
use super::{segments, stream, Shared};
use crate::blobs::Blobs;
use crate::error::ApiError;
use crate::model::{
    ArtifactKind, AttemptProgress, Claim, Fence, Job, JobState, OutputFile, TemplateRef,
    WorkerRecord,
};
use crate::store::{Completed, Failed, StoreError};

/// Largest output files accepted.
const MAX_VIDEO_BYTES: u64 = 2 << 30;
const MAX_POSTER_BYTES: u64 = 16 << 20;

/// The WorkerService implementation.
#[derive(Debug, Clone)]
pub struct WorkerApi {
    shared: Arc<Shared>,
}

impl WorkerApi {
    pub fn new(shared: Arc<Shared>) -> WorkerApi {
        WorkerApi { shared }
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    fn auth<T>(&self, req: &Request<T>) -> Result<(), ApiError> {
        self.shared.auth.worker(req.metadata())
    }

    /// The render of a fence, if the fence is its current attempt held by `worker_id`.
    pub(super) async fn current(&self, fence: &Fence, worker_id: &str) -> Result<Job, ApiError> {
        let job = self
            .shared
            .store
            .job(None, &fence.job_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("render {}", fence.job_id)))?;
        let current = job.state == JobState::Running
            && job.attempt_id == fence.attempt_id
            && job.lease_epoch == fence.epoch
            && (worker_id.is_empty() || job.worker_id == worker_id);
        if !current {
            self.shared.metrics.stale_write();
            return Err(StoreError::StaleFence {
                job_id: fence.job_id.clone(),
                attempt_id: fence.attempt_id.clone(),
                epoch: fence.epoch,
            }
            .into());
        }
        Ok(job)
    }

    pub(super) fn stale(&self, e: StoreError) -> ApiError {
        if matches!(e, StoreError::StaleFence { .. }) {
            self.shared.metrics.stale_write();
        }
        e.into()
    }

    fn assignment(&self, claim: &Claim) -> v1::Assignment {
        let job = &claim.job;
        v1::Assignment {
            attempt: Some(fence_to_proto(&claim.fence)),
            template_name: job.template_name.clone(),
            template_version: job.template_version,
            template_digest: job.template_digest.clone(),
            lang: job.lang.clone(),
            tokens: job.tokens.clone(),
            preset: preset_to_proto(&job.preset) as i32,
            lane: lane_to_proto(job.lane) as i32,
            lease_expires_unix_ms: job.lease_expires_ms,
            deadline_unix_ms: job.deadline_ms,
            attempt_number: job.attempts,
        }
    }
}

fn required(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        Err(ApiError::invalid(field, "required"))
    } else {
        Ok(())
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    async fn register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        self.auth(&request)?;
        let req = request.into_inner();
        required("name", &req.name)?;
        required("boot_id", &req.boot_id)?;
        if req.name.chars().count() > 128 {
            return Err(ApiError::invalid("name", "at most 128 characters").into());
        }
        let caps = req.capabilities.unwrap_or_default();
        let slots = caps.slots.clamp(1, 64);
        let caps_json = serde_json::json!({
            "gpu_adapter": caps.gpu_adapter,
            "gpu_backend": caps.gpu_backend,
            "encoders": caps.encoders,
            "slots": slots,
            "version": caps.version,
            "noop": caps.noop,
        });
        let now = self.shared.now();
        let record = WorkerRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: req.name.clone(),
            boot_id: req.boot_id,
            capabilities_json: caps_json.to_string(),
            slots,
            registered_ms: now,
            last_seen_ms: now,
            draining: false,
        };
        let requeued = self
            .shared
            .store
            .register_worker(&record, &self.shared.settings.retry)
            .await
            .map_err(ApiError::from)?;
        self.shared.set_noop(&record.id, caps.noop);
        if !requeued.is_empty() {
            tracing::warn!(worker = %record.name, renders = requeued.len(), "worker restarted; its earlier attempts were requeued");
            for id in &requeued {
                self.shared.changed(id);
            }
            self.shared.work_ready.notify_waiters();
        }
        tracing::info!(worker = %record.name, id = %record.id, slots, adapter = %caps.gpu_adapter, noop = caps.noop, "worker registered");
        let lease = self.shared.settings.lease;
        Ok(Response::new(v1::RegisterResponse {
            worker_id: record.id,
            heartbeat_interval_ms: lease.heartbeat_ms,
            lease_ttl_ms: lease.lease_ttl_ms,
        }))
    }

    async fn acquire(
        &self,
        request: Request<v1::AcquireRequest>,
    ) -> Result<Response<v1::AcquireResponse>, Status> {
        self.auth(&request)?;
        let req = request.into_inner();
        required("worker_id", &req.worker_id)?;
        if !(1..=64).contains(&req.max_assignments) {
            return Err(ApiError::invalid("max_assignments", "must be 1 to 64").into());
        }
        let shared = &self.shared;
        let wait = Duration::from_millis(u64::from(
            req.wait_ms.min(shared.settings.max_acquire_wait_ms),
        ));
        let until = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a submission between the claim and the
            // wait still wakes us.
            let notified = shared.work_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = shared.now();
            let claims = shared
                .store
                .claim(
                    &req.worker_id,
                    req.max_assignments,
                    now,
                    &shared.settings.lease,
                )
                .await
                .map_err(ApiError::from)?;
            if !claims.is_empty() {
                for c in &claims {
                    if c.job.attempts == 1 {
                        let waited = (now - c.job.created_ms).max(0) as f64 / 1000.0;
                        shared.metrics.acquired(c.job.lane.name(), waited);
                    }
                    shared.changed(&c.job.id);
                }
                return Ok(Response::new(v1::AcquireResponse {
                    assignments: claims.iter().map(|c| self.assignment(c)).collect(),
                }));
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(Response::new(v1::AcquireResponse::default()));
            }
            let poll = Duration::from_millis(shared.settings.acquire_poll_ms).min(left);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(poll) => {}
                // Stopping: answer now rather than hold the shutdown for the long-poll.
                () = shared.closed() => return Ok(Response::new(v1::AcquireResponse::default())),
            }
        }
    }

    async fn heartbeat(
        &self,
        request: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::HeartbeatResponse>, Status> {
        self.auth(&request)?;
        let req = request.into_inner();
        required("worker_id", &req.worker_id)?;
        let mut running = Vec::with_capacity(req.running.len());
        for (i, p) in req.running.iter().enumerate() {
            running.push(AttemptProgress {
                fence: fence_from_proto(p.attempt.as_ref(), &format!("running[{i}].attempt"))?,
                progress: p.progress.clamp(0.0, 1.0),
                stage: p.stage.chars().take(32).collect(),
            });
        }
        let now = self.shared.now();
        let lease = self.shared.settings.lease;
        let beat = self
            .shared
            .store
            .heartbeat(&req.worker_id, &running, now, &lease)
            .await
            .map_err(ApiError::from)?;
        for f in &beat.renewed {
            self.shared.changed(&f.job_id);
        }
        Ok(Response::new(v1::HeartbeatResponse {
            renewed: beat.renewed.iter().map(fence_to_proto).collect(),
            stop: beat.stop.iter().map(fence_to_proto).collect(),
            lease_expires_unix_ms: now + i64::from(lease.lease_ttl_ms),
            drain: beat.draining,
            reregister: beat.unknown_worker,
        }))
    }

    type FetchTemplateStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<v1::Chunk, Status>> + Send + 'static>>;

    async fn fetch_template(
        &self,
        request: Request<v1::FetchTemplateRequest>,
    ) -> Result<Response<Self::FetchTemplateStream>, Status> {
        self.auth(&request)?;
        let req = request.into_inner();
        required("worker_id", &req.worker_id)?;
        let fence = fence_from_proto(req.attempt.as_ref(), "attempt")?;
        let job = self.current(&fence, &req.worker_id).await?;
        let record = self
            .shared
            .store
            .template(
                &job.tenant_id,
                &TemplateRef::Version(job.template_name.clone(), job.template_version),
            )
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "template {}@{}",
                    job.template_name, job.template_version
                ))
            })?;
        let stream = self
            .shared
            .blobs
            .get_stream(&record.blob_key)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        Ok(Response::new(chunked(stream)))
    }

    async fn upload_output(
        &self,
        request: Request<Streaming<v1::UploadOutputRequest>>,
    ) -> Result<Response<v1::UploadOutputResponse>, Status> {
        use v1::upload_output_request::Part;
        self.auth(&request)?;
        let mut stream = request.into_inner();
        let header = transfer::header(&mut stream, |m| match m.part {
            Some(Part::Header(h)) => Some(h),
            _ => None,
        })
        .await?;
        let fence = fence_from_proto(header.attempt.as_ref(), "header.attempt")?;
        let artifact = artifact_from_proto(header.artifact, "header.artifact")?;
        // Refuse a stale attempt before taking its bytes.
        let job = self.current(&fence, &header.worker_id).await?;
        let limit = match artifact {
            ArtifactKind::Video => MAX_VIDEO_BYTES,
            ArtifactKind::Poster => MAX_POSTER_BYTES,
        };
        let received = transfer::receive(
            &mut stream,
            limit,
            |m| match m.part {
                Some(Part::Chunk(c)) => Some(c),
                _ => None,
            },
            || {
                ApiError::invalid(
                    "chunk",
                    format!("{} larger than {} MiB", artifact.as_str(), limit >> 20),
                )
            },
        )
        .await?;
        if received.size == 0 {
            return Err(ApiError::invalid("chunk", format!("empty {}", artifact.as_str())).into());
        }
        let transfer::Received {
            parts,
            size,
            sha256,
        } = received;
        let key = Blobs::output_key(&job.tenant_id, &job.id, &fence.attempt_id, artifact);
        self.shared
            .blobs
            .put_parts(&key, parts)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let file = OutputFile {
            blob_key: key,
            bytes: size,
            sha256: sha256.clone(),
        };
        let recorded = self
            .shared
            .store
            .record_output(&fence, artifact, &file)
            .await;
        if let Err(StoreError::StaleFence { .. }) = &recorded {
            // The attempt lost its lease while uploading: nothing will ever reference the
            // file. (Busy or unreachable store: the worker retries the same key.)
            if let Err(e) = self.shared.blobs.delete(&file.blob_key).await {
                tracing::warn!(key = %file.blob_key, error = %e, "cannot delete a stale upload");
            }
        }
        recorded.map_err(|e| self.stale(e))?;
        Ok(Response::new(v1::UploadOutputResponse {
            size_bytes: size,
            sha256,
        }))
    }

    async fn complete(
        &self,
        request: Request<v1::CompleteRequest>,
    ) -> Result<Response<v1::CompleteResponse>, Status> {
        self.auth(&request)?;
        let req = request.into_inner();
        let fence = fence_from_proto(req.attempt.as_ref(), "attempt")?;
        let warnings: Vec<String> = req
            .warnings
            .iter()
            .take(50)
            .map(|w| w.chars().take(500).collect())
            .collect();
        let mut stage_seconds = req.stage_seconds.clone();
        stage_seconds.retain(|k, v| k.len() <= 32 && v.is_finite() && *v >= 0.0);
        let noop = self.shared.is_noop(&req.worker_id).await?;
        let now = self.shared.now();
        let result = self
            .shared
            .store
            .complete(&fence, &warnings, &stage_seconds, now)
            .await
            .map_err(|e| self.stale(e))?;
        let (job, duplicate) = match result {
            Completed::Committed(job) => (job, false),
            Completed::Duplicate(job) => (job, true),
        };
        if !duplicate {
            let has_video = job.output.as_ref().is_some_and(|o| o.video.is_some());
            if !has_video && !noop {
                tracing::warn!(render = %job.id, "completed without a video upload");
            }
            self.shared.count_finished(&job, "succeeded", now).await;
            for (stage, s) in &stage_seconds {
                self.shared.metrics.stage(stage, *s);
            }
            self.shared.changed(&job.id);
        }
        Ok(Response::new(v1::CompleteResponse { duplicate }))
    }

    async fn fail(
        &self,
        request: Request<v1::FailRequest>,
    ) -> Result<Response<v1::FailResponse>, Status> {
        self.auth(&request)?;
        let req = request.into_inner();
        let fence = fence_from_proto(req.attempt.as_ref(), "attempt")?;
        let class = class_from_proto(req.class, "class")?;
        let message: String = req.message.chars().take(2000).collect();
        let now = self.shared.now();
        let jitter = rand::rng().random_range(0.0..=1.0);
        let result = self
            .shared
            .store
            .fail(
                &fence,
                class,
                &message,
                now,
                &self.shared.settings.retry,
                jitter,
            )
            .await
            .map_err(|e| self.stale(e))?;
        let (will_retry, duplicate) = match &result {
            Failed::Requeued(_) => (true, false),
            Failed::Failed(job) => {
                self.shared.count_finished(job, "failed", now).await;
                (false, false)
            }
            Failed::Duplicate(job) => (job.state == JobState::Queued, true),
        };
        if !duplicate {
            self.shared.metrics.failure(class.as_str());
            self.shared.changed(&fence.job_id);
            if will_retry {
                self.shared.work_ready.notify_waiters();
            }
        }
        Ok(Response::new(v1::FailResponse {
            will_retry,
            duplicate,
        }))
    }

    async fn deregister(
        &self,
        request: Request<v1::DeregisterRequest>,
    ) -> Result<Response<v1::DeregisterResponse>, Status> {
        self.auth(&request)?;
        let req = request.into_inner();
        required("worker_id", &req.worker_id)?;
        let requeued = self
            .shared
            .store
            .deregister_worker(&req.worker_id, self.shared.now())
            .await
            .map_err(ApiError::from)?;
        for id in &requeued {
            self.shared.changed(id);
        }
        if !requeued.is_empty() {
            self.shared.work_ready.notify_waiters();
        }
        tracing::info!(worker = %req.worker_id, requeued = requeued.len(), "worker deregistered");
        Ok(Response::new(v1::DeregisterResponse {}))
    }

    type FetchSegmentStream = super::render::BoxStream<v1::Chunk>;

    async fn fetch_segment(
        &self,
        request: Request<v1::FetchSegmentRequest>,
    ) -> Result<Response<Self::FetchSegmentStream>, Status> {
        self.auth(&request)?;
        let stream = segments::fetch(&self.shared, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn store_segment(
        &self,
        request: Request<Streaming<v1::StoreSegmentRequest>>,
    ) -> Result<Response<v1::StoreSegmentResponse>, Status> {
        self.auth(&request)?;
        let stored = segments::store(&self.shared, request.into_inner()).await?;
        Ok(Response::new(stored))
    }

    async fn publish_stream(
        &self,
        request: Request<Streaming<v1::PublishStreamRequest>>,
    ) -> Result<Response<v1::PublishStreamResponse>, Status> {
        self.auth(&request)?;
        let published = stream::publish(self, request.into_inner()).await?;
        Ok(Response::new(published))
    }
}
