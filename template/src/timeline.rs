//! Timeline resolution: a validated manifest plus one recipient's token values become a
//! [`Timeline`], from which the placement and opacity of every layer at any time follow without
//! touching media. Pure functions of their inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::error::{Problem, TemplateError};
use crate::manifest::{
    Align, Animated, Color, Easing, Keyframe, Layer, LayerContent, Manifest, Motion, MotionPreset,
    MouthBox, Size, Transform, VerticalAlign, MOUTH_SHAPES,
};
use crate::tokens::{parse_placeholders, Segment};
use crate::validate::{is_still_path, layer_label};

/// A 2D affine transform, row-major 2×3:
/// `x' = m[0]·x + m[1]·y + m[2]`, `y' = m[3]·x + m[4]·y + m[5]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [f64; 6]);

impl Affine {
    /// The transform that maps every point to itself.
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// The identity transform.
    pub fn identity() -> Affine {
        Self::IDENTITY
    }

    /// Moves points by `(dx, dy)`.
    pub fn translate(dx: f64, dy: f64) -> Affine {
        Affine([1.0, 0.0, dx, 0.0, 1.0, dy])
    }

    /// Scales by `sx` horizontally and `sy` vertically about the origin.
    pub fn scale(sx: f64, sy: f64) -> Affine {
        Affine([sx, 0.0, 0.0, 0.0, sy, 0.0])
    }

    /// Rotates about the origin by `degrees`, clockwise as seen on a y-down canvas.
    pub fn rotate_degrees(degrees: f64) -> Affine {
        let (sin, cos) = degrees.to_radians().sin_cos();
        Affine([cos, -sin, 0.0, sin, cos, 0.0])
    }

    /// The composition `self · other`: applies `other` first, then `self`.
    pub fn mul(&self, other: &Affine) -> Affine {
        let a = &self.0;
        let b = &other.0;
        Affine([
            a[0] * b[0] + a[1] * b[3],
            a[0] * b[1] + a[1] * b[4],
            a[0] * b[2] + a[1] * b[5] + a[2],
            a[3] * b[0] + a[4] * b[3],
            a[3] * b[1] + a[4] * b[4],
            a[3] * b[2] + a[4] * b[5] + a[5],
        ])
    }

    /// The inverse transform, or `None` when the transform is singular (collapses the plane onto
    /// a line or a point) or not finite.
    pub fn invert(&self) -> Option<Affine> {
        let m = &self.0;
        let det = m[0] * m[4] - m[1] * m[3];
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let inv = 1.0 / det;
        let out = Affine([
            m[4] * inv,
            -m[1] * inv,
            (m[1] * m[5] - m[4] * m[2]) * inv,
            -m[3] * inv,
            m[0] * inv,
            (m[3] * m[2] - m[0] * m[5]) * inv,
        ]);
        out.0.iter().all(|v| v.is_finite()).then_some(out)
    }

    /// Maps the point `[x, y]`.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let m = &self.0;
        [
            m[0] * p[0] + m[1] * p[1] + m[2],
            m[3] * p[0] + m[4] * p[1] + m[5],
        ]
    }
}

impl Easing {
    /// Eased progress for linear progress `u` in `0..=1` (clamped): linear `u`; ease-in `u³`;
    /// ease-out `1-(1-u)³`; ease-in-out cubic (`4u³` then mirrored); hold `0` until `u` reaches 1.
    pub fn apply(self, u: f64) -> f64 {
        let u = if u.is_nan() { 0.0 } else { u.clamp(0.0, 1.0) };
        match self {
            Easing::Linear => u,
            Easing::EaseIn => u * u * u,
            Easing::EaseOut => 1.0 - (1.0 - u).powi(3),
            Easing::EaseInOut => {
                if u < 0.5 {
                    4.0 * u * u * u
                } else {
                    1.0 - (-2.0 * u + 2.0).powi(3) / 2.0
                }
            }
            Easing::Hold => {
                if u >= 1.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// A value that can be interpolated between keyframes.
pub trait Lerp: Copy {
    /// The value a fraction `u` of the way from `a` to `b`.
    fn lerp(a: Self, b: Self, u: f64) -> Self;
}

impl Lerp for f64 {
    fn lerp(a: f64, b: f64, u: f64) -> f64 {
        a + (b - a) * u
    }
}

impl Lerp for [f64; 2] {
    fn lerp(a: [f64; 2], b: [f64; 2], u: f64) -> [f64; 2] {
        [f64::lerp(a[0], b[0], u), f64::lerp(a[1], b[1], u)]
    }
}

impl<T: Lerp> Animated<T> {
    /// The value at time `t` (seconds from the start of the video): the constant, or the
    /// keyframes interpolated with the easing of the earlier keyframe of the segment, holding the
    /// first value before the first keyframe and the last after the last. `None` for an empty
    /// keyframe list.
    pub fn value_at(&self, t: f64) -> Option<T> {
        let keys = match self {
            Animated::Constant(v) => return Some(*v),
            Animated::Keyframes(keys) => keys,
        };
        let after = keys.partition_point(|k| k.t <= t);
        let (Some(a), Some(b)) = (keys.get(after.wrapping_sub(1)), keys.get(after)) else {
            let held = if after == 0 {
                keys.first()
            } else {
                keys.last()
            };
            return held.map(|k| k.value);
        };
        let span = b.t - a.t;
        if !(span > 0.0 && span.is_finite()) {
            return Some(a.value);
        }
        let u = a.easing.apply((t - a.t) / span);
        Some(T::lerp(a.value, b.value, u))
    }
}

/// A template resolved for one recipient and language: everything a renderer needs besides media.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Length in seconds.
    pub duration: f64,
    /// Number of frames: those whose time `frame / fps` is in `[0, duration)`.
    pub frame_count: u64,
    /// Canvas colour, straight-alpha RGBA.
    pub background: [u8; 4],
    /// The language the timeline was resolved for.
    pub lang: String,
    /// Visual layers, bottom first.
    pub layers: Vec<ResolvedLayer>,
    /// The words of the voice slot's `script` for the language (else its `"*"` script), tokens
    /// substituted; `None` without a voice slot or a script for the language.
    pub voice_script: Option<String>,
}

/// One layer of a [`Timeline`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedLayer {
    /// Index of the layer in the manifest's `layers`.
    pub index: usize,
    /// The layer's id.
    pub id: String,
    /// Seconds at which it appears.
    pub start: f64,
    /// Seconds at which it disappears (exclusive).
    pub end: f64,
    /// What it draws, with tokens substituted and colours parsed.
    pub content: ResolvedContent,
    /// Placement and animation, as in the manifest.
    pub transform: Transform,
    /// Opacity, as in the manifest.
    pub opacity: Animated<f64>,
    /// The tokens whose values change the layer's pixels: those a text uses, or those the voice
    /// script uses for a presenter (whose mouth follows the spoken script). Empty when the
    /// layer is the same for every recipient. A recipient's own voice file is not seen here.
    pub tokens: BTreeSet<String>,
}

/// What a [`ResolvedLayer`] draws.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedContent {
    /// A video from the bundle.
    Video {
        /// Path inside the bundle.
        src: String,
        /// Seconds skipped at the start of the file.
        trim_start: f64,
        /// Seconds of the file used after `trim_start`; `None`: to its end.
        trim_duration: Option<f64>,
        /// Restart from `trim_start` when the used part ends.
        looped: bool,
        /// Drawn size before scaling; `None`: the canvas size.
        size: Option<Size>,
    },
    /// A still image from the bundle.
    Image {
        /// Path inside the bundle.
        src: String,
        /// Drawn size before scaling; `None`: the image's own size.
        size: Option<Size>,
    },
    /// Text in the timeline's language with tokens substituted.
    Text {
        /// The text to shape (the layer's string for the language, else its `"*"` string).
        text: String,
        /// The box the text must fit in.
        size: Size,
        /// Largest font size in pixels.
        font_size: f64,
        /// Smallest font size in pixels (defaulted to 40% of `font_size`).
        min_font_size: f64,
        /// Bold face.
        bold: bool,
        /// Straight-alpha RGBA.
        color: [u8; 4],
        /// Horizontal alignment.
        align: Align,
        /// Line height as a multiple of the font size.
        line_height: f64,
        /// Drop shadow colour (straight-alpha RGBA) and offset `[x, y]` in pixels.
        shadow: Option<([u8; 4], [f64; 2])>,
        /// The brand font file for this layer and language, path inside the bundle; `None`: the
        /// bundled Noto family of the language's script.
        font: Option<String>,
        /// Vertical alignment of the lines in the box.
        vertical_align: VerticalAlign,
        /// Outline colour (straight-alpha RGBA) and width in pixels.
        outline: Option<([u8; 4], f64)>,
        /// The layer this one sits below, as an index into the timeline's layers (always an
        /// earlier text layer), and the smallest gap in pixels between their ink.
        below: Option<(usize, f64)>,
    },
    /// A solid rectangle.
    Solid {
        /// Straight-alpha RGBA.
        color: [u8; 4],
        /// Size in pixels.
        size: Size,
        /// Corner radius in pixels.
        corner_radius: f64,
    },
    /// A presenter: base footage with a lip-synced mouth.
    Presenter {
        /// Base footage, path inside the bundle.
        src: String,
        /// True when the base is a still image, false for a video.
        still: bool,
        /// Drawn size before scaling; `None`: the base file's own size.
        size: Option<Size>,
        /// Video base: seconds skipped at the start of the file.
        trim_start: f64,
        /// Video base: seconds of the file used after `trim_start`; `None`: to its end.
        trim_duration: Option<f64>,
        /// Video base: restart from `trim_start` when the used part ends.
        looped: bool,
        /// The mouth atlas image, path inside the bundle.
        mouths: String,
        /// Cells per row of the atlas.
        columns: u32,
        /// Rows of cells of the atlas.
        rows: u32,
        /// The atlas cell (in reading order) of each mouth shape, in the order A–H, X.
        cells: [u32; 9],
        /// The mouth box, in base-file pixels.
        mouth: MouthBox,
    },
}

/// Where a layer is and how opaque it is at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerState {
    /// Maps layer-local pixel coordinates (`0..w`, `0..h`) to canvas pixels.
    pub matrix: Affine,
    /// Opacity in `(0, 1]`.
    pub opacity: f64,
}

impl ResolvedContent {
    /// The size the content is drawn at before the layer's transform, in canvas pixels, as the
    /// template declares it: a video's `size` or the whole canvas (`canvas` is width, height),
    /// a text's or solid's box, an image's or presenter's `size`. `None` for an image or a
    /// presenter without `size`, which is drawn at its file's own pixel size.
    pub fn declared_size(&self, canvas: (u32, u32)) -> Option<(f64, f64)> {
        let pair = |s: &Size| (s.width, s.height);
        match self {
            ResolvedContent::Video { size, .. } => Some(
                size.as_ref()
                    .map(pair)
                    .unwrap_or((f64::from(canvas.0), f64::from(canvas.1))),
            ),
            ResolvedContent::Image { size, .. } | ResolvedContent::Presenter { size, .. } => {
                size.as_ref().map(pair)
            }
            ResolvedContent::Text { size, .. } | ResolvedContent::Solid { size, .. } => {
                Some(pair(size))
            }
        }
    }
}

impl ResolvedLayer {
    /// True when the layer's pixels depend on some token's value.
    pub fn recipient_dependent(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The layer's state at time `t`, for content drawn at `content_size` (width, height) pixels
    /// before scaling. `None` when `t` is outside `[start, end)` or the opacity is 0.
    ///
    /// The matrix is `Translate(position) · Rotate(rotation) · Scale(scale) ·
    /// Translate(-anchor · size)`: the anchor point lands on `position`, and scaling and rotation
    /// happen about it.
    pub fn state_at(&self, t: f64, content_size: (f64, f64)) -> Option<LayerState> {
        if !(t >= self.start && t < self.end) {
            return None;
        }
        let matrix = self.matrix_at(t, content_size);
        let opacity = self.opacity.value_at(t).unwrap_or(0.0);
        let opacity = if opacity.is_nan() {
            0.0
        } else {
            opacity.clamp(0.0, 1.0)
        };
        if opacity <= 0.0 {
            return None;
        }
        Some(LayerState { matrix, opacity })
    }

    /// The layer's matrix at time `t` for content drawn at `content_size`, as in
    /// [`ResolvedLayer::state_at`] but whether or not the layer is shown then.
    pub fn matrix_at(&self, t: f64, content_size: (f64, f64)) -> Affine {
        let tr = &self.transform;
        let [x, y] = tr.position.value_at(t).unwrap_or([0.0, 0.0]);
        let scale = tr.scale.value_at(t).unwrap_or(1.0);
        let rotation = tr.rotation.value_at(t).unwrap_or(0.0);
        let (w, h) = content_size;
        Affine::translate(x, y)
            .mul(&Affine::rotate_degrees(rotation))
            .mul(&Affine::scale(scale, scale))
            .mul(&Affine::translate(-tr.anchor[0] * w, -tr.anchor[1] * h))
    }
}

/// Frame index at or after time `t` for `fps`, tolerant of rounding (`t` a hair under a frame
/// time still counts as that frame).
fn frame_at_or_after(t: f64, fps: u32) -> u64 {
    const EPS: f64 = 1e-6;
    let f = (t * f64::from(fps) - EPS).ceil();
    if f.is_nan() || f <= 0.0 {
        0
    } else {
        // Saturating float-to-int conversion.
        f as u64
    }
}

impl Timeline {
    /// Time of frame `frame` in seconds: `frame / fps`.
    pub fn frame_time(&self, frame: u64) -> f64 {
        frame as f64 / f64::from(self.fps)
    }

    /// The frames whose time is in `[t0, t1)`, within `0..frame_count`. Adjacent ranges
    /// `[a, b)` and `[b, c)` split the frames of `[a, c)` between them with none lost or doubled.
    pub fn frame_range(&self, t0: f64, t1: f64) -> Range<u64> {
        let first = frame_at_or_after(t0, self.fps).min(self.frame_count);
        let end = frame_at_or_after(t1, self.fps).min(self.frame_count);
        first..end.max(first)
    }

    /// The time ranges `[start, end)` during which some recipient-dependent layer is shown,
    /// sorted and merged where they overlap or touch. Outside them every frame is the same for
    /// all recipients.
    pub fn dependent_ranges(&self) -> Vec<(f64, f64)> {
        let mut ranges: Vec<(f64, f64)> = self
            .layers
            .iter()
            .filter(|l| l.recipient_dependent() && l.start < l.end)
            .map(|l| (l.start, l.end))
            .collect();
        ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

/// Resolves `manifest` for language `lang` and the recipient's `tokens` (the output of
/// [`resolve_tokens`](crate::resolve_tokens); `lang` may be a tag such as `en-IN`, see
/// [`template_language`](crate::template_language)): validates the manifest, picks each text
/// layer's string for the language (else its `"*"` string), substitutes tokens, parses colours
/// and fills in defaults. The timeline's `lang` is the template's own code.
pub fn resolve(
    manifest: &Manifest,
    lang: &str,
    tokens: &BTreeMap<String, String>,
) -> Result<Timeline, TemplateError> {
    manifest.validate(None)?;
    let Some(lang) = crate::tokens::template_language(manifest, lang) else {
        return Err(TemplateError::UnknownLanguage {
            lang: lang.to_owned(),
            available: manifest.languages.clone(),
        });
    };
    let mut voice_script = None;
    let mut script_tokens = BTreeSet::new();
    if let Some(voice) = &manifest.audio.voice {
        if let Some(script) = voice.script.get(lang).or_else(|| voice.script.get("*")) {
            let (text, used) = fill(
                script,
                tokens,
                ("audio.voice", "script"),
                "audio.voice.script",
            )?;
            voice_script = Some(text);
            script_tokens = used;
        }
    }
    let mut layers: Vec<ResolvedLayer> = Vec::with_capacity(manifest.layers.len());
    for (index, layer) in manifest.layers.iter().enumerate() {
        let label = layer_label(index, &layer.id);
        let mut layer_tokens = BTreeSet::new();
        let content = match &layer.content {
            LayerContent::Video(v) => ResolvedContent::Video {
                src: v.src.clone(),
                trim_start: v.trim_start,
                trim_duration: v.trim_duration,
                looped: v.looped,
                size: v.size,
            },
            LayerContent::Image(i) => ResolvedContent::Image {
                src: i.src.clone(),
                size: i.size,
            },
            LayerContent::Presenter(p) => {
                layer_tokens = script_tokens.clone();
                let mut cells = [0u32; 9];
                for (shape, letter) in MOUTH_SHAPES.chars().enumerate() {
                    // Validated: every letter is in the order exactly once.
                    let cell = p
                        .mouths
                        .order
                        .chars()
                        .position(|c| c == letter)
                        .ok_or_else(|| {
                            invalid(
                                &label,
                                "mouths.order",
                                format!("mouth shape `{letter}` is missing"),
                            )
                        })?;
                    cells[shape] = cell as u32;
                }
                ResolvedContent::Presenter {
                    src: p.src.clone(),
                    still: is_still_path(&p.src),
                    size: p.size,
                    trim_start: p.trim_start,
                    trim_duration: p.trim_duration,
                    looped: p.looped,
                    mouths: p.mouths.src.clone(),
                    columns: p.mouths.columns,
                    rows: p.mouths.rows,
                    cells,
                    mouth: p.mouth.clone(),
                }
            }
            LayerContent::Solid(s) => ResolvedContent::Solid {
                color: rgba(&s.color, &label, "color")?,
                size: s.size,
                corner_radius: s.corner_radius,
            },
            LayerContent::Text(text) => {
                let chosen = text
                    .text
                    .get(lang)
                    .or_else(|| text.text.get("*"))
                    .ok_or_else(|| {
                        invalid(
                            &label,
                            "text",
                            format!("no string for language `{lang}` and no `\"*\"` string"),
                        )
                    })?;
                let (out, mut used) = fill(chosen, tokens, (&label, "text"), &label)?;
                let shadow = match &text.shadow {
                    Some(s) => Some((rgba(&s.color, &label, "shadow.color")?, s.offset)),
                    None => None,
                };
                let outline = match &text.outline {
                    Some(o) => Some((rgba(&o.color, &label, "outline.color")?, o.width)),
                    None => None,
                };
                // Validated: `below` names an earlier text layer, whose tokens then move this
                // layer too.
                let below = match &text.below {
                    Some(upper) => {
                        let i = manifest
                            .layers
                            .iter()
                            .position(|l| &l.id == upper)
                            .filter(|&i| i < index)
                            .ok_or_else(|| {
                                invalid(
                                    &label,
                                    "below",
                                    format!("`{upper}` is not an earlier layer"),
                                )
                            })?;
                        used.extend(layers[i].tokens.iter().cloned());
                        Some((i, text.gap))
                    }
                    None => None,
                };
                let content = ResolvedContent::Text {
                    text: out,
                    size: text.size,
                    font_size: text.font_size,
                    min_font_size: text.min_font_size.unwrap_or(text.font_size * 0.4),
                    bold: text.bold,
                    color: rgba(&text.color, &label, "color")?,
                    align: text.align,
                    line_height: text.line_height,
                    shadow,
                    font: font_for(manifest, text.font.as_deref(), lang),
                    vertical_align: text.vertical_align,
                    outline,
                    below,
                };
                layer_tokens = used;
                content
            }
        };
        let end = layer.end.unwrap_or(manifest.duration);
        let (transform, opacity) = expand_motions(layer, end, f64::from(manifest.height));
        layers.push(ResolvedLayer {
            index,
            id: layer.id.clone(),
            start: layer.start,
            end,
            content,
            transform,
            opacity,
            tokens: layer_tokens,
        });
    }
    Ok(Timeline {
        width: manifest.width,
        height: manifest.height,
        fps: manifest.fps,
        duration: manifest.duration,
        frame_count: frame_at_or_after(manifest.duration, manifest.fps),
        background: rgba(&manifest.background, "", "background")?,
        lang: lang.to_owned(),
        layers,
        voice_script,
    })
}

/// The brand font file a text layer uses in language `lang`: the font its `font` names, else
/// the first font whose languages hold `lang` or are empty; `None` for the bundled fonts.
fn font_for(manifest: &Manifest, id: Option<&str>, lang: &str) -> Option<String> {
    let font = match id {
        Some(id) => manifest.fonts.iter().find(|f| f.id == id),
        None => manifest
            .fonts
            .iter()
            .find(|f| f.languages.is_empty() || f.languages.iter().any(|l| l == lang)),
    };
    font.map(|f| f.src.clone())
}

/// How far `slide-up` moves a layer, as a fraction of the canvas height.
pub const SLIDE_FRACTION: f64 = 0.05;
/// The scale `pop` overshoots to, as a multiple of the layer's scale.
pub const POP_OVERSHOOT: f64 = 1.1;
/// The scale `pop` starts from and ends at, as a multiple of the layer's scale (not 0, so the
/// layer's matrix stays invertible).
pub const POP_FROM: f64 = 0.01;

/// Keyframes being appended in time order; a keyframe at or before the last one is dropped
/// (an exit that starts right where the entrance ends).
struct Track<T>(Vec<Keyframe<T>>);

impl<T> Track<T> {
    fn push(&mut self, t: f64, value: T, easing: Easing) {
        if self.0.last().is_none_or(|k| k.t < t) {
            self.0.push(Keyframe { t, value, easing });
        }
    }
}

/// The layer's transform and opacity with its `enter` and `exit` presets expanded into
/// keyframes, for a layer shown until `end` on a canvas `canvas_height` pixels high. A preset
/// animates a property only when the manifest gives it as a constant (validation reports the
/// other case); without presets both come back as they are.
///
/// - `fade`: opacity from 0 to the layer's opacity over the entrance (ease in-out), and back
///   to 0 over the exit;
/// - `slide-up`: the fade (ease-out in, ease-in out) plus the position rising by
///   [`SLIDE_FRACTION`] of the canvas height: from below into place, then from place upwards;
/// - `pop`: the fade plus the scale from [`POP_FROM`] through [`POP_OVERSHOOT`] (at 70% of the
///   entrance) to the layer's scale, and the reverse on exit.
pub fn expand_motions(layer: &Layer, end: f64, canvas_height: f64) -> (Transform, Animated<f64>) {
    let mut transform = layer.transform.clone();
    let mut opacity = layer.opacity.clone();
    let start = layer.start;
    let enter = layer
        .enter
        .as_ref()
        .map(|m: &Motion| (m.preset, m.duration));
    let exit = layer.exit.as_ref().map(|m: &Motion| (m.preset, m.duration));
    if enter.is_none() && exit.is_none() {
        return (transform, opacity);
    }
    let uses = |p: MotionPreset| (enter.map(|m| m.0) == Some(p), exit.map(|m| m.0) == Some(p));

    if let Animated::Constant(o) = layer.opacity {
        // Every preset fades.
        let mut track = Track(Vec::new());
        if let Some((preset, d)) = enter {
            let easing = match preset {
                MotionPreset::Fade => Easing::EaseInOut,
                MotionPreset::SlideUp | MotionPreset::Pop => Easing::EaseOut,
            };
            track.push(start, 0.0, easing);
            track.push(start + d, o, Easing::Linear);
        }
        if let Some((preset, d)) = exit {
            let easing = match preset {
                MotionPreset::Fade => Easing::EaseInOut,
                MotionPreset::SlideUp | MotionPreset::Pop => Easing::EaseIn,
            };
            track.push(end - d, o, easing);
            track.push(end, 0.0, Easing::Linear);
        }
        opacity = Animated::Keyframes(track.0);
    }

    let (slide_in, slide_out) = uses(MotionPreset::SlideUp);
    if let (true, Animated::Constant([x, y])) = (slide_in || slide_out, &layer.transform.position) {
        let rise = SLIDE_FRACTION * canvas_height;
        let mut track = Track(Vec::new());
        if let (true, Some((_, d))) = (slide_in, enter) {
            track.push(start, [*x, y + rise], Easing::EaseOut);
            track.push(start + d, [*x, *y], Easing::Linear);
        }
        if let (true, Some((_, d))) = (slide_out, exit) {
            track.push(end - d, [*x, *y], Easing::EaseIn);
            track.push(end, [*x, y - rise], Easing::Linear);
        }
        transform.position = Animated::Keyframes(track.0);
    }

    let (pop_in, pop_out) = uses(MotionPreset::Pop);
    if let (true, Animated::Constant(k)) = (pop_in || pop_out, &layer.transform.scale) {
        let mut track = Track(Vec::new());
        if let (true, Some((_, d))) = (pop_in, enter) {
            track.push(start, POP_FROM * k, Easing::EaseOut);
            track.push(start + 0.7 * d, POP_OVERSHOOT * k, Easing::EaseInOut);
            track.push(start + d, *k, Easing::Linear);
        }
        if let (true, Some((_, d))) = (pop_out, exit) {
            track.push(end - d, *k, Easing::EaseInOut);
            track.push(end - 0.7 * d, POP_OVERSHOOT * k, Easing::EaseIn);
            track.push(end, POP_FROM * k, Easing::Linear);
        }
        transform.scale = Animated::Keyframes(track.0);
    }
    (transform, opacity)
}

/// `text` with its `{{token}}` placeholders replaced by the values in `tokens`, and the names
/// of the tokens it used; `label` and `field` name the string in errors, `owner` what lacks a token.
fn fill(
    text: &str,
    tokens: &BTreeMap<String, String>,
    (label, field): (&str, &str),
    owner: &str,
) -> Result<(String, BTreeSet<String>), TemplateError> {
    let segments = parse_placeholders(text).map_err(|e| invalid(label, field, e.to_string()))?;
    let mut out = String::with_capacity(text.len());
    let mut used = BTreeSet::new();
    for segment in segments {
        match segment {
            Segment::Literal(s) => out.push_str(s),
            Segment::Token(name) => {
                used.insert(name.to_owned());
                let value = tokens
                    .get(name)
                    .ok_or_else(|| TemplateError::MissingToken {
                        layer: owner.to_owned(),
                        token: name.to_owned(),
                    })?;
                out.push_str(value);
            }
        }
    }
    Ok((out, used))
}

fn invalid(label: &str, field: &str, message: String) -> TemplateError {
    let path = if label.is_empty() {
        field.to_owned()
    } else {
        format!("{label}.{field}")
    };
    TemplateError::Invalid(vec![Problem::new(path, message)])
}

fn rgba(color: &Color, label: &str, field: &str) -> Result<[u8; 4], TemplateError> {
    color
        .rgba()
        .map_err(|e| invalid(label, field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Keyframe;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn check_easing(easing: Easing, u: f64, expect: f64) {
        let got = easing.apply(u);
        assert!(
            close(got, expect),
            "{easing:?}.apply({u}) = {got}, expected {expect}"
        );
    }

    #[test]
    fn easing_cases() {
        use Easing::*;
        for e in [Linear, EaseIn, EaseOut, EaseInOut] {
            check_easing(e, 0.0, 0.0);
            check_easing(e, 1.0, 1.0);
            check_easing(e, -1.0, 0.0);
            check_easing(e, 2.0, 1.0);
        }
        check_easing(Linear, 0.25, 0.25);
        check_easing(EaseIn, 0.5, 0.125);
        check_easing(EaseOut, 0.5, 0.875);
        check_easing(EaseInOut, 0.25, 0.0625);
        check_easing(EaseInOut, 0.5, 0.5);
        check_easing(EaseInOut, 0.75, 0.9375);
        check_easing(Hold, 0.0, 0.0);
        check_easing(Hold, 0.999, 0.0);
        check_easing(Hold, 1.0, 1.0);
        check_easing(Linear, f64::NAN, 0.0);
    }

    fn check_affine(m: Affine, p: [f64; 2], expect: [f64; 2]) {
        let got = m.apply(p);
        assert!(
            close(got[0], expect[0]) && close(got[1], expect[1]),
            "{m:?} maps {p:?} to {got:?}, expected {expect:?}"
        );
    }

    #[test]
    fn affine_cases() {
        check_affine(Affine::identity(), [3.0, 4.0], [3.0, 4.0]);
        check_affine(Affine::translate(10.0, -2.0), [3.0, 4.0], [13.0, 2.0]);
        check_affine(Affine::scale(2.0, 3.0), [3.0, 4.0], [6.0, 12.0]);
        // Clockwise on a y-down canvas: right turns into down.
        check_affine(Affine::rotate_degrees(90.0), [1.0, 0.0], [0.0, 1.0]);
        check_affine(Affine::rotate_degrees(90.0), [0.0, 1.0], [-1.0, 0.0]);
        check_affine(Affine::rotate_degrees(180.0), [2.0, 1.0], [-2.0, -1.0]);
        // mul applies the right operand first.
        let m = Affine::translate(10.0, 0.0).mul(&Affine::scale(2.0, 2.0));
        check_affine(m, [1.0, 1.0], [12.0, 2.0]);
        let m = Affine::scale(2.0, 2.0).mul(&Affine::translate(10.0, 0.0));
        check_affine(m, [1.0, 1.0], [22.0, 2.0]);
    }

    #[test]
    fn invert_round_trips_and_refuses_singular() {
        let m = Affine::translate(5.0, 7.0)
            .mul(&Affine::rotate_degrees(33.0))
            .mul(&Affine::scale(1.5, 0.5));
        let inv = m.invert().expect("invertible");
        for p in [[0.0, 0.0], [1.0, 2.0], [-40.0, 13.5]] {
            check_affine(inv.mul(&m), p, p);
            check_affine(m.mul(&inv), p, p);
        }
        assert_eq!(Affine::scale(0.0, 1.0).invert(), None);
        assert_eq!(Affine([1.0, 2.0, 0.0, 2.0, 4.0, 0.0]).invert(), None);
        assert_eq!(Affine([f64::NAN, 0.0, 0.0, 0.0, 1.0, 0.0]).invert(), None);
    }

    fn kf(t: f64, value: f64, easing: Easing) -> Keyframe<f64> {
        Keyframe { t, value, easing }
    }

    #[test]
    fn keyframes_clamp_and_interpolate() {
        let a = Animated::Keyframes(vec![
            kf(1.0, 0.0, Easing::Linear),
            kf(2.0, 10.0, Easing::Hold),
            kf(3.0, 20.0, Easing::Linear),
        ]);
        let check = |t: f64, expect: f64| {
            let got = a.value_at(t).expect("non-empty");
            assert!(close(got, expect), "at {t}: {got}, expected {expect}");
        };
        check(0.0, 0.0);
        check(1.0, 0.0);
        check(1.5, 5.0);
        check(2.0, 10.0);
        check(2.9, 10.0);
        check(3.0, 20.0);
        check(99.0, 20.0);
        check(f64::NEG_INFINITY, 0.0);
        assert_eq!(Animated::<f64>::Keyframes(vec![]).value_at(1.0), None);
        assert_eq!(Animated::Constant(4.0).value_at(1.0), Some(4.0));
    }

    #[test]
    fn unsorted_or_degenerate_keyframes_do_not_panic() {
        let a = Animated::Keyframes(vec![
            kf(2.0, 1.0, Easing::Linear),
            kf(2.0, 5.0, Easing::Linear),
            kf(1.0, 3.0, Easing::EaseIn),
            kf(f64::NAN, 9.0, Easing::Linear),
        ]);
        for t in [-1.0, 0.0, 1.0, 1.5, 2.0, 2.5, f64::NAN, f64::INFINITY] {
            assert!(a.value_at(t).is_some());
        }
    }

    #[test]
    fn declared_sizes() {
        let size = Size {
            width: 10.0,
            height: 20.0,
        };
        let video = |size| ResolvedContent::Video {
            src: "v.mp4".to_owned(),
            trim_start: 0.0,
            trim_duration: None,
            looped: false,
            size,
        };
        let canvas = (1920, 1080);
        assert_eq!(video(None).declared_size(canvas), Some((1920.0, 1080.0)));
        assert_eq!(video(Some(size)).declared_size(canvas), Some((10.0, 20.0)));
        let image = |size| ResolvedContent::Image {
            src: "i.png".to_owned(),
            size,
        };
        assert_eq!(image(None).declared_size(canvas), None);
        assert_eq!(image(Some(size)).declared_size(canvas), Some((10.0, 20.0)));
        let solid = ResolvedContent::Solid {
            color: [0; 4],
            size,
            corner_radius: 0.0,
        };
        assert_eq!(solid.declared_size(canvas), Some((10.0, 20.0)));
    }
}
