//! The binary's handling of bad arguments: a non-zero exit and one line saying what to fix.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reelfarm"))
}

fn demo_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates/order-delivered")
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reelfarm-cli-{name}-{}", std::process::id()));
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
