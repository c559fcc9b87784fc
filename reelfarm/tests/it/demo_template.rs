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
