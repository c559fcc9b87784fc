//! Accuracy against eSpeak NG's own phoneme times, in every supported language, on voices other
//! than the alignment reference's. Thresholds (coarse = closed/narrow/open/round, exact = the
//! nine shapes, both within ±40 ms):
//! - transcript path: coarse ≥ 0.90 on average and ≥ 0.85 in every language; exact ≥ 0.85 on
//!   average;
//! - audio-only path: coarse ≥ 0.65 on average and ≥ 0.55 in every language.
//!
//! Measured figures are in BENCHMARKS.md (`reelfarm bench lipsync`).

use lipsync::{eval, reference_track, viseme, Method, Shape, VoiceParams};

use crate::support::engine;

#[test]
fn every_language_meets_the_accuracy_thresholds() {
    let engine = engine();
    let cases = eval::run(&engine, viseme::LANGUAGES).expect("evaluation runs");
    assert_eq!(
        cases.len(),
        viseme::LANGUAGES.len() * eval::test_voices().len()
    );
    for c in &cases {
        assert_eq!(
            c.aligned_method,
            Method::Aligned,
            "{} {} fell back",
            c.lang,
            c.voice
        );
    }
    let rows = eval::by_language(&cases);
    let n = rows.len() as f64;
    let mut report = String::new();
    for r in &rows {
        report += &format!(
            "{}: transcript {:.3}/{:.3} audio-only {:.3}/{:.3}\n",
            r.lang, r.aligned.exact, r.aligned.coarse, r.acoustic.exact, r.acoustic.coarse
        );
    }
    let mean = |f: &dyn Fn(&eval::Summary) -> f64| rows.iter().map(f).sum::<f64>() / n;
    assert!(mean(&|r| r.aligned.coarse) >= 0.90, "{report}");
    assert!(mean(&|r| r.aligned.exact) >= 0.85, "{report}");
    assert!(mean(&|r| r.acoustic.coarse) >= 0.65, "{report}");
    for r in &rows {
        assert!(r.aligned.coarse >= 0.85, "{}: {report}", r.lang);
        assert!(r.acoustic.coarse >= 0.55, "{}: {report}", r.lang);
    }
}

#[test]
fn spoken_tracks_follow_the_phonemes_within_the_lead_and_lag_limits() {
    let engine = engine();
    for &(lang, text) in eval::SENTENCES {
        let (synth, track) = engine
            .speak(text, lang, &VoiceParams::default())
            .expect("speak");
        assert_eq!(track.method, Method::Tts);
        assert!(!synth.phones.is_empty(), "{lang}");
        let truth = reference_track(&synth.phones, synth.duration_ms());
        assert_eq!(
            track.duration_ms(),
            truth.duration_ms(),
            "{lang}: covers the audio"
        );
        // Contiguous from 0; no shape shorter than 40 ms inside the speech.
        assert_eq!(track.cues[0].start_ms, 0);
        for (i, w) in track.cues.windows(2).enumerate() {
            assert_eq!(w[0].end_ms, w[1].start_ms, "{lang}");
            // The leading silence may be shorter.
            assert!(
                i == 0 || w[0].end_ms - w[0].start_ms >= 40,
                "{lang}: flicker {:?}",
                w[0]
            );
        }
        // Every shape change happens at most 40 ms before and 20 ms after a change to that
        // shape in the phoneme reference (or continues the shape the reference already had).
        for c in track.cues.iter().filter(|c| c.shape != Shape::X) {
            let ok = truth.cues.iter().any(|t| {
                t.shape == c.shape
                    && f64::from(c.start_ms) >= f64::from(t.start_ms) - 40.5
                    && (f64::from(c.start_ms) <= f64::from(t.start_ms) + 20.5
                        || c.start_ms < t.end_ms)
            });
            assert!(ok, "{lang}: cue {c:?} has no matching phoneme");
        }
        // Open vowels open the mouth and bilabials close it somewhere in every sentence.
        assert!(
            track
                .cues
                .iter()
                .any(|c| matches!(c.shape, Shape::C | Shape::D)),
            "{lang}"
        );
        assert!(track.cues.iter().any(|c| c.shape == Shape::A), "{lang}");
    }
}
