//! proto: the `reelfarm.v1` wire contract (gRPC services, messages, conversions to domain
//! types). Reserved: the contract arrives with the coordinator; nothing here yet.
