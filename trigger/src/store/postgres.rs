//! The PostgreSQL backend: one shared database for any number of trigger processes.
//!
//! Claims select due rows `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on or
//! get each other's rows. Transactions run at READ COMMITTED; every transition is a
//! compare-and-set on the row's state.

use sqlx::pool::PoolConnection;
use sqlx::Transaction;

use super::{StoreError, StoreResult};

type Db = sqlx::Postgres;
type Conn = sqlx::PgConnection;
type DbRow = sqlx::postgres::PgRow;
type Backend = PostgresStore;

const NAME: &str = "postgres";
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

/// Connection trouble, serialization failures, deadlocks, shutdowns, too many connections.
fn map_err(e: sqlx::Error) -> StoreError {
    sqlstore::postgres::map_err(e).into()
}

/// The shared trigger store: a connection pool.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    db: sqlstore::Postgres,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://USER:PASS@HOST:PORT/DB`; `?options=-c search_path=S`
    /// picks a schema) and creates the tables when they are missing.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        Self::migrated(sqlstore::Postgres::connect(url, "trigger").await?).await
    }

    /// Like [`PostgresStore::connect`], but keeps all tables in `schema` (created if missing),
    /// through the connections' `search_path`. Tests use a fresh schema each.
    pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<PostgresStore> {
        Self::migrated(sqlstore::Postgres::connect_with_schema(url, schema, "trigger").await?).await
    }

    async fn migrated(db: sqlstore::Postgres) -> StoreResult<PostgresStore> {
        let store = PostgresStore { db };
        queries::migrate(&store).await?;
        Ok(store)
    }

    /// Closes the pool (waits for checked-out connections to come back).
    pub async fn close(&self) {
        self.db.close().await;
    }

    async fn read_conn(&self) -> StoreResult<PoolConnection<Db>> {
        Ok(self.db.read().await?)
    }
}

/// A transaction (READ COMMITTED; every transition is a compare-and-set).
async fn begin(conn: &mut Conn) -> StoreResult<Transaction<'_, Db>> {
    Ok(sqlstore::postgres::begin(conn).await?)
}
