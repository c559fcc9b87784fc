//! End-to-end renders of a small template: container checks, determinism, ranges, stills and
//! bad input.

use std::collections::BTreeMap;
use std::path::Path;

use render_core::cpu;
use render_core::scene::Scene;
use render_core::text::TextEngine;
use render_core::{Preset, RenderError, RenderRequest, Renderer};

use crate::support::{ffprobe, mp4_boxes, temp_dir, tiny_template};

fn request(dir: &Path, lang: &str, name: &str) -> RenderRequest {
    RenderRequest {
        template_dir: dir.to_owned(),
        lang: lang.to_owned(),
        tokens: BTreeMap::from([("first_name".to_owned(), name.to_owned())]),
        voice: None,
        preset: Preset::P1080,
        range: None,
        mouth_track: None,
    }
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .expect("a number")
}

#[test]
fn renders_valid_mp4() {
    let dir = tiny_template("mp4");
    let out = dir.join("out.mp4");
    let mut r = Renderer::new().expect("renderer");
    let mut calls = 0u64;
    let report = r
        .render(
            &request(&dir, "hi", "प्रिया"),
            &out,
            &mut |done, total| {
                calls += 1;
                assert!(done <= total);
            },
        )
        .expect("render");
    assert_eq!(report.frames, 60);
    assert_eq!(calls, 60, "progress reported once per frame");
    assert_eq!(report.size, (320, 240));

    let probe = ffprobe(&out);
    let streams = probe["streams"].as_array().expect("streams");
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video stream");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("audio stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["width"], 320);
    assert_eq!(
        video["color_space"], "bt709",
        "tagged as the compositor converts"
    );
    assert_eq!(video["color_range"], "tv");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["profile"], "LC");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"], 2);
    let vdur = f(&video["duration"]);
    let adur = f(&audio["duration"]);
    assert!(
        (vdur - 2.0).abs() < 1.0 / 30.0 + 1e-6,
        "video duration {vdur}"
    );
    assert!(
        (adur - vdur).abs() <= 1.0 / 30.0 + 0.03,
        "audio {adur} vs video {vdur}"
    );
    let vstart = f(&video["start_time"]);
    let astart = f(&audio["start_time"]);
    assert!(
        (vstart - astart).abs() <= 1.0 / 30.0,
        "A/V start {astart} vs {vstart}"
    );

    let boxes = mp4_boxes(&out);
    let moov = boxes.iter().position(|b| b == "moov").expect("moov box");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("mdat box");
    assert!(moov < mdat, "fast start: moov before mdat, got {boxes:?}");
    assert!(
        !dir.join(".out.mp4.partial.mp4").exists(),
        "no partial file left"
    );
}

#[test]
fn cancelled_render_stops_and_leaves_no_file() {
    let dir = tiny_template("cancel");
    let out = dir.join("cancelled.mp4");
    let mut r = Renderer::new().expect("renderer");
    let mut calls = 0u64;
    let err = r
        .render_cancellable(&request(&dir, "en", "Ana"), &out, &mut |done, _| {
            calls += 1;
            if done >= 5 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .expect_err("cancelled");
    assert!(matches!(err, RenderError::Cancelled), "{err}");
    assert_eq!(calls, 5, "no progress after the callback said stop");
    assert!(!out.exists(), "no output for a cancelled render");
    assert!(
        !dir.join(".cancelled.mp4.partial.mp4").exists(),
        "no partial file left"
    );
    // The renderer stays usable.
    r.render(&request(&dir, "en", "Ana"), &out, &mut |_, _| {})
        .expect("render after a cancelled one");
    assert!(out.exists());
}

#[test]
fn same_inputs_same_bytes() {
    let dir = tiny_template("determinism");
    let mut r = Renderer::new().expect("renderer");
    let req = request(&dir, "en", "Ana");
    r.render(&req, &dir.join("a.mp4"), &mut |_, _| {})
        .expect("render a");
    r.render(&req, &dir.join("b.mp4"), &mut |_, _| {})
        .expect("render b");
    let a = std::fs::read(dir.join("a.mp4")).expect("a");
    let b = std::fs::read(dir.join("b.mp4")).expect("b");
    assert!(a == b, "two renders of the same inputs differ");
    r.render(
        &request(&dir, "en", "Bob"),
        &dir.join("c.mp4"),
        &mut |_, _| {},
    )
    .expect("render c");
    let c = std::fs::read(dir.join("c.mp4")).expect("c");
    assert!(a != c, "a different name must change the video");
}

#[test]
fn renders_a_time_range() {
    let dir = tiny_template("range");
    let mut r = Renderer::new().expect("renderer");
    let mut req = request(&dir, "en", "Ana");
    req.range = Some((0.5, 1.5));
    let out = dir.join("range.mp4");
    let report = r.render(&req, &out, &mut |_, _| {}).expect("render");
    assert_eq!(report.frames, 30);
    let probe = ffprobe(&out);
    let dur = f(&probe["format"]["duration"]);
    assert!((dur - 1.0).abs() < 0.06, "range duration {dur}");

    req.range = Some((1.5, 3.0));
    let err = r
        .render(&req, &dir.join("bad.mp4"), &mut |_, _| {})
        .expect_err("past the end");
    assert!(matches!(err, RenderError::Range { .. }), "{err}");
}

#[test]
fn still_matches_cpu_reference_of_the_whole_scene() {
    let dir = tiny_template("still");
    let mut r = Renderer::new().expect("renderer");
    let req = request(&dir, "hi", "प्रिया");
    let at = 1.0;
    let (gpu, _) = r.still(&req, at).expect("still");
    assert_eq!((gpu.width, gpu.height), (320, 240));

    // Rebuild the same frame on the CPU from the same scene.
    let bundle = template::Bundle::load(&dir).expect("bundle");
    let tokens = template::resolve_tokens(&bundle.manifest, "hi", &req.tokens).expect("tokens");
    let timeline = template::resolve(&bundle.manifest, "hi", &tokens).expect("timeline");
    let mut text = TextEngine::new();
    let scene = Scene::build(&bundle, &timeline, &mut text, 320, 240).expect("scene");
    let mut layers = Vec::new();
    scene.frame_layers(&timeline, at, &mut layers);
    let mut video = scene.video.clone();
    for (slot, local) in scene.active_videos(&timeline, at) {
        let s = &scene.videos[slot];
        let mut reader =
            render_core::media::VideoReader::open(&s.path, s.options.clone()).expect("video");
        video.write(s.rect, reader.frame_at(local).expect("frame"));
    }
    let frame = shaders::FrameUniforms {
        width: 320,
        height: 240,
        layer_count: layers.len() as u32,
        tiles_x: 0,
        background: scene.background,
    };
    let cpu_px = cpu::words_to_bytes(&cpu::composite(&frame, &layers, &scene.atlas, &video));
    let diff = gpu
        .pixels
        .iter()
        .zip(&cpu_px)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    assert!(
        diff <= 1,
        "GPU still differs from the CPU reference by {diff}"
    );

    // The red box is where the template puts it, and the text drew something.
    let px = |x: usize, y: usize| &gpu.pixels[(y * 320 + x) * 4..(y * 320 + x) * 4 + 4];
    assert_eq!(px(50, 40), &[255, 0, 0, 255]);
    let text_region_changes =
        (140..200).any(|y| (20..300).any(|x| px(x, y)[0] > 240 && px(x, y)[1] > 240));
    assert!(text_region_changes, "white greeting text visible");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tiny_template("bad");
    let mut r = Renderer::new().expect("renderer");
    let out = dir.join("never.mp4");

    let err = r
        .render(&request(&dir, "xx", "Ana"), &out, &mut |_, _| {})
        .expect_err("language");
    assert!(err.to_string().contains("xx"), "{err}");

    let long = "A".repeat(50);
    let err = r
        .render(&request(&dir, "en", &long), &out, &mut |_, _| {})
        .expect_err("too long");
    let msg = err.to_string();
    assert!(msg.contains("first_name") && msg.contains("20"), "{msg}");
    assert!(
        !msg.contains(&long),
        "recipient data must not appear in errors: {msg}"
    );

    let mut req = request(&dir, "en", "Ana");
    let voice = dir.join("long-voice.wav");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=3"])
        .arg(&voice)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    req.voice = Some(voice);
    let err = r
        .render(&req, &out, &mut |_, _| {})
        .expect_err("voice too long");
    assert!(matches!(err, RenderError::VoiceTooLong { .. }), "{err}");

    // A corrupt video: the render fails naming the file, and leaves nothing behind.
    std::fs::write(dir.join("bg.mp4"), b"this is not a video").expect("corrupt");
    let err = r
        .render(&request(&dir, "en", "Ana"), &out, &mut |_, _| {})
        .expect_err("corrupt");
    assert!(err.to_string().contains("bg.mp4"), "{err}");
    assert!(!out.exists());
    assert!(!dir.join(".never.mp4.partial.mp4").exists());
}

#[test]
fn existing_output_survives_a_failed_render() {
    let dir = tiny_template("keep");
    let out = temp_dir("keep-out").join("keep.mp4");
    std::fs::write(&out, b"previous good render").expect("seed");
    let mut r = Renderer::new().expect("renderer");
    let long = "A".repeat(50);
    r.render(&request(&dir, "en", &long), &out, &mut |_, _| {})
        .expect_err("bad token");
    assert_eq!(
        std::fs::read(&out).expect("still there"),
        b"previous good render"
    );
}
