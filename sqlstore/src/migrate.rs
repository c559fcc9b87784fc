//! Versioned schema migrations: each store names its version table, its schema (version 1),
//! the version its code writes and the upgrades between ([`Migrations`]);
//! [`Sqlite::migrate`](crate::Sqlite::migrate) and [`Postgres::migrate`](crate::Postgres::migrate)
//! bring a database there.
//!
//! A migration is one write transaction, run to its end once started like every write:
//!
//! 1. PostgreSQL only: a transaction-scoped advisory lock on (`lock_key`, the current schema's
//!    name hash), so processes starting together migrate one after the other and the second
//!    finds the work done. SQLite needs none: `BEGIN IMMEDIATE` already keeps every other
//!    writer out until commit.
//! 2. The version table is created if missing; its largest version is the database's (0 when
//!    empty).
//! 3. A database newer than the code is refused (the code would not know its tables).
//! 4. Version 0 gets the schema; then every upgrade above the database's version runs, in
//!    order; then the new version is recorded.
//!
//! Each store keeps its own version table, because with PostgreSQL several stores can keep
//! their tables in one schema.

/// A store's schema and how to bring an older database up to it.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// The table recording the schema version (one per store).
    pub version_table: &'static str,
    /// Creates the schema at version 1 (this dialect's SQL, run as one script).
    pub schema: &'static str,
    /// The version this code writes.
    pub version: i64,
    /// `upgrades[i]` takes the schema from version `i + 1` to `i + 2`.
    pub upgrades: &'static [&'static str],
    /// PostgreSQL: the first key of the advisory lock that serializes migrations (distinct per
    /// store, so two stores sharing a schema do not wait for each other).
    pub lock_key: i32,
    /// The error message for a database at `found`, newer than the `known` version.
    pub too_new: fn(found: i64, known: i64) -> String,
}

/// The statement that takes the PostgreSQL migration lock of `m`.
pub(crate) fn advisory_lock(m: &Migrations) -> String {
    format!(
        "SELECT pg_advisory_xact_lock({}, hashtext(current_schema()))",
        m.lock_key
    )
}

/// The migration of `$m` (a `&Migrations`) on the connection `$conn`, in a transaction opened by
/// `$begin`, after the statement `$lock` (an `Option<String>`) if any; errors mapped by
/// `$map_err`. Written once, expanded once per dialect: sqlx's generic executor bounds do not
/// give a future that is provably `Send`, and writes may finish in a task of their own.
macro_rules! run {
    ($conn:expr, $m:expr, $begin:path, $map_err:path, $lock:expr) => {{
        let m: &$crate::migrate::Migrations = $m;
        let mut tx = $begin($conn).await?;
        if let Some(lock) = $lock {
            sqlx::query(&lock)
                .execute(&mut *tx)
                .await
                .map_err($map_err)?;
        }
        let table = m.version_table;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (version BIGINT NOT NULL)"
        ))
        .execute(&mut *tx)
        .await
        .map_err($map_err)?;
        let row = sqlx::query(&format!(
            "SELECT CAST(coalesce(max(version), 0) AS BIGINT) AS v FROM {table}"
        ))
        .fetch_one(&mut *tx)
        .await
        .map_err($map_err)?;
        let version: i64 = $crate::row::get(&row, "v")?;
        if version > m.version {
            return Err($crate::Error::Database((m.too_new)(version, m.version)));
        }
        if version < 1 {
            // Through `Executor` (a boxed `Send` future): `RawSql::execute` is an `async fn`
            // whose future the compiler cannot prove `Send`, and writes may finish in a task.
            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(m.schema))
                .await
                .map_err($map_err)?;
        }
        for (from, upgrade) in (1..).zip(m.upgrades) {
            if version <= from {
                sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(upgrade))
                    .await
                    .map_err($map_err)?;
            }
        }
        if version < m.version {
            sqlx::query(&format!("INSERT INTO {table} (version) VALUES ($1)"))
                .bind(m.version)
                .execute(&mut *tx)
                .await
                .map_err($map_err)?;
        }
        tx.commit().await.map_err($map_err)
    }};
}

pub(crate) use run;
