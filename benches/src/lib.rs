//! benches: reelfarm's benchmarks. Each takes a plain config struct; `reelfarm bench …` turns
//! its arguments into one and makes one call (results in `BENCHMARKS.md`):
//!
//! - [`w1`]: the reference workload W1 three ways (reelfarm, x264 alone, an FFmpeg filtergraph);
//! - [`load`]: renders through a farm over gRPC, closed loop (`reelfarm bench --jobs N`);
//! - [`events`]: event ingestion, open loop (`reelfarm bench events`);
//! - [`lipsync`]: lip-sync accuracy per language (`reelfarm bench lipsync`).
//!
//! Besides, criterion micro-benchmarks of the per-frame render path and the fixtures they share.
//!
//! The reference workload W1 end to end is `reelfarm bench w1` (see `BENCHMARKS.md`); the
//! benches here (`cargo bench -p benches`) time its per-frame pieces in isolation:
//!
//! - `gpu_1080p`: one W1-like frame composited by [`render_core::gpu::Compositor`] and read back
//!   as YUV 4:2:0: with the video upload, without it for 0, 1, 4 and all 8 layers, and with the
//!   ring of staging buffers kept full as the render loop does;
//! - `gpu_270p`: the same frame at 480x270, to separate per-frame overhead from per-pixel work;
//! - `cpu_reference`: `render_core::cpu::composite` on the 480x270 frame, and
//!   `render_core::cpu::rgba_to_yuv420` at 1920x1080 (render-core's `cpu-reference` feature,
//!   which the bench turns on).
//!
//! [`w1_frame`] builds the frame: a full-canvas video layer drawn from a half-resolution video
//! atlas (as W1's 960x540 background is) and seven static layers with W1's text, image and
//! shape sizes, all visible at once. That is denser than an average W1 frame, which shows three
//! to five layers, so it bounds the compositing cost from above.

pub mod events;
pub mod lipsync;
pub mod load;
mod stats;
pub mod w1;

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use render_core::atlas::Texels;
use shaders::{source, FrameUniforms, GpuLayer};
use template::Affine;

/// Width of the canvas the W1 layer sizes are given for.
const W1_WIDTH: f64 = 1920.0;

/// A static W1 layer at 1920x1080: texel size, top-left position on the canvas, scale and
/// opacity.
struct StaticLayer {
    size: (u32, u32),
    position: (f64, f64),
    scale: f64,
    opacity: f64,
}

/// W1's static layers: logo, presenter, greeting text (mid-fade), product text and image, offer
/// text and the offer's badge.
const W1_STATIC: [StaticLayer; 7] = [
    StaticLayer {
        size: (256, 256),
        position: (1620.0, 60.0),
        scale: 0.6,
        opacity: 1.0,
    },
    StaticLayer {
        size: (560, 760),
        position: (80.0, 300.0),
        scale: 1.0,
        opacity: 1.0,
    },
    StaticLayer {
        size: (1400, 220),
        position: (260.0, 120.0),
        scale: 1.0,
        opacity: 0.8,
    },
    StaticLayer {
        size: (900, 160),
        position: (900.0, 700.0),
        scale: 1.0,
        opacity: 1.0,
    },
    StaticLayer {
        size: (480, 480),
        position: (1300.0, 200.0),
        scale: 0.9,
        opacity: 1.0,
    },
    StaticLayer {
        size: (640, 140),
        position: (640.0, 880.0),
        scale: 1.0,
        opacity: 1.0,
    },
    StaticLayer {
        size: (1200, 180),
        position: (360.0, 860.0),
        scale: 1.1,
        opacity: 1.0,
    },
];

/// Everything one frame of the compositor needs.
#[derive(Debug, Clone)]
pub struct FrameFixture {
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height in pixels.
    pub height: u32,
    /// Canvas colour, premultiplied.
    pub background: [f32; 4],
    /// The static atlas.
    pub atlas: Texels,
    /// The video atlas: one decoded video frame at half the canvas size.
    pub video: Texels,
    /// Where that frame lies in `video` (first texel, stride, width, height).
    pub video_rect: [u32; 4],
    /// The frame's layers, bottom first: the video, then the static layers.
    pub layers: Vec<GpuLayer>,
}

impl FrameFixture {
    /// The frame's uniforms, as the compositor writes them.
    pub fn uniforms(&self) -> FrameUniforms {
        FrameUniforms {
            width: self.width,
            height: self.height,
            layer_count: self.layers.len() as u32,
            tiles_x: 0,
            background: self.background,
        }
    }

    /// The video frame's texels, as uploaded every frame.
    pub fn video_frame(&self) -> &[u8] {
        self.video.image(self.video_rect)
    }

    /// Pixels per frame.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// `width*height` deterministic pseudo-random premultiplied RGBA8 texels (xorshift), so every
/// run draws the same.
pub fn pattern(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut pixels = vec![0u8; width as usize * height as usize * 4];
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    for px in pixels.chunks_exact_mut(4) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let a = (s >> 24) as u8;
        let p = |v: u32| ((v & 0xff) * u32::from(a) / 255) as u8;
        px.copy_from_slice(&[p(s), p(s >> 8), p(s >> 16), a]);
    }
    pixels
}

/// Packed RGBA8 words (the compositor's output format) of a `width`x`height` opaque pattern.
pub fn packed_frame(width: u32, height: u32) -> Vec<u32> {
    pattern(width, height, 5)
        .chunks_exact(4)
        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 255]))
        .collect()
}

/// The layer drawing `rect` of `source` with the canvas map `to_canvas`, clipped to the canvas;
/// built the way `render_core::scene::Scene::frame_layers` builds them.
fn gpu_layer(
    source: u32,
    rect: [u32; 4],
    to_canvas: Affine,
    opacity: f64,
    canvas: (u32, u32),
) -> Option<GpuLayer> {
    let m = to_canvas.invert()?.0;
    let (w, h) = (f64::from(rect[2]), f64::from(rect[3]));
    let corners = [[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]].map(|p| to_canvas.apply(p));
    let min = |k: usize| corners.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
    let max = |k: usize| {
        corners
            .iter()
            .map(|p| p[k])
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let clamp = |v: f64, side: u32| v.clamp(0.0, f64::from(side)) as i32;
    let bbox = [
        clamp(min(0).floor(), canvas.0),
        clamp(min(1).floor(), canvas.1),
        clamp(max(0).ceil(), canvas.0),
        clamp(max(1).ceil(), canvas.1),
    ];
    (bbox[0] < bbox[2] && bbox[1] < bbox[3]).then(|| GpuLayer {
        row0: [m[0] as f32, m[1] as f32, m[2] as f32, opacity as f32],
        row1: [m[3] as f32, m[4] as f32, m[5] as f32, 0.0],
        rect,
        bbox,
        source,
        feather: 0.0,
        _pad: [0; 2],
    })
}

/// A W1-like frame on a `width`x`height` canvas (16:9; `width` a multiple of 8): W1's layer
/// sizes and positions scaled by `width / 1920`.
pub fn w1_frame(width: u32, height: u32) -> FrameFixture {
    let f = f64::from(width) / W1_WIDTH;
    let px = |v: u32| ((f64::from(v) * f).round() as u32).max(1);

    // Static atlas: the layers one after another, as the scene lays them out.
    let mut atlas = Texels::new();
    let rects: Vec<[u32; 4]> = W1_STATIC
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let (w, h) = (px(layer.size.0), px(layer.size.1));
            atlas.push(w, h, &pattern(w, h, 100 + i as u32))
        })
        .collect();

    // The background video: decoded at half the canvas size, drawn over the whole canvas.
    let (vw, vh) = (width / 2, height / 2);
    let mut frame = pattern(vw, vh, 1);
    for px in frame.chunks_exact_mut(4) {
        px[3] = 255;
    }
    let mut video = Texels::new();
    let video_rect = video.push(vw, vh, &frame);
    let canvas = (width, height);
    let mut layers = Vec::with_capacity(1 + W1_STATIC.len());
    layers.extend(gpu_layer(
        source::VIDEO,
        video_rect,
        Affine::scale(
            f64::from(width) / f64::from(vw),
            f64::from(height) / f64::from(vh),
        ),
        1.0,
        canvas,
    ));
    for (layer, rect) in W1_STATIC.iter().zip(&rects) {
        let to_canvas = Affine::translate(layer.position.0 * f, layer.position.1 * f)
            .mul(&Affine::scale(layer.scale, layer.scale));
        layers.extend(gpu_layer(
            source::ATLAS,
            *rect,
            to_canvas,
            layer.opacity,
            canvas,
        ));
    }
    FrameFixture {
        width,
        height,
        background: [0.02, 0.03, 0.05, 1.0],
        atlas,
        video,
        video_rect,
        layers,
    }
}

/// The bundled demo template, found from the working directory or the source tree.
pub fn default_template() -> PathBuf {
    let rel = Path::new("assets/templates/order-delivered");
    if rel.join("template.json").is_file() {
        return rel.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The kind of store a local farm's `--store` URL names (SQLite when none is given).
pub(crate) fn store_kind(url: Option<&str>) -> &'static str {
    if url.is_some_and(|s| s.starts_with("postgres")) {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// A progress bar of frames.
pub fn progress_bar(label: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} frames, {per_sec}, eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_frame_has_every_layer_on_canvas() {
        for (w, h) in [(1920, 1080), (480, 270)] {
            let fx = w1_frame(w, h);
            assert_eq!(fx.layers.len(), 1 + W1_STATIC.len(), "{w}x{h}");
            assert_eq!(fx.layers[0].bbox, [0, 0, w as i32, h as i32]);
            for l in &fx.layers {
                assert!(l.bbox[2] <= w as i32 && l.bbox[3] <= h as i32, "{l:?}");
                let texels = if l.source == source::ATLAS {
                    &fx.atlas
                } else {
                    &fx.video
                };
                let [first, stride, lw, lh] = l.rect.map(|v| v as usize);
                let end = first + (lh - 1) * stride + lw;
                assert!(
                    end <= texels.len(),
                    "{l:?} reads past {} texels",
                    texels.len()
                );
            }
        }
    }
}
