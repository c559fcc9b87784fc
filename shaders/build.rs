//! Validates every WGSL shader with naga, failing the build on any error.
//!
//! Each entry point is `wgsl/common.wgsl`, then `wgsl/composite_lib.wgsl`, then its own file,
//! exactly as `src/lib.rs` assembles it at compile time.

use std::fs;
use std::path::Path;

const SHADERS: &[&str] = &["rgba.wgsl", "yuv420.wgsl"];

fn main() {
    let dir = Path::new("wgsl");
    println!("cargo:rerun-if-changed=wgsl");
    let common = read(&dir.join("common.wgsl")) + &read(&dir.join("composite_lib.wgsl"));
    let mut failures = Vec::new();
    for name in SHADERS {
        let source = format!("{common}{}", read(&dir.join(name)));
        if let Err(message) = validate(&source) {
            failures.push(format!("wgsl/{name}:\n{message}"));
        }
    }
    if !failures.is_empty() {
        panic!("shader validation failed:\n{}", failures.join("\n"));
    }
}

fn read(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

fn validate(source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    );
    validator
        .validate(&module)
        .map_err(|e| e.emit_to_string(source))?;
    Ok(())
}
