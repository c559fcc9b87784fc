//! Each kind of broken template gives an error that names the field, the problem and what is
//! allowed.

use serde_json::{json, Value};
use template::{Bundle, Manifest, TemplateError};

use crate::support::{
    assert_contains, bundle, bundle_text, full, load_err, manifest, problems, set, with,
};

fn check(doc: &Value, parts: &[&str]) {
    assert_contains(&load_err(doc), parts);
}

#[test]
fn bad_json_gives_line_and_column() {
    let text = "{\n  \"schema_version\": 1,\n  \"name\": \"x\",\n";
    let dir = bundle_text("bad-json", text);
    let err = Bundle::load(dir.path()).expect_err("truncated JSON");
    assert!(
        matches!(err, TemplateError::Json { line: 4, .. }),
        "{err:?}"
    );
    assert_contains(&err.to_string(), &["template.json line 4 column", "EOF"]);

    let dir = bundle_text("trailing-comma", "{\n  \"name\": \"x\",\n}");
    let err = Bundle::load(dir.path()).expect_err("trailing comma");
    assert_contains(
        &err.to_string(),
        &["template.json line 3 column 1: trailing comma"],
    );
}

#[test]
fn unknown_top_level_field_names_it_and_the_expected_ones() {
    let text = "{\n  \"schema_version\": 1,\n  \"colour\": \"#fff\"\n}";
    let dir = bundle_text("unknown-top", text);
    let err = Bundle::load(dir.path()).expect_err("unknown field");
    assert_contains(
        &err.to_string(),
        &[
            "template.json line 3 column",
            "unknown field `colour`, expected one of",
            "`background`",
        ],
    );
}

#[test]
fn unknown_layer_field_names_the_layer() {
    check(
        &with("/layers/2/colour", json!("#ffffff")),
        &[
            "layers[2] (`greeting`).colour: unknown field `colour`, expected one of",
            "`color`",
            "`opacity`",
        ],
    );
    check(
        &with("/layers/1/transform/rotate", json!(3)),
        &[
            "layers[1] (`logo`).transform.rotate: unknown field `rotate`",
            "`rotation`",
        ],
    );
    check(
        &with("/tokens/first_name/maxlength", json!(3)),
        &[
            "tokens.first_name.maxlength: unknown field `maxlength`",
            "`max_length`",
        ],
    );
}

#[test]
fn wrong_types_name_the_field_and_the_expected_type() {
    check(
        &with("/width", json!("wide")),
        &["width: invalid type: string \"wide\", expected u32"],
    );
    check(
        &with("/layers/2/font_size", json!("big")),
        &["layers[2] (`greeting`).font_size: invalid type: string \"big\", expected f64"],
    );
    check(
        &with("/layers/2/bold", json!("yes")),
        &["layers[2] (`greeting`).bold: invalid type: string \"yes\", expected a boolean"],
    );
    check(
        &with("/layers/2/opacity", json!("half")),
        &["layers[2] (`greeting`).opacity: invalid type: string \"half\", expected f64, or a list of keyframes"],
    );
    check(
        &with("/layers/2/opacity/1/value", json!("full")),
        &["layers[2] (`greeting`).opacity: keyframe [1].value: invalid type: string \"full\""],
    );
    check(
        &with("/layers/2/opacity/0/easing", json!("bounce")),
        &["unknown variant `bounce`", "`ease_in_out`"],
    );
    check(
        &with("/layers/5/type", json!("rect")),
        &["layers[5] (`bar`).type: unknown variant `rect`, expected one of `video`, `image`, `text`, `solid`"],
    );
    check(
        &with("/audio/music/src", json!(3)),
        &["audio.music.src: invalid type: integer `3`, expected a string"],
    );
}

#[test]
fn missing_required_field_is_named() {
    let mut doc = full();
    doc.as_object_mut().expect("object").remove("fps");
    check(&doc, &["missing field `fps`"]);
}

#[test]
fn out_of_range_numbers_give_the_range() {
    let cases: &[(&str, Value, &str)] = &[
        ("/layers/2/font_size", json!(0), "layers[2] (`greeting`).font_size: 0 is out of range 4..=512"),
        ("/layers/2/font_size", json!(600), "layers[2] (`greeting`).font_size: 600 is out of range 4..=512"),
        ("/layers/2/min_font_size", json!(80), "layers[2] (`greeting`).min_font_size: 80 must be at most font_size (72)"),
        ("/layers/2/min_font_size", json!(0), "layers[2] (`greeting`).min_font_size: 0 must be greater than 0"),
        ("/layers/2/line_height", json!(4), "layers[2] (`greeting`).line_height: 4 is out of range 0.5..=3"),
        ("/width", json!(1004), "width: 1004 is not a multiple of 8; use 1000 or 1008"),
        ("/width", json!(4096), "width: 4096 is out of range 64..=3840"),
        ("/height", json!(721), "height: 721 is not a multiple of 2"),
        ("/height", json!(32), "height: 32 is out of range 64..=3840"),
        ("/fps", json!(0), "fps: 0 is out of range 1..=60"),
        ("/fps", json!(120), "fps: 120 is out of range 1..=60"),
        ("/duration", json!(0), "duration: 0 is out of range: must be greater than 0 and at most 600 seconds"),
        ("/duration", json!(601), "duration: 601 is out of range"),
        ("/schema_version", json!(2), "schema_version: 2 is not supported; this build reads schema_version 1"),
        ("/layers/2/opacity/1/value", json!(1.5), "layers[2] (`greeting`).opacity[1].value: 1.5 is out of range 0..=1"),
        ("/layers/1/transform/scale", json!(0), "layers[1] (`logo`).transform.scale: 0 must be greater than 0"),
        ("/layers/5/size/width", json!(-1), "layers[5] (`bar`).size.width: -1 must be greater than 0"),
        ("/layers/5/corner_radius", json!(-2), "layers[5] (`bar`).corner_radius: -2 must be at least 0"),
        ("/layers/0/trim_start", json!(-1), "layers[0] (`bg`).trim_start: -1 must be at least 0"),
        ("/layers/2/end", json!(11), "layers[2] (`greeting`).end: 11 is after the end of the video (duration 10)"),
        ("/layers/2/end", json!(0.5), "layers[2] (`greeting`).end: 0.5 must be after start (0.5)"),
        ("/layers/4/start", json!(10), "layers[4] (`offer`).start: 10 must be before the end of the video (duration 10)"),
        ("/layers/4/start", json!(-1), "layers[4] (`offer`).start: -1 must be at least 0"),
        ("/audio/loudness_lufs", json!(-50), "audio.loudness_lufs: -50 is out of range -40..=-5"),
        ("/audio/voice/start", json!(10), "audio.voice.start: 10 must be at least 0 and before the end of the video (duration 10)"),
        ("/audio/voice/max_duration", json!(0), "audio.voice.max_duration: 0 must be greater than 0"),
        ("/tokens/first_name/max_length", json!(0), "tokens.first_name.max_length: 0 is out of range 1..=200"),
        ("/tokens/first_name/max_length", json!(201), "tokens.first_name.max_length: 201 is out of range 1..=200"),
    ];
    for (pointer, value, expect) in cases {
        let doc = with(pointer, value.clone());
        let dir = bundle("range", &doc);
        match Bundle::load(dir.path()) {
            Ok(_) => panic!("{pointer} = {value}: no error, expected {expect:?}"),
            Err(e) => assert_contains(&e.to_string(), &[expect]),
        }
    }
}

#[test]
fn every_problem_is_listed_one_per_line() {
    let mut doc = full();
    set(&mut doc, "/fps", json!(0));
    set(&mut doc, "/layers/2/font_size", json!(0));
    set(&mut doc, "/layers/5/color", json!("orange"));
    set(&mut doc, "/layers/1/src", json!("../x.png"));
    let message = load_err(&doc);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "invalid template, 4 problems:", "{message}");
    assert_eq!(lines.len(), 5, "{message}");
    assert_contains(
        &message,
        &[
            "\n  fps: 0 is out of range 1..=60",
            "\n  layers[2] (`greeting`).font_size: 0 is out of range 4..=512",
            "\n  layers[5] (`bar`).color: `orange` is not a colour",
            "\n  layers[1] (`logo`).src: `../x.png` escapes the bundle",
        ],
    );
}

#[test]
fn a_single_problem_is_one_line() {
    let message = load_err(&with("/fps", json!(0)));
    assert_eq!(message, "invalid template: fps: 0 is out of range 1..=60");
}

#[test]
fn duplicate_and_empty_layer_ids() {
    check(
        &with("/layers/3/id", json!("greeting")),
        &["layers[3] (`greeting`).id: `greeting` is already the id of layers[2]; layer ids must be unique"],
    );
    check(
        &with("/layers/3/id", json!("")),
        &["layers[3].id: must not be empty"],
    );
}

#[test]
fn undeclared_and_malformed_tokens_in_text() {
    check(
        &with("/layers/2/text/en", json!("Hi {{frist_name}}!")),
        &["layers[2] (`greeting`).text.en: `{{frist_name}}` uses token `frist_name`, which is not declared in `tokens` (declared: amount, first_name, offer_code)"],
    );
    check(
        &with("/layers/4/text", json!({"*": "Code {{offer_code"})),
        &["layers[4] (`offer`).text[\"*\"]: `{{` at character 6 is never closed"],
    );
    check(
        &with("/layers/4/text", json!({"*": "Code {{Offer Code}}"})),
        &["layers[4] (`offer`).text[\"*\"]: `{{Offer Code}}` is not a placeholder"],
    );
}

#[test]
fn text_needs_a_string_for_every_language() {
    check(
        &with("/layers/2/text", json!({"en": "Hi {{first_name}}"})),
        &["layers[2] (`greeting`).text: no string for language `hi`; add `\"hi\"` or a `\"*\"` string"],
    );
    check(
        &with("/layers/2/text/ta", json!("வணக்கம்")),
        &["layers[2] (`greeting`).text.ta: `ta` is not one of languages (en, hi) or `\"*\"`"],
    );
}

#[test]
fn path_traversal_and_absolute_paths_are_refused() {
    check(
        &with("/layers/1/src", json!("../x.png")),
        &["layers[1] (`logo`).src: `../x.png` escapes the bundle"],
    );
    check(
        &with("/layers/1/src", json!("media/../../x.png")),
        &["`media/../../x.png` escapes the bundle"],
    );
    check(
        &with("/layers/1/src", json!("media\\..\\..\\x.png")),
        &["escapes the bundle"],
    );
    check(
        &with("/layers/0/src", json!("/etc/passwd")),
        &["layers[0] (`bg`).src: `/etc/passwd` is an absolute path; give a path relative to the bundle folder"],
    );
    check(
        &with("/layers/0/src", json!("C:\\x.mp4")),
        &["is an absolute path"],
    );
    check(
        &with("/layers/0/src", json!("")),
        &["layers[0] (`bg`).src: must name a file in the bundle"],
    );
    check(
        &with("/audio/music/src", json!("../music.mp3")),
        &["audio.music.src: `../music.mp3` escapes the bundle"],
    );
}

#[test]
fn missing_media_file_is_named() {
    check(
        &with("/layers/0/src", json!("bg.mp4")),
        &["layers[0] (`bg`).src: file `bg.mp4` not found in bundle"],
    );
    check(
        &with("/layers/0/src", json!("media")),
        &["layers[0] (`bg`).src: file `media` is a folder"],
    );
    check(
        &with("/audio/voice/default", json!({"hi": "voice/hi.wav"})),
        &["audio.voice.default.hi: file `voice/hi.wav` not found in bundle"],
    );
}

#[cfg(unix)]
#[test]
fn symbolic_link_out_of_the_bundle_is_refused() {
    let outside = crate::support::TempDir::new("outside");
    outside.write("secret.png", b"x");
    let doc = with("/layers/1/src", json!("link.png"));
    let dir = bundle("symlink", &doc);
    std::os::unix::fs::symlink(
        outside.path().join("secret.png"),
        dir.path().join("link.png"),
    )
    .expect("symlink");
    let err = Bundle::load(dir.path()).expect_err("escapes");
    assert_contains(
        &err.to_string(),
        &["layers[1] (`logo`).src: `link.png` escapes the bundle through a symbolic link"],
    );
}

#[test]
fn bad_colours_are_named() {
    check(
        &with("/layers/5/color", json!("#ff88")),
        &["layers[5] (`bar`).color: `#ff88` is not a colour; write `#RRGGBB` or `#RRGGBBAA`"],
    );
    check(
        &with("/background", json!("black")),
        &["background: `black` is not a colour"],
    );
    check(
        &with("/layers/2/shadow/color", json!("#zzzzzz")),
        &["layers[2] (`greeting`).shadow.color: `#zzzzzz` is not a colour"],
    );
}

#[test]
fn unsorted_and_empty_keyframes() {
    check(
        &with("/layers/2/opacity", json!([{"t": 1, "value": 1}, {"t": 0.5, "value": 0}])),
        &["layers[2] (`greeting`).opacity[1].t: 0.5 is not after the previous keyframe's 1; keyframes must be in strictly increasing time"],
    );
    check(
        &with(
            "/layers/2/opacity",
            json!([{"t": 1, "value": 1}, {"t": 1, "value": 0}]),
        ),
        &["layers[2] (`greeting`).opacity[1].t: 1 is not after the previous keyframe's 1"],
    );
    check(
        &with("/layers/2/transform/scale", json!([])),
        &["layers[2] (`greeting`).transform.scale: the keyframe list is empty"],
    );
}

#[test]
fn languages_and_default_language() {
    check(
        &with("/languages", json!([])),
        &["languages: must list at least one language code"],
    );
    check(
        &with("/languages", json!(["en", "hi", "en"])),
        &["languages[2]: `en` is already listed at languages[0]"],
    );
    check(
        &with("/languages", json!(["en", "hi", "*"])),
        &["languages[2]: `*` is not a language code"],
    );
    check(
        &with("/default_language", json!("fr")),
        &["default_language: `fr` is not one of languages (en, hi)"],
    );
}

#[test]
fn token_declarations() {
    check(
        &with("/name", json!("Thank You")),
        &["name: `Thank You` must be 1 to 64 characters of a-z, 0-9 and '-'"],
    );
    let mut doc = full();
    set(&mut doc, "/tokens/First", json!({"max_length": 5}));
    check(
        &doc,
        &["tokens.First: `First` is not a valid token name; use `[a-z_][a-z0-9_]{0,31}`"],
    );
    check(
        &with("/tokens/offer_code/fallback", json!({"*": "NOT OK!"})),
        &["tokens.offer_code.fallback[\"*\"]: `NOT OK!` may hold only letters, digits, '-' and '_'"],
    );
    check(
        &with("/tokens/first_name/fallback", json!({"xx": "friend"})),
        &["tokens.first_name.fallback.xx: `xx` is not one of languages (en, hi) or `\"*\"`"],
    );
    check(
        &with("/tokens/amount/fallback", json!({"*": "lots"})),
        &["tokens.amount.fallback[\"*\"]: `lots` is not a decimal number"],
    );
    check(
        &with("/tokens/offer_code/fallback", json!({"*": "A".repeat(13)})),
        &["tokens.offer_code.fallback[\"*\"]: 13 characters, at most 12 allowed"],
    );
}

#[test]
fn non_finite_numbers_are_refused_in_built_manifests() {
    let mut m: Manifest = manifest(&full());
    m.duration = f64::NAN;
    m.layers[1].transform.anchor = [f64::INFINITY, 0.0];
    m.audio.loudness_lufs = f64::NEG_INFINITY;
    let err = m.validate(None).expect_err("not finite");
    let found = problems(&err);
    for expect in [
        "duration: NaN is not a finite number",
        "layers[1] (`logo`).transform.anchor[0]: inf is not a finite number",
        "audio.loudness_lufs: -inf is not a finite number",
    ] {
        assert!(
            found.iter().any(|p| p == expect),
            "no {expect:?} in {found:#?}"
        );
    }
}

#[test]
fn problems_are_available_for_field_level_reporting() {
    let mut m = manifest(&full());
    m.fps = 0;
    let err = m.validate(None).expect_err("invalid");
    let list = err.problems();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].path, "fps");
    assert_eq!(list[0].message, "0 is out of range 1..=60");

    let err = Manifest::from_json(b"{\"fps\": \"x\"}").expect_err("wrong type");
    let list = err.problems();
    assert_eq!(list[0].path, "fps");
    assert_contains(&list[0].message, &["invalid type", "line 1 column"]);
}
