//! The SQLite backend: one embedded database file (`sqlstore::Sqlite`: one writer connection
//! whose operations run to completion, a few readers, WAL).
//!
//! - sqlx runs each SQLite connection on its own thread, so every statement is a round trip
//!   between threads; the hot path is kept to few statements: a submit, an output and a
//!   completion are one statement each, a claim two per render (tenants, then the update).
//! - A claim runs without an explicit transaction: it is one writer operation, so no other
//!   write interleaves, and each claimed render is one atomic statement (the `jobs` trigger
//!   moves the tenant's count with it). This assumes one coordinator per database file, which
//!   is how the embedded store is meant to be used.

use crate::store::{StoreError, StoreResult};

sqlstore::sqlite_backend! {
    /// The embedded job store.
    SqliteStore, "jobs"
}

const SCHEMA: &str = include_str!("schema_sqlite.sql");
/// SQLite has no row locks: its single writer serializes claims.
const TENANT_LOCK: Option<[&str; 2]> = None;
/// A claim runs as single-statement transactions in one writer operation (module docs).
const CLAIM_IN_TRANSACTION: bool = false;

/// SQLite has no row locks.
macro_rules! skip_locked {
    () => {
        ""
    };
}

/// SQLite has no row locks.
macro_rules! for_update {
    () => {
        ""
    };
}

#[allow(clippy::duplicate_mod)] // by design: the same implementation, compiled per backend
#[path = "queries/mod.rs"]
mod queries;
