//! The PostgreSQL backend: one shared database for any number of trigger processes.
//!
//! Claims select due rows `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on or
//! get each other's rows. Transactions run at READ COMMITTED; every transition is a
//! compare-and-set on the row's state.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Transaction};

use super::{StoreError, StoreResult};

type Db = sqlx::Postgres;
type Conn = sqlx::PgConnection;
type DbRow = sqlx::postgres::PgRow;
type Backend = PostgresStore;

const NAME: &str = "postgres";
const SCHEMA: &str = include_str!("schema_postgres.sql");
/// Serializes schema creation between processes starting together.
const MIGRATION_LOCK: Option<&str> =
    Some("SELECT pg_advisory_xact_lock(7262012, hashtext(current_schema()))");
/// Concurrent claimers skip each other's rows.
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
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

/// The shared trigger store: a connection pool.
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
        let valid = schema.len() <= 63
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && schema.bytes().next().is_some_and(|b| !b.is_ascii_digit());
        if !valid {
            return Err(StoreError::Database(format!(
                "schema name `{schema}` must match [a-z_][a-z0-9_]{{0,62}}"
            )));
        }
        let options = parse(url)?;
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(map_err)?;
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&create))
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
