//! The farm-wide segment cache behind `WorkerService.FetchSegment` and `StoreSegment`.
//!
//! Workers render every video as independent segments and look each one up by a key they
//! compute from everything its pixels depend on (template version, preset, encoder and renderer
//! versions, its time range, the tokens that change it). The coordinator only stores bytes
//! under keys: entries live in the blob store at [`Blobs::segment_key`], are written whole with
//! create-if-absent, and never change. Nothing here expires them yet.

use proto::v1;
use tonic::{Status, Streaming};

use super::render::BoxStream;
use super::transfer::{self, chunked};
use super::Shared;
use crate::blobs::{BlobError, Blobs};
use crate::error::ApiError;

/// Largest cache entry accepted.
pub const MAX_SEGMENT_BYTES: u64 = 64 << 20;

/// A cache key: exactly 64 lowercase hex digits.
pub fn check_key(field: &str, key: &str) -> Result<(), ApiError> {
    if key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "must be exactly 64 lowercase hex digits",
        ))
    }
}

/// `worker_id` names a worker the store knows (registered, not yet expired or deregistered).
async fn registered(shared: &Shared, field: &str, worker_id: &str) -> Result<(), ApiError> {
    if worker_id.is_empty() {
        return Err(ApiError::invalid(field, "required"));
    }
    match shared.store.worker(worker_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::Unauthenticated(
            "worker_id is not a registered worker: Register again",
        )),
    }
}

/// FetchSegment: the entry's bytes, NOT_FOUND when absent.
pub async fn fetch(
    shared: &Shared,
    req: v1::FetchSegmentRequest,
) -> Result<BoxStream<v1::Chunk>, ApiError> {
    check_key("key", &req.key)?;
    registered(shared, "worker_id", &req.worker_id).await?;
    match shared.blobs.get_stream(&Blobs::segment_key(&req.key)).await {
        Ok(stream) => Ok(chunked(stream)),
        Err(BlobError::NotFound { .. }) => Err(ApiError::NotFound(format!("segment {}", req.key))),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// StoreSegment: the header, then the bytes; stored only when they are all there.
pub async fn store(
    shared: &Shared,
    mut stream: Streaming<v1::StoreSegmentRequest>,
) -> Result<v1::StoreSegmentResponse, Status> {
    use v1::store_segment_request::Part;
    let header = transfer::header(&mut stream, |m| match m.part {
        Some(Part::Header(h)) => Some(h),
        _ => None,
    })
    .await?;
    check_key("header.key", &header.key)?;
    if header.size == 0 {
        return Err(ApiError::invalid("header.size", "required: the entry's size in bytes").into());
    }
    if header.size > MAX_SEGMENT_BYTES {
        return Err(ApiError::ResourceExhausted {
            message: format!(
                "header.size: a segment of {} bytes; entries are at most {} MiB",
                header.size,
                MAX_SEGMENT_BYTES >> 20
            ),
            retry_after_ms: 0,
        }
        .into());
    }
    registered(shared, "header.worker_id", &header.worker_id).await?;
    let size = header.size;
    let mismatch = |got: &str| {
        ApiError::invalid(
            "header.size",
            format!("{size} bytes announced, {got} received; nothing was stored"),
        )
    };
    let received = transfer::receive(
        &mut stream,
        size,
        |m| match m.part {
            Some(Part::Chunk(c)) => Some(c),
            _ => None,
        },
        || mismatch("more"),
    )
    .await?;
    if received.size != size {
        return Err(mismatch(&received.size.to_string()).into());
    }
    let stored = shared
        .blobs
        .put_parts_if_absent(&Blobs::segment_key(&header.key), received.parts)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(v1::StoreSegmentResponse { stored })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_lowercase_hex_digits() {
        assert!(check_key("key", &"0123456789abcdef".repeat(4)).is_ok());
        for bad in [
            String::new(),
            "a".repeat(63),
            "a".repeat(65),
            "A".repeat(64),
            "g".repeat(64),
            format!("../{}", "a".repeat(61)),
        ] {
            let err = check_key("header.key", &bad);
            assert!(
                matches!(&err, Err(ApiError::InvalidArgument { field, .. }) if field == "header.key"),
                "{bad}: {err:?}"
            );
        }
    }
}
