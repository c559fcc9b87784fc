//! Per-frame compositing: the wgpu compositor (lavapipe where there is no GPU) and the CPU
//! reference of the same math.
//!
//! Throughput is in pixels, so figures at different canvas sizes compare directly; the time
//! per iteration is the time per frame.

use std::hint::black_box;
use std::time::Duration;

use benches::{packed_frame, w1_frame, FrameFixture};
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use render_core::cpu;
use render_core::gpu::{Compositor, GpuContext, Readback, DEFAULT_RING};

/// Modest sampling: a 1080p frame on lavapipe takes tens of milliseconds.
fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, pixels: u64) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(pixels));
}

fn compositor<'a>(ctx: &'a GpuContext, fx: &FrameFixture, ring: usize) -> Compositor<'a> {
    Compositor::new(ctx, fx.width, fx.height, &fx.atlas, &fx.video, ring)
        .expect("compositor for the W1 frame")
}

/// Upload the video frame, composite, convert to YUV and read back, one frame at a time.
fn round_trip(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    ctx: &GpuContext,
    fx: &FrameFixture,
) {
    let mut comp = compositor(ctx, fx, 1);
    let mut out = Vec::new();
    group.bench_function("upload_submit_read_yuv", |b| {
        b.iter(|| {
            comp.upload_video(fx.video_rect, fx.video_frame());
            comp.submit(fx.background, &fx.layers, Readback::Yuv420, 0)
                .expect("submit");
            comp.read_oldest(&mut out).expect("readback");
            black_box(&out);
        });
    });
    // The same without the video upload, for the whole layer set and for its first `n` layers
    // (0: background only, 1: the video, 4: a typical W1 moment, all: every layer at once).
    let all = fx.layers.len();
    for n in [0, 1, 4, all] {
        let layers = &fx.layers[..n.min(all)];
        group.bench_with_input(BenchmarkId::new("submit_read_yuv/layers", n), &n, |b, _| {
            b.iter(|| {
                comp.submit(fx.background, layers, Readback::Yuv420, 0)
                    .expect("submit");
                comp.read_oldest(&mut out).expect("readback");
                black_box(&out);
            });
        });
    }
}

fn gpu(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("skipping the GPU benches: {e}");
            return;
        }
    };
    eprintln!("GPU adapter: {}", ctx.adapter());

    let fx = w1_frame(1920, 1080);
    let mut group = c.benchmark_group("gpu_1080p");
    configure(&mut group, fx.pixels());
    round_trip(&mut group, &ctx, &fx);
    // The render loop's steady state: the ring stays full, so each iteration reads the oldest
    // frame back while newer ones are queued behind it.
    let mut comp = compositor(&ctx, &fx, DEFAULT_RING);
    let mut out = Vec::new();
    group.bench_function(format!("pipelined_yuv_ring{DEFAULT_RING}"), |b| {
        b.iter(|| {
            if comp.is_full() {
                comp.read_oldest(&mut out).expect("readback");
            }
            comp.upload_video(fx.video_rect, fx.video_frame());
            comp.submit(fx.background, &fx.layers, Readback::Yuv420, 0)
                .expect("submit");
            black_box(&out);
        });
    });
    while comp.read_oldest(&mut out).expect("drain").is_some() {}
    group.finish();

    let small = w1_frame(480, 270);
    let mut group = c.benchmark_group("gpu_270p");
    configure(&mut group, small.pixels());
    round_trip(&mut group, &ctx, &small);
    group.finish();
}

fn cpu_reference(c: &mut Criterion) {
    let small = w1_frame(480, 270);
    let mut group = c.benchmark_group("cpu_reference");
    configure(&mut group, small.pixels());
    let uniforms = small.uniforms();
    group.bench_function("composite_480x270", |b| {
        b.iter(|| {
            black_box(cpu::composite(
                &uniforms,
                &small.layers,
                &small.atlas,
                &small.video,
            ))
        });
    });

    let (w, h) = (1920, 1080);
    let words = packed_frame(w, h);
    group.throughput(Throughput::Elements(u64::from(w) * u64::from(h)));
    group.bench_function("rgba_to_yuv420_1920x1080", |b| {
        b.iter(|| black_box(cpu::rgba_to_yuv420(w, h, &words)));
    });
    group.finish();
}

criterion_group!(benches, gpu, cpu_reference);
criterion_main!(benches);
