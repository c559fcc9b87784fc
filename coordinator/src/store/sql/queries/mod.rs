//! The [`Store`] implementation both backends share, compiled once inside each backend module
//! (see the parent module's docs for the hooks it takes from there): row mapping, the schema
//! migration, and [`Store`] as thin calls into one file per aggregate, where the SQL is.
//!
//! Lock order on PostgreSQL (SQLite has one writer and no row locks): worker rows, then job
//! rows, then tenant rows in id order, then the outbox lock (the last two taken by the `jobs`
//! trigger when a transaction changes one render; locked up front, in that order, when it
//! changes several). Claims wait for at most one tenant row and never for job rows
//! (`SKIP LOCKED`).
//!
//! Writes run on the writer connection to completion once started (`sqlstore::write_op!`), so
//! each write takes owned copies of its arguments; reads run on a read connection.

mod attempts;
mod claims;
mod jobs;
mod outbox;
mod sweep;
mod templates;
mod tenants;
mod workers;

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlstore::row::{corrupt, from_json, get, to_u32, to_u64};
use sqlstore::write_op;

use super::{
    begin, map_err, Backend, Conn, DbRow, CLAIM_IN_TRANSACTION, NAME, SCHEMA, TENANT_LOCK,
};
use crate::lifecycle::{LeasePolicy, RetryPolicy};
use crate::model::{
    ApiKeyInfo, ArtifactKind, AttemptProgress, Claim, FailureClass, Fence, Job, JobOutput,
    JobState, Lane, Millis, NewJob, NewTemplate, OutputFile, TemplateRecord, TemplateRef, Tenant,
    WorkerRecord,
};
use crate::store::{
    Beat, Completed, Failed, JobCursor, Leftover, OutboxEvent, QueueStats, Store, StoreError,
    StoreResult, Submitted, Swept,
};

// ---------------------------------------------------------------------------------------------
// Rows

fn job_from_row(r: &DbRow) -> StoreResult<Job> {
    let lane: i64 = get(r, "lane")?;
    let state: String = get(r, "state")?;
    let failure = match get::<Option<String>, _>(r, "failure_class")? {
        Some(class) => Some((
            class.parse::<FailureClass>().map_err(corrupt)?,
            get::<Option<String>, _>(r, "failure_message")?.unwrap_or_default(),
        )),
        None => None,
    };
    let attempt_id: String = get(r, "attempt_id")?;
    let output = match get::<Option<String>, _>(r, "stage_seconds_json")? {
        Some(stages) => Some(JobOutput {
            attempt_id: attempt_id.clone(),
            video: output_file(r, "video_key", "video_bytes", "video_sha256")?,
            poster: output_file(r, "poster_key", "poster_bytes", "poster_sha256")?,
            stage_seconds: from_json(&stages, "stage_seconds_json")?,
        }),
        None => None,
    };
    Ok(Job {
        id: get(r, "id")?,
        tenant_id: get(r, "tenant_id")?,
        idempotency_key: get(r, "idempotency_key")?,
        request_hash: get(r, "request_hash")?,
        template_name: get(r, "template_name")?,
        template_version: to_u32(get(r, "template_version")?, "template_version")?,
        template_digest: get(r, "template_digest")?,
        lang: get(r, "lang")?,
        tokens: from_json(&get::<String, _>(r, "tokens_json")?, "tokens_json")?,
        preset: get(r, "preset")?,
        lane: Lane::from_i64(lane).ok_or_else(|| corrupt(format!("column lane: {lane}")))?,
        metadata: from_json(&get::<String, _>(r, "metadata_json")?, "metadata_json")?,
        callback_url: get(r, "callback_url")?,
        state: state.parse().map_err(corrupt)?,
        created_ms: get(r, "created_ms")?,
        updated_ms: get(r, "updated_ms")?,
        finished_ms: get(r, "finished_ms")?,
        started_ms: get(r, "started_ms")?,
        not_before_ms: get(r, "not_before_ms")?,
        deadline_ms: get(r, "deadline_ms")?,
        attempts: to_u32(get(r, "attempts")?, "attempts")?,
        app_failures: to_u32(get(r, "app_failures")?, "app_failures")?,
        infra_failures: to_u32(get(r, "infra_failures")?, "infra_failures")?,
        lease_epoch: to_u64(get(r, "lease_epoch")?, "lease_epoch")?,
        attempt_id,
        worker_id: get(r, "worker_id")?,
        lease_expires_ms: get(r, "lease_expires_ms")?,
        progress: get::<f64, _>(r, "progress")? as f32,
        stage: get(r, "stage")?,
        failure,
        warnings: from_json(&get::<String, _>(r, "warnings_json")?, "warnings_json")?,
        output,
        stream_attempt_id: get(r, "stream_attempt_id")?,
    })
}

/// A committed output file, if the attempt recorded one.
fn output_file(r: &DbRow, key: &str, bytes: &str, sha256: &str) -> StoreResult<Option<OutputFile>> {
    let Some(blob_key) = get::<Option<String>, _>(r, key)? else {
        return Ok(None);
    };
    Ok(Some(OutputFile {
        blob_key,
        bytes: to_u64(get::<Option<i64>, _>(r, bytes)?.unwrap_or_default(), bytes)?,
        sha256: get::<Option<String>, _>(r, sha256)?.unwrap_or_default(),
    }))
}

fn tenant_from_row(r: &DbRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: get(r, "id")?,
        name: get(r, "name")?,
        max_running: to_u32(get(r, "max_running")?, "max_running")?,
        created_ms: get(r, "created_ms")?,
    })
}

fn template_from_row(r: &DbRow) -> StoreResult<TemplateRecord> {
    Ok(TemplateRecord {
        tenant_id: get(r, "tenant_id")?,
        name: get(r, "name")?,
        version: to_u32(get(r, "version")?, "version")?,
        digest: get(r, "digest")?,
        size_bytes: to_u64(get(r, "size_bytes")?, "size_bytes")?,
        manifest_json: get(r, "manifest_json")?,
        blob_key: get(r, "blob_key")?,
        created_ms: get(r, "created_ms")?,
        aliases: Vec::new(),
    })
}

fn worker_from_row(r: &DbRow) -> StoreResult<WorkerRecord> {
    Ok(WorkerRecord {
        id: get(r, "id")?,
        name: get(r, "name")?,
        boot_id: get(r, "boot_id")?,
        capabilities_json: get(r, "capabilities_json")?,
        slots: to_u32(get(r, "slots")?, "slots")?,
        registered_ms: get(r, "registered_ms")?,
        last_seen_ms: get(r, "last_seen_ms")?,
        draining: get::<i64, _>(r, "draining")? != 0,
    })
}

fn stale(f: &Fence) -> StoreError {
    StoreError::StaleFence {
        job_id: f.job_id.clone(),
        attempt_id: f.attempt_id.clone(),
        epoch: f.epoch,
    }
}

fn not_found(what: impl Into<String>) -> StoreError {
    StoreError::NotFound { what: what.into() }
}

/// Creates the schema when the database has none, or upgrades it (in one transaction).
pub(super) async fn migrate(store: &Backend) -> StoreResult<()> {
    Ok(store
        .db
        .migrate(crate::store::sql::migrations(SCHEMA))
        .await?)
}

// ---------------------------------------------------------------------------------------------
// The trait: arguments are copied for writes (they move into the writer) and passed through.

#[async_trait]
impl Store for Backend {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn health(&self) -> std::sync::Arc<sqlstore::Health> {
        self.db.health()
    }

    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let tenant = tenant.clone();
        write_op!(self.db, |c| tenants::create(c, &tenant))
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        tenants::by_name(&mut *self.read_conn().await?, name).await
    }

    async fn add_api_key(&self, tenant_id: &str, key_hash: &str, now: Millis) -> StoreResult<()> {
        let (tenant_id, key_hash) = (tenant_id.to_owned(), key_hash.to_owned());
        write_op!(self.db, |c| tenants::add_api_key(
            c, &tenant_id, &key_hash, now
        ))
    }

    async fn tenant_by_key(&self, key_hash: &str) -> StoreResult<Option<Tenant>> {
        tenants::by_key(&mut *self.read_conn().await?, key_hash).await
    }

    async fn tenant_by_id(&self, id: &str) -> StoreResult<Option<Tenant>> {
        tenants::by_id(&mut *self.read_conn().await?, id).await
    }

    async fn api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyInfo>> {
        tenants::api_keys(&mut *self.read_conn().await?, tenant_id).await
    }

    async fn revoke_api_key(&self, tenant_id: &str, id: &str) -> StoreResult<u64> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        write_op!(self.db, |c| tenants::revoke_api_key(c, &tenant_id, &id))
    }

    async fn insert_template(&self, new: &NewTemplate) -> StoreResult<(TemplateRecord, bool)> {
        let new = new.clone();
        write_op!(self.db, |c| templates::insert(c, &new))
    }

    async fn template(
        &self,
        tenant_id: &str,
        r: &TemplateRef,
    ) -> StoreResult<Option<TemplateRecord>> {
        templates::find(&mut *self.read_conn().await?, tenant_id, r).await
    }

    async fn list_templates(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<TemplateRecord>> {
        templates::list(&mut *self.read_conn().await?, tenant_id, after, limit).await
    }

    async fn set_alias(
        &self,
        tenant_id: &str,
        name: &str,
        alias: &str,
        version: u32,
    ) -> StoreResult<TemplateRecord> {
        let (tenant_id, name, alias) = (tenant_id.to_owned(), name.to_owned(), alias.to_owned());
        write_op!(self.db, |c| templates::set_alias(
            c, &tenant_id, &name, &alias, version
        ))
    }

    async fn submit(&self, jobs: &[NewJob]) -> StoreResult<Vec<Submitted>> {
        let jobs = jobs.to_vec();
        write_op!(self.db, |c| jobs::submit_all(c, &jobs))
    }

    async fn job(&self, tenant_id: Option<&str>, id: &str) -> StoreResult<Option<Job>> {
        let job = jobs::by_id(&mut *self.read_conn().await?, id).await?;
        Ok(job.filter(|j| tenant_id.is_none_or(|t| t == j.tenant_id)))
    }

    async fn list_jobs(
        &self,
        tenant_id: &str,
        state: Option<JobState>,
        cursor: Option<&JobCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        jobs::list(
            &mut *self.read_conn().await?,
            tenant_id,
            state,
            cursor,
            limit,
        )
        .await
    }

    async fn cancel(&self, tenant_id: &str, id: &str, now: Millis) -> StoreResult<Option<Job>> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        write_op!(self.db, |c| jobs::cancel(c, &tenant_id, &id, now))
    }

    async fn register_worker(
        &self,
        worker: &WorkerRecord,
        retry: &RetryPolicy,
    ) -> StoreResult<Vec<String>> {
        let (worker, retry) = (worker.clone(), *retry);
        write_op!(self.db, |c| workers::register(c, &worker, &retry))
    }

    async fn deregister_worker(&self, worker_id: &str, now: Millis) -> StoreResult<Vec<String>> {
        let worker_id = worker_id.to_owned();
        write_op!(self.db, |c| workers::deregister(c, &worker_id, now))
    }

    async fn set_draining(&self, worker_id: &str, draining: bool) -> StoreResult<bool> {
        let worker_id = worker_id.to_owned();
        write_op!(self.db, |c| workers::set_draining(c, &worker_id, draining))
    }

    async fn worker(&self, worker_id: &str) -> StoreResult<Option<WorkerRecord>> {
        workers::by_id(&mut *self.read_conn().await?, worker_id).await
    }

    async fn claim(
        &self,
        worker_id: &str,
        max: u32,
        now: Millis,
        lease: &LeasePolicy,
    ) -> StoreResult<Vec<Claim>> {
        let (worker_id, lease) = (worker_id.to_owned(), *lease);
        write_op!(self.db, |c| claims::claim_up_to(
            c, &worker_id, max, now, &lease
        ))
    }

    async fn heartbeat(
        &self,
        worker_id: &str,
        running: &[AttemptProgress],
        now: Millis,
        lease: &LeasePolicy,
    ) -> StoreResult<Beat> {
        let (worker_id, running, lease) = (worker_id.to_owned(), running.to_vec(), *lease);
        write_op!(self.db, |c| attempts::heartbeat(
            c, &worker_id, &running, now, &lease
        ))
    }

    async fn record_output(
        &self,
        fence: &Fence,
        artifact: ArtifactKind,
        file: &OutputFile,
    ) -> StoreResult<()> {
        let (fence, file) = (fence.clone(), file.clone());
        write_op!(self.db, |c| attempts::record_output(
            c, &fence, artifact, &file
        ))
    }

    async fn set_stream(&self, fence: &Fence) -> StoreResult<()> {
        let fence = fence.clone();
        write_op!(self.db, |c| attempts::set_stream(c, &fence))
    }

    async fn complete(
        &self,
        fence: &Fence,
        warnings: &[String],
        stage_seconds: &BTreeMap<String, f64>,
        now: Millis,
    ) -> StoreResult<Completed> {
        let (fence, warnings, stage_seconds) =
            (fence.clone(), warnings.to_vec(), stage_seconds.clone());
        write_op!(self.db, |c| attempts::complete(
            c,
            &fence,
            &warnings,
            &stage_seconds,
            now
        ))
    }

    async fn fail(
        &self,
        fence: &Fence,
        class: FailureClass,
        message: &str,
        now: Millis,
        retry: &RetryPolicy,
        jitter: f64,
    ) -> StoreResult<Failed> {
        let (fence, message, retry) = (fence.clone(), message.to_owned(), *retry);
        write_op!(self.db, |c| attempts::fail(
            c, &fence, class, &message, now, &retry, jitter
        ))
    }

    async fn sweep(
        &self,
        now: Millis,
        lease: &LeasePolicy,
        retry: &RetryPolicy,
    ) -> StoreResult<Swept> {
        let (lease, retry) = (*lease, *retry);
        write_op!(self.db, |c| sweep::sweep(c, now, &lease, &retry))
    }

    async fn stats(&self) -> StoreResult<QueueStats> {
        jobs::stats(&mut *self.read_conn().await?).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.read_conn().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn outbox_after(
        &self,
        tenant_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>> {
        outbox::after(
            &mut *self.read_conn().await?,
            tenant_id,
            after_seq,
            limit,
            false,
        )
        .await
    }

    async fn callback_outbox_after(
        &self,
        tenant_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>> {
        outbox::after(
            &mut *self.read_conn().await?,
            tenant_id,
            after_seq,
            limit,
            true,
        )
        .await
    }

    async fn cursor(&self, name: &str) -> StoreResult<i64> {
        outbox::cursor(&mut *self.read_conn().await?, name).await
    }

    async fn set_cursor(&self, name: &str, seq: i64) -> StoreResult<()> {
        let name = name.to_owned();
        write_op!(self.db, |c| outbox::set_cursor(c, &name, seq))
    }

    async fn leftovers_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Leftover>, i64)> {
        outbox::leftovers_after(&mut *self.read_conn().await?, after_seq, limit).await
    }

    async fn forget_outputs(&self, job_id: &str, keep_attempt: Option<&str>) -> StoreResult<u64> {
        let (job_id, keep) = (job_id.to_owned(), keep_attempt.unwrap_or("").to_owned());
        write_op!(self.db, |c| outbox::forget_outputs(c, &job_id, &keep))
    }
}
