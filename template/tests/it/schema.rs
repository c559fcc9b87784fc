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
