//! The PostgreSQL backend: one shared database for any number of coordinators.
//!
//! Claims select queued rows `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
//! each other's rows, and lock each tenant row (`FOR NO KEY UPDATE`, which does not block the
//! foreign-key checks of concurrent submits) while they count its running renders. To stay
//! free of lock cycles, a claim waits only for the first tenant row it locks and skips tenants
//! locked by someone else after that; other transactions lock job rows before tenant rows,
//! tenant rows in id order, and the outbox lock last.

use sqlx::pool::PoolConnection;
use sqlx::Transaction;

use crate::store::{StoreError, StoreResult};

type Db = sqlx::Postgres;
type Conn = sqlx::PgConnection;
type DbRow = sqlx::postgres::PgRow;
type Backend = PostgresStore;

const NAME: &str = "postgres";
const SCHEMA: &str = include_str!("schema_postgres.sql");
/// A tenant's running count and cap under its row lock: waiting (first tenant of a claim) and skipping
/// (the others).
const TENANT_LOCK: Option<[&str; 2]> = Some([
    "SELECT running, max_running FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
    "SELECT running, max_running FROM tenants WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED",
]);
/// Claims hold tenant row locks until commit.
const CLAIM_IN_TRANSACTION: bool = true;

/// Concurrent claimers skip each other's rows.
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
    };
}

/// Locks the selected rows until commit (not their keys: foreign-key checks go on).
macro_rules! for_update {
    () => {
        " FOR NO KEY UPDATE"
    };
}

#[allow(clippy::duplicate_mod)] // by design: the same implementation, compiled per backend
#[path = "queries/mod.rs"]
mod queries;

/// Connection trouble, serialization failures, deadlocks, shutdowns, too many connections.
fn map_err(e: sqlx::Error) -> StoreError {
    sqlstore::postgres::map_err(e).into()
}

/// The shared job store.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    db: sqlstore::Postgres,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://USER:PASS@HOST:PORT/DB`; `?options=-c search_path=S`
    /// picks a schema) and creates the tables when they are missing.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        Self::migrated(sqlstore::Postgres::connect(url, "jobs").await?).await
    }

    /// Like [`PostgresStore::connect`], but keeps all tables in `schema` (created if missing),
    /// through the connections' `search_path`. Tests use a fresh schema each.
    pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<PostgresStore> {
        Self::migrated(sqlstore::Postgres::connect_with_schema(url, schema, "jobs").await?).await
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
