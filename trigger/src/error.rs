//! The error type of this crate and the small helpers that keep its messages consistent.
//!
//! Every message names the offending field by its JSON path and says what would be right.
//! Messages about events never quote customer attribute values (only their names), nor any
//! other event value that could identify a customer.

use serde::de::DeserializeOwned;
use template::{Problem, Problems};

/// Why an event or a campaign could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The JSON document is larger than allowed; it was not parsed.
    #[error("{what} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// `event` or `campaign`.
        what: &'static str,
        /// Size of the document in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The document is not JSON, or does not have the expected shape (unknown field, wrong
    /// type, missing field).
    #[error(
        "{what} JSON line {line} column {column}: {}{message}",
        path_prefix(path)
    )]
    Json {
        /// `event` or `campaign`.
        what: &'static str,
        /// JSON path where parsing stopped, e.g. `customer.consent`; empty for syntax errors.
        path: String,
        /// 1-based line where parsing stopped.
        line: usize,
        /// 1-based column where parsing stopped.
        column: usize,
        /// What the parser expected. For events, the offending value is never quoted.
        message: String,
    },
    /// The event parsed but breaks rules; every problem found is listed.
    #[error("{}", Problems::new("event", .0))]
    InvalidEvent(Vec<Problem>),
    /// The campaign parsed but breaks rules; every problem found is listed.
    #[error("{}", Problems::new("campaign", .0))]
    InvalidCampaign(Vec<Problem>),
}

impl TriggerError {
    /// The individual problems: the list of an `Invalid*` error, or this error as a single
    /// problem (with the JSON path where there is one).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            TriggerError::InvalidEvent(problems) | TriggerError::InvalidCampaign(problems) => {
                problems.clone()
            }
            TriggerError::Json {
                what,
                path,
                line,
                column,
                message,
            } => vec![Problem::new(
                path.clone(),
                format!("{message} ({what} JSON line {line} column {column})"),
            )],
            TriggerError::TooLarge { .. } => vec![Problem::new("", self.to_string())],
        }
    }
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Parses `input` as JSON into `T`, checking its size first. With `scrub`, the parser's
/// message never quotes the offending value.
pub(crate) fn parse_json<T: DeserializeOwned>(
    what: &'static str,
    input: &str,
    limit: usize,
    scrub: bool,
) -> Result<T, TriggerError> {
    if input.len() > limit {
        return Err(TriggerError::TooLarge {
            what,
            size: input.len(),
            limit,
        });
    }
    let mut de = serde_json::Deserializer::from_str(input);
    let json_error = |path: String, err: &serde_json::Error| {
        let full = err.to_string();
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full);
        TriggerError::Json {
            what,
            path: if err.is_data() { path } else { String::new() },
            line: err.line(),
            column: err.column(),
            message: if scrub {
                scrub_value(message)
            } else {
                message.to_owned()
            },
        }
    };
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        json_error(path, err.inner())
    })?;
    de.end().map_err(|err| json_error(String::new(), &err))?;
    Ok(value)
}

/// Removes the offending value from serde's `invalid type: string "gold", expected a boolean`
/// and `invalid value: …` messages, keeping its kind: `invalid type: string, expected a boolean`.
/// Other messages (unknown or missing fields, syntax errors) quote no values and stay as they are.
pub(crate) fn scrub_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let kind = rest
                .split([' ', ','])
                .next()
                .filter(|k| k.bytes().all(|b| b.is_ascii_alphabetic()))
                .unwrap_or("value");
            let kind = match kind {
                "floating" => "floating point",
                "unit" => "unit value",
                other => other,
            };
            return match rest.rfind(", expected ") {
                Some(at) => format!("{}{kind}{}", prefix, &rest[at..]),
                None => format!("{}{kind}", prefix),
            };
        }
    }
    // chrono's and our own messages for strings that do not parse carry no value; anything
    // else unexpected is cut to its first clause so that a quoted value cannot slip through.
    match message.find('"') {
        Some(at) => message[..at].trim_end().to_owned(),
        None => message.to_owned(),
    }
}

/// `.name` for a simple key, `["odd key"]` otherwise: how a map key extends a JSON path.
pub(crate) fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!(".{k}")
    } else {
        let shown: String = k.chars().take(64).collect();
        format!("[{}]", serde_json::Value::String(shown))
    }
}

/// A value quoted for an error message, cut to 64 characters.
pub(crate) fn quoted(value: &str) -> String {
    let mut shown: String = value.chars().take(64).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_keeps_kind_and_expectation_but_not_the_value() {
        let check = |input: &str, expect: &str| assert_eq!(scrub_value(input), expect, "{input}");
        check(
            "invalid type: string \"gold, expected x\", expected a boolean",
            "invalid type: string, expected a boolean",
        );
        check(
            "invalid type: integer `123`, expected a string",
            "invalid type: integer, expected a string",
        );
        check(
            "invalid type: floating point `1.5`, expected u32",
            "invalid type: floating point, expected u32",
        );
        check(
            "unknown field `foo`, expected one of `a`",
            "unknown field `foo`, expected one of `a`",
        );
        check("premature end of input", "premature end of input");
        check("odd \"secret\" message", "odd");
    }

    #[test]
    fn keys_and_quotes() {
        assert_eq!(key("first_name"), ".first_name");
        assert_eq!(key("a b"), "[\"a b\"]");
        assert_eq!(quoted("Mars/Base"), "\"Mars/Base\"");
        assert_eq!(quoted(&"x".repeat(70)), format!("\"{}…\"", "x".repeat(64)));
    }
}
