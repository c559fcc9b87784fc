//! A timeline turned into GPU-ready pieces: one static atlas holding every text, image and shape
//! of the job (rasterized once), video slots in a second atlas, and per-frame layer descriptors.
//! Atlases are images laid end to end ([`Texels`]); a layer's `rect` says where its texels are.
//!
//! A presenter layer is its base (an atlas image or a video slot, like an image or video layer)
//! plus, each frame, up to two mouth layers drawn right above it: the previous mouth shape's
//! atlas cell at the layer's opacity and the current shape's cell faded in over it, both
//! feathered by the compositor's elliptical mask. The shapes come from [`Scene::mouth_track`].

use std::collections::HashMap;
use std::path::PathBuf;

use lipsync::{Shape, Track};
use shaders::GpuLayer;
use template::{
    Affine, Bundle, MouthBox, Problem, ResolvedContent, ResolvedLayer, TemplateError, Timeline,
};

use crate::atlas::Texels;
use crate::media::{self, VideoReaderOptions};
use crate::text::{TextEngine, TextError, TextStyle};
use crate::RenderError;

/// Where one timeline layer's pixels live.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneLayer {
    /// `shaders::source::ATLAS` or `shaders::source::VIDEO`.
    pub source: u32,
    /// First texel, row stride, width and height in that atlas.
    pub rect: [u32; 4],
    /// Size the content is drawn at before the layer's transform, in canvas pixels.
    pub content_size: (f64, f64),
    /// For a presenter layer: its entry in [`Scene::mouths`].
    pub mouth: Option<usize>,
    /// How far a text layer stacked `below` another moves down on the canvas, in template
    /// pixels, so that its ink clears the upper layer's; 0 for every other layer.
    pub shift: f64,
}

/// A presenter layer's mouth: its atlas cells and its box on the base.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneMouth {
    /// Index of the layer in the timeline.
    pub layer: usize,
    /// Each mouth shape's cell in the static atlas (first texel, row stride, width, height), in
    /// the order of [`Shape::ALL`] (A–H, X).
    pub cells: [[u32; 4]; 9],
    /// Content pixels per base-file pixel, horizontally and vertically (the layer's drawn size
    /// over the base file's size).
    pub base_scale: (f64, f64),
    /// The mouth box, in base-file pixels, as the template gives it.
    pub mouth: MouthBox,
}

/// A video layer's decoder settings and its place in the video atlas.
#[derive(Debug, Clone)]
pub struct VideoSlot {
    /// Index of the layer in the timeline.
    pub layer: usize,
    /// First texel, row stride, width and height in the video atlas.
    pub rect: [u32; 4],
    /// The file.
    pub path: PathBuf,
    /// Decoder output size, trim and loop.
    pub options: VideoReaderOptions,
}

/// Everything the compositor needs for one job, besides decoded video frames.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Output canvas width in pixels.
    pub width: u32,
    /// Output canvas height in pixels.
    pub height: u32,
    /// Output pixels per template pixel (presets smaller than the template scale down).
    pub scale: f64,
    /// Canvas colour, premultiplied, 0..1.
    pub background: [f32; 4],
    /// Static layers' pixels.
    pub atlas: Texels,
    /// The video atlas as first uploaded (transparent); slots are rewritten every frame.
    pub video: Texels,
    /// One entry per timeline layer, same order.
    pub layers: Vec<SceneLayer>,
    /// Video layers.
    pub videos: Vec<VideoSlot>,
    /// Presenter layers' mouths.
    pub mouths: Vec<SceneMouth>,
    /// The mouth shapes over time, from the start of the voice; `None` rests every mouth (X).
    /// Set by the renderer once the voice is known.
    pub mouth_track: Option<Track>,
    /// Video time at which the voice (and so [`Scene::mouth_track`]) starts, in seconds.
    pub voice_start: f64,
    /// Partial degradations (text shrunk below its minimum, a missing glyph); a render
    /// appends those of its audio.
    pub warnings: Vec<String>,
}

fn premultiply(c: [u8; 4]) -> [u8; 4] {
    let a = u32::from(c[3]);
    let p = |v: u8| ((u32::from(v) * a + 127) / 255) as u8;
    [p(c[0]), p(c[1]), p(c[2]), c[3]]
}

/// A rounded rectangle with anti-aliased corners, premultiplied.
fn solid(color: [u8; 4], w: u32, h: u32, radius: f64) -> Vec<u8> {
    let c = premultiply(color);
    let r = radius.clamp(0.0, f64::from(w.min(h)) / 2.0);
    let mut out = vec![0u8; w as usize * h as usize * 4];
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            // Distance past the rounded corner's arc, in pixels.
            let dx = (r - px).max(px - (f64::from(w) - r)).max(0.0);
            let dy = (r - py).max(py - (f64::from(h) - r)).max(0.0);
            let coverage = if r > 0.0 && dx > 0.0 && dy > 0.0 {
                (r - (dx * dx + dy * dy).sqrt() + 0.5).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let i = (y as usize * w as usize + x as usize) * 4;
            for k in 0..4 {
                out[i + k] = (f64::from(c[k]) * coverage + 0.5) as u8;
            }
        }
    }
    out
}

fn size_px(v: f64) -> u32 {
    (v.round().max(1.0)) as u32
}

/// Adds a video slot for timeline layer `layer` drawn at `content` template pixels (output
/// pixels `content × scale`), decoded no larger than the source or the drawn size (the GPU
/// scales up). Returns the slot's rectangle in the video atlas.
#[allow(clippy::too_many_arguments)]
fn push_video(
    video: &mut Texels,
    videos: &mut Vec<VideoSlot>,
    layer: usize,
    path: PathBuf,
    source: (u32, u32),
    content: (f64, f64),
    scale: f64,
    trim: (f64, Option<f64>, bool),
) -> [u32; 4] {
    let (sw, sh) = source;
    let dw = size_px(content.0 * scale).min(sw).max(2);
    let dh = size_px(content.1 * scale).min(sh).max(2);
    let rect = video.push(dw, dh, &[]);
    videos.push(VideoSlot {
        layer,
        rect,
        path,
        options: VideoReaderOptions {
            width: dw,
            height: dh,
            trim_start: trim.0,
            trim_duration: trim.1,
            looped: trim.2,
        },
    });
    rect
}

/// Reads the brand font at `src` in the bundle and registers it with the engine, returning its
/// family; a file that cannot be read or parsed is an error naming the layer.
fn load_brand_font(
    bundle: &Bundle,
    text: &mut TextEngine,
    src: &str,
    layer: &ResolvedLayer,
) -> Result<String, RenderError> {
    let bytes = std::fs::read(bundle.media_path(src)).map_err(|e| RenderError::Text {
        layer: layer.id.clone(),
        error: TextError::Font(format!("cannot read `{src}`: {e}")),
    })?;
    text.load_font(&bytes).map_err(|error| RenderError::Text {
        layer: layer.id.clone(),
        error: match error {
            TextError::Font(why) => TextError::Font(format!("`{src}`: {why}")),
            other => other,
        },
    })
}

/// How far a text layer stacked below `upper` (a timeline index, always an earlier text layer
/// already in `layers`) with `gap` pixels must move down so that the top of its ink is at least
/// `gap` below the bottom of the upper layer's ink (shift included). Both layers are placed
/// where their transforms put them at the middle of the time both are on screen, so that
/// entrance and exit animations do not count. 0 when the ink already clears or the upper layer
/// has none.
fn stack_shift(
    timeline: &Timeline,
    layers: &[SceneLayer],
    inks: &[Option<(f64, f64)>],
    (upper, gap): (usize, f64),
    (lower, lower_size, ink_top): (&ResolvedLayer, (f64, f64), f64),
) -> f64 {
    let (Some(upper_layer), Some(upper_scene), Some(Some((_, ink_bottom)))) = (
        timeline.layers.get(upper),
        layers.get(upper),
        inks.get(upper),
    ) else {
        return 0.0;
    };
    let both_from = upper_layer.start.max(lower.start);
    let both_to = upper_layer.end.min(lower.end);
    let t = if both_to > both_from {
        (both_from + both_to) / 2.0
    } else {
        lower.start
    };
    let upper_matrix = Affine::translate(0.0, upper_scene.shift)
        .mul(&upper_layer.matrix_at(t, upper_scene.content_size));
    let lower_matrix = lower.matrix_at(t, lower_size);
    let width_ends = |w: f64| [0.0, w];
    let upper_bottom = width_ends(upper_scene.content_size.0)
        .map(|x| upper_matrix.apply([x, *ink_bottom])[1])
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max);
    let lower_top = width_ends(lower_size.0)
        .map(|x| lower_matrix.apply([x, ink_top])[1])
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let shift = upper_bottom + gap - lower_top;
    if shift.is_finite() && shift > 0.0 {
        shift
    } else {
        0.0
    }
}

/// A presenter problem found only once its media are read, as a template error at
/// ``layers[i] (`id`).field``.
fn presenter_problem(index: usize, id: &str, field: &str, message: String) -> RenderError {
    RenderError::Template(TemplateError::Invalid(vec![Problem::new(
        format!("layers[{index}] (`{id}`).{field}"),
        message,
    )]))
}

impl Scene {
    /// Rasterizes every static layer of `timeline` once and lays out the atlases, for an output
    /// canvas of `width`x`height` (the template's size or a preset's).
    pub fn build(
        bundle: &Bundle,
        timeline: &Timeline,
        text: &mut TextEngine,
        width: u32,
        height: u32,
    ) -> Result<Self, RenderError> {
        let scale = f64::from(width) / f64::from(timeline.width);
        let mut atlas = Texels::new();
        let mut video = Texels::new();
        let mut layers = Vec::with_capacity(timeline.layers.len());
        let mut videos = Vec::new();
        let mut mouths = Vec::new();
        let mut warnings = Vec::new();
        // Brand font families by path inside the bundle, loaded once per scene.
        let mut families: HashMap<&str, String> = HashMap::new();
        // Each text layer's ink rows in its box, in template pixels (top, bottom).
        let mut inks: Vec<Option<(f64, f64)>> = vec![None; timeline.layers.len()];
        for (i, layer) in timeline.layers.iter().enumerate() {
            let declared = layer
                .content
                .declared_size((timeline.width, timeline.height));
            match &layer.content {
                ResolvedContent::Image { src, .. } => {
                    let img = media::load_image(&bundle.media_path(src))?;
                    let content = declared.unwrap_or((f64::from(img.width), f64::from(img.height)));
                    layers.push(SceneLayer {
                        source: shaders::source::ATLAS,
                        rect: atlas.push(img.width, img.height, &img.pixels),
                        content_size: content,
                        mouth: None,
                        shift: 0.0,
                    });
                }
                ResolvedContent::Text {
                    text: string,
                    size,
                    font_size,
                    min_font_size,
                    bold,
                    color,
                    align,
                    line_height,
                    shadow,
                    font,
                    vertical_align,
                    outline,
                    below,
                } => {
                    let font_family = match font {
                        Some(src) => Some(match families.get(src.as_str()) {
                            Some(family) => family.clone(),
                            None => {
                                let family = load_brand_font(bundle, text, src, layer)?;
                                families.insert(src, family.clone());
                                family
                            }
                        }),
                        None => None,
                    };
                    // Rasterize at output resolution so scaled presets stay sharp.
                    let (bw, bh) = (size_px(size.width * scale), size_px(size.height * scale));
                    let style = TextStyle {
                        font_size: (font_size * scale) as f32,
                        min_font_size: (min_font_size * scale) as f32,
                        bold: *bold,
                        color: *color,
                        align: *align,
                        line_height: *line_height as f32,
                        shadow: shadow
                            .map(|(c, o)| (c, [(o[0] * scale) as f32, (o[1] * scale) as f32])),
                        lang: timeline.lang.clone(),
                        font_family,
                        vertical_align: *vertical_align,
                        outline: outline.map(|(c, w)| (c, (w * scale) as f32)),
                    };
                    let raster = text.rasterize(string, bw, bh, &style).map_err(|error| {
                        RenderError::Text {
                            layer: layer.id.clone(),
                            error,
                        }
                    })?;
                    warnings.extend(
                        raster
                            .warnings
                            .iter()
                            .map(|w| format!("layer `{}`: {w}", layer.id)),
                    );
                    // Box rows to template pixels.
                    let per_row = size.height / f64::from(raster.height.max(1));
                    inks[i] = raster.ink_rows.map(|(top, bottom)| {
                        (f64::from(top) * per_row, f64::from(bottom) * per_row)
                    });
                    let shift = match (below, inks[i]) {
                        (Some((upper, gap)), Some((ink_top, _))) => stack_shift(
                            timeline,
                            &layers,
                            &inks,
                            (*upper, *gap),
                            (layer, (size.width, size.height), ink_top),
                        ),
                        _ => 0.0,
                    };
                    layers.push(SceneLayer {
                        source: shaders::source::ATLAS,
                        rect: atlas.push(raster.width, raster.height, &raster.pixels),
                        content_size: (size.width, size.height),
                        mouth: None,
                        shift,
                    });
                }
                ResolvedContent::Solid {
                    color,
                    size,
                    corner_radius,
                } => {
                    let (w, h) = (size_px(size.width * scale), size_px(size.height * scale));
                    let pixels = solid(*color, w, h, corner_radius * scale);
                    layers.push(SceneLayer {
                        source: shaders::source::ATLAS,
                        rect: atlas.push(w, h, &pixels),
                        content_size: (size.width, size.height),
                        mouth: None,
                        shift: 0.0,
                    });
                }
                ResolvedContent::Video {
                    src,
                    trim_start,
                    trim_duration,
                    looped,
                    ..
                } => {
                    // Always declared for videos.
                    let content = declared.unwrap_or_default();
                    let path = bundle.media_path(src);
                    let source = media::probe_video_size(&path)?;
                    let rect = push_video(
                        &mut video,
                        &mut videos,
                        i,
                        path,
                        source,
                        content,
                        scale,
                        (*trim_start, *trim_duration, *looped),
                    );
                    layers.push(SceneLayer {
                        source: shaders::source::VIDEO,
                        rect,
                        content_size: content,
                        mouth: None,
                        shift: 0.0,
                    });
                }
                ResolvedContent::Presenter {
                    src,
                    still,
                    trim_start,
                    trim_duration,
                    looped,
                    mouths: mouths_src,
                    columns,
                    rows,
                    cells,
                    mouth,
                    ..
                } => {
                    let path = bundle.media_path(src);
                    let (source, rect, base) = if *still {
                        let img = media::load_image(&path)?;
                        let base = (img.width, img.height);
                        let rect = atlas.push(img.width, img.height, &img.pixels);
                        (shaders::source::ATLAS, rect, base)
                    } else {
                        let base = media::probe_video_size(&path)?;
                        let content = declared.unwrap_or((f64::from(base.0), f64::from(base.1)));
                        let rect = push_video(
                            &mut video,
                            &mut videos,
                            i,
                            path,
                            base,
                            content,
                            scale,
                            (*trim_start, *trim_duration, *looped),
                        );
                        (shaders::source::VIDEO, rect, base)
                    };
                    let content = declared.unwrap_or((f64::from(base.0), f64::from(base.1)));

                    let img = media::load_image(&bundle.media_path(mouths_src))?;
                    for (field, side, v, n) in [
                        ("columns", "wide", img.width, *columns),
                        ("rows", "high", img.height, *rows),
                    ] {
                        if n == 0 || v % n != 0 || v < n {
                            return Err(presenter_problem(
                                layer.index,
                                &layer.id,
                                &format!("mouths.{field}"),
                                format!(
                                    "`{mouths_src}` is {v} px {side}, which {n} {field} of equal cells do not divide"
                                ),
                            ));
                        }
                    }
                    let atlas_rect = atlas.push(img.width, img.height, &img.pixels);
                    let (cw, ch) = (img.width / columns, img.height / rows);
                    let mut cell_rects = [[0u32; 4]; 9];
                    for (out, &cell) in cell_rects.iter_mut().zip(cells) {
                        let (col, row) = (cell % columns, cell / columns);
                        if row >= *rows {
                            return Err(presenter_problem(
                                layer.index,
                                &layer.id,
                                "mouths",
                                format!("cell {cell} is outside the {columns}x{rows} grid"),
                            ));
                        }
                        *out = [
                            atlas_rect[0] + row * ch * img.width + col * cw,
                            img.width,
                            cw,
                            ch,
                        ];
                    }
                    mouths.push(SceneMouth {
                        layer: i,
                        cells: cell_rects,
                        base_scale: (
                            content.0 / f64::from(base.0.max(1)),
                            content.1 / f64::from(base.1.max(1)),
                        ),
                        mouth: mouth.clone(),
                    });
                    layers.push(SceneLayer {
                        source,
                        rect,
                        content_size: content,
                        mouth: Some(mouths.len() - 1),
                        shift: 0.0,
                    });
                }
            }
        }

        let bg = timeline.background;
        let a = f32::from(bg[3]) / 255.0;
        let background = [
            f32::from(bg[0]) / 255.0 * a,
            f32::from(bg[1]) / 255.0 * a,
            f32::from(bg[2]) / 255.0 * a,
            a,
        ];
        Ok(Self {
            width,
            height,
            scale,
            background,
            atlas,
            video,
            layers,
            videos,
            mouths,
            mouth_track: None,
            voice_start: bundle
                .manifest
                .audio
                .voice
                .as_ref()
                .map_or(0.0, |v| v.start),
            warnings,
        })
    }

    /// The layers visible at time `t`, bottom first, ready for the GPU. A presenter adds its
    /// mouth layers right above its base.
    pub fn frame_layers(&self, timeline: &Timeline, t: f64, out: &mut Vec<GpuLayer>) {
        out.clear();
        let canvas = Affine::scale(self.scale, self.scale);
        for (layer, scene) in timeline.layers.iter().zip(&self.layers) {
            let Some(state) = layer.state_at(t, scene.content_size) else {
                continue;
            };
            let to_canvas = canvas
                .mul(&Affine::translate(0.0, scene.shift))
                .mul(&state.matrix);
            self.push_layer(
                out,
                &to_canvas,
                scene.content_size,
                scene.rect,
                scene.source,
                state.opacity,
                0.0,
            );
            if let Some(m) = scene.mouth.and_then(|m| self.mouths.get(m)) {
                self.push_mouth(out, m, &to_canvas, state.opacity, t);
            }
        }
    }

    /// The mouth shapes at video time `t`: the previous shape, the current one, and how far
    /// (0..=1) the cross-fade of `crossfade` seconds between them has come. At rest (X) without
    /// a track or outside it.
    pub fn mouth_at(&self, t: f64, crossfade: f64) -> (Shape, Shape, f32) {
        match &self.mouth_track {
            Some(track) => track.blend_at((t - self.voice_start) * 1000.0, crossfade * 1000.0),
            None => (Shape::X, Shape::X, 1.0),
        }
    }

    /// The mouth layers of a presenter whose content maps to the canvas by `to_canvas`.
    fn push_mouth(
        &self,
        out: &mut Vec<GpuLayer>,
        m: &SceneMouth,
        to_canvas: &Affine,
        opacity: f64,
        t: f64,
    ) {
        let b = &m.mouth;
        let [x, y] = b.position.value_at(t).unwrap_or([0.0, 0.0]);
        let scale = b.scale.value_at(t).unwrap_or(1.0);
        let rotation = b.rotation.value_at(t).unwrap_or(0.0);
        let (bw, bh) = (b.size.width, b.size.height);
        // Box pixels → base-file pixels → content pixels → canvas.
        let box_to_canvas = to_canvas
            .mul(&Affine::scale(m.base_scale.0, m.base_scale.1))
            .mul(&Affine::translate(x, y))
            .mul(&Affine::rotate_degrees(rotation))
            .mul(&Affine::scale(scale, scale))
            .mul(&Affine::translate(-bw / 2.0, -bh / 2.0));
        let (prev, cur, k) = self.mouth_at(t, b.crossfade);
        let k = f64::from(k);
        let mut draw = |shape: Shape, alpha: f64| {
            self.push_layer(
                out,
                &box_to_canvas,
                (bw, bh),
                m.cells[shape.index()],
                shaders::source::ATLAS,
                alpha,
                b.feather as f32,
            );
        };
        if prev == cur || k >= 1.0 {
            draw(cur, opacity);
        } else if k <= 0.0 {
            draw(prev, opacity);
        } else {
            draw(prev, opacity);
            draw(cur, opacity * k);
        }
    }

    /// Appends the GPU layer that draws `rect` (of `source`) as content of `content` size
    /// placed on the canvas by `to_canvas`, unless it is degenerate or off the canvas.
    #[allow(clippy::too_many_arguments)]
    fn push_layer(
        &self,
        out: &mut Vec<GpuLayer>,
        to_canvas: &Affine,
        content: (f64, f64),
        rect: [u32; 4],
        source: u32,
        opacity: f64,
        feather: f32,
    ) {
        let Some(inverse) = to_canvas.invert() else {
            return;
        };
        let (cw, ch) = content;
        let to_texel = Affine::scale(f64::from(rect[2]) / cw, f64::from(rect[3]) / ch);
        let m = to_texel.mul(&inverse).0;
        let corners = [[0.0, 0.0], [cw, 0.0], [0.0, ch], [cw, ch]].map(|p| to_canvas.apply(p));
        let min_x = corners.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        let min_y = corners.iter().map(|p| p[1]).fold(f64::INFINITY, f64::min);
        let max_x = corners
            .iter()
            .map(|p| p[0])
            .fold(f64::NEG_INFINITY, f64::max);
        let max_y = corners
            .iter()
            .map(|p| p[1])
            .fold(f64::NEG_INFINITY, f64::max);
        let clamp_x = |v: f64| v.clamp(0.0, f64::from(self.width)) as i32;
        let clamp_y = |v: f64| v.clamp(0.0, f64::from(self.height)) as i32;
        let bbox = [
            clamp_x(min_x.floor()),
            clamp_y(min_y.floor()),
            clamp_x(max_x.ceil()),
            clamp_y(max_y.ceil()),
        ];
        if bbox[0] >= bbox[2] || bbox[1] >= bbox[3] {
            return;
        }
        out.push(GpuLayer {
            row0: [m[0] as f32, m[1] as f32, m[2] as f32, opacity as f32],
            row1: [m[3] as f32, m[4] as f32, m[5] as f32, 0.0],
            rect,
            bbox,
            source,
            feather,
            _pad: [0; 2],
        });
    }

    /// Video slots whose layer is shown at `t`, with the layer-local time to decode.
    pub fn active_videos<'a>(
        &'a self,
        timeline: &'a Timeline,
        t: f64,
    ) -> impl Iterator<Item = (usize, f64)> + 'a {
        let layers = &timeline.layers;
        self.videos.iter().enumerate().filter_map(move |(i, slot)| {
            let layer = &layers[slot.layer];
            (t >= layer.start && t < layer.end).then_some((i, t - layer.start))
        })
    }
}
