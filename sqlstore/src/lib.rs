//! SQLite and PostgreSQL plumbing shared by reelfarm's stores (the coordinator's job store and
//! the trigger store): connections, a cancellation-safe writer, error mapping, column decoding
//! ([`row`]) and versioned schema migrations ([`migrate`]). It knows nothing of the stores'
//! domains: each store writes its own SQL and converts [`Error`] into its own error type.
//!
//! # Writes finish once started
//!
//! A store call is a future, and its caller may drop it at any await point: a gRPC deadline
//! expires, a client's connection resets, a `select!` takes another branch. A write dropped
//! halfway through opening, running or committing a transaction can leave its connection
//! inside a transaction that nobody will commit; every later statement on that connection then
//! runs inside it, is acknowledged, and is discarded when the connection closes. (sqlx's own
//! transaction guard cannot cover the window between `BEGIN` and the guard's creation.)
//!
//! So every write runs to its end (commit or rollback) once started, whoever is waiting
//! ([`Sqlite::write`], [`Postgres::write`]): the caller polls the operation itself, and if the
//! caller is dropped first, the rest of the operation moves to a task of its own and finishes
//! there. Before each operation the
//! writer checks that its connection is outside any transaction; one that is not is rolled back
//! (or replaced) and counted in [`Health::repairs`], with an error in the log: that is a bug, and
//! it is repaired rather than carried on.
//!
//! Reads start no transaction, so a dropped read leaves nothing behind; they run on the caller.

mod backend;
pub mod migrate;
pub mod postgres;
pub mod row;
pub mod sqlite;
pub mod testing;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

pub use postgres::Postgres;
pub use sqlite::Sqlite;
/// The sqlx the backend macros name, so that a store need not match its version.
#[doc(hidden)]
pub use sqlx;

/// Runs `$op`, an expression of the writer connection `$c` (a future), through `$db.write`
/// (`$db` a [`Sqlite`] or a [`Postgres`]): to its end once started, even if the caller stops
/// waiting (see the crate docs). The operation is moved into the writer, so it must own what it
/// uses: clone borrowed arguments into locals first.
#[macro_export]
macro_rules! write_op {
    ($db:expr, |$c:ident| $op:expr) => {
        $db.write(move |$c| ::std::boxed::Box::pin(async move { $op.await }))
            .await
    };
}

/// What went wrong in the database layer; domain stores convert it into their own errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The database is busy or unreachable; the outcome is unknown and the call may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else from the database (a bug, a bad URL or a corrupt row).
    #[error("database error: {0}")]
    Database(String),
}

/// Result of this crate's calls.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps a sqlx error: transport trouble and the backend's `busy` codes are
/// [`Error::Unavailable`], everything else [`Error::Database`].
pub fn map_sqlx(e: sqlx::Error, busy: impl Fn(&dyn sqlx::error::DatabaseError) -> bool) -> Error {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::Unavailable(e.to_string()),
        sqlx::Error::Database(d) if busy(d.as_ref()) => Error::Unavailable(e.to_string()),
        _ => Error::Database(e.to_string()),
    }
}

/// The kind of constraint a database error violated, if any.
fn violation(e: &sqlx::Error) -> Option<sqlx::error::ErrorKind> {
    match e {
        sqlx::Error::Database(d) => Some(d.kind()),
        _ => None,
    }
}

/// Whether `e` is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(violation(e), Some(sqlx::error::ErrorKind::UniqueViolation))
}

/// Whether `e` is a foreign-key violation.
pub fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(
        violation(e),
        Some(sqlx::error::ErrorKind::ForeignKeyViolation)
    )
}

/// The first `max_chars` characters of `message` (cut on a character boundary).
pub fn truncate_chars(message: &str, max_chars: usize) -> String {
    match message.char_indices().nth(max_chars) {
        Some((cut, _)) => message[..cut].to_owned(),
        None => message.to_owned(),
    }
}

/// What a database's writer has had to repair; exported as metrics by the services.
#[derive(Debug, Default)]
pub struct Health {
    repairs: AtomicU64,
}

impl Health {
    /// How many times the writer found its connection inside a transaction it did not open
    /// and rolled it back (or replaced the connection). Zero unless something is wrong.
    pub fn repairs(&self) -> u64 {
        self.repairs.load(Ordering::Relaxed)
    }

    fn repaired(&self) {
        self.repairs.fetch_add(1, Ordering::Relaxed);
    }
}

/// A write operation that runs to its end once polled: the caller polls it in place (no task
/// hand-off on the common path), and if the caller is dropped before the end, the rest of the
/// operation moves to a task of its own and finishes there (its result unread).
struct Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    op: Option<Pin<Box<F>>>,
}

impl<F> Future for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let op = self.op.as_mut().expect("polled after it finished");
        let done = op.as_mut().poll(cx);
        if done.is_ready() {
            self.op = None;
        }
        done
    }
}

impl<F> Drop for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    fn drop(&mut self) {
        let Some(op) = self.op.take() else { return };
        if std::thread::panicking() {
            // The operation itself panicked: nothing sensible can resume it. Its connection
            // guard is dropped with it, and the next operation checks the connection.
            return;
        }
        // No runtime (it is shutting down): the connection goes with the operation, and the
        // database rolls back what was not committed.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(op);
        }
    }
}

/// Runs `op` to completion once first polled, whoever waits for it (see [`Finish`]).
fn finish<F>(op: F) -> Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    Finish {
        op: Some(Box::pin(op)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_on_char_boundaries() {
        let long = "é".repeat(20);
        assert_eq!(truncate_chars(&long, 10).chars().count(), 10);
        assert_eq!(truncate_chars("short", 10), "short");
    }
}
