//! The PostgreSQL backend: one shared database for any number of coordinators.
//!
//! Claims select queued rows `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
//! each other's rows, and lock each tenant row (`FOR NO KEY UPDATE`, which does not block the
//! foreign-key checks of concurrent submits) while they count its running renders. To stay
//! free of lock cycles, a claim waits only for the first tenant row it locks and skips tenants
//! locked by someone else after that; other transactions lock job rows before tenant rows,
//! tenant rows in id order, and the outbox lock last.

use crate::store::{StoreError, StoreResult};

sqlstore::postgres_backend! {
    /// The shared job store.
    PostgresStore, "jobs"
}

const SCHEMA: &str = include_str!("schema_postgres.sql");
/// A tenant's running count and cap under its row lock: waiting (first tenant of a claim) and skipping
/// (the others).
const TENANT_LOCK: Option<[&str; 2]> = Some([
    "SELECT running, max_running FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
    "SELECT running, max_running FROM tenants WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED",
]);
/// Claims hold tenant row locks until commit.
const CLAIM_IN_TRANSACTION: bool = true;

/// Concurrent claimers skip each other's rows.
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
    };
}

/// Locks the selected rows until commit (not their keys: foreign-key checks go on).
macro_rules! for_update {
    () => {
        " FOR NO KEY UPDATE"
    };
}

#[allow(clippy::duplicate_mod)] // by design: the same implementation, compiled per backend
#[path = "queries/mod.rs"]
mod queries;
