//! coordinator: takes render requests over gRPC and hands them to workers, once each, fenced.
//!
//! # Contents
//!
//! - [`model`]: domain types (tenants, templates, renders, attempts, workers).
//! - [`lifecycle`]: the state machine's decisions (retries, backoff), shared by every backend.
//! - [`store`]: the [`Store`](store::Store) trait and its SQLite and PostgreSQL backends.
//! - [`blobs`]: template archives and render outputs through `object_store`.
//! - [`auth`]: tenant API keys (hashed) and the workers' join token; [`admin`] creates tenants.
//! - [`service`]: the `reelfarm.v1` RenderService, TemplateService and WorkerService.
//! - [`server`]: assembles them with health, reflection, TLS, sweeps and [`metrics`]; [`http`]
//!   serves signed download links (and whatever HTTP routes the caller adds); [`links`] signs
//!   and checks them.
//!
//! **Invariant:** the coordinator never links wgpu or FFmpeg; it validates templates with the
//! pure `template` crate and leaves media work to workers.
//!
//! **Invariant:** the database is the only source of truth for jobs, leases and counts; what the
//! coordinator keeps in memory (manifests, queue depth for backpressure, key cache) is a cache
//! that a restart rebuilds.

pub mod admin;
pub mod auth;
pub mod blobs;
mod cleanup;
pub mod clock;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod links;
pub mod metrics;
pub mod model;
mod oversized;
pub mod rest;
pub mod server;
pub mod service;
pub mod store;

pub use clock::Clock;
pub use error::ApiError;
pub use server::{start, start_with_clock, CoordinatorConfig, GrpcExtension, Running};
pub use service::{Callbacks, Settings};
