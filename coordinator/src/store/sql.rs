//! SQLite and PostgreSQL backends of [`Store`](super::Store).
//!
//! Both backends run the same implementation (`sql/shared.rs`), compiled once per backend as a
//! child module of `sqlite` and of `postgres`. Each backend module names its sqlx types and
//! supplies the few dialect hooks the shared code uses:
//!
//! - `Db`, `Conn`, `DbRow`, `Backend`: the sqlx database, connection and row types and the store
//!   type the shared code implements [`Store`](super::Store) for;
//! - `skip_locked!()`, `for_update!()`: SQL suffixes (`FOR UPDATE SKIP LOCKED` and
//!   `FOR NO KEY UPDATE` on PostgreSQL, empty on SQLite, whose single writer already serializes
//!   every write transaction);
//! - `TENANT_LOCK`: PostgreSQL locks tenant rows (a claim re-reads the running count under
//!   the lock);
//! - `write_conn`, `read_conn`, `begin`: connections and transactions;
//! - `map_err`: which database errors mean "busy, retry" ([`StoreError::Unavailable`]).
//!
//! The per-tenant running count and the outbox are kept by a trigger on `jobs.state` (one
//! per dialect, in the schema files): every statement that moves a render into or out of
//! `running` moves `tenants.running`, and every one that makes a render terminal writes its
//! outbox row, in the same statement and so the same transaction. Completing a render is
//! therefore one statement.
//!
//! SQL text is written once with `$N` placeholders, which sqlx accepts on both backends. Times
//! are BIGINT milliseconds, ids TEXT, tokens, warnings and stage timings JSON TEXT.

use serde::{Deserialize, Serialize};
use sqlstore::{is_fk_violation, is_unique_violation};

use super::{StoreError, StoreResult};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Schema version this code writes; stored in `schema_version`. The schema files create
/// version 1; [`UPGRADES`] take it on from there.
const SCHEMA_VERSION: i64 = 2;

/// `UPGRADES[i]` takes the schema from version `i + 1` to `i + 2` (the same SQL on both
/// backends).
const UPGRADES: [&str; 1] = [
    // 2: named positions in the outbox (the output cleanup's). Not `cursors`: with PostgreSQL,
    // `serve` keeps the trigger store's tables in the same schema, and it has a `cursors`.
    "CREATE TABLE IF NOT EXISTS outbox_cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL); \
     CREATE INDEX IF NOT EXISTS outputs_job ON outputs (job_id)",
];

/// Failure messages are cut to this many characters.
const MAX_FAILURE_MESSAGE_CHARS: usize = 2000;

/// The columns of `jobs` that make a [`crate::model::Job`], in `SELECT`/`RETURNING` lists.
macro_rules! job_cols {
    () => {
        "id, tenant_id, idempotency_key, request_hash, template_name, template_version, \
         template_digest, lang, tokens_json, preset, lane, state, created_ms, updated_ms, \
         finished_ms, started_ms, not_before_ms, deadline_ms, attempts, app_failures, \
         infra_failures, lease_epoch, attempt_id, worker_id, lease_expires_ms, progress, stage, failure_class, \
         failure_message, failed_attempt_id, warnings_json, video_key, video_bytes, \
         video_sha256, poster_key, poster_bytes, poster_sha256, stage_seconds_json"
    };
}

/// The columns of `templates` that make a [`crate::model::TemplateRecord`] (without aliases).
macro_rules! template_cols {
    () => {
        "tenant_id, name, version, digest, size_bytes, manifest_json, blob_key, created_ms"
    };
}

// The backends come after the macros above, which they use.
mod postgres;
mod sqlite;

/// A corrupt row or an encoding bug.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Database(what.to_string())
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| corrupt(format!("encoding JSON: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str, column: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| corrupt(format!("column {column}: bad JSON: {e}")))
}

fn to_u32(v: i64, column: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| corrupt(format!("column {column}: {v} is out of range")))
}

fn to_u64(v: i64, column: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("column {column}: {v} is out of range")))
}

fn to_i64(v: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| corrupt(format!("{what}: {v} does not fit a BIGINT")))
}

/// The first [`MAX_FAILURE_MESSAGE_CHARS`] characters of `message`.
fn truncate_message(message: &str) -> String {
    sqlstore::truncate_chars(message, MAX_FAILURE_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_on_char_boundaries() {
        let long = "é".repeat(MAX_FAILURE_MESSAGE_CHARS + 10);
        let cut = truncate_message(&long);
        assert_eq!(cut.chars().count(), MAX_FAILURE_MESSAGE_CHARS);
        assert_eq!(truncate_message("short"), "short");
    }
}
