//! The GPU compositor (lavapipe on machines without a GPU) against the CPU reference.

use render_core::atlas::Texels;
use render_core::cpu;
use render_core::gpu::{Compositor, GpuContext, Readback};
use shaders::{source, FrameUniforms, GpuLayer};

/// Largest difference per channel allowed between GPU and CPU, in 8-bit code values.
const TOLERANCE: u8 = 1;

/// Deterministic pseudo-random premultiplied texels.
fn pattern(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut img = vec![0u8; width as usize * height as usize * 4];
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    for px in img.chunks_exact_mut(4) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let a = (s >> 24) as u8;
        px[3] = a;
        px[0] = ((s & 0xff) as u16 * a as u16 / 255) as u8;
        px[1] = (((s >> 8) & 0xff) as u16 * a as u16 / 255) as u8;
        px[2] = (((s >> 16) & 0xff) as u16 * a as u16 / 255) as u8;
    }
    img
}

/// A layer drawing `rect` of a texture, scaled by `scale`, rotated by `deg` about its top-left
/// corner placed at `pos`.
fn layer(src: u32, rect: [u32; 4], pos: [f32; 2], scale: f32, deg: f32, opacity: f32) -> GpuLayer {
    let (s, c) = deg.to_radians().sin_cos();
    // Canvas → texel: inverse of translate(pos) · rotate · scale.
    let inv = 1.0 / scale;
    let row0 = [c * inv, s * inv, -(c * pos[0] + s * pos[1]) * inv, opacity];
    let row1 = [-s * inv, c * inv, (s * pos[0] - c * pos[1]) * inv, 0.0];
    GpuLayer {
        row0,
        row1,
        rect,
        bbox: [0, 0, 10_000, 10_000],
        source: src,
        feather: 0.0,
        _pad: [0; 2],
    }
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn gpu_matches_cpu_reference() {
    let ctx = GpuContext::new().expect("a Vulkan adapter (lavapipe) is available");
    let (w, h) = (96u32, 64u32);
    let mut atlas = Texels::new();
    let a = atlas.push(32, 24, &pattern(32, 24, 7));
    let b = atlas.push(32, 48, &pattern(32, 48, 8));
    let c = atlas.push(20, 20, &pattern(20, 20, 9));
    let mut video = Texels::new();
    let v = video.push(40, 30, &[]);
    let frame_pixels = pattern(40, 30, 11);
    let layers = [
        layer(source::VIDEO, v, [0.0, 0.0], 2.4, 0.0, 1.0),
        layer(source::ATLAS, a, [10.0, 5.0], 1.0, 0.0, 0.8),
        layer(source::ATLAS, b, [50.0, 10.0], 0.7, 30.0, 0.6),
        layer(source::ATLAS, c, [70.0, 40.0], 1.9, -12.5, 1.0),
    ];
    let background = [0.1, 0.2, 0.3, 1.0];
    let frame = FrameUniforms {
        width: w,
        height: h,
        layer_count: layers.len() as u32,
        tiles_x: 0,
        background,
    };
    let mut video_now = video.clone();
    video_now.write(v, &frame_pixels);
    let expected = cpu::words_to_bytes(&cpu::composite(&frame, &layers, &atlas, &video_now));

    let mut comp = Compositor::new(&ctx, w, h, &atlas, &video, 2).expect("compositor");
    comp.upload_video(v, &frame_pixels);
    comp.submit(background, &layers, Readback::Rgba, 1)
        .expect("submit");
    comp.submit(background, &layers, Readback::Yuv420, 2)
        .expect("submit");
    let mut rgba = Vec::new();
    assert_eq!(comp.read_oldest(&mut rgba).expect("readback"), Some(1));
    let diff = max_diff(&rgba, &expected);
    assert!(
        diff <= TOLERANCE,
        "GPU RGBA differs from CPU by {diff} > {TOLERANCE}"
    );
    // Not blank: the layers actually drew.
    assert!(rgba.chunks_exact(4).any(|p| p[0] != rgba[0]));

    let mut yuv = Vec::new();
    assert_eq!(comp.read_oldest(&mut yuv).expect("readback"), Some(2));
    let words: Vec<u32> = rgba
        .chunks_exact(4)
        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
        .collect();
    let expected_yuv = cpu::rgba_to_yuv420(w, h, &words);
    assert_eq!(yuv.len(), (w * h * 3 / 2) as usize);
    let diff = max_diff(&yuv, &expected_yuv);
    assert!(
        diff <= TOLERANCE,
        "GPU YUV differs from CPU by {diff} > {TOLERANCE}"
    );
    assert_eq!(comp.read_oldest(&mut yuv).expect("empty ring"), None);
}

#[test]
fn ring_keeps_frames_in_order() {
    let ctx = GpuContext::new().expect("a Vulkan adapter (lavapipe) is available");
    let atlas = Texels::new();
    let mut comp = Compositor::new(&ctx, 16, 8, &atlas, &Texels::new(), 3).expect("compositor");
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for tag in 0..10u64 {
        if comp.is_full() {
            seen.push(
                comp.read_oldest(&mut out)
                    .expect("readback")
                    .expect("frame"),
            );
        }
        let grey = tag as f32 / 10.0;
        comp.submit([grey, grey, grey, 1.0], &[], Readback::Rgba, tag)
            .expect("submit");
    }
    while let Some(tag) = comp.read_oldest(&mut out).expect("readback") {
        seen.push(tag);
        let grey = (tag as f32 / 10.0 * 255.0 + 0.5).floor() as u8;
        assert!(
            out[0].abs_diff(grey) <= TOLERANCE,
            "frame {tag} carries its own background: {} vs {grey}",
            out[0]
        );
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[test]
fn rejects_bad_canvas() {
    let ctx = GpuContext::new().expect("a Vulkan adapter (lavapipe) is available");
    let atlas = Texels::new();
    let err = Compositor::new(&ctx, 100, 50, &atlas, &Texels::new(), 2)
        .expect_err("width 100 is not a multiple of 8");
    assert!(err.to_string().contains("multiple of 8"), "{err}");
}
