//! The SQLite backend: one embedded database file (`sqlstore::Sqlite`: one writer connection
//! whose operations run to completion, a few readers, WAL). SQLite has no row locks; its
//! single writer serializes claims.

use sqlx::Transaction;

use super::{StoreError, StoreResult};

type Db = sqlx::Sqlite;
type Conn = sqlx::SqliteConnection;
type DbRow = sqlx::sqlite::SqliteRow;
type Backend = SqliteStore;

const NAME: &str = "sqlite";
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

/// SQLITE_BUSY and SQLITE_LOCKED are "busy, retry".
fn map_err(e: sqlx::Error) -> StoreError {
    sqlstore::sqlite::map_err(e).into()
}

/// The embedded trigger store.
#[derive(Debug)]
pub struct SqliteStore {
    db: sqlstore::Sqlite,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` — `sqlite://PATH` or `sqlite:PATH`;
    /// `sqlite::memory:` gives a private in-memory database for tests — and creates the schema
    /// when it is missing.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let store = SqliteStore {
            db: sqlstore::Sqlite::open(url, "trigger").await?,
        };
        queries::migrate(&store).await?;
        Ok(store)
    }

    async fn read_conn(&self) -> StoreResult<sqlstore::sqlite::ReadConn<'_>> {
        Ok(self.db.read().await?)
    }
}

/// A write transaction (`BEGIN IMMEDIATE`).
async fn begin(conn: &mut Conn) -> StoreResult<Transaction<'_, Db>> {
    Ok(sqlstore::sqlite::begin(conn).await?)
}
