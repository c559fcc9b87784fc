//! Test bundles written to unique temporary folders, and a full example manifest.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use template::{Bundle, Manifest, TemplateError};

/// A folder under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "reelfarm-template-{}-{label}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create media dir");
        }
        std::fs::write(path, bytes).expect("write file");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Media files named by [`full`].
pub const MEDIA: [&str; 3] = ["media/bg.mp4", "logo.png", "music.mp3"];

/// A valid manifest using every layer kind, keyframes, tokens of every kind and audio.
pub fn full() -> Value {
    json!({
        "schema_version": 1,
        "name": "thank-you",
        "width": 1280,
        "height": 720,
        "fps": 30,
        "duration": 10,
        "languages": ["en", "hi"],
        "default_language": "en",
        "tokens": {
            "first_name": {"max_length": 40, "required": true, "fallback": {"hi": "दोस्त"}},
            "offer_code": {"type": "code", "max_length": 12, "fallback": {"*": "WELCOME"}},
            "amount": {"type": "number", "max_length": 10}
        },
        "layers": [
            {"id": "bg", "type": "video", "src": "media/bg.mp4", "loop": true},
            {"id": "logo", "type": "image", "src": "logo.png",
             "transform": {"position": [1240, 40], "anchor": [1, 0], "scale": 0.5}},
            {"id": "greeting", "type": "text", "start": 0.5, "end": 7.5,
             "text": {"en": "Hi {{first_name}}!", "hi": "नमस्ते {{ first_name }}!"},
             "size": {"width": 1000, "height": 200}, "font_size": 72,
             "shadow": {"color": "#00000080", "offset": [2, 3]},
             "transform": {"position": [
                 {"t": 0.5, "value": [640, 420], "easing": "ease_out"},
                 {"t": 1.5, "value": [640, 360]}
             ], "anchor": [0.5, 0.5]},
             "opacity": [{"t": 0.5, "value": 0}, {"t": 1, "value": 1}]},
            {"id": "product", "type": "text", "start": 7.5, "end": 8,
             "text": {"*": "Fresh this week"}, "size": {"width": 800, "height": 100},
             "font_size": 40, "min_font_size": 20, "color": "#ffcc00", "align": "start"},
            {"id": "offer", "type": "text", "start": 8, "text": {"*": "Code {{offer_code}}"},
             "size": {"width": 800, "height": 100}, "font_size": 48},
            {"id": "bar", "type": "solid", "color": "#ff880080",
             "size": {"width": 1280, "height": 100}, "corner_radius": 8}
        ],
        "audio": {
            "music": {"src": "music.mp3", "gain_db": -6},
            "voice": {"start": 0.6, "max_duration": 5}
        }
    })
}

/// The smallest valid manifest: one language, no tokens, no layers.
pub fn minimal() -> Value {
    json!({
        "schema_version": 1,
        "name": "minimal",
        "width": 64,
        "height": 64,
        "fps": 1,
        "duration": 1,
        "languages": ["en"],
        "default_language": "en",
        "layers": []
    })
}

/// Writes `template.json` (raw text) and the media of [`full`] into a fresh folder.
pub fn bundle_text(label: &str, text: &str) -> TempDir {
    let dir = TempDir::new(label);
    dir.write("template.json", text.as_bytes());
    for media in MEDIA {
        dir.write(media, b"not really media");
    }
    dir
}

/// Writes `manifest` and the media of [`full`] into a fresh folder.
pub fn bundle(label: &str, manifest: &Value) -> TempDir {
    let text = serde_json::to_string_pretty(manifest).expect("serialize");
    bundle_text(label, &text)
}

/// Loads `manifest` as a bundle and returns the error message; panics if it loads.
pub fn load_err(manifest: &Value) -> String {
    let dir = bundle("broken", manifest);
    match Bundle::load(dir.path()) {
        Ok(_) => panic!("expected an error for {manifest:#}"),
        Err(e) => e.to_string(),
    }
}

/// [`full`] with the value at JSON pointer `pointer` replaced (or inserted into an object).
pub fn with(pointer: &str, value: Value) -> Value {
    let mut doc = full();
    set(&mut doc, pointer, value);
    doc
}

pub fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a slash");
    let parent = doc.pointer_mut(parent).expect("parent exists");
    match parent {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => {
            let index: usize = key.parse().expect("array index");
            items[index] = value;
        }
        _ => panic!("cannot set {pointer}"),
    }
}

/// Parses `doc` as a manifest.
pub fn manifest(doc: &Value) -> Manifest {
    serde_json::from_value(doc.clone()).expect("valid manifest shape")
}

/// Asserts that `message` contains every one of `parts`.
pub fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "expected {part:?} in the message:\n{message}"
        );
    }
}

/// The problems of an [`TemplateError::Invalid`], as strings.
pub fn problems(err: &TemplateError) -> Vec<String> {
    match err {
        TemplateError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
        other => panic!("expected Invalid, got {other}"),
    }
}
