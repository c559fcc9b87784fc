//! Column values of the stores' rows: decoding with a corrupt value reported as
//! [`Error::Database`] (never a panic), JSON columns, integer ranges, and stored messages cut to
//! a bounded length.
//!
//! Both backends store integers as BIGINT (`i64`), so every unsigned domain value goes through
//! a checked conversion: a value out of range in the database is a corrupt row, and a value out
//! of range on the way in is a bug, both reported rather than wrapped.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Unix epoch milliseconds: how every time is stored (BIGINT).
pub type Millis = i64;

/// Messages stored with rows (failure messages, delivery errors) are cut to this many
/// characters, so one runaway error cannot bloat a row.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// A corrupt row or an encoding bug.
pub fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Database(what.to_string())
}

/// Column `column` of `row`, decoded; a value that does not decode is a corrupt row.
pub fn get<'r, T, R>(row: &'r R, column: &str) -> Result<T>
where
    R: sqlx::Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    row.try_get(column)
        .map_err(|e| corrupt(format!("column {column}: {e}")))
}

/// `v` as JSON text, for a JSON TEXT column.
pub fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| corrupt(format!("encoding JSON: {e}")))
}

/// The JSON text `s` of column `column`, decoded.
pub fn from_json<T: DeserializeOwned>(s: &str, column: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(format!("column {column}: bad JSON: {e}")))
}

/// A BIGINT of column `column` that must fit a `u32`.
pub fn to_u32(v: i64, column: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(format!("column {column}: {v} is out of range")))
}

/// A BIGINT of column `column` that must fit a `u64`.
pub fn to_u64(v: i64, column: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("column {column}: {v} is out of range")))
}

/// A `u64` (`what` names it) on its way into a BIGINT.
pub fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| corrupt(format!("{what}: {v} does not fit a BIGINT")))
}

/// The first [`MAX_MESSAGE_CHARS`] characters of `message`.
pub fn truncate_message(message: &str) -> String {
    crate::truncate_chars(message, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_on_char_boundaries() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        assert_eq!(truncate_message(&long).chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(truncate_message("short"), "short");
    }

    #[test]
    fn out_of_range_is_corrupt() {
        assert_eq!(to_u32(7, "c"), Ok(7));
        assert!(matches!(to_u32(-1, "c"), Err(Error::Database(_))));
        assert!(matches!(to_u64(-1, "c"), Err(Error::Database(_))));
        assert!(matches!(to_i64(u64::MAX, "c"), Err(Error::Database(_))));
        assert!(matches!(
            from_json::<Vec<String>>("{", "c"),
            Err(Error::Database(_))
        ));
    }
}
