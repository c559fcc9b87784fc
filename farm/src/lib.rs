//! farm: the composition root of reelfarm. Everything that puts the libraries together into a
//! running farm lives here, once, so that the binary, the benchmarks and the tests share it:
//!
//! - [`LocalFarm`]: the job store, an optional tenant, the coordinator, the trigger layer
//!   attached to it and in-process workers, started from one plain [`FarmSpec`] and stopped in
//!   one order (trigger, then workers, then coordinator);
//! - [`TenantClient`]: a tenant's gRPC client (the API key on every call), with [`watch`] to
//!   follow a render to its end and [`post_events`] for the HTTP event endpoint;
//! - [`secrets`]: the data folder's private files (join token, link and webhook keys) and URL
//!   redaction for messages;
//! - [`run`], [`runtime`] and [`shutdown_signal`]: the process around a farm: its async runtime,
//!   SIGTERM/Ctrl-C, and GPU objects destroyed after every thread that used the driver;
//! - [`WorkerProcesses`]: `reelfarm work` processes beside an in-process farm (the demo);
//! - [`receiver`]: a webhook endpoint on loopback that verifies every delivery's signature,
//!   as a brand's would.
//!
//! It is the only crate that depends on both the coordinator and the trigger layer.

pub mod admin;
mod client;
mod local;
mod processes;
pub mod receiver;
mod runtime;
pub mod secrets;
mod trigger;

pub use client::{
    failure_class_name, is_terminal, lane_name, post_events, preset_name, state_name, status_error,
    watch, TenantClient,
};
pub use local::{
    default_store_url, default_trigger_store_url, FarmSpec, LocalFarm, TenantSpec, TriggerSpec,
    Workers,
};
pub use processes::WorkerProcesses;
pub use runtime::{run, runtime, shutdown_signal, work};
pub use trigger::Trigger;
pub use worker::{
    default_name as default_worker_name, Gpu, WorkerConfig, DEFAULT_SEGMENT_CACHE_BYTES,
};
