//! The per-backend half of a domain store, stamped out once per dialect.
//!
//! A domain store (the coordinator's job store, the trigger store) writes its SQL once, in a
//! `queries` module that the store's `sqlite.rs` and `postgres.rs` each compile with
//! `#[path = "queries/mod.rs"] mod queries;`, so that the same text runs against concrete sqlx
//! types (generic code over sqlx's executor traits does not produce futures the compiler
//! accepts as `Send`). What those two files need besides their dialect hooks is the same for
//! every store: the sqlx type names the queries use (`Db`, `Conn`, `DbRow`, `Backend`), the
//! store struct around [`Sqlite`](crate::Sqlite) or [`Postgres`](crate::Postgres), opening
//! and migrating it, a read connection, `begin` and `map_err`. [`sqlite_backend!`] and
//! [`postgres_backend!`] write that part.
//!
//! The invoking module must have `StoreError: From<sqlstore::Error>` and `StoreResult<T>` in
//! scope, and a `queries` module with `async fn migrate(&Backend) -> StoreResult<()>`.

/// The SQLite half of a domain store: `sqlite_backend! { /// docs  StoreName, "label" }`.
#[macro_export]
macro_rules! sqlite_backend {
    ($(#[$meta:meta])* $store:ident, $label:literal) => {
        type Db = $crate::sqlx::Sqlite;
        type Conn = $crate::sqlx::SqliteConnection;
        type DbRow = $crate::sqlx::sqlite::SqliteRow;
        type Backend = $store;

        const NAME: &str = "sqlite";

        /// SQLITE_BUSY and SQLITE_LOCKED are "busy, retry".
        fn map_err(e: $crate::sqlx::Error) -> StoreError {
            $crate::sqlite::map_err(e).into()
        }

        $(#[$meta])*
        #[derive(Debug)]
        pub struct $store {
            db: $crate::Sqlite,
        }

        impl $store {
            /// Opens (creating if missing) the database at `url` — `sqlite://PATH` or
            /// `sqlite:PATH`; `sqlite::memory:` gives a private in-memory database for tests —
            /// and creates the schema when it is missing.
            pub async fn open(url: &str) -> StoreResult<$store> {
                let store = $store {
                    db: $crate::Sqlite::open(url, $label).await?,
                };
                queries::migrate(&store).await?;
                Ok(store)
            }

            async fn read_conn(&self) -> StoreResult<$crate::sqlite::ReadConn<'_>> {
                Ok(self.db.read().await?)
            }
        }

        /// A write transaction (`BEGIN IMMEDIATE`).
        async fn begin(conn: &mut Conn) -> StoreResult<$crate::sqlx::Transaction<'_, Db>> {
            Ok($crate::sqlite::begin(conn).await?)
        }
    };
}

/// The PostgreSQL half of a domain store: `postgres_backend! { /// docs  StoreName, "label" }`.
#[macro_export]
macro_rules! postgres_backend {
    ($(#[$meta:meta])* $store:ident, $label:literal) => {
        type Db = $crate::sqlx::Postgres;
        type Conn = $crate::sqlx::PgConnection;
        type DbRow = $crate::sqlx::postgres::PgRow;
        type Backend = $store;

        const NAME: &str = "postgres";

        /// Connection trouble, serialization failures, deadlocks, shutdowns, too many
        /// connections.
        fn map_err(e: $crate::sqlx::Error) -> StoreError {
            $crate::postgres::map_err(e).into()
        }

        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub struct $store {
            db: $crate::Postgres,
        }

        impl $store {
            /// Connects to `url` (`postgres://USER:PASS@HOST:PORT/DB`;
            /// `?options=-c search_path=S` picks a schema) and creates the tables when they
            /// are missing.
            pub async fn connect(url: &str) -> StoreResult<$store> {
                Self::migrated($crate::Postgres::connect(url, $label).await?).await
            }

            /// Like `connect`, but keeps all tables in `schema` (created if missing), through
            /// the connections' `search_path`. Tests use a fresh schema each.
            pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<$store> {
                Self::migrated($crate::Postgres::connect_with_schema(url, schema, $label).await?)
                    .await
            }

            async fn migrated(db: $crate::Postgres) -> StoreResult<$store> {
                let store = $store { db };
                queries::migrate(&store).await?;
                Ok(store)
            }

            /// Closes the pool (waits for checked-out connections to come back).
            pub async fn close(&self) {
                self.db.close().await;
            }

            async fn read_conn(
                &self,
            ) -> StoreResult<$crate::sqlx::pool::PoolConnection<Db>> {
                Ok(self.db.read().await?)
            }
        }

        /// A transaction (READ COMMITTED; every transition is a compare-and-set).
        async fn begin(conn: &mut Conn) -> StoreResult<$crate::sqlx::Transaction<'_, Db>> {
            Ok($crate::postgres::begin(conn).await?)
        }
    };
}
