//! Presenter layers and the voice slot's script and built-in voice: parsing, defaults,
//! validation that names the field, and resolution.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use template::{
    resolve, Bundle, LayerContent, Manifest, ResolvedContent, TemplateError, TtsProvider,
};

use crate::support::{assert_contains, set, TempDir};

/// The header of a PNG of `w`x`h` pixels: all the validator reads.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b
}

/// A template with one presenter layer over a still base, a voice with a script and TTS.
fn doc() -> Value {
    json!({
        "schema_version": 1,
        "name": "presenter",
        "width": 640,
        "height": 360,
        "fps": 25,
        "duration": 4,
        "languages": ["en", "hi"],
        "default_language": "en",
        "tokens": {"first_name": {"max_length": 20, "fallback": {"*": "friend"}}},
        "layers": [
            {"id": "host", "type": "presenter", "src": "media/face.png",
             "mouths": {"src": "media/mouths.png"},
             "mouth": {"position": [120, 200], "size": {"width": 60, "height": 40}},
             "transform": {"position": [100, 0]}}
        ],
        "audio": {
            "voice": {"start": 0.5, "max_duration": 3,
                      "script": {"en": "Hi {{first_name}}!", "*": "Namaste {{first_name}}!"},
                      "tts": {"provider": "espeak", "variant": "f3", "rate": 160, "pitch": 55}}
        }
    })
}

/// Writes `doc` and its media (a 240x360 base, a 540x40 atlas: nine 60x40 cells) to a folder.
fn write(label: &str, doc: &Value) -> TempDir {
    let dir = TempDir::new(label);
    dir.write(
        "template.json",
        serde_json::to_string_pretty(doc)
            .expect("serialize")
            .as_bytes(),
    );
    dir.write("media/face.png", &png_header(240, 360));
    dir.write("media/mouths.png", &png_header(540, 40));
    dir.write("media/face.mp4", b"not really a video");
    dir
}

fn load_err(doc: &Value) -> String {
    let dir = write("presenter-broken", doc);
    match Bundle::load(dir.path()) {
        Ok(_) => panic!("expected an error for {doc:#}"),
        Err(e) => e.to_string(),
    }
}

fn with(pointer: &str, value: Value) -> Value {
    let mut d = doc();
    set(&mut d, pointer, value);
    d
}

#[test]
fn presenter_parses_with_defaults_and_loads() {
    let dir = write("presenter-ok", &doc());
    let bundle = Bundle::load(dir.path()).expect("presenter template loads");
    let m = &bundle.manifest;
    let LayerContent::Presenter(p) = &m.layers[0].content else {
        panic!("expected a presenter, got {:?}", m.layers[0].content);
    };
    assert_eq!(p.src, "media/face.png");
    assert_eq!(
        (p.mouths.columns, p.mouths.rows, p.mouths.order.as_str()),
        (9, 1, "ABCDEFGHX")
    );
    assert_eq!(p.mouth.feather, 0.2);
    assert_eq!(p.mouth.crossfade, 0.06);
    assert_eq!(p.mouth.scale, template::Animated::Constant(1.0));
    assert_eq!(p.mouth.rotation, template::Animated::Constant(0.0));
    let voice = m.audio.voice.as_ref().expect("voice");
    let tts = voice.tts.as_ref().expect("tts");
    assert_eq!(tts.provider, TtsProvider::Espeak);
    assert_eq!(
        (tts.variant.as_deref(), tts.rate, tts.pitch),
        (Some("f3"), Some(160), Some(55))
    );
    let files: Vec<&str> = m.media_files().into_iter().collect();
    assert_eq!(files, ["media/face.png", "media/mouths.png"]);

    // Round trip through JSON.
    let text = serde_json::to_string(m).expect("serialize");
    assert_eq!(&Manifest::from_json(text.as_bytes()).expect("parse"), m);
}

#[test]
fn presenter_resolves_cells_and_the_voice_script() {
    let mut d = doc();
    set(&mut d, "/layers/0/mouths/order", json!("XABCDEFGH"));
    set(&mut d, "/layers/0/mouths/columns", json!(3));
    set(&mut d, "/layers/0/mouths/rows", json!(3));
    let m: Manifest = serde_json::from_value(d).expect("manifest");
    let tokens = BTreeMap::from([("first_name".to_owned(), "Priya".to_owned())]);
    let tl = resolve(&m, "en", &tokens).expect("resolves");
    assert_eq!(tl.voice_script.as_deref(), Some("Hi Priya!"));
    let layer = &tl.layers[0];
    assert!(
        layer.recipient_dependent(),
        "the script uses a token, so the mouth depends on the recipient"
    );
    match &layer.content {
        ResolvedContent::Presenter {
            still,
            cells,
            columns,
            rows,
            mouths,
            ..
        } => {
            assert!(*still);
            assert_eq!(
                (*columns, *rows, mouths.as_str()),
                (3, 3, "media/mouths.png")
            );
            // A is in cell 1, ..., H in cell 8, X in cell 0.
            assert_eq!(*cells, [1, 2, 3, 4, 5, 6, 7, 8, 0]);
        }
        other => panic!("expected a presenter, got {other:?}"),
    }
    assert_eq!(layer.content.declared_size((640, 360)), None);
    let tl = resolve(&m, "hi", &tokens).expect("resolves");
    assert_eq!(tl.voice_script.as_deref(), Some("Namaste Priya!"));

    // A video base is told apart by its extension.
    let d = with("/layers/0/src", json!("media/face.mp4"));
    let m: Manifest = serde_json::from_value(d).expect("manifest");
    let tl = resolve(&m, "en", &tokens).expect("resolves");
    assert!(matches!(
        tl.layers[0].content,
        ResolvedContent::Presenter { still: false, .. }
    ));
    assert!(template::is_still_path("a/B.JPG"));
    assert!(!template::is_still_path("a/b.mov"));
}

#[test]
fn missing_script_token_is_named() {
    let m: Manifest = serde_json::from_value(doc()).expect("manifest");
    let err = resolve(&m, "en", &BTreeMap::new()).expect_err("no token value");
    assert!(matches!(err, TemplateError::MissingToken { .. }), "{err}");
    assert_contains(&err.to_string(), &["audio.voice.script", "first_name"]);
}

#[test]
fn presenter_problems_name_the_layer_and_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            with("/layers/0/mouths/src", json!("media/nope.png")),
            "layers[0] (`host`).mouths.src: file `media/nope.png` not found in bundle",
        ),
        (
            with("/layers/0/src", json!("media/none.mp4")),
            "layers[0] (`host`).src: file `media/none.mp4` not found in bundle",
        ),
        (
            with("/layers/0/mouths/columns", json!(7)),
            "layers[0] (`host`).mouths: a grid of 7 columns by 1 rows has 7 cells; the nine mouth shapes need at least 9",
        ),
        (
            with("/layers/0/mouths/columns", json!(0)),
            "layers[0] (`host`).mouths.columns: 0 must be at least 1",
        ),
        (
            with("/layers/0/mouths/columns", json!(11)),
            "layers[0] (`host`).mouths.columns: `media/mouths.png` is 540 px wide, which 11 columns of equal cells do not divide; make it a multiple of 11 px wide (e.g. 539 or 550)",
        ),
        (
            with("/layers/0/mouths/rows", json!(3)),
            "layers[0] (`host`).mouths.rows: `media/mouths.png` is 40 px high, which 3 rows of equal cells do not divide",
        ),
        (
            with("/layers/0/mouths/src", json!("media/face.mp4")),
            "layers[0] (`host`).mouths.src: `media/face.mp4` is not a PNG, JPEG or WebP image",
        ),
        (
            with("/layers/0/mouths/order", json!("ABCDEFGHA")),
            "layers[0] (`host`).mouths.order: `ABCDEFGHA`: `A` appears 2 times, `X` is missing; give each of the nine shapes ABCDEFGHX exactly once",
        ),
        (
            with("/layers/0/mouths/order", json!("ABCDEFGHZ")),
            "layers[0] (`host`).mouths.order: `ABCDEFGHZ`: `Z` is not a mouth shape, `X` is missing",
        ),
        (
            with("/layers/0/mouth/feather", json!(0.6)),
            "layers[0] (`host`).mouth.feather: 0.6 is out of range 0..=0.5",
        ),
        (
            with("/layers/0/mouth/feather", json!(-0.1)),
            "layers[0] (`host`).mouth.feather: -0.1 is out of range 0..=0.5",
        ),
        (
            with("/layers/0/mouth/crossfade", json!(0.3)),
            "layers[0] (`host`).mouth.crossfade: 0.3 is out of range 0..=0.2",
        ),
        (
            with("/layers/0/mouth/size/width", json!(0)),
            "layers[0] (`host`).mouth.size.width: 0 must be greater than 0",
        ),
        (
            with("/layers/0/mouth/scale", json!([{"t": 0, "value": 1}, {"t": 1, "value": 0}])),
            "layers[0] (`host`).mouth.scale[1].value: 0 must be greater than 0",
        ),
        (
            with("/layers/0/trim_start", json!(1)),
            "layers[0] (`host`).trim_start: applies only to a video base; `media/face.png` is a still image",
        ),
        (
            with("/layers/0/loop", json!(true)),
            "layers[0] (`host`).loop: applies only to a video base",
        ),
    ];
    for (doc, expect) in cases {
        assert_contains(&load_err(&doc), &[expect]);
    }
}

#[test]
fn presenter_shape_errors_name_the_field() {
    let mut d = doc();
    d["layers"][0]["mouth"]
        .as_object_mut()
        .expect("mouth")
        .remove("position");
    assert_contains(
        &load_err(&d),
        &["layers[0] (`host`).mouth: missing field `position`"],
    );
    assert_contains(
        &load_err(&with("/layers/0/mouth/blur", json!(1))),
        &[
            "layers[0] (`host`).mouth.blur: unknown field `blur`",
            "`feather`",
        ],
    );
    let mut d = doc();
    d["layers"][0]
        .as_object_mut()
        .expect("layer")
        .remove("mouths");
    assert_contains(
        &load_err(&d),
        &["layers[0] (`host`): missing field `mouths`"],
    );
}

#[test]
fn voice_script_and_tts_problems_name_the_field() {
    let mut no_script = doc();
    no_script["audio"]["voice"]
        .as_object_mut()
        .expect("voice")
        .remove("script");
    let cases: Vec<(Value, &str)> = vec![
        (no_script, "audio.voice.tts: needs `audio.voice.script`"),
        (
            with("/audio/voice/tts/rate", json!(500)),
            "audio.voice.tts.rate: 500 is out of range 80..=450",
        ),
        (
            with("/audio/voice/tts/pitch", json!(100)),
            "audio.voice.tts.pitch: 100 is out of range 0..=99",
        ),
        (
            with("/audio/voice/tts/variant", json!("f3; rm -rf")),
            "audio.voice.tts.variant: `f3; rm -rf` must be 1 to 32 characters",
        ),
        (
            with("/audio/voice/script/fr", json!("Salut")),
            "audio.voice.script.fr: `fr` is not one of languages (en, hi)",
        ),
        (
            with("/audio/voice/script/en", json!("Hi {{name}}")),
            "audio.voice.script.en: `{{name}}` uses token `name`, which is not declared",
        ),
        (
            with("/audio/voice/script/en", json!("  ")),
            "audio.voice.script.en: is empty",
        ),
    ];
    for (doc, expect) in cases {
        assert_contains(&load_err(&doc), &[expect]);
    }
    assert_contains(
        &load_err(&with("/audio/voice/tts/provider", json!("polly"))),
        &["audio.voice.tts.provider: unknown variant `polly`, expected `espeak`"],
    );
}

#[test]
fn too_many_layers_at_once_counts_presenters_as_three() {
    let solid = json!({"id": "s", "type": "solid", "color": "#ffffff",
                       "size": {"width": 10, "height": 10}});
    let mut d = doc();
    let layers = d["layers"].as_array_mut().expect("layers");
    for i in 0..61 {
        let mut l = solid.clone();
        l["id"] = json!(format!("s{i}"));
        layers.push(l);
    }
    // 3 + 61 = 64: fine.
    let dir = write("presenter-64", &d);
    Bundle::load(dir.path()).expect("64 layers at once load");
    // One more overlapping layer is too many...
    let mut over = d.clone();
    let mut l = solid.clone();
    l["id"] = json!("extra");
    l["start"] = json!(2);
    over["layers"].as_array_mut().expect("layers").push(l);
    assert_contains(
        &load_err(&over),
        &["layers: 65 layers are drawn at once at 2 s (a presenter counts as 3"],
    );
    // ...but not when it starts as another ends.
    let mut tiled = d.clone();
    tiled["layers"][1]["end"] = json!(2);
    let mut l = solid;
    l["id"] = json!("extra");
    l["start"] = json!(2);
    tiled["layers"].as_array_mut().expect("layers").push(l);
    let dir = write("presenter-tiled", &tiled);
    Bundle::load(dir.path()).expect("layers that only touch in time load");
}
