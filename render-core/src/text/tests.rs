use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

fn fonts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/fonts")
}

/// Runs HarfBuzz's `hb-shape` on a bundled font and returns `(glyph id, cluster)` in visual
/// order. Fails the test when `hb-shape` is missing: the reference is required, not optional.
fn hb_shape(font_file: &str, text: &str) -> Vec<(u16, usize)> {
    let output = Command::new("hb-shape")
        .env("LC_ALL", "C.UTF-8")
        .args([
            "--no-positions",
            "--no-advances",
            "--no-glyph-names",
            "--utf8-clusters",
        ])
        .arg("--output-format=text")
        .arg(fonts_dir().join(font_file))
        .arg(text)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run hb-shape ({e}); run scripts/setup to install libharfbuzz-bin")
        });
    assert!(
        output.status.success(),
        "hb-shape failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_hb_shape(&String::from_utf8_lossy(&output.stdout))
}

/// Parses `[12=0|40=3|...]` (glyph id = cluster), one bracketed group per line.
fn parse_hb_shape(out: &str) -> Vec<(u16, usize)> {
    out.lines()
        .map(|line| line.trim().trim_start_matches('[').trim_end_matches(']'))
        .filter(|line| !line.is_empty())
        .flat_map(|line| line.split('|'))
        .map(|item| {
            let (gid, cluster) = item.split_once('=').expect("glyph=cluster");
            (
                gid.parse().expect("numeric glyph id"),
                cluster.parse().expect("numeric cluster"),
            )
        })
        .collect()
}

#[test]
fn hb_shape_output_parses() {
    assert_eq!(
        parse_hb_shape("[1=0|22=3|5=3]\n"),
        vec![(1, 0), (22, 3), (5, 3)]
    );
}

/// (language, text, regular font file)
const SHAPING_CASES: &[(&str, &str, &str)] = &[
    ("hi", "किसी", "NotoSansDevanagari-Regular.ttf"),
    ("hi", "क्षत्रिय", "NotoSansDevanagari-Regular.ttf"),
    ("hi", "नमस्ते प्रिया", "NotoSansDevanagari-Regular.ttf"),
    ("mr", "आर्या", "NotoSansDevanagari-Regular.ttf"),
    ("bn", "কিশোর", "NotoSansBengali-Regular.ttf"),
    ("bn", "ক্ষ", "NotoSansBengali-Regular.ttf"),
    ("bn", "র্ক স্বাগতম", "NotoSansBengali-Regular.ttf"),
    ("ta", "கொடுத்த", "NotoSansTamil-Regular.ttf"),
    ("ta", "ஸ்ரீ", "NotoSansTamil-Regular.ttf"),
    ("ta", "கை கௌ க்ஷ", "NotoSansTamil-Regular.ttf"),
    ("te", "శ్రీనివాస్", "NotoSansTelugu-Regular.ttf"),
    ("te", "కృష్ణ", "NotoSansTelugu-Regular.ttf"),
    ("kn", "ಕನ್ನಡ", "NotoSansKannada-Regular.ttf"),
    ("kn", "ಶ್ರೀ ಕೃಷ್ಣ", "NotoSansKannada-Regular.ttf"),
    ("ml", "മലയാളം", "NotoSansMalayalam-Regular.ttf"),
    ("ml", "എന്റെ", "NotoSansMalayalam-Regular.ttf"),
    ("gu", "ગુજરાતી", "NotoSansGujarati-Regular.ttf"),
    ("gu", "ક્ષિતિ", "NotoSansGujarati-Regular.ttf"),
    ("pa", "ਪੰਜਾਬੀ", "NotoSansGurmukhi-Regular.ttf"),
    ("pa", "ਸ੍ਰੀ ਕਿਰਪਾ", "NotoSansGurmukhi-Regular.ttf"),
    ("ar", "مرحبا بك", "NotoSansArabic-Regular.ttf"),
    ("ar", "لا سلام", "NotoSansArabic-Regular.ttf"),
    ("en", "office AVATAR", "NotoSans-Regular.ttf"),
];

fn check_against_hb(bold: bool) {
    let mut engine = TextEngine::new();
    for &(lang, text, regular) in SHAPING_CASES {
        let file = if bold {
            regular.replace("-Regular", "-Bold")
        } else {
            regular.to_owned()
        };
        let ours = engine.shape_line(text, 64.0, bold, lang).expect("shapes");
        for glyph in &ours {
            assert_eq!(
                glyph.font_file, file,
                "{lang} {text:?}: glyph {glyph:?} from another font"
            );
        }
        let ours: Vec<(u16, usize)> = ours.iter().map(|g| (g.glyph_id, g.cluster)).collect();
        let reference = hb_shape(&file, text);
        assert_eq!(
            ours, reference,
            "{lang} {text:?} in {file}: (glyph, cluster) differ from hb-shape"
        );
    }
}

#[test]
fn shaping_matches_harfbuzz_regular() {
    check_against_hb(false);
}

#[test]
fn shaping_matches_harfbuzz_bold() {
    check_against_hb(true);
}

#[test]
fn reordering_actually_happens() {
    // Guards the comparison itself: the i-matra (U+093F, byte 3) is drawn before its consonant,
    // so clusters are not in logical order glyph by glyph, and Tamil கொ splits around the base.
    let mut engine = TextEngine::new();
    let kisi = engine
        .shape_line("किसी", 64.0, false, "hi")
        .expect("shapes");
    assert_eq!(kisi.len(), 4, "{kisi:?}");
    assert_eq!(
        kisi[0].cluster, kisi[1].cluster,
        "i-matra and क share a cluster: {kisi:?}"
    );
    let ko = engine.shape_line("கொ", 64.0, false, "ta").expect("shapes");
    assert_eq!(ko.len(), 3, "split vowel: prefix, base, suffix: {ko:?}");
}

#[test]
fn fallback_across_scripts() {
    let mut engine = TextEngine::new();
    let glyphs = engine
        .shape_line("Hello ராகுல்!", 48.0, false, "en")
        .expect("shapes");
    let files: BTreeSet<&str> = glyphs.iter().map(|g| g.font_file).collect();
    assert!(files.contains("NotoSans-Regular.ttf"), "{files:?}");
    assert!(files.contains("NotoSansTamil-Regular.ttf"), "{files:?}");
    assert!(glyphs.iter().all(|g| g.glyph_id != 0), "{glyphs:?}");

    // Arabic paragraph with Latin digits: the number keeps its order and sits left of the word.
    let text = "مرحبا 123";
    let glyphs = engine.shape_line(text, 48.0, false, "ar").expect("shapes");
    assert!(glyphs.iter().all(|g| g.glyph_id != 0), "{glyphs:?}");
    let digit = text.find('1').expect("digit");
    let clusters: Vec<usize> = glyphs.iter().map(|g| g.cluster).collect();
    assert_eq!(
        &clusters[..3],
        &[digit, digit + 1, digit + 2],
        "{clusters:?}"
    );
    assert_eq!(
        *clusters.last().expect("glyphs"),
        0,
        "first letter is rightmost: {clusters:?}"
    );
}

/// Alpha sum and the bounding box of pixels with alpha, `(x0, y0, x1, y1)` exclusive.
fn ink(r: &RasterText) -> (u64, Option<(u32, u32, u32, u32)>) {
    let mut sum = 0u64;
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for y in 0..r.height {
        for x in 0..r.width {
            let a = r.pixels[((y * r.width + x) * 4 + 3) as usize];
            if a > 0 {
                sum += u64::from(a);
                bbox = Some(match bbox {
                    None => (x, y, x + 1, y + 1),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)),
                });
            }
        }
    }
    (sum, bbox)
}

fn assert_premultiplied(r: &RasterText) {
    assert_eq!(r.pixels.len(), (r.width * r.height * 4) as usize);
    for (i, px) in r.pixels.chunks_exact(4).enumerate() {
        assert!(
            px[0] <= px[3] && px[1] <= px[3] && px[2] <= px[3],
            "pixel {i}: {px:?}"
        );
    }
}

fn assert_edges_transparent(r: &RasterText) {
    let (_, bbox) = ink(r);
    if let Some((x0, y0, x1, y1)) = bbox {
        assert!(
            x0 >= 1 && y0 >= 1 && x1 < r.width && y1 < r.height,
            "ink {bbox:?} touches the edge of {}x{}",
            r.width,
            r.height
        );
    }
}

fn style(lang: &str, font_size: f32) -> TextStyle {
    TextStyle {
        font_size,
        min_font_size: 12.0,
        lang: lang.to_owned(),
        ..TextStyle::default()
    }
}

/// A Hindi greeting that wraps to two lines at 72 px in a 1400 px wide box.
const HINDI_TWO_LINES: &str =
    "दीपावली की हार्दिक शुभकामनाएँ, प्रिया शर्मा जी! आपका हर दिन रोशनी से भरा हो";

const GREETINGS: &[(&str, &str)] = &[
    ("en", "Happy Diwali, Priya!"),
    ("hi", "दीपावली की शुभकामनाएँ, प्रिया!"),
    ("bn", "শুভ দীপাবলি, কিশোর!"),
    ("ta", "தீபாவளி வாழ்த்துக்கள், கொடுத்த ஸ்ரீ!"),
    ("te", "దీపావళి శుభాకాంక్షలు, శ్రీనివాస్!"),
    ("kn", "ದೀಪಾವಳಿ ಹಬ್ಬದ ಶುಭಾಶಯಗಳು, ಕೃಷ್ಣ!"),
    ("ml", "ദീപാവലി ആശംസകൾ, എന്റെ സുഹൃത്തേ!"),
    ("gu", "દિવાળીની શુભકામનાઓ, ક્ષિતિ!"),
    ("pa", "ਦੀਵਾਲੀ ਦੀਆਂ ਵਧਾਈਆਂ, ਸ੍ਰੀ ਕਿਰਪਾ!"),
    ("ar", "مرحبا بك يا أحمد، عيد مبارك 2025!"),
];

#[test]
fn every_script_has_ink_and_no_missing_glyphs() {
    let mut engine = TextEngine::new();
    for &(lang, text) in GREETINGS {
        for bold in [false, true] {
            let style = TextStyle {
                bold,
                ..style(lang, 64.0)
            };
            let r = engine
                .rasterize(text, 900, 260, &style)
                .expect("rasterizes");
            let (sum, _) = ink(&r);
            assert!(sum > 0, "{lang}: no ink");
            assert!(r.warnings.is_empty(), "{lang}: {:?}", r.warnings);
            assert!(r.lines >= 1);
            assert_premultiplied(&r);
            assert_edges_transparent(&r);
        }
    }
}

#[test]
fn long_name_shrinks_and_both_fit() {
    let mut engine = TextEngine::new();
    let style = TextStyle {
        font_size: 80.0,
        min_font_size: 8.0,
        ..style("en", 80.0)
    };
    let short = engine
        .rasterize("Hi Ana!", 640, 120, &style)
        .expect("short fits");
    let long = engine
        .rasterize(
            "Hi Maximiliana-Alexandrina Konstantinopoulou-Vanderbergh!",
            640,
            120,
            &style,
        )
        .expect("long fits");
    assert_eq!(short.font_size, 80.0);
    assert!(
        long.font_size < short.font_size,
        "{} vs {}",
        long.font_size,
        short.font_size
    );
    assert_eq!(long.font_size % SIZE_STEP, 0.0);
    for r in [&short, &long] {
        assert!(ink(r).0 > 0);
        assert_edges_transparent(r);
        assert_premultiplied(r);
    }
}

#[test]
fn tall_marks_are_not_clipped() {
    // Stacked marks above and below the line in a box barely taller than the text.
    let mut engine = TextEngine::new();
    let cases = [
        ("hi", "र्क्ष्ट्रीं ट्रृ कॢ"),
        ("ar", "شُكْرًا لِلّٰهِ"),
        ("ml", "ക്ഷ്ണ്യ"),
        ("kn", "ಕ್ಷ್ಮೀ ಸ್ತ್ರೀ"),
    ];
    for (lang, text) in cases {
        for height in [40, 64, 100] {
            let r = engine
                .rasterize(text, 500, height, &style(lang, 96.0))
                .expect("fits");
            assert!(ink(&r).0 > 0, "{lang}");
            assert_edges_transparent(&r);
        }
    }
}

#[test]
fn fit_uses_the_largest_size_that_fits() {
    let mut engine = TextEngine::new();
    let base = TextStyle {
        min_font_size: 4.0,
        ..style("ta", 120.0)
    };
    let r = engine
        .rasterize("வணக்கம் ராகுல்", 500, 90, &base)
        .expect("fits");
    assert!(r.font_size < 120.0);
    // Half a pixel larger does not fit: forcing that size shrinks again.
    let bigger = TextStyle {
        font_size: r.font_size + SIZE_STEP,
        ..base
    };
    let r2 = engine
        .rasterize("வணக்கம் ராகுல்", 500, 90, &bigger)
        .expect("fits");
    assert_eq!(r2.font_size, r.font_size);
}

#[test]
fn wraps_at_word_boundaries() {
    let mut engine = TextEngine::new();
    let text = "Dear Priya, thank you for shopping with us this festive season";
    let r = engine
        .rasterize(text, 700, 400, &style("en", 56.0))
        .expect("fits");
    assert!(r.lines >= 2, "{} lines", r.lines);
    assert_eq!(r.font_size, 56.0);
    let one_line = engine
        .rasterize("Dear Priya", 700, 400, &style("en", 56.0))
        .expect("fits");
    assert_eq!(one_line.lines, 1);
    // Explicit line breaks start new paragraphs.
    let two = engine
        .rasterize("Dear\nPriya", 700, 400, &style("en", 56.0))
        .expect("fits");
    assert_eq!(two.lines, 2);
}

#[test]
fn alignment_follows_paragraph_direction() {
    let mut engine = TextEngine::new();
    let bbox = |engine: &mut TextEngine, text: &str, lang: &str, align: Align| {
        let style = TextStyle {
            align,
            ..style(lang, 40.0)
        };
        let r = engine.rasterize(text, 800, 100, &style).expect("fits");
        ink(&r).1.expect("ink")
    };
    for (text, lang, rtl) in [("Hello Priya", "en", false), ("مرحبا أحمد", "ar", true)] {
        let start = bbox(&mut engine, text, lang, Align::Start);
        let end = bbox(&mut engine, text, lang, Align::End);
        let center = bbox(&mut engine, text, lang, Align::Center);
        let (left, right) = if rtl { (end, start) } else { (start, end) };
        assert!(left.0 <= 6, "{lang}: left-aligned ink starts at {}", left.0);
        assert!(
            right.2 >= 794,
            "{lang}: right-aligned ink ends at {}",
            right.2
        );
        let mid = (center.0 + center.2) / 2;
        assert!((390..=410).contains(&mid), "{lang}: centred ink mid {mid}");
        // Vertically centred.
        let vmid = (center.1 + center.3) / 2;
        assert!((35..=65).contains(&vmid), "{lang}: vertical mid {vmid}");
    }
}

#[test]
fn shadow_is_drawn_under_the_text() {
    let mut engine = TextEngine::new();
    let plain = style("hi", 64.0);
    let shadowed = TextStyle {
        shadow: Some(([0, 0, 0, 160], [4.0, 3.0])),
        ..plain.clone()
    };
    let a = engine
        .rasterize("नमस्ते प्रिया", 700, 140, &plain)
        .expect("fits");
    let b = engine
        .rasterize("नमस्ते प्रिया", 700, 140, &shadowed)
        .expect("fits");
    assert!(ink(&b).0 > ink(&a).0, "shadow adds ink");
    assert_premultiplied(&b);
    assert_edges_transparent(&b);
    // Opaque white text over the shadow: some pixels are fully white, some dark.
    let white = b
        .pixels
        .chunks_exact(4)
        .filter(|p| *p == [255, 255, 255, 255])
        .count();
    let dark = b
        .pixels
        .chunks_exact(4)
        .filter(|p| p[3] > 100 && p[0] < 10)
        .count();
    assert!(white > 0 && dark > 0, "white {white}, dark {dark}");
}

#[test]
fn translucent_colours_stay_premultiplied() {
    let mut engine = TextEngine::new();
    let style = TextStyle {
        color: [250, 180, 20, 200],
        shadow: Some(([30, 60, 255, 90], [-3.0, 2.5])),
        ..style("bn", 60.0)
    };
    let r = engine
        .rasterize("শুভ দীপাবলি, কিশোর!", 800, 160, &style)
        .expect("fits");
    assert_premultiplied(&r);
    let max_alpha = r.pixels.chunks_exact(4).map(|p| p[3]).max().unwrap_or(0);
    assert!(
        max_alpha > 180,
        "overlapping translucent layers reach {max_alpha}"
    );
}

#[test]
fn deterministic_bytes() {
    let style = TextStyle {
        shadow: Some(([0, 0, 0, 128], [2.5, 2.5])),
        ..style("ta", 72.0)
    };
    let text = "வணக்கம் ராகுல், Happy Pongal 2025!";
    let mut first = TextEngine::new();
    let a = first.rasterize(text, 1000, 200, &style).expect("fits");
    let b = first.rasterize(text, 1000, 200, &style).expect("fits");
    let c = TextEngine::new()
        .rasterize(text, 1000, 200, &style)
        .expect("fits");
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn below_min_size_warns_without_the_text() {
    let mut engine = TextEngine::new();
    let text = "Konstantinopoulou";
    let style = TextStyle {
        font_size: 48.0,
        min_font_size: 30.0,
        ..style("en", 48.0)
    };
    let r = engine
        .rasterize(text, 150, 60, &style)
        .expect("fits at a smaller size");
    assert!(r.font_size < 30.0);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let w = &r.warnings[0];
    assert!(w.contains("below min_font_size 30"), "{w}");
    assert!(w.contains("17 characters"), "{w}");
    assert!(!w.contains(text), "{w}");
    assert_edges_transparent(&r);
}

#[test]
fn missing_glyphs_are_named_by_code_point() {
    let mut engine = TextEngine::new();
    let text = "Hi 中文";
    let r = engine
        .rasterize(text, 600, 100, &style("en", 40.0))
        .expect("fits");
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let w = &r.warnings[0];
    assert!(w.contains("U+4E2D") && w.contains("U+6587"), "{w}");
    assert!(!w.contains('中') && !w.contains("Hi"), "{w}");
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    let mut engine = TextEngine::new();
    let ok = style("en", 40.0);
    let err = |r: Result<RasterText, TextError>| r.expect_err("must fail");

    let e = err(engine.rasterize("Priya", 0, 100, &ok));
    assert!(
        matches!(
            e,
            TextError::BoxSize {
                width: 0,
                height: 100
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("0x100"), "{e}");
    assert!(matches!(
        err(engine.rasterize("Priya", 100, 0, &ok)),
        TextError::BoxSize { .. }
    ));
    assert!(matches!(
        err(engine.rasterize("Priya", 100_000, 10, &ok)),
        TextError::BoxSize { .. }
    ));

    for (field, bad) in [
        (
            "font_size",
            TextStyle {
                font_size: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "font_size",
            TextStyle {
                font_size: f32::INFINITY,
                ..ok.clone()
            },
        ),
        (
            "font_size",
            TextStyle {
                font_size: 0.0,
                ..ok.clone()
            },
        ),
        (
            "min_font_size",
            TextStyle {
                min_font_size: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "min_font_size",
            TextStyle {
                min_font_size: 50.0,
                ..ok.clone()
            },
        ),
        (
            "line_height",
            TextStyle {
                line_height: 0.0,
                ..ok.clone()
            },
        ),
        (
            "line_height",
            TextStyle {
                line_height: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "shadow offset x",
            TextStyle {
                shadow: Some(([0; 4], [f32::NAN, 0.0])),
                ..ok.clone()
            },
        ),
    ] {
        let e = err(engine.rasterize("Priya", 100, 100, &bad));
        assert!(matches!(e, TextError::Style { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(field) && msg.contains("out of range"),
            "{msg}"
        );
    }
    let e = engine
        .shape_line("Priya", f32::NAN, false, "en")
        .expect_err("must fail");
    assert!(matches!(e, TextError::Style { .. }), "{e}");

    let e = err(engine.rasterize("Maximiliana Alexandrina", 3, 3, &ok));
    assert!(matches!(e, TextError::DoesNotFit { chars: 23, .. }), "{e}");
    assert!(!e.to_string().contains("Maximiliana"), "{e}");

    let huge = "a".repeat(MAX_TEXT_BYTES + 1);
    assert!(matches!(
        err(engine.rasterize(&huge, 100, 100, &ok)),
        TextError::TextTooLong { .. }
    ));
}

#[test]
fn blank_text_is_a_transparent_box() {
    let mut engine = TextEngine::new();
    for text in ["", "   ", "\n"] {
        let r = engine
            .rasterize(text, 64, 32, &style("en", 40.0))
            .expect("blank is fine");
        assert_eq!(r.lines, 0);
        assert_eq!(r.pixels.len(), 64 * 32 * 4);
        assert!(r.pixels.iter().all(|&b| b == 0));
    }
}

#[test]
fn engine_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<TextEngine>();
}

/// Writes greetings in several scripts to `target/text-samples/` for looking at, composited
/// over a dark background, and checks each PNG reads back at the box size.
#[test]
fn write_sample_pngs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/text-samples");
    std::fs::create_dir_all(&dir).expect("create sample dir");
    let mut engine = TextEngine::new();
    // (file name, language, text, box width, box height, alignment)
    let samples = [
        (
            "ta",
            "ta",
            "வணக்கம் ராகுல்! கொடுத்த ஸ்ரீ",
            1200,
            220,
            Align::Center,
        ),
        ("bn", "bn", "শুভ নববর্ষ, কিশোর! ক্ষমা", 1200, 220, Align::Center),
        (
            "hi",
            "hi",
            "नमस्ते प्रिया! किसी क्षत्रिय",
            1200,
            220,
            Align::Center,
        ),
        (
            "ar",
            "ar",
            "مرحبا بك يا أحمد 2025",
            1200,
            220,
            Align::Center,
        ),
        (
            "en",
            "en",
            "Happy Pongal, வணக்கம் ராகுல்!",
            1200,
            220,
            Align::Center,
        ),
        ("hi-2line", "hi", HINDI_TWO_LINES, 1400, 300, Align::Start),
        (
            "ar-2line",
            "ar",
            "عيد مبارك يا أحمد، نتمنى لك ولعائلتك أياما سعيدة مليئة بالفرح",
            1000,
            300,
            Align::Start,
        ),
        ("marks-tight", "hi", "र्क्ष्ट्रीं ट्रृ कॢ", 500, 64, Align::Center),
    ];
    for (name, lang, text, width, height, align) in samples {
        let style = TextStyle {
            shadow: Some(([0, 0, 0, 180], [3.0, 3.0])),
            color: [255, 220, 120, 255],
            align,
            ..style(lang, 72.0)
        };
        let r = engine.rasterize(text, width, height, &style).expect("fits");
        let mut rgb = Vec::with_capacity((r.width * r.height * 3) as usize);
        for px in r.pixels.chunks_exact(4) {
            let inv = 255 - u32::from(px[3]);
            for (c, bg) in px[..3].iter().zip([40u32, 44, 52]) {
                rgb.push((u32::from(*c) + raster::mul_255(bg, inv)).min(255) as u8);
            }
        }
        let path = dir.join(format!("{name}.png"));
        image::RgbImage::from_raw(r.width, r.height, rgb)
            .expect("buffer matches size")
            .save(&path)
            .expect("write png");
        let back = image::open(&path).expect("read png");
        assert_eq!((back.width(), back.height()), (width, height));
    }
}
