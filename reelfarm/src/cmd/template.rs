//! `reelfarm template validate [--deep] | schema | push [--force] | list`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use render_core::check::{deep_check, CheckOptions, DeepReport};
use serde_json::json;

use crate::cli::ClientArgs;

/// Runs the deep checks on a loaded bundle with progress lines on stderr, and prints every
/// problem found (errors, then warnings) on stdout, one per line.
fn run_deep(bundle: &template::Bundle) -> DeepReport {
    let opts = CheckOptions {
        progress: Some(Arc::new(|line: &str| eprintln!("deep check: {line}"))),
        ..CheckOptions::default()
    };
    let report = deep_check(bundle, &opts);
    for problem in &report.errors {
        println!("error: {problem}");
    }
    for problem in &report.warnings {
        println!("warning: {problem}");
    }
    report
}

/// `template validate DIR [--deep]`: loads and checks a template folder, and says what it
/// holds; with `deep`, also runs the deep checks and fails when one finds an error.
pub fn validate(dir: &Path, deep: bool) -> Result<()> {
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
    if deep {
        let report = run_deep(&bundle);
        if !report.passed() {
            bail!(
                "{}: the deep checks found {} (and {} warnings): some recipients' renders would fail",
                dir.display(),
                count(report.errors.len(), "error"),
                report.warnings.len()
            );
        }
        println!(
            "{}: deep checks passed ({} warnings)",
            dir.display(),
            report.warnings.len()
        );
    }
    Ok(())
}

/// `1 error`, `3 errors`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `template schema`: the JSON Schema of `template.json`.
pub fn schema() -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&template::json_schema())?
    );
    Ok(())
}

/// `template push DIR [--force]`: runs the deep checks and, when they find no error (or with
/// `force`), uploads the template folder to a farm.
pub fn push(dir: PathBuf, aliases: Vec<String>, force: bool, client: ClientArgs) -> Result<()> {
    let bundle = template::Bundle::load(&dir)?;
    let report = run_deep(&bundle);
    if !report.passed() {
        let found = count(report.errors.len(), "error");
        if !force {
            bail!(
                "{}: not pushed: the deep checks found {found}, so some recipients' renders \
                 would fail; fix them, or push anyway with --force",
                dir.display()
            );
        }
        eprintln!("pushing despite {found} (--force)");
    }
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

/// `template list [--json]`: the tenant's templates on a farm, the newest version of each.
pub fn list(json: bool, client: ClientArgs) -> Result<()> {
    farm::runtime()?.block_on(async move {
        let templates = super::connect(&client).await?.list_templates().await?;
        if json {
            let all: Vec<_> = templates
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "version": t.version,
                        "aliases": t.aliases,
                        "languages": t.languages,
                        "default_language": t.default_language,
                        "created": chrono::DateTime::from_timestamp_millis(t.created_unix_ms)
                            .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                        "digest": t.digest,
                        "size_bytes": t.size_bytes,
                        "width": t.width,
                        "height": t.height,
                        "fps": t.fps,
                        "duration_s": t.duration_s,
                        "tokens": t.tokens.iter().map(|k| json!({
                            "name": k.name,
                            "required": k.required,
                            "max_chars": k.max_chars,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            return super::remote::print_json(&serde_json::Value::Array(all));
        }
        if templates.is_empty() {
            return super::remote::emit(
                "no templates (upload one with `reelfarm template push DIR`)\n",
            );
        }
        let or_dash = |list: &[String]| {
            if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(",")
            }
        };
        let mut rows = vec![["NAME", "VERSION", "ALIASES", "LANGUAGES", "CREATED"]
            .map(str::to_owned)
            .to_vec()];
        rows.extend(templates.iter().map(|t| {
            vec![
                t.name.clone(),
                t.version.to_string(),
                or_dash(&t.aliases),
                or_dash(&t.languages),
                super::remote::time_text(t.created_unix_ms),
            ]
        }));
        super::remote::emit(&super::remote::table(&rows))
    })
}
