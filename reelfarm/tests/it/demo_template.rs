//! The bundled demo template: valid, and every language renders its greeting with the name
//! shaped and fitted, without missing glyphs.

use std::path::{Path, PathBuf};

use render_core::{Preset, RenderRequest, Renderer};

fn demo_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered")
}

fn recipients() -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(demo_template().join("recipients.json")).expect("recipients");
    serde_json::from_str(&text).expect("JSON array")
}

fn request(r: &serde_json::Value) -> RenderRequest {
    let tokens = r["tokens"]
        .as_object()
        .expect("tokens object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string token").to_owned()))
        .collect();
    RenderRequest {
        template_dir: demo_template(),
        lang: r["lang"].as_str().expect("lang").to_owned(),
        tokens,
        voice: None,
        preset: Preset::P720,
        range: None,
        mouth_track: None,
    }
}

#[test]
fn every_language_renders_without_warnings() {
    let bundle = template::Bundle::load(&demo_template()).expect("demo template is valid");
    let people = recipients();
    for lang in &bundle.manifest.languages {
        assert!(
            people.iter().any(|r| r["lang"] == lang.as_str()),
            "no demo recipient for `{lang}`"
        );
    }
    let mut renderer = Renderer::new().expect("renderer");
    for r in &people {
        for at in [2.0, 10.0, 26.0] {
            let (image, warnings) = renderer.still(&request(r), at).expect("still");
            assert_eq!((image.width, image.height), (1280, 720));
            assert!(warnings.is_empty(), "{} at {at} s: {warnings:?}", r["id"]);
        }
    }
}

#[test]
fn whatsapp_preset_fits_the_limit_and_profile() {
    let dir = std::env::temp_dir().join(format!("reelfarm-demo-wa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = dir.join("wa.mp4");
    let mut req = request(&recipients()[1]);
    req.preset = Preset::Whatsapp;
    // The first six seconds carry the busiest content (presenter, greeting, voice).
    req.range = Some((0.0, 6.0));
    let mut renderer = Renderer::new().expect("renderer");
    let report = renderer.render(&req, &out, &mut |_, _| {}).expect("render");
    // Scaled to a full 30 s video, the bitrate must stay under WhatsApp's 16 MB.
    let projected = report.bytes as f64 / 6.0 * 30.0;
    assert!(projected < 16e6, "projected 30 s size {projected} bytes");
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=profile,width,height",
            "-of",
            "json",
        ])
        .arg(&out)
        .output()
        .expect("ffprobe");
    let v: serde_json::Value = serde_json::from_slice(&probe.stdout).expect("JSON");
    assert_eq!(v["streams"][0]["profile"], "Main");
    assert_eq!(v["streams"][0]["width"], 1280);
}

/// The presenter's mouth box on the 1080p canvas once it has slid in (t ≥ 0.6 s): the base is
/// 560x760 anchored bottom-centre at (1500, 1080), the box 120x80 centred on base pixel (280, 400).
const MOUTH_BOX: (u32, u32, u32, u32) = (1440, 680, 120, 80);

/// Mean absolute difference between the mouth box of `frame` and atlas cell `cell`, over the
/// inner part of the box the feathered edge does not touch.
fn cell_distance(
    frame: &render_core::media::RgbaImage,
    atlas: &render_core::media::RgbaImage,
    cell: u32,
) -> f64 {
    let (x0, y0, w, h) = MOUTH_BOX;
    let (mut sum, mut n) = (0f64, 0u32);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (
                (x as f64 + 0.5) / w as f64 - 0.5,
                (y as f64 + 0.5) / h as f64 - 0.5,
            );
            if (dx * dx + dy * dy).sqrt() * 2.0 > 0.75 {
                continue;
            }
            let f = (((y0 + y) * frame.width + x0 + x) * 4) as usize;
            let a = ((y * atlas.width + cell * w + x) * 4) as usize;
            for k in 0..3 {
                sum += (f64::from(frame.pixels[f + k]) - f64::from(atlas.pixels[a + k])).abs();
            }
            n += 3;
        }
    }
    sum / f64::from(n)
}

#[test]
fn presenter_mouth_follows_the_speech_in_every_language() {
    use lipsync::Shape;
    let atlas = render_core::media::load_image(&demo_template().join("media/mouths.png"))
        .expect("mouth atlas");
    let bundle = template::Bundle::load(&demo_template()).expect("demo template");
    let voice_start = bundle
        .manifest
        .audio
        .voice
        .as_ref()
        .expect("voice slot")
        .start;
    let fps = f64::from(bundle.manifest.fps);
    let crossfade = 0.03;
    let mut renderer = Renderer::new().expect("renderer");
    for r in &recipients() {
        let mut req = request(r);
        req.preset = Preset::P1080;
        let track = renderer
            .mouth_track(&req)
            .expect("mouth track")
            .expect("the demo has a presenter");
        assert_eq!(track.method, lipsync::Method::Tts, "{}", r["id"]);
        assert!(
            track.warnings.is_empty(),
            "{}: {:?}",
            r["id"],
            track.warnings
        );
        // A frame well inside (past the cross-fade) an open-vowel cue and a lip-closure cue.
        let frame_in = |wanted: &[Shape]| -> Option<(f64, Shape)> {
            track
                .cues
                .iter()
                .filter(|c| wanted.contains(&c.shape))
                .find_map(|c| {
                    let first =
                        ((voice_start + f64::from(c.start_ms) / 1000.0 + crossfade + 0.005) * fps)
                            .ceil();
                    let t = first / fps;
                    (t - voice_start < f64::from(c.end_ms) / 1000.0 - 0.005).then_some((t, c.shape))
                })
        };
        let open =
            frame_in(&[Shape::D, Shape::C]).unwrap_or_else(|| panic!("{}: no open vowel", r["id"]));
        let closed = frame_in(&[Shape::A]).unwrap_or_else(|| panic!("{}: no lip closure", r["id"]));
        for (at, shape) in [open, closed] {
            let (image, _) = renderer.still(&req, at).expect("still");
            let distances: Vec<f64> = (0..9)
                .map(|cell| cell_distance(&image, &atlas, cell))
                .collect();
            let best = (0..9)
                .min_by(|a, b| distances[*a].total_cmp(&distances[*b]))
                .expect("nine cells");
            assert_eq!(
                Shape::ALL[best],
                shape,
                "{} at {at:.3} s: the mouth shows {:?}, the track says {shape:?} (distances {distances:?})",
                r["id"],
                Shape::ALL[best]
            );
            assert!(
                distances[best] < 6.0,
                "{} at {at:.3} s: {distances:?}",
                r["id"]
            );
        }
    }
}
