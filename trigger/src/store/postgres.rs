//! The PostgreSQL backend: one shared database for any number of trigger processes.
//!
//! Claims select due rows `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on or
//! get each other's rows. Transactions run at READ COMMITTED; every transition is a
//! compare-and-set on the row's state.

use super::{StoreError, StoreResult};

sqlstore::postgres_backend! {
    /// The shared trigger store: a connection pool.
    PostgresStore, "trigger"
}

const SCHEMA: &str = include_str!("schema_postgres.sql");
/// Concurrent claimers skip each other's rows.
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
    };
}

#[allow(clippy::duplicate_mod)] // by design: the same implementation, compiled per backend
#[path = "queries/mod.rs"]
mod queries;
