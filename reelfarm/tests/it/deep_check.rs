//! `template validate --deep` and `template push`'s deep checks: a template that would fail for
//! some recipient is refused with messages naming the layer, the language and the value class;
//! `--force` pushes it anyway.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{bin, copy_dir, demo_template, Backend, Farm};

/// A copy of the demo template whose Tamil greeting takes three lines and may not shrink below
/// 40 px: the longest Tamil name overflows it.
fn tamil_overflow(root: &Path) -> PathBuf {
    let dir = root.join("tamil");
    copy_dir(&demo_template(), &dir);
    let file = dir.join("template.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
    let layer = &mut m["layers"][4];
    assert_eq!(layer["id"], "greeting");
    layer["text"]["ta"] = "வணக்கம்\n{{first_name}}!\nஉங்கள் ஆர்டர் வந்துவிட்டது.".into();
    layer["min_font_size"] = serde_json::json!(40);
    std::fs::write(&file, serde_json::to_vec_pretty(&m).expect("JSON")).expect("write");
    dir
}

/// A copy of the demo template with its background video cut to 40 % of its bytes.
fn truncated_video(root: &Path) -> PathBuf {
    let dir = root.join("corrupt");
    copy_dir(&demo_template(), &dir);
    let video = dir.join("media/background.mp4");
    let bytes = std::fs::read(&video).expect("read video");
    std::fs::write(&video, &bytes[..bytes.len() * 2 / 5]).expect("truncate");
    dir
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TAMIL_ERROR: &str = "error: layers[4] (`greeting`): text overflows in `ta` with the longest \
     `first_name` (40 characters, widest Tamil letters): text shrunk to ";

#[test]
fn validate_deep_passes_the_demo_and_refuses_an_overflow() {
    let out = bin()
        .args(["template", "validate", "--deep"])
        .arg(demo_template())
        .output()
        .expect("run");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("deep checks passed"), "{stdout}");
    assert!(
        stderr.contains("deep check: speaking the voice script in `ta`"),
        "{stderr}"
    );

    let root = tempfile::tempdir().expect("tempdir");
    let dir = tamil_overflow(root.path());
    // Without --deep the manifest is fine.
    let out = bin()
        .args(["template", "validate"])
        .arg(&dir)
        .output()
        .expect("run");
    assert!(out.status.success());
    let out = bin()
        .args(["template", "validate", "--deep"])
        .arg(&dir)
        .output()
        .expect("run");
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    assert!(errors[0].starts_with(TAMIL_ERROR), "{}", errors[0]);
    let last: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(last.len(), 1, "{stderr}");
    assert!(
        last[0].contains("the deep checks found 1 error"),
        "{}",
        last[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_refuses_a_failing_template_unless_forced() {
    let farm = Farm::new(Backend::Sqlite).await;
    let key = farm.tenant("acme");
    let (_serve, url) = farm.serve("127.0.0.1:0");
    let root = tempfile::tempdir().expect("tempdir");
    let push = |dir: &Path, extra: &[&str]| {
        bin()
            .args(["template", "push"])
            .arg(dir)
            .args(["--coordinator", &url, "--api-key", &key])
            .args(extra)
            .output()
            .expect("push")
    };

    for (dir, expected) in [
        (
            truncated_video(root.path()),
            "error: layers[0] (`background`).src: `media/background.mp4` is ",
        ),
        (tamil_overflow(root.path()), TAMIL_ERROR),
    ] {
        let out = push(&dir, &[]);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{stdout}\n{stderr}");
        let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stdout}");
        assert!(errors[0].starts_with(expected), "{}", errors[0]);
        assert!(
            stderr.contains("not pushed: the deep checks found 1 error"),
            "{stderr}"
        );
        assert!(!stdout.contains("uploaded"), "{stdout}");

        let out = push(&dir, &["--force"]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains(errors[0]), "the same message: {stdout}");
        assert!(
            stderr.contains("pushing despite 1 error (--force)"),
            "{stderr}"
        );
        assert!(stdout.contains("uploaded order-delivered@"), "{stdout}");
    }
}
