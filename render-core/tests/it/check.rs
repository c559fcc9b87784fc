//! Deep checks on the bundled `order-delivered` template and on broken copies of it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use render_core::check::{deep_check, CheckOptions, DeepReport};
use template::Bundle;

use crate::support::temp_dir;

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn run(dir: &Path) -> DeepReport {
    let bundle = Bundle::load(dir).expect("bundle loads");
    let t = Instant::now();
    let report = deep_check(&bundle, &CheckOptions::default());
    eprintln!("deep check of {} took {:?}", dir.display(), t.elapsed());
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    report
}

#[test]
fn bundled_template_passes() {
    let report = run(&bundled());
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
}

/// A copy of the bundled template in a temp folder, with `edit` applied to its manifest.
fn broken_copy(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let dir = temp_dir(name);
    copy_dir(&bundled(), &dir);
    let file = dir.join("template.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read manifest")).expect("JSON");
    edit(&mut manifest);
    std::fs::write(&file, serde_json::to_vec_pretty(&manifest).expect("JSON")).expect("write");
    dir
}

#[test]
fn truncated_video_is_an_error_naming_the_layer_and_file() {
    let dir = broken_copy("corrupt", |_| {});
    let video = dir.join("media/background.mp4");
    let bytes = std::fs::read(&video).expect("read video");
    std::fs::write(&video, &bytes[..bytes.len() * 2 / 5]).expect("truncate video");
    let report = run(&dir);
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    let e = &report.errors[0];
    assert_eq!(e.path, "layers[0] (`background`).src");
    assert!(e.message.contains("`media/background.mp4`"), "{e}");

    // Garbage over the middle of the file instead: damaged, also refused.
    let dir = broken_copy("corrupt", |_| {});
    let video = dir.join("media/background.mp4");
    let mut bytes = std::fs::read(&video).expect("read video");
    let n = bytes.len();
    for (i, b) in bytes[n / 3..n * 2 / 3].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    std::fs::write(&video, &bytes).expect("damage video");
    let report = run(&dir);
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].path, "layers[0] (`background`).src");
}

#[test]
fn voice_slot_too_short_for_the_longest_name() {
    let dir = broken_copy("voice", |m| {
        m["audio"]["voice"]["max_duration"] = serde_json::json!(4.0);
    });
    let report = run(&dir);
    assert!(!report.errors.is_empty());
    for e in &report.errors {
        assert!(e.path.starts_with("audio.voice.script["), "{e}");
        assert!(
            e.message
                .contains("with the longest `first_name` (40 characters, spoken "),
            "{e}"
        );
        assert!(e.message.contains("at most 4.00 s"), "{e}");
    }
    let tamil: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.path == "audio.voice.script[\"ta\"]")
        .collect();
    assert_eq!(tamil.len(), 1, "{:#?}", report.errors);
    assert!(
        tamil[0].message.starts_with(
            "spoken in `ta` with the longest `first_name` (40 characters, spoken Tamil syllables) \
             the script lasts "
        ),
        "{}",
        tamil[0]
    );
}

#[test]
fn three_line_tamil_headline_overflows_for_the_longest_name() {
    let dir = broken_copy("tamil", |m| {
        let layer = &mut m["layers"][4];
        assert_eq!(layer["id"], "greeting");
        layer["text"]["ta"] = "வணக்கம்\n{{first_name}}!\nஉங்கள் ஆர்டர் வந்துவிட்டது.".into();
        layer["min_font_size"] = serde_json::json!(40);
    });
    let report = run(&dir);
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    let e = &report.errors[0];
    assert_eq!(e.path, "layers[4] (`greeting`)");
    assert!(
        e.message.starts_with(
            "text overflows in `ta` with the longest `first_name` (40 characters, widest Tamil \
             letters): text shrunk to "
        ),
        "{e}"
    );
    assert!(e.message.contains("below min_font_size 40 px"), "{e}");
}

#[test]
fn unused_token_and_off_canvas_layer_are_warnings() {
    let dir = broken_copy("warnings", |m| {
        m["tokens"]["coupon"] = serde_json::json!({"max_length": 8});
        assert_eq!(m["layers"][1]["id"], "logo");
        m["layers"][1]["transform"]["position"] = serde_json::json!([-3000, 56]);
    });
    let report = run(&dir);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    let paths: Vec<&str> = report.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["tokens.coupon", "layers[1] (`logo`)"],
        "{:#?}",
        report.warnings
    );
    assert!(report.warnings[0]
        .message
        .contains("no text layer or voice script uses `{{coupon}}`"));
    assert!(report.warnings[1]
        .message
        .contains("entirely off the 1920x1080 canvas"));
}
