//! Timeline resolution, layer state over time, and frame ranges.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use template::{
    resolve, resolve_tokens, Affine, Easing, ResolvedContent, ResolvedLayer, TemplateError,
    Timeline,
};

use crate::support::{full, manifest, minimal};

fn tokens(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn timeline(doc: &Value, lang: &str) -> Timeline {
    let m = manifest(doc);
    let given = if m.tokens.is_empty() {
        tokens(&[])
    } else {
        tokens(&[("first_name", "Priya")])
    };
    let values = resolve_tokens(&m, lang, &given).expect("tokens");
    resolve(&m, lang, &values).expect("resolves")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn assert_point(got: [f64; 2], expect: [f64; 2]) {
    assert!(
        close(got[0], expect[0]) && close(got[1], expect[1]),
        "got {got:?}, expected {expect:?}"
    );
}

#[test]
fn resolves_text_colours_and_defaults() {
    let tl = timeline(&full(), "hi");
    assert_eq!(
        (tl.width, tl.height, tl.fps, tl.frame_count),
        (1280, 720, 30, 300)
    );
    assert_eq!(tl.background, [0, 0, 0, 255]);
    assert_eq!(tl.lang, "hi");
    let ids: Vec<&str> = tl.layers.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["bg", "logo", "greeting", "product", "offer", "bar"]);
    assert_eq!(tl.layers[0].end, 10.0);
    match &tl.layers[2].content {
        ResolvedContent::Text {
            text,
            min_font_size,
            color,
            shadow,
            line_height,
            ..
        } => {
            assert_eq!(text, "नमस्ते Priya!");
            assert!(close(*min_font_size, 28.8));
            assert_eq!(*color, [255, 255, 255, 255]);
            assert_eq!(*shadow, Some(([0, 0, 0, 128], [2.0, 3.0])));
            assert_eq!(*line_height, 1.3);
        }
        other => panic!("expected text, got {other:?}"),
    }
    match &tl.layers[4].content {
        ResolvedContent::Text { text, .. } => assert_eq!(text, "Code WELCOME"),
        other => panic!("expected text, got {other:?}"),
    }
    match &tl.layers[5].content {
        ResolvedContent::Solid {
            color,
            corner_radius,
            ..
        } => {
            assert_eq!(*color, [255, 136, 0, 128]);
            assert_eq!(*corner_radius, 8.0);
        }
        other => panic!("expected solid, got {other:?}"),
    }
    assert!(matches!(
        &tl.layers[0].content,
        ResolvedContent::Video {
            looped: true,
            size: None,
            ..
        }
    ));
    let dependent: Vec<bool> = tl.layers.iter().map(|l| l.recipient_dependent()).collect();
    assert_eq!(dependent, [false, false, true, false, true, false]);
}

#[test]
fn english_text_is_chosen_for_english() {
    let tl = timeline(&full(), "en");
    match &tl.layers[2].content {
        ResolvedContent::Text { text, .. } => assert_eq!(text, "Hi Priya!"),
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn dependent_ranges_are_merged() {
    assert_eq!(
        timeline(&full(), "en").dependent_ranges(),
        [(0.5, 7.5), (8.0, 10.0)]
    );
    let mut doc = full();
    doc["layers"][4]["start"] = json!(7.5);
    assert_eq!(timeline(&doc, "en").dependent_ranges(), [(0.5, 10.0)]);
    assert!(timeline(&minimal(), "en").dependent_ranges().is_empty());
}

#[test]
fn resolve_errors() {
    let m = manifest(&full());
    let err = resolve(&m, "ta", &tokens(&[])).expect_err("language");
    assert_eq!(
        err.to_string(),
        "language `ta` is not one of the template's languages (en, hi)"
    );
    let err = resolve(&m, "en", &tokens(&[("offer_code", "X")])).expect_err("missing token");
    assert!(
        matches!(&err, TemplateError::MissingToken { token, .. } if token == "first_name"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("layers[2] (`greeting`): token `first_name` has no value"),
        "{err}"
    );
    let mut broken = m.clone();
    broken.fps = 0;
    assert!(matches!(
        resolve(&broken, "en", &tokens(&[])),
        Err(TemplateError::Invalid(_))
    ));
}

/// A solid whose x position goes from 0 to 100 over t = 0..2 with `easing`.
fn eased(easing: &str) -> ResolvedLayer {
    let mut doc = minimal();
    doc["duration"] = json!(4);
    doc["layers"] = json!([{
        "id": "box", "type": "solid", "color": "#ffffff", "size": {"width": 10, "height": 10},
        "transform": {"position": [
            {"t": 0, "value": [0, 0], "easing": easing},
            {"t": 2, "value": [100, 0]}
        ]}
    }]);
    timeline(&doc, "en").layers.remove(0)
}

fn check_eased(easing: &str, t: f64, expect_x: f64) {
    let state = eased(easing).state_at(t, (10.0, 10.0)).expect("visible");
    let [x, _] = state.matrix.apply([0.0, 0.0]);
    assert!(
        close(x, expect_x),
        "{easing} at {t}: x = {x}, expected {expect_x}"
    );
}

#[test]
fn keyframe_midpoints_with_each_easing() {
    check_eased("linear", 1.0, 50.0);
    check_eased("ease_in", 1.0, 12.5);
    check_eased("ease_out", 1.0, 87.5);
    check_eased("ease_in_out", 1.0, 50.0);
    check_eased("ease_in_out", 0.5, 6.25);
    check_eased("ease_in_out", 1.5, 93.75);
    check_eased("hold", 1.0, 0.0);
    check_eased("hold", 1.999, 0.0);
    for easing in ["linear", "ease_in", "ease_out", "ease_in_out", "hold"] {
        check_eased(easing, 0.0, 0.0);
        check_eased(easing, 2.0, 100.0);
        check_eased(easing, 3.5, 100.0);
    }
}

#[test]
fn easing_curves_are_monotonic() {
    for easing in [
        Easing::Linear,
        Easing::EaseIn,
        Easing::EaseOut,
        Easing::EaseInOut,
        Easing::Hold,
    ] {
        let mut previous = easing.apply(0.0);
        for i in 1..=100 {
            let v = easing.apply(f64::from(i) / 100.0);
            assert!(v >= previous, "{easing:?} decreases at {i}");
            previous = v;
        }
    }
}

#[test]
fn visibility_window_and_opacity() {
    let tl = timeline(&full(), "en");
    let greeting = &tl.layers[2];
    let size = (1000.0, 200.0);
    assert!(greeting.state_at(0.4, size).is_none(), "before start");
    assert!(
        greeting.state_at(0.5, size).is_none(),
        "opacity 0 at the first keyframe"
    );
    assert!(close(
        greeting.state_at(0.75, size).expect("visible").opacity,
        0.5
    ));
    assert!(close(
        greeting.state_at(7.4, size).expect("visible").opacity,
        1.0
    ));
    assert!(greeting.state_at(7.5, size).is_none(), "end is exclusive");
    assert!(greeting.state_at(f64::NAN, size).is_none());
    // Position eases out from y 420 to 360 over 0.5..1.5; the anchor is the centre.
    let state = greeting.state_at(1.0, size).expect("visible");
    assert_point(
        state.matrix.apply([500.0, 100.0]),
        [640.0, 420.0 - 60.0 * 0.875],
    );
}

#[test]
fn opacity_is_clamped() {
    let mut layer = eased("linear");
    layer.opacity = template::Animated::Constant(7.0);
    assert_eq!(
        layer.state_at(1.0, (10.0, 10.0)).expect("visible").opacity,
        1.0
    );
    layer.opacity = template::Animated::Constant(-1.0);
    assert!(layer.state_at(1.0, (10.0, 10.0)).is_none());
}

#[test]
fn anchor_scale_and_rotation_map_corners() {
    let mut doc = minimal();
    doc["layers"] = json!([{
        "id": "card", "type": "solid", "color": "#ffffff", "size": {"width": 200, "height": 100},
        "transform": {"position": [640, 360], "anchor": [0.5, 0.5], "scale": 2, "rotation": 90}
    }]);
    let layer = timeline(&doc, "en").layers.remove(0);
    let m = layer.state_at(0.0, (200.0, 100.0)).expect("visible").matrix;
    // The anchor (centre) lands on the position.
    assert_point(m.apply([100.0, 50.0]), [640.0, 360.0]);
    // Scaled by 2 about the centre, then turned a quarter clockwise (y down).
    assert_point(m.apply([0.0, 0.0]), [740.0, 160.0]);
    assert_point(m.apply([200.0, 0.0]), [740.0, 560.0]);
    assert_point(m.apply([200.0, 100.0]), [540.0, 560.0]);
    assert_point(m.apply([0.0, 100.0]), [540.0, 160.0]);
    // The inverse maps canvas pixels back into the layer.
    let inv = m.invert().expect("invertible");
    assert_point(inv.apply([740.0, 160.0]), [0.0, 0.0]);
}

#[test]
fn top_right_anchor_places_the_logo_corner() {
    let tl = timeline(&full(), "en");
    let logo = &tl.layers[1];
    let m = logo.state_at(3.0, (160.0, 80.0)).expect("visible").matrix;
    assert_point(m.apply([160.0, 0.0]), [1240.0, 40.0]);
    assert_point(m.apply([0.0, 80.0]), [1160.0, 80.0]);
    assert_eq!(Affine::identity().mul(&m), m);
}

#[test]
fn frame_range_covers_times_in_half_open_ranges() {
    let tl = timeline(&full(), "en");
    assert_eq!(tl.frame_time(45), 1.5);
    assert_eq!(tl.frame_range(0.0, 10.0), 0..300);
    assert_eq!(tl.frame_range(0.5, 7.5), 15..225);
    assert_eq!(tl.frame_range(7.5, 8.0), 225..240);
    assert_eq!(tl.frame_range(1.0 / 3.0, 2.0 / 3.0), 10..20);
    assert_eq!(tl.frame_range(9.99, 20.0), 300..300);
    assert_eq!(tl.frame_range(-5.0, 0.1), 0..3);
    assert_eq!(tl.frame_range(5.0, 4.0), 150..150);
    assert_eq!(tl.frame_range(f64::NAN, f64::INFINITY), 0..300);
    // Adjacent ranges split the frames with none lost or doubled.
    let cuts = [0.0, 0.1, 0.2, 1.0 / 3.0, 0.7, 4.05, 9.999, 10.0];
    let mut next = 0;
    for pair in cuts.windows(2) {
        let r = tl.frame_range(pair[0], pair[1]);
        assert_eq!(r.start, next, "{pair:?}");
        for f in r.clone() {
            let t = tl.frame_time(f);
            assert!(
                t >= pair[0] - 1e-9 && t < pair[1],
                "frame {f} at {t} outside {pair:?}"
            );
        }
        next = r.end;
    }
    assert_eq!(next, 300);
}

#[test]
fn frame_count_rounds_fractional_durations_up() {
    let mut doc = minimal();
    doc["fps"] = json!(30);
    doc["duration"] = json!(0.1);
    assert_eq!(timeline(&doc, "en").frame_count, 3);
    doc["duration"] = json!(0.11);
    assert_eq!(timeline(&doc, "en").frame_count, 4);
    doc["fps"] = json!(24);
    doc["duration"] = json!(600);
    assert_eq!(timeline(&doc, "en").frame_count, 14_400);
}
