//! Sample recipients of a template: `recipients.json` beside `template.json`, an array of
//! `{id, lang, tokens}` used for previews, the demo and the benchmarks.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// File name of a template's sample recipients.
pub const RECIPIENTS_FILE: &str = "recipients.json";

/// One sample recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// A short name, used in output file names.
    pub id: String,
    /// Language code.
    pub lang: String,
    /// Token values.
    pub tokens: BTreeMap<String, String>,
}

/// A sample file that cannot be used, with the file and entry it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SampleError(String);

/// The recipients listed in `dir/recipients.json`.
pub fn recipients(dir: &Path) -> Result<Vec<Recipient>, SampleError> {
    let path = dir.join(RECIPIENTS_FILE);
    let at = |what: String| SampleError(format!("{}: {what}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| at(format!("cannot read: {e}")))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| at(format!("not valid JSON: {e}")))?;
    let Some(items) = value.as_array() else {
        return Err(at("expected an array of recipients".to_owned()));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| {
                item.get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| at(format!("recipient {i} has no `{name}`")))
            };
            Ok(Recipient {
                id: field("id")?,
                lang: field("lang")?,
                tokens: tokens_from_json(item.get("tokens").unwrap_or(&Value::Null))
                    .map_err(|e| at(format!("recipient {i}: {e}")))?,
            })
        })
        .collect()
}

/// Token values from a JSON object of name to string or number (null: left out).
pub fn tokens_from_json(value: &Value) -> Result<BTreeMap<String, String>, SampleError> {
    let Some(map) = value.as_object() else {
        return Err(SampleError(
            "expected a JSON object of token name to value, like {\"first_name\": \"Priya\"}"
                .to_owned(),
        ));
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            other => {
                return Err(SampleError(format!(
                    "token `{k}`: expected a string or number, found {}",
                    json_kind(other)
                )))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_accept_strings_and_numbers() {
        let v = serde_json::json!({"name": "Asha", "n": 3, "gone": null});
        let t = tokens_from_json(&v).expect("valid");
        assert_eq!(t.get("name").map(String::as_str), Some("Asha"));
        assert_eq!(t.get("n").map(String::as_str), Some("3"));
        assert!(!t.contains_key("gone"));
        let err = tokens_from_json(&serde_json::json!({"x": [1]})).expect_err("array");
        assert_eq!(
            err.to_string(),
            "token `x`: expected a string or number, found an array"
        );
    }
}
