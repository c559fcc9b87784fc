//! Smart render: the output does not depend on the cache or the number of encoders; damaged
//! cache entries are rendered again; concurrent renders agree; the live stream plays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use render_core::segments::{EncoderPool, SegmentCache};
use render_core::{Preset, RenderRequest, Renderer, SmartRender, StreamOutput};

use crate::support::{ffprobe, mp4_boxes, tiny_template};

/// The small template with 4 s and two more token texts: segment 0–1 s shows the name,
/// 2–3 s the product, 3–4 s no token.
fn smart_template(name: &str) -> PathBuf {
    let dir = tiny_template(name);
    let manifest = std::fs::read_to_string(dir.join("template.json")).expect("manifest");
    let mut doc: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    doc["duration"] = 4.0.into();
    doc["tokens"]["product"] =
        serde_json::json!({"max_length": 20, "fallback": {"*": "your order"}});
    let layers = doc["layers"].as_array_mut().expect("layers");
    layers[3]["end"] = 1.0.into();
    layers.push(serde_json::json!({
        "id": "product", "type": "text", "start": 2.0, "end": 3.0,
        "text": {"*": "{{product}} is here"},
        "size": {"width": 280, "height": 60}, "font_size": 32,
        "transform": {"position": [160, 120], "anchor": [0.5, 0.5]}
    }));
    layers.push(serde_json::json!({
        "id": "thanks", "type": "text", "start": 3.0,
        "text": {"*": "Thank you"},
        "size": {"width": 280, "height": 60}, "font_size": 32,
        "transform": {"position": [160, 60], "anchor": [0.5, 0.5]}
    }));
    std::fs::write(dir.join("template.json"), doc.to_string()).expect("write");
    dir
}

fn request(dir: &Path, name: &str, product: &str) -> RenderRequest {
    RenderRequest {
        template_dir: dir.to_owned(),
        lang: "en".to_owned(),
        tokens: BTreeMap::from([
            ("first_name".to_owned(), name.to_owned()),
            ("product".to_owned(), product.to_owned()),
        ]),
        voice: None,
        preset: Preset::P1080,
        range: None,
        mouth_track: None,
    }
}

fn smart(
    r: &mut Renderer,
    req: &RenderRequest,
    out: &Path,
    cache: Option<&SegmentCache>,
    encoders: usize,
) -> render_core::RenderReport {
    let pool = EncoderPool::new(encoders);
    r.render_smart(
        req,
        out,
        SmartRender {
            cache,
            pool: &pool,
            stream: None,
        },
        &mut |_, _| std::ops::ControlFlow::Continue(()),
    )
    .expect("smart render")
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).expect("read output")
}

#[test]
fn output_is_the_same_whatever_the_cache_and_the_encoders() {
    let dir = smart_template("smart-same");
    let mut r = Renderer::new().expect("renderer");
    let ana = request(&dir, "Ana", "Shoes");

    let cold1 = smart(&mut r, &ana, &dir.join("cold1.mp4"), None, 1);
    let cold = read(&dir.join("cold1.mp4"));
    let seg = cold1.segments.expect("a segment report");
    assert_eq!((seg.total, seg.cached), (4, 0));
    let tokens: Vec<Vec<&str>> = seg
        .segments
        .iter()
        .map(|(_, t, _)| t.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        tokens,
        [vec!["first_name"], vec![], vec!["product"], vec![]],
        "the tokens each segment depends on"
    );

    smart(&mut r, &ana, &dir.join("cold4.mp4"), None, 4);
    assert!(
        read(&dir.join("cold4.mp4")) == cold,
        "4 encoders gave other bytes than 1"
    );

    // Another recipient with the same product fills the cache; Ana then finds the
    // segments that do not show her name.
    let cache_dir = dir.join("cache");
    let cache = SegmentCache::open(&cache_dir, 1 << 30).expect("cache");
    smart(
        &mut r,
        &request(&dir, "Bob", "Shoes"),
        &dir.join("bob.mp4"),
        Some(&cache),
        2,
    );
    let partly = smart(&mut r, &ana, &dir.join("partly.mp4"), Some(&cache), 2);
    assert_eq!(partly.segments.expect("report").cached, 3);
    assert!(
        read(&dir.join("partly.mp4")) == cold,
        "a partly warm cache changed the bytes"
    );

    let warm = smart(&mut r, &ana, &dir.join("warm.mp4"), Some(&cache), 3);
    assert_eq!(warm.segments.expect("report").cached, 4);
    assert!(
        read(&dir.join("warm.mp4")) == cold,
        "a warm cache changed the bytes"
    );

    // Another product: the product segment is rendered, the rest is shared.
    let other = smart(
        &mut r,
        &request(&dir, "Ana", "Socks"),
        &dir.join("socks.mp4"),
        Some(&cache),
        2,
    );
    assert_eq!(other.segments.expect("report").cached, 3);
    assert!(read(&dir.join("socks.mp4")) != cold);

    // A damaged entry is a miss: rendered again, the output unchanged.
    let mut damaged = 0;
    for entry in std::fs::read_dir(&cache_dir).expect("cache dir") {
        let path = entry.expect("entry").path();
        let mut bytes = read(&path);
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&path, bytes).expect("damage");
        damaged += 1;
    }
    assert!(damaged >= 5);
    let before = cache.stats();
    let again = smart(&mut r, &ana, &dir.join("again.mp4"), Some(&cache), 2);
    assert_eq!(again.segments.expect("report").cached, 0);
    assert!(
        read(&dir.join("again.mp4")) == cold,
        "re-rendered segments differ"
    );
    let after = cache.stats();
    assert_eq!(after.corrupt - before.corrupt, 4);
    // ... and the cache holds good entries again.
    let fixed = smart(&mut r, &ana, &dir.join("fixed.mp4"), Some(&cache), 2);
    assert_eq!(fixed.segments.expect("report").cached, 4);
    assert!(read(&dir.join("fixed.mp4")) == cold);
}

#[test]
fn concurrent_renders_filling_the_same_segments_agree() {
    let dir = smart_template("smart-concurrent");
    let mut r = Renderer::new().expect("renderer");
    let names = ["Ana", "Bob", "Cy"];
    let mut cold = Vec::new();
    for name in names {
        let out = dir.join(format!("cold-{name}.mp4"));
        smart(&mut r, &request(&dir, name, "Shoes"), &out, None, 1);
        cold.push(read(&out));
    }
    drop(r);
    let cache = SegmentCache::open(&dir.join("cache"), 1 << 30).expect("cache");
    let pool = EncoderPool::new(2);
    let outputs = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for name in names {
            let (dir, cache, pool, outputs) = (&dir, &cache, &pool, &outputs);
            s.spawn(move || {
                let mut r = Renderer::new().expect("renderer");
                let out = dir.join(format!("warm-{name}.mp4"));
                r.render_smart(
                    &request(dir, name, "Shoes"),
                    &out,
                    SmartRender {
                        cache: Some(cache),
                        pool,
                        stream: None,
                    },
                    &mut |_, _| std::ops::ControlFlow::Continue(()),
                )
                .expect("concurrent render");
                outputs.lock().expect("lock").push((name, read(&out)));
            });
        }
    });
    for (name, bytes) in outputs.into_inner().expect("outputs") {
        let i = names.iter().position(|n| *n == name).expect("name");
        assert!(
            bytes == cold[i],
            "{name}'s concurrent render differs from its lone render"
        );
    }
    // Whatever order they finished in, every shared entry reads back as the one segment.
    let mut r = Renderer::new().expect("renderer");
    let last = smart(
        &mut r,
        &request(&dir, "Ana", "Shoes"),
        &dir.join("last.mp4"),
        Some(&cache),
        1,
    );
    assert_eq!(last.segments.expect("report").cached, 4);
    assert!(read(&dir.join("last.mp4")) == cold[0]);
}

fn ffmpeg_ok(args: &[&str]) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats"])
        .args(args)
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffmpeg {args:?} failed: {err}");
    err
}

#[test]
fn smart_output_passes_media_checks_and_streams_while_rendering() {
    let dir = smart_template("smart-media");
    let mut r = Renderer::new().expect("renderer");
    let req = request(&dir, "Ana", "Shoes");
    let whole = dir.join("whole.mp4");
    r.render(&req, &whole, &mut |_, _| {})
        .expect("one-encoder render");

    let stream_dir = dir.join("stream");
    std::fs::create_dir_all(&stream_dir).expect("stream dir");
    let published = Mutex::new(Vec::new());
    let note = |name: &str, path: &Path| {
        assert!(path.exists(), "{name} published before it was written");
        published.lock().expect("lock").push(name.to_owned());
    };
    let pool = EncoderPool::new(2);
    let out = dir.join("smart.mp4");
    let report = r
        .render_smart(
            &req,
            &out,
            SmartRender {
                cache: None,
                pool: &pool,
                stream: Some(StreamOutput {
                    dir: &stream_dir,
                    published: &note,
                }),
            },
            &mut |_, _| std::ops::ControlFlow::Continue(()),
        )
        .expect("smart render");
    assert!(report.segments.expect("report").first_playable.is_some());

    // The MP4: H.264 High yuv420p, AAC-LC 48 kHz, 120 frames at 30 fps, index first.
    let probe = ffprobe(&out);
    let streams = probe["streams"].as_array().expect("streams");
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("audio");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["profile"], "High");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["nb_frames"], "120");
    assert_eq!(video["avg_frame_rate"], "30/1");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["profile"], "LC");
    assert_eq!(audio["sample_rate"], "48000");
    let boxes = mp4_boxes(&out);
    let pos = |b: &str| boxes.iter().position(|x| x == b).expect("box");
    assert!(pos("moov") < pos("mdat"), "fast start: {boxes:?}");
    let p = out.to_string_lossy();
    ffmpeg_ok(&["-xerror", "-v", "error", "-i", &p, "-f", "null", "-"]);

    // No seam: PSNR against the one-encoder render of the same inputs.
    let w = whole.to_string_lossy();
    let log = ffmpeg_ok(&[
        "-i",
        &p,
        "-i",
        &w,
        "-lavfi",
        "[0:v][1:v]psnr=stats_file=-",
        "-f",
        "null",
        "-",
    ]);
    let average: f64 = log
        .split("average:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::INFINITY);
    assert!(
        average >= 40.0,
        "PSNR {average} dB against the one-encoder render"
    );

    // The stream: every segment published before the playlist naming it; it plays.
    let names = published.into_inner().expect("names");
    assert_eq!(names.iter().filter(|n| n.ends_with(".ts")).count(), 4);
    assert_eq!(names.last().map(String::as_str), Some("index.m3u8"));
    let first_playlist = names
        .iter()
        .position(|n| n == "index.m3u8")
        .expect("playlist");
    assert!(names[..first_playlist].contains(&"seg-00000.ts".to_owned()));
    let playlist = std::fs::read_to_string(stream_dir.join("index.m3u8")).expect("playlist");
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    let m3u8 = stream_dir.join("index.m3u8");
    ffmpeg_ok(&[
        "-xerror",
        "-v",
        "error",
        "-i",
        &m3u8.to_string_lossy(),
        "-f",
        "null",
        "-",
    ]);
    // The stream holds every frame.
    let count = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&m3u8)
        .output()
        .expect("ffprobe");
    let count = String::from_utf8_lossy(&count.stdout).into_owned();
    assert_eq!(count.split_whitespace().next(), Some("120"), "{count}");
}

#[test]
fn cancelled_smart_render_leaves_no_file_and_no_partial_segment() {
    let dir = smart_template("smart-cancel");
    let mut r = Renderer::new().expect("renderer");
    let cache = SegmentCache::open(&dir.join("cache"), 1 << 30).expect("cache");
    let pool = EncoderPool::new(1);
    let out = dir.join("out.mp4");
    let err = r
        .render_smart(
            &request(&dir, "Ana", "Shoes"),
            &out,
            SmartRender {
                cache: Some(&cache),
                pool: &pool,
                stream: None,
            },
            &mut |done, _| {
                if done >= 45 {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            },
        )
        .expect_err("cancelled");
    assert!(matches!(err, render_core::RenderError::Cancelled), "{err}");
    assert!(!out.exists());
    // Only whole segments are kept: at most the first one finished.
    assert!(cache.stats().entries <= 1, "{:?}", cache.stats());
}
