//! The studio's view of a template folder: the manifest when it loads, the sample recipients,
//! and every problem found, each pointing at a layer and field where it has one.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};
use template::{Bundle, Manifest, Problem, Recipient};

/// One problem as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemView {
    /// Which check found it: `template`, `recipients` or `deep`.
    pub source: String,
    /// The JSON path as the check reports it (e.g. ``layers[3] (`greeting`).font_size``).
    pub path: String,
    /// The layer's id, when the path is inside a layer.
    pub layer: Option<String>,
    /// The field inside the layer (or the manifest), when there is one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// `error` (a render fails or comes out broken) or `warning`.
    pub severity: &'static str,
}

impl ProblemView {
    /// A problem of `source` from a [`Problem`], with the layer and field read from its path.
    pub fn new(source: &str, problem: &Problem) -> ProblemView {
        let (layer, field) = split_path(&problem.path);
        ProblemView {
            source: source.to_owned(),
            path: problem.path.clone(),
            layer,
            field,
            message: problem.message.clone(),
            severity: "error",
        }
    }

    /// This problem as a warning.
    pub fn warning(mut self) -> ProblemView {
        self.severity = "warning";
        self
    }

    pub fn json(&self) -> Value {
        json!({
            "source": self.source,
            "path": self.path,
            "layer": self.layer,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        })
    }
}

/// Splits ``layers[3] (`greeting`).transform.position`` into the layer id (`greeting`) and the
/// field (`transform.position`); a path outside the layers is all field.
pub fn split_path(path: &str) -> (Option<String>, Option<String>) {
    if path.is_empty() {
        return (None, None);
    }
    if let Some(open) = path.find("(`") {
        if let Some(close) = path[open + 2..].find("`)") {
            let layer = path[open + 2..open + 2 + close].to_owned();
            let rest = path[open + 2 + close + 2..].trim_start_matches('.');
            let field = (!rest.is_empty()).then(|| rest.to_owned());
            return (Some(layer), field);
        }
    }
    (None, Some(path.to_owned()))
}

/// The folder as last loaded.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The manifest, when `template.json` loads and validates.
    pub manifest: Option<Manifest>,
    /// The sample recipients that could be read.
    pub samples: Vec<Recipient>,
    /// Every problem found.
    pub problems: Vec<ProblemView>,
}

impl Snapshot {
    /// Loads and checks `dir`: the bundle (manifest and media), `recipients.json`, and each
    /// sample's values against the token schema in its language.
    pub fn load(dir: &Path) -> Snapshot {
        let mut snap = Snapshot::default();
        match Bundle::load(dir) {
            Ok(bundle) => snap.manifest = Some(bundle.manifest),
            Err(e) => snap
                .problems
                .extend(e.problems().iter().map(|p| ProblemView::new("template", p))),
        }
        match template::recipients(dir) {
            Ok(samples) => snap.samples = samples,
            Err(e) => snap.problems.push(ProblemView::new(
                "recipients",
                &Problem::new(template::RECIPIENTS_FILE, strip_dir(&e.to_string(), dir)),
            )),
        }
        if let Some(manifest) = &snap.manifest {
            for r in &snap.samples {
                if let Err(e) = template::resolve_tokens(manifest, &r.lang, &r.tokens) {
                    snap.problems.push(ProblemView::new(
                        "recipients",
                        &Problem::new(
                            format!("{} `{}`", template::RECIPIENTS_FILE, r.id),
                            e.to_string(),
                        ),
                    ));
                }
            }
        }
        snap
    }
}

/// `message` with the template folder's path left out of file names, as the author knows them.
fn strip_dir(message: &str, dir: &Path) -> String {
    message.replace(&format!("{}/", dir.display()), "")
}

/// What identifies the folder's contents: each file's path, size and modification time.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_layer_and_field() {
        assert_eq!(
            split_path("layers[3] (`greeting`).transform.position"),
            (Some("greeting".into()), Some("transform.position".into()))
        );
        assert_eq!(
            split_path("layers[3] (`greeting`)"),
            (Some("greeting".into()), None)
        );
        assert_eq!(split_path("duration"), (None, Some("duration".into())));
        assert_eq!(split_path(""), (None, None));
    }

    #[test]
    fn a_broken_folder_lists_its_problems() {
        let dir = std::env::temp_dir().join(format!("reelfarm-studio-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("template.json"), "{ not json").expect("write");
        let snap = Snapshot::load(&dir);
        assert!(snap.manifest.is_none());
        assert!(snap.problems.iter().any(|p| p.source == "template"));
        assert!(snap
            .problems
            .iter()
            .any(|p| p.source == "recipients" && p.message.contains("cannot read")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
