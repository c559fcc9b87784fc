//! Valid bundles load, with defaults filled in.

use serde_json::json;
use template::{Bundle, Color, LayerContent, Manifest, TemplateError, MANIFEST_FILE};

use crate::support::{bundle, bundle_text, full, manifest, minimal, TempDir, MEDIA};

#[test]
fn minimal_template_loads_with_defaults() {
    let dir = bundle("minimal", &minimal());
    let bundle = Bundle::load(dir.path()).expect("minimal template loads");
    let m = &bundle.manifest;
    assert_eq!(m.name, "minimal");
    assert_eq!(m.background, Color("#000000".into()));
    assert!(m.tokens.is_empty());
    assert!(m.layers.is_empty());
    assert_eq!(m.audio.loudness_lufs, -16.0);
    assert!(m.audio.music.is_none());
    assert_eq!(bundle.dir, dir.path());
}

#[test]
fn full_template_loads() {
    let dir = bundle("full", &full());
    let bundle = Bundle::load(dir.path()).expect("full template loads");
    assert_eq!(bundle.manifest.layers.len(), 6);
    assert_eq!(bundle.media_path("logo.png"), dir.path().join("logo.png"));
    let files: Vec<&str> = bundle.manifest.media_files().into_iter().collect();
    let mut expected = MEDIA.to_vec();
    expected.sort_unstable();
    assert_eq!(files, expected);
    match &bundle.manifest.layers[3].content {
        LayerContent::Text(t) => {
            assert_eq!(t.line_height, 1.3);
            assert_eq!(t.color, Color("#ffcc00".into()));
            assert!(!t.bold);
        }
        other => panic!("expected text, got {other:?}"),
    }
    assert!(bundle.manifest.validate(None).is_ok());
}

#[test]
fn manifest_round_trips_through_json() {
    let m = manifest(&full());
    let text = serde_json::to_string(&m).expect("serialize");
    let back = Manifest::from_json(text.as_bytes()).expect("parse again");
    assert_eq!(back, m);
}

#[test]
fn validation_without_a_folder_skips_file_checks() {
    let m = manifest(&full());
    m.validate(None).expect("valid without media");
    let empty = TempDir::new("empty");
    let err = m.validate(Some(empty.path())).expect_err("media missing");
    assert_eq!(crate::support::problems(&err).len(), MEDIA.len());
}

#[test]
fn missing_manifest_file_is_a_read_error() {
    let dir = TempDir::new("no-manifest");
    let err = Bundle::load(dir.path()).expect_err("no template.json");
    assert!(matches!(err, TemplateError::Read { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("cannot read"), "{message}");
    assert!(message.contains(MANIFEST_FILE), "{message}");
}

#[test]
fn no_prefix_of_the_manifest_panics() {
    let text = serde_json::to_string_pretty(&full()).expect("serialize");
    for end in 0..text.len() {
        if text.is_char_boundary(end) {
            assert!(Manifest::from_json(&text.as_bytes()[..end]).is_err());
        }
    }
    assert!(Manifest::from_json(&[0xff, 0xfe]).is_err());
}

#[test]
fn not_json_at_all_is_reported_at_line_one() {
    let dir = bundle_text("garbage", "hello");
    let err = Bundle::load(dir.path()).expect_err("not JSON");
    assert!(
        err.to_string()
            .starts_with("template.json line 1 column 1: "),
        "{err}"
    );
}

#[test]
fn integer_and_float_numbers_are_both_accepted() {
    let mut doc = minimal();
    doc["duration"] = json!(2.5);
    doc["layers"] = json!([{"id": "s", "type": "solid", "color": "#fff000",
        "size": {"width": 10, "height": 10.5}, "opacity": 1}]);
    let dir = bundle("numbers", &doc);
    Bundle::load(dir.path()).expect("loads");
}
