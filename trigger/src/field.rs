//! Field paths (`data.total`, `customer.attributes.tier`, `customer.lang`) and how they read an
//! event. How a campaign's conditions compare what they read is in `condition`.

use std::borrow::Cow;

use serde_json::Value;

use crate::event::{is_field_name, Event};

/// Deepest `data` path, in segments after `data`.
const MAX_DATA_DEPTH: usize = 8;

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldRef<'a> {
    CustomerId,
    CustomerLang,
    CustomerTz,
    Attribute(&'a str),
    /// Keys (or list indexes) below `data`, at least one.
    Data(Vec<&'a str>),
}

/// What a field path may be, for error messages.
pub(crate) const FIELD_HELP: &str =
    "use data.<name>[.<name>…], customer.attributes.<name>, customer.id, customer.lang or customer.tz";

/// Parses a field path; the error says what is wrong.
pub(crate) fn parse_field(path: &str) -> Result<FieldRef<'_>, String> {
    match path {
        "customer.id" => return Ok(FieldRef::CustomerId),
        "customer.lang" => return Ok(FieldRef::CustomerLang),
        "customer.tz" => return Ok(FieldRef::CustomerTz),
        _ => {}
    }
    if let Some(name) = path.strip_prefix("customer.attributes.") {
        return if is_field_name(name) {
            Ok(FieldRef::Attribute(name))
        } else {
            Err(format!(
                "attribute names are 1 to 64 of A-Z, a-z, 0-9, `_` and `-`; {FIELD_HELP}"
            ))
        };
    }
    if let Some(rest) = path.strip_prefix("data.") {
        let keys: Vec<&str> = rest.split('.').collect();
        if keys.len() > MAX_DATA_DEPTH {
            return Err(format!(
                "{} levels below data, more than the {MAX_DATA_DEPTH} allowed",
                keys.len()
            ));
        }
        return if keys.iter().all(|k| is_field_name(k)) {
            Ok(FieldRef::Data(keys))
        } else {
            Err(format!(
                "each name after data is 1 to 64 of A-Z, a-z, 0-9, `_` and `-`; {FIELD_HELP}"
            ))
        };
    }
    Err(format!("unknown field; {FIELD_HELP}"))
}

/// The value at a field path of an event: `None` when the path is invalid, the field is
/// absent, or its value is null. `data` paths walk nested objects by key and lists by index
/// (`data.items.0.sku`).
pub fn field_value<'e>(event: &'e Event, path: &str) -> Option<Cow<'e, Value>> {
    let string = |s: &Option<String>| s.clone().map(|s| Cow::Owned(Value::String(s)));
    let found = match parse_field(path).ok()? {
        FieldRef::CustomerId => Some(Cow::Owned(Value::String(event.customer.id.clone()))),
        FieldRef::CustomerLang => string(&event.customer.lang),
        FieldRef::CustomerTz => string(&event.customer.tz),
        FieldRef::Attribute(name) => event.customer.attributes.get(name).map(Cow::Borrowed),
        FieldRef::Data(keys) => {
            let (first, rest) = keys.split_first()?;
            let mut value = event.data.get(*first)?;
            for k in rest {
                value = match value {
                    Value::Object(map) => map.get(*k)?,
                    Value::Array(items) => items.get(k.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
            Some(Cow::Borrowed(value))
        }
    };
    found.filter(|v| !v.is_null())
}

/// A field's value as token text: strings as they are, numbers in their JSON form, booleans
/// as `true`/`false`. `None` for lists, objects, and empty or blank strings.
pub(crate) fn token_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_paths() {
        let check = |path: &str, expect: Option<FieldRef<'_>>| {
            assert_eq!(parse_field(path).ok(), expect, "{path}")
        };
        check("customer.lang", Some(FieldRef::CustomerLang));
        check("customer.id", Some(FieldRef::CustomerId));
        check(
            "customer.attributes.first_name",
            Some(FieldRef::Attribute("first_name")),
        );
        check("data.total", Some(FieldRef::Data(vec!["total"])));
        check(
            "data.order.items.0",
            Some(FieldRef::Data(vec!["order", "items", "0"])),
        );
        check("data.", None);
        check("data.a..b", None);
        check("customer.attributes.a.b", None);
        check("customer.consent", None);
        check("total", None);
        check("data.a.b.c.d.e.f.g.h.i", None);
    }

    #[test]
    fn token_texts() {
        let check =
            |v: Value, expect: Option<&str>| assert_eq!(token_text(&v).as_deref(), expect, "{v}");
        check(json!("Asha"), Some("Asha"));
        check(json!(" "), None);
        check(json!(1299.5), Some("1299.5"));
        check(json!(42), Some("42"));
        check(json!(false), Some("false"));
        check(json!(null), None);
        check(json!([1]), None);
    }
}
