//! UploadOutput: a header message, then the file in [`proto::CHUNK_BYTES`] chunks read as they
//! are sent (never the whole file in memory), checked against the size and SHA-256 the
//! coordinator stored.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::stream;
use proto::v1::upload_output_request::Part;
use proto::v1::{Artifact, AttemptRef, FailureClass, UploadOutputHeader, UploadOutputRequest};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tracing::{debug, warn};

use crate::client::{self, Backoff, Client};
use crate::error::AttemptError;

/// Tries of an upload that fails with a transient status.
const UPLOAD_TRIES: u32 = 3;

/// Uploads `path` as `artifact` of `attempt`, retrying transient failures from the start.
pub(crate) async fn upload(
    client: &Client,
    worker_id: &str,
    attempt: &AttemptRef,
    artifact: Artifact,
    path: &Path,
) -> Result<(), AttemptError> {
    let infra = |message: String| AttemptError::failed(FailureClass::Infrastructure, message);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
    let mut tries = 0;
    loop {
        tries += 1;
        let header = UploadOutputHeader {
            worker_id: worker_id.to_owned(),
            attempt: Some(attempt.clone()),
            artifact: artifact as i32,
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| infra(format!("cannot open {}: {e}", path.display())))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| infra(format!("cannot read {}: {e}", path.display())))?
            .len();
        let outcome = Arc::new(Mutex::new(ReadOutcome::default()));
        let body = file_stream(header, file, path.to_owned(), Arc::clone(&outcome));
        let mut c = client.clone();
        let result = client::with_deadline(client::TRANSFER_TIMEOUT, async {
            c.upload_output(client::request(body, client::TRANSFER_TIMEOUT))
                .await
                .map(tonic::Response::into_inner)
        })
        .await;
        let read = std::mem::take(&mut *outcome.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(error) = read.error {
            // The coordinator may have stored a truncated file; it is never completed.
            return Err(infra(error));
        }
        match result {
            Ok(stored) => {
                let sha256 = read.sha256.unwrap_or_default();
                if stored.size_bytes != size || !stored.sha256.eq_ignore_ascii_case(&sha256) {
                    return Err(infra(format!(
                        "{} upload stored {} bytes with SHA-256 {}; sent {size} bytes with SHA-256 {sha256}",
                        artifact.as_str_name(),
                        stored.size_bytes,
                        stored.sha256
                    )));
                }
                debug!(artifact = artifact.as_str_name(), bytes = size, "uploaded");
                return Ok(());
            }
            Err(status) if client::is_stale(&status) => {
                return Err(AttemptError::Stale(format!(
                    "UploadOutput: {}",
                    status.message()
                )))
            }
            Err(status) if client::is_transient(&status) && tries < UPLOAD_TRIES => {
                let delay = backoff.after(&status);
                warn!(code = ?status.code(), detail = status.message(), ?delay, "UploadOutput failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(status) => {
                return Err(infra(format!(
                    "cannot upload the {}: {:?}: {}",
                    artifact.as_str_name(),
                    status.code(),
                    status.message()
                )))
            }
        }
    }
}

/// How reading the file for the stream went: its SHA-256 once read to the end, or why reading
/// stopped.
#[derive(Default)]
struct ReadOutcome {
    sha256: Option<String>,
    error: Option<String>,
}

enum State {
    Header(UploadOutputHeader, tokio::fs::File),
    Body(tokio::fs::File, Sha256),
}

/// The request stream: the header, then chunks as they are read. A read error ends the stream
/// early and is recorded in `outcome`.
fn file_stream(
    header: UploadOutputHeader,
    file: tokio::fs::File,
    path: PathBuf,
    outcome: Arc<Mutex<ReadOutcome>>,
) -> impl futures::Stream<Item = UploadOutputRequest> + Send + 'static {
    stream::unfold(State::Header(header, file), move |state| {
        let path = path.clone();
        let outcome = Arc::clone(&outcome);
        async move {
            match state {
                State::Header(header, file) => Some((
                    UploadOutputRequest {
                        part: Some(Part::Header(header)),
                    },
                    State::Body(file, Sha256::new()),
                )),
                State::Body(mut file, mut hasher) => match read_chunk(&mut file).await {
                    Ok(chunk) if chunk.is_empty() => {
                        let mut o = outcome.lock().unwrap_or_else(PoisonError::into_inner);
                        o.sha256 = Some(hex::encode(hasher.finalize()));
                        None
                    }
                    Ok(chunk) => {
                        hasher.update(&chunk);
                        Some((
                            UploadOutputRequest {
                                part: Some(Part::Chunk(chunk)),
                            },
                            State::Body(file, hasher),
                        ))
                    }
                    Err(e) => {
                        let mut o = outcome.lock().unwrap_or_else(PoisonError::into_inner);
                        o.error = Some(format!("cannot read {}: {e}", path.display()));
                        None
                    }
                },
            }
        }
    })
}

/// Up to [`proto::CHUNK_BYTES`] bytes: a full chunk unless the file ends; empty at the end.
async fn read_chunk(file: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; proto::CHUNK_BYTES];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}
