//! Blob storage (template archives, render outputs) through `object_store`: a local folder by
//! default, S3-compatible storage by URL.
//!
//! Keys:
//! - `templates/{tenant}/{name}/{digest}.tar`: an uploaded bundle archive, immutable.
//! - `renders/{tenant}/{render}/attempts/{attempt}/{video.mp4|poster.jpg}`: written by an
//!   attempt; the attempt that completes the render becomes canonical (recorded in the store).
//!   The files of losing attempts are deleted once the render has finished (`cleanup`), and
//!   an upload refused as stale is deleted at once.
//! - `renders/{tenant}/{render}/attempts/{attempt}/stream/{index.m3u8|seg-NNNNN.ts}`: the
//!   attempt's live HLS stream (`PublishStream`), under the attempt so that the same cleanup
//!   removes losing attempts' streams; the playlist is replaced at each publish.
//! - `segments/{key[0..2]}/{key}`: the farm-wide segment cache (`StoreSegment`), keyed by 64
//!   hex digits the workers compute; written once (create-if-absent), never changed, not yet
//!   expired.
//! - `_reelfarm/probe/{random}`: the short-lived object [`Blobs::check`] writes and deletes.
//!
//! Objects of [`MULTIPART_THRESHOLD`] bytes or more are uploaded in parts of [`PART_SIZE`]
//! (an S3 multipart upload) instead of one request. Every operation is timed and its failures
//! counted in [`BlobMetrics`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::ArtifactKind;

/// Objects at least this large are written with a multipart upload rather than one request.
pub const MULTIPART_THRESHOLD: usize = 16 << 20;
/// The size of each part of a multipart upload (the last one may be smaller).
pub const PART_SIZE: usize = 8 << 20;
/// Parts of one multipart upload in flight at once.
const PART_CONCURRENCY: usize = 4;
/// The longest [`Blobs::check`] waits for one request, and for the whole check.
const CHECK_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const CHECK_TOTAL_TIMEOUT: Duration = Duration::from_millis(4_500);

/// Errors from the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store URL `{url}`: {message}")]
    Config { url: String, message: String },
    #[error("blob `{key}` not found")]
    NotFound { key: String },
    /// The store cannot be used as configured ([`Blobs::check`]); the message says why in one
    /// line.
    #[error("blob store {url}: {message}")]
    Unusable { url: String, message: String },
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
}

/// Where the blobs live, for error messages.
#[derive(Debug, Clone)]
enum Target {
    Local { dir: String },
    S3 { bucket: String, endpoint: String },
}

/// What an object is: its size and the store's entity tag (for S3, an object written by a
/// multipart upload of N parts has an ETag ending in `-N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    pub etag: Option<String>,
}

type OpLabels = Vec<(&'static str, &'static str)>;

/// Timings and failures of blob store operations, by operation (`put`, `put_multipart`,
/// `get`, `head`, `delete`, `list`): `blob_operation_seconds{op}` and `blob_errors{op}`. An
/// answer that the object is missing (or, for a create, already there) is not an error. A
/// `get` is timed until the response starts; streaming its body is not included.
#[derive(Debug)]
pub struct BlobMetrics {
    seconds: Family<OpLabels, Histogram>,
    errors: Family<OpLabels, Counter>,
}

impl Default for BlobMetrics {
    fn default() -> Self {
        BlobMetrics {
            // 1 ms … ~65 s.
            seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 17))
            }),
            errors: Family::default(),
        }
    }
}

impl BlobMetrics {
    fn record(&self, op: &'static str, elapsed: Duration, failed: bool) {
        let labels = vec![("op", op)];
        self.seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if failed {
            self.errors.get_or_create(&labels).inc();
        }
    }

    /// The number of failed `op` operations so far.
    pub fn errors(&self, op: &'static str) -> u64 {
        self.errors.get_or_create(&vec![("op", op)]).get()
    }

    /// Adds the metrics to `registry` (names relative to the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "blob_operation_seconds",
            "Duration of blob store operations, by operation",
            self.seconds.clone(),
        );
        registry.register(
            "blob_errors",
            "Failed blob store operations, by operation",
            self.errors.clone(),
        );
    }
}

/// Whether a failure is an ordinary answer rather than an error of the store.
fn is_answer(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::NotFound { .. } | object_store::Error::AlreadyExists { .. }
    )
}

/// The blob store.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    url: String,
    target: Target,
    metrics: Arc<BlobMetrics>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").field("url", &self.url).finish()
    }
}

impl Blobs {
    /// Opens a local folder given as a path or `file:///path` (created if missing), or an
    /// S3-compatible bucket as `s3://bucket[/prefix]`.
    ///
    /// S3 settings come from the environment, as `object_store` names them:
    /// - `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` for temporary
    ///   credentials); without them the instance or container credentials are used.
    /// - `AWS_REGION` (default `us-east-1`).
    /// - `AWS_ENDPOINT` for other S3-compatible servers (MinIO, Ceph, R2, …), e.g.
    ///   `http://minio:9000`; with an endpoint, requests are path-style
    ///   (`ENDPOINT/bucket/key`), which those servers expect. Set
    ///   `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true` for `bucket.ENDPOINT/key` addressing.
    /// - `AWS_ALLOW_HTTP=true` to allow an `http://` endpoint (refused by default).
    /// - `AWS_TIMEOUT` (default 120 s per request, body included) and `AWS_CONNECT_TIMEOUT`
    ///   (default 3 s), as durations like `30s`.
    ///
    /// A request is retried at most 3 times, within 20 s, so an unreachable endpoint fails in
    /// seconds. Opening checks nothing on the server: call [`Blobs::check`] for that.
    pub fn open(url: &str) -> Result<Blobs, BlobError> {
        Blobs::open_with(url, std::env::vars())
    }

    /// [`Blobs::open`] with the S3 settings given as `AWS_*` variables (e.g. from a
    /// configuration file) instead of the process environment; others are ignored.
    pub fn open_with(
        url: &str,
        settings: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Blobs, BlobError> {
        let config = |message: String| BlobError::Config {
            url: url.to_owned(),
            message,
        };
        let (store, target): (Arc<dyn ObjectStore>, Target) = if url.starts_with("s3://") {
            // Defaults first, so that settings given override them.
            let mut builder = AmazonS3Builder::new()
                .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "120s")
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    "3s",
                )
                .with_retry(RetryConfig {
                    backoff: BackoffConfig {
                        init_backoff: Duration::from_millis(100),
                        max_backoff: Duration::from_secs(2),
                        base: 2.0,
                    },
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(20),
                });
            for (key, value) in settings {
                if key.starts_with("AWS_") {
                    if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                        builder = builder.with_config(key, value);
                    }
                }
            }
            let (bucket, prefix) = url
                .trim_start_matches("s3://")
                .split_once('/')
                .unwrap_or((url.trim_start_matches("s3://"), ""));
            let (bucket, prefix) = (bucket.to_owned(), prefix.trim_matches('/').to_owned());
            let endpoint = builder
                .get_config_value(&AmazonS3ConfigKey::Endpoint)
                .unwrap_or_else(|| {
                    let region = builder
                        .get_config_value(&AmazonS3ConfigKey::Region)
                        .unwrap_or_else(|| "us-east-1".to_owned());
                    format!("https://s3.{region}.amazonaws.com")
                });
            let s3 = builder
                .with_url(url)
                .build()
                .map_err(|e| config(e.to_string()))?;
            // The builder takes only the bucket from the URL; the path becomes a key prefix.
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix.as_str()))
            };
            (store, Target::S3 { bucket, endpoint })
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(dir).map_err(|e| config(e.to_string()))?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| config(e.to_string()))?;
            let target = Target::Local {
                dir: dir.to_owned(),
            };
            (Arc::new(local), target)
        };
        Ok(Blobs {
            store,
            url: url.to_owned(),
            target,
            metrics: Arc::default(),
        })
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The operation metrics of this store (shared by its clones).
    pub fn metrics(&self) -> &BlobMetrics {
        &self.metrics
    }

    /// Adds the blob metrics (`blob_operation_seconds{op}`, `blob_errors{op}`) to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(registry);
    }

    /// Runs one store operation, timing it and counting its failure.
    async fn timed<T>(
        &self,
        op: &'static str,
        operation: impl Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        let start = Instant::now();
        let result = operation.await;
        let failed = result.as_ref().is_err_and(|e| !is_answer(e));
        self.metrics.record(op, start.elapsed(), failed);
        result
    }

    /// Proves that the store is usable: lists `_reelfarm/probe/`, writes a small probe object
    /// there, reads it back and deletes it, each request within 3 s and all within 5 s. The error says in one line what is wrong: the credentials are refused, the
    /// bucket does not exist, the endpoint cannot be reached or does not answer, or the
    /// folder is not writable. Meant for start-up, before the store is relied on.
    pub async fn check(&self) -> Result<(), BlobError> {
        let key = format!("_reelfarm/probe/{}", crate::auth::random_hex(8));
        let probe = Bytes::from(format!("reelfarm probe {key}"));
        let deadline = Instant::now() + CHECK_TOTAL_TIMEOUT;
        // Listing first: some S3-compatible servers create a missing bucket on the first
        // write instead of refusing it, and cleanup relies on listings.
        self.check_step("listing", deadline, self.list("_reelfarm/probe"))
            .await?;
        self.check_step("writing", deadline, self.put(&key, probe.clone()))
            .await?;
        let read = self.check_step("reading", deadline, self.get(&key)).await;
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                // Best effort: the probe should not stay behind.
                let _ = tokio::time::timeout(CHECK_REQUEST_TIMEOUT, self.delete(&key)).await;
                return Err(e);
            }
        };
        if read != probe {
            return Err(self.unusable(format!(
                "the probe object `{key}` read back differs from what was written"
            )));
        }
        self.check_step("deleting", deadline, self.delete(&key))
            .await
    }

    async fn check_step<T>(
        &self,
        doing: &str,
        deadline: Instant,
        step: impl Future<Output = Result<T, BlobError>>,
    ) -> Result<T, BlobError> {
        let limit = deadline
            .saturating_duration_since(Instant::now())
            .min(CHECK_REQUEST_TIMEOUT);
        match tokio::time::timeout(limit, step).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.explain(doing, e)),
            Err(_) => Err(self.unusable(match &self.target {
                Target::S3 { endpoint, .. } => format!(
                    "no answer from {endpoint} within {} s while {doing} a probe object",
                    limit.as_secs_f32().ceil()
                ),
                Target::Local { dir } => format!(
                    "folder `{dir}` did not answer within {} s while {doing} a probe object",
                    limit.as_secs_f32().ceil()
                ),
            })),
        }
    }

    fn unusable(&self, message: String) -> BlobError {
        BlobError::Unusable {
            url: self.url.clone(),
            message,
        }
    }

    /// One line that says why a probe request failed.
    fn explain(&self, doing: &str, e: BlobError) -> BlobError {
        let (kind, chain) = error_chain(&e);
        let text = chain.to_ascii_lowercase();
        let message = match &self.target {
            Target::S3 { bucket, endpoint } => {
                if text.contains("nosuchbucket") {
                    format!("bucket `{bucket}` does not exist")
                } else if matches!(
                    e,
                    BlobError::Store(
                        object_store::Error::PermissionDenied { .. }
                            | object_store::Error::Unauthenticated { .. }
                    )
                ) || text.contains("accessdenied")
                    || text.contains("signaturedoesnotmatch")
                    || text.contains("invalidaccesskeyid")
                {
                    "access denied — check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".to_owned()
                } else if kind == Some(std::io::ErrorKind::ConnectionRefused)
                    || text.contains("connection refused")
                {
                    format!("cannot reach the S3 endpoint at {endpoint}: connection refused")
                } else if text.contains("error sending request")
                    || text.contains("dns error")
                    || text.contains("tcp connect error")
                {
                    format!("cannot reach the S3 endpoint at {endpoint}: {chain}")
                } else {
                    format!("{doing} a probe object failed: {chain}")
                }
            }
            Target::Local { dir } => {
                // The innermost cause says it best ("Not a directory", "Read-only file system").
                let cause = innermost(&e);
                match kind {
                    Some(std::io::ErrorKind::PermissionDenied) => {
                        "folder is not writable: permission denied".to_owned()
                    }
                    _ if doing != "reading" => format!("folder is not writable: {cause}"),
                    _ => format!("{doing} a probe object in `{dir}` failed: {cause}"),
                }
            }
        };
        self.unusable(message)
    }

    /// Key of a template archive.
    pub fn template_key(tenant_id: &str, name: &str, digest: &str) -> String {
        format!("templates/{tenant_id}/{name}/{digest}.tar")
    }

    /// Key of an attempt's output file.
    pub fn output_key(
        tenant_id: &str,
        render_id: &str,
        attempt_id: &str,
        artifact: ArtifactKind,
    ) -> String {
        let file = match artifact {
            ArtifactKind::Video => "video.mp4",
            ArtifactKind::Poster => "poster.jpg",
        };
        format!("renders/{tenant_id}/{render_id}/attempts/{attempt_id}/{file}")
    }

    /// Key of a file of an attempt's live stream (`name` already checked).
    pub fn stream_key(tenant_id: &str, render_id: &str, attempt_id: &str, name: &str) -> String {
        format!("renders/{tenant_id}/{render_id}/attempts/{attempt_id}/stream/{name}")
    }

    /// Key of a segment cache entry (`key`: 64 hex digits, already checked).
    pub fn segment_key(key: &str) -> String {
        let shard = key.get(..2).unwrap_or("__");
        format!("segments/{shard}/{key}")
    }

    /// Stores `data` under `key` (atomically: readers see the whole object or none).
    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        self.put_parts(key, vec![data]).await
    }

    /// Stores pieces as one object without joining them in memory first, atomically. From
    /// [`MULTIPART_THRESHOLD`] bytes on, the object goes up as a multipart upload of
    /// [`PART_SIZE`] parts, a few at once; a failed upload is aborted.
    pub async fn put_parts(&self, key: &str, parts: Vec<Bytes>) -> Result<(), BlobError> {
        let path = ObjectPath::from(key);
        let size: usize = parts.iter().map(Bytes::len).sum();
        if size >= MULTIPART_THRESHOLD {
            return self.put_multipart(&path, parts).await;
        }
        let payload: PutPayload = parts.into_iter().collect();
        self.timed("put", self.store.put(&path, payload)).await?;
        Ok(())
    }

    async fn put_multipart(&self, path: &ObjectPath, parts: Vec<Bytes>) -> Result<(), BlobError> {
        let upload = async {
            let mut upload = self.store.put_multipart(path).await?;
            // The part futures only start when polled; their numbers follow creation order.
            let sending: Vec<_> = split_parts(parts, PART_SIZE)
                .into_iter()
                .map(|part| upload.put_part(part))
                .collect();
            let sent = futures::stream::iter(sending)
                .buffer_unordered(PART_CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await;
            let done = match sent {
                Ok(_) => upload.complete().await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                // Leave no half upload behind (S3 keeps, and bills, its parts until aborted).
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(path = %path, error = %abort, "aborting a multipart upload failed");
                }
                return Err(e);
            }
            Ok(())
        };
        self.timed("put_multipart", upload).await?;
        Ok(())
    }

    /// Stores pieces as one object unless `key` is already there, atomically (readers see the
    /// whole object or none); false when it was there and nothing was written. On S3 the
    /// write is conditional (`If-None-Match: *`), so of two racing writers one wins. Where the
    /// store cannot create conditionally, an existing object is overwritten (callers use this
    /// only for content that is the same whoever writes it).
    pub async fn put_parts_if_absent(
        &self,
        key: &str,
        parts: Vec<Bytes>,
    ) -> Result<bool, BlobError> {
        let path = ObjectPath::from(key);
        if self.exists(key).await? {
            return Ok(false);
        }
        let payload: PutPayload = parts.into_iter().collect();
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let result = self
            .timed("put", self.store.put_opts(&path, payload.clone(), create))
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented) => {
                self.timed("put", self.store.put(&path, payload)).await?;
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object is stored under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(BlobError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The size and entity tag of the object under `key`.
    pub async fn head(&self, key: &str) -> Result<BlobInfo, BlobError> {
        let meta = self
            .timed("head", self.store.head(&ObjectPath::from(key)))
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(BlobInfo {
            size: meta.size,
            etag: meta.e_tag,
        })
    }

    /// Deletes `key`; a key that is not there is fine.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self
            .timed("delete", self.store.delete(&ObjectPath::from(key)))
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The keys under `prefix` (a folder-like prefix: `renders/t/r` lists
    /// `renders/t/r/...`, not `renders/t/r2/...`), in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let prefix = ObjectPath::from(prefix);
        let listing = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect::<Vec<String>>();
        Ok(self.timed("list", listing).await?)
    }

    /// Deletes the files of every attempt of a render except those of `keep`; returns how many
    /// files went.
    pub async fn delete_attempts_except(
        &self,
        tenant_id: &str,
        render_id: &str,
        keep: Option<&str>,
    ) -> Result<usize, BlobError> {
        let attempts = format!("renders/{tenant_id}/{render_id}/attempts");
        let kept = keep.map(|a| format!("{attempts}/{a}/"));
        let doomed: Vec<String> = self
            .list(&attempts)
            .await?
            .into_iter()
            .filter(|key| kept.as_deref().is_none_or(|k| !key.starts_with(k)))
            .collect();
        for key in &doomed {
            self.delete(key).await?;
        }
        Ok(doomed.len())
    }

    /// The whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let (_, stream) = self.get_sized_stream(key).await?;
        let parts: Vec<Bytes> = stream.try_collect().await?;
        Ok(match parts.len() {
            1 => parts.into_iter().next().unwrap_or_default(),
            _ => Bytes::from(parts.concat()),
        })
    }

    /// The object's size and the object as a stream of pieces.
    pub async fn get_sized_stream(
        &self,
        key: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, BlobError>>), BlobError> {
        let result = self
            .timed("get", self.store.get(&ObjectPath::from(key)))
            .await
            .map_err(|e| not_found(key, e))?;
        let size = result.meta.size;
        let metrics = Arc::clone(&self.metrics);
        Ok((
            size,
            result
                .into_stream()
                .map(move |r| {
                    r.map_err(|e| {
                        // A body cut off midway counts as a failed get.
                        metrics.record("get", Duration::ZERO, true);
                        BlobError::from(e)
                    })
                })
                .boxed(),
        ))
    }

    /// The object as a stream of pieces.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        Ok(self.get_sized_stream(key).await?.1)
    }
}

/// Regroups `parts` into pieces of `size` bytes (the last one shorter) without copying.
fn split_parts(parts: Vec<Bytes>, size: usize) -> Vec<PutPayload> {
    let mut out = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut filled = 0;
    for mut bytes in parts {
        while !bytes.is_empty() {
            let take = (size - filled).min(bytes.len());
            current.push(bytes.split_to(take));
            filled += take;
            if filled == size {
                out.push(std::mem::take(&mut current).into_iter().collect());
                filled = 0;
            }
        }
    }
    if !current.is_empty() {
        out.push(current.into_iter().collect());
    }
    out
}

/// The I/O error kind found along an error's sources, and the messages of the chain joined,
/// each once.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> (Option<std::io::ErrorKind>, String) {
    let mut kind = None;
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            kind = kind.or(Some(io.kind()));
        }
        let message = error.to_string();
        if !messages.iter().any(|m| m.contains(&message)) {
            messages.push(message);
        }
        next = error.source();
    }
    (kind, messages.join(": "))
}

/// The message of the last error along `e`'s sources.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

fn not_found(key: &str, e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound {
            key: key.to_owned(),
        },
        other => BlobError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_regrouped_to_the_part_size() {
        let parts = vec![
            Bytes::from(vec![1u8; 5]),
            Bytes::from(vec![2u8; 9]),
            Bytes::from(vec![3u8; 2]),
        ];
        let split = split_parts(parts, 4);
        let sizes: Vec<usize> = split.iter().map(PutPayload::content_length).collect();
        assert_eq!(sizes, vec![4, 4, 4, 4]);
        let joined: Vec<u8> = split
            .iter()
            .flat_map(|p| p.iter().flat_map(|b| b.to_vec()))
            .collect();
        let mut expected = vec![1u8; 5];
        expected.extend([2u8; 9]);
        expected.extend([3u8; 2]);
        assert_eq!(joined, expected);
        assert_eq!(split_parts(vec![Bytes::from(vec![0u8; 3])], 4).len(), 1);
        assert!(split_parts(Vec::new(), 4).is_empty());
    }

    #[tokio::test]
    async fn operations_are_timed_and_failures_counted() -> Result<(), BlobError> {
        let dir = tempfile::tempdir().map_err(|e| BlobError::Config {
            url: String::new(),
            message: e.to_string(),
        })?;
        let blobs = Blobs::open(&dir.path().join("blobs").to_string_lossy())?;
        blobs.put("a/b", Bytes::from_static(b"x")).await?;
        assert!(!blobs.exists("a/missing").await?);
        assert_eq!(
            blobs.metrics().errors("head"),
            0,
            "a missing key is an answer"
        );
        let mut registry = Registry::with_prefix("reelfarm");
        blobs.register_metrics(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).map_err(|e| {
            BlobError::Config {
                url: String::new(),
                message: e.to_string(),
            }
        })?;
        assert!(
            text.contains("reelfarm_blob_operation_seconds_count{op=\"put\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("reelfarm_blob_operation_seconds_count{op=\"head\"} 1"),
            "{text}"
        );
        Ok(())
    }
}
