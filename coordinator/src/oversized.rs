//! Oversized request messages are `RESOURCE_EXHAUSTED`, as gRPC specifies, naming the limit.
//!
//! tonic refuses a request message over a service's decoding limit before any handler runs,
//! with `OUT_OF_RANGE` ("Error, decoded message length too large: …"), which clients read as
//! "iterate no further", not "too big". This layer rewrites that status wherever the response
//! carries it: in the headers of a trailers-only response or in the trailers of the body.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use tower::util::MapResponseLayer;

type Rewrite = fn(Response<tonic::body::Body>) -> Response<tonic::body::Body>;

/// The layer for the coordinator's gRPC server.
pub(crate) fn layer() -> MapResponseLayer<Rewrite> {
    MapResponseLayer::new(rewrite_response as Rewrite)
}

fn rewrite_response(response: Response<tonic::body::Body>) -> Response<tonic::body::Body> {
    let (mut parts, body) = response.into_parts();
    rewrite(&mut parts.headers);
    Response::from_parts(parts, tonic::body::Body::new(Trailers(body)))
}

/// Rewrites tonic's oversized-message status in `map`, if it is there.
fn rewrite(map: &mut HeaderMap) {
    const TONIC: &str = "Error, decoded message length too large: found ";
    if map.get("grpc-status").is_none_or(|v| v.as_bytes() != b"11") {
        return;
    }
    let message = map
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    let sizes = message.strip_prefix(TONIC).and_then(|rest| {
        let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
        let limit = rest.strip_suffix(" bytes")?;
        Some((found.parse::<u64>().ok()?, limit.parse::<u64>().ok()?))
    });
    let Some((found, limit)) = sizes else { return };
    let status = tonic::Status::resource_exhausted(format!(
        "the request message is {found} bytes; this service accepts at most {limit} bytes per \
         message"
    ));
    map.remove("grpc-status");
    map.remove("grpc-message");
    if status.add_header(map).is_err() {
        tracing::warn!("could not rewrite the status of an oversized request message");
    }
}

/// `grpc-message` is percent-encoded (`%20` for a space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response body whose trailers pass through [`rewrite`].
struct Trailers(tonic::body::Body);

impl Body for Trailers {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_trailers() {
                Ok(mut trailers) => {
                    rewrite(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            }))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_size_status_is_rewritten() {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", "11".parse().expect("value"));
        map.insert(
            "grpc-message",
            "Error,%20decoded%20message%20length%20too%20large:%20found%205242893%20bytes,\
             %20the%20limit%20is:%201114112%20bytes"
                .parse()
                .expect("value"),
        );
        rewrite(&mut map);
        assert_eq!(map["grpc-status"], "8");
        let message = map["grpc-message"].to_str().expect("ascii");
        assert!(
            message.contains("5242893") && message.contains("1114112"),
            "{message}"
        );

        let mut other = HeaderMap::new();
        other.insert("grpc-status", "11".parse().expect("value"));
        other.insert(
            "grpc-message",
            "page token out of range".parse().expect("value"),
        );
        rewrite(&mut other);
        assert_eq!(other["grpc-status"], "11");
    }
}
