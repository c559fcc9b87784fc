//! Files streamed in chunks, both ways: the one reader of client-streamed uploads (a header
//! message, then chunks of at most [`proto::CHUNK_BYTES`]) and the one re-chunker of blobs sent
//! as `stream Chunk`. Every upload and download RPC goes through these.

use bytes::Bytes;
use futures::StreamExt;
use proto::v1;
use sha2::{Digest, Sha256};
use tonic::{Status, Streaming};

use super::render::BoxStream;
use crate::blobs::BlobError;
use crate::error::ApiError;

/// A streamed chunk keeps to the contract: at most [`proto::CHUNK_BYTES`].
pub(super) fn check_chunk(chunk: &[u8]) -> Result<(), ApiError> {
    if chunk.len() > proto::CHUNK_BYTES {
        return Err(ApiError::invalid(
            "chunk",
            format!(
                "a chunk of {} bytes; chunks are at most {} bytes (1 MiB)",
                chunk.len(),
                proto::CHUNK_BYTES
            ),
        ));
    }
    Ok(())
}

/// The first message of an upload, which must be its header (`header_of` picks it out).
pub(super) async fn header<M, H>(
    stream: &mut Streaming<M>,
    header_of: impl FnOnce(M) -> Option<H>,
) -> Result<H, Status> {
    match stream.message().await?.and_then(header_of) {
        Some(h) => Ok(h),
        None => {
            Err(ApiError::invalid("header", "the first message must be the upload header").into())
        }
    }
}

/// The bytes of an upload, as received.
pub(super) struct Received {
    /// The chunks in order (stored as one object without joining them).
    pub parts: Vec<Bytes>,
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

impl Received {
    /// The bytes joined into one buffer.
    pub fn joined(&self) -> Bytes {
        match self.parts.as_slice() {
            [one] => one.clone(),
            parts => Bytes::from(parts.concat()),
        }
    }
}

/// Reads the chunks after the header to the end of the stream (`chunk_of` picks a message's
/// chunk; any other message is INVALID_ARGUMENT). More than `limit` bytes in all is answered
/// with `too_large()`, as soon as the limit is passed.
pub(super) async fn receive<M>(
    stream: &mut Streaming<M>,
    limit: u64,
    chunk_of: impl Fn(M) -> Option<Vec<u8>>,
    too_large: impl Fn() -> ApiError,
) -> Result<Received, Status> {
    let mut parts = Vec::new();
    let mut size = 0u64;
    let mut hasher = Sha256::new();
    while let Some(msg) = stream.message().await? {
        let Some(chunk) = chunk_of(msg) else {
            return Err(
                ApiError::invalid("header", "only the first message may be a header").into(),
            );
        };
        check_chunk(&chunk)?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large().into());
        }
        hasher.update(&chunk);
        parts.push(Bytes::from(chunk));
    }
    Ok(Received {
        parts,
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Re-chunks a blob stream into messages of at most [`proto::CHUNK_BYTES`].
pub fn chunked(
    stream: futures::stream::BoxStream<'static, Result<Bytes, BlobError>>,
) -> BoxStream<v1::Chunk> {
    Box::pin(stream.flat_map(|piece| {
        let items: Vec<Result<v1::Chunk, Status>> = match piece {
            Ok(b) => b
                .chunks(proto::CHUNK_BYTES)
                .map(|c| Ok(v1::Chunk { data: c.to_vec() }))
                .collect(),
            Err(e) => vec![Err(Status::unavailable(e.to_string()))],
        };
        futures::stream::iter(items)
    }))
}
