//! The SQLite backend: one embedded database file, one writer connection, a few readers.
//!
//! - SQLite has a single writer, so every write runs on one connection behind an async mutex,
//!   in `BEGIN IMMEDIATE` transactions (a second process on the same file waits on
//!   `busy_timeout` at the start instead of failing at commit). Reads run on their own
//!   connections and see the last committed state (WAL).
//! - `synchronous=NORMAL` in WAL mode keeps every committed transaction across a crash of the
//!   process; an OS crash may lose the last few. A background task checkpoints the WAL, so
//!   writes do not wait for a checkpoint's fsyncs.
//! - SQLite has no row locks; its single writer serializes claims.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::{StoreError, StoreResult};

type Db = sqlx::Sqlite;
type Conn = sqlx::SqliteConnection;
type DbRow = sqlx::sqlite::SqliteRow;
type Backend = SqliteStore;

const NAME: &str = "sqlite";
const SCHEMA: &str = include_str!("schema_sqlite.sql");
/// Schema creation is exclusive already: `BEGIN IMMEDIATE`.
const MIGRATION_LOCK: Option<&str> = None;
/// No row locks: the single writer serializes claims.
macro_rules! skip_locked {
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

/// Read connections of a file database.
const READERS: usize = 3;

/// How often the background task checkpoints the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL size (pages) at which the writer checkpoints by itself, should the background task fall
/// behind (SQLite's default is 1000).
const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";

/// The embedded trigger store: one writer behind an async mutex, a few readers.
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

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`] on its own connection
/// (`PASSIVE`: never blocks readers or the writer), until the store is dropped.
async fn checkpoints(mut conn: SqliteConnection, alive: Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 {
            break;
        }
        // A failed checkpoint is retried at the next tick; the writer's own auto-checkpoint
        // is the fallback.
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await;
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
            .pragma("journal_size_limit", "67108864");
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = if in_memory {
            options.connect().await
        } else {
            options
                .clone()
                .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
                .connect()
                .await
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

/// A write transaction; `BEGIN IMMEDIATE` takes the file's write lock at once.
async fn begin(conn: &mut Conn) -> StoreResult<Transaction<'_, Db>> {
    conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
}
