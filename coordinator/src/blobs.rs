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

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use crate::model::ArtifactKind;

/// Errors from the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store URL `{url}`: {message}")]
    Config { url: String, message: String },
    #[error("blob `{key}` not found")]
    NotFound { key: String },
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
}

/// The blob store.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").field("url", &self.url).finish()
    }
}

impl Blobs {
    /// Opens `s3://bucket[/prefix]` (credentials and endpoint from the usual `AWS_*`
    /// environment variables, e.g. `AWS_ENDPOINT` for MinIO) or a local folder given as a path
    /// or `file:///path` (created if missing).
    pub fn open(url: &str) -> Result<Blobs, BlobError> {
        let config = |message: String| BlobError::Config {
            url: url.to_owned(),
            message,
        };
        let store: Arc<dyn ObjectStore> = if url.starts_with("s3://") {
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| config(e.to_string()))?;
            Arc::new(s3)
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(dir).map_err(|e| config(e.to_string()))?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| config(e.to_string()))?;
            Arc::new(local)
        };
        Ok(Blobs {
            store,
            url: url.to_owned(),
        })
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
        self.store
            .put(&ObjectPath::from(key), PutPayload::from_bytes(data))
            .await?;
        Ok(())
    }

    /// Stores pieces as one object without joining them in memory first.
    pub async fn put_parts(&self, key: &str, parts: Vec<Bytes>) -> Result<(), BlobError> {
        let payload: PutPayload = parts.into_iter().collect();
        self.store.put(&ObjectPath::from(key), payload).await?;
        Ok(())
    }

    /// Stores pieces as one object unless `key` is already there, atomically (readers see the
    /// whole object or none); false when it was there and nothing was written. Where the store
    /// cannot create conditionally, an existing object is overwritten (callers use this only
    /// for content that is the same whoever writes it).
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
        match self.store.put_opts(&path, payload.clone(), create).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented) => {
                self.store.put(&path, payload).await?;
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object is stored under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `key`; a key that is not there is fine.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
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
        let mut listing = self.store.list(Some(&ObjectPath::from(attempts.as_str())));
        let mut doomed = Vec::new();
        while let Some(meta) = listing.next().await {
            let location = meta?.location;
            if kept
                .as_deref()
                .is_none_or(|k| !location.as_ref().starts_with(k))
            {
                doomed.push(location);
            }
        }
        for location in &doomed {
            self.delete(location.as_ref()).await?;
        }
        Ok(doomed.len())
    }

    /// The whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let result = self
            .store
            .get(&ObjectPath::from(key))
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(result.bytes().await?)
    }

    /// The object's size and the object as a stream of pieces.
    pub async fn get_sized_stream(
        &self,
        key: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, BlobError>>), BlobError> {
        let result = self
            .store
            .get(&ObjectPath::from(key))
            .await
            .map_err(|e| not_found(key, e))?;
        let size = result.meta.size;
        Ok((
            size,
            result
                .into_stream()
                .map(|r| r.map_err(BlobError::from))
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

    #[tokio::test]
    async fn local_round_trip() -> Result<(), BlobError> {
        let dir = tempfile::tempdir().map_err(|e| BlobError::Config {
            url: String::new(),
            message: e.to_string(),
        })?;
        let blobs = Blobs::open(&dir.path().join("blobs").to_string_lossy())?;
        let key = Blobs::output_key("t", "r", "a", ArtifactKind::Video);
        blobs
            .put_parts(
                &key,
                vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")],
            )
            .await?;
        assert_eq!(blobs.get(&key).await?, Bytes::from_static(b"abcd"));
        assert!(matches!(
            blobs.get("renders/none").await,
            Err(BlobError::NotFound { .. })
        ));
        // Create-if-absent: the first write wins, a second one changes nothing.
        let seg = Blobs::segment_key(&"ab".repeat(32));
        assert!(seg.starts_with("segments/ab/abab"));
        assert!(!blobs.exists(&seg).await?);
        assert!(
            blobs
                .put_parts_if_absent(&seg, vec![Bytes::from_static(b"one")])
                .await?
        );
        assert!(
            !blobs
                .put_parts_if_absent(&seg, vec![Bytes::from_static(b"two")])
                .await?
        );
        assert_eq!(blobs.get(&seg).await?, Bytes::from_static(b"one"));
        Ok(())
    }
}
