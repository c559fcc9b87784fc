//! Brand typography in the manifest: fonts shipped in the bundle, stacked text layers, and
//! entrance/exit presets expanded into keyframes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use template::{
    resolve, Animated, Bundle, Easing, Keyframe, Manifest, ResolvedContent, TemplateError,
    Timeline, VerticalAlign,
};

/// The OFL font the tests ship as a brand font (see its README for where it comes from).
fn brand_font() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../render-core/tests/fixtures/brand-font/Lobster.otf")
}

/// A manifest with one brand font for English, a headline, a line stacked below it, and a
/// solid.
fn manifest() -> Value {
    json!({
        "schema_version": 1,
        "name": "brand",
        "width": 1280,
        "height": 720,
        "fps": 30,
        "duration": 6,
        "languages": ["en", "ta"],
        "default_language": "en",
        "tokens": {"name": {"max_length": 40, "fallback": {"*": "friend"}}},
        "fonts": [{"id": "brand", "src": "fonts/Brand.otf", "languages": ["en"]}],
        "layers": [
            {"id": "card", "type": "solid", "color": "#102030", "size": {"width": 1280, "height": 720}},
            {"id": "headline", "type": "text", "text": {"*": "Hello {{name}}"},
             "size": {"width": 1000, "height": 300}, "font_size": 64,
             "vertical_align": "top", "outline": {"color": "#000000", "width": 3},
             "transform": {"position": [140, 100]}},
            {"id": "offer", "type": "text", "text": {"*": "Ten percent off"},
             "size": {"width": 1000, "height": 100}, "font_size": 40,
             "below": "headline", "gap": 12, "transform": {"position": [140, 200]}}
        ]
    })
}

fn write_bundle(dir: &Path, manifest: &Value, font: Option<&[u8]>) {
    std::fs::write(
        dir.join("template.json"),
        serde_json::to_vec_pretty(manifest).expect("json"),
    )
    .expect("write manifest");
    if let Some(bytes) = font {
        std::fs::create_dir_all(dir.join("fonts")).expect("fonts dir");
        std::fs::write(dir.join("fonts/Brand.otf"), bytes).expect("write font");
    }
}

fn font_bytes() -> Vec<u8> {
    std::fs::read(brand_font()).expect("brand font fixture")
}

/// The problems of loading a bundle made of `manifest` and `font`, as `path: message` lines.
fn load_problems(manifest: &Value, font: Option<&[u8]>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    write_bundle(dir.path(), manifest, font);
    match Bundle::load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(TemplateError::Invalid(problems)) => problems.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("expected validation problems, got {other}"),
    }
}

fn assert_problem(problems: &[String], path: &str, words: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(path) && p.contains(words)),
        "no problem at `{path}` saying `{words}` in {problems:#?}"
    );
}

fn timeline(manifest: &Value, lang: &str, name: &str) -> Timeline {
    let manifest: Manifest = serde_json::from_value(manifest.clone()).expect("manifest parses");
    let tokens = BTreeMap::from([("name".to_owned(), name.to_owned())]);
    resolve(&manifest, lang, &tokens).expect("resolves")
}

#[test]
fn a_bundle_with_its_own_font_loads_packs_and_resolves_per_language() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_bundle(dir.path(), &manifest(), Some(&font_bytes()));
    let bundle = Bundle::load(dir.path()).expect("a bundle with a valid font loads");
    assert!(
        bundle.manifest.media_files().contains("fonts/Brand.otf"),
        "the font travels with the packed bundle"
    );
    // Packed and unpacked, the bundle still holds the same font file.
    let packed = template::pack_dir(dir.path()).expect("packs");
    let out = tempfile::tempdir().expect("temp dir");
    let dest = out.path().join("unpacked");
    template::unpack(&packed, &dest, &template::Limits::default()).expect("unpacks");
    assert_eq!(
        std::fs::read(dest.join("fonts/Brand.otf")).expect("font unpacked"),
        font_bytes()
    );
    Bundle::load(&dest).expect("the unpacked bundle loads");

    let font_of = |t: &Timeline, id: &str| match &t
        .layers
        .iter()
        .find(|l| l.id == id)
        .expect("layer")
        .content
    {
        ResolvedContent::Text { font, .. } => font.clone(),
        other => panic!("not text: {other:?}"),
    };
    let en = timeline(&manifest(), "en", "Priya");
    assert_eq!(font_of(&en, "headline").as_deref(), Some("fonts/Brand.otf"));
    // Tamil is not among the font's languages: the bundled Noto family is used.
    let ta = timeline(&manifest(), "ta", "Priya");
    assert_eq!(font_of(&ta, "headline"), None);
    // A layer's own `font` applies in every language.
    let mut own = manifest();
    own["layers"][2]["font"] = json!("brand");
    let ta = timeline(&own, "ta", "Priya");
    assert_eq!(font_of(&ta, "offer").as_deref(), Some("fonts/Brand.otf"));
    assert_eq!(font_of(&ta, "headline"), None);

    match &en.layers[1].content {
        ResolvedContent::Text {
            vertical_align,
            outline,
            below,
            ..
        } => {
            assert_eq!(*vertical_align, VerticalAlign::Top);
            assert_eq!(*outline, Some(([0, 0, 0, 255], 3.0)));
            assert_eq!(*below, None);
        }
        other => panic!("not text: {other:?}"),
    }
    match &en.layers[2].content {
        ResolvedContent::Text { below, .. } => assert_eq!(*below, Some((1, 12.0))),
        other => panic!("not text: {other:?}"),
    }
}

#[test]
fn a_stacked_layer_depends_on_the_tokens_of_the_layer_above() {
    let en = timeline(&manifest(), "en", "Priya");
    // `offer` has no token of its own, but the headline's name moves it.
    assert!(
        en.layers[2].tokens.contains("name"),
        "{:?}",
        en.layers[2].tokens
    );
    assert!(en.layers[0].tokens.is_empty());
}

#[test]
fn missing_font_file_is_reported_at_its_field() {
    let problems = load_problems(&manifest(), None);
    assert_problem(
        &problems,
        "fonts[0].src",
        "file `fonts/Brand.otf` not found in bundle",
    );
}

#[test]
fn corrupt_font_files_are_reported_with_the_reason() {
    let mut truncated = font_bytes();
    truncated.truncate(2000);
    let cases: [(&[u8], &str); 4] = [
        (
            b"this is not a font at all",
            "does not start with a TrueType or OpenType header",
        ),
        (&truncated, "past the end of the"),
        (b"wOFF\0\x01\0\0", "WOFF web font"),
        (b"ttcf\0\x01\0\0", "font collection"),
    ];
    for (bytes, words) in cases {
        let problems = load_problems(&manifest(), Some(bytes));
        assert_problem(&problems, "fonts[0].src", "is not a usable font");
        assert_problem(&problems, "fonts[0].src", words);
    }
}

#[test]
fn font_declarations_and_references_are_checked() {
    let mut m = manifest();
    m["fonts"] = json!([
        {"id": "Brand", "src": "fonts/Brand.otf"},
        {"id": "ok", "src": "fonts/Brand.otf", "languages": ["fr"]},
        {"id": "ok", "src": "fonts/brand.woff"},
        {"id": "abs", "src": "/etc/fonts/x.ttf"},
    ]);
    m["layers"][1]["font"] = json!("nope");
    let problems = load_problems(&m, Some(&font_bytes()));
    assert_problem(&problems, "fonts[0].id", "is not a font id");
    assert_problem(
        &problems,
        "fonts[1].languages[0]",
        "`fr` is not one of the template's languages",
    );
    assert_problem(&problems, "fonts[2].id", "already the id of fonts[1]");
    assert_problem(&problems, "fonts[2].src", "is not a `.ttf` or `.otf` file");
    assert_problem(&problems, "fonts[3].src", "absolute path");
    assert_problem(
        &problems,
        "layers[1] (`headline`).font",
        "`nope` is not a font id",
    );

    let mut m = manifest();
    m["layers"][1]["outline"]["width"] = json!(0);
    m["layers"][2]["gap"] = json!(-1);
    let problems = load_problems(&m, Some(&font_bytes()));
    assert_problem(
        &problems,
        "layers[1] (`headline`).outline.width",
        "out of range",
    );
    assert_problem(
        &problems,
        "layers[2] (`offer`).gap",
        "out of range 0..=1000",
    );
}

#[test]
fn stack_references_are_checked() {
    let cases = [
        (json!("ghost"), "`ghost` is not the id of a layer"),
        (json!("offer"), "cannot sit below itself"),
        (json!("card"), "`card` is not a text layer"),
    ];
    for (below, words) in cases {
        let mut m = manifest();
        m["layers"][2]["below"] = below;
        let problems = load_problems(&m, Some(&font_bytes()));
        assert_problem(&problems, "layers[2] (`offer`).below", words);
    }
    // The upper layer must come first.
    let mut m = manifest();
    m["layers"][2]["below"] = Value::Null;
    m["layers"][1]["below"] = json!("offer");
    let problems = load_problems(&m, Some(&font_bytes()));
    assert_problem(
        &problems,
        "layers[1] (`headline`).below",
        "must come earlier in `layers`",
    );
}

fn kf<T>(t: f64, value: T, easing: Easing) -> Keyframe<T> {
    Keyframe { t, value, easing }
}

#[test]
fn presets_expand_to_keyframes() {
    let mut m = manifest();
    m["layers"][1]["start"] = json!(1);
    m["layers"][1]["end"] = json!(5);
    m["layers"][1]["opacity"] = json!(0.8);
    m["layers"][1]["enter"] = json!({"preset": "fade"});
    m["layers"][1]["exit"] = json!({"preset": "slide-up", "duration": 1});
    m["layers"][2]["transform"]["scale"] = json!(2);
    m["layers"][2]["enter"] = json!({"preset": "pop", "duration": 1});
    let t = timeline(&m, "en", "Priya");

    let headline = &t.layers[1];
    assert_eq!(
        headline.opacity,
        Animated::Keyframes(vec![
            kf(1.0, 0.0, Easing::EaseInOut),
            kf(1.5, 0.8, Easing::Linear),
            kf(4.0, 0.8, Easing::EaseIn),
            kf(5.0, 0.0, Easing::Linear),
        ])
    );
    // Slide-up rises by 5% of the 720 px canvas.
    assert_eq!(
        headline.transform.position,
        Animated::Keyframes(vec![
            kf(4.0, [140.0, 100.0], Easing::EaseIn),
            kf(5.0, [140.0, 64.0], Easing::Linear),
        ])
    );
    assert_eq!(headline.transform.scale, Animated::Constant(1.0));
    // Half-way through the exit the layer has risen and faded part of the way.
    let mid = headline.state_at(4.5, (1000.0, 300.0)).expect("shown");
    assert!(mid.opacity > 0.0 && mid.opacity < 0.8, "{}", mid.opacity);
    assert!(
        mid.matrix.0[5] < 100.0 && mid.matrix.0[5] > 64.0,
        "{:?}",
        mid.matrix
    );

    let offer = &t.layers[2];
    assert_eq!(
        offer.transform.scale,
        Animated::Keyframes(vec![
            kf(0.0, 0.02, Easing::EaseOut),
            kf(0.7, 2.2, Easing::EaseInOut),
            kf(1.0, 2.0, Easing::Linear),
        ])
    );
    assert_eq!(
        offer.opacity,
        Animated::Keyframes(vec![
            kf(0.0, 0.0, Easing::EaseOut),
            kf(1.0, 1.0, Easing::Linear)
        ])
    );
    assert_eq!(offer.transform.position, Animated::Constant([140.0, 200.0]));

    // Without presets nothing changes.
    let plain = timeline(&manifest(), "en", "Priya");
    assert_eq!(plain.layers[1].opacity, Animated::Constant(1.0));
    assert_eq!(
        plain.layers[1].transform.position,
        Animated::Constant([140.0, 100.0])
    );
}

#[test]
fn presets_that_cannot_expand_are_errors() {
    let mut m = manifest();
    m["layers"][1]["opacity"] = json!([{"t": 0, "value": 0}, {"t": 1, "value": 1}]);
    m["layers"][1]["enter"] = json!({"preset": "fade"});
    m["layers"][2]["end"] = json!(1);
    m["layers"][2]["enter"] = json!({"preset": "pop", "duration": 0.8});
    m["layers"][2]["exit"] = json!({"preset": "fade", "duration": 0.4});
    m["layers"][0]["exit"] = json!({"preset": "slide-up", "duration": 0});
    let problems = load_problems(&m, Some(&font_bytes()));
    assert_problem(
        &problems,
        "layers[1] (`headline`).enter.preset",
        "animates opacity",
    );
    assert_problem(
        &problems,
        "layers[2] (`offer`).enter",
        "enter 0.8 s and exit 0.4 s together are longer than the layer's 1 s",
    );
    assert_problem(
        &problems,
        "layers[0] (`card`).exit.duration",
        "out of range",
    );

    let mut m = manifest();
    m["layers"][1]["enter"] = json!({"preset": "bounce"});
    let dir = tempfile::tempdir().expect("temp dir");
    write_bundle(dir.path(), &m, Some(&font_bytes()));
    let err = Bundle::load(dir.path()).expect_err("unknown preset");
    let text = err.to_string();
    assert!(
        text.contains("bounce") && text.contains("slide-up"),
        "{text}"
    );
}
