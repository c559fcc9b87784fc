//! The SQLite backend: one embedded database file (`sqlstore::Sqlite`: one writer connection
//! whose operations run to completion, a few readers, WAL). SQLite has no row locks; its
//! single writer serializes claims.

use super::{StoreError, StoreResult};

sqlstore::sqlite_backend! {
    /// The embedded trigger store.
    SqliteStore, "trigger"
}

const SCHEMA: &str = include_str!("schema_sqlite.sql");
/// No row locks: the single writer serializes claims.
macro_rules! skip_locked {
    () => {
        ""
    };
}

#[allow(clippy::duplicate_mod)] // by design: the same implementation, compiled per backend
#[path = "queries/mod.rs"]
mod queries;
