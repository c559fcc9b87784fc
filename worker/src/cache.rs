//! Template bundles on disk, by archive digest: `<cache>/templates/<digest>/`. A bundle is
//! fetched from the coordinator once, checked against its digest, and unpacked atomically; slots
//! that need the same digest at once wait for the first one's unpack.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use proto::v1::{AttemptRef, FailureClass, FetchTemplateRequest};
use sha2::{Digest as _, Sha256};
use template::{ArchiveError, Limits};
use tonic::Status;
use tracing::{debug, info, warn};

use crate::client::{self, Backoff, Client};
use crate::error::AttemptError;

/// Tries of a FetchTemplate that fails with a transient status.
const FETCH_TRIES: u32 = 3;

/// The bundle cache.
pub(crate) struct TemplateCache {
    root: PathBuf,
    limits: Limits,
    /// One lock per digest being fetched, so one slot fetches and the others wait.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TemplateCache {
    pub(crate) fn new(root: PathBuf) -> Self {
        TemplateCache {
            root,
            limits: Limits::default(),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The folder of the bundle with archive digest `digest`, fetching and unpacking it first if
    /// it is not there yet.
    pub(crate) async fn ensure(
        &self,
        client: &Client,
        worker_id: &str,
        attempt: &AttemptRef,
        digest: &str,
    ) -> Result<PathBuf, AttemptError> {
        if !is_digest(digest) {
            return Err(AttemptError::failed(
                FailureClass::Infrastructure,
                format!("the coordinator sent an invalid template digest `{digest}` (expected 64 lowercase hex digits)"),
            ));
        }
        let dir = self.root.join(digest);
        if exists(&dir).await {
            debug!(digest, "template bundle cached");
            return Ok(dir);
        }
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(digest.to_owned()).or_default())
        };
        let _guard = lock.lock().await;
        if exists(&dir).await {
            return Ok(dir);
        }
        let bytes = fetch(client, worker_id, attempt, self.limits.max_archive_bytes).await?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != digest {
            return Err(AttemptError::failed(
                FailureClass::Infrastructure,
                format!(
                    "template archive from the coordinator has digest {got}, expected {digest}"
                ),
            ));
        }
        let limits = self.limits;
        let dest = dir.clone();
        let unpacked =
            tokio::task::spawn_blocking(move || template::unpack(&bytes, &dest, &limits))
                .await
                .map_err(|e| {
                    AttemptError::failed(
                        FailureClass::Infrastructure,
                        format!("unpacking the template bundle panicked: {e}"),
                    )
                })?;
        match unpacked {
            Ok(info) => {
                info!(
                    digest,
                    files = info.files.len(),
                    bytes = info.unpacked_bytes,
                    "template bundle unpacked"
                );
                Ok(dir)
            }
            // Another process sharing the cache got there first; its unpack is complete.
            Err(ArchiveError::DestinationExists { .. }) => Ok(dir),
            Err(e @ ArchiveError::Io { .. }) => Err(AttemptError::failed(
                FailureClass::Infrastructure,
                format!("cannot unpack the template bundle: {e}"),
            )),
            Err(e) => Err(AttemptError::failed(
                FailureClass::InvalidInput,
                format!("the template archive is not a valid bundle: {e}"),
            )),
        }
    }
}

async fn exists(path: &Path) -> bool {
    tokio::fs::try_exists(path).await.unwrap_or(false)
}

/// A lowercase hex SHA-256: safe as a folder name.
fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Streams the attempt's template archive into memory (at most `max_bytes`), retrying transient
/// failures.
async fn fetch(
    client: &Client,
    worker_id: &str,
    attempt: &AttemptRef,
    max_bytes: u64,
) -> Result<Vec<u8>, AttemptError> {
    let mut backoff = Backoff::new(
        std::time::Duration::from_millis(500),
        std::time::Duration::from_secs(4),
    );
    let mut tries = 0;
    loop {
        tries += 1;
        let message = FetchTemplateRequest {
            worker_id: worker_id.to_owned(),
            attempt: Some(attempt.clone()),
        };
        let result = client::with_deadline(
            client::TRANSFER_TIMEOUT,
            fetch_once(client.clone(), message, max_bytes),
        )
        .await;
        match result {
            Ok(Ok(bytes)) => return Ok(bytes),
            Ok(Err(too_large)) => return Err(too_large),
            Err(status) if client::is_stale(&status) => {
                return Err(AttemptError::Stale(format!(
                    "FetchTemplate: {}",
                    status.message()
                )))
            }
            Err(status) if client::is_transient(&status) && tries < FETCH_TRIES => {
                let delay = backoff.after(&status);
                warn!(code = ?status.code(), detail = status.message(), ?delay, "FetchTemplate failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(status) => {
                return Err(AttemptError::failed(
                    FailureClass::Infrastructure,
                    format!(
                        "cannot fetch the template bundle: {:?}: {}",
                        status.code(),
                        status.message()
                    ),
                ))
            }
        }
    }
}

/// One FetchTemplate call. The outer `Result` is the call's status; the inner one an archive
/// over the size limit.
async fn fetch_once(
    mut client: Client,
    message: FetchTemplateRequest,
    max_bytes: u64,
) -> Result<Result<Vec<u8>, AttemptError>, Status> {
    let mut stream = client
        .fetch_template(client::request(message, client::TRANSFER_TIMEOUT))
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        if (bytes.len() + chunk.data.len()) as u64 > max_bytes {
            return Ok(Err(AttemptError::failed(
                FailureClass::InvalidInput,
                format!("the template archive is larger than the {max_bytes}-byte limit"),
            )));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    Ok(Ok(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_before_they_name_folders() {
        assert!(is_digest(&"ab".repeat(32)));
        assert!(!is_digest(&"AB".repeat(32)));
        assert!(!is_digest("../../etc"));
        assert!(!is_digest(&"a".repeat(63)));
    }
}
