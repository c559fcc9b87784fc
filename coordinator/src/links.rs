//! Signed, expiring download links to finished renders: made by the RenderService
//! (`CreateDownloadUrl`) and checked by the HTTP endpoint in [`crate::http`].
//!
//! A link is `<base>/v1/renders/<id>/<video|poster>?expires=<ms>&sig=<hex>`, where `sig` is
//! HMAC-SHA256 over the render id, the artifact and the expiry, so none of them can be changed.
//!
//! A live stream's link is `<base>/v1/streams/<token>/index.m3u8`, its media segments
//! `<base>/v1/streams/<token>/seg-NNNNN.ts`: the signature is in the path, so the playlist's
//! relative segment names resolve to signed links as any HLS player resolves them. The token is
//! `<render id>.<attempt id>.<expiry ms>.<sig>`, `sig` being HMAC-SHA256 over a `stream`
//! label, the render id, the attempt id and the expiry (the label keeps the two kinds of
//! signature apart).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{ArtifactKind, Millis};

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

/// What a valid stream token grants: one attempt's stream, until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGrant {
    pub render_id: String,
    pub attempt_id: String,
    pub expires_ms: Millis,
}

impl UrlSigner {
    fn stream_mac(&self, render_id: &str, attempt_id: &str, expires_ms: Millis) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("stream\n{render_id}\n{attempt_id}\n{expires_ms}").as_bytes());
        mac
    }

    /// The path token of an attempt's stream, valid until `expires_ms`.
    pub fn stream_token(&self, render_id: &str, attempt_id: &str, expires_ms: Millis) -> String {
        let sig = self
            .stream_mac(render_id, attempt_id, expires_ms)
            .finalize()
            .into_bytes();
        format!("{render_id}.{attempt_id}.{expires_ms}.{}", hex::encode(sig))
    }

    /// The link to the playlist of an attempt's stream, valid until `expires_ms`.
    pub fn stream_url(&self, render_id: &str, attempt_id: &str, expires_ms: Millis) -> String {
        format!(
            "{}/v1/streams/{}/index.m3u8",
            self.base_url,
            self.stream_token(render_id, attempt_id, expires_ms)
        )
    }

    /// What `token` grants, if it is one of ours unchanged (signature compared in constant
    /// time; expiry not checked).
    pub fn verify_stream_token(&self, token: &str) -> Option<StreamGrant> {
        let mut parts = token.split('.');
        let (render_id, attempt_id, expires, sig) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || render_id.is_empty() || attempt_id.is_empty() {
            return None;
        }
        let expires_ms: Millis = expires.parse().ok()?;
        let sig = hex::decode(sig).ok()?;
        self.stream_mac(render_id, attempt_id, expires_ms)
            .verify_slice(&sig)
            .ok()?;
        Some(StreamGrant {
            render_id: render_id.to_owned(),
            attempt_id: attempt_id.to_owned(),
            expires_ms,
        })
    }
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

    #[test]
    fn stream_tokens_verify_only_unchanged() {
        let s = UrlSigner::new(b"secret", "http://h:1/");
        let url = s.stream_url("r1", "a1", 1000);
        assert!(
            url.starts_with("http://h:1/v1/streams/r1.a1.1000."),
            "{url}"
        );
        assert!(url.ends_with("/index.m3u8"));
        let token = s.stream_token("r1", "a1", 1000);
        assert_eq!(
            s.verify_stream_token(&token),
            Some(StreamGrant {
                render_id: "r1".into(),
                attempt_id: "a1".into(),
                expires_ms: 1000
            })
        );
        let sig = token.rsplit('.').next().unwrap_or_default();
        for bad in [
            format!("r2.a1.1000.{sig}"),
            format!("r1.a2.1000.{sig}"),
            format!("r1.a1.1001.{sig}"),
            format!("r1.a1.1000.{sig}.x"),
            "r1.a1.1000.zz".to_owned(),
            "r1.a1".to_owned(),
            String::new(),
        ] {
            assert_eq!(s.verify_stream_token(&bad), None, "{bad}");
        }
        assert_eq!(
            UrlSigner::new(b"other", "x").verify_stream_token(&token),
            None
        );
        // A download signature is no stream signature.
        let download = s.url("r1", ArtifactKind::Video, 1000);
        let dsig = download.rsplit("sig=").next().unwrap_or_default();
        assert_eq!(s.verify_stream_token(&format!("r1.a1.1000.{dsig}")), None);
    }
}
