//! SQLite and PostgreSQL backends of [`Store`](super::Store).
//!
//! Both backends run the same implementation (`sql/queries/`, one file per aggregate), compiled
//! once per backend as a child module of `sqlite` and of `postgres`. Each backend module names
//! its sqlx types and supplies the few dialect hooks the shared code uses:
//!
//! - `Db`, `Conn`, `DbRow`, `Backend`: the sqlx database, connection and row types and the store
//!   type the shared code implements [`Store`](super::Store) for;
//! - `skip_locked!()`, `for_update!()`: SQL suffixes (`FOR UPDATE SKIP LOCKED` and
//!   `FOR NO KEY UPDATE` on PostgreSQL, empty on SQLite, whose single writer already serializes
//!   every write transaction);
//! - `TENANT_LOCK`: PostgreSQL locks tenant rows (a claim re-reads the running count under
//!   the lock);
//! - `read_conn`, `begin`: connections and transactions (writes go through the backend's
//!   `sqlstore` database, `db`);
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

use sqlstore::migrate::Migrations;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Schema version this code writes; stored in `schema_version`. The schema files create
/// version 1; [`UPGRADES`] take it on from there.
const SCHEMA_VERSION: i64 = 5;

/// `UPGRADES[i]` takes the schema from version `i + 1` to `i + 2` (the same SQL on both
/// backends).
const UPGRADES: [&str; 4] = [
    // 2: named positions in the outbox (the output cleanup's). Not `cursors`: with PostgreSQL,
    // `serve` keeps the trigger store's tables in the same schema, and it has a `cursors`.
    "CREATE TABLE IF NOT EXISTS outbox_cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL); \
     CREATE INDEX IF NOT EXISTS outputs_job ON outputs (job_id)",
    // 3: the attempt whose live stream has a playlist (`PublishStream`, `Render.stream_url`).
    // Not a column of `state`, so the `jobs` triggers ignore it.
    "ALTER TABLE jobs ADD COLUMN stream_attempt_id TEXT NOT NULL DEFAULT ''",
    // 4: the client's labels and completion webhook of a render (`RenderSpec.metadata`,
    // `RenderSpec.callback_url`).
    "ALTER TABLE jobs ADD COLUMN metadata_json TEXT NOT NULL DEFAULT '{}'; \
     ALTER TABLE jobs ADD COLUMN callback_url TEXT NOT NULL DEFAULT ''",
    // 5: listing breaks ties on `created_ms` by submission order (`seq`), not by id.
    "DROP INDEX jobs_list; CREATE INDEX jobs_list ON jobs (tenant_id, created_ms, seq)",
];

/// The job store's migrations with `schema`, one dialect's SQL for version 1.
fn migrations(schema: &'static str) -> Migrations {
    Migrations {
        version_table: "schema_version",
        schema,
        version: SCHEMA_VERSION,
        upgrades: &UPGRADES,
        // Serializes schema creation between coordinators starting together (PostgreSQL).
        lock_key: 7262011,
        too_new: |version, known| {
            format!(
                "the database has schema version {version}; this coordinator knows up to \
                 {known}: upgrade the coordinator"
            )
        },
    }
}

/// The columns of `jobs` that make a [`crate::model::Job`], in `SELECT`/`RETURNING` lists.
macro_rules! job_cols {
    () => {
        "id, tenant_id, idempotency_key, request_hash, template_name, template_version, \
         template_digest, lang, tokens_json, preset, lane, state, created_ms, updated_ms, \
         finished_ms, started_ms, not_before_ms, deadline_ms, attempts, app_failures, \
         infra_failures, lease_epoch, attempt_id, worker_id, lease_expires_ms, progress, stage, failure_class, \
         failure_message, failed_attempt_id, warnings_json, video_key, video_bytes, \
         video_sha256, poster_key, poster_bytes, poster_sha256, stage_seconds_json, \
         stream_attempt_id, metadata_json, callback_url"
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
