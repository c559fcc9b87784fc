//! Live HLS streams of running attempts: `WorkerService.PublishStream` stores the files, and
//! `Render.stream_url` links to them through the signed HTTP endpoint (`crate::http`).
//!
//! A worker publishes each media segment (`seg-NNNNN.ts`), then the playlist (`index.m3u8`)
//! that names it, under the attempt ([`Blobs::stream_key`]). The first playlist an attempt
//! publishes is recorded on the render (`Job::stream_attempt_id`, in the store, so a restarted
//! coordinator still serves it) and wakes its watchers.

use proto::v1;
use tonic::{Status, Streaming};

use super::convert::fence_from_proto;
use super::transfer;
use super::worker::WorkerApi;
use super::Shared;
use crate::blobs::Blobs;
use crate::error::ApiError;
use crate::model::{Job, JobState};

/// The playlist's name.
pub const PLAYLIST: &str = "index.m3u8";
/// Largest playlist accepted.
const MAX_PLAYLIST_BYTES: u64 = 1 << 20;
/// Largest media segment accepted.
const MAX_MEDIA_BYTES: u64 = 64 << 20;
/// How long a `stream_url` stays valid after it is handed out.
const STREAM_LINK_TTL_MS: i64 = 24 * 3600 * 1000;

/// A stream file name: `index.m3u8` or `seg-NNNNN.ts` (exactly five digits).
pub fn valid_name(name: &str) -> bool {
    name == PLAYLIST
        || name
            .strip_prefix("seg-")
            .and_then(|n| n.strip_suffix(".ts"))
            .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The signed link to a render's live stream, or empty: set when the current attempt (the
/// winning one once succeeded) has published a playlist and links are served.
pub fn stream_url(shared: &Shared, job: &Job) -> String {
    let live = matches!(job.state, JobState::Running | JobState::Succeeded)
        && !job.stream_attempt_id.is_empty()
        && job.stream_attempt_id == job.attempt_id;
    match shared.downloads.as_ref() {
        Some(signer) if live => {
            signer.stream_url(&job.id, &job.attempt_id, shared.now() + STREAM_LINK_TTL_MS)
        }
        _ => String::new(),
    }
}

/// PublishStream: one file of a current attempt's stream.
pub async fn publish(
    api: &WorkerApi,
    mut stream: Streaming<v1::PublishStreamRequest>,
) -> Result<v1::PublishStreamResponse, Status> {
    use v1::publish_stream_request::Part;
    let shared = api.shared();
    let header = transfer::header(&mut stream, |m| match m.part {
        Some(Part::Header(h)) => Some(h),
        _ => None,
    })
    .await?;
    if header.worker_id.is_empty() {
        return Err(ApiError::invalid("header.worker_id", "required").into());
    }
    let fence = fence_from_proto(header.attempt.as_ref(), "header.attempt")?;
    if !valid_name(&header.name) {
        return Err(ApiError::invalid(
            "header.name",
            "must be `index.m3u8` or `seg-NNNNN.ts` (five digits)",
        )
        .into());
    }
    // Refuse a stale attempt before taking its bytes.
    let job = api.current(&fence, &header.worker_id).await?;
    let playlist = header.name == PLAYLIST;
    let limit = if playlist {
        MAX_PLAYLIST_BYTES
    } else {
        MAX_MEDIA_BYTES
    };
    let name = header.name.as_str();
    let received = transfer::receive(
        &mut stream,
        limit,
        |m| match m.part {
            Some(Part::Chunk(c)) => Some(c),
            _ => None,
        },
        || ApiError::ResourceExhausted {
            message: format!("{name} larger than {} MiB", limit >> 20),
            retry_after_ms: 0,
        },
    )
    .await?;
    if received.size == 0 {
        return Err(ApiError::invalid("chunk", format!("empty {name}")).into());
    }
    let key = Blobs::stream_key(&job.tenant_id, &job.id, &fence.attempt_id, name);
    shared
        .blobs
        .put_parts(&key, received.parts)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if playlist && job.stream_attempt_id != fence.attempt_id {
        // The first playlist of this attempt: the render has a stream now. (A stale attempt's
        // files are removed with the other losing attempts' once the render finishes.)
        shared
            .store
            .set_stream(&fence)
            .await
            .map_err(|e| api.stale(e))?;
        shared.changed(&job.id);
    }
    Ok(v1::PublishStreamResponse {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_playlist_or_numbered_segments() {
        for good in ["index.m3u8", "seg-00000.ts", "seg-12345.ts"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "index.m3u",
            "INDEX.m3u8",
            "seg-0000.ts",
            "seg-000000.ts",
            "seg-0000a.ts",
            "seg-00000.mp4",
            "../seg-00000.ts",
            "seg-00000.ts/x",
            "seg-+1234.ts",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
