//! SQLite: one embedded database file, one writer connection, a few readers.
//!
//! - SQLite has a single writer, so every write runs on one connection, one operation at a
//!   time, each run to its end once started (see the crate docs). Write transactions start with
//!   `BEGIN IMMEDIATE` ([`begin`]): a second process on the same file waits on
//!   `busy_timeout` at the start instead of failing at commit. Reads run on separate
//!   connections that see the last committed state (WAL).
//! - Connections are held directly rather than in a sqlx pool, whose release costs one more
//!   round trip to the connection's thread per use.
//! - `synchronous=NORMAL` in WAL mode keeps every committed transaction across a crash of the
//!   process (kill -9); an OS crash may lose the last few. A background task checkpoints the
//!   WAL, so writes do not wait for a checkpoint's fsyncs.
//! - Foreign keys are enforced.
//!
//! These settings (foreign keys, `READERS` readers, the checkpoint interval, a warning in the
//! log for a failed checkpoint) are the same for every store built on this crate: none is
//! chosen per store, so the job store and the trigger store behave alike on SQLite.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{
    ConnectOptions, Connection, Database, SqliteConnection, Transaction, TransactionManager,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::migrate::Migrations;
use crate::{Error, Health, Result};

/// Read connections of a file database.
const READERS: usize = 4;

/// How often the background task checkpoints the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL size (pages) at which the writer checkpoints by itself, should the background task fall
/// behind (SQLite's default is 1000).
const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code, are "busy, retry".
pub fn map_err(e: sqlx::Error) -> Error {
    crate::map_sqlx(e, |d| {
        d.code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6))
    })
}

/// A write transaction; `BEGIN IMMEDIATE` takes the file's write lock at once, so a second
/// process on the same file waits on `busy_timeout` here instead of failing at commit.
///
/// Call it only inside [`Sqlite::write`]: a `BEGIN` dropped before it returns leaves the
/// connection inside a transaction.
pub async fn begin(conn: &mut SqliteConnection) -> Result<Transaction<'_, sqlx::Sqlite>> {
    conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
}

/// The writer connection and what it needs to repair or replace itself.
struct Writer {
    state: Mutex<WriterState>,
    options: SqliteConnectOptions,
    label: &'static str,
    health: Arc<Health>,
}

/// The writer connection, and whether the last operation on it ended well.
struct WriterState {
    /// `None` only while a broken connection is being replaced.
    conn: Option<SqliteConnection>,
    /// The last operation failed or panicked: before the next one, ask SQLite itself whether
    /// the connection is outside any transaction (on success, sqlx's count is reliable).
    verify: bool,
}

/// An embedded SQLite database: the writer, the readers and the checkpointer.
pub struct Sqlite {
    writer: Arc<Writer>,
    /// Readers; empty for an in-memory database, whose reads go to the writer.
    read: Vec<Mutex<SqliteConnection>>,
    /// Where the next read starts looking for a free connection.
    next_read: AtomicUsize,
    /// Dropped with the database; the checkpoint task stops when it is gone.
    alive: Arc<()>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("label", &self.writer.label)
            .field("readers", &self.read.len())
            .finish_non_exhaustive()
    }
}

/// A read connection (or the writer's, for an in-memory database).
pub struct ReadConn<'a>(Read<'a>);

enum Read<'a> {
    Reader(MutexGuard<'a, SqliteConnection>),
    Writer(MutexGuard<'a, WriterState>),
}

impl std::ops::Deref for ReadConn<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match &self.0 {
            Read::Reader(g) => g,
            Read::Writer(g) => g
                .conn
                .as_ref()
                .expect("the writer is present between operations"),
        }
    }
}

impl std::ops::DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.0 {
            Read::Reader(g) => g,
            Read::Writer(g) => g
                .conn
                .as_mut()
                .expect("the writer is present between operations"),
        }
    }
}

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`] on its own connection
/// (`PASSIVE`: never blocks readers or the writer), until the database is dropped. With
/// `synchronous=NORMAL` the checkpoint is where SQLite fsyncs; doing it here keeps those
/// fsyncs off the write path and the WAL small. A failed checkpoint is retried at the next
/// tick; the writer's own auto-checkpoint is the fallback.
async fn checkpoints(mut conn: SqliteConnection, alive: Weak<()>, label: &'static str) {
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
            tracing::warn!(store = label, error = %e, "SQLite WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

impl Sqlite {
    /// Opens (creating if missing) the database at `url` — `sqlite://PATH` or `sqlite:PATH`;
    /// `sqlite::memory:` gives a private in-memory database for tests. `label` names the
    /// store in logs (`jobs`, `trigger`).
    pub async fn open(url: &str, label: &'static str) -> Result<Sqlite> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Database(format!("bad SQLite URL `{url}`: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Truncate the WAL back to 64 MiB after checkpoints.
            .pragma("journal_size_limit", "67108864");
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // The writer checkpoints only as a fallback: a background task does it (see
        // `checkpoints`), so no write waits for the fsyncs of a checkpoint.
        let writer_options = if in_memory {
            options.clone()
        } else {
            options
                .clone()
                .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
        };
        let write = writer_options.connect().await.map_err(map_err)?;
        let mut db = Sqlite {
            writer: Arc::new(Writer {
                state: Mutex::new(WriterState {
                    conn: Some(write),
                    verify: false,
                }),
                options: writer_options,
                label,
                health: Arc::default(),
            }),
            read: Vec::new(),
            next_read: AtomicUsize::new(0),
            alive: Arc::new(()),
        };
        if !in_memory {
            let checkpointer = options.connect().await.map_err(map_err)?;
            tokio::spawn(checkpoints(checkpointer, Arc::downgrade(&db.alive), label));
            let reader = options.pragma("query_only", "ON");
            for _ in 0..READERS {
                let conn = reader.connect().await.map_err(map_err)?;
                db.read.push(Mutex::new(conn));
            }
        }
        Ok(db)
    }

    /// What the writer has had to repair.
    pub fn health(&self) -> Arc<Health> {
        Arc::clone(&self.writer.health)
    }

    /// Runs `op` on the writer connection, after the writes before it, to completion once
    /// started even if the caller stops waiting (see the crate docs). A panic in `op` goes on
    /// in the caller.
    pub async fn write<T, E, F>(&self, op: F) -> std::result::Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, std::result::Result<T, E>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        crate::finish(async move {
            let mut state = writer.state.lock().await;
            writer.ready(&mut state).await?;
            // Cleared only when the operation returns Ok (a panic leaves it set).
            state.verify = true;
            let conn = state.conn.as_mut().expect("ready leaves a connection");
            let result = op(conn).await;
            state.verify = result.is_err();
            result
        })
        .await
    }

    /// Creates or upgrades the schema to `m` in one write transaction (see
    /// [`crate::migrate`]); `BEGIN IMMEDIATE` keeps other processes on the file out meanwhile.
    pub async fn migrate(&self, m: Migrations) -> Result<()> {
        self.write(move |c| {
            Box::pin(async move { crate::migrate::run!(c, &m, begin, map_err, None::<String>) })
        })
        .await
    }

    /// A read connection: a free one if any, else the next in turn. Reads start no
    /// transaction.
    pub async fn read(&self) -> Result<ReadConn<'_>> {
        if self.read.is_empty() {
            let mut state = self.writer.state.lock().await;
            self.writer.ready(&mut state).await?;
            return Ok(ReadConn(Read::Writer(state)));
        }
        let start = self.next_read.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.read.len() {
            if let Ok(guard) = self.read[(start + i) % self.read.len()].try_lock() {
                return Ok(ReadConn(Read::Reader(guard)));
            }
        }
        Ok(ReadConn(Read::Reader(
            self.read[start % self.read.len()].lock().await,
        )))
    }
}

impl Writer {
    /// Makes the writer connection ready for an operation: outside any transaction. One left
    /// inside a transaction is rolled back, and one that cannot be rolled back is replaced,
    /// loudly. sqlx's transaction count is checked every time (free); SQLite's own flag after
    /// an operation that failed or panicked, where the two can part (asking costs a round
    /// trip to the connection's thread, about a tenth of a no-op render's store time).
    async fn ready(&self, state: &mut WriterState) -> Result<()> {
        if let Some(conn) = state.conn.as_mut() {
            let depth = <sqlx::Sqlite as Database>::TransactionManager::get_transaction_depth(conn);
            let open = depth > 0 || (state.verify && !autocommit(conn).await?);
            if open {
                self.health.repaired();
                tracing::error!(
                    store = self.label,
                    depth,
                    "the SQLite writer was left inside a transaction; rolling it back"
                );
                if let Err(e) = rollback(conn, depth).await {
                    tracing::error!(
                        store = self.label,
                        error = %e,
                        "rolling back the SQLite writer failed; opening a new writer connection"
                    );
                    state.conn = None;
                }
            }
        }
        if state.conn.is_none() {
            state.conn = Some(self.options.connect().await.map_err(map_err)?);
        }
        state.verify = false;
        Ok(())
    }
}

/// Rolls back a transaction sqlx knows about (`depth > 0`) or one it does not.
async fn rollback(conn: &mut SqliteConnection, depth: usize) -> Result<()> {
    if depth > 0 {
        for _ in 0..depth {
            <sqlx::Sqlite as Database>::TransactionManager::rollback(conn)
                .await
                .map_err(map_err)?;
        }
    } else {
        sqlx::query("ROLLBACK")
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    if autocommit(conn).await? {
        Ok(())
    } else {
        Err(Error::Database(
            "still inside a transaction after ROLLBACK".into(),
        ))
    }
}

/// SQLite's own answer to "is this connection outside any transaction?"
/// (`sqlite3_get_autocommit`).
async fn autocommit(conn: &mut SqliteConnection) -> Result<bool> {
    let mut handle = conn.lock_handle().await.map_err(map_err)?;
    let raw = handle.as_raw_handle();
    #[allow(unsafe_code)]
    // SAFETY: `raw` is the open connection's handle, locked for this thread by `handle` (no
    // other statement runs on it meanwhile); `sqlite3_get_autocommit` only reads a flag.
    let autocommit = unsafe { libsqlite3_sys::sqlite3_get_autocommit(raw.as_ptr()) } != 0;
    Ok(autocommit)
}
