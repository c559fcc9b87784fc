//! The PostgreSQL backend: one shared database for any number of coordinators.
//!
//! Claims select queued rows `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
//! each other's rows, and lock each tenant row (`FOR NO KEY UPDATE`, which does not block the
//! foreign-key checks of concurrent submits) while they count its running renders. To stay
//! free of lock cycles, a claim waits only for the first tenant row it locks and skips tenants
//! locked by someone else after that; other transactions lock job rows before tenant rows,
//! tenant rows in id order, and the outbox lock last.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Transaction};

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
/// Serializes schema creation between coordinators starting together.
const MIGRATION_LOCK: Option<&str> =
    Some("SELECT pg_advisory_xact_lock(7262011, hashtext(current_schema()))");

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
#[path = "shared.rs"]
mod shared;

/// Connection trouble, serialization failures, deadlocks, shutdowns, too many connections.
fn map_err(e: sqlx::Error) -> StoreError {
    super::map_sqlx(e, |d| {
        d.code().is_some_and(|c| {
            c.starts_with("08")
                || c.starts_with("57P")
                || matches!(&*c, "40001" | "40P01" | "53300" | "55P03")
        })
    })
}

/// The shared job store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://USER:PASS@HOST:PORT/DB`; `?options=-c search_path=S`
    /// picks a schema) and creates the tables when they are missing.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        Self::connect_opts(parse(url)?).await
    }

    /// Like [`PostgresStore::connect`], but keeps all tables in `schema` (created if missing),
    /// through the connections' `search_path`. Tests use a fresh schema each.
    pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<PostgresStore> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(StoreError::Database(format!(
                "schema name `{schema}` must match [a-z_][a-z0-9_]{{0,62}}"
            )));
        }
        let options = parse(url)?;
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(map_err)?;
        sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        conn.close().await.map_err(map_err)?;
        Self::connect_opts(options.options([("search_path", schema)])).await
    }

    async fn connect_opts(options: PgConnectOptions) -> StoreResult<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            // A dead connection fails its statement with `Unavailable` (retryable) instead of
            // costing every acquire a round trip.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(300))
            .connect_with(options)
            .await
            .map_err(map_err)?;
        let store = PostgresStore { pool };
        shared::migrate(&store).await?;
        Ok(store)
    }

    /// Closes the pool (waits for checked-out connections to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn write_conn(&self) -> StoreResult<PoolConnection<Db>> {
        self.pool.acquire().await.map_err(map_err)
    }

    async fn read_conn(&self) -> StoreResult<PoolConnection<Db>> {
        self.pool.acquire().await.map_err(map_err)
    }
}

/// A transaction (READ COMMITTED; every transition is a compare-and-set).
async fn begin(conn: &mut Conn) -> StoreResult<Transaction<'_, Db>> {
    conn.begin().await.map_err(map_err)
}

fn parse(url: &str) -> StoreResult<PgConnectOptions> {
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))
}
