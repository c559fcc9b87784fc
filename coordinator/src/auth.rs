//! Authentication: per-tenant API keys (stored as SHA-256 hashes) and the workers' join token.
//!
//! Every call carries `authorization: Bearer <secret>`. API keys are 256-bit random secrets,
//! so a plain SHA-256 is a sound way to store them (nothing to brute-force); the comparison is
//! a database lookup by hash, and the join token is compared hash to hash.

use proto::auth::{parse_bearer, AUTHORIZATION};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;

use crate::error::ApiError;
use crate::model::Tenant;
use crate::store::DynStore;

/// Prefix of tenant API keys.
pub const API_KEY_PREFIX: &str = "rf_";

/// Metadata key naming the tenant a trusted service acts for (with the service token); defined
/// with the rest of the wire's authentication vocabulary in [`proto::auth`].
pub use proto::auth::ACT_AS_TENANT;

/// A fresh API key: `rf_` and 64 hex digits (256 random bits).
pub fn generate_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_hex(32))
}

/// A fresh random secret of `bytes` bytes, as hex (join tokens, ids).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Lowercase hex SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The bearer secret of a call.
pub fn bearer(metadata: &MetadataMap) -> Result<&str, ApiError> {
    // Read step by step (rather than with `proto::auth::bearer_token`) so that each way of
    // getting it wrong has its own message.
    let value = metadata
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthenticated(
            "missing `authorization: Bearer <key>` metadata",
        ))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("authorization metadata is not ASCII"))?;
    parse_bearer(value).ok_or(ApiError::Unauthenticated(
        "authorization metadata must be `Bearer <key>`",
    ))
}

/// The caller of a call that a trusted service may make for every tenant at once.
#[derive(Debug, Clone)]
pub enum Caller {
    Tenant(Tenant),
    /// The farm's own service (the trigger layer), for all tenants.
    Service,
}

/// Checks the secrets on incoming calls.
pub struct Authenticator {
    store: DynStore,
    join_token_hash: String,
    /// Trusted in-farm services (the trigger layer) act for any tenant with this token and
    /// the [`ACT_AS_TENANT`] header.
    service_token_hash: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(store: DynStore, join_token: &str, service_token: Option<&str>) -> Authenticator {
        Authenticator {
            store,
            join_token_hash: hash_secret(join_token),
            service_token_hash: service_token.map(hash_secret),
        }
    }

    /// Who calls: a tenant (its API key, or a trusted service naming it), or a trusted service
    /// acting for no tenant in particular (the service token without [`ACT_AS_TENANT`]).
    pub async fn caller(&self, metadata: &MetadataMap) -> Result<Caller, ApiError> {
        let hash = hash_secret(bearer(metadata)?);
        let is_service = self
            .service_token_hash
            .as_deref()
            .is_some_and(|h| same(h, &hash));
        if is_service && metadata.get(ACT_AS_TENANT).is_none() {
            return Ok(Caller::Service);
        }
        self.tenant(metadata).await.map(Caller::Tenant)
    }

    /// The tenant whose API key the call carries, or the tenant a trusted service names.
    pub async fn tenant(&self, metadata: &MetadataMap) -> Result<Tenant, ApiError> {
        let hash = hash_secret(bearer(metadata)?);
        if self
            .service_token_hash
            .as_deref()
            .is_some_and(|h| same(h, &hash))
        {
            let name = metadata
                .get(ACT_AS_TENANT)
                .and_then(|v| v.to_str().ok())
                .ok_or(ApiError::Unauthenticated(
                    "the service token needs an x-reelfarm-tenant header",
                ))?;
            return self
                .store
                .tenant_by_name(name)
                .await?
                .ok_or(ApiError::Unauthenticated(
                    "unknown tenant in x-reelfarm-tenant",
                ));
        }
        // Looked up on every call (one indexed read), never cached: a revoked key is refused
        // by the next call, whichever process revoked it.
        let tenant = self
            .store
            .tenant_by_key(&hash)
            .await?
            .ok_or(ApiError::Unauthenticated("unknown API key"))?;
        Ok(tenant)
    }

    /// Succeeds when the call carries the farm's join token.
    pub fn worker(&self, metadata: &MetadataMap) -> Result<(), ApiError> {
        let hash = hash_secret(bearer(metadata)?);
        if same(&hash, &self.join_token_hash) {
            Ok(())
        } else {
            Err(ApiError::Unauthenticated("wrong worker join token"))
        }
    }
}

/// Compares two hex hashes of equal length without an early exit.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() == 3 + 64);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }

    #[test]
    fn bearer_parsing() {
        let mut md = MetadataMap::new();
        assert!(bearer(&md).is_err());
        md.insert(AUTHORIZATION, "Basic abc".parse().expect("ascii"));
        assert!(bearer(&md).is_err());
        md.insert(AUTHORIZATION, "Bearer  ".parse().expect("ascii"));
        assert!(bearer(&md).is_err());
        md.insert(AUTHORIZATION, "Bearer rf_x".parse().expect("ascii"));
        assert_eq!(bearer(&md).ok(), Some("rf_x"));
    }
}
