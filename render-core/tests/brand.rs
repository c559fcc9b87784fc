//! Brand typography end to end: a template's own font shapes like HarfBuzz says it should and
//! is really used, stacked text layers do not touch, and a changed font changes segment keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use render_core::cpu;
use render_core::media::EncoderSettings;
use render_core::scene::Scene;
use render_core::segments::{self, KeyInputs};
use render_core::text::{TextEngine, TextStyle, VerticalAlign};
use serde_json::{json, Value};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/brand-font/Lobster.otf")
}

fn font_bytes() -> Vec<u8> {
    std::fs::read(fixture()).expect("brand font fixture")
}

/// Units per em of a font, from its `head` table.
fn units_per_em(font: &[u8]) -> u16 {
    let be16 = |at: usize| u16::from_be_bytes([font[at], font[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([font[at], font[at + 1], font[at + 2], font[at + 3]]);
    (0..usize::from(be16(4)))
        .map(|i| 12 + 16 * i)
        .find(|&record| &font[record..record + 4] == b"head")
        .map(|record| be16(be32(record + 8) as usize + 18))
        .expect("head table")
}

/// HarfBuzz's `(glyph id, cluster, x advance in font units)` for `text` in `font`, in visual
/// order. Fails when `hb-shape` is missing: the reference is required.
fn hb_shape(font: &Path, text: &str) -> Vec<(u16, usize, i32)> {
    let output = Command::new("hb-shape")
        .env("LC_ALL", "C.UTF-8")
        .args(["--no-glyph-names", "--utf8-clusters"])
        .arg("--output-format=text")
        .arg(font)
        .arg(text)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run hb-shape ({e}); run scripts/setup to install libharfbuzz-bin")
        });
    assert!(output.status.success(), "hb-shape failed");
    let out = String::from_utf8_lossy(&output.stdout);
    out.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split('|')
        .map(|item| {
            // `gid=cluster+advance`, or `gid=cluster@x,y+advance` for a glyph with an offset
            // (which shaping here never gives: those fail the comparison).
            let (gid, rest) = item.split_once('=').expect("gid=cluster");
            let (cluster, advance) = rest.split_once('+').expect("cluster+advance");
            (
                gid.parse().expect("glyph id"),
                cluster.parse().expect("cluster"),
                advance.parse().expect("advance"),
            )
        })
        .collect()
}

const BRAND_TEXTS: [&str; 3] = [
    "Happy Diwali, Priya!",
    "The offer ends Sunday",
    "Thanks for being with us",
];

#[test]
fn brand_font_shapes_like_harfbuzz_and_is_really_used() {
    let bytes = font_bytes();
    let upem = units_per_em(&bytes);
    let mut engine = TextEngine::new();
    let family = engine.load_font(&bytes).expect("the brand font loads");
    assert_eq!(engine.load_font(&bytes).expect("loads again"), family);
    // At a font size of one em per pixel, advances in pixels are advances in font units.
    let brand = TextStyle {
        font_size: f32::from(upem),
        lang: "en".to_owned(),
        font_family: Some(family.clone()),
        ..TextStyle::default()
    };
    let noto = TextStyle {
        font_family: None,
        ..brand.clone()
    };
    for text in BRAND_TEXTS {
        let ours = engine.shape_styled(text, &brand).expect("shapes");
        let reference = hb_shape(&fixture(), text);
        let ours_triples: Vec<(u16, usize, i32)> = ours
            .iter()
            .map(|g| (g.glyph_id, g.cluster, g.advance.round() as i32))
            .collect();
        assert_eq!(ours_triples, reference, "{text:?}: differs from hb-shape");
        for glyph in &ours {
            assert_eq!(
                glyph.family, family,
                "{text:?}: a glyph came from another font"
            );
            assert!((glyph.advance - glyph.advance.round()).abs() < 0.01);
        }

        let fallback = engine.shape_styled(text, &noto).expect("shapes");
        assert!(fallback.iter().all(|g| g.family == "Noto Sans"));
        let ids = |g: &[render_core::text::PositionedGlyph]| -> Vec<u16> {
            g.iter().map(|g| g.glyph_id).collect()
        };
        assert_ne!(
            ids(&ours),
            ids(&fallback),
            "{text:?}: same glyphs as Noto Sans"
        );
    }

    // Drawn, the brand font gives other pixels than Noto Sans.
    let size = TextStyle {
        font_size: 48.0,
        ..brand.clone()
    };
    let with_brand = engine
        .rasterize(BRAND_TEXTS[0], 600, 120, &size)
        .expect("rasterizes");
    let with_noto = engine
        .rasterize(
            BRAND_TEXTS[0],
            600,
            120,
            &TextStyle {
                font_family: None,
                ..size.clone()
            },
        )
        .expect("rasterizes");
    assert_ne!(with_brand.pixels, with_noto.pixels);
    assert!(with_brand.warnings.is_empty(), "{:?}", with_brand.warnings);
}

#[test]
fn characters_the_brand_font_lacks_fall_back_to_noto() {
    let mut engine = TextEngine::new();
    let family = engine.load_font(&font_bytes()).expect("loads");
    let style = TextStyle {
        font_family: Some(family.clone()),
        lang: "ta".to_owned(),
        ..TextStyle::default()
    };
    let text = "Hi ராகுல்";
    let glyphs = engine.shape_styled(text, &style).expect("shapes");
    for glyph in &glyphs {
        let c = text[glyph.cluster..].chars().next().expect("char");
        if c.is_ascii_alphabetic() {
            assert_eq!(glyph.family, family, "{c:?}");
        } else if !c.is_whitespace() {
            assert_eq!(glyph.family, "Noto Sans Tamil", "{c:?}");
        }
        assert_ne!(glyph.glyph_id, 0, "{c:?} drawn as .notdef");
    }
    let raster = engine.rasterize(text, 500, 100, &style).expect("draws");
    assert!(raster.warnings.is_empty(), "{:?}", raster.warnings);
}

#[test]
fn bad_fonts_and_unloaded_families_are_errors() {
    let mut engine = TextEngine::new();
    let err = engine.load_font(b"not a font").expect_err("garbage");
    assert!(
        err.to_string().contains("not a TrueType or OpenType font"),
        "{err}"
    );
    let style = TextStyle {
        font_family: Some("reelfarm-brand-0000000000000000".to_owned()),
        ..TextStyle::default()
    };
    let err = engine
        .rasterize("Hi", 100, 50, &style)
        .expect_err("unknown family");
    assert!(err.to_string().contains("is not loaded"), "{err}");
}

#[test]
fn line_height_vertical_alignment_and_outline_are_honoured() {
    let mut engine = TextEngine::new();
    let two_lines = "First line here\nSecond line here";
    let at = |line_height: f32, vertical_align: VerticalAlign| TextStyle {
        font_size: 40.0,
        min_font_size: 40.0,
        line_height,
        vertical_align,
        lang: "en".to_owned(),
        ..TextStyle::default()
    };
    let rows = |r: &render_core::text::RasterText| r.ink_rows.expect("ink");
    let tight = engine
        .rasterize(two_lines, 600, 400, &at(1.0, VerticalAlign::Top))
        .expect("fits");
    let loose = engine
        .rasterize(two_lines, 600, 400, &at(2.0, VerticalAlign::Top))
        .expect("fits");
    assert_eq!(
        (tight.font_size, loose.font_size, tight.lines),
        (40.0, 40.0, 2)
    );
    // One more line gap of 40 px: the ink is 40 px taller (within a pixel of rounding).
    let height = |r| {
        let (a, b) = rows(r);
        i64::from(b) - i64::from(a)
    };
    assert!(
        (height(&loose) - height(&tight) - 40).abs() <= 1,
        "{} vs {}",
        height(&loose),
        height(&tight)
    );

    let top = rows(&tight);
    let middle = rows(
        &engine
            .rasterize(two_lines, 600, 400, &at(1.0, VerticalAlign::Middle))
            .expect("fits"),
    );
    let bottom = rows(
        &engine
            .rasterize(two_lines, 600, 400, &at(1.0, VerticalAlign::Bottom))
            .expect("fits"),
    );
    assert!(top.0 < 20, "top-aligned ink starts at row {}", top.0);
    assert!(
        bottom.1 > 380,
        "bottom-aligned ink ends at row {}",
        bottom.1
    );
    let centre = |(a, b): (u32, u32)| f64::from(a + b) / 2.0;
    assert!((centre(middle) - 200.0).abs() < 15.0, "{middle:?}");

    // An outline grows the ink by about its width, in its colour, under the text.
    let plain = engine
        .rasterize("Outline", 400, 120, &at(1.2, VerticalAlign::Middle))
        .expect("fits");
    let outlined_style = TextStyle {
        color: [255, 255, 255, 255],
        outline: Some(([255, 0, 0, 255], 4.0)),
        ..at(1.2, VerticalAlign::Middle)
    };
    let outlined = engine
        .rasterize("Outline", 400, 120, &outlined_style)
        .expect("fits");
    let (p, o) = (rows(&plain), rows(&outlined));
    assert_eq!(plain.font_size, outlined.font_size);
    assert!(
        (i64::from(o.1 - o.0) - i64::from(p.1 - p.0) - 8).abs() <= 2,
        "plain rows {p:?}, outlined rows {o:?}"
    );
    let red = outlined
        .pixels
        .chunks_exact(4)
        .filter(|px| px[0] == 255 && px[1] == 0 && px[3] == 255)
        .count();
    let white = outlined
        .pixels
        .chunks_exact(4)
        .filter(|px| px == &[255, 255, 255, 255])
        .count();
    assert!(red > 500 && white > 500, "red {red}, white {white}");
}

/// A three-line Tamil headline (at 64 px in a 900 px wide box).
const TAMIL_HEADLINE: &str = "தீபாவளி நல்வாழ்த்துக்கள் அன்புள்ள ராஜேஸ்வரி அவர்களே";

/// A template with a red Tamil headline at the top and a green line placed where a one-line
/// headline would end, optionally stacked below the headline.
fn stack_template(stacked: bool) -> Value {
    let mut lower = json!({
        "id": "offer", "type": "text", "text": {"*": "சிறப்பு சலுகை இன்று மட்டும்"},
        "size": {"width": 900, "height": 90}, "font_size": 48, "color": "#00ff00",
        "transform": {"position": [190, 170]}
    });
    if stacked {
        lower["below"] = json!("headline");
        lower["gap"] = json!(12);
    }
    json!({
        "schema_version": 1,
        "name": "stack",
        "width": 1280,
        "height": 720,
        "fps": 30,
        "duration": 2,
        "languages": ["ta"],
        "default_language": "ta",
        "layers": [
            {"id": "headline", "type": "text", "text": {"*": TAMIL_HEADLINE},
             "size": {"width": 900, "height": 400}, "font_size": 64, "min_font_size": 64,
             "color": "#ff0000", "vertical_align": "top",
             "transform": {"position": [190, 60]}},
            lower
        ]
    })
}

/// Renders frame `t` of a bundle in `dir` on the CPU reference compositor and returns the
/// rows holding red (headline) and green (lower line) ink.
fn red_and_green_rows(dir: &Path, t: f64) -> (Vec<u32>, Vec<u32>) {
    let bundle = template::Bundle::load(dir).expect("bundle");
    let timeline = template::resolve(&bundle.manifest, "ta", &BTreeMap::new()).expect("timeline");
    let mut text = TextEngine::new();
    let scene = Scene::build(&bundle, &timeline, &mut text, 1280, 720).expect("scene");
    let mut layers = Vec::new();
    scene.frame_layers(&timeline, t, &mut layers);
    let frame = shaders::FrameUniforms {
        width: 1280,
        height: 720,
        layer_count: layers.len() as u32,
        tiles_x: 0,
        background: scene.background,
    };
    let px = cpu::words_to_bytes(&cpu::composite(&frame, &layers, &scene.atlas, &scene.video));
    let (mut red, mut green) = (Vec::new(), Vec::new());
    for (y, row) in px.chunks_exact(1280 * 4).enumerate() {
        if row.chunks_exact(4).any(|p| p[0] > 0) {
            red.push(y as u32);
        }
        if row.chunks_exact(4).any(|p| p[1] > 0) {
            green.push(y as u32);
        }
    }
    (red, green)
}

fn write_template(value: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("template.json"),
        serde_json::to_vec(value).expect("json"),
    )
    .expect("write");
    dir
}

#[test]
fn stacked_line_clears_a_three_line_tamil_headline() {
    // The headline really takes three lines at its size.
    let mut engine = TextEngine::new();
    let headline = engine
        .rasterize(
            TAMIL_HEADLINE,
            900,
            400,
            &TextStyle {
                font_size: 64.0,
                min_font_size: 64.0,
                line_height: 1.3,
                vertical_align: VerticalAlign::Top,
                lang: "ta".to_owned(),
                ..TextStyle::default()
            },
        )
        .expect("fits");
    assert_eq!((headline.lines, headline.font_size), (3, 64.0));

    // Unstacked, the lower line's ink runs into the headline's.
    let plain = write_template(&stack_template(false));
    let (red, green) = red_and_green_rows(plain.path(), 1.0);
    let (red_end, green_start) = (*red.last().expect("red ink"), green[0]);
    assert!(
        green_start <= red_end + 1,
        "without the stack the lines should touch: headline ends at row {red_end}, lower line \
         starts at row {green_start}"
    );

    // Stacked, every row between the two is background, and the gap is at least 12 px.
    let stacked = write_template(&stack_template(true));
    let (red, green) = red_and_green_rows(stacked.path(), 1.0);
    let (red_end, green_start) = (*red.last().expect("red ink"), green[0]);
    assert!(
        green_start > red_end,
        "stacked lines touch: headline rows up to {red_end}, lower line from {green_start}"
    );
    assert!(
        green_start - red_end >= 12,
        "gap of {} rows, wanted 12",
        green_start - red_end
    );
    let between = red_end + 1..green_start;
    assert!(red.iter().chain(&green).all(|y| !between.contains(y)));
    // The lower line moved down by the push and nothing else changed.
    assert_eq!(green.len(), {
        let (_, g) = red_and_green_rows(plain.path(), 1.0);
        g.len()
    });
}

#[test]
fn a_changed_font_file_changes_segment_keys() {
    let dir = write_template(&json!({
        "schema_version": 1,
        "name": "brand",
        "width": 640,
        "height": 360,
        "fps": 30,
        "duration": 2,
        "languages": ["en"],
        "default_language": "en",
        "fonts": [{"id": "brand", "src": "fonts/Brand.otf"}],
        "layers": [
            {"id": "title", "type": "text", "text": {"*": "Happy Diwali"},
             "size": {"width": 600, "height": 100}, "font_size": 48}
        ]
    }));
    std::fs::create_dir_all(dir.path().join("fonts")).expect("fonts dir");
    std::fs::write(dir.path().join("fonts/Brand.otf"), font_bytes()).expect("font");
    let bundle = template::Bundle::load(dir.path()).expect("bundle");
    assert!(bundle.manifest.media_files().contains("fonts/Brand.otf"));
    let timeline = template::resolve(&bundle.manifest, "en", &BTreeMap::new()).expect("timeline");
    let mut text = TextEngine::new();
    let scene = Scene::build(&bundle, &timeline, &mut text, 640, 360).expect("scene");
    let settings = EncoderSettings::default();
    let keys = |digest: &str| -> Vec<String> {
        let media = BTreeMap::from([("fonts/Brand.otf".to_owned(), digest.to_owned())]);
        let inputs = KeyInputs {
            renderer: "test",
            settings: &settings,
            media: &media,
        };
        segments::plan(&timeline, &scene, 0..timeline.frame_count, &inputs)
            .into_iter()
            .map(|s| s.key)
            .collect()
    };
    let before = keys(&segments::file_digest(&dir.path().join("fonts/Brand.otf")).expect("digest"));
    let after = keys(&"0".repeat(64));
    assert_eq!(before.len(), 2);
    for (a, b) in before.iter().zip(&after) {
        assert_ne!(a, b, "the font's digest is not in the segment key");
    }
}
