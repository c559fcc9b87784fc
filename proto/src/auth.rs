//! Authentication metadata of the `reelfarm.v1` services: the header names and the bearer
//! format, written once for every client and server.
//!
//! Every call carries `authorization: Bearer <secret>` (a tenant API key, the workers' join
//! token, or an in-farm service token). A trusted service acting for a tenant adds
//! `x-reelfarm-tenant: <tenant name>`. A RESOURCE_EXHAUSTED answer may carry
//! `retry-after-ms: <milliseconds>` in its metadata.
//!
//! Clients attach the secret with [`Bearer`]; servers read it with [`bearer_token`] (gRPC
//! metadata) or [`parse_bearer`] (any header value, e.g. HTTP `Authorization`), so that both
//! ends agree on one format.

use std::fmt;

use tonic::metadata::errors::InvalidMetadataValue;
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Metadata key of the bearer secret on every call.
pub const AUTHORIZATION: &str = "authorization";

/// Metadata key naming the tenant a trusted service acts for (sent with the service token).
pub const ACT_AS_TENANT: &str = "x-reelfarm-tenant";

/// Metadata key of the server's retry advice on RESOURCE_EXHAUSTED, in milliseconds (decimal).
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// The scheme in front of the secret. Matched case-sensitively: every reelfarm client sends it
/// exactly like this, and one accepted spelling keeps the format unambiguous.
const SCHEME: &str = "Bearer ";

/// The secret of an `authorization` value `Bearer <secret>`: surrounding whitespace trimmed;
/// `None` for another scheme or an empty secret.
pub fn parse_bearer(header_value: &str) -> Option<&str> {
    header_value
        .strip_prefix(SCHEME)
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
}

/// The bearer secret of a call: `None` when the `authorization` metadata is absent, not ASCII,
/// or not `Bearer <secret>` (see [`parse_bearer`]).
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    parse_bearer(metadata.get(AUTHORIZATION)?.to_str().ok()?)
}

/// Adds `authorization: Bearer <secret>` to every call of a client
/// (`FooServiceClient::with_interceptor(channel, bearer)`), or to one request with
/// [`Bearer::insert_into`]. The value is marked sensitive, so it is neither printed by `Debug`
/// nor added to HTTP/2 header compression tables.
#[derive(Clone)]
pub struct Bearer {
    value: MetadataValue<Ascii>,
}

impl Bearer {
    /// The interceptor for `secret`; fails when the secret holds characters a header value
    /// cannot carry (control characters, non-ASCII).
    pub fn new(secret: &str) -> Result<Bearer, InvalidMetadataValue> {
        let mut value: MetadataValue<Ascii> = format!("{SCHEME}{secret}").parse()?;
        value.set_sensitive(true);
        Ok(Bearer { value })
    }

    /// Sets the `authorization` metadata of one request.
    pub fn insert_into(&self, metadata: &mut MetadataMap) {
        metadata.insert(AUTHORIZATION, self.value.clone());
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(..)")
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.insert_into(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_bearer_scheme() {
        assert_eq!(parse_bearer("Bearer rf_x"), Some("rf_x"));
        assert_eq!(parse_bearer("Bearer  rf_x \t"), Some("rf_x"));
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("Bearer    "), None);
        assert_eq!(parse_bearer("Basic abc"), None);
        assert_eq!(parse_bearer("bearer rf_x"), None);
        assert_eq!(parse_bearer("Bearerrf_x"), None);
        assert_eq!(parse_bearer(""), None);
    }

    #[test]
    fn reads_the_token_from_metadata() {
        let mut md = MetadataMap::new();
        assert_eq!(bearer_token(&md), None);
        md.insert(AUTHORIZATION, MetadataValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&md), None);
        md.insert(AUTHORIZATION, MetadataValue::from_static("Bearer rf_x"));
        assert_eq!(bearer_token(&md), Some("rf_x"));
    }

    #[test]
    fn the_interceptor_writes_what_the_server_reads() {
        let mut bearer = Bearer::new("rf_secret").expect("ascii secret");
        let request = bearer.call(Request::new(())).expect("intercepted");
        assert_eq!(bearer_token(request.metadata()), Some("rf_secret"));
        let value = request.metadata().get(AUTHORIZATION).expect("set");
        assert!(value.is_sensitive());
        assert_eq!(format!("{bearer:?}"), "Bearer(..)");
        assert!(Bearer::new("bad\nsecret").is_err());
    }
}
