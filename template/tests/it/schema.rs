//! The committed JSON Schema matches the one generated from the manifest types.

use std::path::Path;

use template::{json_schema, json_schema_pretty};

#[test]
fn committed_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.schema.json");
    let generated = json_schema_pretty();
    if std::env::var_os("REELFARM_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write template.schema.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with the manifest types; regenerate it with\n    \
         REELFARM_BLESS=1 cargo test --release -p template --test it schema\nand commit the result",
        path.display()
    );
}

#[test]
fn schema_describes_the_manifest() {
    let schema = json_schema();
    assert_eq!(schema["title"], "Manifest");
    let required = schema["required"].as_array().expect("required list");
    for field in [
        "schema_version",
        "name",
        "width",
        "height",
        "fps",
        "duration",
        "layers",
    ] {
        assert!(required.iter().any(|r| r == field), "{field} not required");
    }
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["$defs"]["Layer"]["oneOf"]
        .as_array()
        .is_some_and(|v| v.len() == 5));
}

#[test]
fn schema_is_strict_where_json_schema_can_be() {
    let schema = json_schema();
    let props = &schema["properties"];
    assert_eq!(props["$schema"]["type"], "string");
    assert!(!schema["required"]
        .as_array()
        .expect("required list")
        .iter()
        .any(|r| r == "$schema"));
    assert_eq!(props["width"]["multipleOf"], 8);
    assert_eq!(props["height"]["multipleOf"], 2);
    assert_eq!(props["languages"]["uniqueItems"], true);
    let defs = &schema["$defs"];
    assert!(defs["Color"]["pattern"].is_string());
    // Every kind of layer is closed to unknown fields but knows the common ones.
    for kind in defs["Layer"]["oneOf"].as_array().expect("layer kinds") {
        assert_eq!(kind["additionalProperties"], false, "{kind:#}");
        for common in ["id", "start", "end", "transform", "opacity"] {
            assert!(
                kind["properties"].get(common).is_some(),
                "{common} in {kind:#}"
            );
        }
    }
}
