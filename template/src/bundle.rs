//! A template bundle on disk: a folder holding `template.json` and the media it names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_path_to_error::Segment as PathSegment;

use crate::error::TemplateError;
use crate::manifest::{
    ImageLayer, LayerContent, Manifest, PresenterLayer, SolidLayer, TextLayer, VideoLayer,
};
use crate::validate::{layer_label, problems};

/// File name of the manifest inside a bundle.
pub const MANIFEST_FILE: &str = "template.json";

/// A loaded and validated bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The bundle folder; media paths are relative to it.
    pub dir: PathBuf,
    /// The parsed, validated `template.json`.
    pub manifest: Manifest,
}

impl Bundle {
    /// Reads `dir/template.json`, parses it and validates it, media files included.
    pub fn load(dir: &Path) -> Result<Bundle, TemplateError> {
        let file = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&file).map_err(|source| TemplateError::Read {
            path: file.clone(),
            source,
        })?;
        let manifest = Manifest::from_json(&bytes)?;
        manifest.validate(Some(dir))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Full path of a media file named in the manifest (`src` relative to the bundle folder).
    pub fn media_path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Manifest {
    /// Parses `template.json` bytes without validating the rules beyond its shape. Errors give
    /// the line, column and JSON path where parsing stopped.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, TemplateError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let manifest: Manifest = match serde_path_to_error::deserialize(&mut de) {
            Ok(manifest) => manifest,
            Err(err) => {
                let path: Vec<PathSegment> = err.path().iter().cloned().collect();
                return Err(json_error(bytes, &path, err.inner()));
            }
        };
        de.end().map_err(|err| json_error(bytes, &[], &err))?;
        Ok(manifest)
    }

    /// Checks every rule of the format (ranges, ids, tokens, colours, keyframes, media paths)
    /// and reports all broken ones in one [`TemplateError::Invalid`]. With `dir`, media files
    /// must also exist inside that folder.
    pub fn validate(&self, dir: Option<&Path>) -> Result<(), TemplateError> {
        let problems = problems(self, dir);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TemplateError::Invalid(problems))
        }
    }

    /// Every media path the manifest names (video, image and presenter `src`, mouth atlases,
    /// brand fonts, music, default voices).
    pub fn media_files(&self) -> BTreeSet<&str> {
        let mut files = BTreeSet::new();
        for layer in &self.layers {
            match &layer.content {
                LayerContent::Video(v) => {
                    files.insert(v.src.as_str());
                }
                LayerContent::Image(i) => {
                    files.insert(i.src.as_str());
                }
                LayerContent::Presenter(p) => {
                    files.insert(p.src.as_str());
                    files.insert(p.mouths.src.as_str());
                }
                LayerContent::Text(_) | LayerContent::Solid(_) => {}
            }
        }
        files.extend(self.fonts.iter().map(|f| f.src.as_str()));
        if let Some(music) = &self.audio.music {
            files.insert(music.src.as_str());
        }
        if let Some(voice) = &self.audio.voice {
            files.extend(voice.default.values().map(String::as_str));
        }
        files
    }
}

/// Fields of [`crate::Layer`] itself; the rest of a layer object belongs to its content.
const LAYER_FIELDS: [&str; 7] = [
    "id",
    "start",
    "end",
    "transform",
    "opacity",
    "enter",
    "exit",
];

/// Builds a [`TemplateError::Json`], naming layers by id and, for errors inside a layer's
/// content (which serde reports at the layer), finding the field within it.
fn json_error(bytes: &[u8], path: &[PathSegment], err: &serde_json::Error) -> TemplateError {
    let line = err.line();
    let column = err.column();
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let mut message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    // A syntax error has no meaningful path.
    let mut path = if err.is_data() {
        path.to_vec()
    } else {
        Vec::new()
    };

    // Only a document that is valid JSON can be searched for layer ids and content fields.
    let doc: Option<serde_json::Value> = if err.is_data() {
        serde_json::from_slice(bytes).ok()
    } else {
        None
    };
    let layer = match (&doc, path.as_slice()) {
        (Some(doc), [PathSegment::Map { key }, PathSegment::Seq { index }, ..])
            if key == "layers" =>
        {
            doc.get("layers")
                .and_then(|l| l.get(*index))
                .map(|l| (*index, l))
        }
        _ => None,
    };
    if let Some((_, layer)) = layer {
        if path.len() == 2 {
            if let Some((inner, inner_message)) = content_error(layer) {
                path.extend(inner);
                message = inner_message;
                if message.starts_with("unknown field") {
                    message.push_str(", or a field of every layer: ");
                    message.push_str(&LAYER_FIELDS.map(|f| format!("`{f}`")).join(", "));
                }
            }
        }
    }
    if layer.is_some() && path.len() == 2 && message.starts_with("unknown variant") {
        path.push(PathSegment::Map {
            key: "type".to_owned(),
        });
    }
    TemplateError::Json {
        path: render_path(
            &path,
            layer.and_then(|(i, l)| Some((i, l.get("id")?.as_str()?))),
        ),
        line,
        column,
        message,
    }
}

/// Re-reads a layer's content on its own to find the path of the error inside it.
fn content_error(layer: &serde_json::Value) -> Option<(Vec<PathSegment>, String)> {
    let mut object = layer.as_object()?.clone();
    for field in LAYER_FIELDS {
        object.remove(field);
    }
    let kind = object.remove("type")?;
    let content = serde_json::Value::Object(object);
    fn inner<T: for<'de> Deserialize<'de>>(
        value: serde_json::Value,
    ) -> Option<(Vec<PathSegment>, String)> {
        let err = serde_path_to_error::deserialize::<_, T>(value).err()?;
        Some((
            err.path().iter().cloned().collect(),
            err.inner().to_string(),
        ))
    }
    match kind.as_str()? {
        "video" => inner::<VideoLayer>(content),
        "image" => inner::<ImageLayer>(content),
        "text" => inner::<TextLayer>(content),
        "solid" => inner::<SolidLayer>(content),
        "presenter" => inner::<PresenterLayer>(content),
        _ => None,
    }
}

/// `layers[3] (`greeting`).font_size`; `layer` gives the id of the layer at the path's start.
fn render_path(path: &[PathSegment], layer: Option<(usize, &str)>) -> String {
    let mut out = String::new();
    for (i, segment) in path.iter().enumerate() {
        match segment {
            PathSegment::Seq { index } => out.push_str(&format!("[{index}]")),
            PathSegment::Map { key } => {
                let plain = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                } else {
                    out.push_str(&format!("[{}]", serde_json::Value::String(key.clone())));
                }
            }
            PathSegment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            PathSegment::Unknown => out.push_str(if out.is_empty() { "?" } else { ".?" }),
        }
        if i == 1 {
            if let Some((index, id)) = layer {
                out = layer_label(index, id);
            }
        }
    }
    out
}
