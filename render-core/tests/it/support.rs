//! Shared fixtures: a small template bundle made on the fly, and ffprobe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh empty folder under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "reelfarm-it-{}-{}-{}",
        name,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg CLI is installed (scripts/setup)");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

/// The manifest of the small test template: 320x240, 2 s at 30 fps, one layer of each kind.
pub const MANIFEST: &str = r##"{
  "schema_version": 1,
  "name": "tiny",
  "width": 320,
  "height": 240,
  "fps": 30,
  "duration": 2.0,
  "background": "#102030",
  "languages": ["en", "hi"],
  "default_language": "en",
  "tokens": {
    "first_name": {"max_length": 20, "required": true, "fallback": {"en": "there", "hi": "दोस्त"}}
  },
  "layers": [
    {"id": "bg", "type": "video", "src": "bg.mp4", "loop": true, "size": {"width": 320, "height": 240}},
    {"id": "box", "type": "solid", "color": "#ff0000", "size": {"width": 60, "height": 40},
     "transform": {"position": [20, 20]}},
    {"id": "logo", "type": "image", "src": "logo.png",
     "transform": {"position": [300, 20], "anchor": [1, 0]},
     "opacity": [{"t": 0, "value": 0}, {"t": 0.5, "value": 1}]},
    {"id": "greeting", "type": "text", "start": 0.2, "end": 1.8,
     "text": {"en": "Hi {{first_name}}!", "hi": "नमस्ते {{first_name}}!"},
     "size": {"width": 280, "height": 80}, "font_size": 40, "bold": true,
     "transform": {"position": [160, 170], "anchor": [0.5, 0.5]}}
  ],
  "audio": {
    "music": {"src": "music.wav", "gain_db": -6},
    "voice": {"start": 0.3, "max_duration": 1.5, "default": {"*": "voice.wav"}},
    "loudness_lufs": -16
  }
}"##;

/// Writes the test template into a fresh folder and returns it.
pub fn tiny_template(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("template.json"), MANIFEST).expect("write manifest");
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-t",
        "1",
        "-pix_fmt",
        "yuv420p",
        &p("bg.mp4"),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=220:sample_rate=44100:duration=3",
        "-ac",
        "2",
        &p("music.wav"),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=660:sample_rate=22050:duration=1",
        &p("voice.wav"),
    ]);
    // A 32x32 logo: opaque green disc with a transparent surround.
    let mut logo = image::RgbaImage::new(32, 32);
    for (x, y, px) in logo.enumerate_pixels_mut() {
        let d = ((x as f32 - 15.5).powi(2) + (y as f32 - 15.5).powi(2)).sqrt();
        *px = if d < 14.0 {
            image::Rgba([0, 200, 0, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        };
    }
    logo.save(dir.join("logo.png")).expect("write logo");
    dir
}

/// ffprobe's JSON for a file.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed (scripts/setup)");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Top-level MP4 box types in file order.
pub fn mp4_boxes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read mp4");
    let mut boxes = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let size = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        boxes.push(String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned());
        let size = if size == 1 {
            u64::from_be_bytes(bytes[pos + 8..pos + 16].try_into().expect("8 bytes")) as usize
        } else {
            size
        };
        if size < 8 {
            break;
        }
        pos += size;
    }
    boxes
}
