//! The durable store of the trigger layer: events → campaigns → dispatches → deliveries.
//!
//! One async trait, [`TriggerStore`], two backends: [`SqliteStore`] (one embedded file, one
//! writer connection and a few readers) and [`PostgresStore`] (a shared database, a pool).
//! Both run the same SQL (`queries/`, compiled once per backend with small dialect hooks).
//! Every method is one transaction; times are Unix epoch milliseconds; `tenant` is the tenant's
//! name.
//!
//! Rows are the only state: campaign versions, ingested events and whether they were
//! processed, dispatches (pending ones survive restarts), holdout memberships, the webhook
//! outbox (deliveries), per-tenant render-event cursors and per-campaign, per-variant counters.

mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlstore::migrate::Migrations;

use crate::{assign_variant, Campaign, Decision, Destination, Dispatch, Event, SuppressReason};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Unix epoch milliseconds.
pub use sqlstore::row::Millis;

/// Schema version this code writes; stored in `trigger_schema_version`.
const SCHEMA_VERSION: i64 = 1;

/// The trigger store's migrations with `schema`, one dialect's SQL for version 1.
fn migrations(schema: &'static str) -> Migrations {
    Migrations {
        version_table: "trigger_schema_version",
        schema,
        version: SCHEMA_VERSION,
        upgrades: &[],
        // Serializes schema creation between processes starting together (PostgreSQL). The
        // job store migrates under 7262011 and its outbox writes lock 7262012 (see
        // `jobs_transition` in the coordinator's PostgreSQL schema), so that the stores sharing
        // one schema never wait for each other, this key is neither.
        lock_key: 7262013,
        too_new: |version, known| {
            format!(
                "the database has trigger schema version {version}; this build knows up to \
                 {known}: upgrade"
            )
        },
    }
}

/// The variant key of counters that belong to no known variant.
pub const ANY_VARIANT: &str = "*";

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is busy or unreachable; the outcome is unknown and the call may be
    /// retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else from the database (a bug, a bad URL or a corrupt row).
    #[error("database error: {0}")]
    Database(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlstore::Error> for StoreError {
    fn from(e: sqlstore::Error) -> Self {
        match e {
            sqlstore::Error::Unavailable(m) => StoreError::Unavailable(m),
            sqlstore::Error::Database(m) => StoreError::Database(m),
        }
    }
}

/// What [`TriggerStore::ingest`] did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored; it will be processed.
    Accepted,
    /// The tenant already had an event with this id (earlier, or earlier in the same batch):
    /// nothing stored.
    Duplicate,
}

/// What one campaign did with one event, as [`TriggerStore::record_outcomes`] records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The campaign does not apply: nothing is recorded.
    NotMatched {
        /// Campaign name.
        campaign: String,
    },
    /// The campaign applies but sends nothing: counters `events` and `suppressed:<reason>`.
    Suppressed {
        /// Campaign name.
        campaign: String,
        /// Campaign version that decided.
        version: u32,
        /// The customer's variant when known (counters go under it, else under `*`).
        variant: Option<String>,
        /// [`SuppressReason::as_str`], e.g. `no_consent`.
        reason: String,
    },
    /// The customer is in the holdout group: a holdout membership row, counters `events` and
    /// `suppressed:holdout` (under `*`).
    Holdout {
        /// Campaign name.
        campaign: String,
        /// Campaign version that decided.
        version: u32,
        /// The held-out customer.
        customer_id: String,
    },
    /// A render to schedule: a dispatch row keyed by `dispatch.idempotency_key` (a known key
    /// is a no-op counted as `suppressed:duplicate`), a customer touch at `dispatch.at`,
    /// counters `events` and `scheduled` under the variant.
    Dispatch {
        /// Campaign name.
        campaign: String,
        /// Campaign version that decided.
        version: u32,
        /// The customer.
        customer_id: String,
        /// The event's id.
        event_id: String,
        /// What to render, and when.
        dispatch: Dispatch,
    },
}

impl Outcome {
    /// The outcome of `decision`, which [`decide`](crate::decide) made for `campaign` (stored
    /// as `version`) and `event`. A suppression names the customer's variant
    /// ([`assign_variant`]), so its counters are per variant.
    pub fn from_decision(
        campaign: &Campaign,
        version: u32,
        event: &Event,
        decision: Decision,
    ) -> Outcome {
        let name = campaign.name.clone();
        match decision {
            Decision::NotMatched(_) => Outcome::NotMatched { campaign: name },
            Decision::Suppressed(SuppressReason::Holdout) => Outcome::Holdout {
                campaign: name,
                version,
                customer_id: event.customer.id.clone(),
            },
            Decision::Suppressed(reason) => Outcome::Suppressed {
                version,
                variant: assign_variant(&campaign.name, &event.customer.id, &campaign.variants)
                    .map(|v| v.name.clone()),
                reason: reason.as_str().to_owned(),
                campaign: name,
            },
            Decision::Dispatch(dispatch) => Outcome::Dispatch {
                campaign: name,
                version,
                customer_id: event.customer.id.clone(),
                event_id: event.id.clone(),
                dispatch,
            },
        }
    }
}

/// A pending dispatch whose time has come, leased to the caller by
/// [`TriggerStore::claim_due_dispatches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDispatch {
    /// The idempotency key (also the render's idempotency key).
    pub key: String,
    /// Tenant name.
    pub tenant: String,
    /// Campaign name.
    pub campaign: String,
    /// Campaign version that scheduled it.
    pub version: u32,
    /// Variant name.
    pub variant: String,
    /// The customer.
    pub customer_id: String,
    /// The event that caused it.
    pub event_id: String,
    /// Template reference, e.g. `order-delivered@live`.
    pub template: String,
    /// Render language.
    pub lang: String,
    /// Template tokens.
    pub tokens: BTreeMap<String, String>,
    /// When it is due (the scheduled time, or the next retry).
    pub due_ms: Millis,
    /// Failed submissions so far.
    pub attempts: u32,
}

/// A dispatch found by the render it became ([`TriggerStore::dispatch_of_render`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRecord {
    /// The idempotency key.
    pub key: String,
    /// Tenant name.
    pub tenant: String,
    /// Campaign name.
    pub campaign: String,
    /// Campaign version that scheduled it.
    pub version: u32,
    /// Variant name.
    pub variant: String,
    /// The customer.
    pub customer_id: String,
    /// The event that caused it.
    pub event_id: String,
    /// The render it was submitted as.
    pub render_id: String,
    /// `pending`, `submitted` or `failed`.
    pub state: String,
    /// Where deliveries go: the destination of the campaign version that scheduled it.
    pub destination: Destination,
}

/// A webhook delivery to enqueue ([`TriggerStore::enqueue_delivery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The delivery id (a UUID) receivers dedupe on.
    pub id: String,
    /// The dispatch it reports on.
    pub dispatch_key: String,
    /// Tenant name.
    pub tenant: String,
    /// Campaign name.
    pub campaign: String,
    /// Variant name.
    pub variant: String,
    /// `render.succeeded` or `render.failed`.
    pub kind: String,
    /// Webhook URL.
    pub url: String,
    /// The request body.
    pub payload_json: String,
    /// Enqueue time; the delivery is due at once.
    pub now: Millis,
}

/// A row of the webhook outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery id (a UUID) receivers dedupe on.
    pub id: String,
    /// The dispatch it reports on.
    pub dispatch_key: String,
    /// Tenant name.
    pub tenant: String,
    /// Campaign name.
    pub campaign: String,
    /// Variant name.
    pub variant: String,
    /// `render.succeeded` or `render.failed`.
    pub kind: String,
    /// Webhook URL.
    pub url: String,
    /// The request body.
    pub payload_json: String,
    /// `pending`, `done` or `dead`.
    pub state: String,
    /// Failed tries so far.
    pub attempts: u32,
    /// When the next try is due.
    pub due_ms: Millis,
    /// The last failure, empty if none.
    pub last_error: String,
    /// HTTP status of the successful try (0 until done).
    pub status_code: u16,
    /// Enqueue time.
    pub created_ms: Millis,
    /// Last change.
    pub updated_ms: Millis,
}

/// Counters of one campaign: variant (or `*`) → counter name → value. Counter names:
/// `events`, `scheduled`, `renders`, `deliveries`, `failures`, `delivery_failures`,
/// `suppressed:<reason>`.
pub type Stats = BTreeMap<String, BTreeMap<String, u64>>;

/// The trigger layer's store. Every method is one transaction.
#[async_trait]
pub trait TriggerStore: Send + Sync + 'static {
    /// Backend name for logs and metrics (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// What the store's writer has had to repair (exported as a metric).
    fn health(&self) -> std::sync::Arc<sqlstore::Health>;

    // ---- campaigns ----

    /// Stores a new version of `campaign` (previous version + 1 for its name, starting at 1)
    /// and returns it. The newest version is the one in force; a paused campaign stays paused.
    async fn put_campaign(
        &self,
        tenant: &str,
        campaign: &Campaign,
        now: Millis,
    ) -> StoreResult<u32>;
    /// The newest version of a campaign.
    async fn campaign(&self, tenant: &str, name: &str) -> StoreResult<Option<(u32, Campaign)>>;
    /// Every campaign of a tenant with its newest version, by name.
    async fn list_campaigns(&self, tenant: &str) -> StoreResult<Vec<(String, u32)>>;
    /// Activates or pauses a campaign (paused campaigns match no events); false if unknown.
    async fn set_campaign_active(
        &self,
        tenant: &str,
        name: &str,
        active: bool,
    ) -> StoreResult<bool>;
    /// Whether a campaign is active; None if unknown.
    async fn campaign_active(&self, tenant: &str, name: &str) -> StoreResult<Option<bool>>;
    /// The active campaigns of a tenant reacting to `event_type`: name, newest version,
    /// definition, by name.
    async fn active_campaigns_for(
        &self,
        tenant: &str,
        event_type: &str,
    ) -> StoreResult<Vec<(String, u32, Campaign)>>;

    // ---- ingestion and processing ----

    /// Stores a batch of events (each with the JSON it was posted as) in one transaction, and
    /// says for each, in order, whether it was new for the tenant (unique event id). Durable
    /// when it returns.
    async fn ingest(
        &self,
        tenant: &str,
        events: &[(Event, String)],
        now: Millis,
    ) -> StoreResult<Vec<Ingested>>;
    /// Up to `limit` events not processed yet, oldest first: tenant, event sequence number,
    /// event.
    async fn next_events(&self, limit: u32) -> StoreResult<Vec<(String, i64, Event)>>;
    /// Marks an event processed and records what each campaign did with it (see
    /// [`Outcome`]), in one transaction. False, and nothing changes, when the event was
    /// processed already or is unknown.
    async fn record_outcomes(
        &self,
        tenant: &str,
        event_seq: i64,
        outcomes: &[Outcome],
        now: Millis,
    ) -> StoreResult<bool>;
    /// Times of the customer's dispatches (any campaign of the tenant, any state) scheduled at
    /// or after `since_ms`, oldest first; for frequency caps.
    async fn touches(
        &self,
        tenant: &str,
        customer_id: &str,
        since_ms: Millis,
    ) -> StoreResult<Vec<Millis>>;
    /// Whether a customer is in a campaign's holdout group as recorded.
    async fn is_held_out(
        &self,
        tenant: &str,
        campaign: &str,
        customer_id: &str,
    ) -> StoreResult<bool>;

    // ---- scheduler ----

    /// Leases up to `limit` pending dispatches due at `now` (not leased, or lease expired)
    /// until `now + lease_ms`, earliest due first. Concurrent claimers never get the same row.
    async fn claim_due_dispatches(
        &self,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<DueDispatch>>;
    /// A pending dispatch was submitted as render `render_id` (counter `renders`). False if
    /// it is not pending.
    async fn dispatch_submitted(
        &self,
        key: &str,
        render_id: &str,
        now: Millis,
    ) -> StoreResult<bool>;
    /// A submission failed and will be retried at `next_ms` (attempts + 1, lease dropped).
    /// False if it is not pending.
    async fn dispatch_retry(&self, key: &str, next_ms: Millis, error: &str) -> StoreResult<bool>;
    /// A dispatch failed for good (counter `failures`). False if it is not pending.
    async fn dispatch_failed(&self, key: &str, error: &str, now: Millis) -> StoreResult<bool>;
    /// The dispatch of `tenant` that became render `render_id`, submitted with idempotency key
    /// `key`: matched by the render id once it is stored, and by the key while it is not (a
    /// render can end before the answer to its submission is recorded).
    async fn dispatch_of_render(
        &self,
        tenant: &str,
        render_id: &str,
        key: &str,
    ) -> StoreResult<Option<DispatchRecord>>;

    // ---- render-event cursors ----

    /// The last render-event sequence number handled for a tenant (0 at first).
    async fn cursor(&self, tenant: &str) -> StoreResult<i64>;
    /// Moves a tenant's render-event cursor.
    async fn set_cursor(&self, tenant: &str, seq: i64) -> StoreResult<()>;
    /// Tenants with at least one campaign (active or not), by name.
    async fn tenants_with_campaigns(&self) -> StoreResult<Vec<String>>;

    // ---- deliveries (webhook outbox) ----

    /// Enqueues a delivery, due at once. False (nothing stored) when the dispatch already has
    /// a delivery of this kind, or the id is taken.
    async fn enqueue_delivery(&self, delivery: &NewDelivery) -> StoreResult<bool>;
    /// Leases up to `limit` pending deliveries due at `now` until `now + lease_ms`, earliest
    /// due first. Concurrent claimers never get the same row.
    async fn claim_due_deliveries(
        &self,
        now: Millis,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<Delivery>>;
    /// A delivery succeeded with HTTP `status_code` (counter `deliveries`). False if it is not
    /// pending.
    async fn delivery_done(&self, id: &str, now: Millis, status_code: u16) -> StoreResult<bool>;
    /// A try failed; the next is due at `next_ms` (attempts + 1, lease dropped). False if it is
    /// not pending.
    async fn delivery_retry(&self, id: &str, next_ms: Millis, error: &str) -> StoreResult<bool>;
    /// Gives up on a delivery: dead letter (counter `delivery_failures`). False if it is not
    /// pending.
    async fn delivery_dead(&self, id: &str, error: &str, now: Millis) -> StoreResult<bool>;
    /// A delivery by id.
    async fn delivery(&self, id: &str) -> StoreResult<Option<Delivery>>;
    /// A tenant's dead letters, most recent first.
    async fn dead_letters(&self, tenant: &str, limit: u32) -> StoreResult<Vec<Delivery>>;
    /// Puts a dead letter of the tenant back in the queue, due at `now`, attempts reset.
    /// False if there is no such dead letter.
    async fn replay_dead_letter(&self, tenant: &str, id: &str, now: Millis) -> StoreResult<bool>;

    // ---- stats ----

    /// A campaign's counters per variant (`*` for those of no known variant).
    async fn stats(&self, tenant: &str, campaign: &str) -> StoreResult<Stats>;
}

/// A shareable store.
pub type DynTriggerStore = Arc<dyn TriggerStore>;

/// Opens a store from a URL: `sqlite://PATH` (created if missing) or `postgres://…`.
pub async fn open(url: &str) -> StoreResult<DynTriggerStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported store URL `{url}`: use sqlite://PATH or postgres://USER:PASS@HOST/DB"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening a store works in a spawned task.
    #[test]
    fn opening_is_send() {
        fn is_send<T: Send>(_: &T) {}
        is_send(&SqliteStore::open("sqlite::memory:"));
        is_send(&PostgresStore::connect("postgres://x"));
        is_send(&PostgresStore::connect_with_schema("postgres://x", "y"));
        is_send(&open("sqlite::memory:"));
    }
}
