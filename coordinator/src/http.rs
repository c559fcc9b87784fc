//! The coordinator's public HTTP endpoint: signed, expiring download links for finished renders
//! (`GET /v1/renders/{id}/{video|poster}?expires=…&sig=…`), for senders that fetch media by URL.
//! Other HTTP routes (event ingestion) are merged in by whoever composes the server.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{ArtifactKind, JobState, Millis};
use crate::service::Shared;

/// Signs and checks download links with a secret key (HMAC-SHA256).
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
    /// Base of the links, e.g. `http://host:7601`.
    pub base_url: String,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl UrlSigner {
    pub fn new(key: &[u8], base_url: impl Into<String>) -> UrlSigner {
        UrlSigner {
            key: key.to_vec(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    fn mac(&self, id: &str, artifact: ArtifactKind, expires_ms: Millis) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{id}\n{}\n{expires_ms}", artifact.as_str()).as_bytes());
        mac
    }

    /// The link to `artifact` of render `id`, valid until `expires_ms`.
    pub fn url(&self, id: &str, artifact: ArtifactKind, expires_ms: Millis) -> String {
        let sig = hex::encode(self.mac(id, artifact, expires_ms).finalize().into_bytes());
        format!(
            "{}/v1/renders/{id}/{}?expires={expires_ms}&sig={sig}",
            self.base_url,
            artifact.as_str()
        )
    }

    /// Whether `sig` (hex) signs this link (compared in constant time).
    pub fn verify(&self, id: &str, artifact: ArtifactKind, expires_ms: Millis, sig: &str) -> bool {
        match hex::decode(sig) {
            Ok(bytes) => self
                .mac(id, artifact, expires_ms)
                .verify_slice(&bytes)
                .is_ok(),
            Err(_) => false,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct LinkQuery {
    expires: Millis,
    sig: String,
}

/// `GET /v1/renders/{id}/{artifact}` with a signed link.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/v1/renders/{id}/{artifact}", axum::routing::get(download))
        .with_state(shared)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_only_unchanged() {
        let s = UrlSigner::new(b"secret", "http://h:1/");
        let url = s.url("r1", ArtifactKind::Video, 1000);
        assert!(url.starts_with("http://h:1/v1/renders/r1/video?expires=1000&sig="));
        let sig = url.rsplit("sig=").next().unwrap_or_default();
        assert!(s.verify("r1", ArtifactKind::Video, 1000, sig));
        assert!(!s.verify("r1", ArtifactKind::Video, 1001, sig));
        assert!(!s.verify("r2", ArtifactKind::Video, 1000, sig));
        assert!(!s.verify("r1", ArtifactKind::Poster, 1000, sig));
        assert!(!UrlSigner::new(b"other", "x").verify("r1", ArtifactKind::Video, 1000, sig));
        assert!(!s.verify("r1", ArtifactKind::Video, 1000, "zz"));
    }
}
