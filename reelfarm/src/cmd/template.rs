//! `reelfarm template validate | schema | push`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::ClientArgs;

/// `template validate DIR`: loads and checks a template folder, and says what it holds.
pub fn validate(dir: &Path) -> Result<()> {
    let bundle = template::Bundle::load(dir)?;
    let m = &bundle.manifest;
    println!(
        "{}: valid: `{}`, {}x{} @ {} fps, {} s, {} layers, tokens [{}], languages [{}]",
        dir.display(),
        m.name,
        m.width,
        m.height,
        m.fps,
        m.duration,
        m.layers.len(),
        m.tokens.keys().cloned().collect::<Vec<_>>().join(", "),
        m.languages.join(", ")
    );
    Ok(())
}

/// `template schema`: the JSON Schema of `template.json`.
pub fn schema() -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&template::json_schema())?
    );
    Ok(())
}

/// `template push DIR`: uploads a template folder to a farm.
pub fn push(dir: PathBuf, aliases: Vec<String>, client: ClientArgs) -> Result<()> {
    farm::runtime()?.block_on(async move {
        let mut farm = super::connect(&client).await?;
        let v = farm.push_template(&dir, &aliases).await?;
        println!(
            "{} {}@{} ({} bytes, sha256 {}){}",
            if v.created {
                "uploaded"
            } else {
                "already stored as"
            },
            v.name,
            v.version,
            v.size_bytes,
            &v.digest[..12.min(v.digest.len())],
            if v.aliases.is_empty() {
                String::new()
            } else {
                format!(", aliases: {}", v.aliases.join(", "))
            }
        );
        Ok(())
    })
}
