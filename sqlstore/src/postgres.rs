//! PostgreSQL: a shared database for any number of processes, through a connection pool.
//!
//! Writes run to their end once started, on pooled connections (see the crate docs); reads
//! take a pooled connection on the caller. Transactions are READ COMMITTED; stores make every
//! transition a compare-and-set.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Database, PgConnection, Transaction, TransactionManager};

use crate::migrate::Migrations;
use crate::{Error, Health, Result};

/// Connections of the pool.
const MAX_CONNECTIONS: u32 = 16;
/// Longest wait for the first connection of a store, at start.
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// Connection trouble, serialization failures, deadlocks, shutdowns, too many connections are
/// "busy, retry".
pub fn map_err(e: sqlx::Error) -> Error {
    crate::map_sqlx(e, |d| {
        d.code().is_some_and(|c| {
            c.starts_with("08")
                || c.starts_with("57P")
                || matches!(&*c, "40001" | "40P01" | "53300" | "55P03")
        })
    })
}

/// A transaction (READ COMMITTED).
///
/// Call it only inside [`Postgres::write`]: a `BEGIN` dropped before it returns leaves the
/// connection inside a transaction that sqlx does not know about.
pub async fn begin(conn: &mut PgConnection) -> Result<Transaction<'_, sqlx::Postgres>> {
    conn.begin().await.map_err(map_err)
}

/// A shared PostgreSQL database.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    label: &'static str,
    health: Arc<Health>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Parses a `postgres://` URL.
fn parse(url: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| Error::Database(format!("bad PostgreSQL URL: {e}")))
}

/// Whether `schema` is a plain lower-case identifier: `[a-z_][a-z0-9_]{0,62}`.
fn valid_schema(schema: &str) -> bool {
    schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && schema.bytes().next().is_some_and(|b| !b.is_ascii_digit())
}

impl Postgres {
    /// Connects to `url` (`postgres://USER:PASS@HOST:PORT/DB`; `?options=-c search_path=S`
    /// picks a schema). `label` names the store in logs.
    pub async fn connect(url: &str, label: &'static str) -> Result<Postgres> {
        Self::connect_opts(parse(url)?, label).await
    }

    /// Like [`Postgres::connect`], but keeps all tables in `schema` (created if missing),
    /// through the connections' `search_path`. Tests use a fresh schema each.
    pub async fn connect_with_schema(
        url: &str,
        schema: &str,
        label: &'static str,
    ) -> Result<Postgres> {
        if !valid_schema(schema) {
            return Err(Error::Database(format!(
                "schema name `{schema}` must match [a-z_][a-z0-9_]{{0,62}}"
            )));
        }
        let options = parse(url)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(map_err)?;
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&create))
            .await
            .map_err(map_err)?;
        conn.close().await.map_err(map_err)?;
        Self::connect_opts(options.options([("search_path", schema)]), label).await
    }

    async fn connect_opts(options: PgConnectOptions, label: &'static str) -> Result<Postgres> {
        // One plain connection first: the pool retries a refused or failing connection until
        // its acquire timeout, and a process starting against a dead or misconfigured database
        // should say so at once.
        match tokio::time::timeout(FIRST_CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
        {
            Ok(Ok(conn)) => conn.close().await.map_err(map_err)?,
            Ok(Err(e)) => return Err(map_err(e)),
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "no answer from PostgreSQL at {}:{} within {} s",
                    options.get_host(),
                    options.get_port(),
                    FIRST_CONNECT_TIMEOUT.as_secs()
                )))
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            // A dead connection fails its statement with `Unavailable` (retryable) instead of
            // costing every acquire a round trip.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(300))
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Postgres {
            pool,
            label,
            health: Arc::default(),
        })
    }

    /// What the writers have had to repair.
    pub fn health(&self) -> Arc<Health> {
        Arc::clone(&self.health)
    }

    /// Closes the pool (waits for checked-out connections to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `op` on a pooled connection, to completion once started even if the caller stops
    /// waiting (see the crate docs). A panic in `op` goes on in the caller.
    pub async fn write<T, E, F>(&self, op: F) -> std::result::Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, std::result::Result<T, E>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let db = self.clone();
        crate::finish(async move {
            let mut conn = db.pool.acquire().await.map_err(map_err)?;
            db.ready(&mut conn).await?;
            op(&mut conn).await
        })
        .await
    }

    /// Creates or upgrades the schema to `m` in one transaction (see [`crate::migrate`]),
    /// under an advisory lock, so processes starting together migrate one at a time.
    pub async fn migrate(&self, m: Migrations) -> Result<()> {
        self.write(move |c| {
            Box::pin(async move {
                let lock = crate::migrate::advisory_lock(&m);
                crate::migrate::run!(c, &m, begin, map_err, Some(lock))
            })
        })
        .await
    }

    /// A pooled connection for reads, which start no transaction.
    pub async fn read(&self) -> Result<PoolConnection<sqlx::Postgres>> {
        self.pool.acquire().await.map_err(map_err)
    }

    /// Rolls back a transaction sqlx still counts on a pooled connection, loudly. (The
    /// server's own transaction status is not visible through sqlx without a round trip;
    /// running every write to completion is what keeps it in step.)
    async fn ready(&self, conn: &mut PoolConnection<sqlx::Postgres>) -> Result<()> {
        let depth = <sqlx::Postgres as Database>::TransactionManager::get_transaction_depth(conn);
        if depth == 0 {
            return Ok(());
        }
        self.health.repaired();
        tracing::error!(
            store = self.label,
            depth,
            "a PostgreSQL connection was left inside a transaction; rolling it back"
        );
        for _ in 0..depth {
            <sqlx::Postgres as Database>::TransactionManager::rollback(conn)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(valid_schema("t_0a"));
        assert!(valid_schema("_x"));
        assert!(!valid_schema(""));
        assert!(!valid_schema("0a"));
        assert!(!valid_schema("A"));
        assert!(!valid_schema("a;drop"));
        assert!(!valid_schema(&"a".repeat(64)));
    }
}
