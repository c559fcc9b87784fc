//! trigger: business events → campaign rules → renders → signed delivery webhooks.
//!
//! At its centre is a pure decision engine ([`decide`]); around it, a durable [`store`],
//! event ingestion over HTTP ([`ingest`]) and gRPC ([`service`]), the background [`runtime`]
//! (evaluate events, submit due dispatches to the coordinator's RenderService, turn finished
//! renders into deliveries) and signed [`webhook`]s. The trigger layer is an upstream client of
//! the coordinator like any other.
//!
//! # Contents
//!
//! - **Events** ([`Event`], [`Customer`]): a business event as a brand posts it.
//!   [`Event::from_json`] parses and validates; [`Event::validate`] lists every problem with
//!   its JSON path (e.g. `customer.tz: unknown time zone "Mars/Base"`). Size limits:
//!   [`MAX_EVENT_BYTES`], [`MAX_DATA_FIELDS`], [`MAX_ATTRIBUTES`]. Messages never quote
//!   customer attribute values.
//! - **Campaigns** ([`Campaign`] and the types under it: [`Condition`], [`Op`], [`Variant`],
//!   [`Languages`], [`TokenSource`], [`Delay`], [`QuietHours`], [`FrequencyCap`],
//!   [`Destination`]): what the API and CLI accept. [`Campaign::from_json`] parses (unknown
//!   fields rejected) and validates; [`Campaign::validate`] lists every problem.
//! - **The decision**: [`decide`] turns a campaign, an event, the current time and the
//!   customer's recent dispatch times into a [`Decision`]: [`NoMatch`], a
//!   [`SuppressReason`], or a [`Dispatch`] (variant, template, language, tokens, time,
//!   idempotency key). Its documentation gives the order of the checks.
//! - **Building blocks** [`decide`] uses, public for the layers around it and for tests:
//!   [`Condition::matches`] and [`field_value`] (field paths); [`holdout_bucket`],
//!   [`in_holdout`], [`assign_variant`] (stable hashes of campaign name and customer id);
//!   [`choose_language`]; [`idempotency_key`]; [`apply_quiet_hours`] (DST-aware).
//! - **Errors**: [`TriggerError`], whose problems are [`Problem`]s (JSON path + message).
//! - **Store** ([`store`]), the one module that is not pure: the durable, async side (SQLite
//!   or PostgreSQL) with campaign versions, events, dispatches, the webhook outbox and
//!   counters ([`store::TriggerStore`]).
//!
//! - **Ingestion** ([`ingest`]): `POST /v1/events` and the path shared with the gRPC
//!   `IngestEvents` ([`service::TriggerApi`]); **runtime** ([`runtime::run`]); **webhooks**
//!   ([`webhook`]): signing, destination checks, sending, backoff.
//! - **Metrics** ([`metrics::TriggerMetrics`]): events, evaluations and suppressions,
//!   submissions and webhook deliveries, registered into the coordinator's `/metrics`.
//!
//! **Invariant:** the decision engine is a pure function of its inputs (`now` is a parameter,
//! never read from the clock); nothing panics on any input. Holdout, variant and idempotency
//! key depend only on the campaign name, the customer id (and the event id for the key), so
//! they are stable across calls, processes and releases.

mod assign;
mod campaign;
mod condition;
mod error;
mod event;
mod field;
pub mod ingest;
pub mod metrics;
mod rules;
pub mod runtime;
mod schedule;
pub mod service;
mod status;
pub mod store;
pub mod webhook;

pub use assign::{assign_variant, choose_language, holdout_bucket, idempotency_key, in_holdout};
pub use campaign::{
    Campaign, Condition, Delay, Destination, FrequencyCap, Languages, Op, QuietHours, TokenSource,
    Variant, MAX_CAMPAIGN_BYTES, MAX_CAP, MAX_CONDITIONS, MAX_HOLDOUT_PERCENT, MAX_IN_VALUES,
    MAX_LITERAL_CHARS, MAX_PERIOD_SECONDS, MAX_TOKENS, MAX_URL_BYTES, MAX_VARIANTS, MAX_WEIGHT,
};
pub use error::TriggerError;
pub use event::{
    Customer, Event, MAX_ATTRIBUTES, MAX_DATA_FIELDS, MAX_EVENT_BYTES, MAX_EVENT_INPUT_BYTES,
    MAX_ID_CHARS,
};
pub use field::field_value;
pub use rules::{decide, Decision, Dispatch, NoMatch, SuppressReason};
pub use schedule::apply_quiet_hours;
pub use template::Problem;
