//! Fitting every text layer with every worst case, through the renderer's own scene building,
//! and finding layers that never reach the canvas.

use std::collections::{BTreeMap, BTreeSet};

use template::{Bundle, ResolvedContent, Size, Timeline};

use super::{label, DeepReport, Progress, WorstCase};
use crate::scene::Scene;
use crate::text::{TextEngine, TextError};
use crate::RenderError;

/// The text-fitting warning a render gives when a text had to shrink below its
/// `min_font_size`; it counts as not fitting.
const SHRUNK: &str = "text shrunk to ";

/// A layer that draws nothing and reads no file: what non-text layers become while text is
/// fitted, so scene building only lays out text (indices stay, for layers stacked below others).
fn placeholder() -> ResolvedContent {
    ResolvedContent::Solid {
        color: [0, 0, 0, 0],
        size: Size {
            width: 1.0,
            height: 1.0,
        },
        corner_radius: 0.0,
    }
}

/// Fits every text layer of every language with every worst case; checks, in the default
/// language's first case, that every layer reaches the canvas at some time.
pub(super) fn check_text(
    bundle: &Bundle,
    engine: &mut TextEngine,
    cases: &[(String, Vec<WorstCase>)],
    images: &BTreeMap<String, (u32, u32)>,
    report: &mut DeepReport,
    progress: &Progress,
) {
    let m = &bundle.manifest;
    // (language, layer, what went wrong): one report per layer and language for the same
    // outcome, with the first value class that caused it.
    let mut seen: BTreeSet<(String, usize, Outcome)> = BTreeSet::new();
    let mut canvas_checked = false;
    for (lang, lang_cases) in cases {
        progress(&format!("fitting text in `{lang}`"));
        for case in lang_cases {
            let tokens = match template::resolve_tokens(m, lang, &case.tokens) {
                Ok(tokens) => tokens,
                Err(e) => {
                    report.error(
                        "tokens",
                        format!("in `{lang}` with the {}: {e}", case.class),
                    );
                    continue;
                }
            };
            let timeline = match template::resolve(m, lang, &tokens) {
                Ok(t) => t,
                Err(e) => {
                    for p in e.problems() {
                        report.error(
                            p.path,
                            format!("in `{lang}` with the {}: {}", case.class, p.message),
                        );
                    }
                    continue;
                }
            };
            if !canvas_checked && lang == &m.default_language {
                canvas_checked = true;
                off_canvas(&timeline, images, report);
            }
            for (index, outcome) in fit_timeline(bundle, engine, &timeline) {
                let layer = &timeline.layers[index];
                let key = (lang.clone(), layer.index, outcome.clone());
                if !seen.insert(key) {
                    continue;
                }
                let at = label(layer.index, &layer.id);
                match outcome {
                    Outcome::Overflow(detail) => report.error(
                        at,
                        format!(
                            "text overflows in `{lang}` with the {}: {detail}",
                            case.class
                        ),
                    ),
                    Outcome::Failed(detail) => report.error(
                        at,
                        format!("text fails in `{lang}` with the {}: {detail}", case.class),
                    ),
                    Outcome::Warning(detail) => {
                        report.warning(at, format!("in `{lang}` with the {}: {detail}", case.class))
                    }
                }
            }
        }
    }
}

/// What fitting one text layer found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Does not fit at or above its minimum size.
    Overflow(String),
    /// Laying it out failed otherwise.
    Failed(String),
    /// Fits, with a degradation (a missing glyph).
    Warning(String),
}

impl Outcome {
    fn text(&self) -> &str {
        match self {
            Outcome::Overflow(s) | Outcome::Failed(s) | Outcome::Warning(s) => s,
        }
    }
}

/// Builds the scene of `timeline`'s text layers as a render at the template's size does, and
/// returns what went wrong per timeline layer index. A layer that fails is taken out and the
/// scene built again, so every failing layer is found.
fn fit_timeline(
    bundle: &Bundle,
    engine: &mut TextEngine,
    timeline: &Timeline,
) -> Vec<(usize, Outcome)> {
    let mut tl = timeline.clone();
    for layer in &mut tl.layers {
        if !matches!(layer.content, ResolvedContent::Text { .. }) {
            layer.content = placeholder();
        }
    }
    let mut out = Vec::new();
    // At most one rebuild per text layer.
    for _ in 0..=tl.layers.len() {
        match Scene::build(bundle, &tl, engine, tl.width, tl.height) {
            Ok(scene) => {
                for warning in &scene.warnings {
                    if let Some((index, detail)) = layer_warning(&tl, warning) {
                        let outcome = if detail.starts_with(SHRUNK) {
                            Outcome::Overflow(detail.to_owned())
                        } else {
                            Outcome::Warning(detail.to_owned())
                        };
                        out.push((index, outcome));
                    }
                }
                return out;
            }
            Err(RenderError::Text { layer, error }) => {
                let Some(index) = tl.layers.iter().position(|l| l.id == layer) else {
                    out.push((0, Outcome::Failed(error.to_string())));
                    return out;
                };
                let outcome = match error {
                    TextError::DoesNotFit { .. } => Outcome::Overflow(error.to_string()),
                    other => Outcome::Failed(other.to_string()),
                };
                out.push((index, outcome));
                tl.layers[index].content = placeholder();
            }
            Err(other) => {
                // Not a text layer's fault (the template as a whole): report once, on the
                // first text layer.
                if let Some(index) = tl
                    .layers
                    .iter()
                    .position(|l| matches!(l.content, ResolvedContent::Text { .. }))
                {
                    out.push((index, Outcome::Failed(other.to_string())));
                }
                return out;
            }
        }
    }
    out.sort_by(|a, b| (a.0, a.1.text()).cmp(&(b.0, b.1.text())));
    out
}

/// Splits a scene warning `layer `id`: detail` into the layer's index and the detail.
fn layer_warning<'a>(tl: &Timeline, warning: &'a str) -> Option<(usize, &'a str)> {
    let rest = warning.strip_prefix("layer `")?;
    let (id, detail) = rest.split_once("`: ")?;
    let index = tl.layers.iter().position(|l| l.id == id)?;
    Some((index, detail))
}

/// Warns about layers whose box never overlaps the canvas while they are shown.
fn off_canvas(timeline: &Timeline, images: &BTreeMap<String, (u32, u32)>, report: &mut DeepReport) {
    let canvas = (timeline.width, timeline.height);
    let (cw, ch) = (f64::from(canvas.0), f64::from(canvas.1));
    let step = 1.0 / f64::from(timeline.fps.max(1));
    for layer in &timeline.layers {
        let size = layer.content.declared_size(canvas).or_else(|| {
            let src = match &layer.content {
                ResolvedContent::Image { src, .. } | ResolvedContent::Presenter { src, .. } => src,
                _ => return None,
            };
            images.get(src).map(|&(w, h)| (f64::from(w), f64::from(h)))
        });
        let Some((w, h)) = size else { continue };
        let mut shown = false;
        let mut on_canvas = false;
        let mut t = layer.start;
        while t < layer.end && !on_canvas {
            if let Some(state) = layer.state_at(t, (w, h)) {
                shown = true;
                let corners =
                    [[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]].map(|p| state.matrix.apply(p));
                let x0 = corners.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
                let x1 = corners
                    .iter()
                    .map(|p| p[0])
                    .fold(f64::NEG_INFINITY, f64::max);
                let y0 = corners.iter().map(|p| p[1]).fold(f64::INFINITY, f64::min);
                let y1 = corners
                    .iter()
                    .map(|p| p[1])
                    .fold(f64::NEG_INFINITY, f64::max);
                on_canvas = x1 > 0.0 && x0 < cw && y1 > 0.0 && y0 < ch;
            }
            t += step;
        }
        let at = label(layer.index, &layer.id);
        if !shown {
            report.warning(
                at,
                format!(
                    "is never visible: its opacity is 0 for all of {:.2}..{:.2} s",
                    layer.start, layer.end
                ),
            );
        } else if !on_canvas {
            report.warning(
                at,
                format!(
                    "is entirely off the {}x{} canvas whenever it is shown ({:.2}..{:.2} s)",
                    canvas.0, canvas.1, layer.start, layer.end
                ),
            );
        }
    }
}
