//! CPU reference of the compositor's math, for tests and benchmarks (feature `cpu-reference`).
//!
//! Mirrors `shaders/wgsl/composite.wgsl` and `yuv420.wgsl` operation by operation in `f32`.
//! The GPU path is the product; this exists so tests can check the GPU against known math.
//! GPU and CPU agree within one code value per channel (different fused multiply-add and
//! `1/255` rounding between drivers); tests state that tolerance.

use shaders::{FrameUniforms, GpuLayer};

/// The atlas storage the reference reads from, as the compositor does.
pub use crate::atlas::Texels;

/// Texel `i` of `texels` as normalized floats, as the shader's `unpack4x8unorm` gives it.
fn load(texels: &Texels, i: usize) -> [f32; 4] {
    let p = &texels.pixels[i * 4..i * 4 + 4];
    [
        f32::from(p[0]) / 255.0,
        f32::from(p[1]) / 255.0,
        f32::from(p[2]) / 255.0,
        f32::from(p[3]) / 255.0,
    ]
}

fn fetch(atlas: &Texels, video: &Texels, l: &GpuLayer, ix: i32, iy: i32) -> [f32; 4] {
    let cx = ix.clamp(0, l.rect[2] as i32 - 1) as usize;
    let cy = iy.clamp(0, l.rect[3] as i32 - 1) as usize;
    let i = l.rect[0] as usize + cy * l.rect[1] as usize + cx;
    if l.source == shaders::source::ATLAS {
        load(atlas, i)
    } else {
        load(video, i)
    }
}

fn lerp(a: [f32; 4], b: [f32; 4], t: f32) -> [f32; 4] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
        a[3] + (b[3] - a[3]) * t,
    ]
}

fn sample(atlas: &Texels, video: &Texels, l: &GpuLayer, p: [f32; 2]) -> [f32; 4] {
    let u = l.row0[0] * p[0] + l.row0[1] * p[1] + l.row0[2];
    let v = l.row1[0] * p[0] + l.row1[1] * p[1] + l.row1[2];
    if u < 0.0 || v < 0.0 || u >= l.rect[2] as f32 || v >= l.rect[3] as f32 {
        return [0.0; 4];
    }
    let fu = u - 0.5;
    let fv = v - 0.5;
    let x0 = fu.floor();
    let y0 = fv.floor();
    let (ax, ay) = (fu - x0, fv - y0);
    let (ix, iy) = (x0 as i32, y0 as i32);
    let top = lerp(
        fetch(atlas, video, l, ix, iy),
        fetch(atlas, video, l, ix + 1, iy),
        ax,
    );
    let bottom = lerp(
        fetch(atlas, video, l, ix, iy + 1),
        fetch(atlas, video, l, ix + 1, iy + 1),
        ax,
    );
    lerp(top, bottom, ay)
}

/// WGSL `smoothstep`.
fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The layer's elliptical feather mask at canvas point `p` (1 everywhere when `feather` is 0).
pub fn feather_mask(l: &GpuLayer, p: [f32; 2]) -> f32 {
    if l.feather <= 0.0 {
        return 1.0;
    }
    let u = l.row0[0] * p[0] + l.row0[1] * p[1] + l.row0[2];
    let v = l.row1[0] * p[0] + l.row1[1] * p[1] + l.row1[2];
    let dx = (u / l.rect[2] as f32 - 0.5) * 2.0;
    let dy = (v / l.rect[3] as f32 - 0.5) * 2.0;
    let d = (dx * dx + dy * dy).sqrt();
    1.0 - smoothstep(1.0 - 2.0 * l.feather, 1.0, d)
}

/// WGSL `pack4x8unorm`.
fn pack(c: [f32; 4]) -> u32 {
    let mut out = 0u32;
    for (i, v) in c.iter().enumerate() {
        let b = (0.5 + 255.0 * v.clamp(0.0, 1.0)).floor() as u32;
        out |= b << (8 * i);
    }
    out
}

fn unpack(w: u32) -> [f32; 3] {
    [
        (w & 0xff) as f32 / 255.0,
        ((w >> 8) & 0xff) as f32 / 255.0,
        ((w >> 16) & 0xff) as f32 / 255.0,
    ]
}

/// Composites one frame exactly as `composite.wgsl` does; one packed RGBA8 word per pixel.
pub fn composite(
    frame: &FrameUniforms,
    layers: &[GpuLayer],
    atlas: &Texels,
    video: &Texels,
) -> Vec<u32> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut out = vec![0u32; w * h];
    for y in 0..h {
        for x in 0..w {
            let p = [x as f32 + 0.5, y as f32 + 0.5];
            let mut acc = frame.background;
            for l in layers.iter().take(frame.layer_count as usize) {
                let (px, py) = (x as i32, y as i32);
                if px < l.bbox[0] || py < l.bbox[1] || px >= l.bbox[2] || py >= l.bbox[3] {
                    continue;
                }
                let s = sample(atlas, video, l, p);
                let k = l.row0[3] * feather_mask(l, p);
                let c = s.map(|v| v * k);
                let inv = 1.0 - c[3];
                acc = [
                    c[0] + acc[0] * inv,
                    c[1] + acc[1] * inv,
                    c[2] + acc[2] * inv,
                    c[3] + acc[3] * inv,
                ];
            }
            out[y * w + x] = pack(acc);
        }
    }
    out
}

fn to_byte(x: f32) -> u8 {
    (x + 0.5).floor().clamp(0.0, 255.0) as u8
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Converts packed RGBA8 to planar YUV 4:2:0 (BT.709 limited range) exactly as `yuv420.wgsl`.
pub fn rgba_to_yuv420(width: u32, height: u32, rgba: &[u32]) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![0u8; w * h * 3 / 2];
    for (i, word) in rgba.iter().enumerate().take(w * h) {
        let c = unpack(*word);
        out[i] = to_byte(16.0 + 219.0 * dot(c, [0.2126, 0.7152, 0.0722]));
    }
    let (cw, ch) = (w / 2, h / 2);
    for cy in 0..ch {
        for cx in 0..cw {
            let b = 2 * cy * w + 2 * cx;
            let q = [rgba[b], rgba[b + 1], rgba[b + w], rgba[b + w + 1]].map(unpack);
            let c = [0, 1, 2].map(|k| (q[0][k] + q[1][k] + q[2][k] + q[3][k]) * 0.25);
            out[w * h + cy * cw + cx] = to_byte(128.0 + 224.0 * dot(c, [-0.1146, -0.3854, 0.5]));
            out[w * h + cw * ch + cy * cw + cx] =
                to_byte(128.0 + 224.0 * dot(c, [0.5, -0.4542, -0.0458]));
        }
    }
    out
}

/// Unpacks packed RGBA8 words into bytes.
pub fn words_to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
