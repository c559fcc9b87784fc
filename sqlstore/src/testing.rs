//! Helpers for the tests of stores built on this crate.

use std::future::Future;
use std::task::Poll;

/// Polls `fut` until it has been suspended `k` times, then drops it where it stands: `true`
/// when it finished first. Dropping at the `k`-th suspension for every `k` drops a call at each
/// of its await points in turn, as a caller that stops waiting would.
pub async fn drop_at_suspension<F: Future>(k: usize, fut: F) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut suspended = 0;
    std::future::poll_fn(|cx| {
        if suspended == k {
            return Poll::Ready(false);
        }
        match fut.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(true),
            Poll::Pending => {
                suspended += 1;
                Poll::Pending
            }
        }
    })
    .await
}

/// The number `sql` (a `SELECT count(*)` with one `$1` text parameter) gives on a new
/// connection of its own to `url` (`sqlite://…`, or `postgres://…` with `schema` first on the
/// search path): what another process sees, committed data only. Panics when the database
/// cannot be reached: it is for tests.
pub async fn count_committed(url: &str, schema: Option<&str>, sql: &str, param: &str) -> i64 {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url)
            .await
            .expect("a new SQLite connection");
        sqlx::query_scalar(sql)
            .bind(param)
            .fetch_one(&mut c)
            .await
            .expect("count")
    } else {
        use std::str::FromStr;
        let mut options =
            sqlx::postgres::PgConnectOptions::from_str(url).expect("a PostgreSQL URL");
        if let Some(schema) = schema {
            options = options.options([("search_path", schema)]);
        }
        let mut c = sqlx::PgConnection::connect_with(&options)
            .await
            .expect("a new PostgreSQL connection");
        sqlx::query_scalar(sql)
            .bind(param)
            .fetch_one(&mut c)
            .await
            .expect("count")
    }
}
