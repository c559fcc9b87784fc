//! proto: the `reelfarm.v1` wire contract.
//!
//! The `.proto` files under `proto/reelfarm/v1/` are the source of truth: a client in any
//! language can be generated from them alone. This crate compiles them with protox (no `protoc`)
//! into tonic clients and servers ([`v1`]) and carries the encoded descriptor set for gRPC
//! reflection ([`FILE_DESCRIPTOR_SET`]). [`auth`] names the metadata the services read
//! (`authorization: Bearer …`, the tenant a service acts for, retry advice) for both ends.
//!
//! **Invariant:** this is the only crate that knows prost types; the coordinator and the worker
//! convert at their edges.

pub mod auth;
mod codec;
pub mod convert;
pub mod destination;

/// The bearer metadata key, also at the crate root where clients have long found it.
pub use auth::AUTHORIZATION;
pub use codec::ProtoCodec;

/// Generated messages, enums, clients (`*_client`) and servers (`*_server`) of `reelfarm.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("reelfarm.v1");
}

/// Encoded `FileDescriptorSet` of every `reelfarm.v1` file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/reelfarm_v1_descriptor.bin"));

/// Largest piece of a streamed file ([`v1::Chunk`], upload chunks), in bytes.
pub const CHUNK_BYTES: usize = 1 << 20;
