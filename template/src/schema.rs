//! The JSON Schema of `template.json`, for editors and for clients that check a manifest before
//! uploading it. Generated from [`Manifest`]; a copy is kept in `template/template.schema.json`.
//!
//! The schema is as strict as JSON Schema can say: unknown fields, ranges, multiples, string
//! patterns (colours, names, language codes, token names, media paths, `{{token}}` placeholders,
//! mouth orders), list lengths and the rules between fields of one object (a still presenter
//! base takes no trim; `tts` needs a `script`). The constraints sit on the manifest types as
//! `#[schemars(...)]` attributes that use the patterns and transforms below.

use schemars::Schema;
use serde_json::{json, Value};

use crate::manifest::Manifest;

/// A colour: `#RRGGBB` or `#RRGGBBAA`, hex digits in either case.
pub(crate) const COLOR_PATTERN: &str = "^#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$";

/// A template name: 1 to 64 characters of `a-z`, `0-9` and `-`.
pub(crate) const NAME_PATTERN: &str = "^[a-z0-9-]{1,64}$";

/// A language code: 1 to 35 ASCII letters, digits and `-`, not starting or ending with `-`.
pub(crate) const LANGUAGE_PATTERN: &str = "^[A-Za-z0-9]([A-Za-z0-9-]{0,33}[A-Za-z0-9])?$";

/// A key of a per-language map: a language code or `*`.
pub(crate) const LANGUAGE_KEY_PATTERN: &str = "^(\\*|[A-Za-z0-9]([A-Za-z0-9-]{0,33}[A-Za-z0-9])?)$";

/// A token name: `[a-z_][a-z0-9_]{0,31}`.
pub(crate) const TOKEN_NAME_PATTERN: &str = "^[a-z_][a-z0-9_]{0,31}$";

/// A media path: not empty, no control character, not absolute (`/`, `\` or a drive letter),
/// no `..` component.
pub(crate) const MEDIA_PATTERN: &str =
    "^(?![/\\\\])(?![A-Za-z]:)(?!(.*[/\\\\])?\\.\\.([/\\\\]|$))[^\\u0000-\\u001F\\u007F-\\u009F]+$";

/// Text whose `{{token}}` placeholders are well formed: every `{{` opens a placeholder that
/// holds a token name (spaces around it allowed) and is closed by `}}`.
pub(crate) const TEXT_PATTERN: &str =
    "^([^{]|\\{(?!\\{)|\\{\\{\\s*[a-z_][a-z0-9_]{0,31}\\s*\\}\\})*$";

/// A voice script: [`TEXT_PATTERN`] with at least one character that is not white space.
pub(crate) const SCRIPT_PATTERN: &str =
    "^(?=[\\s\\S]*\\S)([^{]|\\{(?!\\{)|\\{\\{\\s*[a-z_][a-z0-9_]{0,31}\\s*\\}\\})*$";

/// A mouth order: each of the nine letters `A`–`H` and `X` exactly once.
pub(crate) const MOUTH_ORDER_PATTERN: &str =
    "^(?=.*A)(?=.*B)(?=.*C)(?=.*D)(?=.*E)(?=.*F)(?=.*G)(?=.*H)(?=.*X)[A-HX]{9}$";

/// An eSpeak NG voice variant: 1 to 32 letters, digits, `-`, `_` and `+`.
pub(crate) const TTS_VARIANT_PATTERN: &str = "^[A-Za-z0-9_+-]{1,32}$";

/// A presenter base that is a still image: a file name with a character before its extension
/// `.png`, `.jpg`, `.jpeg` or `.webp` (any case), as [`crate::is_still_path`] decides.
pub(crate) const STILL_PATTERN: &str =
    "(^|/)[^/]+\\.([pP][nN][gG]|[jJ][pP][eE]?[gG]|[wW][eE][bB][pP])$";

/// A brand font file: a file name with a character before its extension `.ttf` or `.otf` (any
/// case).
pub(crate) const FONT_FILE_PATTERN: &str = "(^|/)[^/]+\\.([tT][tT][fF]|[oO][tT][fF])$";

/// The JSON Schema (draft 2020-12) of `template.json`.
///
/// Rules that compare fields of different objects or need the bundle's files (declared tokens,
/// languages, unique ids, times within the video, increasing keyframes, media present) are
/// checked by [`Manifest::validate`] only.
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

/// Constrains an `Animated<f64>` field (a `$ref` to the shared definition) to numbers that
/// `number` accepts, both as the constant and as each keyframe's value. `number` holds
/// keywords such as `minimum`; beside a `$ref` (draft 2020-12) they apply to the constant, and
/// under `items` to the keyframes.
fn animated_number(schema: &mut Schema, number: Value) {
    if let Value::Object(keywords) = &number {
        for (k, v) in keywords {
            schema.insert(k.clone(), v.clone());
        }
    }
    schema.insert("items".to_owned(), json!({"properties": {"value": number}}));
}

/// An `Animated<f64>` in `0..=1` (opacity).
pub(crate) fn animated_unit(schema: &mut Schema) {
    animated_number(schema, json!({"minimum": 0, "maximum": 1}));
}

/// An `Animated<f64>` greater than 0 (scale).
pub(crate) fn animated_positive(schema: &mut Schema) {
    animated_number(schema, json!({"exclusiveMinimum": 0}));
}

/// Closes each kind of layer to unknown fields.
///
/// `Layer` flattens its internally tagged content, so serde rejects a key that neither the
/// common fields nor the content type name, but schemars cannot put `additionalProperties:
/// false` on the flattened schema (the common fields would be unknown to each kind). Each kind
/// in `oneOf` gets the common field names (as `true`, their schemas stay at the top) and
/// `additionalProperties: false`.
pub(crate) fn close_layer_kinds(schema: &mut Schema) {
    let common: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let Some(Value::Array(kinds)) = schema.get_mut("oneOf") else {
        return;
    };
    for kind in kinds.iter_mut().filter_map(Value::as_object_mut) {
        if let Some(Value::Object(properties)) = kind.get_mut("properties") {
            for name in &common {
                properties.entry(name.clone()).or_insert(Value::Bool(true));
            }
        }
        kind.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
}

/// A presenter whose base is a still image takes none of the video-only fields: `trim_start`
/// is 0, `trim_duration` is absent or null, `loop` is false.
pub(crate) fn still_base_rule(schema: &mut Schema) {
    schema.insert(
        "if".to_owned(),
        json!({"properties": {"src": {"type": "string", "pattern": STILL_PATTERN}}, "required": ["src"]}),
    );
    schema.insert(
        "then".to_owned(),
        json!({"properties": {
            "trim_start": {"minimum": 0, "maximum": 0},
            "trim_duration": {"type": "null"},
            "loop": {"const": false}
        }}),
    );
}

/// A voice with `tts` needs a `script` with at least one language.
pub(crate) fn tts_needs_script(schema: &mut Schema) {
    schema.insert(
        "if".to_owned(),
        json!({"properties": {"tts": {"type": "object"}}, "required": ["tts"]}),
    );
    schema.insert(
        "then".to_owned(),
        json!({"properties": {"script": {"minProperties": 1}}, "required": ["script"]}),
    );
}

/// An entrance or exit preset animates some of the layer's properties, which must then be
/// constants in the manifest: `fade` the opacity, `slide-up` the opacity and
/// `transform.position`, `pop` the opacity and `transform.scale`.
pub(crate) fn motion_needs_constants(schema: &mut Schema) {
    // Keyframes are a list of objects (or an empty list); a constant is anything else.
    let constant = json!({"not": {"type": "array", "items": {"type": "object"}}});
    let mut rules = Vec::new();
    for field in ["enter", "exit"] {
        for (preset, moved) in [
            ("fade", None),
            ("slide-up", Some("position")),
            ("pop", Some("scale")),
        ] {
            let mut then = json!({"properties": {"opacity": constant}});
            if let Some(moved) = moved {
                then["properties"]["transform"] = json!({"properties": {moved: constant}});
            }
            rules.push(json!({
                "if": {
                    "properties": {field: {
                        "type": "object",
                        "properties": {"preset": {"const": preset}},
                        "required": ["preset"]
                    }},
                    "required": [field]
                },
                "then": then
            }));
        }
    }
    schema.insert("allOf".to_owned(), Value::Array(rules));
}
