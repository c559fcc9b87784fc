//! The JSON Schema of `template.json`, for editors and for clients that check a manifest before
//! uploading it. Generated from [`Manifest`]; a copy is kept in `template/template.schema.json`.

use crate::manifest::Manifest;

/// The JSON Schema (draft 2020-12) of `template.json`.
///
/// The schema describes the shape and documents the ranges; rules that span fields (declared
/// tokens, unique ids, media present) are checked by [`Manifest::validate`] only.
pub fn json_schema() -> serde_json::Value {
    serde_json::Value::from(schemars::schema_for!(Manifest))
}

/// [`json_schema`] as pretty-printed JSON with a trailing newline: the content of
/// `template/template.schema.json`.
pub fn json_schema_pretty() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
