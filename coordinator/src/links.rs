//! Signed, expiring download links to finished renders: made by the RenderService
//! (`CreateDownloadUrl`) and checked by the HTTP endpoint in [`crate::http`].
//!
//! A link is `<base>/v1/renders/<id>/<video|poster>?expires=<ms>&sig=<hex>`, where `sig` is
//! HMAC-SHA256 over the render id, the artifact and the expiry, so none of them can be changed.

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
