//! The SQLite backend: one embedded database file, one writer connection, a few readers.
//!
//! - SQLite has a single writer, so every write runs on one connection, serialized by an async
//!   mutex; write transactions start with `BEGIN IMMEDIATE` (a second process on the same
//!   file waits on `busy_timeout` at the start instead of failing at commit). Reads run on
//!   separate connections that see the last committed state (WAL).
//! - sqlx runs each SQLite connection on its own thread, so every statement is a round trip
//!   between threads; the hot path is kept to few statements: a submit, an output and a
//!   completion are one statement each, a claim two per render (tenants, then the update).
//!   Connections are held directly rather than in a sqlx pool, whose release costs one more
//!   round trip per use.
//! - A claim runs without an explicit transaction: it holds the writer mutex throughout, so no
//!   other write interleaves, and each claimed render is one atomic statement (the `jobs`
//!   trigger moves the tenant's count with it). This assumes one coordinator per database
//!   file, which is how the embedded store is meant to be used.
//! - `synchronous=NORMAL` in WAL mode keeps every committed transaction across a crash of the
//!   process (kill -9); an OS crash may lose the last few. A background task checkpoints the
//!   WAL, so writes do not wait for a checkpoint's fsyncs.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::store::{StoreError, StoreResult};

type Db = sqlx::Sqlite;
type Conn = sqlx::SqliteConnection;
type DbRow = sqlx::sqlite::SqliteRow;
type Backend = SqliteStore;

const NAME: &str = "sqlite";
const SCHEMA: &str = include_str!("schema_sqlite.sql");
/// SQLite has no row locks: its single writer serializes claims.
const TENANT_LOCK: Option<[&str; 2]> = None;
/// A claim runs as single-statement transactions under the writer mutex (module docs).
const CLAIM_IN_TRANSACTION: bool = false;
/// Schema creation is exclusive already: `BEGIN IMMEDIATE`.
const MIGRATION_LOCK: Option<&str> = None;

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
#[path = "shared.rs"]
mod shared;

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code.
fn map_err(e: sqlx::Error) -> StoreError {
    super::map_sqlx(e, |d| {
        d.code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6))
    })
}

/// The embedded job store.
///
/// Connections are held directly (not in a sqlx pool, whose release path costs a round trip
/// to the connection's thread per use): one writer behind an async mutex, and a few readers.
pub struct SqliteStore {
    /// SQLite's single writer.
    write: Mutex<SqliteConnection>,
    /// Readers; empty for an in-memory database, whose reads go to the writer.
    read: Vec<Mutex<SqliteConnection>>,
    /// Where the next read starts looking for a free connection.
    next_read: AtomicUsize,
    /// Dropped with the store; the checkpoint task stops when it is gone.
    alive: Arc<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.read.len())
            .finish_non_exhaustive()
    }
}

/// Read connections of a file database.
const READERS: usize = 4;

/// How often the background task checkpoints the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL size (pages) at which the writer checkpoints by itself, should the background task fall
/// behind (SQLite's default is 1000).
const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`] on its own connection
/// (`PASSIVE`: never blocks readers or the writer), until the store is dropped. With
/// `synchronous=NORMAL` the checkpoint is where SQLite fsyncs; doing it here keeps those
/// fsyncs off the write path and the WAL small.
async fn checkpoints(mut conn: SqliteConnection, alive: Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 {
            break;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` — `sqlite://PATH` or `sqlite:PATH`;
    /// `sqlite::memory:` gives a private in-memory database for tests — and creates the schema
    /// when it is missing.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("bad SQLite URL `{url}`: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Truncate the WAL back to 64 MiB after checkpoints.
            .pragma("journal_size_limit", "67108864");
        // The writer checkpoints only as a fallback: a background task does it (see
        // `checkpoints`), so no write waits for the fsyncs of a checkpoint.
        let writer_options = options
            .clone()
            .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = if in_memory {
            options.connect().await
        } else {
            writer_options.connect().await
        }
        .map_err(map_err)?;
        let mut store = SqliteStore {
            write: Mutex::new(write),
            read: Vec::new(),
            next_read: AtomicUsize::new(0),
            alive: Arc::new(()),
        };
        shared::migrate(&store).await?;
        if !in_memory {
            let checkpointer = options.connect().await.map_err(map_err)?;
            tokio::spawn(checkpoints(checkpointer, Arc::downgrade(&store.alive)));
            let reader = options.pragma("query_only", "ON");
            for _ in 0..READERS {
                let conn = reader.connect().await.map_err(map_err)?;
                store.read.push(Mutex::new(conn));
            }
        }
        Ok(store)
    }

    /// The writer connection (waits for the current write to finish).
    async fn write_conn(&self) -> StoreResult<MutexGuard<'_, SqliteConnection>> {
        Ok(self.write.lock().await)
    }

    /// A read connection: a free one if any, else the next in turn.
    async fn read_conn(&self) -> StoreResult<MutexGuard<'_, SqliteConnection>> {
        if self.read.is_empty() {
            return self.write_conn().await;
        }
        let start = self.next_read.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.read.len() {
            if let Ok(guard) = self.read[(start + i) % self.read.len()].try_lock() {
                return Ok(guard);
            }
        }
        Ok(self.read[start % self.read.len()].lock().await)
    }
}

/// A write transaction; `BEGIN IMMEDIATE` takes the file's write lock at once, so a second
/// process on the same file waits on `busy_timeout` here instead of failing at commit.
async fn begin(conn: &mut Conn) -> StoreResult<Transaction<'_, Db>> {
    conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
}
