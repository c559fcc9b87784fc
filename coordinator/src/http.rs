//! The coordinator's public HTTP endpoint: signed, expiring download links for finished renders
//! (`GET /v1/renders/{id}/{video|poster}?expires=…&sig=…`), for senders that fetch media by URL,
//! and live HLS streams of attempts (`GET /v1/streams/{token}/{index.m3u8|seg-NNNNN.ts}`, the
//! signature in the path so that a plain HLS player resolves the playlist's relative segment
//! names; see [`crate::links`]), the JSON render API ([`crate::rest`]), and the probes `/healthz`
//! (the process answers) and `/readyz` (the job store and the blob store answer). Other HTTP routes
//! (event ingestion) are merged in by whoever composes the server.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::blobs::{BlobError, Blobs};
use crate::model::{ArtifactKind, JobState, Millis};
use crate::service::{valid_stream_name, Shared};

/// The signer of the links this endpoint checks; it lives in [`crate::links`] so that the
/// services, which hand links out, do not depend on this module.

#[derive(Debug, serde::Deserialize)]
struct LinkQuery {
    expires: Millis,
    sig: String,
}

/// `GET /v1/renders/{id}/{artifact}` with a signed link, streams, and the JSON render API.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .route("/v1/renders/{id}/{artifact}", axum::routing::get(download))
        .route(
            "/v1/streams/{token}/{name}",
            axum::routing::get(stream_file),
        )
        .with_state(shared.clone())
        .merge(crate::rest::router(shared))
}

/// Longest wait for the store or the blob store in a readiness probe.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Liveness: the process answers HTTP.
async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n")
}

/// Readiness: the job store and the blob store both answer (within 2 s each); 503 naming the
/// one that does not.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let store = tokio::time::timeout(READY_TIMEOUT, shared.store.ping());
    let blobs = tokio::time::timeout(READY_TIMEOUT, shared.blobs.exists(READY_PROBE_KEY));
    let (store, blobs) = tokio::join!(store, blobs);
    let mut problems = Vec::new();
    match store {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("job store: {e}")),
        Err(_) => problems.push(format!("job store: no answer within {READY_TIMEOUT:?}")),
    }
    match blobs {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("blob store: {e}")),
        Err(_) => problems.push(format!("blob store: no answer within {READY_TIMEOUT:?}")),
    }
    if problems.is_empty() {
        return plain(StatusCode::OK, "ready\n");
    }
    let text = format!("not ready: {}\n", problems.join("; "));
    tracing::warn!(problems = %problems.join("; "), "readiness probe failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// A key no object has: its lookup proves the blob store answers.
const READY_PROBE_KEY: &str = "_reelfarm/ready";

fn plain(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn download(
    State(shared): State<Arc<Shared>>,
    Path((id, artifact)): Path<(String, String)>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return plain(StatusCode::BAD_REQUEST, "expected ?expires=…&sig=…");
    };
    let Some(signer) = shared.downloads.as_ref() else {
        return plain(StatusCode::NOT_FOUND, "downloads are not served here");
    };
    let Ok(artifact) = artifact.parse::<ArtifactKind>() else {
        return plain(StatusCode::NOT_FOUND, "no such file: use video or poster");
    };
    if !signer.verify(&id, artifact, q.expires, &q.sig) {
        return plain(StatusCode::FORBIDDEN, "bad signature");
    }
    if shared.now() > q.expires {
        return plain(StatusCode::GONE, "this link has expired");
    }
    let job = match shared.store.job(None, &id).await {
        Ok(Some(job)) if job.state == JobState::Succeeded => job,
        Ok(_) => return plain(StatusCode::NOT_FOUND, "no finished render here"),
        Err(e) => {
            tracing::warn!(error = %e, "download: reading the render failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let file = job.output.as_ref().and_then(|o| match artifact {
        ArtifactKind::Video => o.video.clone(),
        ArtifactKind::Poster => o.poster.clone(),
    });
    let Some(file) = file else {
        return plain(StatusCode::NOT_FOUND, "this render has no such file");
    };
    let stream = match shared.blobs.get_stream(&file.blob_key).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "download: reading the blob failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let content_type = match artifact {
        ArtifactKind::Video => "video/mp4",
        ArtifactKind::Poster => "image/jpeg",
    };
    let body = axum::body::Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other)));
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_LENGTH, file.bytes.to_string()),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/streams/{token}/{name}`: a file of an attempt's live stream. The playlist is read
/// afresh each time (`no-cache`: it grows while the attempt runs); a media segment never
/// changes once published.
async fn stream_file(
    State(shared): State<Arc<Shared>>,
    Path((token, name)): Path<(String, String)>,
) -> Response {
    let Some(signer) = shared.downloads.as_ref() else {
        return plain(StatusCode::NOT_FOUND, "streams are not served here");
    };
    let Some(grant) = signer.verify_stream_token(&token) else {
        return plain(StatusCode::FORBIDDEN, "bad signature");
    };
    if shared.now() > grant.expires_ms {
        return plain(StatusCode::GONE, "this link has expired");
    }
    if !valid_stream_name(&name) {
        return plain(StatusCode::NOT_FOUND, "no such file in a stream");
    }
    let job = match shared.store.job(None, &grant.render_id).await {
        Ok(Some(job)) => job,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such render"),
        Err(e) => {
            tracing::warn!(error = %e, "stream: reading the render failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let key = Blobs::stream_key(&job.tenant_id, &job.id, &grant.attempt_id, &name);
    let (size, stream) = match shared.blobs.get_sized_stream(&key).await {
        Ok(found) => found,
        Err(BlobError::NotFound { .. }) => {
            return plain(StatusCode::NOT_FOUND, "not published (yet)")
        }
        Err(e) => {
            tracing::warn!(error = %e, "stream: reading the blob failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let (content_type, cache) = if name.ends_with(".m3u8") {
        ("application/vnd.apple.mpegurl", "no-cache")
    } else {
        ("video/mp2t", "private, max-age=3600")
    };
    let body = axum::body::Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other)));
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CACHE_CONTROL, cache.to_owned()),
            // Browser players (hls.js) fetch from pages of other origins; the link is the
            // credential.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
        ],
        body,
    )
        .into_response()
}
