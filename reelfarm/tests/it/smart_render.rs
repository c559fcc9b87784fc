//! `reelfarm render` as a smart render: a segment cache shared by two recipients, a live
//! stream, and output bytes that do not depend on the number of encoders.

use std::path::{Path, PathBuf};

use crate::support::bin;

/// A small template, 160x120 and 3 s at 30 fps: the name shows in 0–1 s, nothing personal in
/// 1–2 s, the product in 2–3 s, and a box throughout.
const MANIFEST: &str = r##"{
  "schema_version": 1,
  "name": "cli-smart",
  "width": 160,
  "height": 120,
  "fps": 30,
  "duration": 3.0,
  "background": "#102030",
  "languages": ["en"],
  "default_language": "en",
  "tokens": {
    "first_name": {"max_length": 20, "required": true, "fallback": {"en": "there"}},
    "product": {"max_length": 20, "fallback": {"*": "your order"}}
  },
  "layers": [
    {"id": "box", "type": "solid", "color": "#ff0000", "size": {"width": 40, "height": 30},
     "transform": {"position": [10, 10]}},
    {"id": "greeting", "type": "text", "start": 0.0, "end": 1.0,
     "text": {"en": "Hi {{first_name}}!"},
     "size": {"width": 140, "height": 40}, "font_size": 20,
     "transform": {"position": [80, 70], "anchor": [0.5, 0.5]}},
    {"id": "product", "type": "text", "start": 2.0, "end": 3.0,
     "text": {"*": "{{product}}"},
     "size": {"width": 140, "height": 40}, "font_size": 20,
     "transform": {"position": [80, 70], "anchor": [0.5, 0.5]}}
  ]
}"##;

/// A fresh folder holding the template (in `template/`).
fn setup(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reelfarm-smart-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("template")).expect("temp dir");
    std::fs::write(dir.join("template/template.json"), MANIFEST).expect("manifest");
    dir
}

/// Renders `first_name` (product: Shoes) into `out` with `extra` arguments; returns stdout.
fn render(dir: &Path, first_name: &str, out: &Path, extra: &[&str]) -> String {
    let tokens = dir.join(format!("{first_name}.json"));
    std::fs::write(
        &tokens,
        format!(r#"{{"first_name": "{first_name}", "product": "Shoes"}}"#),
    )
    .expect("tokens");
    let output = bin()
        .arg("render")
        .arg("--template")
        .arg(dir.join("template"))
        .arg("--tokens")
        .arg(&tokens)
        .args(["--lang", "en", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("run reelfarm");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "render failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The line of `stdout` that starts with `prefix`.
fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
}

#[test]
fn second_recipient_takes_the_shared_segments_from_the_cache() {
    let dir = setup("cache");
    let cache = dir.join("cache");
    let c = cache.to_str().expect("utf-8 path");
    let stream = dir.join("stream");
    let s = stream.to_str().expect("utf-8 path");
    let (ana, bob) = (dir.join("ana.mp4"), dir.join("bob.mp4"));

    let first = render(
        &dir,
        "Ana",
        &ana,
        &["--cache", c, "--cache-limit", "100MB", "--stream", s],
    );
    assert!(
        line(&first, "segments:").starts_with("segments: 3 (0 cached, 3 rendered)"),
        "{first}"
    );
    assert!(line(&first, "cache ").contains(": 0 hits"), "{first}");
    // The segments' tokens: the name, none, the product.
    let tokens: Vec<&str> = first
        .lines()
        .skip_while(|l| !l.starts_with("segments:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect();
    assert_eq!(tokens.len(), 3, "{first}");
    assert!(tokens[0].contains("first_name"), "{first}");
    assert!(tokens[1].contains("no token"), "{first}");
    assert!(tokens[2].contains("product"), "{first}");
    assert!(
        line(&first, "stream: first playable segment after").contains("index.m3u8"),
        "{first}"
    );
    let playlist = std::fs::read_to_string(stream.join("index.m3u8")).expect("playlist");
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");

    let second = render(&dir, "Bob", &bob, &["--cache", c]);
    assert!(
        line(&second, "segments:").starts_with("segments: 3 (2 cached, 1 rendered)"),
        "{second}"
    );
    assert!(
        line(&second, "cache ").contains(": 2 hits (2 local, 0 shared), 1 misses"),
        "{second}"
    );
    for out in [&ana, &bob] {
        let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", out.display());
    }
}

#[test]
fn the_number_of_encoders_does_not_change_the_bytes() {
    let dir = setup("encoders");
    let (one, three) = (dir.join("one.mp4"), dir.join("three.mp4"));
    let out = render(&dir, "Ana", &one, &["--encoders", "1"]);
    assert!(line(&out, "segments:").contains("on 1 encoder"), "{out}");
    let out = render(&dir, "Ana", &three, &["--encoders", "3"]);
    assert!(line(&out, "segments:").contains("on 3 encoders"), "{out}");
    let (a, b) = (
        std::fs::read(&one).expect("one"),
        std::fs::read(&three).expect("three"),
    );
    assert!(!a.is_empty());
    assert!(a == b, "1 and 3 encoders gave different files");
}

#[test]
fn one_encoder_render_takes_no_smart_flags() {
    let dir = setup("one-encoder");
    let out = render(&dir, "Ana", &dir.join("ref.mp4"), &["--one-encoder"]);
    assert!(!out.contains("segments:"), "{out}");
    let output = bin()
        .arg("render")
        .arg("--template")
        .arg(dir.join("template"))
        .args(["--lang", "en", "--one-encoder", "--encoders", "2", "--out"])
        .arg(dir.join("x.mp4"))
        .output()
        .expect("run reelfarm");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--encoders"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
