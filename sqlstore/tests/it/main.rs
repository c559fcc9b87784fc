//! The writer's promises: operations finish once started, and a connection found inside a
//! transaction is repaired before the next operation, on both backends.

use std::time::Duration;

use futures::future::BoxFuture;
use sqlstore::testing::drop_at_suspension;
use sqlstore::{Error, Postgres, Sqlite};
use sqlx::{Connection, Executor};

fn pg_url() -> String {
    std::env::var("REELFARM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://reelfarm:reelfarm@127.0.0.1:5432/reelfarm_test".to_owned())
}

async fn sqlite() -> (Sqlite, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let db = Sqlite::open(&url, "test").await.expect("open");
    db.write(|c| {
        Box::pin(async move {
            c.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
                .await
                .map_err(sqlstore::sqlite::map_err)?;
            Ok::<_, Error>(())
        })
    })
    .await
    .expect("schema");
    (db, url, dir)
}

/// Rows of `t` as a new connection of its own sees them.
async fn sqlite_rows(url: &str) -> Vec<String> {
    let mut c = sqlx::SqliteConnection::connect(url).await.expect("inspect");
    sqlx::query_scalar("SELECT id FROM t ORDER BY id")
        .fetch_all(&mut c)
        .await
        .expect("rows")
}

fn insert_sqlite(
    id: String,
) -> impl for<'c> FnOnce(&'c mut sqlx::SqliteConnection) -> BoxFuture<'c, Result<(), Error>>
       + Send
       + 'static {
    move |c| {
        Box::pin(async move {
            sqlx::query("INSERT INTO t (id) VALUES ($1)")
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(sqlstore::sqlite::map_err)?;
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_finish_when_the_caller_stops_waiting() {
    let (db, url, _dir) = sqlite().await;
    for k in 0..6 {
        let id = format!("w{k}");
        let write = db.write(move |c| {
            Box::pin(async move {
                let mut tx = sqlstore::sqlite::begin(c).await?;
                sqlx::query("INSERT INTO t (id) VALUES ($1)")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(sqlstore::sqlite::map_err)?;
                tx.commit().await.map_err(sqlstore::sqlite::map_err)
            })
        });
        drop_at_suspension(k, write).await;
    }
    // The last operation may still be running: the next write queues behind it.
    db.write(insert_sqlite("after".into()))
        .await
        .expect("write");
    // Dropped before its first poll, w0 never started; every other one finished.
    let rows = sqlite_rows(&url).await;
    assert_eq!(rows, ["after", "w1", "w2", "w3", "w4", "w5"]);
    assert_eq!(db.health().repairs(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_left_in_a_transaction_is_rolled_back() {
    let (db, url, _dir) = sqlite().await;
    // A transaction sqlx knows about, whose guard is lost.
    db.write(|c| {
        Box::pin(async move {
            let mut tx = sqlstore::sqlite::begin(c).await?;
            sqlx::query("INSERT INTO t (id) VALUES ('lost-1')")
                .execute(&mut *tx)
                .await
                .map_err(sqlstore::sqlite::map_err)?;
            std::mem::forget(tx);
            Ok::<_, Error>(())
        })
    })
    .await
    .expect("leak");
    db.write(insert_sqlite("kept-1".into()))
        .await
        .expect("write");
    assert_eq!(db.health().repairs(), 1);
    assert_eq!(
        sqlite_rows(&url).await,
        ["kept-1"],
        "committed at once, leak rolled back"
    );

    // A transaction sqlx does not know about, in an operation that then fails: only SQLite's
    // autocommit flag shows it.
    let failed = db
        .write(|c| {
            Box::pin(async move {
                c.execute("BEGIN")
                    .await
                    .map_err(sqlstore::sqlite::map_err)?;
                c.execute("INSERT INTO t (id) VALUES ('lost-2')")
                    .await
                    .map_err(sqlstore::sqlite::map_err)?;
                Err::<(), _>(Error::Database("failed midway".into()))
            })
        })
        .await;
    assert_eq!(failed, Err(Error::Database("failed midway".into())));
    db.write(insert_sqlite("kept-2".into()))
        .await
        .expect("write");
    assert_eq!(db.health().repairs(), 2);
    assert_eq!(sqlite_rows(&url).await, ["kept-1", "kept-2"]);

    // Transactions work as before after a repair.
    db.write(|c| {
        Box::pin(async move {
            let mut tx = sqlstore::sqlite::begin(c).await?;
            sqlx::query("INSERT INTO t (id) VALUES ('kept-3')")
                .execute(&mut *tx)
                .await
                .map_err(sqlstore::sqlite::map_err)?;
            tx.commit().await.map_err(sqlstore::sqlite::map_err)
        })
    })
    .await
    .expect("transaction after repair");
    assert_eq!(sqlite_rows(&url).await, ["kept-1", "kept-2", "kept-3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_panics_in_the_caller_and_leaves_the_writer_usable() {
    let (db, url, _dir) = sqlite().await;
    let caught = tokio::spawn(async move {
        db.write(|c| {
            Box::pin(async move {
                let mut tx = sqlstore::sqlite::begin(c).await?;
                sqlx::query("INSERT INTO t (id) VALUES ('x')")
                    .execute(&mut *tx)
                    .await
                    .map_err(sqlstore::sqlite::map_err)?;
                if tx.is_in_transaction() {
                    panic!("boom");
                }
                Ok::<_, Error>(())
            })
        })
        .await
    })
    .await;
    assert!(caught.expect_err("panics").is_panic());
    let db = Sqlite::open(&url, "test").await.expect("reopen");
    db.write(insert_sqlite("y".into())).await.expect("write");
    assert_eq!(sqlite_rows(&url).await, ["y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_left_in_a_transaction_is_rolled_back() {
    let schema = format!("s_{}", uuid_like());
    let db = Postgres::connect_with_schema(&pg_url(), &schema, "test")
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is unreachable ({e}); start it with scripts/postgres-up")
        });
    let map = sqlstore::postgres::map_err;
    db.write(move |c| {
        Box::pin(async move {
            c.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
                .await
                .map_err(map)?;
            Ok::<_, Error>(())
        })
    })
    .await
    .expect("schema");
    // Only one connection in play: the leaked transaction stays on it.
    db.write(move |c| {
        Box::pin(async move {
            let mut tx = sqlstore::postgres::begin(c).await?;
            sqlx::query("INSERT INTO t (id) VALUES ('lost')")
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            std::mem::forget(tx);
            Ok::<_, Error>(())
        })
    })
    .await
    .expect("leak");
    for id in ["kept-1", "kept-2"] {
        db.write(move |c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (id) VALUES ($1)")
                    .bind(id)
                    .execute(&mut *c)
                    .await
                    .map_err(map)?;
                Ok::<_, Error>(())
            })
        })
        .await
        .expect("write");
    }
    let mut inspect = pg_conn(&schema).await;
    let rows: Vec<String> = sqlx::query_scalar("SELECT id FROM t ORDER BY id")
        .fetch_all(&mut inspect)
        .await
        .expect("rows");
    assert_eq!(rows, ["kept-1", "kept-2"]);
    assert_eq!(db.health().repairs(), 1);
    db.close().await;
    inspect
        .execute(format!("DROP SCHEMA \"{schema}\" CASCADE").as_str())
        .await
        .expect("drop schema");
}

async fn pg_conn(schema: &str) -> sqlx::PgConnection {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(&pg_url())
        .expect("URL")
        .options([("search_path", schema)]);
    sqlx::PgConnection::connect_with(&options)
        .await
        .expect("connect")
}

/// A schema-safe unique suffix.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}
