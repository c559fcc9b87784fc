//! Deep checks of a template bundle: what a manifest check cannot see because it depends on the
//! media files, the fonts, the speech engine or the recipient's values.
//!
//! - [`worst_cases`] generates, per language, the token values most likely to break a layout
//!   (the longest allowed value in the widest glyphs of the script, a one-character value, the
//!   fallback), each named by a value class that never contains a real recipient's value.
//! - [`deep_check`] decodes every media file (to the last frame a layer uses), fits every text
//!   layer in every language with every worst case through the renderer's own scene building,
//!   speaks every voice script with the worst cases through the renderer's speech path and
//!   compares its length with the slot, and flags unused tokens, empty texts and layers that
//!   never reach the canvas. Errors are what would fail (or break) some recipient's render;
//!   warnings are everything else.

mod fit;
mod media;
mod voice;
mod worst;

use std::sync::Arc;

use template::{Bundle, LayerContent, Problem};

use crate::text::TextEngine;

pub use worst::{worst_cases, worst_cases_with, WorstCase};

/// Receives one line per slow step (decoding a file, speaking a language's scripts).
pub type Progress = dyn Fn(&str) + Send + Sync;

/// What [`deep_check`] uses besides the bundle.
#[derive(Clone)]
pub struct CheckOptions {
    /// The speech engine voice scripts are spoken with: the renderer's
    /// ([`crate::Renderer::lipsync_engine`]) or [`lipsync::Engine::with_default_voice`].
    pub speech: lipsync::Engine,
    /// Called with a line for each slow step; `None` for silence.
    pub progress: Option<Arc<Progress>>,
}

impl std::fmt::Debug for CheckOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckOptions")
            .field("speech", &self.speech)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for CheckOptions {
    /// The built-in voice if its helper can be found, no progress lines.
    fn default() -> Self {
        Self {
            speech: lipsync::Engine::with_default_voice(),
            progress: None,
        }
    }
}

/// The findings of [`deep_check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeepReport {
    /// Problems that make a render fail or come out broken for some recipient (a damaged
    /// video, text that does not fit, a voice script too long for its slot).
    pub errors: Vec<Problem>,
    /// Problems worth a look that break no render (an unused token, an empty text, a layer
    /// that never reaches the canvas).
    pub warnings: Vec<Problem>,
}

impl DeepReport {
    /// True when there is no error (warnings allowed).
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let problem = Problem::new(path, message);
        if !self.errors.contains(&problem) {
            self.errors.push(problem);
        }
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let problem = Problem::new(path, message);
        if !self.warnings.contains(&problem) {
            self.warnings.push(problem);
        }
    }
}

/// ``layers[3] (`greeting`)``, as the manifest checks name layers.
fn label(index: usize, id: &str) -> String {
    format!("layers[{index}] (`{id}`)")
}

/// Runs every deep check on a loaded (so already validated) bundle with a text engine of its
/// own. See [`deep_check_with`].
pub fn deep_check(bundle: &Bundle, opts: &CheckOptions) -> DeepReport {
    deep_check_with(bundle, &mut TextEngine::new(), opts)
}

/// Runs every deep check on a loaded (so already validated) bundle, fitting text with `text`
/// (the renderer's engine, or a new one):
///
/// 1. every media file decodes (videos to the last frame a layer uses, with a layer's trim
///    inside the file; images and audio whole; default voices no longer than the slot);
/// 2. every text layer fits its box at or above its `min_font_size` in every language with
///    every [`worst_cases`] value set, laid out by [`crate::scene::Scene::build`] as a render
///    lays it out;
/// 3. every voice script spoken by the built-in voice (`audio.voice.tts`) in every language
///    with every worst case is no longer than `audio.voice.max_duration`;
/// 4. warnings for tokens no text or script uses, empty text strings and layers that are never
///    on the canvas.
///
/// Messages name the layer (or field), the language and the value class, never a value.
/// Safe to call from any thread; it blocks for seconds (decoding, speech).
pub fn deep_check_with(bundle: &Bundle, text: &mut TextEngine, opts: &CheckOptions) -> DeepReport {
    let silent = |_: &str| {};
    let progress: &Progress = match &opts.progress {
        Some(p) => p.as_ref(),
        None => &silent,
    };
    let mut report = DeepReport::default();
    static_checks(bundle, &mut report);
    let images = media::check_media(bundle, &mut report, progress);
    let cases: Vec<(String, Vec<WorstCase>)> = bundle
        .manifest
        .languages
        .iter()
        .map(|lang| (lang.clone(), worst_cases_with(text, &bundle.manifest, lang)))
        .collect();
    fit::check_text(bundle, text, &cases, &images, &mut report, progress);
    voice::check_voice(bundle, &opts.speech, &cases, &mut report, progress);
    report
}

/// Unused tokens and empty text strings.
fn static_checks(bundle: &Bundle, report: &mut DeepReport) {
    let m = &bundle.manifest;
    let mut used = std::collections::BTreeSet::new();
    let mut note = |s: &str| {
        if let Some(names) = template::placeholders(s) {
            used.extend(names.into_iter().map(str::to_owned));
        }
    };
    for (i, layer) in m.layers.iter().enumerate() {
        if let LayerContent::Text(t) = &layer.content {
            for (lang, s) in &t.text {
                note(s);
                if s.trim().is_empty() {
                    report.warning(
                        format!("{}.text[\"{lang}\"]", label(i, &layer.id)),
                        "is empty: the layer draws nothing in this language",
                    );
                }
            }
        }
    }
    if let Some(voice) = &m.audio.voice {
        for s in voice.script.values() {
            note(s);
        }
    }
    for name in m.tokens.keys() {
        if !used.contains(name) {
            report.warning(
                format!("tokens.{name}"),
                format!(
                    "is declared but no text layer or voice script uses `{{{{{name}}}}}`; a \
                     value given for it changes nothing"
                ),
            );
        }
    }
}
