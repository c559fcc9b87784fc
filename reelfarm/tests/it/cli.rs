//! The binary's handling of bad arguments: a non-zero exit and one line saying what to fix.

use std::path::{Path, PathBuf};

use crate::support::{bin, copy_dir, demo_template};

/// A fresh folder of its own for each call: tests run in parallel and share the process id.
fn temp(name: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("reelfarm-cli-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the binary, expects failure, and returns its single error line.
fn fails(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("run reelfarm");
    assert!(!out.status.success(), "expected failure for {args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected, got:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_owned()
}

#[test]
fn bad_arguments_name_the_problem() {
    let dir = temp("args");
    let template = demo_template();
    let t = template.to_str().expect("utf-8 path");
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, r#"{"first_name": "Priya"}"#).expect("tokens");
    let tk = tokens.to_str().expect("utf-8 path");
    let out = dir.join("out.mp4");
    let o = out.to_str().expect("utf-8 path");
    let render = |lang: &str| {
        fails(&[
            "render",
            "--template",
            t,
            "--tokens",
            tk,
            "--lang",
            lang,
            "--out",
            o,
        ])
    };

    let e = fails(&[
        "render",
        "--template",
        t,
        "--tokens",
        tk,
        "--lang",
        "en",
        "--out",
        o,
        "--preset",
        "4k",
    ]);
    assert!(
        e.contains("--preset") && e.contains("4k") && e.contains("whatsapp"),
        "{e}"
    );

    let e = fails(&[
        "render",
        "--template",
        "/nonexistent",
        "--tokens",
        tk,
        "--lang",
        "en",
        "--out",
        o,
    ]);
    assert!(
        e.contains("--template") && e.contains("template.json"),
        "{e}"
    );

    let e = fails(&[
        "render",
        "--template",
        t,
        "--tokens",
        tk,
        "--lang",
        "en",
        "--out",
        "x.avi",
    ]);
    assert!(e.contains("--out") && e.contains(".mp4"), "{e}");

    let e = render("zz");
    assert!(e.contains("zz") && e.contains("hi"), "{e}");

    std::fs::write(&tokens, "[1, 2]").expect("tokens");
    let e = render("en");
    assert!(e.contains("--tokens") && e.contains("JSON object"), "{e}");

    std::fs::write(&tokens, "{not json").expect("tokens");
    let e = render("en");
    assert!(e.contains("not valid JSON"), "{e}");

    std::fs::write(&tokens, r#"{"frist_name": "Priya"}"#).expect("tokens");
    let e = render("en");
    assert!(e.contains("frist_name") && e.contains("first_name"), "{e}");

    let e = fails(&[
        "still",
        "--template",
        t,
        "--lang",
        "en",
        "--at",
        "-1",
        "--out",
        "x.png",
    ]);
    assert!(e.contains("--at"), "{e}");

    let e = fails(&[
        "still",
        "--template",
        t,
        "--lang",
        "en",
        "--at",
        "99",
        "--out",
        dir.join("s.png").to_str().expect("path"),
    ]);
    assert!(e.contains("99") && e.contains("30"), "{e}");

    let e = fails(&[
        "render",
        "--template",
        t,
        "--lang",
        "en",
        "--out",
        o,
        "--voice",
        "/nonexistent.wav",
    ]);
    assert!(e.contains("--voice"), "{e}");
    assert!(!out.exists(), "no output written on failure");
}

#[test]
fn broken_template_lists_every_problem() {
    let dir = temp("broken");
    std::fs::write(
        dir.join("template.json"),
        r#"{"schema_version": 1, "name": "Bad Name", "width": 100, "height": 100, "fps": 30,
            "duration": 5, "languages": ["en"], "default_language": "en",
            "layers": [{"id": "t", "type": "text", "text": {"en": "Hi {{who}}"},
                        "size": {"width": 10, "height": 10}, "font_size": 0}]}"#,
    )
    .expect("manifest");
    let out = bin()
        .args(["template", "validate"])
        .arg(&dir)
        .output()
        .expect("run reelfarm");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in ["name", "width", "font_size", "who"] {
        assert!(
            stderr.contains(needle),
            "`{needle}` not reported in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = bin()
        .args(["template", "schema"])
        .output()
        .expect("run reelfarm");
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../template/template.schema.json"),
        )
        .expect("schema file"),
    )
    .expect("JSON");
    assert_eq!(printed, committed);
}

#[test]
fn lipsync_prints_a_track_covering_the_audio() {
    let voice = demo_template().join("media/voice/hi.m4a");
    let v = voice.to_str().expect("utf-8 path");
    let text = "आपका ऑर्डर आ गया है। हमारे साथ खरीदारी करने के लिए धन्यवाद!";
    let out = bin()
        .args([
            "lipsync", "--audio", v, "--lang", "hi", "--text", text, "--json",
        ])
        .output()
        .expect("run reelfarm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("warning"),
        "aligned without fallback: {stderr}"
    );
    let cues: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert!(cues.len() > 10, "{cues:?}");
    let mut at = 0;
    for c in &cues {
        assert_eq!(c["start_ms"].as_u64(), Some(at), "contiguous from 0: {c}");
        at = c["end_ms"].as_u64().expect("end_ms");
        assert!(at > c["start_ms"].as_u64().expect("start_ms"));
        let shape = c["shape"].as_str().expect("shape");
        assert!("ABCDEFGHX".contains(shape) && shape.len() == 1, "{shape}");
    }
    // The voice is about 4 s long; the track ends with it.
    assert!((3_000..4_500).contains(&at), "{at}");
    let shapes: String = cues.iter().filter_map(|c| c["shape"].as_str()).collect();
    assert!(
        shapes.contains('A') && (shapes.contains('C') || shapes.contains('D')),
        "{shapes}"
    );

    // Without the transcript: the acoustic estimate, with a warning saying so.
    let out = bin()
        .args(["lipsync", "--audio", v, "--lang", "hi"])
        .output()
        .expect("run reelfarm");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: lip-sync: no transcript"),
        "{stderr}"
    );
    let tsv = String::from_utf8_lossy(&out.stdout);
    assert!(
        tsv.lines().next().is_some_and(|l| l.starts_with("0.000\t")),
        "{tsv}"
    );
}

#[test]
fn lipsync_errors_name_the_problem() {
    let dir = temp("lipsync");
    let voice = demo_template().join("media/voice/hi.m4a");
    let v = voice.to_str().expect("utf-8 path");
    let e = fails(&["lipsync", "--audio", v, "--lang", "fr"]);
    assert!(e.contains("`fr`") && e.contains("supported: hi"), "{e}");
    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").expect("write");
    let e = fails(&[
        "lipsync",
        "--audio",
        empty.to_str().expect("utf-8"),
        "--lang",
        "en",
    ]);
    assert!(e.contains("empty.wav"), "{e}");
    let corrupt = dir.join("corrupt.m4a");
    std::fs::write(&corrupt, b"\x00\x00\x00\x18ftypM4A garbage garbage").expect("write");
    let e = fails(&[
        "lipsync",
        "--audio",
        corrupt.to_str().expect("utf-8"),
        "--lang",
        "en",
    ]);
    assert!(e.contains("corrupt.m4a"), "{e}");
    let e = fails(&[
        "lipsync",
        "--audio",
        dir.join("missing.wav").to_str().expect("utf-8"),
        "--lang",
        "en",
    ]);
    assert!(e.contains("missing.wav"), "{e}");
}

/// Runs `render` of the demo template with `extra` arguments; expects failure and returns the
/// whole of stderr, checking that it is exactly one error line.
fn render_fails(template: &Path, extra: &[&str]) -> String {
    let dir = temp("render-fails");
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, r#"{"first_name": "Priya"}"#).expect("tokens");
    let mut args = vec![
        "render".to_owned(),
        "--template".to_owned(),
        template.display().to_string(),
        "--tokens".to_owned(),
        tokens.display().to_string(),
        "--lang".to_owned(),
        "en".to_owned(),
    ];
    if !extra.contains(&"--out") {
        args.extend([
            "--out".to_owned(),
            dir.join("out.mp4").display().to_string(),
        ]);
    }
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let out = bin().args(&args).output().expect("run reelfarm");
    assert!(!out.status.success(), "expected failure for {args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, reelfarm's error, and nothing else:\n{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn time_range_ends_are_checked_alike() {
    let t = demo_template();
    let e = render_fails(&t, &["--to", "50"]);
    assert!(e.contains("--to 50") && e.contains("30 s long"), "{e}");
    let e = render_fails(&t, &["--from", "-3"]);
    assert!(e.contains("--from -3"), "{e}");
    let e = render_fails(&t, &["--from", "0.8", "--to", "0.2"]);
    assert!(e.contains("--from 0.8 is not before --to 0.2"), "{e}");
}

/// A corrupt video: reelfarm's one-line error names the file as the template does, and
/// FFmpeg's own complaint (`moov atom not found`) stays out of the terminal.
#[test]
fn corrupt_media_gives_one_line_naming_the_file() {
    let dir = temp("corrupt");
    let copy = dir.join("order-delivered");
    copy_dir(&demo_template(), &copy);
    std::fs::write(copy.join("media/background.mp4"), b"not a video").expect("corrupt");
    let e = render_fails(&copy, &["--to", "0.5"]);
    assert!(e.contains("`media/background.mp4`"), "{e}");
    assert!(!e.contains("moov"), "{e}");
}

/// An output that cannot be written is named as the user gave it, not as the temporary file.
#[test]
fn unwritable_output_names_the_given_path() {
    // Even root cannot create files in /proc.
    let e = render_fails(
        &demo_template(),
        &["--out", "/proc/reelfarm-test.mp4", "--to", "0.2"],
    );
    assert!(e.contains("`/proc/reelfarm-test.mp4`"), "{e}");
    assert!(!e.contains("partial"), "{e}");
}
