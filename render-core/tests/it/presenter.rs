//! Presenter layers: the mouth atlas cell of the voice's shape is composited on the GPU into
//! the feathered mouth box, cross-faded between shapes; voices from a file or the built-in
//! voice drive it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lipsync::{
    Cue, Engine, LipsyncError, Method, Phone, Shape, Synthesis, Track, VoiceParams, VoiceProvider,
};
use render_core::cpu;
use render_core::scene::Scene;
use render_core::text::TextEngine;
use render_core::{Preset, RenderError, RenderRequest, Renderer};

use crate::support::temp_dir;

/// Canvas colour (opaque).
const BACKGROUND: [u8; 3] = [0x10, 0x20, 0x30];
/// The base image's flat colour.
const BASE: [u8; 3] = [20, 40, 200];
/// Mouth cell colours in atlas order A, B, C, D, E, F, G, H, X.
const CELLS: [[u8; 3]; 9] = [
    [30, 220, 40],
    [200, 200, 0],
    [0, 200, 200],
    [250, 30, 30],
    [120, 0, 120],
    [255, 128, 0],
    [128, 128, 128],
    [0, 90, 0],
    [250, 250, 250],
];
/// Canvas pixel at the centre of the mouth box: base drawn at (80, 60), box centred at (80, 60)
/// of the base.
const CENTRE: (usize, usize) = (160, 120);

/// A 320x240 template at 10 fps whose only layer is a presenter over a flat 160x120 base, with
/// a 60x30 mouth box (feather 0.2, cross-fade 0.2 s) and a voice slot starting at 0.2 s.
/// `voice` is extra JSON for the voice slot.
fn presenter_template(name: &str, voice: &str) -> PathBuf {
    let dir = temp_dir(name);
    let manifest = format!(
        r##"{{
  "schema_version": 1,
  "name": "presenter",
  "width": 320,
  "height": 240,
  "fps": 10,
  "duration": 2.0,
  "background": "#102030",
  "languages": ["en", "hi"],
  "default_language": "en",
  "tokens": {{"first_name": {{"max_length": 20, "fallback": {{"*": "there"}}}}}},
  "layers": [
    {{"id": "host", "type": "presenter", "src": "face.png",
      "transform": {{"position": [80, 60]}},
      "mouths": {{"src": "mouths.png", "columns": 3, "rows": 3}},
      "mouth": {{"position": [80, 60], "size": {{"width": 60, "height": 30}},
                 "feather": 0.2, "crossfade": 0.2}}}}
  ],
  "audio": {{"voice": {{"start": 0.2, "max_duration": 1.5{voice}}}}}
}}"##
    );
    std::fs::write(dir.join("template.json"), manifest).expect("write manifest");
    let base =
        image::RgbaImage::from_pixel(160, 120, image::Rgba([BASE[0], BASE[1], BASE[2], 255]));
    base.save(dir.join("face.png")).expect("write base");
    // A 3x3 grid of 40x20 cells, one flat colour per shape, in the default order.
    let mut mouths = image::RgbaImage::new(120, 60);
    for (x, y, px) in mouths.enumerate_pixels_mut() {
        let c = CELLS[(y / 20 * 3 + x / 40) as usize];
        *px = image::Rgba([c[0], c[1], c[2], 255]);
    }
    mouths.save(dir.join("mouths.png")).expect("write mouths");
    dir
}

fn request(dir: &Path, lang: &str) -> RenderRequest {
    RenderRequest {
        template_dir: dir.to_owned(),
        lang: lang.to_owned(),
        tokens: BTreeMap::from([("first_name".to_owned(), "Ana".to_owned())]),
        voice: None,
        preset: Preset::P1080,
        range: None,
        mouth_track: None,
    }
}

/// X, then D from 500 ms, A from 1000 ms, X from 1500 ms (voice time).
fn track() -> Track {
    let cue = |start_ms, end_ms, shape| Cue {
        start_ms,
        end_ms,
        shape,
    };
    Track::from_cues(
        vec![cue(500, 1000, Shape::D), cue(1000, 1500, Shape::A)],
        1600.0,
        Method::Acoustic,
    )
}

fn px(img: &render_core::media::RgbaImage, (x, y): (usize, usize)) -> [u8; 3] {
    let i = (y * img.width as usize + x) * 4;
    [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
}

fn assert_near(got: [u8; 3], expect: [f64; 3], tol: f64, what: &str) {
    let ok = (0..3).all(|k| (f64::from(got[k]) - expect[k]).abs() <= tol);
    assert!(ok, "{what}: got {got:?}, expected {expect:?} ± {tol}");
}

fn colour(c: [u8; 3]) -> [f64; 3] {
    c.map(f64::from)
}

fn mix(a: [u8; 3], b: [u8; 3], k: f64) -> [f64; 3] {
    [0, 1, 2].map(|i| f64::from(a[i]) * (1.0 - k) + f64::from(b[i]) * k)
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[test]
fn mouth_cells_follow_the_track_with_feather_and_crossfade() {
    let dir = presenter_template("presenter-still", "");
    let mut r = Renderer::new().expect("renderer");
    let mut req = request(&dir, "en");
    req.mouth_track = Some(track());

    // 1.0 s is 800 ms into the voice: D, 300 ms after its start (past the 200 ms cross-fade).
    let (img, warnings) = r.still(&req, 1.0).expect("still");
    assert!(
        !warnings.iter().any(|w| w.contains("rests")),
        "an injected track needs no voice: {warnings:?}"
    );
    assert_near(px(&img, CENTRE), colour(CELLS[3]), 1.0, "centre at D");
    // Outside the box, and inside its rectangle but outside the ellipse: the base.
    assert_near(
        px(&img, (100, 70)),
        colour(BASE),
        1.0,
        "base away from the mouth",
    );
    assert_near(
        px(&img, (CENTRE.0 + 28, CENTRE.1 + 13)),
        colour(BASE),
        1.0,
        "box corner",
    );
    assert_near(
        px(&img, (10, 10)),
        colour(BACKGROUND),
        1.0,
        "canvas background",
    );
    // On the horizontal axis at 0.82 of the half-width: inside the feather (0.6..1).
    let d: f64 = 24.5 / 30.0;
    let dy: f64 = 0.5 / 15.0;
    let mask = 1.0 - smoothstep(0.6, 1.0, (d * d + dy * dy).sqrt());
    assert!((0.2..0.8).contains(&mask), "{mask}");
    assert_near(
        px(&img, (CENTRE.0 + 24, CENTRE.1)),
        mix(BASE, CELLS[3], mask),
        2.0,
        "feathered edge between base and D",
    );

    // 1.4 s is 1200 ms: A, 200 ms after its start.
    let (img, _) = r.still(&req, 1.4).expect("still");
    assert_near(px(&img, CENTRE), colour(CELLS[0]), 1.0, "centre at A");

    // 1.3 s is 1100 ms: half-way through the cross-fade from D to A.
    let (img, _) = r.still(&req, 1.3).expect("still");
    assert_near(
        px(&img, CENTRE),
        mix(CELLS[3], CELLS[0], 0.5),
        1.5,
        "cross-fade D → A",
    );

    // Before the voice starts the mouth rests: X.
    let (img, _) = r.still(&req, 0.1).expect("still");
    assert_near(
        px(&img, CENTRE),
        colour(CELLS[8]),
        1.0,
        "rest before the voice",
    );
}

#[test]
fn presenter_frame_matches_the_cpu_reference_and_counts_layers() {
    let dir = presenter_template("presenter-cpu", "");
    let mut req = request(&dir, "en");
    req.mouth_track = Some(track());
    let mut r = Renderer::new().expect("renderer");

    let bundle = template::Bundle::load(&dir).expect("bundle");
    let tokens = template::resolve_tokens(&bundle.manifest, "en", &req.tokens).expect("tokens");
    let timeline = template::resolve(&bundle.manifest, "en", &tokens).expect("timeline");
    let mut text = TextEngine::new();
    let mut scene = Scene::build(&bundle, &timeline, &mut text, 320, 240).expect("scene");
    assert_eq!(scene.voice_start, 0.2);
    scene.mouth_track = Some(track());

    let mut layers = Vec::new();
    scene.frame_layers(&timeline, 1.0, &mut layers);
    assert_eq!(layers.len(), 2, "base and one settled mouth");
    assert_eq!(layers[0].feather, 0.0, "the base has no mask");
    assert!((layers[1].feather - 0.2).abs() < 1e-6);
    scene.frame_layers(&timeline, 1.3, &mut layers);
    assert_eq!(layers.len(), 3, "base and two mouths mid-cross-fade");
    assert!((layers[2].row0[3] - 0.5).abs() < 1e-3, "{:?}", layers[2]);

    let frame = shaders::FrameUniforms {
        width: 320,
        height: 240,
        layer_count: layers.len() as u32,
        tiles_x: 0,
        background: scene.background,
    };
    let expected =
        cpu::words_to_bytes(&cpu::composite(&frame, &layers, &scene.atlas, &scene.video));
    let (gpu, _) = r.still(&req, 1.3).expect("still");
    let diff = gpu
        .pixels
        .iter()
        .zip(&expected)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    assert!(
        diff <= 1,
        "GPU presenter frame differs from the CPU reference by {diff}"
    );
}

#[test]
fn rotated_and_scaled_mouth_box() {
    let dir = presenter_template("presenter-rotated", "");
    let manifest = std::fs::read_to_string(dir.join("template.json")).expect("read");
    let manifest = manifest.replace(
        r#""feather": 0.2"#,
        r#""feather": 0.2, "rotation": 90, "scale": 0.5"#,
    );
    std::fs::write(dir.join("template.json"), manifest).expect("write");
    let mut r = Renderer::new().expect("renderer");
    let mut req = request(&dir, "en");
    req.mouth_track = Some(track());
    let (img, _) = r.still(&req, 1.0).expect("still");
    // Scaled by 0.5 and turned upright, the ellipse's half-axes are 7.5 across and 15 down.
    assert_near(px(&img, CENTRE), colour(CELLS[3]), 1.0, "centre");
    assert_near(
        px(&img, (CENTRE.0, CENTRE.1 + 7)),
        colour(CELLS[3]),
        1.0,
        "down the long axis",
    );
    assert_near(
        px(&img, (CENTRE.0 + 12, CENTRE.1)),
        colour(BASE),
        1.0,
        "past the short axis",
    );
}

/// Speaks a 440 Hz tone of `seconds` at 22,050 Hz for any text in English; fails for others.
struct FakeVoice {
    seconds: f64,
}

impl VoiceProvider for FakeVoice {
    fn name(&self) -> &str {
        "fake"
    }

    fn supports(&self, lang: &str) -> bool {
        lang == "en"
    }

    fn synthesize(
        &self,
        text: &str,
        lang: &str,
        _params: &VoiceParams,
    ) -> Result<Synthesis, LipsyncError> {
        if lang != "en" {
            return Err(LipsyncError::UnsupportedLanguage {
                lang: lang.to_owned(),
                supported: "en".to_owned(),
            });
        }
        assert_eq!(
            text, "Hello Ana!",
            "the script is spoken with tokens filled in"
        );
        let n = (self.seconds * 22_050.0) as usize;
        let samples = (0..n)
            .map(|i| (0.3 * (std::f64::consts::TAU * 440.0 * i as f64 / 22_050.0).sin()) as f32)
            .collect();
        let ms = self.seconds * 1000.0;
        Ok(Synthesis {
            samples,
            sample_rate: 22_050,
            phones: vec![
                Phone {
                    start_ms: 0.0,
                    end_ms: ms / 2.0,
                    ipa: "a".to_owned(),
                },
                Phone {
                    start_ms: ms / 2.0,
                    end_ms: ms,
                    ipa: "m".to_owned(),
                },
            ],
        })
    }
}

fn fake_engine(seconds: f64) -> Engine {
    Engine::new(Some(
        Arc::new(FakeVoice { seconds }) as Arc<dyn VoiceProvider>
    ))
}

const TTS: &str = r#", "script": {"*": "Hello {{first_name}}!"},
    "tts": {"provider": "espeak", "variant": "f3", "rate": 170}"#;

#[test]
fn built_in_voice_speaks_the_script_into_the_mix() {
    let dir = presenter_template("presenter-tts", TTS);
    let mut r = Renderer::new()
        .expect("renderer")
        .with_lipsync_engine(fake_engine(1.0));
    let out = dir.join("tts.mp4");
    let report = r
        .render(&request(&dir, "en"), &out, &mut |_, _| {})
        .expect("render with the built-in voice");
    assert_eq!(report.frames, 20);
    assert!(
        !report.warnings.iter().any(|w| w.contains("rests")),
        "{:?}",
        report.warnings
    );
    assert!(
        !report.warnings.iter().any(|w| w.contains("silent")),
        "the spoken voice is in the mix: {:?}",
        report.warnings
    );

    // Longer than the slot's 1.5 s: a clear error with the seconds.
    r.set_lipsync_engine(fake_engine(2.5));
    let err = r
        .render(&request(&dir, "en"), &dir.join("long.mp4"), &mut |_, _| {})
        .expect_err("spoken script too long");
    assert!(matches!(err, RenderError::ScriptTooLong { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("2.50 s") && msg.contains("1.50 s"), "{msg}");

    // A language the voice does not speak fails the render, naming the slot.
    r.set_lipsync_engine(fake_engine(1.0));
    let err = r
        .still(&request(&dir, "hi"), 1.0)
        .expect_err("unsupported language");
    assert!(matches!(err, RenderError::Speech { .. }), "{err}");
    assert!(err.to_string().contains("audio.voice.tts"), "{err}");

    // Without the helper, a TTS-only voice cannot be spoken.
    r.set_lipsync_engine(Engine::new(None));
    let err = r.still(&request(&dir, "en"), 1.0).expect_err("no helper");
    assert!(
        matches!(
            err,
            RenderError::Speech {
                error: LipsyncError::NoVoice,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn voice_file_is_analysed_without_a_helper() {
    let dir = presenter_template(
        "presenter-file",
        r#", "default": {"*": "voice.wav"}, "script": {"*": "Hello {{first_name}}!"},
    "tts": {"provider": "espeak"}"#,
    );
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=300:sample_rate=22050:duration=1")
        .arg(dir.join("voice.wav"))
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    // No helper: the file voice is analysed from its audio alone.
    let mut r = Renderer::new()
        .expect("renderer")
        .with_lipsync_engine(Engine::new(None));
    let out = dir.join("file.mp4");
    let report = r
        .render(&request(&dir, "en"), &out, &mut |_, _| {})
        .expect("render with a file voice");
    assert_eq!(report.frames, 20);
    assert!(
        !report.warnings.iter().any(|w| w.contains("rests")),
        "{:?}",
        report.warnings
    );
    let (_, warnings) = r.still(&request(&dir, "en"), 1.0).expect("still");
    assert!(
        !warnings.iter().any(|w| w.contains("rests")),
        "{warnings:?}"
    );
}

#[test]
fn no_voice_rests_the_mouth_with_a_warning() {
    let dir = presenter_template("presenter-silent", "");
    let mut r = Renderer::new().expect("renderer");
    let (img, warnings) = r.still(&request(&dir, "en"), 1.0).expect("still");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("presenter layer `host`") && w.contains("rests")),
        "{warnings:?}"
    );
    assert_near(px(&img, CENTRE), colour(CELLS[8]), 1.0, "resting mouth X");
}
