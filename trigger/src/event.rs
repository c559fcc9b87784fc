//! Business events as a brand posts them, and their validation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use template::Problem;

use crate::error::{key, parse_json, quoted, TriggerError};

/// Largest accepted event, serialized compactly, in bytes.
pub const MAX_EVENT_BYTES: usize = 8 * 1024;
/// Largest raw JSON document [`Event::from_json`] parses (whitespace included), in bytes.
pub const MAX_EVENT_INPUT_BYTES: usize = 4 * MAX_EVENT_BYTES;
/// Most top-level `data` fields of an event.
pub const MAX_DATA_FIELDS: usize = 64;
/// Most customer attributes of an event.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest event id and customer id, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// One business event, e.g. "order delivered", as JSON:
///
/// ```json
/// {
///   "id": "evt-81723",
///   "type": "order_delivered",
///   "customer": {"id": "c-42", "lang": "hi", "tz": "Asia/Kolkata", "consent": true,
///                "attributes": {"first_name": "Asha", "tier": "gold"}},
///   "occurred_at": "2025-03-01T10:00:00+05:30",
///   "data": {"order_id": "A-1001", "product": "Masala Chai", "total": 1299.5}
/// }
/// ```
///
/// Unknown fields are rejected (a misspelt `consent` must not silently mean "no consent");
/// free-form fields belong in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The brand's id for this event, the dedupe key: 1 to 128 characters, no control
    /// characters.
    pub id: String,
    /// Event type, `[a-z0-9_.-]{1,64}`, e.g. `order_delivered`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who the event is about.
    pub customer: Customer,
    /// When it happened, RFC 3339 (any offset; kept in UTC).
    pub occurred_at: DateTime<Utc>,
    /// Event fields, e.g. `order_id`, `product`, `replenish_at`; names `[A-Za-z0-9_-]{1,64}`,
    /// at most [`MAX_DATA_FIELDS`]. Values may be any JSON; nested objects are reached with
    /// dotted paths (`data.order.total`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, Value>,
}

/// The customer an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// The brand's customer id: 1 to 128 characters, no control characters.
    pub id: String,
    /// Preferred language, a BCP 47-like code such as `hi` or `en-IN` (`_` also accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// IANA time zone, e.g. `Asia/Kolkata`; absent means UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Whether the customer agreed to marketing messages. Absent means no: no consent, no video.
    #[serde(default)]
    pub consent: bool,
    /// Whether the customer opted out of these messages; overrides `consent`.
    #[serde(default)]
    pub opted_out: bool,
    /// Customer attributes (e.g. `first_name`, `tier`): names `[A-Za-z0-9_-]{1,64}`, values
    /// strings, numbers, booleans or null; at most [`MAX_ATTRIBUTES`]. Their values never
    /// appear in error messages.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
}

impl Customer {
    /// The customer's time zone: `tz` when it names a known IANA zone, UTC otherwise.
    pub fn time_zone(&self) -> Tz {
        self.tz
            .as_deref()
            .and_then(|tz| tz.parse::<Tz>().ok())
            .unwrap_or(Tz::UTC)
    }
}

impl Event {
    /// Parses and validates an event posted as JSON. Documents over
    /// [`MAX_EVENT_INPUT_BYTES`] are refused unparsed; parse errors name the JSON path but
    /// never quote the offending value.
    pub fn from_json(input: &str) -> Result<Event, TriggerError> {
        let event: Event = parse_json("event", input, MAX_EVENT_INPUT_BYTES, true)?;
        event.validate()?;
        Ok(event)
    }

    /// Checks every rule and reports all broken ones in one [`TriggerError::InvalidEvent`].
    pub fn validate(&self) -> Result<(), TriggerError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TriggerError::InvalidEvent(problems))
        }
    }

    /// Every rule this event breaks, in document order; empty when it is valid.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        check_id(&mut p, "id", &self.id);
        if !is_event_type(&self.event_type) {
            p.push(Problem::new(
                "type",
                format!(
                    "{} is not an event type; use 1 to 64 of a-z, 0-9, `_`, `.` and `-`, e.g. \"order_delivered\"",
                    quoted(&self.event_type)
                ),
            ));
        }
        let c = &self.customer;
        check_id(&mut p, "customer.id", &c.id);
        if let Some(lang) = &c.lang {
            if !is_language_code(lang, true) {
                p.push(Problem::new(
                    "customer.lang",
                    format!(
                        "{} is not a language code; use e.g. \"hi\" or \"en-IN\"",
                        quoted(lang)
                    ),
                ));
            }
        }
        if let Some(tz) = &c.tz {
            if tz.parse::<Tz>().is_err() {
                p.push(Problem::new(
                    "customer.tz",
                    format!(
                        "unknown time zone {}; use an IANA name such as \"Asia/Kolkata\"",
                        quoted(tz)
                    ),
                ));
            }
        }
        check_fields(
            &mut p,
            "customer.attributes",
            &c.attributes,
            MAX_ATTRIBUTES,
            true,
        );
        check_fields(&mut p, "data", &self.data, MAX_DATA_FIELDS, false);
        match serde_json::to_vec(self) {
            Ok(bytes) if bytes.len() > MAX_EVENT_BYTES => p.push(Problem::new(
                "",
                format!(
                    "the event is {} bytes serialized, more than the {MAX_EVENT_BYTES} allowed",
                    bytes.len()
                ),
            )),
            Ok(_) => {}
            Err(err) => p.push(Problem::new("", format!("cannot be serialized: {err}"))),
        }
        p
    }
}

fn check_id(p: &mut Vec<Problem>, path: &str, id: &str) {
    let chars = id.chars().count();
    if chars == 0 {
        p.push(Problem::new(path, "required: 1 to 128 characters"));
    } else if chars > MAX_ID_CHARS {
        p.push(Problem::new(
            path,
            format!("{chars} characters, more than the {MAX_ID_CHARS} allowed"),
        ));
    }
    if id.chars().any(char::is_control) {
        p.push(Problem::new(path, "must not contain control characters"));
    }
}

/// Checks a map of named fields: count, names and, with `scalars`, that values are scalars.
/// Never quotes a value.
fn check_fields(
    p: &mut Vec<Problem>,
    path: &str,
    fields: &BTreeMap<String, Value>,
    max: usize,
    scalars: bool,
) {
    if fields.len() > max {
        p.push(Problem::new(
            path,
            format!("{} fields, more than the {max} allowed", fields.len()),
        ));
    }
    for (name, value) in fields {
        let at = format!("{path}{}", key(name));
        if !is_field_name(name) {
            p.push(Problem::new(
                &at,
                "is not a valid name; use 1 to 64 of A-Z, a-z, 0-9, `_` and `-`",
            ));
        }
        if scalars && (value.is_array() || value.is_object()) {
            let kind = if value.is_array() {
                "a list"
            } else {
                "an object"
            };
            p.push(Problem::new(
                &at,
                format!("must be a string, number, boolean or null, not {kind}"),
            ));
        }
    }
}

/// `[a-z0-9_.-]{1,64}`.
pub(crate) fn is_event_type(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.' || b == b'-'
        })
}

/// `[A-Za-z0-9_-]{1,64}`: names of data fields and customer attributes.
pub(crate) fn is_field_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A language code: 2 or 3 letters, then subtags of 1 to 8 letters or digits, at most 35
/// characters. Campaigns write it lower-case primary and `-` separators (`en`, `pt-BR`);
/// with `lenient` (customers), any case and `_` separators are accepted too.
pub(crate) fn is_language_code(s: &str, lenient: bool) -> bool {
    if s.is_empty() || s.len() > 35 {
        return false;
    }
    let mut parts = s.split(|c| c == '-' || (lenient && c == '_'));
    let primary_ok = parts.next().is_some_and(|primary| {
        (2..=3).contains(&primary.len())
            && primary
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (lenient && b.is_ascii_uppercase()))
    });
    primary_ok
        && parts.all(|sub| {
            (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        let check = |s: &str, expect: bool| assert_eq!(is_event_type(s), expect, "{s}");
        check("order_delivered", true);
        check("shop.order-v2", true);
        check("", false);
        check("Order", false);
        check(&"a".repeat(65), false);

        let lang = |s: &str, lenient: bool, expect: bool| {
            assert_eq!(is_language_code(s, lenient), expect, "{s} {lenient}")
        };
        lang("en", false, true);
        lang("pt-BR", false, true);
        lang("EN_in", false, false);
        lang("EN_in", true, true);
        lang("e", true, false);
        lang("en-", true, false);
        lang("english", true, false);
    }

    #[test]
    fn time_zone_defaults_to_utc() {
        let mut c = Customer {
            id: "c".into(),
            lang: None,
            tz: None,
            consent: true,
            opted_out: false,
            attributes: BTreeMap::new(),
        };
        assert_eq!(c.time_zone(), Tz::UTC);
        c.tz = Some("Asia/Kolkata".into());
        assert_eq!(c.time_zone(), Tz::Asia__Kolkata);
        c.tz = Some("Mars/Base".into());
        assert_eq!(c.time_zone(), Tz::UTC);
    }
}
